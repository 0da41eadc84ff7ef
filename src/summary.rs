//! The terminal summary printed at the end of a run or a check: one table of checkers and their
//! anomalies, one of operation counts, the first examples of each anomaly in words, and the verdict.

use std::fmt::Write;

use tabled::settings::Style;
use tabled::{Table, Tabled};

use crate::results::Results;

#[derive(Tabled)]
struct CheckerRow {
    checker: String,
    verdict: String,
    anomalies: String,
}

#[derive(Tabled)]
struct OpRow {
    op: String,
    ok: u64,
    fail: u64,
    info: u64,
    pending: u64,
}

/// How many failure reasons are printed.
const ERRORS_PRINTED: usize = 5;
/// How many anomaly examples are printed per checker.
const EXAMPLES_PRINTED: usize = 5;

pub fn render(results: &Results) -> String {
    let mut out = String::new();
    let rows: Vec<CheckerRow> = results
        .checkers
        .iter()
        .map(|(name, v)| CheckerRow {
            checker: name.clone(),
            verdict: v.valid.as_str().to_string(),
            anomalies: if v.anomaly_counts.is_empty() {
                v.cause.clone().unwrap_or_else(|| "-".into())
            } else {
                v.anomaly_counts
                    .iter()
                    .map(|(n, c)| format!("{n} ×{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
        .collect();
    let _ = writeln!(out, "{}", Table::new(rows).with(Style::rounded()));

    let mut ops: Vec<OpRow> = results
        .stats
        .by_f
        .iter()
        .map(|(f, c)| OpRow {
            op: f.clone(),
            ok: c.ok,
            fail: c.fail,
            info: c.info,
            pending: c.pending,
        })
        .collect();
    let s = &results.stats;
    ops.push(OpRow {
        op: "all".into(),
        ok: s.ok,
        fail: s.fail,
        info: s.info,
        pending: s.pending,
    });
    let _ = writeln!(out, "{}", Table::new(ops).with(Style::rounded()));
    let _ = writeln!(
        out,
        "{} ops in {:.1}s ({:.0} ops/s), {} history events{}",
        s.ops,
        s.duration_s,
        s.ops_per_s,
        results.history.events,
        match results.history.torn_tail {
            Some(t) => format!("; torn last line {} ({} bytes) ignored", t.line, t.bytes),
            None => String::new(),
        }
    );
    if let Some(c) = &results.history.chain {
        // Published here (a CI log, a terminal) the head is what no later rewrite of the run
        // directory can match: `verity verify` compares against it.
        let _ = writeln!(out, "history chain: {} lines, head {}", c.lines, c.head);
    }
    if !s.errors.is_empty() {
        let _ = writeln!(
            out,
            "why operations failed or ended unknown (most frequent first):"
        );
        for e in s.errors.iter().take(ERRORS_PRINTED) {
            let _ = writeln!(out, "  {:>7} × {:<4} {}", e.count, e.kind, e.reason);
        }
    }
    if !results.nemesis.is_empty() {
        let _ = writeln!(out, "faults:");
        for n in &results.nemesis {
            let value = if n.value.is_null() {
                String::new()
            } else {
                format!(" {}", n.value)
            };
            let error = n
                .error
                .as_ref()
                .map(|e| format!(" (error: {e})"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {:>7.2}s  {}{value}{error}", n.time_s, n.f);
        }
    }
    for (name, v) in &results.checkers {
        for a in v.anomalies.iter().take(EXAMPLES_PRINTED) {
            let _ = writeln!(out, "  {name}: {}: {}", a.name, a.message);
        }
        let shown = v.anomalies.len().min(EXAMPLES_PRINTED) as u64;
        let total: u64 = v.anomaly_counts.values().sum();
        if total > shown {
            let _ = writeln!(
                out,
                "  {name}: … and {} more (see results.json)",
                total - shown
            );
        }
        for line in verity_checkers::registry::explain(name, v) {
            let _ = writeln!(out, "  {name}: {line}");
        }
    }
    let verdict = match results.valid {
        verity_checkers::Validity::Valid => "VALID".to_string(),
        verity_checkers::Validity::Invalid => {
            format!("INVALID: {}", results.anomaly_types.join(", "))
        }
        verity_checkers::Validity::Unknown => "UNKNOWN: the checkers could not decide".to_string(),
    };
    let _ = writeln!(out, "\n{verdict}");
    out
}
