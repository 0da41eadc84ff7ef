//! Transactions as the graph checker sees them: the micro-ops of each `txn` operation, decoded once
//! from the history's generic [`Value`] tree.
//!
//! The vocabulary is Elle's (Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from
//! Experimental Observations", VLDB 2020), in the shape both our JSONL and the EDN import produce: a
//! transaction is a list of 3-lists `["append", k, v]`, `["r", k, null | [v…]]` (list-append) or
//! `["w", k, v]`, `["r", k, null | v]` (rw-register). A committed (`ok`) transaction is read from its
//! completion, where reads are filled in; an `info` or unfinished one from its invocation (its writes
//! are known, its reads are not); a `fail`ed one did not commit and is kept only so that a read of its
//! writes can be named (G1a). Reads borrow the history's lists rather than copying them: histories
//! of a million transactions hold tens of millions of read elements.

use thiserror::Error;
use verity_history::{EventType, History, MicroOp, MopF, MopValue, OpOutcome, Process, Value, F};

/// One micro-operation of a transaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mop<'h> {
    /// `["append", k, v]`: appends `v` to the list at `k`.
    Append { key: i64, value: i64 },
    /// `["w", k, v]`: sets the register at `k` to `v`.
    Write { key: i64, value: i64 },
    /// `["r", k, …]`. `value` is `None` when the read's result is unknown (an invocation).
    Read {
        key: i64,
        value: Option<ReadValue<'h>>,
    },
}

/// What a read returned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadValue<'h> {
    /// `null`: an empty list (list-append) or the initial, never-written register (rw-register).
    Nil,
    /// A list-append read: the whole list, elements in order.
    List(ListView<'h>),
    /// A register read of a written value.
    Int(i64),
}

impl<'h> ReadValue<'h> {
    /// The list elements (empty for `Nil`); `None` if this is a register value.
    pub fn list(&self) -> Option<ListView<'h>> {
        match self {
            ReadValue::Nil => Some(ListView::Ints(&[])),
            ReadValue::List(l) => Some(*l),
            ReadValue::Int(_) => None,
        }
    }
}

/// A borrowed list of integer elements: from the generic value tree (validated at decode time) or
/// from the typed fast path.
#[derive(Debug, Clone, Copy)]
pub enum ListView<'h> {
    Values(&'h [Value]),
    Ints(&'h [i64]),
}

impl PartialEq for ListView<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ListView::Ints(a), ListView::Ints(b)) => a == b,
            _ => self.len() == other.len() && self.iter().eq(other.iter()),
        }
    }
}

impl<'h> ListView<'h> {
    pub fn len(&self) -> usize {
        match self {
            ListView::Values(v) => v.len(),
            ListView::Ints(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, i: usize) -> i64 {
        match self {
            ListView::Values(v) => v[i]
                .as_i64()
                .expect("list elements are validated as integers at decode time"),
            ListView::Ints(v) => v[i],
        }
    }
    pub fn last(&self) -> Option<i64> {
        (!self.is_empty()).then(|| self.get(self.len() - 1))
    }
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
    /// The first `n` elements.
    pub fn prefix(&self, n: usize) -> ListView<'h> {
        match *self {
            ListView::Values(v) => ListView::Values(&v[..n]),
            ListView::Ints(v) => ListView::Ints(&v[..n]),
        }
    }
    /// Whether this list is a prefix of `other`.
    pub fn is_prefix_of(&self, other: &ListView<'_>) -> bool {
        self.len() <= other.len() && *self == other.prefix(self.len())
    }
}

/// One transaction of the history.
#[derive(Debug, Clone)]
pub struct Txn<'h> {
    /// Position of the invocation in `History::events`.
    pub invoke: usize,
    /// Position of the completion, if any.
    pub completion: Option<usize>,
    pub process: u64,
    pub outcome: OpOutcome,
    pub mops: Vec<Mop<'h>>,
}

impl Txn<'_> {
    /// Committed for certain.
    pub fn is_ok(&self) -> bool {
        self.outcome == OpOutcome::Ok
    }
    /// May have committed (Elle: `info` transactions are possibly committed).
    pub fn may_commit(&self) -> bool {
        self.outcome != OpOutcome::Fail
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum TxnError {
    #[error("{0}")]
    History(#[from] verity_history::HistoryError),
    #[error("event {index}: malformed micro-op {mop}: {why}")]
    Malformed {
        index: u64,
        mop: String,
        why: &'static str,
    },
    #[error("event {index}: a txn value must be a list of micro-ops")]
    NotAList { index: u64 },
}

/// Which data type the history's transactions act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    ListAppend,
    RwRegister,
}

/// All `txn` operations of a history (others, and nemesis events, are ignored), in invocation order.
pub fn decode(history: &History) -> Result<Vec<Txn<'_>>, TxnError> {
    use rayon::prelude::*;
    let ops = history.ops()?;
    // Decoding is per operation and independent: in parallel, in order.
    let txns: Vec<Option<Txn<'_>>> = ops
        .par_iter()
        .with_min_len(4096)
        .map(|op| decode_op(history, op))
        .collect::<Result<_, _>>()?;
    Ok(txns.into_iter().flatten().collect())
}

