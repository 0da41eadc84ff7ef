//! The `conservation` checker: is every cent accounted for?
//!
//! It follows Jepsen's bank checker (every successful read sums to the initial total and shows no
//! negative balance) and adds what a ledger auditor needs, which transfer ids make possible: the final
//! read's journal of applied transfer ids is compared with what clients were told, naming
//! `lost-transfer` (acknowledged, never applied), `duplicate-transfer`, `phantom-transfer` (applied,
//! never requested), `failed-transfer-applied`, and `balance-mismatch` (final balances differ from a
//! replay of the journal). Timed-out (`info`) transfers are resolved by the journal, as TigerBeetle's
//! Jepsen checker does, and the committed fraction is reported.
//!
//! A history without a final read cannot be judged on lost or duplicated money: its verdict is
//! `unknown`, never `valid`. Histories in Jepsen's bank format (no ids, no journal) get the read checks
//! only, and the verdict says so.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use serde_json::json;
use verity_history::anomaly::*;
use verity_history::{Event, History, Op, OpOutcome, Transfer, Value, F};

use crate::{Anomaly, Budget, Checker, Verdict};

#[derive(Debug, Clone, Copy, Default)]
pub struct Conservation;

impl Checker for Conservation {
    fn name(&self) -> &'static str {
        "conservation"
    }

    fn check(&self, history: &History, _budget: &Budget) -> Verdict {
        let ops = match history.ops() {
            Ok(ops) => ops,
            Err(e) => return Verdict::unknown(format!("the history is malformed: {e}")),
        };
        let ev = &history.events;
        let Some((initial, setup_op)) = initial_state(ev, &ops) else {
            return Verdict::unknown(
                "no initial state: neither a setup op nor a first read that completes before any other op",
            );
        };
        let total: i64 = initial.iter().sum();
        let mut verdict = Verdict::valid();
        let reads = check_reads(ev, &ops, setup_op, &initial, total, &mut verdict);
        verdict.detail("accounts", initial.len());
        verdict.detail("total", total);
        verdict.detail("reads_checked", reads);

        let final_read = ops.iter().rev().find(|op| is_final_read(&ev[op.invoke]));
        let Some(final_op) = final_read else {
            verdict.set_unknown("the history has no final read, so lost and duplicated transfers cannot be ruled out");
            return verdict;
        };
        let Some(final_value) = completion_value(ev, final_op, OpOutcome::Ok) else {
            verdict.set_unknown("the final read did not succeed, so lost and duplicated transfers cannot be ruled out");
            return verdict;
        };
        match final_value.get("applied").and_then(Value::as_i64_list) {
            Some(applied) => {
                let Some(final_balances) = balances_of(final_value) else {
                    // check_reads has said why the read cannot be interpreted.
                    return verdict;
                };
                let ledger = LedgerCheck {
                    ev,
                    ops: &ops,
                    initial: &initial,
                    final_op,
                    final_balances: &final_balances,
                };
                ledger.run(&applied, &mut verdict);
            }
            None => verdict.detail(
                "ledger_checks",
                "skipped: the final read carries no journal of applied transfer ids (Jepsen bank format); only totals and negative balances were checked",
            ),
        }
        verdict
    }
}

/// Whether an event is the invocation of a final read.
fn is_final_read(e: &Event) -> bool {
    e.f == F::Read && matches!(e.value.get("final"), Some(Value::Bool(true)))
}

fn balances_of(v: &Value) -> Option<Vec<i64>> {
    v.get("balances")?.as_i64_list()
}

fn completion_value<'h>(ev: &'h [Event], op: &Op, want: OpOutcome) -> Option<&'h Value> {
    (op.outcome == want).then(|| &ev[op.completion.expect("completed ops have a completion")].value)
}

fn op_events(ev: &[Event], op: &Op) -> Vec<u64> {
    let mut v = vec![ev[op.invoke].index];
    if let Some(c) = op.completion {
        v.push(ev[c].index);
    }
    v
}

/// The initial balances: the setup op's, or (Jepsen's bank format) those of a first read that
/// completed before any other operation was invoked. Returns the op that established them.
fn initial_state(ev: &[Event], ops: &[Op]) -> Option<(Vec<i64>, usize)> {
    if let Some((i, op)) = ops
        .iter()
        .enumerate()
        .find(|(_, op)| ev[op.invoke].f == F::Setup && op.outcome == OpOutcome::Ok)
    {
        let c = op.completion.expect("ok ops are completed");
        let balances = balances_of(&ev[c].value).or_else(|| balances_of(&ev[op.invoke].value))?;
        return Some((balances, i));
    }
    let first = ops.first()?;
    let c = first.completion?;
    let second_invoke = ops.get(1).map_or(usize::MAX, |o| o.invoke);
    let is_read = ev[first.invoke].f == F::Read && first.outcome == OpOutcome::Ok;
    if is_read && c < second_invoke {
        return Some((balances_of(&ev[c].value)?, 0));
    }
    None
}

