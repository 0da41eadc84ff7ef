//! What test-all shows and writes: progress while it runs (a bar on a terminal, one plain line per
//! case otherwise), one summary table, the reproduce command of every case that did not pass, the
//! suite's results document (`--json`) and its JUnit XML (`--junit`).
//!
//! JUnit: one test suite, one test case per scenario × seed — class name the scenario, name
//! `seed N` — so CI dashboards group seeds under their scenario. A failed case is a `failure` whose
//! text holds the mismatch, every anomaly with its first example, and the reproduce command; an
//! unknown or crashed one an `error` (a gate must not read "could not decide" as a pass); a skipped
//! one `skipped`. The run directory goes in `system-out`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;
use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::case::{Case, Status};
use super::TestAllArgs;
use crate::exit::Failure;
use crate::suite::Scenario;

/// How many anomaly names a table cell shows before "+N".
const ANOMALIES_SHOWN: usize = 3;

/// Progress over the cases.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    quiet: bool,
}

impl Progress {
    pub fn start(total: usize, quiet: bool) -> Progress {
        let tty = std::env::var_os("CI").is_none()
            && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = (tty && !quiet).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, total, quiet }
    }

    pub fn starting(&self, i: usize, s: &Scenario, seed: u64, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let what = format!(
            "{} seed {seed} ({}s of the budget left)",
            s.name.value, left
        );
        match &self.bar {
            Some(bar) => bar.set_message(what),
            None if !self.quiet => eprintln!("[{}/{}] {what}", i + 1, self.total),
            None => {}
        }
    }

    pub fn finished(&self, i: usize, c: &Case) {
        let line = format!(
            "[{}/{}] {} seed {}: {} ({}) in {:.1}s{}",
            i + 1,
            self.total,
            c.scenario,
            c.seed,
            c.status.label(),
            got(c),
            c.duration.as_secs_f64(),
            c.reason
                .as_ref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        );
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None if !self.quiet => eprintln!("{line}"),
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn got(c: &Case) -> String {
    match (c.status, c.got) {
        (_, Some(v)) => v.as_str().to_string(),
        (Status::Skip, None) => "not run".into(),
        (_, None) => "no verdict".into(),
    }
}

#[derive(Tabled)]
struct Row {
    scenario: String,
    seed: u64,
    expected: String,
    got: String,
    anomalies: String,
    duration: String,
    #[tabled(rename = "run directory")]
    run_dir: String,
    status: &'static str,
}

/// The summary table, then one paragraph per case that did not pass, then the totals.
pub fn table(cases: &[Case], elapsed: Duration, status: Status) -> String {
    let rows: Vec<Row> = cases
        .iter()
        .map(|c| Row {
            scenario: c.scenario.clone(),
            seed: c.seed,
            expected: c.expected.clone(),
            got: got(c),
            anomalies: short_list(&c.anomalies),
            duration: format!("{:.1}s", c.duration.as_secs_f64()),
            run_dir: c
                .run_dir
                .as_ref()
                .map_or_else(|| "-".into(), |d| d.display().to_string()),
            status: c.status.label(),
        })
        .collect();
    let mut out = format!("{}\n", Table::new(rows).with(Style::rounded()));
    for c in cases.iter().filter(|c| !matches!(c.status, Status::Pass)) {
        let _ = writeln!(
            out,
            "{} {} seed {}: {}",
            c.status.label(),
            c.scenario,
            c.seed,
            c.reason.as_deref().unwrap_or("")
        );
        if let Some(report) = report_of(c) {
            let _ = writeln!(out, "  report:    {}", report.display());
        }
        let _ = writeln!(out, "  reproduce: {}", c.reproduce);
    }
    let count = |s: Status| cases.iter().filter(|c| c.status == s).count();
    let _ = writeln!(
        out,
        "\n{} cases in {:.1}s: {} passed, {} failed, {} unknown, {} crashed, {} skipped — {}",
        cases.len(),
        elapsed.as_secs_f64(),
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Unknown),
        count(Status::Crash),
        count(Status::Skip),
        match status {
            Status::Pass | Status::Skip => "every expectation held",
            Status::Fail => "an expectation did not hold",
            Status::Unknown => "not every expectation could be decided",
            Status::Crash => "a run crashed",
        }
    );
    out
}

