//! Every workload by name.

use crate::bank::{Bank, BankConfig};
use crate::ledger_append::{LedgerAppend, LedgerAppendConfig};
use crate::rw_register::{RwRegister, RwRegisterConfig};
use crate::Workload;

/// (name, one-line description) of every workload.
pub const WORKLOADS: &[(&str, &str)] = &[
    (
        "bank",
        "transfers between accounts with unique ids, balance reads, a final read of balances and applied ids",
    ),
    (
        "ledger-append",
        "transfers as appends to per-account journals, audits reading several journals (graph checker)",
    ),
    ("rw-register", "transactions of reads and unique writes over a few registers (graph checker)"),
];

/// Options that shape a workload.
#[derive(Debug, Clone, Default)]
pub struct WorkloadOptions {
    pub bank: BankConfig,
    pub ledger_append: LedgerAppendConfig,
    pub rw_register: RwRegisterConfig,
}

pub fn create(name: &str, options: &WorkloadOptions) -> Option<Box<dyn Workload>> {
    match name {
        "bank" => Some(Box::new(Bank::new(options.bank.clone()))),
        "ledger-append" => Some(Box::new(LedgerAppend::new(options.ledger_append.clone()))),
        "rw-register" => Some(Box::new(RwRegister::new(options.rw_register.clone()))),
        _ => None,
    }
}

pub fn names() -> Vec<&'static str> {
    WORKLOADS.iter().map(|(n, _)| *n).collect()
}
