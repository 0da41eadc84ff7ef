//! Golden histories with known verdicts: Knossos's own cas-register histories and the bank histories
//! in `tests/data` (see its README for where they come from). How long each takes is measured, not
//! asserted: see docs/benchmarks.md.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use verity_checkers::linearizable::{checker_for, summary_lines, LinearizableOptions};
use verity_checkers::{Budget, Validity};
use verity_history::edn::read_edn;
use verity_history::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
}

/// Rows of a manifest.tsv as maps from column name to value.
fn manifest(path: &PathBuf) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("manifest readable");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split('\t').map(str::to_string))
                .collect()
        })
        .collect()
}

fn check_file(
    path: &PathBuf,
    model: &str,
    initial: Option<Value>,
) -> (verity_checkers::Verdict, Duration) {
    let history = read_edn(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let checker = checker_for(
        model,
        &LinearizableOptions {
            initial,
            ..Default::default()
        },
    )
    .expect("known model");
    let start = Instant::now();
    let verdict = checker.check(&history, &Budget::with_time_limit(Duration::from_secs(10)));
    (verdict, start.elapsed())
}

#[test]
fn knossos_histories_get_their_verdicts() {
    let dir = data_dir().join("knossos");
    let rows = manifest(&dir.join("manifest.tsv"));
    assert!(
        rows.len() >= 30,
        "expected the Knossos corpus, found {} rows",
        rows.len()
    );
    for row in rows {
        let path = dir.join(&row["path"]);
        let initial = match row["initial_state"].as_str() {
            "nil" => Value::Null,
            s => Value::Int(s.parse().expect("integer initial state")),
        };
        let (verdict, _) = check_file(&path, &row["model"], Some(initial));
        let expected = if row["expected"] == "valid" {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        assert_eq!(
            verdict.valid,
            expected,
            "{}: {:#?}",
            row["path"],
            summary_lines(&verdict)
        );
    }
}

#[test]
fn rethink_fail_minimal_names_the_read_of_3() {
    let dir = data_dir().join("knossos/cas-register/bad");
    for initial in [Value::Int(0), Value::Null] {
        let (verdict, _) = check_file(
            &dir.join("rethink-fail-minimal.edn"),
            "cas-register",
            Some(initial),
        );
        assert_eq!(verdict.valid, Validity::Invalid);
        let cx = &verdict.details["counterexample"];
        assert_eq!(cx["op"]["op"], "read → 3", "{cx:#}");
        assert_eq!(cx["op"]["process"], 1);
        assert_eq!(cx["op"]["completion_index"], 4);
    }
}

#[test]
fn cas_failure_names_the_read_by_process_70() {
    let path = data_dir().join("knossos/cas-register/bad/cas-failure.edn");
    let (verdict, _) = check_file(&path, "cas-register", Some(Value::Int(0)));
    assert_eq!(verdict.valid, Validity::Invalid);
    let cx = &verdict.details["counterexample"];
    assert_eq!(cx["op"]["process"], 70, "{:#?}", summary_lines(&verdict));
    assert_eq!(cx["op"]["op"], "read → 0");
}

#[test]
fn bank_histories_get_their_verdicts() {
    let dir = data_dir().join("bank");
    for row in manifest(&dir.join("manifest.tsv")) {
        let (verdict, _) = check_file(&dir.join(&row["file"]), "bank", None);
        let expected = if row["expected_linearizable"] == "valid" {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        assert_eq!(
            verdict.valid,
            expected,
            "{}: {:#?}",
            row["file"],
            summary_lines(&verdict)
        );
    }
}

#[test]
fn stale_read_names_the_read_completing_at_130() {
    let path = data_dir().join("bank/stale-read-small.edn");
    let (verdict, _) = check_file(&path, "bank", None);
    let cx = &verdict.details["counterexample"];
    assert_eq!(
        cx["op"]["completion_index"],
        130,
        "{:#?}",
        summary_lines(&verdict)
    );
    let lines = summary_lines(&verdict);
    assert!(lines[0].contains("NOT linearizable"));
}

/// The terminal summary of a small violation, word for word (the stats line aside).
#[test]
fn the_summary_of_rethink_fail_minimal_reads_well() {
    let path = data_dir().join("knossos/cas-register/bad/rethink-fail-minimal.edn");
    let (verdict, _) = check_file(&path, "cas-register", Some(Value::Int(0)));
    let lines = summary_lines(&verdict);
    let expected = [
        "NOT linearizable",
        "  cannot linearize: process 1 read → 3 [ok] (events 2–4)",
        "  concurrent with it (1):",
        "    process 2 write 4 [ok] (events 3–5)",
        "  longest linearizable prefix: 2 operations:",
        "    process 0 write 0 [ok] (events 0–1)  ⇒ 0",
        "    process 2 write 4 [ok] (events 3–5)  ⇒ 4",
        "  model states where it was due (none allows it): 4 | 0",
    ];
    assert_eq!(&lines[..expected.len()], &expected[..]);
    assert!(lines[expected.len()].starts_with("  search: "));
    assert_eq!(
        verdict.anomalies[0].message,
        "read → 3 by process 1 (events 2–4) cannot be linearized: where it was due, the cas-register \
         was 4 or 0, and no order of the 1 concurrent operations helps; the longest linearizable \
         prefix holds 2 of 4 operations"
    );
    let json = serde_json::to_value(&verdict).expect("serializes");
    assert_eq!(json["valid"], false);
    assert_eq!(
        json["anomalies"][0]["events"],
        serde_json::json!([2, 3, 4, 5])
    );
}
