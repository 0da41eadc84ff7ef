//! `verity check FILE --checker graph`, and `verity check FILE` on a history of transactions (whose
//! default plan is the graph checker alone), take the streaming path (the file straight into the
//! graph checker's compact store); their results must be those of the general path, which a run
//! directory still takes (the run's own check, and `verity check RUN_DIR`) and an EDN file too.

use crate::support::{run, verity};

#[test]
fn checking_a_history_file_with_the_graph_checker_alone_gives_the_run_dirs_results() {
    for bug in [None, Some("snapshot-isolation"), Some("dirty-read")] {
        let mut args = vec![
            "--workload",
            "ledger-append",
            "--rate",
            "0",
            "--ops",
            "3000",
        ];
        args.extend(["--seed", "5", "--checker", "graph", "--compress=true"]);
        if let Some(b) = bug {
            args.extend(["--bug", b]);
        }
        let r = run(&args);
        let expected = r.results();
        let history = r.latest().join("history.jsonl.zst");
        let edn = r.latest().join("history.edn");
        let export = verity()
            .args(["export", "--format", "edn", "--out"])
            .arg(&edn)
            .arg(&history)
            .output()
            .expect("verity runs");
        assert!(export.status.success(), "{export:?}");
        for (file, checker) in [(&history, true), (&history, false), (&edn, false)] {
            let mut check = verity();
            check.args(["check", "--json"]).arg(file);
            if checker {
                check.args(["--checker", "graph"]);
            }
            let out = check.output().expect("verity runs");
            let got: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("the results document");
            let case = format!("{bug:?}, {}, --checker graph: {checker}", file.display());
            assert_eq!(out.status.code(), r.output.status.code(), "{case}");
            for field in ["valid", "anomaly_types", "stats", "nemesis", "checkers"] {
                assert_eq!(got[field], expected[field], "{case}: {field}");
            }
            assert_eq!(got["history"]["events"], expected["history"]["events"]);
            if bug.is_some() {
                assert_eq!(out.status.code(), Some(1), "{case}: the bug is caught");
            }
        }
    }
}
