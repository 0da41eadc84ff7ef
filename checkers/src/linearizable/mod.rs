//! The linearizability checker: does one order of the operations, consistent with real time, explain
//! every result the clients saw?
//!
//! Herlihy & Wing's definition, decided by a WGL search (Wing & Gong 1993, with Lowe's just-in-time
//! linearization and memoization, 2017; the algorithm of Knossos's `wgl` and of Porcupine), over the
//! independent keys of the history searched separately and in parallel (P-compositionality, Horn &
//! Kroening 2015). The memo keeps 128-bit fingerprints of (linearized set, state) with the set hashed
//! incrementally, so the search holds a few dozen bytes per explored configuration whatever the
//! history length. `info` operations may take effect at any point after their invocation, or never.
//! Eager linearization of reads, a partial-order reduction after `info` operations and iterative
//! deepening on runs of them keep the explored configurations few (see [`search`]).
//! Time and memory are budgeted: running out gives `unknown` with the cause.
//!
//! The verdict: `valid`; or `invalid` with one `nonlinearizable` anomaly (message, the events of the
//! blocked operation and of those concurrent with it, `expected` = the states where it was due,
//! `observed` = the operation); or `unknown` with the cause (time or memory budget, or — with
//! `details.input_error = true` — a history the model cannot read). `details` holds `model`,
//! `partitions`, `ops` (operations searched), `client_ops`, `skipped_ops`, `stats` (see [`Stats`]) and,
//! when invalid, `counterexample` (`key`, `op`, `concurrent`, `concurrent_count`, `prefix_len`,
//! `prefix_tail` with `state_after` per op, `states`). [`summary_lines`] renders it for a terminal.
//!
//! Files: [`model`] (the `Model` trait), [`models`] (one file per model), [`partition`] (history →
//! sub-histories), [`search`] (WGL), [`entries`] (its lists), [`limits`] (deadline, memory,
//! cancellation), [`memo`] (fingerprints), [`report`] (counterexample and summary),
//! [`simulate`] (histories of correct and broken objects for tests and benchmarks), [`oracle`]
//! (brute force, for cross-checking).

pub mod entries;
pub mod limits;
pub mod memo;
pub mod model;
pub mod models;
pub mod oracle;
pub mod partition;
pub mod report;
pub mod search;
pub mod simulate;
pub mod witness;

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use verity_history::{History, Value};

use crate::verdict::{Budget, Verdict};
use crate::Checker;

pub use model::{Interner, Model, OpContext, ParseError, Parsed};
pub use partition::{prepare, OpRecord, Partition, PrepareError, Prepared};
pub use report::summary_lines;
pub use search::{Failure, Outcome, Stats};

/// Every model, with a one-line description, for `verity list`.
pub const MODELS: &[(&str, &str)] = &[
    ("register", "read/write register; a null read constrains nothing; [k v] values are independent keys"),
    ("cas-register", "register with compare-and-set [old new] (Knossos/Jepsen); [k v] values are independent keys"),
    ("multi-register", "registers read and written in txns of [read|write k v] micro-ops"),
    ("mutex", "lock with acquire and release"),
    ("set", "add v, and read returning every element"),
    ("counter", "add n (or increment), and read returning the total"),
    ("bank", "vector of balances: transfer {from to amount} (rejected when short) and read {balances}"),
];

/// The memory a check may hold when the budget names no limit: the checker stops with `unknown`
/// rather than let the machine run out.
pub const DEFAULT_MEMORY_BYTES: u64 = 2 << 30;

/// Options that do not come with the budget.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinearizableOptions {
    /// The initial value of register-like models (`register`, `cas-register`, `multi-register`: 0 when
    /// not given, as in Knossos's test data) or of the counter (an integer, 0 when not given).
    /// `Value::Null` is Jepsen's nil register.
    pub initial: Option<Value>,
    /// Search partitions one after another instead of in parallel (for measurements).
    pub sequential: bool,
    /// Turn off the search's reductions (eager reads, the partial-order reduction after `info`
    /// operations, deepening on `info` runs): the plain WGL search, slower, for cross-checking them.
    pub plain: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model {0:?}: expected one of register, cas-register, multi-register, mutex, set, counter, bank")]
pub struct UnknownModel(pub String);

/// Runs `$body` with `$c` bound to the checker of the model named `$name`, or gives
/// `Err(UnknownModel)`. One place maps names to models, so `checker_for` and `check_batch` agree.
macro_rules! with_model {
    ($name:expr, $options:expr, $c:ident => $body:expr) => {{
        let options: &LinearizableOptions = $options;
        let register_initial = options.initial.clone().unwrap_or(Value::Int(0));
        match $name {
            "register" => {
                let $c = Linearizable::new(
                    models::Register {
                        initial: register_initial,
                    },
                    options,
                );
                Ok($body)
            }
            "cas-register" => {
                let $c = Linearizable::new(
                    models::CasRegister {
                        initial: register_initial,
                    },
                    options,
                );
                Ok($body)
            }
            "multi-register" => {
                let $c = Linearizable::new(
                    models::MultiRegister {
                        initial: register_initial,
                    },
                    options,
                );
                Ok($body)
            }
            "mutex" => {
                let $c = Linearizable::new(models::Mutex, options);
                Ok($body)
            }
            "set" => {
                let $c = Linearizable::new(models::Set, options);
                Ok($body)
            }
            "counter" => {
                let start = options
                    .initial
                    .as_ref()
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let $c = Linearizable::new(models::Counter { initial: start }, options);
                Ok($body)
            }
            "bank" => {
                let $c = Linearizable::new(models::Bank, options);
                Ok($body)
            }
            other => Err(UnknownModel(other.to_string())),
        }
    }};
}

