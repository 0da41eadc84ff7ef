//! One case of a suite — a scenario with one seed — and how its outcome is judged against what the
//! scenario expects.
//!
//! A case **passes** when its verdict is what the scenario expects: `expect = "valid"` (the default)
//! passes on a valid verdict, `expect = "unknown"` on an unknown one, and `expect = ["G2-item"]` on an
//! invalid verdict that names at least one of the listed anomalies. Otherwise it **fails** — or, when
//! the checkers could not decide and the scenario did not expect that, it is **unknown**: the case
//! neither showed the expected outcome nor disproved it. A forbidden anomaly fails a case whatever
//! else it found. A case the budget cut short decided only what it found: an anomaly stands (it is
//! evidence however short the run), a valid verdict of a shortened run does not (the scenario asked
//! for a longer test), so it is unknown — the rule by which a checker's partial search answers.
//! A run that did not produce a verdict at all (exit 255, 254 from the environment, killed by a
//! signal, unreadable output) **crashed**. A case that was never started **skipped**.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::suite::{Expectation, Verdict};

/// How a case came out; the order is the exit code's precedence (a later one wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Skip,
    Fail,
    Unknown,
    Crash,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Skip => "SKIP",
            Status::Fail => "FAIL",
            Status::Unknown => "UNKNOWN",
            Status::Crash => "CRASH",
        }
    }
}

/// A case after it ran (or did not).
#[derive(Debug, Clone)]
pub struct Case {
    pub scenario: String,
    pub seed: u64,
    pub expected: String,
    pub status: Status,
    /// The run's verdict, when it produced one.
    pub got: Option<Verdict>,
    pub anomalies: Vec<String>,
    pub duration: Duration,
    pub run_dir: Option<PathBuf>,
    /// The command that runs this case again (after starting its server, if it has one).
    pub reproduce: String,
    /// Why it is not a plain pass: the mismatch, the crash, the reason for skipping.
    pub reason: Option<String>,
    /// The run's results document, as `verity run --json` printed it.
    pub results: Option<serde_json::Value>,
}

/// The verdict and anomalies of a results document.
pub fn verdict_of(results: &serde_json::Value) -> Option<(Verdict, Vec<String>)> {
    let got = match &results["valid"] {
        serde_json::Value::Bool(true) => Verdict::Valid,
        serde_json::Value::Bool(false) => Verdict::Invalid,
        serde_json::Value::String(s) if s == "unknown" => Verdict::Unknown,
        _ => return None,
    };
    let anomalies = results["anomaly_types"]
        .as_array()?
        .iter()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    Some((got, anomalies))
}

/// Judges a verdict against the expectation: the status and, unless it passed, why.
pub fn judge(
    expect: &Expectation,
    forbid: &[String],
    got: Verdict,
    anomalies: &[String],
    cut_short_by: Option<&str>,
) -> (Status, Option<String>) {
    let forbidden: Vec<&String> = anomalies.iter().filter(|a| forbid.contains(a)).collect();
    if !forbidden.is_empty() {
        let names: Vec<&str> = forbidden.iter().map(|a| a.as_str()).collect();
        return (
            Status::Fail,
            Some(format!("forbidden anomaly found: {}", names.join(", "))),
        );
    }
    let met = match expect {
        Expectation::Verdict(v) => *v == got,
        Expectation::AnyOf(names) => {
            got == Verdict::Invalid && names.iter().any(|n| anomalies.contains(&n.value))
        }
    };
    let got_text = describe(got, anomalies);
    if let (Some(by), false) = (cut_short_by, got == Verdict::Invalid) {
        return (
            Status::Unknown,
            Some(format!(
                "cut short by {by} before it could show {}: got {got_text}",
                expect.describe()
            )),
        );
    }
    if met {
        return (Status::Pass, None);
    }
    let status = if got == Verdict::Unknown {
        Status::Unknown
    } else {
        Status::Fail
    };
    (
        status,
        Some(format!("expected {}, got {got_text}", expect.describe())),
    )
}

fn describe(got: Verdict, anomalies: &[String]) -> String {
    if anomalies.is_empty() {
        got.as_str().to_string()
    } else {
        format!("{} ({})", got.as_str(), anomalies.join(", "))
    }
}

