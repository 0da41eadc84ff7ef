//! `verity check FILE --checker graph`, and `verity check FILE` on a history of transactions (whose
//! default plan is the graph checker alone), take the streaming path (the file straight into the
//! graph checker's compact store), a JSONL file and an EDN one (`verity export --format edn`)
//! alike; their results must be those of the general path, which a run directory still takes (the
//! run's own check, and `verity check RUN_DIR`), and which an EDN file the EDN stream steps aside
//! at takes too. Which path ran is read from the line `verity check` writes on stderr with
//! `VERITY_LOG=info`.

use std::path::Path;

use crate::support::{run, verity};

const STREAMED: &str = "streamed into the graph checker's store";
const STEPPED_ASIDE: &str = "the EDN stream stepped aside";

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
        let dir = r.latest();
        let history = dir.join("history.jsonl.zst");
        let edn = dir.join("history.edn");
        let export = verity()
            .args(["export", "--format", "edn", "--out"])
            .arg(&edn)
            .arg(&history)
            .output()
            .expect("verity runs");
        assert!(export.status.success(), "{export:?}");
        // The same EDN with a character literal under a key no checker reads, in its last op: the
        // generic reader reads it, the fast one (and so the EDN stream) steps aside there.
        let odd = dir.join("odd.edn");
        let mut text = std::fs::read_to_string(&edn).unwrap();
        let last = text.trim_end().rfind("\n{").expect("ops on several lines") + 2;
        text.insert_str(last, ":note \\x, ");
        std::fs::write(&odd, text).unwrap();
        let cases: [(&Path, bool, &str, &str); 5] = [
            (&history, true, STREAMED, "format=\"jsonl\""),
            (&history, false, STREAMED, "format=\"jsonl\""),
            (&edn, true, STREAMED, "format=\"edn\""),
            (&edn, false, STREAMED, "format=\"edn\""),
            (&odd, false, STEPPED_ASIDE, ""),
        ];
        for (file, checker, path_taken, format) in cases {
            let mut check = verity();
            check
                .env("VERITY_LOG", "info")
                .args(["check", "--json"])
                .arg(file);
            if checker {
                check.args(["--checker", "graph"]);
            }
            let out = check.output().expect("verity runs");
            let case = format!("{bug:?}, {}, --checker graph: {checker}", file.display());
            let stderr = String::from_utf8_lossy(&out.stderr);
            let line = stderr.lines().find(|l| l.contains(path_taken));
            assert!(
                line.is_some_and(|l| l.contains(format)),
                "{case}: expected a line {path_taken:?} with {format:?} on stderr:\n{stderr}"
            );
            if path_taken == STEPPED_ASIDE {
                assert!(!stderr.contains(STREAMED), "{case}: {stderr}");
            }
            let got: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("the results document");
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
