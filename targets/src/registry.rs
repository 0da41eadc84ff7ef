//! Every target by name.

use std::sync::Arc;

use crate::memory::MemoryTarget;
use crate::memory_txn::MemoryTxnTarget;
use crate::{Target, TargetError};

/// (name, one-line description) of every target.
pub const TARGETS: &[(&str, &str)] = &[(
    "memory",
    "in-process ledger with bug knobs; nothing to install",
)];

/// What a target is created with.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    pub bugs: Vec<String>,
    pub seed: u64,
    /// The workload the target will serve: some targets pick their implementation by it (the
    /// memory target is transactional for `ledger-append` and `rw-register`).
    pub workload: String,
}

/// Workloads made of `txn` operations, served by the transactional memory target.
pub const TXN_WORKLOADS: &[&str] = &["ledger-append", "rw-register"];

fn is_txn_workload(workload: &str) -> bool {
    TXN_WORKLOADS.contains(&workload)
}

/// Bug knobs of a target: (name, description).
pub fn bugs(target: &str) -> &'static [(&'static str, &'static str)] {
    match target {
        "memory" => crate::memory::BUGS,
        _ => &[],
    }
}

/// Bug knobs of a target when it serves `workload` (the memory target has isolation knobs for the
/// transactional workloads).
pub fn bugs_for(target: &str, workload: &str) -> &'static [(&'static str, &'static str)] {
    match target {
        "memory" if is_txn_workload(workload) => crate::memory_txn::TXN_BUGS,
        _ => bugs(target),
    }
}

pub fn create(name: &str, options: &TargetOptions) -> Option<Result<Arc<dyn Target>, TargetError>> {
    match name {
        "memory" if is_txn_workload(&options.workload) => Some(
            MemoryTxnTarget::new(
                &options.bugs,
                options.seed,
                options.workload == "rw-register",
            )
            .map(|t| Arc::new(t) as Arc<dyn Target>),
        ),
        "memory" => Some(
            MemoryTarget::new(&options.bugs, options.seed).map(|t| Arc::new(t) as Arc<dyn Target>),
        ),
        _ => None,
    }
}

pub fn names() -> Vec<&'static str> {
    TARGETS.iter().map(|(n, _)| *n).collect()
}
