//! `verity test-all` on small suites of the memory target (and the HTTP target against `verity
//! serve-ledger`): the exit code follows the expectations, the JUnit XML has the structure CI systems
//! require, the JSON document parses and agrees with the run directories, a malformed suite is
//! refused at its line and column, and a budget too small for a scenario skips it.

use std::path::Path;
use std::process::Output;

use quick_xml::events::Event;

use crate::support::{results_of, verity};

/// One element of an XML document: its name, attributes, text and children.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn count_attr(&self, name: &str) -> usize {
        self.attr(name)
            .unwrap_or_else(|| panic!("<{}> has no {name} attribute", self.name))
            .parse()
            .unwrap_or_else(|e| panic!("<{}> {name} is not a count: {e}", self.name))
    }

    fn children(&self, name: &str) -> Vec<&Element> {
        self.children.iter().filter(|c| c.name == name).collect()
    }
}

fn element_of(e: &quick_xml::events::BytesStart) -> Element {
    Element {
        name: String::from_utf8(e.local_name().as_ref().to_vec()).expect("names are UTF-8"),
        attributes: e
            .attributes()
            .map(|a| {
                let a = a.expect("a well-formed attribute");
                (
                    String::from_utf8(a.key.local_name().as_ref().to_vec()).expect("UTF-8"),
                    a.unescape_value().expect("an escaped value").into_owned(),
                )
            })
            .collect(),
        ..Element::default()
    }
}

/// Parses XML into its root element with a general XML reader (not the library that wrote it).
fn parse_xml(xml: &str) -> Element {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(element_of(&e)),
            Event::Empty(e) => {
                let el = element_of(&e);
                stack.last_mut().expect("a parent").children.push(el);
            }
            Event::End(_) => {
                let el = stack.pop().expect("an open element");
                stack.last_mut().expect("a parent").children.push(el);
            }
            Event::Text(t) => {
                let text = t.decode().expect("UTF-8 text");
                let text = quick_xml::escape::unescape(&text).expect("escaped text");
                stack.last_mut().expect("an element").text.push_str(&text);
            }
            Event::CData(t) => {
                let text = String::from_utf8(t.into_inner().to_vec()).expect("UTF-8");
                stack.last_mut().expect("an element").text.push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "every element is closed");
    let mut doc = stack.pop().expect("the document");
    assert_eq!(doc.children.len(), 1, "one root element");
    doc.children.pop().expect("the root")
}

/// Checks what JUnit consumers require — `testsuites` ⊃ `testsuite` ⊃ `testcase` with `name` and
/// `classname`, counts that agree with the cases — and returns the test cases.
fn junit_cases(xml: &str) -> Vec<Element> {
    let root = parse_xml(xml);
    assert_eq!(root.name, "testsuites", "{xml}");
    let suites = root.children("testsuite");
    assert_eq!(suites.len(), 1, "one test suite: {xml}");
    let suite = suites[0];
    assert!(suite.attr("name").is_some_and(|n| !n.is_empty()), "{xml}");
    let cases = suite.children("testcase");
    let with = |kind: &str| {
        cases
            .iter()
            .filter(|c| !c.children(kind).is_empty())
            .count()
    };
    assert_eq!(suite.count_attr("tests"), cases.len(), "{xml}");
    assert_eq!(suite.count_attr("failures"), with("failure"), "{xml}");
    assert_eq!(suite.count_attr("errors"), with("error"), "{xml}");
    assert_eq!(root.count_attr("tests"), cases.len(), "{xml}");
    assert_eq!(root.count_attr("failures"), with("failure"), "{xml}");
    assert_eq!(root.count_attr("errors"), with("error"), "{xml}");
    for c in &cases {
        assert!(c.attr("name").is_some_and(|n| !n.is_empty()), "{xml}");
        assert!(c.attr("classname").is_some_and(|n| !n.is_empty()), "{xml}");
        let outcomes = ["failure", "error", "skipped"]
            .iter()
            .map(|k| c.children(k).len())
            .sum::<usize>();
        assert!(outcomes <= 1, "at most one outcome per case: {xml}");
    }
    suite
        .children
        .iter()
        .filter(|c| c.name == "testcase")
        .map(clone)
        .collect()
}

fn clone(e: &Element) -> Element {
    Element {
        name: e.name.clone(),
        attributes: e.attributes.clone(),
        text: e.text.clone(),
        children: e.children.iter().map(clone).collect(),
    }
}

struct SuiteRun {
    output: Output,
    junit: String,
    store: tempfile::TempDir,
}

