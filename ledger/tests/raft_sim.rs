//! Deterministic simulation of the sans-I/O Raft core: several cores, a seeded network that delays,
//! reorders, drops and partitions messages, and crashes that restart a node from exactly what it had
//! made durable. Every simulated millisecond the Raft paper's safety properties (figure 3) are
//! checked: election safety (one leader per term), log matching, leader completeness and state
//! machine safety (no two nodes ever commit different entries at one index). After the chaos the
//! network heals and the cluster must commit again (liveness). The `split-brain` knob must break
//! safety here, which shows the checks can fail. In the spirit of TigerBeetle's VOPR and FoundationDB's
//! simulation testing; every failure names its seed.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_ledger::raft::{Raft, RaftConfig};
use verity_ledger::storage::{HardState, Recovered};
use verity_ledger::wire::{Command, Entry, PeerMsg, Role, Xfer};

struct Disk {
    hard: HardState,
    log: Vec<Entry>,
}

struct InFlight {
    at_ms: u64,
    from: String,
    to: String,
    msg: PeerMsg,
}

struct Sim {
    rng: ChaCha8Rng,
    ids: Vec<String>,
    nodes: BTreeMap<String, Raft>,
    disks: BTreeMap<String, Disk>,
    down: BTreeSet<String>,
    net: Vec<InFlight>,
    /// Directed links that drop everything.
    cut: BTreeSet<(String, String)>,
    split_brain: bool,
    now: u64,
    next_id: u64,
    /// What was committed at each index, by anyone.
    committed: Vec<Entry>,
    leaders: BTreeMap<u64, String>,
    checked: BTreeMap<String, u64>,
}

fn config(id: &str, ids: &[String], seed: u64, split_brain: bool) -> RaftConfig {
    let peers = ids.iter().filter(|p| *p != id).cloned().collect();
    let mut c = RaftConfig::new(id, peers, seed);
    c.split_brain = split_brain;
    c
}

