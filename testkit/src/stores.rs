//! Small histories for the model cross-check (`checkers/tests/graph_models.rs`): a simulated store of several
//! strengths, from strict serializable down to dirty reads, and observations mutated afterwards,
//! so that every model is both satisfied and violated many times.

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_history::{EventType, History};

use crate::txn::{random_mops, Builder, State, M};

/// How the simulated store behaves. Every transaction executes atomically at one instant between
/// its invocation and completion; what it reads depends on the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads the latest state when it executes: strict serializable.
    Serial,
    /// Reads the snapshot taken at its invocation, first committer wins: strong SI.
    Snapshot,
    /// Snapshot isolation from a snapshot that may be stale (older than the invocation).
    StaleSnapshot,
    /// Snapshots without first-committer-wins: lost updates.
    NoFirstCommitter,
    /// Each read sees a committed state at least as new as the previous read's: read committed.
    ReadCommitted,
    /// Read committed, and a read may see the writes of a transaction still open (dirty reads, of
    /// intermediate versions too).
    Dirty,
}

const MODES: [Mode; 6] = [
    Mode::Serial,
    Mode::Snapshot,
    Mode::StaleSnapshot,
    Mode::NoFirstCommitter,
    Mode::ReadCommitted,
    Mode::Dirty,
];

#[derive(Debug, Clone)]
enum Ev {
    Invoke(u64, Vec<M>),
    Complete(u64, EventType, Vec<M>),
}

struct Open {
    p: u64,
    mops: Vec<M>,
    snapshot: usize,
    /// 0 ok, 1 fail, 2 info after taking effect, 3 info without effect.
    fate: u8,
    result: Option<Vec<M>>,
}

struct Store {
    mode: Mode,
    /// Committed states, oldest first, and the keys each commit wrote.
    versions: Vec<State>,
    wrote: Vec<BTreeSet<i64>>,
}

impl Store {
    fn latest(&self) -> usize {
        self.versions.len() - 1
    }

    /// Executes `open[i]`: fills in its reads and commits its writes, or aborts it (first committer
    /// wins).
    fn execute(&mut self, rng: &mut ChaCha8Rng, open: &mut [Open], i: usize) {
        let base = match self.mode {
            Mode::Serial => self.latest(),
            _ => open[i].snapshot,
        };
        let mut seen = base;
        let mut own: Vec<M> = Vec::new();
        let mut result = Vec::new();
        for m in open[i].mops.clone() {
            let key = match &m {
                M::A(..) | M::W(..) => {
                    own.push(m.clone());
                    result.push(m);
                    continue;
                }
                M::R(k, _) | M::Rr(k, _) => *k,
            };
            if matches!(self.mode, Mode::ReadCommitted | Mode::Dirty) {
                seen = rng.gen_range(seen..=self.latest());
            }
            let mut view = self.versions[seen].clone();
            view.apply(&own);
            let mut read = view.apply(std::slice::from_ref(&m)).remove(0);
            let mine = own
                .iter()
                .any(|w| matches!(w, M::A(k, _) | M::W(k, _) if *k == key));
            if self.mode == Mode::Dirty && !mine && rng.gen_bool(0.3) {
                read = dirty_read(rng, open, i, read, key);
            }
            result.push(read);
        }
        let conflict = self.mode != Mode::NoFirstCommitter
            && self.mode != Mode::Serial
            && self.wrote[base + 1..].iter().any(|w| {
                own.iter()
                    .any(|m| matches!(m, M::A(k, _) | M::W(k, _) if w.contains(k)))
            });
        if conflict {
            open[i].fate = if open[i].fate == 0 { 1 } else { 3 };
            return;
        }
        let mut next = self.versions[self.latest()].clone();
        next.apply(&own);
        self.versions.push(next);
        self.wrote.push(
            own.iter()
                .filter_map(|m| match m {
                    M::A(k, _) | M::W(k, _) => Some(*k),
                    _ => None,
                })
                .collect(),
        );
        open[i].result = Some(result);
    }
}