impl SuiteRun {
    fn code(&self) -> i32 {
        self.output.status.code().expect("verity exited normally")
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}):\n{}", self.stdout()))
    }
}

/// Writes `suite` to a file and runs `verity test-all` on it with `args`, into a fresh store.
fn test_all(suite: &str, args: &[&str]) -> SuiteRun {
    let store = tempfile::tempdir().expect("temp dir");
    let file = store.path().join("verity.toml");
    std::fs::write(&file, suite).expect("the suite is written");
    let junit = store.path().join("junit.xml");
    let output = verity()
        .arg("test-all")
        .arg("--suite")
        .arg(&file)
        .arg("--store")
        .arg(store.path())
        .arg("--junit")
        .arg(&junit)
        .args(args)
        .output()
        .expect("verity runs");
    let junit = std::fs::read_to_string(&junit).unwrap_or_default();
    SuiteRun {
        output,
        junit,
        store,
    }
}

/// Short memory runs: the lost-update knob on two hot accounts loses updates on every seed (the
/// knob reads, waits a storage round trip and writes back, and ten workers collide on two accounts).
const GOOD_AND_BAD: &str = r#"
[defaults]
target = "memory"
workload = "bank"
time-limit = "500ms"

[[scenario]]
name = "good"
seeds = [1, 2]

[[scenario]]
name = "lost-update"
bugs = ["lost-update"]
hot = 0.5
expect = ["wrong-total", "balance-mismatch"]

[[scenario]]
name = "undecidable"
checkers = ["convergence"]
expect = "unknown"
"#;

#[test]
fn a_suite_whose_known_bad_scenario_is_caught_passes_with_junit_and_json_that_say_so() {
    let run = test_all(GOOD_AND_BAD, &["--json"]);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());

    let doc = run.json();
    assert_eq!(doc["exit_code"], 0);
    let cases = doc["cases"].as_array().expect("cases is a list");
    let names: Vec<(&str, u64)> = cases
        .iter()
        .map(|c| (c["scenario"].as_str().unwrap(), c["seed"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("good", 1),
            ("good", 2),
            ("lost-update", 1),
            ("undecidable", 1)
        ]
    );
    for c in cases {
        assert_eq!(c["pass"], true, "{c}");
        assert_eq!(c["outcome"], "pass", "{c}");
        let dir = Path::new(c["run_dir"].as_str().expect("a run directory"));
        assert!(dir.starts_with(run.store.path()), "{}", dir.display());
        // The document carries the run's own results.json.
        let stored = results_of(dir);
        assert_eq!(c["results"]["valid"], stored["valid"], "{c}");
        assert_eq!(c["results"]["seed"], c["seed"], "{c}");
    }
    let bad = &cases[2];
    assert_eq!(
        bad["results"]["valid"], false,
        "the known-bad run is invalid"
    );
    let anomalies: Vec<&str> = bad["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        anomalies.contains(&"wrong-total") || anomalies.contains(&"balance-mismatch"),
        "{anomalies:?}"
    );
    assert_eq!(cases[3]["results"]["valid"], "unknown");

    let junit = junit_cases(&run.junit);
    assert_eq!(junit.len(), 4, "{}", run.junit);
    assert_eq!(junit[2].attr("classname"), Some("lost-update"));
    assert_eq!(junit[2].attr("name"), Some("seed 1"));
    assert!(junit
        .iter()
        .all(|c| c.children.iter().all(|e| e.name == "system-out")));
    let out = &junit[0].children("system-out")[0].text;
    assert!(out.contains("run directory: "), "{out}");
    // The table went to stderr, stdout held the document alone.
    assert!(run.stderr().contains("4 passed"), "{}", run.stderr());
}

#[test]
fn a_wrong_expectation_fails_the_suite_and_names_the_mismatch_and_the_reproduce_command() {
    let suite = r#"
[[scenario]]
name = "bank-is-not-g2"
target = "memory"
time-limit = "300ms"
seed = 5
expect = "G2-item"

[[scenario]]
name = "lost-update-is-not-valid"
target = "memory"
time-limit = "300ms"
bugs = ["lost-update"]
hot = 0.5
"#;
    let run = test_all(suite, &[]);
    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let table = run.stdout();
    assert!(table.contains("FAIL"), "{table}");
    assert!(
        table.contains("FAIL bank-is-not-g2 seed 5: expected G2-item, got valid"),
        "{table}"
    );
    assert!(
        table.contains("reproduce: verity run --target memory --time-limit 300ms --seed 5"),
        "{table}"
    );
    let junit = junit_cases(&run.junit);
    let failures = junit[0].children("failure");
    assert_eq!(failures.len(), 1, "{}", run.junit);
    let f = failures[0];
    assert!(
        f.attr("message")
            .is_some_and(|m| m.contains("expected G2-item")),
        "{}",
        run.junit
    );
    assert!(f.text.contains("reproduce: verity run"), "{}", run.junit);
    // An unexpected anomaly is named with its first example.
    let failures = junit[1].children("failure");
    assert_eq!(failures.len(), 1, "{}", run.junit);
    let text = &failures[0].text;
    assert!(
        text.contains("expected valid, got invalid")
            && (text.contains("wrong-total ×") || text.contains("balance-mismatch ×"))
            && text.contains("reproduce: verity run --target memory --bug lost-update"),
        "{text}"
    );
}