/// The run's report, if it was written (a killed run has none).
fn report_of(c: &Case) -> Option<std::path::PathBuf> {
    let report = c.run_dir.as_ref()?.join(crate::store::REPORT_FILE);
    report.is_file().then_some(report)
}

fn short_list(names: &[String]) -> String {
    if names.is_empty() {
        return "-".into();
    }
    let mut s = names
        .iter()
        .take(ANOMALIES_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > ANOMALIES_SHOWN {
        let _ = write!(s, " +{}", names.len() - ANOMALIES_SHOWN);
    }
    s
}

/// The suite's results document.
#[derive(Serialize)]
struct Document<'a> {
    suite: String,
    budget_s: f64,
    elapsed_s: f64,
    /// The suite's outcome by the exit code's precedence: pass, fail, unknown or crash.
    status: Status,
    exit_code: u8,
    counts: std::collections::BTreeMap<Status, usize>,
    cases: Vec<CaseDoc<'a>>,
}

#[derive(Serialize)]
struct CaseDoc<'a> {
    scenario: &'a str,
    seed: u64,
    expected: &'a str,
    outcome: Status,
    pass: bool,
    /// The run's verdict: valid, invalid, unknown, or null when it produced none.
    got: Option<&'static str>,
    anomalies: &'a [String],
    duration_s: f64,
    run_dir: Option<String>,
    reproduce: &'a str,
    reason: Option<&'a str>,
    /// The run's results document (results.json), or null.
    results: Option<&'a serde_json::Value>,
}

pub fn exit_code(status: Status) -> u8 {
    match status {
        Status::Pass | Status::Skip => crate::exit::EXIT_VALID,
        Status::Fail => crate::exit::EXIT_INVALID,
        Status::Unknown => crate::exit::EXIT_UNKNOWN,
        Status::Crash => crate::exit::EXIT_HARNESS,
    }
}

