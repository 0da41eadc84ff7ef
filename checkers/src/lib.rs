//! verity-checkers: pure functions from a history to a verdict.
//!
//! Checkers never touch the network, a clock (beyond their budget's deadline), tokio or a target, so
//! `verity check` decides a stored or imported history offline and reproducibly. Each checker is one
//! module implementing [`Checker`]; [`registry`] lists them.

pub mod conservation;
pub mod convergence;
pub mod graph;
pub mod linearizable;
pub mod registry;
pub mod verdict;

use verity_history::History;

pub use verdict::{Anomaly, Budget, Validity, Verdict};

/// A checker of histories. Pure and three-valued.
pub trait Checker: Send + Sync {
    /// The name used on the command line and in results.json.
    fn name(&self) -> &'static str;
    fn check(&self, history: &History, budget: &Budget) -> Verdict;
}
