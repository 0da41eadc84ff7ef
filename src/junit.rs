//! junit.xml: the verdict in the format every CI system already reads.
//!
//! One test suite per run, one test case per checker: a valid checker passes, an invalid one fails
//! with its anomalies as the message and their examples as the text, and an unknown one is reported as
//! an error (the check could not decide — a CI gate must not read that as a pass). Like results.json,
//! it is a pure function of the results, so a re-check rewrites it identically.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use verity_checkers::Validity;

use crate::results::Results;

pub fn render(results: &Results) -> String {
    let name = match (&results.target, &results.workload) {
        (Some(t), Some(w)) => format!("verity {t}-{w}"),
        _ => "verity".to_string(),
    };
    let mut suite = TestSuite::new(name.clone());
    for (checker, verdict) in &results.checkers {
        let status = match verdict.valid {
            Validity::Valid => TestCaseStatus::success(),
            Validity::Invalid => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let counts: Vec<String> = verdict
                    .anomaly_counts
                    .iter()
                    .map(|(n, c)| format!("{n} ×{c}"))
                    .collect();
                s.set_message(counts.join(", "));
                s.set_type("anomaly");
                let lines: Vec<String> = verdict
                    .anomalies
                    .iter()
                    .map(|a| format!("{}: {} (events {:?})", a.name, a.message, a.events))
                    .collect();
                s.set_description(lines.join("\n"));
                s
            }
            Validity::Unknown => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(verdict.cause.clone().unwrap_or_else(|| "unknown".into()));
                s.set_type("unknown");
                s
            }
        };
        suite.add_test_case(TestCase::new(checker.clone(), status));
    }
    let mut report = Report::new(name);
    report.add_test_suite(suite);
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot render junit: {e} -->\n"))
}
