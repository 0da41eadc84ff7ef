//! Every checker by name, and the options that shape them.

use std::path::{Path, PathBuf};

use verity_history::registry::{Entry, Registry};
use verity_history::Value;

use crate::conservation::Conservation;
use crate::linearizable::{self, LinearizableOptions};
use crate::{Checker, Verdict};

/// Options a checker may need.
#[derive(Debug, Clone, Default)]
pub struct CheckerOptions {
    /// The model of the `linearizable` checker (`bank` when not given).
    pub model: Option<String>,
    /// The initial value of register-like models.
    pub initial: Option<Value>,
}

/// Writes a checker's files for a verdict into a run directory; returns the paths written.
pub type ArtifactWriter = fn(&Verdict, &Path) -> std::io::Result<Vec<PathBuf>>;

/// A checker as the binary sees it.
pub struct CheckerEntry {
    pub name: &'static str,
    pub about: &'static str,
    /// The workloads it judges when the user names no checker (the default test plan).
    pub judges: &'static [&'static str],
    pub create: fn(&CheckerOptions) -> Result<Box<dyn Checker>, String>,
    /// Lines a person reads in the terminal summary beyond the anomaly examples.
    pub explain: fn(&Verdict) -> Vec<String>,
    /// Files it writes into a run directory beside results.json (drawings, explanations).
    pub artifacts: Option<ArtifactWriter>,
}

impl Entry for CheckerEntry {
    fn name(&self) -> &'static str {
        self.name
    }
    fn about(&self) -> &'static str {
        self.about
    }
}

pub static CHECKERS: Registry<CheckerEntry> = Registry::new(
    "checker",
    &[
        CheckerEntry {
            name: "conservation",
            about: "money is conserved: totals, negative balances, lost/duplicate/phantom/failed-but-applied transfers, final balances",
            judges: &["bank"],
            create: |_| Ok(Box::new(Conservation)),
            explain: |_| Vec::new(),
            artifacts: None,
        },
        CheckerEntry {
            name: "convergence",
            about: "after the final heal every replica holds the same ledger (divergent-replicas), and ops succeed again (unavailable)",
            // Added to the plan of a target whose nodes' own states can be read.
            judges: &[],
            create: |_| Ok(Box::new(crate::convergence::Convergence::default())),
            explain: |_| Vec::new(),
            artifacts: None,
        },
        CheckerEntry {
            name: "graph",
            about: "Elle-class dependency-graph check of transactions: G0…G2, lost-update, internal, and the consistency models ruled out",
            judges: &["ledger-append", "rw-register"],
            create: |_| Ok(Box::new(crate::graph::GraphChecker::default())),
            explain: explain_graph,
            artifacts: Some(crate::graph::write_artifacts),
        },
        CheckerEntry {
            name: "linearizable",
            about: "one real-time-consistent order of the ops explains every result (WGL search; --model picks the model)",
            judges: &["bank"],
            create: create_linearizable,
            explain: |v| {
                if v.valid == crate::Validity::Valid {
                    Vec::new()
                } else {
                    linearizable::summary_lines(v)
                }
            },
            artifacts: None,
        },
    ],
);

/// Builds a checker, or explains why not.
pub fn create(name: &str, options: &CheckerOptions) -> Result<Box<dyn Checker>, String> {
    let entry = CHECKERS.get(name).map_err(|e| e.to_string())?;
    (entry.create)(options)
}

fn create_linearizable(options: &CheckerOptions) -> Result<Box<dyn Checker>, String> {
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

pub fn names() -> Vec<&'static str> {
    CHECKERS.names()
}

/// The checkers a workload is judged by when the user names none.
pub fn default_plan(workload: &str) -> Vec<&'static str> {
    CHECKERS
        .iter()
        .filter(|c| c.judges.contains(&workload))
        .map(|c| c.name)
        .collect()
}

/// Lines a person reads in the terminal summary beyond the anomaly examples (e.g. a linearizability
/// counterexample).
pub fn explain(name: &str, verdict: &Verdict) -> Vec<String> {
    CHECKERS
        .get(name)
        .map(|c| (c.explain)(verdict))
        .unwrap_or_default()
}

/// What the graph checker's verdict rules out and still allows, in words.
fn explain_graph(verdict: &Verdict) -> Vec<String> {
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
    if let Some(note) = verdict
        .details
        .get("process-order")
        .and_then(|n| n.as_str())
    {
        lines.push(format!("process order: {note}"));
    }
    lines
}
