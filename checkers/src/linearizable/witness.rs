//! A fast proof of linearizability for bank histories that carry the ledger's own journal.
//!
//! The final read of the bank workload returns the ids of every applied transfer in the order the
//! ledger applied them. If that order, with every read and every rejected transfer slotted in, is a
//! legal sequential history that respects real time, the history is linearizable — by definition,
//! wherever the order came from. Checking one given order is polynomial (O(n log n) here), where the
//! general search is exponential in concurrency and in timed-out (`info`) operations; the idea is the
//! one behind TigerBeetle's Jepsen checker, which orders operations by the server's timestamps and then
//! replays them.
//!
//! The witness only ever proves validity. When the journal is missing or inconsistent, a read matches
//! no state of the journal order, or the greedy placement below cannot satisfy every interval, it
//! returns `None` and the caller runs the full search, which decides (or answers `unknown`).
//!
//! Placement: time is the gap between two consecutive events of the history; the j-th journal entry
//! is placed in the earliest gap its constraints allow (after its invocation, after the previous
//! entry, after every read that saw a state older than it), and must come before its completion and
//! before every read that saw it. Reads whose balances match several journal states, and transfers
//! rejected for insufficient funds (which only need some state where the source was short), are
//! checked against the resulting placement.

use std::collections::HashMap;

use verity_history::{Event, History, Op, OpOutcome, Transfer, Value, F};

/// What the witness found, for the verdict's details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Witness {
    pub transfers: usize,
    pub reads: usize,
    pub rejected: usize,
}

