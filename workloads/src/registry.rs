//! Every workload by name.

use crate::bank::{Bank, BankConfig};
use crate::Workload;

/// (name, one-line description) of every workload.
pub const WORKLOADS: &[(&str, &str)] = &[(
    "bank",
    "transfers between accounts with unique ids, balance reads, a final read of balances and applied ids",
)];

/// Options that shape a workload.
#[derive(Debug, Clone, Default)]
pub struct WorkloadOptions {
    pub bank: BankConfig,
}

pub fn create(name: &str, options: &WorkloadOptions) -> Option<Box<dyn Workload>> {
    match name {
        "bank" => Some(Box::new(Bank::new(options.bank.clone()))),
        _ => None,
    }
}

pub fn names() -> Vec<&'static str> {
    WORKLOADS.iter().map(|(n, _)| *n).collect()
}
