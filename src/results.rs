//! results.json: the verdict of a run, a pure function of its history and its metadata.
//!
//! Nothing here reads a clock or the machine, so `verity check` of a stored run rewrites the file
//! byte for byte. The fields follow the design: `valid`, `anomaly_types` (sorted, unique), `seed`,
//! `command`, `stats`, the history's size and hash-chain head, and one verdict per checker.

use std::collections::BTreeMap;

use serde::Serialize;
use verity_checkers::{Validity, Verdict};
use verity_history::{EventType, History, Process, TornTail};

use crate::store::RunMeta;

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub valid: Validity,
    pub anomaly_types: Vec<String>,
    pub seed: Option<u64>,
    pub command: Option<String>,
    pub target: Option<String>,
    pub workload: Option<String>,
    pub bugs: Vec<String>,
    pub stats: Stats,
    /// Every fault and heal, in order (replica state reads excluded).
    pub nemesis: Vec<NemesisEvent>,
    pub history: HistoryInfo,
    pub checkers: BTreeMap<String, Verdict>,
    /// How long each checker took, in seconds: for the report, never in results.json (which is
    /// the same on every machine).
    #[serde(skip)]
    pub check_seconds: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Client operations (invocations), setup and final reads included.
    pub ops: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Invoked but never completed (the run was cut short).
    pub pending: u64,
    pub duration_s: f64,
    pub ops_per_s: f64,
    /// The same counts per operation.
    pub by_f: BTreeMap<String, Counts>,
    pub nemesis_events: u64,
    /// The most frequent reasons given by `fail` and `info` completions, most frequent first (at
    /// most [`ERROR_REASONS_MAX`]): what went wrong with the target, in its own words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorReason>,
}

/// How many distinct failure reasons results.json keeps.
pub const ERROR_REASONS_MAX: usize = 10;
/// Reasons are cut to this many characters (so ids and values in them do not flood the list).
const ERROR_REASON_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReason {
    pub reason: String,
    /// `fail` or `info`.
    #[serde(rename = "type")]
    pub kind: String,
    pub count: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub pending: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NemesisEvent {
    pub index: u64,
    pub time_s: f64,
    pub f: String,
    pub value: verity_history::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The nemesis events of a history, without the replica state reads (which are data, not faults).
pub fn nemesis_events(history: &History) -> Vec<NemesisEvent> {
    history
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.f.as_str() != "node-state")
        .map(|e| NemesisEvent {
            index: e.index,
            time_s: round3(e.time_ns as f64 / 1e9),
            f: e.f.to_string(),
            value: e.value.clone(),
            error: e.error.clone(),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryInfo {
    pub events: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torn_tail: Option<TornTail>,
    /// The hash chain's head as the run's sidecar records it (absent for a history without one):
    /// what `verity verify` compares the history with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainInfo>,
}

/// The end of a history's hash chain (docs/integrity.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ChainInfo {
    /// Lines the chain covers.
    pub lines: u64,
    /// SHA-256 head after the last of them, in hex.
    pub head: String,
}

impl From<verity_history::chain::Chain> for ChainInfo {
    fn from(c: verity_history::chain::Chain) -> Self {
        ChainInfo {
            lines: c.lines,
            head: c.head_hex(),
        }
    }
}

/// Counts operations by outcome, from the raw events (so that even a malformed history gets stats).
pub fn stats(history: &History) -> Stats {
    let mut s = Stats::default();
    let mut open: rustc_hash::FxHashMap<u64, &verity_history::F> = Default::default();
    let mut by_f: BTreeMap<&verity_history::F, Counts> = BTreeMap::new();
    let mut reasons: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    for e in &history.events {
        let Process::Client(p) = e.process else {
            s.nemesis_events += 1;
            continue;
        };
        if e.kind == EventType::Invoke {
            s.ops += 1;
            open.insert(p, &e.f);
            continue;
        }
        let f = open.remove(&p).unwrap_or(&e.f);
        if let (Some(err), EventType::Fail | EventType::Info) = (&e.error, e.kind) {
            let reason: String = err.chars().take(ERROR_REASON_CHARS).collect();
            *reasons.entry((reason, e.kind.as_str())).or_default() += 1;
        }
        let c = by_f.entry(f).or_default();
        match e.kind {
            EventType::Ok => (s.ok += 1, c.ok += 1),
            EventType::Fail => (s.fail += 1, c.fail += 1),
            EventType::Info => (s.info += 1, c.info += 1),
            EventType::Invoke => unreachable!("handled above"),
        };
    }
    for f in open.into_values() {
        s.pending += 1;
        by_f.entry(f).or_default().pending += 1;
    }
    s.by_f = by_f.into_iter().map(|(f, c)| (f.to_string(), c)).collect();
    let mut reasons: Vec<ErrorReason> = reasons
        .into_iter()
        .map(|((reason, kind), count)| ErrorReason {
            reason,
            kind: kind.to_string(),
            count,
        })
        .collect();
    // Most frequent first; ties in name order, so the file is the same on every check.
    reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    reasons.truncate(ERROR_REASONS_MAX);
    s.errors = reasons;
    let first = history.events.first().map_or(0, |e| e.time_ns);
    let last = history.events.iter().map(|e| e.time_ns).max().unwrap_or(0);
    let nanos = last.saturating_sub(first);
    s.duration_s = round3(nanos as f64 / 1e9);
    s.ops_per_s = if nanos == 0 {
        0.0
    } else {
        round3(s.ops as f64 / (nanos as f64 / 1e9))
    };
    s
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn build(
    history: &History,
    meta: Option<&RunMeta>,
    checkers: BTreeMap<String, Verdict>,
) -> Results {
    let valid = checkers
        .values()
        .fold(Validity::Valid, |acc, v| acc.merge(v.valid));
    let mut anomaly_types: Vec<String> =
        checkers.values().flat_map(Verdict::anomaly_types).collect();
    anomaly_types.sort();
    anomaly_types.dedup();
    Results {
        valid,
        anomaly_types,
        seed: meta.map(|m| m.seed),
        command: meta.map(|m| m.command.clone()),
        target: meta.map(|m| m.target.clone()),
        workload: meta.map(|m| m.workload.clone()),
        bugs: meta.map(|m| m.bugs.clone()).unwrap_or_default(),
        stats: stats(history),
        nemesis: nemesis_events(history),
        history: HistoryInfo {
            events: history.events.len() as u64,
            torn_tail: history.torn_tail,
            chain: None,
        },
        checkers,
        check_seconds: BTreeMap::new(),
    }
}