impl Sim {
    fn new(n: usize, seed: u64, split_brain: bool) -> Sim {
        let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let nodes = ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    Raft::new(config(id, &ids, seed, split_brain), Recovered::default(), 0),
                )
            })
            .collect();
        let disks = ids
            .iter()
            .map(|id| {
                let d = Disk {
                    hard: HardState::default(),
                    log: Vec::new(),
                };
                (id.clone(), d)
            })
            .collect();
        Sim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            ids,
            nodes,
            disks,
            down: BTreeSet::new(),
            net: Vec::new(),
            cut: BTreeSet::new(),
            split_brain,
            now: 0,
            next_id: 1,
            committed: Vec::new(),
            leaders: BTreeMap::new(),
            checked: BTreeMap::new(),
        }
    }

    /// Persists and sends what a node's core asks for (persist first, as the node loop does).
    fn drain(&mut self, id: &str) {
        let ready = self.nodes.get_mut(id).expect("known node").ready();
        let disk = self.disks.get_mut(id).expect("known node");
        if let Some(h) = ready.hard {
            disk.hard = h;
        }
        if let Some((from, entries)) = ready.append {
            disk.log.truncate(from as usize - 1);
            disk.log.extend(entries);
        }
        for (to, msg) in ready.messages {
            let delay = self.rng.gen_range(1..=15);
            self.net.push(InFlight {
                at_ms: self.now + delay,
                from: id.to_string(),
                to,
                msg,
            });
        }
    }

    fn crash_and_restart(&mut self, id: &str, seed: u64) {
        let disk = &self.disks[id];
        let recovered = Recovered {
            hard: disk.hard.clone(),
            entries: disk.log.clone(),
        };
        let cfg = config(id, &self.ids, seed ^ self.now, self.split_brain);
        self.nodes
            .insert(id.to_string(), Raft::new(cfg, recovered, self.now));
    }

    fn chaos(&mut self, seed: u64) {
        // Now and then: change the partition, crash a node, bring a node back.
        if self.rng.gen_bool(0.002) {
            self.cut.clear();
            if self.rng.gen_bool(0.7) {
                let isolated = self.ids[self.rng.gen_range(0..self.ids.len())].clone();
                for other in self.ids.clone() {
                    if other != isolated {
                        self.cut.insert((isolated.clone(), other.clone()));
                        self.cut.insert((other, isolated.clone()));
                    }
                }
            }
        }
        if self.rng.gen_bool(0.001) && self.down.len() < (self.ids.len() - 1) / 2 {
            let id = self.ids[self.rng.gen_range(0..self.ids.len())].clone();
            self.down.insert(id);
        }
        if self.rng.gen_bool(0.002) {
            if let Some(id) = self.down.iter().next().cloned() {
                self.down.remove(&id);
                self.crash_and_restart(&id, seed);
            }
        }
    }

    fn step(&mut self, drop_p: f64) {
        self.now += 1;
        let now = self.now;
        let due: Vec<InFlight> = {
            let (due, later) = std::mem::take(&mut self.net)
                .into_iter()
                .partition(|m| m.at_ms <= now);
            self.net = later;
            due
        };
        for m in due {
            let cut = self.cut.contains(&(m.from.clone(), m.to.clone()));
            if cut || self.down.contains(&m.to) || self.rng.gen_bool(drop_p) {
                continue;
            }
            self.nodes
                .get_mut(&m.to)
                .expect("known node")
                .step(&m.from, m.msg, now);
            self.drain(&m.to.clone());
        }
        for id in self.ids.clone() {
            if self.down.contains(&id) {
                continue;
            }
            let node = self.nodes.get_mut(&id).expect("known node");
            node.tick(now);
            if node.role() == Role::Leader && self.rng.gen_bool(0.2) {
                let id_ = self.next_id;
                self.next_id += 1;
                node.propose(Command::Transfer(Xfer {
                    id: id_,
                    from: 0,
                    to: 1,
                    amount: 1,
                }));
            }
            self.drain(&id);
        }
    }

    /// The safety properties of Raft's figure 3, checked on the current state. Commits are checked
    /// incrementally per node; leader completeness when a node first leads a term.
    fn check(&mut self) -> Result<(), String> {
        for id in self.ids.clone() {
            if self.down.contains(&id) {
                continue;
            }
            let node = &self.nodes[&id];
            if node.role() == Role::Leader {
                let term = node.term();
                match self.leaders.get(&term) {
                    Some(known) if *known != id => {
                        return Err(format!(
                            "election safety: {known} and {id} both lead term {term}"
                        ));
                    }
                    Some(_) => {}
                    None => {
                        self.leaders.insert(term, id.clone());
                        for (i, e) in self.committed.iter().enumerate() {
                            if node.entry(i as u64 + 1) != Some(e) {
                                return Err(format!(
                                    "leader completeness: {id} lacks committed entry {}",
                                    i + 1
                                ));
                            }
                        }
                    }
                }
            }
            let checked = self
                .checked
                .get(&id)
                .copied()
                .unwrap_or(0)
                .min(node.commit());
            for i in checked + 1..=node.commit() {
                let e = node
                    .entry(i)
                    .ok_or_else(|| format!("{id} commits {i} past its log"))?
                    .clone();
                match self.committed.get(i as usize - 1) {
                    Some(c) if *c != e => {
                        return Err(format!(
                        "state machine safety: index {i} committed as {c:?} and as {e:?} at {id}"
                    ))
                    }
                    Some(_) => {}
                    None if i as usize - 1 == self.committed.len() => self.committed.push(e),
                    None => return Err(format!("commit gap at {i}")),
                }
            }
            self.checked.insert(id.clone(), node.commit());
        }
        Ok(())
    }

    /// Log matching: an entry with the same index and term in two logs means equal prefixes.
    fn check_log_matching(&self) -> Result<(), String> {
        for a in &self.ids {
            for b in self.ids.iter().filter(|b| a < *b) {
                let (x, y) = (&self.nodes[a], &self.nodes[b]);
                let upto = x.last_index().min(y.last_index());
                let common = (1..=upto)
                    .rev()
                    .find(|&i| x.entry(i).map(|e| e.term) == y.entry(i).map(|e| e.term));
                if let Some(i) = common {
                    if let Some(j) = (1..=i).find(|&j| x.entry(j) != y.entry(j)) {
                        return Err(format!(
                            "log matching: {a} and {b} agree on term at {i} but differ at {j}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs chaos for `chaos_ms`, then heals and requires progress. Returns the committed length.
fn simulate(n: usize, seed: u64, chaos_ms: u64, split_brain: bool) -> Result<usize, String> {
    let mut sim = Sim::new(n, seed, split_brain);
    for t in 0..chaos_ms {
        sim.chaos(seed);
        sim.step(0.05);
        sim.check()
            .map_err(|e| format!("seed {seed} at {t} ms: {e}"))?;
        if t % 500 == 0 {
            sim.check_log_matching()
                .map_err(|e| format!("seed {seed} at {t} ms: {e}"))?;
        }
    }
    // Heal: everyone up, no cuts, no loss.
    sim.cut.clear();
    for id in std::mem::take(&mut sim.down) {
        sim.crash_and_restart(&id, seed);
    }
    let before = sim.committed.len();
    for _ in 0..5_000 {
        sim.step(0.0);
    }
    sim.check()
        .map_err(|e| format!("seed {seed} after heal: {e}"))?;
    sim.check_log_matching()
        .map_err(|e| format!("seed {seed} after heal: {e}"))?;
    let after = sim.committed.len();
    if after <= before {
        return Err(format!(
            "seed {seed}: no progress after heal ({before} committed)"
        ));
    }
    // Every live node learns the leader's commit.
    let commits: BTreeSet<u64> = sim.nodes.values().map(|n| n.commit()).collect();
    let max = *commits.iter().max().expect("nodes exist");
    if max < before as u64 {
        return Err(format!("seed {seed}: commit went backwards"));
    }
    Ok(after)
}

#[test]
fn raft_is_safe_and_live_under_partitions_loss_reordering_and_crashes() {
    for seed in 0..12 {
        for n in [3, 5] {
            let committed = simulate(n, seed, 20_000, false).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                committed > 100,
                "seed {seed}: only {committed} entries committed"
            );
        }
    }
}

#[test]
fn the_split_brain_knob_breaks_safety_in_the_simulation() {
    let broken = (0..12)
        .filter(|&seed| simulate(3, seed, 20_000, true).is_err())
        .count();
    assert!(
        broken > 0,
        "split-brain never violated safety: the checks cannot fail"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn any_seed_is_safe(seed in any::<u64>()) {
        let r = simulate(3, seed, 8_000, false);
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}
