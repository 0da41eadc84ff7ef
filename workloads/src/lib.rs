//! verity-workloads: seeded, pure generators of operations.
//!
//! A workload decides what clients do: the setup invocation that creates the initial state, the
//! stream of main-phase invocations for each worker, and the final reads. Generators are synchronous
//! and deterministic: every random choice comes from the RNG the controller hands them, which is
//! derived from the run's seed. Workloads know nothing of checkers; the binary pairs them.

pub mod bank;
pub mod ledger_append;
pub mod registry;
pub mod rw_register;

use rand_chacha::ChaCha8Rng;
use verity_history::Invocation;

/// Produces one worker's operations.
pub trait Generator: Send {
    /// The next main-phase invocation.
    fn next(&mut self, rng: &mut ChaCha8Rng) -> Invocation;
}

/// A workload: a family of generators that share one initial state.
pub trait Workload: Send + Sync {
    fn name(&self) -> &'static str;
    /// The invocation that creates the initial state (recorded as a `setup` op).
    fn setup(&self) -> Invocation;
    /// A generator for worker `worker` of `workers`. Distinct workers never produce the same id.
    fn generator(&self, worker: usize, workers: usize) -> Box<dyn Generator>;
    /// The reads of the final phase, issued after every fault healed and every op completed.
    fn final_reads(&self) -> Vec<Invocation>;
}