/// The exit status of a whole suite, by Jepsen's precedence: 255 if any run crashed, else 2 if any
/// was unknown (skipped cases count as unknown unless `allow_skip`), else 1 if any verdict differed
/// from what was expected, else 0.
pub fn suite_status(cases: &[Case], allow_skip: bool) -> Status {
    cases
        .iter()
        .map(|c| match c.status {
            Status::Skip if allow_skip => Status::Pass,
            Status::Skip => Status::Unknown,
            s => s,
        })
        .max()
        .unwrap_or(Status::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{Located, Location};

    fn any_of(names: &[&str]) -> Expectation {
        Expectation::AnyOf(
            names
                .iter()
                .map(|n| Located {
                    value: n.to_string(),
                    at: Location::START,
                })
                .collect(),
        )
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_known_bad_scenario_passes_when_its_anomaly_appears_and_fails_when_it_does_not() {
        let expect = any_of(&["wrong-total", "balance-mismatch"]);
        let found = names(&["balance-mismatch", "nonlinearizable"]);
        assert_eq!(
            judge(&expect, &[], Verdict::Invalid, &found, None).0,
            Status::Pass
        );
        let other = names(&["nonlinearizable"]);
        let (status, why) = judge(&expect, &[], Verdict::Invalid, &other, None);
        assert_eq!(status, Status::Fail);
        let why = why.expect("a failure says why");
        assert!(
            why.contains("wrong-total|balance-mismatch") && why.contains("nonlinearizable"),
            "{why}"
        );
        assert_eq!(
            judge(&expect, &[], Verdict::Valid, &[], None).0,
            Status::Fail
        );
    }

    #[test]
    fn unknown_passes_only_where_it_is_expected() {
        let unknown = Expectation::Verdict(Verdict::Unknown);
        assert_eq!(
            judge(&unknown, &[], Verdict::Unknown, &[], None).0,
            Status::Pass
        );
        let valid = Expectation::Verdict(Verdict::Valid);
        assert_eq!(
            judge(&valid, &[], Verdict::Unknown, &[], None).0,
            Status::Unknown
        );
        assert_eq!(
            judge(&unknown, &[], Verdict::Valid, &[], None).0,
            Status::Fail
        );
    }

    #[test]
    fn a_forbidden_anomaly_fails_even_a_case_that_met_its_expectation() {
        let expect = any_of(&["nonlinearizable"]);
        let found = names(&["nonlinearizable", "lost-transfer"]);
        let (status, why) = judge(
            &expect,
            &names(&["lost-transfer"]),
            Verdict::Invalid,
            &found,
            None,
        );
        assert_eq!(status, Status::Fail);
        assert!(why.unwrap().contains("lost-transfer"));
    }

    #[test]
    fn a_run_cut_short_keeps_its_anomalies_but_not_its_valid_verdict() {
        let valid = Expectation::Verdict(Verdict::Valid);
        assert_eq!(
            judge(&valid, &[], Verdict::Valid, &[], Some("the budget")).0,
            Status::Unknown
        );
        let found = names(&["G2-item"]);
        assert_eq!(
            judge(&valid, &[], Verdict::Invalid, &found, Some("the budget")).0,
            Status::Fail
        );
        assert_eq!(
            judge(
                &any_of(&["G2-item"]),
                &[],
                Verdict::Invalid,
                &found,
                Some("the budget")
            )
            .0,
            Status::Pass
        );
    }

    fn case(status: Status) -> Case {
        Case {
            scenario: "s".into(),
            seed: 1,
            expected: "valid".into(),
            status,
            got: None,
            anomalies: vec![],
            duration: Duration::ZERO,
            run_dir: None,
            reproduce: String::new(),
            reason: None,
            results: None,
        }
    }

    #[test]
    fn the_suite_status_follows_jepsens_precedence() {
        use Status::*;
        let of = |s: &[Status], allow_skip| {
            suite_status(&s.iter().map(|&s| case(s)).collect::<Vec<_>>(), allow_skip)
        };
        assert_eq!(of(&[Pass, Pass], false), Pass);
        assert_eq!(of(&[Pass, Fail], false), Fail);
        assert_eq!(of(&[Fail, Unknown, Pass], false), Unknown);
        assert_eq!(of(&[Unknown, Crash, Fail], false), Crash);
        assert_eq!(of(&[Pass, Skip], false), Unknown);
        assert_eq!(of(&[Pass, Skip], true), Pass);
        assert_eq!(of(&[Fail, Skip], true), Fail);
        assert_eq!(of(&[], false), Pass);
    }
}
