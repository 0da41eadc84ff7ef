//! `verity test-all`: runs every scenario of a suite file (`verity.toml`) with each of its seeds,
//! within one overall time budget, and exits with Jepsen's precedence — 255 if any run crashed, else
//! 2 if any was unknown, else 1 if any verdict differed from what its scenario expected, else 0.
//!
//! The exit code is about *expectations*: a known-bad scenario whose expected anomaly appears passes
//! (its verdict is invalid, and that was the point), and one that expects `unknown` and gets it
//! passes. How each case is judged is in [`case`]; how a run is started, interrupted at the budget's
//! end and killed after the grace is in [`child`]. Budget: a case is started only if its time
//! limit, plus the recovery of a target with nodes, plus the setup and checking time measured on
//! earlier cases of the same target, fits in what is left; the rest are skipped — and a skipped case
//! counts as unknown (the suite did not show it passes) unless `--allow-skip`. test-all ends within
//! `--budget` plus `--grace`.

mod case;
mod child;
mod output;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Parser};
use verity_checkers::Validity;
use verity_history::registry::Entry;
use verity_targets::registry::TARGETS;

use crate::args::parse_duration;
use crate::exit::{Failure, Outcome};
use crate::run::RunArgs;
use crate::suite::{self, Catalog, Scenario, Suite, TargetInfo};
use case::{Case, Status};

/// The suite file read when no `--suite` is given.
pub const DEFAULT_SUITE: &str = "verity.toml";

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Exit codes: 255 if any run crashed, else 2 if any was unknown (or skipped, \
unless --allow-skip), else 1 if any verdict differed from what its scenario expected, else 0. A \
known-bad scenario that shows its expected anomaly passes. 254: the suite file is malformed (the \
error names its line and column). See docs/ci.md."
)]
pub struct TestAllArgs {
    /// The suite file: [[scenario]] tables with a name, a target, its options and the expected
    /// verdict or anomaly; [defaults] for all of them (see docs/ci.md).
    #[arg(long, default_value = DEFAULT_SUITE, value_name = "FILE")]
    pub suite: PathBuf,
    /// Wall-clock budget of the whole suite, e.g. 20m: cases that cannot fit in what is left are
    /// not started (reported as skipped), and a case still running at its end is interrupted.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub budget: Duration,
    /// After the budget, how long an interrupted run may take to heal, read and check before it is
    /// killed (its run directory keeps the history for `verity check`).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Run only the scenarios whose name contains this text (repeat for several).
    #[arg(long, value_name = "TEXT")]
    pub filter: Vec<String>,
    /// Where the run directories are stored.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
    /// Do not count skipped cases as unknown (exit 0 if every case that ran passed).
    #[arg(long)]
    pub allow_skip: bool,
    /// Write the JUnit XML of the suite to FILE: one test case per scenario and seed.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print the suite's results document on stdout and nothing else (table and progress go to
    /// stderr).
    #[arg(long)]
    pub json: bool,
    /// Show no progress, only the table at the end.
    #[arg(long)]
    pub quiet: bool,
}

/// `verity run`'s arguments, parsed as its command line would be.
#[derive(Debug, Parser)]
#[command(name = "verity run")]
struct RunCommand {
    #[command(flatten)]
    run: RunArgs,
}

/// A case to run: a scenario with one seed, its command line checked by `verity run`'s own parser.
struct Planned<'a> {
    scenario: &'a Scenario,
    seed: u64,
    /// The arguments of `verity run` (with `--store`, without `--json`).
    args: Vec<String>,
    /// The main phase and, for a target with nodes, the recovery after the final heal.
    base: Duration,
}

