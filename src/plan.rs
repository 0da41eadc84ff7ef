//! The test plan: which checkers judge a history, with what options and budget, run side by side.
//!
//! Workloads never know checkers; this is where the binary pairs them, as a Jepsen test map does.

use std::collections::BTreeMap;
use std::time::Duration;

use verity_checkers::registry::{self, CheckerOptions};
use verity_checkers::{Budget, Verdict};
use verity_history::History;

use crate::exit::Failure;

/// How a history is to be judged.
#[derive(Debug, Clone, Default)]
pub struct CheckSettings {
    /// Checker names; empty means the workload's default plan.
    pub checkers: Vec<String>,
    pub options: CheckerOptions,
    /// Wall-clock limit of the whole check; `unknown` when it runs out.
    pub time_limit: Option<Duration>,
    /// Memory a checker's search may hold, in MiB.
    pub memory_mib: Option<u64>,
}

impl CheckSettings {
    pub fn budget(&self) -> Budget {
        Budget {
            deadline: self.time_limit.map(|t| std::time::Instant::now() + t),
            memory_bytes_max: self.memory_mib.map(|m| m << 20),
        }
    }
}

/// Resolves the checker names of a run or a check: the user's, or the default plan of the workload
/// plus `extra` (what the target's registry entry adds, such as convergence for replicas). A
/// `--model` with no `--checker` asks for the linearizability checker alone.
pub fn checker_names(
    settings: &CheckSettings,
    workload: Option<&str>,
    extra: &[&str],
) -> Result<Vec<String>, Failure> {
    let names: Vec<String> = if !settings.checkers.is_empty() {
        settings.checkers.clone()
    } else if settings.options.model.is_some() && workload.is_none() {
        vec!["linearizable".to_string()]
    } else {
        let mut plan = registry::default_plan(workload.unwrap_or("bank"));
        plan.extend_from_slice(extra);
        plan.into_iter().map(String::from).collect()
    };
    for n in &names {
        registry::create(n, &settings.options).map_err(Failure::BadInput)?;
    }
    if names.is_empty() {
        return Err(Failure::bad_input(format!(
            "no checker to run: pass --checker with one of {}",
            registry::names().join(", ")
        )));
    }
    Ok(names)
}

/// Runs every checker on the history, in parallel; results are keyed by name so their order is fixed.
/// Every checker's verdict, and how long each took (seconds; not part of results.json, which must
/// not depend on the machine).
pub fn check_all(
    history: &History,
    names: &[String],
    settings: &CheckSettings,
) -> (BTreeMap<String, Verdict>, BTreeMap<String, f64>) {
    let budget = settings.budget();
    let checkers: Vec<_> = names
        .iter()
        .map(|n| {
            registry::create(n, &settings.options).expect("names were validated by checker_names")
        })
        .collect();
    // One checker (a folder of histories checks many files at once, each with one) runs on the
    // calling thread: a thread of its own would cost more than a small history's check.
    if let [checker] = checkers.as_slice() {
        let started = std::time::Instant::now();
        let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            checker.check(history, &budget)
        }))
        .unwrap_or_else(|_| Verdict::unknown("the checker panicked (a bug in verity)"));
        let took = started.elapsed().as_secs_f64();
        return (
            BTreeMap::from([(names[0].clone(), verdict)]),
            BTreeMap::from([(names[0].clone(), took)]),
        );
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = checkers
            .iter()
            .map(|c| {
                let budget = &budget;
                s.spawn(move || {
                    let started = std::time::Instant::now();
                    let v = c.check(history, budget);
                    (v, started.elapsed().as_secs_f64())
                })
            })
            .collect();
        let mut verdicts = BTreeMap::new();
        let mut seconds = BTreeMap::new();
        for (name, h) in names.iter().zip(handles) {
            let (verdict, took) = h.join().unwrap_or_else(|_| {
                (
                    Verdict::unknown("the checker panicked (a bug in verity)"),
                    0.0,
                )
            });
            verdicts.insert(name.clone(), verdict);
            seconds.insert(name.clone(), took);
        }
        (verdicts, seconds)
    })
}
