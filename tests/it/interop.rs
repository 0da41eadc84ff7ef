//! Jepsen interop, both ways: `verity export --format edn` and `verity check --format edn`.
//!
//! The round trip — export to EDN, check the EDN — must give the verdict, the anomaly types and the
//! anomaly counts of checking the original, on every history of tests/data and on runs of every
//! workload, valid and with a bug knob that makes the anomaly certain. Then the reader's cases:
//! Elle ops without `:process`, the journal shape of a bank final read, odd nemesis ops, times and
//! indices, uninterpretable reads (unknown, never an anomaly), and malformed files (exit 254).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{run, verity};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// `verity check --json` of a file or run directory: exit code and the results document.
fn check_json(path: &Path, extra: &[&str]) -> (i32, Value) {
    let out = verity()
        .arg("check")
        .arg(path)
        .arg("--json")
        .args(extra)
        .output()
        .expect("verity runs");
    let code = out.status.code().expect("exited");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: exit {code}, no results document ({e}): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, doc)
}

fn export(path: &Path, out: &Path) {
    let o = verity()
        .args(["export", "--format", "edn"])
        .arg(path)
        .arg("-o")
        .arg(out)
        .output()
        .expect("verity runs");
    assert_eq!(
        o.status.code(),
        Some(0),
        "export of {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// What a round trip must keep: the verdict, the anomaly types, and each checker's verdict and
/// anomaly counts.
fn judged(doc: &Value) -> Value {
    let checkers: serde_json::Map<String, Value> = doc["checkers"]
        .as_object()
        .expect("checkers")
        .iter()
        .map(|(name, v)| {
            (
                name.clone(),
                serde_json::json!({ "valid": v["valid"], "anomaly_counts": v["anomaly_counts"] }),
            )
        })
        .collect();
    serde_json::json!({
        "valid": doc["valid"],
        "anomaly_types": doc["anomaly_types"],
        "checkers": checkers,
    })
}

fn edn_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("test data folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            edn_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "edn") {
            out.push(path);
        }
    }
}

#[test]
fn round_trip_keeps_the_verdict_of_every_history_in_the_test_data() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    edn_files(Path::new(DATA), &mut files);
    files.sort();
    assert!(files.len() >= 39, "{files:?}");
    let (mut invalid, mut valid) = (0, 0);
    for (i, file) in files.iter().enumerate() {
        // Knossos's registers are judged by the cas-register model; the rest by the plan their
        // operations call for.
        let extra: &[&str] = if file.to_string_lossy().contains("/knossos/") {
            &["--model", "cas-register"]
        } else {
            &[]
        };
        let (code, original) = check_json(file, extra);
        let exported = tmp.path().join(format!("{i}.edn"));
        export(file, &exported);
        let (code_back, back) = check_json(&exported, extra);
        assert_eq!(
            judged(&back),
            judged(&original),
            "{}: the exported history is judged differently",
            file.display()
        );
        assert_eq!(code_back, code, "{}", file.display());
        match code {
            0 => valid += 1,
            1 => invalid += 1,
            other => panic!("{}: exit {other}", file.display()),
        }
    }
    // The corpus holds both kinds, so the comparison can fail either way.
    assert!(
        valid >= 30 && invalid >= 6,
        "valid {valid}, invalid {invalid}"
    );
}

/// Runs a workload on the memory target (or the given target), exports the run and checks the
/// export; the export must be judged as the run was. Returns the run's anomaly types.
fn round_trip_run(args: &[&str]) -> Vec<String> {
    let r = run(args);
    let dir = r.latest();
    assert!(
        matches!(r.code(), 0 | 1),
        "{args:?}: exit {}\n{}",
        r.code(),
        r.stderr()
    );
    let (_, original) = check_json(&dir, &[]);
    let exported = r.store.path().join("history.edn");
    export(&dir, &exported);
    let (_, back) = check_json(&exported, &[]);
    assert_eq!(
        judged(&back),
        judged(&original),
        "{args:?}: the export is judged differently"
    );
    assert_eq!(
        judged(&original),
        judged(&r.results()),
        "{args:?}: a re-check differs from the run"
    );
    crate::support::anomaly_types(&original)
}