/// Checks every successful read: the total and the sign of each balance. Returns how many were checked.
fn check_reads(
    ev: &[Event],
    ops: &[Op],
    setup_op: usize,
    initial: &[i64],
    total: i64,
    verdict: &mut Verdict,
) -> u64 {
    let mut checked = 0;
    let mut uninterpretable: Option<(&Op, &Value)> = None;
    for (i, op) in ops.iter().enumerate() {
        if i == setup_op || ev[op.invoke].f != F::Read {
            continue;
        }
        let Some(v) = completion_value(ev, op, OpOutcome::Ok) else {
            continue;
        };
        // Summed in place: a long history holds millions of reads, so no vector per read.
        let list = v.get("balances").and_then(Value::as_list);
        let Some(list) = list.filter(|l| l.iter().all(|b| b.as_i64().is_some())) else {
            // Not a read this checker can judge: saying so is honest, calling it lost money is not.
            uninterpretable.get_or_insert((op, v));
            continue;
        };
        checked += 1;
        let balance = |b: &Value| b.as_i64().expect("checked above");
        let sum: i64 = list.iter().map(balance).sum();
        if sum == total && list.len() == initial.len() && list.iter().all(|b| balance(b) >= 0) {
            continue;
        }
        let balances: Vec<i64> = list.iter().map(balance).collect();
        if sum != total || balances.len() != initial.len() {
            verdict.push(Anomaly {
                name: WRONG_TOTAL.into(),
                message: format!(
                    "read completing at event {} sums to {sum} over {} accounts; the ledger holds {total} over {}",
                    ev[op.completion.expect("ok")].index,
                    balances.len(),
                    initial.len()
                ),
                events: op_events(ev, op),
                expected: json!({ "total": total }),
                observed: json!({ "total": sum, "balances": balances }),
            });
        }
        for (account, &b) in balances.iter().enumerate() {
            if b < 0 {
                verdict.push(Anomaly {
                    name: NEGATIVE_BALANCE.into(),
                    message: format!(
                        "read completing at event {} shows account {account} at {b}",
                        ev[op.completion.expect("ok")].index
                    ),
                    events: op_events(ev, op),
                    expected: json!({ "account": account, "balance": ">= 0" }),
                    observed: json!({ "account": account, "balance": b }),
                });
            }
        }
    }
    if let Some((op, v)) = uninterpretable {
        let c = op.completion.expect("ok ops are completed");
        verdict.set_unknown(format!(
            "cannot interpret the read completing at event {} ({}): expected balances, as {{\"balances\": [10, 20]}}, \
             {{0 10, 1 20}} (account → balance) or {{:balances {{0 10, 1 20}} :transfers #{{1 2 5}}}}, found {}",
            ev[c].index,
            located(&ev[c]),
            shorten(&v.to_string(), 120)
        ));
    }
    checked
}

/// Where an event is in its file: verity's JSONL holds event `i` on line `i + 1`; an EDN history
/// names it by `:index`, or by its position when it has none.
fn located(e: &Event) -> String {
    format!(
        "line {} of verity's JSONL, `:index {}` in EDN",
        e.index + 1,
        e.index
    )
}

fn shorten(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

/// The journal checks: what the final read says was applied against what clients were told.
struct LedgerCheck<'a> {
    ev: &'a [Event],
    ops: &'a [Op],
    initial: &'a [i64],
    final_op: &'a Op,
    final_balances: &'a [i64],
}

