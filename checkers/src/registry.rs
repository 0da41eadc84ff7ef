//! Every checker by name, and the options that shape them.

use crate::conservation::Conservation;
use crate::Checker;

/// (name, one-line description) of every checker.
pub const CHECKERS: &[(&str, &str)] = &[(
    "conservation",
    "money is conserved: totals, negative balances, lost/duplicate/phantom/failed-but-applied transfers, final balances",
)];

/// Options a checker may need.
#[derive(Debug, Clone, Default)]
pub struct CheckerOptions {
    /// The model of the `linearizable` checker.
    pub model: Option<String>,
}

/// Builds a checker, or explains why not.
pub fn create(name: &str, _options: &CheckerOptions) -> Result<Box<dyn Checker>, String> {
    match name {
        "conservation" => Ok(Box::new(Conservation)),
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
        "bank" => vec!["conservation"],
        _ => vec![],
    }
}