pub fn document(args: &TestAllArgs, cases: &[Case], elapsed: Duration, status: Status) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for s in [
        Status::Pass,
        Status::Fail,
        Status::Unknown,
        Status::Crash,
        Status::Skip,
    ] {
        counts.insert(s, cases.iter().filter(|c| c.status == s).count());
    }
    let doc = Document {
        suite: args.suite.display().to_string(),
        budget_s: args.budget.as_secs_f64(),
        elapsed_s: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        status,
        exit_code: exit_code(status),
        counts,
        cases: cases
            .iter()
            .map(|c| CaseDoc {
                scenario: &c.scenario,
                seed: c.seed,
                expected: &c.expected,
                outcome: c.status,
                pass: c.status == Status::Pass,
                got: c.got.map(|v| v.as_str()),
                anomalies: &c.anomalies,
                duration_s: (c.duration.as_secs_f64() * 1000.0).round() / 1000.0,
                run_dir: c.run_dir.as_ref().map(|d| d.display().to_string()),
                reproduce: &c.reproduce,
                reason: c.reason.as_deref(),
                results: c.results.as_ref(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).expect("the document is plain data")
}

/// The first example of each anomaly the run found, one line each.
fn examples(results: &serde_json::Value) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    let Some(checkers) = results["checkers"].as_object() else {
        return lines;
    };
    for (checker, verdict) in checkers {
        for a in verdict["anomalies"].as_array().into_iter().flatten() {
            let name = a["name"].as_str().unwrap_or("?").to_string();
            if seen.contains(&name) {
                continue;
            }
            let count = verdict["anomaly_counts"][&name].as_u64().unwrap_or(1);
            lines.push(format!(
                "{name} ×{count} ({checker}): {}",
                a["message"].as_str().unwrap_or("")
            ));
            seen.push(name);
        }
    }
    lines
}

pub fn junit(args: &TestAllArgs, cases: &[Case], elapsed: Duration) -> String {
    let name = format!("verity test-all {}", args.suite.display());
    let mut suite = TestSuite::new(name.clone());
    for c in cases {
        let reason = c.reason.clone().unwrap_or_default();
        let mut text = vec![reason.clone()];
        if let Some(r) = &c.results {
            text.extend(examples(r));
        }
        text.push(format!("reproduce: {}", c.reproduce));
        let status = match c.status {
            Status::Pass => TestCaseStatus::success(),
            Status::Skip => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(reason);
                s
            }
            Status::Fail | Status::Unknown | Status::Crash => {
                let kind = if c.status == Status::Fail {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(reason);
                s.set_type(c.status.label().to_lowercase());
                s.set_description(text.join("\n"));
                s
            }
        };
        let mut t = TestCase::new(format!("seed {}", c.seed), status);
        t.set_classname(c.scenario.clone());
        t.set_time(c.duration);
        let mut out = format!("expected: {}\ngot: {}\n", c.expected, got(c));
        if let Some(d) = &c.run_dir {
            let _ = writeln!(out, "run directory: {}", d.display());
        }
        if let Some(report) = report_of(c) {
            let _ = writeln!(out, "report: {}", report.display());
        }
        let _ = writeln!(out, "reproduce: {}", c.reproduce);
        t.set_system_out(out);
        suite.add_test_case(t);
    }
    suite.set_time(elapsed);
    let mut report = Report::new("verity");
    report.set_time(elapsed);
    report.add_test_suite(suite);
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot render junit: {e} -->\n"))
}

/// Writes what was asked: the JUnit file, and the table (stdout, or stderr under `--json`) or the
/// document on stdout.
pub fn emit(
    args: &TestAllArgs,
    cases: &[Case],
    elapsed: Duration,
    status: Status,
) -> Result<(), Failure> {
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(args, cases, elapsed))
            .map_err(|e| Failure::bad_input(format!("cannot write {}: {e}", path.display())))?;
    }
    let table = table(cases, elapsed, status);
    if args.json {
        eprint!("{table}");
        println!("{}", document(args, cases, elapsed, status));
    } else {
        print!("{table}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Verdict;
    use clap::Parser;

    fn cases() -> Vec<Case> {
        let case =
            |scenario: &str, seed, status, got, anomalies: &[&str], reason: Option<&str>| Case {
                scenario: scenario.into(),
                seed,
                expected: if scenario == "bank" {
                    "valid"
                } else {
                    "wrong-total|balance-mismatch"
                }
                .into(),
                status,
                got,
                anomalies: anomalies.iter().map(|a| a.to_string()).collect(),
                duration: Duration::from_millis(1234),
                run_dir: got.map(|_| format!("results/memory-bank/2026120{seed}T000000").into()),
                reproduce: format!("verity run --target memory --seed {seed}"),
                reason: reason.map(String::from),
                results: None,
            };
        vec![
            case("bank", 1, Status::Pass, Some(Verdict::Valid), &[], None),
            case(
                "lost-update",
                1,
                Status::Pass,
                Some(Verdict::Invalid),
                &[
                    "balance-mismatch",
                    "nonlinearizable",
                    "wrong-total",
                    "lost-transfer",
                ],
                None,
            ),
            case(
                "lost-update",
                2,
                Status::Fail,
                Some(Verdict::Valid),
                &[],
                Some("expected wrong-total|balance-mismatch, got valid"),
            ),
            case(
                "bank",
                2,
                Status::Skip,
                None,
                &[],
                Some("needs about 3.0s, 1.0s of the budget left"),
            ),
        ]
    }

    fn args() -> TestAllArgs {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: TestAllArgs,
        }
        Wrapper::parse_from(["test-all", "--suite", "verity.toml", "--budget", "1m"]).args
    }

    #[test]
    fn the_summary_table_names_every_case_and_how_to_reproduce_what_did_not_pass() {
        let text = table(&cases(), Duration::from_secs(5), Status::Unknown);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn the_junit_of_a_suite_has_one_case_per_scenario_and_seed() {
        insta::assert_snapshot!(junit(&args(), &cases(), Duration::from_secs(5)));
    }

    #[test]
    fn the_document_parses_and_holds_every_case_field() {
        let text = document(&args(), &cases(), Duration::from_secs(5), Status::Unknown);
        let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(doc["exit_code"], 2);
        assert_eq!(doc["counts"]["skip"], 1);
        assert_eq!(doc["cases"][2]["outcome"], "fail");
        assert_eq!(doc["cases"][2]["pass"], false);
        assert_eq!(doc["cases"][3]["got"], serde_json::Value::Null);
        let keys: Vec<&String> = doc["cases"][0]
            .as_object()
            .expect("an object")
            .keys()
            .collect();
        for k in [
            "scenario", "seed", "expected", "outcome", "pass", "run_dir", "results",
        ] {
            assert!(
                keys.iter().any(|key| key.as_str() == k),
                "{k} missing from {keys:?}"
            );
        }
    }
}