#[test]
fn round_trip_keeps_the_verdict_of_every_workload_valid_and_with_a_bug() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("bank", None, ""),
        ("bank", Some("lost-update"), "wrong-total"),
        ("bank", Some("duplicate-retry"), "duplicate-transfer"),
        ("bank", Some("lose-acked"), "lost-transfer"),
        ("bank", Some("overdraft"), "negative-balance"),
        ("bank", Some("stale-read"), "nonlinearizable"),
        ("ledger-append", None, ""),
        ("ledger-append", Some("read-committed"), "G-single"),
        ("ledger-append", Some("dirty-read"), "G1a"),
        ("rw-register", None, ""),
        ("rw-register", Some("snapshot-isolation"), "G2-item"),
        ("rw-register", Some("dirty-read"), "G1b"),
    ];
    for &(workload, bug, expected) in cases {
        let mut args = vec![
            "--workload",
            workload,
            "--seed",
            "7",
            "--time-limit",
            "1s",
            "--concurrency",
            "8",
        ];
        if let Some(bug) = bug {
            args.extend(["--bug", bug]);
        }
        let types = round_trip_run(&args);
        if expected.is_empty() {
            assert!(types.is_empty(), "{workload} without a bug: {types:?}");
        } else {
            assert!(
                types.iter().any(|t| t == expected),
                "{workload} with {bug:?} must show {expected}: {types:?}"
            );
        }
    }
}

#[test]
fn round_trip_keeps_nemesis_events_and_replica_states_of_a_cluster_run() {
    let r = crate::support::run_any(&[
        "--target",
        "cluster",
        "--workload",
        "bank",
        "--seed",
        "3",
        "--time-limit",
        "2s",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "1s",
        "--recovery",
        "1s",
    ]);
    assert!(matches!(r.code(), 0 | 1), "{}", r.stderr());
    let dir = r.latest();
    let exported = r.store.path().join("history.edn");
    export(&dir, &exported);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains(":process :nemesis"), "nemesis ops exported");
    assert!(text.contains(":f :node-state"), "replica states exported");
    let (_, original) = check_json(&dir, &[]);
    let (_, back) = check_json(&exported, &[]);
    assert_eq!(judged(&back), judged(&original));
    assert!(back["checkers"]["convergence"].is_object(), "{back:#}");
}

