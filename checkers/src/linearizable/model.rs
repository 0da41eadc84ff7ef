//! The sequential specification a history is checked against: the [`Model`] trait, and the value
//! interner that turns history values into small integers so model states hash and compare fast.
//!
//! The trait follows Porcupine's `Model` (init, step, equality/hash of states, describe) and Knossos's
//! models (`knossos.model`): `step` is a pure function from a state and an operation *with its
//! observed result* to the next state, or `None` when the result could not have been observed from
//! that state. Operations whose outcome is unknown (`info`, pending) carry no result: a model steps
//! them only where they can take effect, and the search may also leave them out (they may never have
//! happened).

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;

use verity_history::{Event, OpOutcome, Value};

/// Why an operation of a history cannot be read as an operation of a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index}: {problem}")]
pub struct ParseError {
    /// The `index` of the offending event.
    pub index: u64,
    pub problem: String,
}

impl ParseError {
    pub fn new(event: &Event, problem: impl Into<String>) -> Self {
        ParseError {
            index: event.index,
            problem: problem.into(),
        }
    }
}

/// What one client operation of a history means to a model.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<O, S> {
    /// The operation constrains nothing (a failed write, a read whose result is unknown).
    Skip,
    /// The operation set the initial state (a bank's `setup`).
    Setup(S),
    /// An operation to linearize; `key` names its independent partition (Jepsen's `[k v]` tuples).
    Op { key: Option<Value>, op: O },
}

/// One operation of a history as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpContext<'a> {
    pub invoke: &'a Event,
    pub completion: Option<&'a Event>,
    pub outcome: OpOutcome,
}

impl OpContext<'_> {
    /// The value the operation returned, when it completed `ok`.
    pub fn result(&self) -> Option<&Value> {
        match (self.outcome, self.completion) {
            (OpOutcome::Ok, Some(c)) => Some(&c.value),
            _ => None,
        }
    }

    /// Whether the operation completed with a known outcome (it is not `info` or pending).
    pub fn is_determinate(&self) -> bool {
        !self.outcome.is_indeterminate()
    }

    pub fn error(&self, problem: impl Into<String>) -> ParseError {
        ParseError::new(self.completion.unwrap_or(self.invoke), problem)
    }
}

