//! Two runs side by side: verdicts, anomaly counts, operation counts, throughput and latency, each
//! with the difference `b − a`, so that "what changed between these two runs" is one table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::catalog::{RunDetail, RunSummary, Stats};
use super::{latency_quantiles, Quantiles};
use crate::store;

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: RunSummary,
    pub b: RunSummary,
    pub anomalies: Vec<AnomalyRow>,
    pub stats: Vec<StatRow>,
    pub latency: Vec<LatencyRow>,
    /// Why a part of the comparison is missing (no history yet, a malformed one).
    pub notes: Vec<String>,
}

/// How often one checker found one anomaly in each run. A name two checkers both report is two
/// rows, so nothing is counted twice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyRow {
    pub checker: String,
    pub anomaly: String,
    pub a: u64,
    pub b: u64,
    pub diff: i64,
}

/// An operation count or the throughput; `None` for a run without results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatRow {
    pub name: &'static str,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub diff: Option<f64>,
}

/// One latency quantile of one operation type, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyRow {
    pub f: String,
    pub quantile: &'static str,
    pub a_ms: Option<f64>,
    pub b_ms: Option<f64>,
    pub diff_ms: Option<f64>,
}

/// Compares two loaded runs; `a_dir` and `b_dir` are their directories (for the histories).
pub fn compare(a: RunDetail, a_dir: &Path, b: RunDetail, b_dir: &Path) -> Comparison {
    let mut notes = Vec::new();
    let a_latency = latency_of("a", a_dir, &mut notes);
    let b_latency = latency_of("b", b_dir, &mut notes);
    Comparison {
        anomalies: anomaly_rows(&a, &b),
        stats: stat_rows(a.stats.as_ref(), b.stats.as_ref()),
        latency: latency_rows(&a_latency, &b_latency),
        a: a.summary,
        b: b.summary,
        notes,
    }
}

fn latency_of(side: &str, dir: &Path, notes: &mut Vec<String>) -> BTreeMap<String, Quantiles> {
    let Some(history) = store::history_file(dir) else {
        notes.push(format!("run {side} has no {}", store::HISTORY_FILE));
        return BTreeMap::new();
    };
    latency_quantiles(&history).unwrap_or_else(|e| {
        notes.push(format!("run {side}: no latency: {e:#}"));
        BTreeMap::new()
    })
}

fn anomaly_rows(a: &RunDetail, b: &RunDetail) -> Vec<AnomalyRow> {
    let count = |r: &RunDetail, checker: &str, anomaly: &str| {
        r.checkers
            .get(checker)
            .and_then(|c| c.anomaly_counts.get(anomaly))
            .copied()
            .unwrap_or(0)
    };
    let keys: BTreeSet<(&String, &String)> = [a, b]
        .iter()
        .flat_map(|r| r.checkers.iter())
        .flat_map(|(checker, c)| c.anomaly_counts.keys().map(move |n| (checker, n)))
        .collect();
    keys.into_iter()
        .map(|(checker, anomaly)| {
            let (ca, cb) = (count(a, checker, anomaly), count(b, checker, anomaly));
            AnomalyRow {
                checker: checker.clone(),
                anomaly: anomaly.clone(),
                a: ca,
                b: cb,
                diff: cb as i64 - ca as i64,
            }
        })
        .collect()
}

/// Reads one figure of a run's stats.
type StatOf = fn(&Stats) -> f64;

fn stat_rows(a: Option<&Stats>, b: Option<&Stats>) -> Vec<StatRow> {
    let fields: [(&'static str, StatOf); 5] = [
        ("ops", |s| s.ops as f64),
        ("ok", |s| s.ok as f64),
        ("fail", |s| s.fail as f64),
        ("info", |s| s.info as f64),
        ("ops_per_s", |s| s.ops_per_s),
    ];
    fields
        .into_iter()
        .map(|(name, get)| {
            let (va, vb) = (a.map(get), b.map(get));
            StatRow {
                name,
                a: va,
                b: vb,
                diff: difference(va, vb),
            }
        })
        .collect()
}

fn latency_rows(
    a: &BTreeMap<String, Quantiles>,
    b: &BTreeMap<String, Quantiles>,
) -> Vec<LatencyRow> {
    let fs: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut rows = Vec::new();
    for f in fs {
        for (i, quantile) in ["p50", "p95", "p99"].into_iter().enumerate() {
            let ms = |q: &Quantiles| round3(q.named()[i].1 as f64 / 1e6);
            let (va, vb) = (a.get(f).map(ms), b.get(f).map(ms));
            rows.push(LatencyRow {
                f: f.clone(),
                quantile,
                a_ms: va,
                b_ms: vb,
                diff_ms: difference(va, vb),
            });
        }
    }
    rows
}

fn difference(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(round3(b? - a?))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_b_minus_a_and_need_both_sides() {
        assert_eq!(difference(Some(1.0), Some(3.5)), Some(2.5));
        assert_eq!(difference(Some(3.0), Some(1.0)), Some(-2.0));
        assert_eq!(difference(None, Some(1.0)), None);
        let rows = stat_rows(
            Some(&Stats {
                ops: 10,
                ops_per_s: 5.0,
                ..Stats::default()
            }),
            None,
        );
        assert_eq!(rows[0].a, Some(10.0));
        assert_eq!(rows[0].diff, None);
    }

    #[test]
    fn latency_rows_cover_every_operation_of_either_run() {
        let q = |ns| Quantiles {
            count: 1,
            p50_ns: ns,
            p95_ns: ns,
            p99_ns: ns,
            max_ns: ns,
        };
        let a = BTreeMap::from([("read".to_string(), q(1_000_000))]);
        let b = BTreeMap::from([
            ("read".to_string(), q(3_500_000)),
            ("transfer".to_string(), q(2_000_000)),
        ]);
        let rows = latency_rows(&a, &b);
        assert_eq!(rows.len(), 6);
        assert_eq!(
            (rows[0].a_ms, rows[0].b_ms, rows[0].diff_ms),
            (Some(1.0), Some(3.5), Some(2.5))
        );
        assert_eq!((rows[3].f.as_str(), rows[3].a_ms), ("transfer", None));
    }
}