fn decode_op<'h>(
    history: &'h History,
    op: &verity_history::Op,
) -> Result<Option<Txn<'h>>, TxnError> {
    let inv = &history.events[op.invoke];
    let Process::Client(process) = inv.process else {
        return Ok(None);
    };
    if inv.f != F::Txn {
        return Ok(None);
    }
    // A committed transaction's completion carries the reads; otherwise only the invocation is
    // trustworthy about what it meant to write.
    let source = match (op.outcome, op.completion) {
        (OpOutcome::Ok, Some(c)) => &history.events[c],
        _ => inv,
    };
    debug_assert!(op.outcome != OpOutcome::Ok || source.kind == EventType::Ok);
    let mut mops = decode_mops(source.index, &source.value)?;
    if op.outcome != OpOutcome::Ok {
        // An invocation's reads say `null` because nothing was read yet, not because a list
        // was empty: the result is unknown.
        for m in &mut mops {
            if let Mop::Read { value, .. } = m {
                *value = None;
            }
        }
    }
    Ok(Some(Txn {
        invoke: op.invoke,
        completion: op.completion,
        process,
        outcome: op.outcome,
        mops,
    }))
}

fn decode_mops(index: u64, value: &Value) -> Result<Vec<Mop<'_>>, TxnError> {
    if let Value::Txn(mops) = value {
        return mops.iter().map(|m| fast_mop(index, m)).collect();
    }
    let list = value.as_list().ok_or(TxnError::NotAList { index })?;
    let mut out = Vec::with_capacity(list.len());
    for m in list {
        out.push(decode_mop(index, m)?);
    }
    Ok(out)
}

/// A micro-op of the typed fast path (already validated by its decoder).
fn fast_mop(index: u64, m: &MicroOp) -> Result<Mop<'_>, TxnError> {
    Ok(match (m.f, &m.value) {
        (MopF::Append, MopValue::Int(v)) => Mop::Append {
            key: m.key,
            value: *v,
        },
        (MopF::Write, MopValue::Int(v)) => Mop::Write {
            key: m.key,
            value: *v,
        },
        (MopF::Read, v) => Mop::Read {
            key: m.key,
            value: Some(match v {
                MopValue::Null => ReadValue::Nil,
                MopValue::Int(i) => ReadValue::Int(*i),
                MopValue::List(l) => ReadValue::List(ListView::Ints(l)),
            }),
        },
        (_, _) => {
            return Err(TxnError::Malformed {
                index,
                mop: m.to_generic().to_string(),
                why: "appended or written value is not an integer",
            })
        }
    })
}

fn decode_mop(index: u64, m: &Value) -> Result<Mop<'_>, TxnError> {
    let bad = |why| TxnError::Malformed {
        index,
        mop: m.to_string(),
        why,
    };
    let parts = m.as_list().ok_or_else(|| bad("not a list"))?;
    let [f, k, v] = parts else {
        return Err(bad("expected [f, key, value]"));
    };
    let f = f.as_str().ok_or_else(|| bad("f is not a string"))?;
    let key = k.as_i64().ok_or_else(|| bad("key is not an integer"))?;
    match f {
        "append" => Ok(Mop::Append {
            key,
            value: v
                .as_i64()
                .ok_or_else(|| bad("appended value is not an integer"))?,
        }),
        "w" => Ok(Mop::Write {
            key,
            value: v
                .as_i64()
                .ok_or_else(|| bad("written value is not an integer"))?,
        }),
        "r" => {
            let value = match v {
                Value::Null => Some(ReadValue::Nil),
                Value::Int(i) => Some(ReadValue::Int(*i)),
                Value::List(l) => {
                    if l.iter().any(|e| e.as_i64().is_none()) {
                        return Err(bad("read list holds a non-integer"));
                    }
                    Some(ReadValue::List(ListView::Values(l)))
                }
                _ => return Err(bad("read value is not null, an integer or a list")),
            };
            Ok(Mop::Read { key, value })
        }
        _ => Err(bad("f is not append, r or w")),
    }
}

/// Decides the data type: any `append` means list-append, any `w` rw-register, both is an error.
pub fn data_kind(txns: &[Txn<'_>]) -> Result<DataKind, &'static str> {
    let (mut append, mut write) = (false, false);
    for t in txns {
        for m in &t.mops {
            match m {
                Mop::Append { .. } => append = true,
                Mop::Write { .. } => write = true,
                Mop::Read {
                    value: Some(ReadValue::List(l)),
                    ..
                } if !l.is_empty() => append = true,
                Mop::Read { .. } => {}
            }
        }
    }
    match (append, write) {
        (true, true) => Err("the history mixes list appends and register writes"),
        (false, true) => Ok(DataKind::RwRegister),
        _ => Ok(DataKind::ListAppend),
    }
}