/// A sequential specification. One small file per model implements it (`models/*.rs`).
pub trait Model: Send + Sync + 'static {
    /// A model state. States are fingerprinted by their `Hash`, so two states that compare equal must
    /// hash equal, as `HashMap` already demands.
    type State: Clone + Eq + Hash + Debug + Send + Sync;
    /// An operation together with its observed result (none when the outcome is unknown).
    type Op: Clone + Debug + Eq + Hash + Send + Sync;
    /// What the model precomputes about the operations a stuck search may still linearize (see
    /// [`Model::pool_summary`]); `()` for models that do not guide the search.
    type Pool: Default;

    /// The name used on the command line (`--model cas-register`).
    fn name(&self) -> &'static str;

    /// Reads one client operation. `fail` operations reach this too: most models skip them (they did
    /// not happen), the bank keeps `insufficient-funds` failures as observations.
    fn parse(
        &self,
        op: OpContext<'_>,
        values: &mut Interner,
    ) -> Result<Parsed<Self::Op, Self::State>, ParseError>;

    /// The initial state when the history does not give one (`None`: the history must).
    fn init(&self, values: &mut Interner) -> Option<Self::State>;

    /// The initial state read off the history's first operation, when that operation completed before
    /// any other began (a bank's first read). Only asked when there is no setup and no [`Model::init`].
    fn init_from_first(&self, _op: &Self::Op) -> Option<Self::State> {
        None
    }

    /// The next state, or `None` if `op` (with its observed result) is impossible in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// Whether `op` never changes the state (its `step` gives `None` or the same state), like a read.
    /// The search linearizes such an operation as soon as it can and never tries it later: that is
    /// sound only if this holds for every state. `false` is always safe.
    fn is_read_only(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Whether linearizing the optional (`info`) operation `optional` in `state` makes the required
    /// operation `follower` possible there and then in a way that does not commute: `follower` is
    /// accepted after `optional`, and `follower` then `optional` does not lead to the same state.
    /// `None` when the model has no cheap answer (the search then asks [`Model::step`]). The search
    /// uses it to skip an `info` operation that must end its run and enables no follower (see
    /// `search.rs`), so `Some(false)` must only be given when that holds.
    fn enables(
        &self,
        _state: &Self::State,
        _optional: &Self::Op,
        _follower: &Self::Op,
    ) -> Option<bool> {
        None
    }

    /// A necessary condition for the required operation `due` to become acceptable once some of
    /// `movers` (in any order, each at most once) have been linearized from `state`: `false` only if
    /// no such sequence can exist. The search stops trying `info` operations for a `due` that no
    /// choice can help. `true` is always safe.
    fn may_become_legal(
        &self,
        _state: &Self::State,
        _due: &Self::Op,
        _movers: &[&Self::Op],
    ) -> bool {
        true
    }

    /// A summary of `followers` (the required candidates of a stuck configuration) and `pool` (the
    /// `info` operations it may still linearize before the due return), for [`Model::info_may_help`].
    fn pool_summary(&self, _followers: &[&Self::Op], _pool: &[&Self::Op]) -> Self::Pool {
        Self::Pool::default()
    }

    /// Whether the `info` operation `optional`, linearized in `state` and followed by at most `room`
    /// more `info` operations of the pool and then by one of `followers`, can be needed there — that
    /// is, cannot be moved after that follower (see `search.rs`). `false` only when that holds for
    /// every such run. `true` is always safe.
    fn info_may_help(
        &self,
        _state: &Self::State,
        _optional: &Self::Op,
        _followers: &[Self::Op],
        _pool: &Self::Pool,
        _room: u32,
    ) -> bool {
        true
    }

    /// Whether no state reachable from `initial` accepts `op` (a bank read showing another total):
    /// then a history where `op` must take effect is not linearizable, and the search is not needed
    /// to say so. `false` is always safe.
    fn unreachable(&self, _initial: &Self::State, _op: &Self::Op) -> bool {
        false
    }

    /// A short human description of an operation, e.g. `cas 1→2` or `read → 3`.
    fn describe_op(&self, op: &Self::Op, values: &Interner) -> String;

    /// A short human description of a state, e.g. `3` or `[10, 4, 0]`.
    fn describe_state(&self, state: &Self::State, values: &Interner) -> String;

    /// Heap bytes a state owns beyond its inline size, for the memory budget.
    fn state_heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }
}

/// Maps history values to dense ids, so register-like states are a `u32` and compare in one
/// instruction. Integers (the common case) take a fast path; other values are keyed by their JSON.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ints: HashMap<i64, u32>,
    others: HashMap<String, u32>,
    values: Vec<Value>,
}

impl Interner {
    pub fn new() -> Self {
        Interner::default()
    }

    pub fn id(&mut self, value: &Value) -> u32 {
        let next = u32::try_from(self.values.len()).expect("fewer than 2^32 distinct values");
        let id = match value {
            Value::Int(i) => *self.ints.entry(*i).or_insert(next),
            other => *self.others.entry(other.to_string()).or_insert(next),
        };
        if id == next {
            self.values.push(value.clone());
        }
        id
    }

    pub fn value(&self, id: u32) -> &Value {
        &self.values[id as usize]
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Splits a Jepsen independent tuple `[key, v]` into its key and value. `nested` says whether the
/// plain (non-independent) value is itself a 2-list (a cas's `[old, new]`): then only `[key, [..]]`
/// counts as a tuple.
pub fn split_independent(value: &Value, nested: bool) -> (Option<Value>, &Value) {
    match value.as_list() {
        Some([k, v]) if !nested || v.as_list().is_some() => (Some(k.clone()), v),
        _ => (None, value),
    }
}
