//! verity's test support, shared by every test crate of the workspace and never shipped.
//!
//! One simulator per family of systems, each correct by construction (whatever it produces is a
//! valid history), and the mutations that break their histories in the way one anomaly describes:
//!
//! - [`ledger`]: an atomic ledger with transfer ids and a journal of applied ids (verity's own bank
//!   histories), for `conservation` and the bank witness;
//! - [`objects`]: linearizable objects (register, cas-register, multi-register, set, counter,
//!   mutex) and Jepsen's plain bank without ids, for `linearizable` (the simulators live in the
//!   checkers crate, because `verity bench --checkers` generates its histories with them);
//! - [`txn`]: transactional stores over list-append and rw-register, for `graph`, with a
//!   brute-force serial-order oracle;
//! - [`replicas`]: a replicated ledger under faults, for `convergence`.
//!
//! Every simulator takes its randomness from a seed, and models what real systems do to a history:
//! concurrency, timeouts whose effect lands before or after the `info` (or never), processes that
//! crash with an operation in flight, and nemesis events between the clients' operations.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub mod ledger;
pub mod replicas;
pub mod tally;
pub mod txn;

/// Linearizable objects and Jepsen's plain bank: the simulators of the checkers crate.
pub mod objects {
    pub use verity_checkers::linearizable::simulate::*;
}

/// The nemesis of the simulators: between the clients' steps, now and then a partition starts or
/// heals. Its events only sit in the history; the simulated systems stay correct under them.
#[derive(Debug, Default)]
pub struct Nemesis {
    partitioned: bool,
}

impl Nemesis {
    /// The event of this step, if any (`start-partition` or `stop-partition`).
    pub fn step(&mut self, rng: &mut ChaCha8Rng) -> Option<&'static str> {
        rng.gen_bool(0.03).then(|| self.toggle())
    }

    /// The heal at the end, if a partition is still open.
    pub fn finish(&mut self) -> Option<&'static str> {
        self.partitioned.then(|| self.toggle())
    }

    fn toggle(&mut self) -> &'static str {
        self.partitioned = !self.partitioned;
        if self.partitioned {
            "start-partition"
        } else {
            "stop-partition"
        }
    }
}
