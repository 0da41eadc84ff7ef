//! Every target by name.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cluster::{ClusterOptions, ClusterTarget};
use crate::memory::MemoryTarget;
use crate::memory_txn::MemoryTxnTarget;
use crate::{Target, TargetError};

/// (name, one-line description) of every target.
pub const TARGETS: &[(&str, &str)] = &[
    (
        "memory",
        "in-process ledger with bug knobs; nothing to install",
    ),
    (
        "cluster",
        "built-in replicated ledger: `verity node` processes agreeing by Raft over TCP (bank, ledger-append, rw-register)",
    ),
];

/// What a target is created with.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    pub bugs: Vec<String>,
    pub seed: u64,
    /// The workload the target will serve: some targets pick their implementation by it (the
    /// memory target is transactional for `ledger-append` and `rw-register`).
    pub workload: String,
    /// Nodes of a multi-node target (0: the target's default).
    pub nodes: usize,
    /// Where a target keeps data and node logs (`None`: a fresh directory under the system temp dir).
    pub dir: Option<PathBuf>,
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
        "cluster" => crate::cluster::BUGS,
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
        "cluster" => Some(
            ClusterTarget::new(cluster_options(options)).map(|t| Arc::new(t) as Arc<dyn Target>),
        ),
        _ => None,
    }
}

pub fn names() -> Vec<&'static str> {
    TARGETS.iter().map(|(n, _)| *n).collect()
}

/// The cluster target's options from generic ones: 3 nodes unless told otherwise.
pub fn cluster_options(options: &TargetOptions) -> ClusterOptions {
    let nodes = if options.nodes == 0 { 3 } else { options.nodes };
    let dir = options.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "verity-cluster-{}-{}",
            std::process::id(),
            options.seed
        ))
    });
    let mut o = ClusterOptions::new(nodes, dir, options.seed);
    o.bugs = options.bugs.clone();
    o.registers = options.workload == "rw-register";
    o
}
