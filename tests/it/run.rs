//! Whole runs against the memory target: the verdict, the run directory, re-checking, bug knobs, and
//! a run killed with SIGKILL.

use std::time::{Duration, Instant};

use crate::support::{anomaly_types, fast_memory_run, results_of, run, verity, wait_for_run_file};

#[test]
fn a_correct_run_is_valid_and_recheck_reproduces_results_byte_for_byte() {
    let r = run(&["--time-limit", "2s", "--seed", "7"]);
    assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
    let dir = r.latest();
    for f in [
        "history.jsonl",
        "results.json",
        "run.json",
        "verity.log",
        "junit.xml",
        "perf.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing from the run directory");
    }
    let results = r.results();
    assert_eq!(results["valid"], true);
    assert_eq!(results["seed"], 7);
    assert!(results["stats"]["ops"].as_u64().unwrap() > 100);
    assert!(r.stdout().contains("reproduce:") && r.stdout().contains("--seed 7"));
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("testcase name=\"conservation\"") && junit.contains("failures=\"0\""),
        "{junit}"
    );

    let before = std::fs::read(dir.join("results.json")).unwrap();
    let out = verity().arg("check").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        before,
        std::fs::read(dir.join("results.json")).unwrap(),
        "re-check changed results.json"
    );
}

