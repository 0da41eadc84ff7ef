//! The test plan: which checkers judge a history, run side by side.
//!
//! Workloads never know checkers; this is where the binary pairs them, as a Jepsen test map does.

use std::collections::BTreeMap;

use verity_checkers::registry::{self, CheckerOptions};
use verity_checkers::{Budget, Verdict};
use verity_history::History;

use crate::exit::Failure;

/// Resolves the checker names of a run or a check: the user's, or the workload's default plan.
pub fn checker_names(requested: &[String], workload: Option<&str>) -> Result<Vec<String>, Failure> {
    let names: Vec<String> = if requested.is_empty() {
        let plan = registry::default_plan(workload.unwrap_or("bank"));
        plan.into_iter().map(String::from).collect()
    } else {
        requested.to_vec()
    };
    for n in &names {
        registry::create(n, &CheckerOptions::default()).map_err(Failure::BadInput)?;
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
pub fn check_all(
    history: &History,
    names: &[String],
    options: &CheckerOptions,
    budget: &Budget,
) -> BTreeMap<String, Verdict> {
    let checkers: Vec<_> = names
        .iter()
        .map(|n| registry::create(n, options).expect("names were validated by checker_names"))
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = checkers
            .iter()
            .map(|c| s.spawn(move || c.check(history, budget)))
            .collect();
        names
            .iter()
            .zip(handles)
            .map(|(name, h)| {
                let verdict = h
                    .join()
                    .unwrap_or_else(|_| Verdict::unknown("the checker panicked (a bug in verity)"));
                (name.clone(), verdict)
            })
            .collect()
    })
}
