//! The anomaly names of the design, in one place, so every checker, report and test spells them alike.

pub const WRONG_TOTAL: &str = "wrong-total";
pub const NEGATIVE_BALANCE: &str = "negative-balance";
pub const LOST_TRANSFER: &str = "lost-transfer";
pub const DUPLICATE_TRANSFER: &str = "duplicate-transfer";
pub const PHANTOM_TRANSFER: &str = "phantom-transfer";
pub const FAILED_TRANSFER_APPLIED: &str = "failed-transfer-applied";
pub const BALANCE_MISMATCH: &str = "balance-mismatch";
pub const NONLINEARIZABLE: &str = "nonlinearizable";
pub const DIVERGENT_REPLICAS: &str = "divergent-replicas";
pub const UNAVAILABLE: &str = "unavailable";

/// Every conservation anomaly, in the order the design lists them.
pub const CONSERVATION: [&str; 7] = [
    WRONG_TOTAL,
    NEGATIVE_BALANCE,
    LOST_TRANSFER,
    DUPLICATE_TRANSFER,
    PHANTOM_TRANSFER,
    FAILED_TRANSFER_APPLIED,
    BALANCE_MISMATCH,
];