pub fn run(args: TestAllArgs) -> Result<Outcome, Failure> {
    let suite = load(&args.suite)?;
    let scenarios: Vec<&Scenario> = suite
        .scenarios
        .iter()
        .filter(|s| args.filter.is_empty() || args.filter.iter().any(|f| s.name.value.contains(f)))
        .collect();
    if scenarios.is_empty() {
        let names: Vec<&str> = suite
            .scenarios
            .iter()
            .map(|s| s.name.value.as_str())
            .collect();
        return Err(Failure::bad_input(format!(
            "--filter {} matches no scenario of {}: its scenarios are {}",
            args.filter.join(", "),
            args.suite.display(),
            names.join(", ")
        )));
    }
    let mut plan = Vec::new();
    for s in scenarios {
        for &seed in &s.seeds {
            plan.push(planned(&args, s, seed)?);
        }
    }
    let exe = std::env::current_exe().map_err(|e| {
        Failure::Harness(anyhow::anyhow!("cannot find the verity binary itself: {e}"))
    })?;
    child::catch_interrupts()?;
    let started = Instant::now();
    let deadline = started + args.budget;
    let progress = output::Progress::start(plan.len(), args.quiet);
    let mut overhead: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut cases = Vec::with_capacity(plan.len());
    for (i, p) in plan.iter().enumerate() {
        let target = p.scenario.target.value.as_str();
        let estimate = p.base + overhead.get(target).copied().unwrap_or_default();
        progress.starting(i, p.scenario, p.seed, deadline);
        let case = if child::interrupts() > 0 {
            skipped(p, "test-all was interrupted".into())
        } else if Instant::now() + estimate > deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            skipped(
                p,
                format!(
                    "needs about {:.1}s, {:.1}s of the budget left",
                    estimate.as_secs_f64(),
                    left.as_secs_f64()
                ),
            )
        } else {
            let case = run_case(&exe, &args, p, deadline);
            if case.status != Status::Crash {
                let took = case.duration.saturating_sub(p.base);
                let o = overhead.entry(target).or_default();
                *o = (*o).max(took);
            }
            case
        };
        progress.finished(i, &case);
        cases.push(case);
    }
    progress.finish();
    let elapsed = started.elapsed();
    let status = case::suite_status(&cases, args.allow_skip);
    output::emit(&args, &cases, elapsed, status)?;
    match status {
        Status::Pass | Status::Skip => Ok(Outcome::Verdict(Validity::Valid)),
        Status::Fail => Ok(Outcome::Verdict(Validity::Invalid)),
        Status::Unknown => Ok(Outcome::Verdict(Validity::Unknown)),
        Status::Crash => {
            let n = cases.iter().filter(|c| c.status == Status::Crash).count();
            Err(Failure::Harness(anyhow::anyhow!(
                "{n} of {} runs crashed (see the table)",
                cases.len()
            )))
        }
    }
}

/// Reads, parses and checks the suite file; any error names the file, line and column.
fn load(path: &Path) -> Result<Suite, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = if path == Path::new(DEFAULT_SUITE) {
            " (pass --suite FILE, or see examples/suites/)"
        } else {
            ""
        };
        Failure::bad_input(format!("cannot read {}: {e}{hint}", path.display()))
    })?;
    let located = |e: suite::SuiteError| Failure::bad_input(format!("{}:{e}", path.display()));
    let parsed = suite::parse(&text).map_err(located)?;
    suite::validate(&parsed, &catalog()).map_err(located)?;
    Ok(parsed)
}

/// Every name a suite may use, from the registries.
pub fn catalog() -> Catalog {
    let targets = TARGETS
        .iter()
        .map(|t| TargetInfo {
            name: t.name.to_string(),
            workloads: t.workloads.iter().map(|w| w.to_string()).collect(),
            bugs: t
                .workloads
                .iter()
                .map(|w| {
                    let knobs = (t.bugs)(w).iter().map(|(n, _)| n.to_string()).collect();
                    (w.to_string(), knobs)
                })
                .collect(),
            options: t
                .options
                .iter()
                .map(|o| {
                    let values = o.values.iter().map(|v| v.to_string()).collect();
                    (o.name.to_string(), values)
                })
                .collect(),
            required: t
                .options
                .iter()
                .filter(|o| o.required)
                .map(|o| o.name.to_string())
                .collect(),
        })
        .collect();
    let mut anomalies: Vec<String> = verity_history::anomaly::CONSERVATION
        .iter()
        .chain(&[
            verity_history::anomaly::NONLINEARIZABLE,
            verity_history::anomaly::DIVERGENT_REPLICAS,
            verity_history::anomaly::UNAVAILABLE,
        ])
        .chain(verity_checkers::graph::classify::ALL_ANOMALIES.iter())
        .map(|a| a.to_string())
        .collect();
    anomalies.dedup();
    Catalog {
        targets,
        default_workload: "bank".to_string(),
        faults: verity_nemesis::FAULT_KINDS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect(),
        checkers: verity_checkers::registry::CHECKERS
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
        anomalies,
    }
}

