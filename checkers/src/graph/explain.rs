//! A cycle's proof in words: one sentence per edge saying why one transaction must precede the next,
//! ending in the contradiction.
//!
//! Elle's explanations (its `explain-pair-data` / `explain-cycle`) are the model: a reader who trusts
//! nothing but the history can check each step. The evidence for an edge is re-derived here from the
//! inference rather than stored with every edge, because only the few edges on reported cycles are
//! ever explained.

use super::cycles::Cycle;
use super::infer::{external_reads, Inference, PROCESS, REALTIME, RW, WR, WW};
use super::txn::{DataKind, Mop, ReadValue};

/// One step of a proof.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    pub from: String,
    pub to: String,
    pub kind: &'static str,
    /// Short label for drawings (`ww 3`, `rw 3`).
    pub label: String,
    pub because: String,
}

/// The steps of a cycle's proof.
pub fn steps(inf: &Inference<'_>, cycle: &Cycle) -> Vec<Step> {
    let n = cycle.len();
    (0..n)
        .map(|i| {
            let (a, kind) = cycle[i];
            let b = cycle[(i + 1) % n].0;
            let (label, because) = why(inf, a, b, kind);
            Step {
                from: inf.name(a),
                to: inf.name(b),
                kind: super::infer::kind_name(kind),
                label,
                because,
            }
        })
        .collect()
}

/// The whole proof as a paragraph.
pub fn explain(inf: &Inference<'_>, name: &str, cycle: &Cycle) -> String {
    let steps = steps(inf, cycle);
    let mut s = format!("{name} cycle of {} transactions: ", steps.len());
    for st in &steps {
        s.push_str(&format!("{} < {} because {}. ", st.from, st.to, st.because));
    }
    let first = steps.first().map_or(String::new(), |s| s.from.clone());
    s.push_str(&format!(
        "So {first} must come before itself: no order of these transactions explains what they observed."
    ));
    s
}

/// How a write is called in this history's data type.
fn write_noun(inf: &Inference<'_>) -> (&'static str, &'static str) {
    match inf.kind {
        DataKind::ListAppend => ("appended", "append"),
        DataKind::RwRegister => ("wrote", "write"),
    }
}

/// (label, reason) for the edge a → b of `kind`.
fn why(inf: &Inference<'_>, a: u32, b: u32, kind: u8) -> (String, String) {
    let (na, nb) = (inf.name(a), inf.name(b));
    let ta = &inf.store.txns[a as usize];
    let tb = &inf.store.txns[b as usize];
    let (verb, noun) = write_noun(inf);
    match kind {
        WW => match ww_evidence(inf, a, b) {
            Some((k, va, vb)) => (
                format!("ww {k}"),
                format!(
                    "{nb} {verb} {vb} to key {k} directly after {na}'s {va} in the version order"
                ),
            ),
            None => ("ww".into(), format!("{nb} overwrote a write of {na}")),
        },
        WR => match wr_evidence(inf, a, b) {
            Some((k, v)) => (
                format!("wr {k}"),
                format!("{nb} read key {k} and saw {na}'s {noun} of {v}"),
            ),
            None => ("wr".into(), format!("{nb} read a write of {na}")),
        },
        RW => match rw_evidence(inf, a, b) {
            Some((k, v)) => (
                format!("rw {k}"),
                format!(
                    "{na} read key {k} without {nb}'s {noun} of {v}, the version that came next"
                ),
            ),
            None => (
                "rw".into(),
                format!("{na} read a version that {nb} overwrote"),
            ),
        },
        PROCESS => (
            "process".into(),
            format!("process {} ran {na} before {nb}", ta.process),
        ),
        REALTIME => (
            "realtime".into(),
            format!(
                "{na} completed (event {}) before {nb} was invoked (event {})",
                ta.completion().map_or(0, |_| ta.completion_index),
                tb.invoke_index
            ),
        ),
        _ => ("?".into(), "of an edge of unknown kind".into()),
    }
}

fn ww_evidence(inf: &Inference<'_>, a: u32, b: u32) -> Option<(i64, i64, i64)> {
    for m in inf.store.mops(b) {
        let (Mop::Append { key, value } | Mop::Write { key, value }) = m else {
            continue;
        };
        match inf.kind {
            DataKind::ListAppend => {
                let (order, _) = inf.orders.get(&key)?;
                let p = order.iter().position(|e| e == value)?;
                if p == 0 {
                    continue;
                }
                let prev = order.get(p - 1);
                if inf.writers.get(&(key, prev)).is_some_and(|w| w.txn == a) {
                    return Some((key, prev, value));
                }
            }
            DataKind::RwRegister => {
                for (k, v) in external_reads(inf.store, b) {
                    if let (true, ReadValue::Int(x)) = (k == key, v) {
                        if inf.writers.get(&(k, x)).is_some_and(|w| w.txn == a) {
                            return Some((key, x, value));
                        }
                    }
                }
            }
        }
    }
    None
}

fn wr_evidence(inf: &Inference<'_>, a: u32, b: u32) -> Option<(i64, i64)> {
    for (k, v) in external_reads(inf.store, b) {
        let last = match v {
            ReadValue::Int(x) => Some(x),
            ReadValue::List(_) => v.list().and_then(|l| l.last()),
            ReadValue::Nil => None,
        };
        if let Some(x) = last {
            if inf.writers.get(&(k, x)).is_some_and(|w| w.txn == a) {
                return Some((k, x));
            }
        }
    }
    None
}

fn rw_evidence(inf: &Inference<'_>, a: u32, b: u32) -> Option<(i64, i64)> {
    for (k, v) in external_reads(inf.store, a) {
        match inf.kind {
            DataKind::ListAppend => {
                let Some(l) = v.list() else { continue };
                let Some((order, _)) = inf.orders.get(&k) else {
                    continue;
                };
                if l.len() < order.len() {
                    let next = order.get(l.len());
                    if inf.writers.get(&(k, next)).is_some_and(|w| w.txn == b) {
                        return Some((k, next));
                    }
                } else {
                    // b's committed append that no read observed.
                    for m in inf.store.mops(b) {
                        if let Mop::Append { key, value } = m {
                            if key == k && !order.iter().any(|e| e == value) {
                                return Some((k, value));
                            }
                        }
                    }
                }
            }
            DataKind::RwRegister => {
                for m in inf.store.mops(b) {
                    if let Mop::Write { key, value } = m {
                        if key == k {
                            return Some((k, value));
                        }
                    }
                }
            }
        }
    }
    None
}