#[test]
fn a_crash_outranks_a_failure_and_a_server_scenario_runs_against_its_server() {
    let suite = r#"
[defaults]
time-limit = "300ms"

[[scenario]]
name = "http-reference"
target = "http"
server = "verity serve-ledger"

[[scenario]]
name = "no-server"
target = "http"
server = "echo nothing to see"

[[scenario]]
name = "wrong"
target = "memory"
expect = "invalid"
"#;
    let run = test_all(suite, &["--json"]);
    assert_eq!(run.code(), 255, "{}\n{}", run.stdout(), run.stderr());
    let doc = run.json();
    let outcomes: Vec<&str> = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["pass", "crash", "fail"], "{doc}");
    let crash = &doc["cases"][1];
    assert!(
        crash["reason"]
            .as_str()
            .unwrap()
            .contains("without printing a URL"),
        "{crash}"
    );
    let junit = junit_cases(&run.junit);
    assert_eq!(junit[1].children("error").len(), 1, "{}", run.junit);
    assert_eq!(junit[2].children("failure").len(), 1, "{}", run.junit);
}

#[test]
fn a_malformed_suite_is_refused_at_its_line_and_column() {
    let suite =
        "[defaults]\ntarget = \"memory\"\n\n[[scenario]]\nname = \"a\"\ntime-limit = \"fast\"\n";
    let run = test_all(suite, &[]);
    assert_eq!(run.code(), 254, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("verity.toml:6:14: "), "{err}");
    assert!(err.contains("malformed duration"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    let run = test_all(
        "[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nbugs = [\"lost-updates\"]\n",
        &[],
    );
    assert_eq!(run.code(), 254, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("verity.toml:4:8: unknown bug knob \"lost-updates\""),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_scenario_the_budget_cannot_fit_is_skipped_and_counts_as_unknown() {
    let suite = r#"
[defaults]
target = "memory"

[[scenario]]
name = "long"
time-limit = "1h"
"#;
    let run = test_all(suite, &["--budget", "2s", "--json"]);
    assert_eq!(run.code(), 2, "{}\n{}", run.stdout(), run.stderr());
    let doc = run.json();
    let case = &doc["cases"][0];
    assert_eq!(case["outcome"], "skip", "{doc}");
    assert_eq!(case["run_dir"], serde_json::Value::Null, "never started");
    assert!(
        case["reason"].as_str().unwrap().contains("budget"),
        "{case}"
    );
    assert!(
        !run.store.path().join("latest").exists(),
        "no run was started"
    );
    let junit = junit_cases(&run.junit);
    assert_eq!(junit[0].children("skipped").len(), 1, "{}", run.junit);

    let run = test_all(suite, &["--budget", "2s", "--allow-skip"]);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    assert!(run.stdout().contains("SKIP"), "{}", run.stdout());
}

#[test]
fn a_run_still_going_at_the_end_of_the_budget_is_interrupted_and_reported_with_its_directory() {
    // The budget fits the main phase and the recovery, which is all test-all can know in advance of
    // the first cluster case, but not the cluster's start-up, final reads and checks: the run is
    // interrupted and judged as cut short (or, interrupted while checking, left for `verity check`).
    let suite = r#"
[[scenario]]
name = "cluster"
target = "cluster"
time-limit = "1s"
recovery = "1s"
"#;
    let run = test_all(suite, &["--budget", "2200ms", "--json"]);
    assert_eq!(run.code(), 2, "{}\n{}", run.stdout(), run.stderr());
    let doc = run.json();
    let case = &doc["cases"][0];
    assert_eq!(case["outcome"], "unknown", "{doc}");
    assert!(
        case["reason"].as_str().unwrap().contains("budget"),
        "{case}"
    );
    let dir = Path::new(
        case["run_dir"]
            .as_str()
            .expect("the run directory is reported"),
    );
    assert!(dir.join("history.jsonl").is_file(), "{}", dir.display());
}