/// `--json` puts the results document, and nothing else, on stdout (the summary goes to stderr) for
/// `run` and `check`; `--junit FILE` writes the verdict as JUnit XML there.
#[test]
fn json_and_junit_output_are_machine_readable() {
    let junit_dir = tempfile::tempdir().expect("temp dir");
    let junit = junit_dir.path().join("verity.xml");
    let r = run(&[
        "--bug",
        "lose-acked",
        "--time-limit",
        "1s",
        "--seed",
        "3",
        "--json",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    let doc: serde_json::Value =
        serde_json::from_str(&r.stdout()).expect("stdout is one JSON document");
    assert_eq!(doc, r.results(), "stdout is results.json");
    assert!(anomaly_types(&doc).iter().any(|a| a == "lost-transfer"));
    assert!(
        r.stderr().contains("reproduce:"),
        "the summary goes to stderr"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file is written");
    assert!(
        xml.contains("testcase name=\"conservation\"") && xml.contains("lost-transfer"),
        "{xml}"
    );

    let out = verity()
        .args(["check", "--json"])
        .arg(r.latest())
        .output()
        .expect("verity check runs");
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("check's stdout is one JSON document");
    assert_eq!(doc["valid"], false);

    // A folder of histories has no single results document to print.
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bank/valid-small.edn"),
        junit_dir.path().join("valid-small.edn"),
    )
    .expect("copy a history");
    let out = verity()
        .args(["check", "--json"])
        .arg(junit_dir.path())
        .output()
        .expect("verity check runs");
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--json"));
}

/// Each knob must be caught by its own anomaly name (a few seeds here; `scripts/bug-matrix` runs ten).
#[test]
fn every_bug_knob_is_caught_by_its_anomaly() {
    let cases = [
        ("lost-update", "wrong-total"),
        ("overdraft", "negative-balance"),
        ("lose-acked", "lost-transfer"),
        ("duplicate-retry", "duplicate-transfer"),
        ("stale-read", "nonlinearizable"),
    ];
    for (bug, anomaly) in cases {
        for seed in ["1", "2"] {
            let r = run(&["--bug", bug, "--time-limit", "3s", "--seed", seed]);
            assert_eq!(r.code(), 1, "--bug {bug} --seed {seed}: {}", r.stdout());
            let found = anomaly_types(&r.results());
            assert!(
                found.iter().any(|a| a == anomaly),
                "--bug {bug} --seed {seed}: found {found:?}"
            );
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_operations() {
    let ops = |r: &crate::support::Run| -> Vec<String> {
        let text = std::fs::read_to_string(r.latest().join("history.jsonl")).unwrap();
        let mut per_process: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| e["type"] == "invoke" && e["f"] == "transfer" && e["process"] == 3)
            .map(|e| e["value"].to_string())
            .collect();
        per_process.truncate(50);
        per_process
    };
    let a = run(&["--time-limit", "1s", "--seed", "11"]);
    let b = run(&["--time-limit", "1s", "--seed", "11"]);
    let c = run(&["--time-limit", "1s", "--seed", "12"]);
    assert!(ops(&a).len() >= 20);
    assert_eq!(ops(&a), ops(&b));
    assert_ne!(ops(&a), ops(&c));
}

#[test]
fn a_killed_run_leaves_a_history_that_check_reads() {
    let store = tempfile::tempdir().unwrap();
    let mut child = fast_memory_run(store.path(), "60s", &["--compress=false"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the history to grow past a few megabytes, then SIGKILL mid-write.
    let history = wait_for_run_file(store.path(), "history.jsonl", 4 << 20).join("history.jsonl");
    child.kill().unwrap();
    child.wait().unwrap();
    let dir = history.parent().unwrap();
    let out = verity().arg("check").arg(dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // No final read: the verdict must be unknown, never valid, and never a crash.
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = results_of(dir);
    assert_eq!(results["valid"], "unknown");
    let text = std::fs::read(&history).unwrap();
    if !text.ends_with(b"\n") {
        assert!(
            results["history"]["torn_tail"].is_object(),
            "a torn last line must be reported"
        );
        assert!(stdout.contains("torn last line"));
    }
}

/// The transactional isolation knobs of the memory target, judged by the graph checker.
#[test]
fn isolation_knobs_are_caught_by_the_graph_checker() {
    let cases = [
        ("read-committed", "G-single"),
        ("snapshot-isolation", "G2-item"),
        ("dirty-read", "G1a"),
    ];
    for (bug, anomaly) in cases {
        let r = run(&[
            "--workload",
            "ledger-append",
            "--bug",
            bug,
            "--time-limit",
            "3s",
            "--seed",
            "3",
        ]);
        assert_eq!(r.code(), 1, "--bug {bug}: {}", r.stdout());
        let found = anomaly_types(&r.results());
        assert!(
            found.iter().any(|a| a == anomaly),
            "--bug {bug}: found {found:?}"
        );
        let graphs = r.latest().join("graph");
        assert!(
            graphs.join("explanations.txt").is_file(),
            "--bug {bug}: no explanations written"
        );
    }
    let r = run(&[
        "--workload",
        "ledger-append",
        "--time-limit",
        "3s",
        "--seed",
        "3",
    ]);
    assert_eq!(r.code(), 0, "a correct transactional store: {}", r.stdout());
}

/// The cluster serves the transactional workloads under faults: a safe cluster is judged strict
/// serializable by the graph checker and its replicas' stores converge.
#[test]
fn a_safe_cluster_under_faults_is_strict_serializable_for_both_transactional_workloads() {
    for workload in ["ledger-append", "rw-register"] {
        let r = crate::support::run_any(&[
            "--workload",
            workload,
            "--nemesis",
            "partition,pause,kill",
            "--nemesis-interval",
            "1s",
            "--time-limit",
            "4s",
            "--recovery",
            "2s",
            "--seed",
            "5",
        ]);
        assert_eq!(r.code(), 0, "{workload}: {}\n{}", r.stdout(), r.stderr());
        let results = r.results();
        let graph = &results["checkers"]["graph"];
        assert_eq!(graph["valid"], true, "{workload}: {graph}");
        let models = graph["details"]["satisfied"].to_string();
        assert!(
            models.contains("strict-serializable"),
            "{workload}: {graph}"
        );
        assert_eq!(results["checkers"]["convergence"]["valid"], true);
        let history = std::fs::read_to_string(r.latest().join("history.jsonl")).unwrap();
        assert!(
            history
                .lines()
                .any(|l| l.contains("node-state") && l.contains("\"store\"")),
            "{workload}: the replicas' stores are recorded"
        );
        assert!(
            ["\"kill\"", "\"pause\"", "\"start-partition\""]
                .iter()
                .any(|f| history.contains(&format!("\"f\":{f}"))),
            "{workload}: faults ran"
        );
    }
}

/// Ctrl-C during a fault: the run heals (every paused node resumed, every link passing), still reads,
/// checks and exits with a verdict, and leaves no node process behind.
#[test]
fn an_interrupted_cluster_run_heals_and_leaves_nothing_running() {
    let store = tempfile::tempdir().unwrap();
    let mut child = verity()
        .args([
            "run",
            "--time-limit",
            "60s",
            "--nemesis",
            "pause",
            "--nemesis-interval",
            "1s",
            "--quiet",
        ])
        .args(["--seed", "5", "--store"])
        .arg(store.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let history_of = || -> Option<std::path::PathBuf> {
        let dir = std::fs::read_dir(store.path().join("cluster-bank"))
            .ok()?
            .next()?
            .ok()?
            .path();
        Some(dir.join("history.jsonl"))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let history = loop {
        if let Some(h) = history_of() {
            if std::fs::read_to_string(&h)
                .unwrap_or_default()
                .contains("\"f\":\"pause\"")
            {
                break h;
            }
        }
        assert!(Instant::now() < deadline, "no pause fault within a minute");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first fault"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the interrupted run did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        matches!(status.code(), Some(0..=2)),
        "an interrupted run still ends with a verdict: {status:?}"
    );
    let text = std::fs::read_to_string(&history).unwrap();
    let pause = text.find("\"f\":\"pause\"").unwrap();
    assert!(
        text[pause..].contains("\"f\":\"heal\""),
        "no heal after the pause"
    );
    assert!(
        text.contains("\"f\":\"node-state\""),
        "replica states were not read after the heal"
    );
    // No node of this run is left, stopped or otherwise.
    let run_dir = history.parent().unwrap().to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(
            !cmdline.contains(&run_dir),
            "a node outlived its run: {cmdline}"
        );
    }
}

/// `--replay` runs a stored run again with its seed and options (from run.json, or from its
/// `command` for runs that predate `args`), says what differs from the recording, compares the
/// verdicts, and refuses options that would be silently dropped.
#[test]
fn replay_reruns_the_stored_options_and_says_what_differs() {
    let r = run(&["--bug", "lose-acked", "--time-limit", "1s", "--seed", "11"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    let original = std::fs::canonicalize(r.latest()).unwrap();
    let meta = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
    };
    let recorded = meta(&original);
    assert_eq!(recorded["seed"], 11);
    assert!(recorded["args"].as_array().is_some_and(|a| !a.is_empty()));

    let replay = |dir: &std::path::Path, extra: &[&str]| {
        verity()
            .arg("run")
            .arg("--replay")
            .arg(dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = replay(&original, &["--quiet"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("same verity version"),
        "nothing differs, and the replay says so: {stderr}"
    );
    let again = std::fs::canonicalize(r.latest()).unwrap();
    assert_ne!(again, original, "the replay is a run directory of its own");
    let replayed = meta(&again);
    for field in ["args", "command", "seed", "target", "workload", "bugs"] {
        assert_eq!(
            replayed[field], recorded[field],
            "{field} differs in the replay"
        );
    }
    let verdict = results_of(&again);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let expected = format!(
        "replay of {}: INVALID [{}]",
        original.display(),
        anomaly_types(&verdict).join(", ")
    );
    assert!(stdout.contains(&expected), "{expected:?} in {stdout}");

    // An older run.json without `args`, recorded by another version on another machine.
    let mut old = recorded.clone();
    let obj = old.as_object_mut().unwrap();
    obj.remove("args");
    obj.insert("verity_version".into(), "0.0.1".into());
    obj.insert(
        "host".into(),
        serde_json::json!({"os": "linux", "arch": "riscv64", "cpus": 96}),
    );
    std::fs::write(original.join("run.json"), old.to_string()).unwrap();
    let out = replay(&original, &["--quiet"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("recorded by verity 0.0.1"), "{stderr}");
    assert!(stderr.contains("riscv64 with 96 cpus"), "{stderr}");
    let replayed = meta(&std::fs::canonicalize(r.latest()).unwrap());
    assert_eq!(
        replayed["args"], recorded["args"],
        "the command was split back"
    );

    for extra in [&["--seed", "3"][..], &["--bug", "stale-read"][..]] {
        let out = replay(&original, extra);
        assert_eq!(out.status.code(), Some(254), "{extra:?} beside --replay");
    }
    let not_a_run = tempfile::tempdir().unwrap();
    assert_eq!(replay(not_a_run.path(), &[]).status.code(), Some(254));
}

/// results.json holds nothing of where or when it was checked: a run directory copied elsewhere
/// and checked there gives the same bytes.
#[test]
fn a_copied_run_rechecks_to_the_same_bytes_elsewhere() {
    let r = run(&[
        "--workload",
        "ledger-append",
        "--time-limit",
        "1s",
        "--seed",
        "5",
    ]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let dir = std::fs::canonicalize(r.latest()).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("copied-run");
    std::fs::create_dir(&copy).unwrap();
    // What the run wrote for itself; the verdicts, report and logs are written again by the check.
    for f in ["history.jsonl", "history.chain", "run.json"] {
        std::fs::copy(dir.join(f), copy.join(f)).unwrap();
    }
    let out = verity()
        .arg("check")
        .arg("copied-run")
        .current_dir(elsewhere.path())
        .env("TZ", "Pacific/Kiritimati")
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read(dir.join("results.json")).unwrap(),
        std::fs::read(copy.join("results.json")).unwrap()
    );
}