/// Tries to prove the bank history linearizable in the ledger's own journal order.
pub fn bank_journal(history: &History) -> Option<Witness> {
    let ev = &history.events;
    let ops = history.ops().ok()?;
    let setup = ops
        .iter()
        .find(|o| ev[o.invoke].f == F::Setup && o.outcome == OpOutcome::Ok)?;
    let initial = balances(&ev[setup.completion?].value)?;
    let final_op = ops
        .iter()
        .rev()
        .find(|o| is_final(&ev[o.invoke]) && o.outcome == OpOutcome::Ok)?;
    let journal = ev[final_op.completion?]
        .value
        .get("applied")?
        .as_i64_list()?;

    // The journal's transfers, with their intervals (gap indices), in journal order.
    let mut requested: HashMap<u64, (&Op, Transfer)> = HashMap::new();
    for op in &ops {
        if let Value::Transfer(t) = &ev[op.invoke].value {
            if requested.insert(t.id, (op, *t)).is_some() {
                return None; // a reused id: let the search judge it
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut entries: Vec<(usize, usize, Transfer)> = Vec::with_capacity(journal.len());
    for id in &journal {
        let id = u64::try_from(*id).ok()?;
        let (op, t) = requested.get(&id)?;
        if !seen.insert(id)
            || !matches!(
                op.outcome,
                OpOutcome::Ok | OpOutcome::Info | OpOutcome::Pending
            )
        {
            return None;
        }
        entries.push((op.invoke, completion_gap(op), *t));
    }
    let applied_ok = ops
        .iter()
        .filter(|o| o.outcome == OpOutcome::Ok && matches!(ev[o.invoke].value, Value::Transfer(_)))
        .count();
    if applied_ok > entries.iter().filter(|(_, c, _)| *c != usize::MAX).count() {
        return None; // an acknowledged transfer is missing from the journal
    }

    // The states of the journal order; every transfer must be legal where it stands.
    let n = entries.len();
    let mut states: Vec<Vec<i64>> = Vec::with_capacity(n + 1);
    states.push(initial);
    for (_, _, t) in &entries {
        let mut s = states
            .last()
            .expect("starts with the initial state")
            .clone();
        let (from, to) = (t.from as usize, t.to as usize);
        if from >= s.len() || to >= s.len() || s[from] < t.amount {
            return None;
        }
        s[from] -= t.amount;
        s[to] += t.amount;
        states.push(s);
    }
    let mut by_state: HashMap<&[i64], Vec<usize>> = HashMap::new();
    for (k, s) in states.iter().enumerate() {
        by_state.entry(s.as_slice()).or_default().push(k);
    }

    // Bounds from reads that match exactly one state: lower[j] (entry j must come after the read's
    // invocation) and upper[j] (entry j must come before the read's completion).
    let mut lower = vec![0usize; n + 2];
    let mut upper = vec![usize::MAX; n + 2];
    let mut deferred: Vec<(usize, usize, Candidates)> = Vec::new();
    let (mut reads, mut rejected) = (0, 0);
    for op in &ops {
        let invoke = &ev[op.invoke];
        match (&invoke.f, &invoke.value, op.outcome) {
            (F::Read, _, OpOutcome::Ok) => {
                let seen = balances(&ev[op.completion?].value)?;
                let ks = by_state.get(seen.as_slice())?;
                reads += 1;
                if let [k] = ks.as_slice() {
                    upper[*k] = upper[*k].min(completion_gap(op));
                    lower[k + 1] = lower[k + 1].max(op.invoke);
                } else {
                    deferred.push((
                        op.invoke,
                        completion_gap(op),
                        Candidates::States(ks.clone()),
                    ));
                }
            }
            (F::Transfer, Value::Transfer(t), OpOutcome::Fail) => {
                let short = ev[op.completion?].error.as_deref() == Some("insufficient-funds");
                if short && !seen.contains(&t.id) {
                    rejected += 1;
                    deferred.push((op.invoke, completion_gap(op), Candidates::Short(*t)));
                }
            }
            _ => {}
        }
    }
    // Ops that match several states get a hard constraint as soon as only one of their candidates
    // can hold within their interval under any placement; a few rounds settle it.
    let mut gap = Vec::new();
    for _round in 0..8 {
        let (lo, hi) = spread_bounds(&lower, &upper);
        let earliest = place_earliest(&entries, &lo, &hi)?;
        let latest = place_latest(&entries, &lo, &hi)?;
        let mut tightened = false;
        let mut still = Vec::with_capacity(deferred.len());
        for (invoke, completion, candidates) in deferred {
            // State k can hold within [invoke, completion) under some placement between the two.
            let could = |k: usize| {
                (k == 0 || earliest[k] < completion) && (k == n || latest[k + 1] >= invoke)
            };
            // Entries that must come before the invocation, and entries that can come before the
            // completion, bound the states that may hold within the interval.
            let first = latest[1..].partition_point(|&g| g < invoke);
            let last = earliest[1..].partition_point(|&g| g < completion).min(n);
            let matching: Vec<usize> = match &candidates {
                Candidates::States(ks) => ks.iter().copied().filter(|&k| could(k)).collect(),
                Candidates::Short(t) => (first..=last)
                    .filter(|&k| {
                        could(k)
                            && states[k]
                                .get(t.from as usize)
                                .is_some_and(|&b| b < t.amount)
                    })
                    .collect(),
            };
            let holds_now = |k: usize| {
                (k == 0 || earliest[k] < completion) && (k == n || earliest[k + 1] >= invoke)
            };
            let commit = match matching.as_slice() {
                [] => return None,
                [k] => Some(*k),
                // Several fit: keep the choice open while the placement satisfies one; otherwise
                // commit to the latest state, which moves the fewest entries.
                many if !many.iter().any(|&k| holds_now(k)) => many.last().copied(),
                _ => None,
            };
            match commit {
                Some(k) => {
                    upper[k] = upper[k].min(completion);
                    lower[k + 1] = lower[k + 1].max(invoke);
                    tightened = true;
                }
                None => still.push((invoke, completion, Candidates::States(matching))),
            }
        }
        deferred = still;
        let (lo, hi) = spread_bounds(&lower, &upper);
        gap = place_earliest(&entries, &lo, &hi)?;
        if !tightened {
            break;
        }
    }
    // State k holds from just after entry k to just before entry k+1.
    let holds = |k: usize, invoke: usize, completion: usize| {
        (k == 0 || gap[k] < completion) && (k == n || gap[k + 1] >= invoke)
    };
    for (invoke, completion, candidates) in deferred {
        let Candidates::States(ks) = candidates else {
            unreachable!("rejected transfers are turned into candidate states above")
        };
        if !ks.iter().any(|&k| holds(k, invoke, completion)) {
            return None;
        }
    }
    Some(Witness {
        transfers: n,
        reads,
        rejected,
    })
}

/// Spreads the per-state bounds to every entry: a read's completion bounds every entry at or before
/// the state it saw (suffix minimum), its invocation every entry after (prefix maximum).
fn spread_bounds(lower: &[usize], upper: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut lo = lower.to_vec();
    let mut hi = upper.to_vec();
    for j in (0..hi.len() - 1).rev() {
        hi[j] = hi[j].min(hi[j + 1]);
    }
    for j in 1..lo.len() {
        lo[j] = lo[j].max(lo[j - 1]);
    }
    (lo, hi)
}

/// Each entry in the earliest gap its bounds allow, in journal order; `None` if one cannot fit.
fn place_earliest(
    entries: &[(usize, usize, Transfer)],
    lo: &[usize],
    hi: &[usize],
) -> Option<Vec<usize>> {
    let mut gap = vec![0usize; entries.len() + 1];
    for j in 1..=entries.len() {
        let (invoke, completion, _) = entries[j - 1];
        let g = invoke.max(lo[j]).max(gap[j - 1]);
        if g >= completion.min(hi[j]) {
            return None;
        }
        gap[j] = g;
    }
    Some(gap)
}

/// Each entry in the latest gap its bounds allow, in journal order (`usize::MAX`: unbounded, a
/// timed-out transfer); `None` if one cannot fit.
fn place_latest(
    entries: &[(usize, usize, Transfer)],
    lo: &[usize],
    hi: &[usize],
) -> Option<Vec<usize>> {
    let n = entries.len();
    let mut gap = vec![0usize; n + 1];
    // The next entry's gap: this one may share it, ordered before.
    let mut cap = usize::MAX;
    for j in (1..=n).rev() {
        let (invoke, completion, _) = entries[j - 1];
        let bound = completion.min(hi[j]);
        let g = if bound == usize::MAX {
            cap
        } else {
            (bound - 1).min(cap)
        };
        if g < invoke.max(lo[j]) {
            return None;
        }
        gap[j] = g;
        cap = g;
    }
    Some(gap)
}

enum Candidates {
    States(Vec<usize>),
    Short(Transfer),
}

/// The last gap an operation may take effect in: before its completion, or never bounded.
fn completion_gap(op: &Op) -> usize {
    match (op.outcome, op.completion) {
        (OpOutcome::Ok | OpOutcome::Fail, Some(c)) => c,
        _ => usize::MAX,
    }
}

fn balances(v: &Value) -> Option<Vec<i64>> {
    v.get("balances")?.as_i64_list()
}

fn is_final(e: &Event) -> bool {
    e.f == F::Read && matches!(e.value.get("final"), Some(Value::Bool(true)))
}

/// The bank linearizability checker: the journal witness first, the full search when it cannot prove
/// validity.
pub struct WitnessFirst {
    pub search: Box<dyn crate::Checker>,
}

impl crate::Checker for WitnessFirst {
    fn name(&self) -> &'static str {
        self.search.name()
    }

    fn check(&self, history: &History, budget: &crate::Budget) -> crate::Verdict {
        match bank_journal(history) {
            Some(w) => {
                let mut v = crate::Verdict::valid();
                v.detail("model", "bank");
                v.detail(
                    "method",
                    "journal witness: the ledger's own order of applied transfers, with every read and rejected transfer placed within its interval",
                );
                v.detail(
                    "witness",
                    serde_json::json!({"transfers": w.transfers, "reads": w.reads, "rejected": w.rejected}),
                );
                v
            }
            None => self.search.check(history, budget),
        }
    }
}