#[test]
fn export_writes_jepsen_op_maps_to_stdout_or_a_file() {
    let r = run(&["--workload", "bank", "--seed", "2", "--time-limit", "1s"]);
    let dir = r.latest();
    let out = verity()
        .args(["export", "--format", "edn"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let file = r.store.path().join("h.edn");
    export(&dir, &file);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stdout);
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert_eq!(stdout.lines().count(), history.lines().count());
    let transfer = stdout.lines().find(|l| l.contains(":f :transfer")).unwrap();
    assert!(
        transfer.starts_with("{:type :invoke, :f :transfer, :value {:id ")
            && transfer.contains(", :time ")
            && transfer.contains(", :process ")
            && transfer.contains(", :index "),
        "{transfer}"
    );
    let final_read = stdout
        .lines()
        .rev()
        .find(|l| l.contains(":final? true"))
        .unwrap();
    assert!(
        final_read.contains(":value {:balances {0 ") && final_read.contains(":transfers #{"),
        "{final_read}"
    );
    // Plain reads for Jepsen's bank checker: every read is account → balance.
    let plain = verity()
        .args(["export", "--format", "edn", "--plain-bank-reads"])
        .arg(&dir)
        .output()
        .unwrap();
    let plain = String::from_utf8(plain.stdout).unwrap();
    assert!(!plain.contains(":transfers"));
    assert!(plain
        .lines()
        .rev()
        .find(|l| l.contains(":final? true"))
        .unwrap()
        .contains(":value {0 "));
}

#[test]
fn export_of_a_missing_or_malformed_history_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let out = verity()
        .args(["export", "--format", "edn"])
        .arg(tmp.path().join("nope.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let bad = tmp.path().join("bad.edn");
    std::fs::write(&bad, "{:type :invoke, :f :read, :process 0}\n{:type :ok :f").unwrap();
    let out = verity()
        .args(["export", "--format", "edn"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("expected"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

// ---- What Jepsen writes, read by `verity check --format edn` ----------------------------------

fn check_text(text: &str) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("history");
    std::fs::write(&path, text).unwrap();
    let out = verity()
        .arg("check")
        .arg(&path)
        .args(["--format", "edn"])
        .output()
        .unwrap();
    (
        out.status.code().expect("exited"),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn an_elle_history_without_process_is_paired_and_says_process_order_was_unavailable() {
    let path = format!("{DATA}/jepsen/list-append-no-process.edn");
    let (code, doc) = check_json(Path::new(&path), &["--format", "edn"]);
    assert_eq!(code, 1);
    assert_eq!(
        doc["anomaly_types"],
        serde_json::json!(["G-single-realtime"])
    );
    let note = doc["checkers"]["graph"]["details"]["process-order"]
        .as_str()
        .unwrap();
    assert!(note.starts_with("unavailable"), "{note}");
    let (_, summary) = check_text(&std::fs::read_to_string(&path).unwrap());
    assert!(summary.contains("process order: unavailable"), "{summary}");
}

#[test]
fn regression_a_final_read_with_balances_and_transfers_is_not_wrong_total() {
    let path = format!("{DATA}/jepsen/bank-journal-final-read.edn");
    let (code, doc) = check_json(Path::new(&path), &["--format", "edn"]);
    assert_eq!(code, 0, "{doc:#}");
    let c = &doc["checkers"]["conservation"];
    assert_eq!(c["valid"], true);
    assert_eq!(c["details"]["applied"], 2);
    assert_eq!(c["details"]["info_transfers"]["committed"], 1);
}

#[test]
fn jepsen_plain_bank_reads_and_odd_nemesis_ops_times_and_indices_are_read() {
    let path = format!("{DATA}/jepsen/bank-nemesis-odd-values.edn");
    let (code, doc) = check_json(Path::new(&path), &["--format", "edn"]);
    assert_eq!(code, 0, "{doc:#}");
    // The first read gives the initial balances; the other two are checked against its total.
    let details = &doc["checkers"]["conservation"]["details"];
    assert_eq!(
        (&details["reads_checked"], &details["total"]),
        (&2.into(), &20.into())
    );
    assert_eq!(doc["stats"]["nemesis_events"], 5);
    // The report draws these times without tripping over them.
    let tmp = tempfile::tempdir().unwrap();
    let out = verity()
        .arg("report")
        .arg(&path)
        .arg("-o")
        .arg(tmp.path().join("r.html"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_read_the_checker_cannot_interpret_is_unknown_with_where_and_what_was_expected() {
    let text = "{:type :invoke, :f :read, :value nil, :process 0, :index 0}\n\
        {:type :ok, :f :read, :value {0 10, 1 10}, :process 0, :index 1}\n\
        {:type :invoke, :f :read, :value nil, :process 0, :index 2}\n\
        {:type :ok, :f :read, :value {:balances {0 10, 1 10} :transfers #{:x}}, :process 0, :index 3}\n\
        {:type :invoke, :f :read, :value nil, :process 1, :index 4, :final? true}\n\
        {:type :ok, :f :read, :value {0 10, 1 10}, :process 1, :index 5, :final? true}\n";
    let (code, out) = check_text(text);
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains("wrong-total"), "{out}");
    assert!(
        out.contains("event 3") && out.contains(":index 3") && out.contains("expected balances"),
        "{out}"
    );
}

#[test]
fn a_malformed_edn_history_is_bad_input_naming_the_line() {
    let deep = format!(
        "{{:type :invoke, :f :read, :process 0, :value {}{}}}",
        "[".repeat(70),
        "]".repeat(70)
    );
    for (text, line) in [
        (
            "{:type :invoke, :f :read, :process 0}\n{:type :bogus, :f :read, :process 0}\n",
            "line 2",
        ),
        (
            "[{:type :invoke, :f :read, :process 0}\n {:type :ok, :f :read, :process -1}]",
            "line 2",
        ),
        (deep.as_str(), "line 1"),
        ("{:type :ok, :f :write, :value 1}\n", "line 1"),
    ] {
        let (code, out) = check_text(text);
        assert_eq!(code, 254, "{text}: {out}");
        assert!(
            out.contains(line) && out.contains("expected"),
            "{text}: {out}"
        );
    }
}
