//! Every target by name.

use std::sync::Arc;

use crate::memory::MemoryTarget;
use crate::{Target, TargetError};

/// (name, one-line description) of every target.
pub const TARGETS: &[(&str, &str)] = &[("memory", "in-process ledger with bug knobs; nothing to install")];

/// What a target is created with.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    pub bugs: Vec<String>,
    pub seed: u64,
}

/// Bug knobs of a target: (name, description).
pub fn bugs(target: &str) -> &'static [(&'static str, &'static str)] {
    match target {
        "memory" => crate::memory::BUGS,
        _ => &[],
    }
}

pub fn create(name: &str, options: &TargetOptions) -> Option<Result<Arc<dyn Target>, TargetError>> {
    match name {
        "memory" => Some(MemoryTarget::new(&options.bugs, options.seed).map(|t| Arc::new(t) as Arc<dyn Target>)),
        _ => None,
    }
}

pub fn names() -> Vec<&'static str> {
    TARGETS.iter().map(|(n, _)| *n).collect()
}