/// A read that sees another open transaction's first writes of the key on top of what it read.
fn dirty_read(rng: &mut ChaCha8Rng, open: &[Open], me: usize, read: M, key: i64) -> M {
    let others: Vec<Vec<&M>> = open
        .iter()
        .enumerate()
        .filter(|(j, o)| *j != me && o.result.is_none())
        .map(|(_, o)| {
            o.mops
                .iter()
                .filter(|m| matches!(m, M::A(k, _) | M::W(k, _) if *k == key))
                .collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    if others.is_empty() {
        return read;
    }
    let writes = &others[rng.gen_range(0..others.len())];
    let upto = rng.gen_range(1..=writes.len());
    match read {
        M::R(k, Some(mut l)) => {
            l.extend(writes[..upto].iter().map(|w| match w {
                M::A(_, v) | M::W(_, v) => *v,
                _ => unreachable!("writes only"),
            }));
            M::R(k, Some(l))
        }
        M::Rr(k, Some(_)) => match writes[upto - 1] {
            M::A(_, v) | M::W(_, v) => M::Rr(k, Some(Some(*v))),
            _ => unreachable!("writes only"),
        },
        other => other,
    }
}

/// Simulates `txns` transactions of `procs` processes against a store in `mode`.
fn simulate(
    rng: &mut ChaCha8Rng,
    mode: Mode,
    txns: usize,
    procs: u64,
    keys: i64,
    register: bool,
) -> Vec<Ev> {
    let mut store = Store {
        mode,
        versions: vec![State::default()],
        wrote: vec![BTreeSet::new()],
    };
    let mut evs = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut idle: Vec<u64> = (0..procs).collect();
    let (mut next_proc, mut next_value, mut started) = (procs, 0, 0);
    for _ in 0..txns * 12 + 20 {
        if started == txns && open.is_empty() {
            break;
        }
        match rng.gen_range(0..3) {
            0 if started < txns && !idle.is_empty() => {
                let p = idle.swap_remove(rng.gen_range(0..idle.len()));
                let mops = random_mops(rng, keys, 3, register, &mut next_value);
                let snapshot = if mode == Mode::StaleSnapshot && rng.gen_bool(0.4) {
                    rng.gen_range(0..=store.latest())
                } else {
                    store.latest()
                };
                let fate = match rng.gen_range(0..100) {
                    0..=7 => 1,
                    8..=13 => 2,
                    14..=19 => 3,
                    _ => 0,
                };
                evs.push(Ev::Invoke(p, mops.clone()));
                open.push(Open {
                    p,
                    mops,
                    snapshot,
                    fate,
                    result: None,
                });
                started += 1;
            }
            1 if !open.is_empty() => {
                let i = rng.gen_range(0..open.len());
                if open[i].result.is_none() && matches!(open[i].fate, 0 | 2) {
                    store.execute(rng, &mut open, i);
                }
            }
            _ if !open.is_empty() => {
                let i = rng.gen_range(0..open.len());
                if open[i].result.is_none() && matches!(open[i].fate, 0 | 2) {
                    continue;
                }
                let o = open.swap_remove(i);
                match o.fate {
                    0 => {
                        evs.push(Ev::Complete(
                            o.p,
                            EventType::Ok,
                            o.result.expect("executed"),
                        ));
                        idle.push(o.p);
                    }
                    1 => {
                        evs.push(Ev::Complete(o.p, EventType::Fail, o.mops));
                        idle.push(o.p);
                    }
                    _ => {
                        // A process whose operation ended `info` is gone; a new one takes its place.
                        evs.push(Ev::Complete(o.p, EventType::Info, o.mops));
                        idle.push(next_proc);
                        next_proc += 1;
                    }
                }
            }
            _ => {}
        }
    }
    // Whatever is still open ends `info` or stays pending.
    for o in open {
        if rng.gen_bool(0.5) {
            evs.push(Ev::Complete(o.p, EventType::Info, o.mops));
        }
    }
    evs
}

/// Changes one read of one `ok` transaction: a shorter or longer list, two elements swapped, one
/// duplicated or dropped; another value of the register.
fn mutate(rng: &mut ChaCha8Rng, evs: &mut [Ev]) {
    let mut written: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for e in evs.iter() {
        if let Ev::Invoke(_, mops) = e {
            for m in mops {
                if let M::A(k, v) | M::W(k, v) = m {
                    written.entry(*k).or_default().push(*v);
                }
            }
        }
    }
    let reads: Vec<(usize, usize)> = evs
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Ev::Complete(_, EventType::Ok, mops) => Some((i, mops)),
            _ => None,
        })
        .flat_map(|(i, mops)| {
            mops.iter()
                .enumerate()
                .filter(|(_, m)| matches!(m, M::R(..) | M::Rr(..)))
                .map(move |(j, _)| (i, j))
        })
        .collect();
    if reads.is_empty() {
        return;
    }
    let (i, j) = reads[rng.gen_range(0..reads.len())];
    let Ev::Complete(_, _, mops) = &mut evs[i] else {
        unreachable!("an ok completion")
    };
    match &mut mops[j] {
        M::R(k, Some(l)) => {
            let others: Vec<i64> = written
                .get(k)
                .map(|w| w.iter().copied().filter(|v| !l.contains(v)).collect())
                .unwrap_or_default();
            match rng.gen_range(0..5) {
                0 if !l.is_empty() => l.truncate(rng.gen_range(0..l.len())),
                1 if !others.is_empty() => l.push(others[rng.gen_range(0..others.len())]),
                2 if l.len() >= 2 => {
                    let a = rng.gen_range(0..l.len() - 1);
                    l.swap(a, a + 1);
                }
                3 if !l.is_empty() => l.push(l[rng.gen_range(0..l.len())]),
                4 if !l.is_empty() => {
                    l.remove(rng.gen_range(0..l.len()));
                }
                _ => {}
            }
        }
        M::Rr(k, Some(v)) => {
            let mut choices: Vec<Option<i64>> = vec![None];
            choices.extend(written.get(k).into_iter().flatten().map(|&x| Some(x)));
            *v = choices[rng.gen_range(0..choices.len())];
        }
        _ => {}
    }
}

fn build(evs: &[Ev]) -> History {
    let mut b = Builder::new();
    for e in evs {
        match e {
            Ev::Invoke(p, mops) => b.invoke(*p, mops),
            Ev::Complete(p, kind, mops) => b.complete(*p, *kind, mops),
        };
    }
    b.history()
}

/// The history of one seed: its data kind, its store's mode, whether a read was mutated.
pub fn history_of(seed: u64) -> (History, bool, Mode, bool) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let register = rng.gen_bool(0.4);
    let mode = MODES[rng.gen_range(0..MODES.len())];
    let n = rng.gen_range(2..=6);
    let procs = rng.gen_range(1..=3);
    let keys = rng.gen_range(1..=3);
    let mut evs = simulate(&mut rng, mode, n, procs, keys, register);
    let mutated = rng.gen_bool(0.3);
    if mutated {
        mutate(&mut rng, &mut evs);
    }
    (build(&evs), register, mode, mutated)
}
