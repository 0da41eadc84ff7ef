//! `--target exec`: the Python adapter over SQLite that ships in examples/exec is judged valid on
//! bank and ledger-append on three seeds each, and every way an adapter can misbehave — a hang past
//! `--op-timeout`, an exit, half a line, a reply to another request, fields of the wrong type —
//! ends operations as `info`/`fail` with the reason in results.json, never a hang or a crash.

use std::time::{Duration, Instant};

use crate::support::{results_of, verity};

const ADAPTER: &str = concat!(
    "python3 ",
    env!("CARGO_MANIFEST_DIR"),
    "/examples/exec/sqlite_ledger.py"
);

fn run(store: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = verity()
        .args(["run", "--quiet", "--target", "exec", "--store"])
        .arg(store)
        .args(args)
        .output()
        .expect("verity runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_sqlite_adapter_is_valid_on_bank_and_ledger_append() {
    let store = tempfile::tempdir().expect("temp dir");
    for workload in ["bank", "ledger-append"] {
        for seed in ["1", "2", "3"] {
            let (code, out, err) = run(
                store.path(),
                &[
                    "--cmd",
                    ADAPTER,
                    "--workload",
                    workload,
                    "--time-limit",
                    "3s",
                    "--seed",
                    seed,
                ],
            );
            assert_eq!(code, 0, "{workload} seed {seed}:\n{out}\n{err}");
            // How many operations a 3 s run gets depends on the machine; what must hold on any
            // machine is that every kind of operation was answered.
            let results = results_of(&store.path().join("latest"));
            let by_f = results["stats"]["by_f"].as_object().expect("stats.by_f");
            let kinds = if workload == "bank" {
                &["transfer", "read"][..]
            } else {
                &["txn"][..]
            };
            for kind in kinds {
                let ok = by_f.get(*kind).and_then(|f| f["ok"].as_u64()).unwrap_or(0);
                assert!(
                    ok > 0,
                    "{workload} seed {seed}: no {kind} answered ok\n{out}"
                );
            }
        }
    }
}

#[test]
fn a_misbehaving_adapter_costs_operations_never_the_run() {
    let store = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("hang", "no answer within 500ms"),
        ("exit", "exited without answering (exit status: 3)"),
        ("truncated", "a reply that is not JSON"),
        ("wrong-id", "when 25 was asked"),
        ("wrong-type", "a reply whose type is not a string"),
    ];
    for (mode, reason) in cases {
        let cmd = format!("{ADAPTER} --misbehave {mode} --every 25");
        let started = Instant::now();
        let (code, out, err) = run(
            store.path(),
            &[
                "--cmd",
                &cmd,
                "--time-limit",
                "3s",
                "--op-timeout",
                "500ms",
                "--seed",
                "1",
            ],
        );
        // The adapter applies what it was asked before it misbehaves, so its ledger is correct:
        // every lost answer is `info` (resolved by the final read) or a failed read.
        assert_eq!(code, 0, "--misbehave {mode}:\n{out}\n{err}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "--misbehave {mode} took {:?}",
            started.elapsed()
        );
        let results = results_of(&store.path().join("latest"));
        let errors = results["stats"]["errors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let hit = errors.iter().any(|e| {
            e["reason"].as_str().is_some_and(|r| r.contains(reason))
                && matches!(e["type"].as_str(), Some("info" | "fail"))
        });
        assert!(hit, "--misbehave {mode}: no {reason:?} among {errors:?}");
        assert!(
            out.contains(reason),
            "--misbehave {mode}: the summary does not say why\n{out}"
        );
    }
}

#[test]
fn an_adapter_that_does_not_serve_the_workload_or_is_not_there_is_bad_input() {
    let store = tempfile::tempdir().expect("temp dir");
    let bank_only = r#"python3 -c 'import sys, json; sys.stdin.readline(); print(json.dumps({"hello": {"name": "b", "workloads": ["bank"]}}), flush=True)'"#;
    let (code, _, err) = run(
        store.path(),
        &["--cmd", bank_only, "--workload", "ledger-append"],
    );
    assert_eq!(code, 254, "{err}");
    assert!(
        err.contains("does not serve workload ledger-append"),
        "{err}"
    );
    let (code, _, err) = run(store.path(), &["--cmd", "no-such-adapter-anywhere"]);
    assert_eq!(code, 254, "{err}");
    let (code, _, err) = run(store.path(), &[]);
    assert_eq!(code, 254, "{err}");
    assert!(err.contains("--cmd"), "{err}");
}
