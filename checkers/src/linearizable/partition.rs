//! From a history to the independent sub-histories the search decides one by one.
//!
//! Pairs invocations with completions, lets the model read each operation, drops what constrains
//! nothing (failed writes, reads of unknown results), finds the initial state, and splits the rest by
//! key. Splitting is sound because linearizability is *local* (Herlihy & Wing 1990, Theorem 1): a
//! history of independent objects is linearizable iff each object's sub-history is. Horn & Kroening
//! ("Faster linearizability checking via P-compositionality", arXiv 1504.00204) call this
//! P-compositionality; Jepsen's `independent` checker and Porcupine's `Partition` do the same.

use std::collections::BTreeMap;

use verity_history::{History, HistoryError, OpOutcome, Process, Value};

use crate::linearizable::model::{Interner, Model, OpContext, ParseError, Parsed};

/// One operation to linearize. Times are positions in the history's event list, which is in real-time
/// order, so `a.ret < b.call` means `a` returned before `b` was invoked.
#[derive(Debug, Clone, PartialEq)]
pub struct OpRecord<O> {
    pub op: O,
    pub call: u64,
    /// When it returned, for operations that must take effect (completed `ok`, or a kept `fail`).
    /// `None` for `info` and pending operations: they may take effect at any point after `call`, or
    /// never.
    pub ret: Option<u64>,
    /// The `index` of the invoke and completion events, for the report.
    pub invoke_index: u64,
    pub completion_index: Option<u64>,
    pub process: u64,
    pub outcome: OpOutcome,
}

impl<O> OpRecord<O> {
    pub fn required(&self) -> bool {
        self.ret.is_some()
    }
}

/// The operations on one key (or all of them, when the history has no keys).
#[derive(Debug, Clone, PartialEq)]
pub struct Partition<O> {
    pub key: Option<Value>,
    pub ops: Vec<OpRecord<O>>,
}

impl<O> Partition<O> {
    /// The key as shown to people: its value, or `-` for an unkeyed history.
    pub fn label(&self) -> String {
        self.key
            .as_ref()
            .map_or_else(|| "-".to_string(), Value::to_string)
    }
}

/// A history ready for the search.
#[derive(Debug, Clone)]
pub struct Prepared<M: Model> {
    pub initial: M::State,
    pub partitions: Vec<Partition<M::Op>>,
    pub values: Interner,
    /// Client operations the model dropped (failed, or with an unknown result that constrains nothing).
    pub skipped: u64,
    pub client_ops: u64,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PrepareError {
    #[error("malformed history: {0}")]
    History(#[from] HistoryError),
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("no initial state: {0}")]
    NoInitialState(String),
    #[error(
        "the history mixes independent [key value] operations with plain ones (event {index})"
    )]
    MixedKeys { index: u64 },
}

/// Prepares `history` for checking against `model`.
pub fn prepare<M: Model>(model: &M, history: &History) -> Result<Prepared<M>, PrepareError> {
    let ops = history.ops()?;
    let mut values = Interner::new();
    // `init` runs first on the fresh interner: models may rely on the initial value being interned first.
    let mut initial = model.init(&mut values);
    let mut by_key: BTreeMap<String, Partition<M::Op>> = BTreeMap::new();
    let mut keyed: Option<bool> = None;
    let mut skipped = 0u64;
    let mut first_op: Option<(usize, OpRecord<M::Op>)> = None;
    for (n, op) in ops.iter().enumerate() {
        let invoke = &history.events[op.invoke];
        let completion = op.completion.map(|c| &history.events[c]);
        let ctx = OpContext {
            invoke,
            completion,
            outcome: op.outcome,
        };
        let (key, model_op) = match model.parse(ctx, &mut values)? {
            Parsed::Skip => {
                skipped += 1;
                continue;
            }
            Parsed::Setup(state) => {
                initial.get_or_insert(state);
                continue;
            }
            Parsed::Op { key, op } => (key, op),
        };
        if *keyed.get_or_insert(key.is_some()) != key.is_some() {
            return Err(PrepareError::MixedKeys {
                index: invoke.index,
            });
        }
        let Process::Client(process) = invoke.process else {
            unreachable!("History::ops yields client operations only");
        };
        let required = op.outcome == OpOutcome::Ok || op.outcome == OpOutcome::Fail;
        let record = OpRecord {
            op: model_op,
            call: op.invoke as u64,
            ret: if required {
                op.completion.map(|c| c as u64)
            } else {
                None
            },
            invoke_index: invoke.index,
            completion_index: completion.map(|c| c.index),
            process,
            outcome: op.outcome,
        };
        if first_op.is_none() {
            first_op = Some((n, record.clone()));
        }
        let label = key.as_ref().map_or_else(String::new, Value::to_string);
        by_key
            .entry(label)
            .or_insert_with(|| Partition {
                key,
                ops: Vec::new(),
            })
            .ops
            .push(record);
    }
    let initial = match initial {
        Some(s) => s,
        None => initial_from_first(model, &ops, first_op)?,
    };
    Ok(Prepared {
        initial,
        partitions: by_key.into_values().collect(),
        values,
        skipped,
        client_ops: ops.len() as u64,
    })
}

/// Jepsen's bank histories have no setup: the first operation is a read that completed before any
/// other operation began, and it shows the initial balances.
fn initial_from_first<M: Model>(
    model: &M,
    ops: &[verity_history::Op],
    first: Option<(usize, OpRecord<M::Op>)>,
) -> Result<M::State, PrepareError> {
    let cause = "the history has no setup operation, and its first operation is not a read that \
                 completed before any other operation began";
    let Some((n, record)) = first else {
        return Err(PrepareError::NoInitialState(cause.into()));
    };
    let completed = record.ret.filter(|_| record.outcome == OpOutcome::Ok);
    let alone = completed
        .is_some_and(|ret| n == 0 && ops.get(1).is_none_or(|next| (next.invoke as u64) > ret));
    match model.init_from_first(&record.op) {
        Some(state) if alone => Ok(state),
        _ => Err(PrepareError::NoInitialState(cause.into())),
    }
}