/// The case's command line, checked by `verity run`'s parser (a value it refuses is located at the
/// scenario's name), and the part of its duration known in advance.
fn planned<'a>(args: &TestAllArgs, s: &'a Scenario, seed: u64) -> Result<Planned<'a>, Failure> {
    let mut run_args = s.run_args(seed);
    run_args.push("--store".into());
    run_args.push(args.store.display().to_string());
    let mut check = run_args.clone();
    if s.server.is_some() {
        // The URL comes from the server once it runs; any URL checks the rest.
        check.extend(["--url".into(), "http://127.0.0.1:1".into()]);
    }
    let parsed = RunCommand::try_parse_from(std::iter::once("verity run".to_string()).chain(check))
        .map_err(|e| {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad option");
            // Located at the option clap names, or else at the scenario.
            let at = s
                .flags
                .iter()
                .find(|f| first.contains(&format!("'--{} ", f.name)))
                .map_or(s.name.at, |f| f.at);
            Failure::bad_input(format!(
                "{}:{at}: scenario {:?}: {}",
                args.suite.display(),
                s.name.value,
                first.trim_start_matches("error: ")
            ))
        })?
        .run;
    let entry = parsed.target_entry()?;
    let nodes = entry.nodes
        && parsed.target_options.url.is_none()
        && s.server.is_none()
        && parsed.nemesis.as_deref() != Some("none");
    let base = parsed.time_limit
        + if nodes {
            parsed.recovery
        } else {
            Duration::ZERO
        };
    Ok(Planned {
        scenario: s,
        seed,
        args: run_args,
        base,
    })
}

fn skipped(p: &Planned, reason: String) -> Case {
    Case {
        scenario: p.scenario.name.value.clone(),
        seed: p.seed,
        expected: p.scenario.expect.describe(),
        status: Status::Skip,
        got: None,
        anomalies: Vec::new(),
        duration: Duration::ZERO,
        run_dir: None,
        reproduce: reproduce(p, None),
        reason: Some(reason),
        results: None,
    }
}

