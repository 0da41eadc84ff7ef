//! Every checker by name, and the options that shape them.

use verity_history::Value;

use crate::conservation::Conservation;
use crate::linearizable::{self, LinearizableOptions};
use crate::{Checker, Verdict};

/// (name, one-line description) of every checker.
pub const CHECKERS: &[(&str, &str)] = &[
    (
        "conservation",
        "money is conserved: totals, negative balances, lost/duplicate/phantom/failed-but-applied transfers, final balances",
    ),
    (
        "convergence",
        "after the final heal every replica holds the same ledger (divergent-replicas), and ops succeed again (unavailable)",
    ),
    (
        "graph",
        "Elle-class dependency-graph check of transactions: G0…G2, lost-update, internal, and the consistency models ruled out",
    ),
    (
        "linearizable",
        "one real-time-consistent order of the ops explains every result (WGL search; --model picks the model)",
    ),
];

/// Options a checker may need.
#[derive(Debug, Clone, Default)]
pub struct CheckerOptions {
    /// The model of the `linearizable` checker (`bank` when not given).
    pub model: Option<String>,
    /// The initial value of register-like models.
    pub initial: Option<Value>,
}

/// Builds a checker, or explains why not.
pub fn create(name: &str, options: &CheckerOptions) -> Result<Box<dyn Checker>, String> {
    match name {
        "conservation" => Ok(Box::new(Conservation)),
        "convergence" => Ok(Box::new(crate::convergence::Convergence::default())),
        "graph" => Ok(Box::new(crate::graph::GraphChecker::default())),
        "linearizable" => {
            let model = options.model.as_deref().unwrap_or("bank");
            let lin = LinearizableOptions {
                initial: options.initial.clone(),
                ..LinearizableOptions::default()
            };
            let search = linearizable::checker_for(model, &lin).map_err(|e| {
                let names: Vec<&str> = linearizable::MODELS.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown model {:?}: valid choices are {}",
                    e.0,
                    names.join(", ")
                )
            })?;
            if model == "bank" {
                return Ok(Box::new(linearizable::witness::WitnessFirst { search }));
            }
            Ok(search)
        }
        other => Err(format!(
            "unknown checker {other:?}: valid choices are {}",
            names().join(", ")
        )),
    }
}

pub fn names() -> Vec<&'static str> {
    CHECKERS.iter().map(|(n, _)| *n).collect()
}

/// The checkers a workload is judged by when the user names none.
pub fn default_plan(workload: &str) -> Vec<&'static str> {
    match workload {
        "bank" => vec!["conservation", "linearizable"],
        "ledger-append" | "rw-register" => vec!["graph"],
        _ => vec![],
    }
}

/// Lines a person reads in the terminal summary beyond the anomaly examples (e.g. a linearizability
/// counterexample).
pub fn explain(name: &str, verdict: &Verdict) -> Vec<String> {
    match name {
        "linearizable" if verdict.valid != crate::Validity::Valid => {
            linearizable::summary_lines(verdict)
        }
        "graph" => {
            let list = |key: &str| -> Option<String> {
                let names: Vec<&str> = verdict
                    .details
                    .get(key)?
                    .as_array()?
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect();
                (!names.is_empty()).then(|| names.join(", "))
            };
            let mut lines = Vec::new();
            if let Some(not) = list("not") {
                lines.push(format!("rules out: {not}"));
            }
            if let Some(also) = list("also-not") {
                lines.push(format!("and with it: {also}"));
            }
            if let Some(ok) = list("satisfied") {
                lines.push(format!("still consistent with: {ok}"));
            }
            lines
        }
        _ => Vec::new(),
    }
}
