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
//!   brute-force serial-order oracle; [`stores`]: stores of every strength from strict
//!   serializable down to dirty reads, and [`isolation`]: a brute-force oracle of every model the
//!   graph checker names, for the cross-check of its "rules out / still consistent with" lists;
//! - [`replicas`]: a replicated ledger under faults, for `convergence`.
//!
//! Every simulator takes its randomness from a seed, and models what real systems do to a history:
//! concurrency, timeouts whose effect lands before or after the `info` (or never), processes that
//! crash with an operation in flight, and nemesis events between the clients' operations.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_history::{Event, EventType, History, Process, Value, F};

pub mod isolation;
pub mod ledger;
pub mod replicas;
pub mod stores;
pub mod tally;
pub mod txn;

/// The linearizability checker as `verity check --checker linearizable --model M` builds it (for
/// the bank: the journal witness first, then the search), so that the tests judge what users run.
pub fn linearizable(model: &str) -> Box<dyn verity_checkers::Checker> {
    verity_checkers::registry::create(
        "linearizable",
        &verity_checkers::registry::CheckerOptions {
            model: Some(model.to_string()),
            initial: None,
        },
    )
    .expect("a known model")
}

/// Linearizable objects and Jepsen's plain bank: the simulators of the checkers crate.
pub mod objects {
    pub use verity_checkers::linearizable::simulate::*;
}

/// The nemesis of the simulators: between the clients' steps, now and then a partition starts or
/// heals. Its events only sit in the history; the simulated systems stay correct under them.
#[derive(Debug, Default)]
struct Nemesis {
    partitioned: bool,
}

impl Nemesis {
    /// The event of this step, if any (`start-partition` or `stop-partition`).
    fn step(&mut self, rng: &mut ChaCha8Rng) -> Option<&'static str> {
        rng.gen_bool(0.03).then(|| self.toggle())
    }

    /// The heal at the end, if a partition is still open.
    fn finish(&mut self) -> Option<&'static str> {
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

/// `history` with nemesis events put between its events (from `seed`): partitions that start and
/// heal, none before the first operation has completed (a setup stays first), the last one healed
/// just before the history's last invocation (the final read stays last). Events are renumbered; a
/// nemesis event takes the time of the event before it.
pub fn with_nemesis(history: History, seed: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nemesis = Nemesis::default();
    let last_invoke = history
        .events
        .iter()
        .rposition(|e| e.kind == EventType::Invoke);
    let mut events: Vec<Event> = Vec::with_capacity(history.events.len() + 16);
    let nemesis_event = |f: &str, time_ns| Event {
        index: 0,
        time_ns,
        process: Process::Nemesis,
        kind: EventType::Info,
        f: F::from_name(f),
        value: Value::Null,
        error: None,
    };
    let mut started = false;
    for (i, e) in history.events.into_iter().enumerate() {
        let at = events.last().map_or(e.time_ns, |p| p.time_ns);
        let step = if Some(i) == last_invoke {
            nemesis.finish()
        } else if started && last_invoke.is_some_and(|l| i < l) {
            nemesis.step(&mut rng)
        } else {
            None
        };
        if let Some(f) = step {
            events.push(nemesis_event(f, at));
        }
        started |= e.kind != EventType::Invoke;
        events.push(e);
    }
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    History::new(events)
}