impl LedgerCheck<'_> {
    fn run(&self, applied: &[i64], verdict: &mut Verdict) {
        let ev = self.ev;
        // Every transfer that was requested, by id (the first request wins if a client reused an id).
        let transfers: Vec<(&Op, Transfer)> = self
            .ops
            .iter()
            .filter_map(|op| match (&ev[op.invoke].f, &ev[op.invoke].value) {
                (F::Transfer, Value::Transfer(t)) => Some((op, *t)),
                _ => None,
            })
            .collect();
        let mut requested: FxHashMap<u64, (&Op, Transfer)> = FxHashMap::default();
        requested.reserve(transfers.len());
        for &(op, t) in &transfers {
            requested.entry(t.id).or_insert((op, t));
        }
        let mut times_applied: FxHashMap<u64, u64> = FxHashMap::default();
        times_applied.reserve(applied.len());
        let mut balances = self.initial.to_vec();
        let final_events = op_events(ev, self.final_op);
        for &id in applied {
            let Ok(id) = u64::try_from(id) else {
                self.phantom(id, &final_events, verdict);
                continue;
            };
            let n = times_applied.entry(id).or_insert(0);
            *n += 1;
            let Some((op, t)) = requested.get(&id) else {
                if *n == 1 {
                    self.phantom(id as i64, &final_events, verdict);
                }
                continue;
            };
            apply(&mut balances, t);
            if *n == 2 {
                verdict.push(Anomaly {
                    name: DUPLICATE_TRANSFER.into(),
                    message: format!("transfer {id} appears more than once in the final journal"),
                    events: [op_events(ev, op), final_events.clone()].concat(),
                    expected: json!({ "id": id, "times_applied": 1 }),
                    observed: json!({ "id": id, "times_applied": applied.iter().filter(|&&a| a == id as i64).count() }),
                });
            }
            if *n == 1 && op.outcome == OpOutcome::Fail {
                verdict.push(Anomaly {
                    name: FAILED_TRANSFER_APPLIED.into(),
                    message: format!(
                        "transfer {id} was reported failed ({}) but the final journal holds it",
                        self.error_of(op)
                    ),
                    events: [op_events(ev, op), final_events.clone()].concat(),
                    expected: json!({ "id": id, "applied": false }),
                    observed: json!({ "id": id, "applied": true }),
                });
            }
        }
        let mut info_committed = 0u64;
        let mut info_total = 0u64;
        let mut outcomes: BTreeMap<&str, u64> = BTreeMap::new();
        for &(op, t) in &transfers {
            let id = &t.id;
            if !std::ptr::eq(requested[id].0, op) {
                continue; // a reused id: judged by its first request
            }
            let was_applied = times_applied.contains_key(id);
            *outcomes.entry(outcome_name(op.outcome)).or_insert(0) += 1;
            match op.outcome {
                OpOutcome::Ok if !was_applied => verdict.push(Anomaly {
                    name: LOST_TRANSFER.into(),
                    message: format!(
                        "transfer {id} was acknowledged but the final journal does not hold it"
                    ),
                    events: [op_events(ev, op), final_events.clone()].concat(),
                    expected: json!({ "id": id, "applied": true }),
                    observed: json!({ "id": id, "applied": false }),
                }),
                OpOutcome::Info | OpOutcome::Pending => {
                    info_total += 1;
                    info_committed += u64::from(was_applied);
                }
                _ => {}
            }
        }
        if balances.as_slice() != self.final_balances {
            let differing: Vec<_> = (0..balances.len().max(self.final_balances.len()))
                .filter(|&a| balances.get(a) != self.final_balances.get(a))
                .map(|a| json!({ "account": a, "expected": balances.get(a), "observed": self.final_balances.get(a) }))
                .collect();
            verdict.push(Anomaly {
                name: BALANCE_MISMATCH.into(),
                message: format!(
                    "the final balances differ from a replay of the final journal on {} account(s)",
                    differing.len()
                ),
                events: final_events.clone(),
                expected: json!({ "balances": balances }),
                observed: json!({ "balances": self.final_balances, "accounts": differing }),
            });
        }
        verdict.detail("transfers", &outcomes);
        verdict.detail("applied", applied.len());
        verdict.detail(
            "info_transfers",
            json!({ "total": info_total, "committed": info_committed, "not_committed": info_total - info_committed }),
        );
    }

    fn phantom(&self, id: i64, final_events: &[u64], verdict: &mut Verdict) {
        verdict.push(Anomaly {
            name: PHANTOM_TRANSFER.into(),
            message: format!("the final journal holds transfer {id}, which no client requested"),
            events: final_events.to_vec(),
            expected: serde_json::Value::Null,
            observed: json!({ "id": id }),
        });
    }

    fn error_of(&self, op: &Op) -> String {
        op.completion
            .and_then(|c| self.ev[c].error.clone())
            .unwrap_or_else(|| "no reason given".into())
    }
}

fn apply(balances: &mut [i64], t: &Transfer) {
    if let Some(b) = balances.get_mut(t.from as usize) {
        *b -= t.amount;
    }
    if let Some(b) = balances.get_mut(t.to as usize) {
        *b += t.amount;
    }
}

fn outcome_name(o: OpOutcome) -> &'static str {
    match o {
        OpOutcome::Ok => "ok",
        OpOutcome::Fail => "fail",
        OpOutcome::Info => "info",
        OpOutcome::Pending => "pending",
    }
}
