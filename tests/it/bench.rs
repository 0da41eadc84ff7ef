//! `verity bench --checkers` at a tiny scale (the table has every kind, in both formats, with sane
//! numbers and the verdicts the generated histories are known to have — no timing assertions), and
//! `verity export --format adya` (the JSON lines adya reads: every transaction, nothing else).

use std::path::Path;

use crate::support::{run, verity};

/// Every kind the benchmark generates, with the verdict a correct checker must give it.
const KINDS: &[(&str, &str)] = &[
    ("cas-100k-5", "valid"),
    ("cas-10k-20", "valid"),
    ("bank-100k-5", "valid"),
    ("bank-100k-5-info1", "valid"),
    ("bank-5000ev-10-info5", "valid"),
    ("jepsen-bank-1", "valid"),
    ("jepsen-bank-2", "valid"),
    ("jepsen-bank-3", "valid"),
    ("list-append-100k", "valid"),
    ("list-append-100k-si", "invalid: G2-item"),
    ("list-append-1m", "valid"),
];

/// The cells of the table row of `kind` in `format`.
fn row<'a>(table: &'a str, kind: &str, format: &str) -> Vec<&'a str> {
    let marker = format!("`{kind}` | {format} |");
    let lines: Vec<&str> = table.lines().filter(|l| l.contains(&marker)).collect();
    assert_eq!(lines.len(), 1, "one {format} row of {kind} in:\n{table}");
    lines[0]
        .trim_matches('|')
        .split(" | ")
        .map(str::trim)
        .collect()
}

/// The leading number of a cell such as `0.01 s (0.01 – 0.02)` or `16 MiB`.
fn number(cell: &str) -> f64 {
    cell.split_whitespace()
        .next()
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("{cell:?} starts with a number"))
}

#[test]
fn a_tiny_checkers_benchmark_reports_every_kind_in_both_formats() {
    let out = verity()
        .args([
            "bench",
            "--checkers",
            "--scale",
            "0.001",
            "--repeat",
            "2",
            "--no-adya",
        ])
        .output()
        .expect("verity runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("### Checkers at their limits"));
    assert!(stdout.contains("adya was not run"), "--no-adya is said");
    for (kind, verdict) in KINDS {
        for format in ["JSONL", "EDN"] {
            // history | format | events | verdict | time | peak RSS | events/s | runs | Porcupine | goal
            let cells = row(&stdout, kind, format);
            assert_eq!(cells.len(), 10, "{kind} {format}: {cells:?}");
            assert!(number(cells[2]) >= 20.0, "{kind}: events {}", cells[2]);
            if verdict.starts_with("invalid") {
                // A recorded history's interleaving is not fixed: write skew must be named first,
                // its process or real-time variants may follow, nothing SI forbids may appear.
                assert!(
                    cells[3].starts_with(verdict),
                    "{kind} {format}: {}",
                    cells[3]
                );
                for forbidden in ["G0", "G1", "G-single"] {
                    assert!(
                        !cells[3].contains(forbidden),
                        "{kind} {format}: {}",
                        cells[3]
                    );
                }
            } else {
                assert_eq!(cells[3], *verdict, "{kind} {format}");
            }
            assert!(number(cells[4]) > 0.0, "{kind}: time {}", cells[4]);
            assert!(
                cells[4].ends_with(')'),
                "two runs give a range: {}",
                cells[4]
            );
            assert!(number(cells[5]) >= 1.0, "{kind}: peak RSS {}", cells[5]);
            assert!(cells[5].contains("MiB"));
            assert!(number(cells[6]) > 0.0, "{kind}: events/s {}", cells[6]);
            assert_eq!(cells[7], "2", "{kind}: runs");
        }
    }
    let porcupine = row(&stdout, "cas-10k-20", "JSONL");
    assert_eq!(porcupine[8], "19.4 s, 4.8 GB", "the issue's figure, quoted");
}

#[test]
fn the_checkers_benchmark_runs_only_what_only_names_and_rejects_unknown_names() {
    let out = verity()
        .args([
            "bench",
            "--checkers",
            "--scale",
            "0.001",
            "--repeat",
            "1",
            "--no-adya",
            "--formats",
            "edn",
            "--only",
            "cas-10k-20,jepsen-bank",
        ])
        .output()
        .expect("verity runs");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains("` | EDN |")).collect();
    assert_eq!(
        rows.len(),
        4,
        "cas-10k-20 and the three Jepsen files:\n{stdout}"
    );
    assert!(!stdout.contains("| JSONL |"));

    let bad = verity()
        .args(["bench", "--checkers", "--only", "bank-1m"])
        .output()
        .expect("verity runs");
    assert_eq!(bad.status.code(), Some(254));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bank-1m") && stderr.contains("list-append-100k-si"));

    let stray = verity()
        .args(["bench", "--scale", "0.1"])
        .output()
        .expect("verity runs");
    assert_eq!(stray.status.code(), Some(254), "--scale needs --checkers");
}

fn lines_of(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("file exists")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

#[test]
fn export_for_adya_writes_every_transaction_as_elle_json_and_nothing_else() {
    let r = run(&[
        "--workload",
        "ledger-append",
        "--time-limit",
        "1s",
        "--seed",
        "5",
        "--compress=false",
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("h.jsonl");
    let export = verity()
        .args(["export", "--format", "adya"])
        .arg(r.latest())
        .arg("-o")
        .arg(&out)
        .output()
        .expect("verity runs");
    assert_eq!(export.status.code(), Some(0));

    let history = lines_of(&r.latest().join("history.jsonl"));
    let txns: Vec<&serde_json::Value> = history.iter().filter(|e| e["f"] == "txn").collect();
    let exported = lines_of(&out);
    assert!(
        history.iter().any(|e| e["f"] == "setup"),
        "the run has a setup op"
    );
    assert!(txns.len() > 10);
    assert_eq!(exported.len(), txns.len(), "one line per transaction event");
    for (e, x) in txns.iter().zip(&exported) {
        assert_eq!(x["index"], e["index"]);
        assert_eq!(x["type"], e["type"]);
        assert_eq!(x["f"], "txn");
        assert_eq!(x["process"], e["process"]);
        assert_eq!(x["time"], e["time_ns"], "Elle's `time`");
        assert_eq!(x["value"], e["value"], "micro-ops as [f k v]");
        assert!(x.get("time_ns").is_none());
    }
    let completed = exported.iter().find(|x| x["type"] == "ok").expect("an ok");
    let mop = &completed["value"][0];
    assert!(mop[0] == "r" || mop[0] == "append", "{mop}");

    // A bank history has no transactions: bad input, one line.
    let bank = run(&["--time-limit", "1s", "--seed", "5"]);
    let refused = verity()
        .args(["export", "--format", "adya"])
        .arg(bank.latest())
        .output()
        .expect("verity runs");
    assert_eq!(refused.status.code(), Some(254));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("no transactions"), "{stderr}");
}