/// The checker for `model`, boxed for the binary's checker list.
pub fn checker_for(
    model: &str,
    options: &LinearizableOptions,
) -> Result<Box<dyn Checker>, UnknownModel> {
    with_model!(model, options, c => Box::new(c) as Box<dyn Checker>)
}

/// The linearizability checker over one model.
#[derive(Debug, Clone)]
pub struct Linearizable<M: Model> {
    pub model: M,
    pub options: LinearizableOptions,
}

impl<M: Model> Linearizable<M> {
    pub fn new(model: M, options: &LinearizableOptions) -> Self {
        Linearizable {
            model,
            options: options.clone(),
        }
    }

    /// Checks an already prepared history (lets benchmarks time the search alone).
    pub fn check_prepared(&self, prepared: &Prepared<M>, budget: &Budget) -> Verdict {
        self.check_in_pool(prepared, budget, &pool_for(budget))
    }

    /// Checks a prepared history, charging its memory to `pool` (shared with other checks).
    fn check_in_pool(
        &self,
        prepared: &Prepared<M>,
        budget: &Budget,
        pool: &search::MemoryPool,
    ) -> Verdict {
        // Lowest partition index found invalid so far. Partitions above it are cancelled; those below
        // always run to the end, so which violation is reported does not depend on thread timing.
        let first_invalid = AtomicUsize::new(usize::MAX);
        let run = |(i, p): (usize, &Partition<M::Op>)| {
            let cancelled = || first_invalid.load(Ordering::Relaxed) < i;
            if cancelled() {
                return (Outcome::Cancelled, Stats::default());
            }
            let limits = search::Limits {
                deadline: budget.deadline,
                memory: pool,
                cancel: &cancelled,
                reductions: !self.options.plain,
            };
            let result = search::search(&self.model, &prepared.initial, &p.ops, &limits);
            if matches!(result.0, Outcome::Nonlinearizable(_)) {
                first_invalid.fetch_min(i, Ordering::Relaxed);
            }
            result
        };
        let results: Vec<(Outcome<M::State>, Stats)> = if self.options.sequential {
            prepared.partitions.iter().enumerate().map(run).collect()
        } else {
            prepared
                .partitions
                .par_iter()
                .enumerate()
                .map(run)
                .collect()
        };
        self.verdict(prepared, &results, first_invalid.load(Ordering::Relaxed))
    }

    fn verdict(
        &self,
        prepared: &Prepared<M>,
        results: &[(Outcome<M::State>, Stats)],
        first_invalid: usize,
    ) -> Verdict {
        let mut verdict = Verdict::valid();
        let mut stats = Stats::default();
        // Only partitions that always run to the end count, so the figures are reproducible.
        for (_, s) in results.iter().take(first_invalid.saturating_add(1)) {
            stats.add(s);
        }
        let unknown = results
            .iter()
            .take(first_invalid)
            .find_map(|(o, _)| match o {
                Outcome::Unknown(cause) => Some(cause.clone()),
                _ => None,
            });
        if let Some((Outcome::Nonlinearizable(failure), _)) = results.get(first_invalid) {
            let partition = &prepared.partitions[first_invalid];
            let (anomaly, structure) =
                report::counterexample(&self.model, &prepared.values, partition, failure);
            verdict.push(anomaly);
            verdict.detail("counterexample", structure);
        } else if let Some(cause) = unknown {
            verdict.set_unknown(cause);
        }
        verdict.detail("model", self.model.name());
        verdict.detail("partitions", prepared.partitions.len());
        verdict.detail(
            "ops",
            prepared
                .partitions
                .iter()
                .map(|p| p.ops.len())
                .sum::<usize>(),
        );
        verdict.detail("client_ops", prepared.client_ops);
        verdict.detail("skipped_ops", prepared.skipped);
        verdict.detail("stats", stats);
        verdict
    }

    /// Checks many histories with one call, in parallel (rayon), under one shared budget: what
    /// `verity check DIR` needs. Verdicts come back in the order of `histories`.
    pub fn check_batch(&self, histories: &[History], budget: &Budget) -> Vec<Verdict> {
        let pool = pool_for(budget);
        histories
            .par_iter()
            .map(|h| match prepare(&self.model, h) {
                Ok(prepared) => self.check_in_pool(&prepared, budget, &pool),
                Err(e) => self.unprepared(e),
            })
            .collect()
    }

    fn unprepared(&self, e: PrepareError) -> Verdict {
        let mut v = Verdict::unknown(format!(
            "cannot check against model {}: {e}",
            self.model.name()
        ));
        v.detail("input_error", true);
        v.detail("model", self.model.name());
        v
    }
}

impl<M: Model> Checker for Linearizable<M> {
    fn name(&self) -> &'static str {
        "linearizable"
    }

    fn check(&self, history: &History, budget: &Budget) -> Verdict {
        match prepare(&self.model, history) {
            Ok(prepared) => self.check_prepared(&prepared, budget),
            Err(e) => self.unprepared(e),
        }
    }
}

/// The memory pool of one check (or one batch): the budget's limit, or [`DEFAULT_MEMORY_BYTES`].
fn pool_for(budget: &Budget) -> search::MemoryPool {
    search::MemoryPool::new(budget.memory_bytes_max.unwrap_or(DEFAULT_MEMORY_BYTES))
}

/// Checks many histories against `model` with one call — what `verity check DIR` needs: histories
/// are checked in parallel (rayon), under one deadline and one memory pool, so the batch as a whole
/// respects the budget. Verdicts come back in the order of `histories`.
pub fn check_batch(
    model: &str,
    options: &LinearizableOptions,
    histories: &[History],
    budget: &Budget,
) -> Result<Vec<Verdict>, UnknownModel> {
    with_model!(model, options, c => c.check_batch(histories, budget))
}