/// `verity run …` with its words quoted for a POSIX shell; `--store` only when not the default.
fn reproduce(p: &Planned, server_url: Option<&str>) -> String {
    let mut words = vec!["verity".to_string(), "run".to_string()];
    let mut args = p.args.iter().peekable();
    while let Some(a) = args.next() {
        if a == "--store" && args.peek().map(|s| s.as_str()) == Some("results") {
            args.next();
            continue;
        }
        words.push(a.clone());
    }
    if let Some(url) = server_url {
        words.extend(["--url".into(), url.to_string()]);
    }
    let command = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
    match &p.scenario.server {
        Some(server) => format!("{}  # prints its URL; then: {command}", server.value),
        None => command,
    }
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn run_case(exe: &Path, args: &TestAllArgs, p: &Planned, deadline: Instant) -> Case {
    let started = Instant::now();
    let mut case = skipped(p, String::new());
    case.reason = None;
    let server = match &p.scenario.server {
        Some(cmd) => match child::start_server(exe, &cmd.value) {
            Ok(s) => Some(s),
            Err(why) => {
                case.status = Status::Crash;
                case.reason = Some(why);
                case.duration = started.elapsed();
                return case;
            }
        },
        None => None,
    };
    let mut run_args = p.args.clone();
    if let Some(s) = &server {
        run_args.extend(["--url".into(), s.url.clone()]);
        case.reproduce = reproduce(p, Some("URL"));
    }
    let finished = match child::run(exe, &run_args, deadline, args.grace) {
        Ok(f) => f,
        Err(e) => {
            case.status = Status::Crash;
            case.reason = Some(format!("cannot run verity run: {e}"));
            case.duration = started.elapsed();
            return case;
        }
    };
    drop(server);
    case.duration = started.elapsed();
    case.run_dir = finished.run_dir.clone();
    judge_finished(&mut case, p, finished, exe, &args.store);
    case
}

/// Sets the case's status from how its run ended.
fn judge_finished(case: &mut Case, p: &Planned, f: child::Finished, exe: &Path, store: &Path) {
    let last_error = f
        .stderr_tail
        .iter()
        .rev()
        .find(|l| l.starts_with("error:"))
        .or_else(|| f.stderr_tail.iter().rev().find(|l| !l.trim().is_empty()))
        .cloned()
        .unwrap_or_else(|| "(no output)".into());
    if f.aborted {
        let healed = if f.code.is_none() {
            format!("; {}", child::heal(exe, store))
        } else {
            String::new()
        };
        case.status = Status::Unknown;
        case.reason = Some(format!(
            "killed after {} ran out{healed}; `verity check` on its run directory judges what it recorded",
            match f.interrupted {
                Some("an interrupt") => "a second interrupt",
                _ => "the budget's grace",
            }
        ));
        return;
    }
    let results: Option<serde_json::Value> = match f.code {
        Some(0..=2) => serde_json::from_str(&f.stdout).ok(),
        _ => None,
    };
    let Some((got, anomalies)) = results.as_ref().and_then(case::verdict_of) else {
        if let Some(by) = f.interrupted {
            // Interrupted once its processes were gone (while checking), a run ends at once: the
            // budget's doing, not a crash; the history is on disk.
            case.status = Status::Unknown;
            case.reason = Some(format!(
                "interrupted by {by} before its verdict ({last_error}); `verity check` on its run directory judges what it recorded"
            ));
            return;
        }
        case.status = Status::Crash;
        case.reason = Some(match f.code {
            Some(c) => format!("verity run exited {c}: {last_error}"),
            None => format!("verity run was killed by a signal: {last_error}"),
        });
        return;
    };
    let forbid: Vec<String> = p.scenario.forbid.iter().map(|f| f.value.clone()).collect();
    let (status, reason) = case::judge(&p.scenario.expect, &forbid, got, &anomalies, f.interrupted);
    case.status = status;
    case.reason = reason;
    case.got = Some(got);
    case.anomalies = anomalies;
    case.results = results;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_suites_name_only_what_this_build_knows() {
        for (file, text) in [
            (
                "all-targets.toml",
                include_str!("../../examples/suites/all-targets.toml"),
            ),
            (
                "quick.toml",
                include_str!("../../examples/suites/quick.toml"),
            ),
        ] {
            let suite = suite::parse(text).unwrap_or_else(|e| panic!("{file}:{e}"));
            suite::validate(&suite, &catalog()).unwrap_or_else(|e| panic!("{file}:{e}"));
            let args = TestAllArgs::try_parse_from_for_test(file);
            for s in &suite.scenarios {
                for &seed in &s.seeds {
                    planned(&args, s, seed).unwrap_or_else(|e| panic!("{file}: {e}"));
                }
            }
        }
    }

    #[test]
    fn the_example_suite_covers_every_target_with_a_good_and_where_possible_a_bad_scenario() {
        let text = include_str!("../../examples/suites/all-targets.toml");
        let suite = suite::parse(text).expect("it parses");
        for t in catalog().targets {
            let of_target: Vec<&Scenario> = suite
                .scenarios
                .iter()
                .filter(|s| s.target.value == t.name)
                .collect();
            assert!(
                of_target
                    .iter()
                    .any(|s| s.expect == suite::Expectation::Verdict(suite::Verdict::Valid)),
                "no good scenario for {}",
                t.name
            );
            let has_knobs = t.bugs.iter().any(|(_, k)| !k.is_empty());
            let has_modes = t
                .options
                .iter()
                .any(|(o, _)| ["style", "isolation", "read"].contains(&o.as_str()));
            if has_knobs || has_modes {
                assert!(
                    of_target
                        .iter()
                        .any(|s| matches!(s.expect, suite::Expectation::AnyOf(_))),
                    "no known-bad scenario for {}",
                    t.name
                );
            }
        }
    }

    #[test]
    fn a_value_verity_run_refuses_is_located_at_its_key() {
        let text = "[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nconcurrency = 0\n";
        let suite = suite::parse(text).expect("it parses");
        let args = TestAllArgs::try_parse_from_for_test("s.toml");
        let Err(Failure::BadInput(e)) = planned(&args, &suite.scenarios[0], 1) else {
            panic!("concurrency 0 is refused");
        };
        assert!(
            e.starts_with("s.toml:4:15: ") && e.contains("--concurrency"),
            "{e}"
        );
    }

    impl TestAllArgs {
        fn try_parse_from_for_test(suite: &str) -> TestAllArgs {
            #[derive(Parser)]
            struct Wrapper {
                #[command(flatten)]
                args: TestAllArgs,
            }
            Wrapper::try_parse_from(["test-all", "--suite", suite])
                .expect("the arguments parse")
                .args
        }
    }
}
