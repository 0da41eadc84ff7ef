//! Every workload by name: one [`WorkloadEntry`] each, in the one registry shape of
//! [`verity_history::registry`].

use verity_history::registry::{Entry, Registry};

use crate::bank::{Bank, BankConfig};
use crate::ledger_append::{LedgerAppend, LedgerAppendConfig};
use crate::rw_register::{RwRegister, RwRegisterConfig};
use crate::Workload;

/// Options that shape a workload.
#[derive(Debug, Clone, Default)]
pub struct WorkloadOptions {
    pub bank: BankConfig,
    pub ledger_append: LedgerAppendConfig,
    pub rw_register: RwRegisterConfig,
}

/// A workload as the binary sees it.
pub struct WorkloadEntry {
    pub name: &'static str,
    pub about: &'static str,
    /// Its operations are `txn`s of micro-ops (Elle's shape), which transactional targets serve.
    pub transactional: bool,
    pub create: fn(&WorkloadOptions) -> Box<dyn Workload>,
}

impl Entry for WorkloadEntry {
    fn name(&self) -> &'static str {
        self.name
    }
    fn about(&self) -> &'static str {
        self.about
    }
}

pub static WORKLOADS: Registry<WorkloadEntry> = Registry::new(
    "workload",
    &[
        WorkloadEntry {
            name: "bank",
            about: "transfers between accounts with unique ids, balance reads, a final read of balances and applied ids",
            transactional: false,
            create: |o| Box::new(Bank::new(o.bank.clone())),
        },
        WorkloadEntry {
            name: "ledger-append",
            about: "transfers as appends to per-account journals, audits reading several journals (graph checker)",
            transactional: true,
            create: |o| Box::new(LedgerAppend::new(o.ledger_append.clone())),
        },
        WorkloadEntry {
            name: "rw-register",
            about: "transactions of reads and unique writes over a few registers (graph checker)",
            transactional: true,
            create: |o| Box::new(RwRegister::new(o.rw_register.clone())),
        },
    ],
);

/// Builds the workload `name`, or `None` if there is none of that name.
pub fn create(name: &str, options: &WorkloadOptions) -> Option<Box<dyn Workload>> {
    WORKLOADS.get(name).ok().map(|w| (w.create)(options))
}

pub fn names() -> Vec<&'static str> {
    WORKLOADS.names()
}
