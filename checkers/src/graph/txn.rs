//! Transactions as the graph checker sees them: the micro-ops of each `txn` operation, decoded once
//! into a compact store of flat arrays.
//!
//! The vocabulary is Elle's (Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from
//! Experimental Observations", VLDB 2020), in the shape both our JSONL and the EDN import produce: a
//! transaction is a list of 3-lists `["append", k, v]`, `["r", k, null | [v…]]` (list-append) or
//! `["w", k, v]`, `["r", k, null | v]` (rw-register). A committed (`ok`) transaction is read from its
//! completion, where reads are filled in; an `info` or unfinished one from its invocation (its writes
//! are known, its reads are not); a `fail`ed one did not commit and is kept only so that a read of its
//! writes can be named (G1a).
//!
//! Why a store of flat arrays rather than a vector of micro-ops per transaction: Elle-scale
//! histories hold tens of millions of transactions, and the per-transaction allocations, the fat
//! enum of a generic micro-op and above all the read lists dominated the checker's memory. Here a
//! micro-op is 16 bytes in one flat vector, keys are interned, and a list-append read is stored
//! as a *length*: every read of a key in a valid history is a prefix of the key's longest read, so
//! the store keeps one list per key (the longest read seen so far that all others are prefixes of)
//! and a read that is a prefix of it costs nothing more. A read that is not (an anomaly, or a key
//! read in two incompatible orders) keeps its elements in a side arena, so the store is lossless:
//! every read gives back exactly the list it read.

use rustc_hash::FxHashMap;
use thiserror::Error;
use verity_history::{History, MicroOp, MopF, MopValue, OpOutcome, Process, Value, F};

/// One micro-operation of a transaction, as the inference reads it.
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
            ReadValue::Nil => Some(ListView(&[])),
            ReadValue::List(l) => Some(*l),
            ReadValue::Int(_) => None,
        }
    }
}

/// A borrowed list of integer elements (a slice of the store).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListView<'h>(pub &'h [i64]);

impl<'h> ListView<'h> {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, i: usize) -> i64 {
        self.0[i]
    }
    pub fn last(&self) -> Option<i64> {
        self.0.last().copied()
    }
    pub fn iter(&self) -> impl Iterator<Item = i64> + 'h {
        self.0.iter().copied()
    }
    /// The first `n` elements.
    pub fn prefix(&self, n: usize) -> ListView<'h> {
        ListView(&self.0[..n])
    }
    /// Whether this list is a prefix of `other`.
    pub fn is_prefix_of(&self, other: &ListView<'_>) -> bool {
        other.0.starts_with(self.0)
    }
}

/// One transaction of the history (its micro-ops are in the [`Store`]).
#[derive(Debug, Clone, Copy)]
pub struct Txn {
    /// Position of the invocation among the history's events.
    pub invoke: u32,
    /// Position of the completion, [`NONE`] if there is none.
    completion: u32,
    /// The invocation's event index (transactions are named `T<index>`).
    pub invoke_index: u64,
    /// The completion's event index (meaningful only when there is a completion).
    pub completion_index: u64,
    pub process: u64,
    mops_start: u32,
    mops_len: u32,
    pub outcome: OpOutcome,
}

const NONE: u32 = u32::MAX;

impl Txn {
    /// Committed for certain.
    pub fn is_ok(&self) -> bool {
        self.outcome == OpOutcome::Ok
    }
    /// May have committed (Elle: `info` transactions are possibly committed).
    pub fn may_commit(&self) -> bool {
        self.outcome != OpOutcome::Fail
    }
    /// Position of the completion among the history's events, if any.
    pub fn completion(&self) -> Option<u32> {
        (self.completion != NONE).then_some(self.completion)
    }
}

/// A micro-op in the store: 16 bytes.
#[derive(Debug, Clone, Copy)]
struct Packed {
    /// Interned key.
    key: u32,
    /// Tag in the top [`TAG_BITS`] bits, a list length below.
    tag_len: u32,
    /// The written or read integer, or the arena offset of an odd list.
    value: i64,
}

const TAG_BITS: u32 = 3;
const LEN_MAX: u32 = (1 << (32 - TAG_BITS)) - 1;
const APPEND: u32 = 0;
const WRITE: u32 = 1;
const READ_UNKNOWN: u32 = 2;
const READ_NIL: u32 = 3;
const READ_INT: u32 = 4;
/// A list that is a prefix of its key's list in [`Store::lists`].
const READ_PREFIX: u32 = 5;
/// A list kept whole in [`Store::odd`].
const READ_ODD: u32 = 6;

impl Packed {
    fn tag(self) -> u32 {
        self.tag_len >> (32 - TAG_BITS)
    }
    fn len(self) -> usize {
        (self.tag_len & LEN_MAX) as usize
    }
}

/// Every transaction of a history and their micro-ops, in flat arrays.
#[derive(Debug, Default)]
pub struct Store {
    /// In invocation order.
    pub txns: Vec<Txn>,
    mops: Vec<Packed>,
    /// Interned key → key.
    keys: Vec<i64>,
    /// Per interned key: the longest list read that every [`READ_PREFIX`] read is a prefix of.
    lists: Vec<Vec<i64>>,
    /// Elements of reads that are not a prefix of their key's list.
    odd: Vec<i64>,
}

impl Store {
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// The micro-ops of transaction `t`, in order.
    pub fn mops(&self, t: u32) -> Mops<'_> {
        let tx = &self.txns[t as usize];
        let start = tx.mops_start as usize;
        Mops {
            store: self,
            packed: &self.mops[start..start + tx.mops_len as usize],
        }
    }

    fn unpack(&self, p: Packed) -> Mop<'_> {
        let key = self.keys[p.key as usize];
        let read = |v| Mop::Read { key, value: v };
        match p.tag() {
            APPEND => Mop::Append {
                key,
                value: p.value,
            },
            WRITE => Mop::Write {
                key,
                value: p.value,
            },
            READ_UNKNOWN => read(None),
            READ_NIL => read(Some(ReadValue::Nil)),
            READ_INT => read(Some(ReadValue::Int(p.value))),
            READ_PREFIX => read(Some(ReadValue::List(ListView(
                &self.lists[p.key as usize][..p.len()],
            )))),
            READ_ODD => {
                let at = p.value as usize;
                read(Some(ReadValue::List(ListView(&self.odd[at..at + p.len()]))))
            }
            tag => unreachable!("micro-op tag {tag} is never stored"),
        }
    }

    /// Bytes held, roughly (for benchmarks).
    pub fn heap_bytes(&self) -> usize {
        self.txns.capacity() * std::mem::size_of::<Txn>()
            + self.mops.capacity() * std::mem::size_of::<Packed>()
            + self.keys.capacity() * 8
            + self
                .lists
                .iter()
                .map(|l| l.capacity() * 8 + 24)
                .sum::<usize>()
            + self.odd.capacity() * 8
    }
}

/// The micro-ops of one transaction.
#[derive(Clone)]
pub struct Mops<'s> {
    store: &'s Store,
    packed: &'s [Packed],
}

impl<'s> Iterator for Mops<'s> {
    type Item = Mop<'s>;
    fn next(&mut self) -> Option<Mop<'s>> {
        let (first, rest) = self.packed.split_first()?;
        self.packed = rest;
        Some(self.store.unpack(*first))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.packed.len(), Some(self.packed.len()))
    }
}

impl ExactSizeIterator for Mops<'_> {}

/// What a transaction's source says, before it is stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawMop<'a> {
    Append(i64, i64),
    Write(i64, i64),
    /// A read whose result is unknown.
    ReadUnknown(i64),
    ReadNil(i64),
    ReadInt(i64, i64),
    ReadList(i64, &'a [i64]),
}

/// Builds a [`Store`] one transaction at a time.
#[derive(Default)]
pub struct StoreBuilder {
    store: Store,
    key_ids: FxHashMap<i64, u32>,
}

/// The history is beyond what the store's 32-bit positions address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the history is too large for the graph checker (over 4 billion events or micro-ops)")]
pub struct TooLarge;

/// Where and what a transaction is, apart from its micro-ops.
#[derive(Debug, Clone, Copy)]
pub struct TxnHead {
    pub invoke: usize,
    pub completion: Option<usize>,
    pub invoke_index: u64,
    pub completion_index: u64,
    pub process: u64,
    pub outcome: OpOutcome,
}

impl StoreBuilder {
    fn key(&mut self, key: i64) -> u32 {
        let next = self.store.keys.len() as u32;
        *self.key_ids.entry(key).or_insert_with(|| {
            self.store.keys.push(key);
            self.store.lists.push(Vec::new());
            next
        })
    }

    /// Adds a transaction. Its place is the order of calls: call in invocation order. Reads of a
    /// transaction that is not `ok` are stored as unknown whatever they say.
    pub fn push<'a>(
        &mut self,
        head: TxnHead,
        mops: impl IntoIterator<Item = RawMop<'a>>,
    ) -> Result<(), TooLarge> {
        let slot = self.reserve()?;
        self.fill(slot, head, mops)
    }

    /// Takes the next place in invocation order for a transaction whose micro-ops come later
    /// ([`StoreBuilder::fill`]), as a streamed history's completions do.
    pub fn reserve(&mut self) -> Result<u32, TooLarge> {
        let slot = u32::try_from(self.store.txns.len()).map_err(|_| TooLarge)?;
        self.store.txns.push(Txn {
            invoke: NONE,
            completion: NONE,
            invoke_index: 0,
            completion_index: 0,
            process: 0,
            mops_start: 0,
            mops_len: 0,
            outcome: OpOutcome::Pending,
        });
        Ok(slot)
    }

    /// Fills a reserved place.
    pub fn fill<'a>(
        &mut self,
        slot: u32,
        head: TxnHead,
        mops: impl IntoIterator<Item = RawMop<'a>>,
    ) -> Result<(), TooLarge> {
        let small = |x: usize| u32::try_from(x).ok().filter(|&x| x != NONE).ok_or(TooLarge);
        let start = small(self.store.mops.len())?;
        let known = head.outcome == OpOutcome::Ok;
        for m in mops {
            let p = self.pack(m, known)?;
            self.store.mops.push(p);
        }
        let len = small(self.store.mops.len())? - start;
        self.store.txns[slot as usize] = Txn {
            invoke: small(head.invoke)?,
            completion: head.completion.map_or(Ok(NONE), small)?,
            invoke_index: head.invoke_index,
            completion_index: head.completion_index,
            process: head.process,
            mops_start: start,
            mops_len: len,
            outcome: head.outcome,
        };
        Ok(())
    }

    fn pack(&mut self, m: RawMop<'_>, known: bool) -> Result<Packed, TooLarge> {
        let packed = |key, tag: u32, len: usize, value| {
            let len = u32::try_from(len)
                .ok()
                .filter(|&l| l <= LEN_MAX)
                .ok_or(TooLarge)?;
            Ok(Packed {
                key,
                tag_len: (tag << (32 - TAG_BITS)) | len,
                value,
            })
        };
        let m = match m {
            RawMop::ReadNil(k) | RawMop::ReadInt(k, _) | RawMop::ReadList(k, _) if !known => {
                RawMop::ReadUnknown(k)
            }
            other => other,
        };
        match m {
            RawMop::Append(k, v) => packed(self.key(k), APPEND, 0, v),
            RawMop::Write(k, v) => packed(self.key(k), WRITE, 0, v),
            RawMop::ReadUnknown(k) => packed(self.key(k), READ_UNKNOWN, 0, 0),
            RawMop::ReadNil(k) => packed(self.key(k), READ_NIL, 0, 0),
            RawMop::ReadInt(k, v) => packed(self.key(k), READ_INT, 0, v),
            RawMop::ReadList(k, l) => {
                let key = self.key(k);
                let list = &mut self.store.lists[key as usize];
                if list.starts_with(l) {
                    packed(key, READ_PREFIX, l.len(), 0)
                } else if l.starts_with(list) {
                    list.extend_from_slice(&l[list.len()..]);
                    packed(key, READ_PREFIX, l.len(), 0)
                } else {
                    let at = self.store.odd.len() as i64;
                    self.store.odd.extend_from_slice(l);
                    packed(key, READ_ODD, l.len(), at)
                }
            }
        }
    }

    pub fn finish(mut self) -> Store {
        self.store.mops.shrink_to_fit();
        self.store.txns.shrink_to_fit();
        self.store
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
    #[error("{0}")]
    TooLarge(#[from] TooLarge),
}

/// Which data type the history's transactions act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    ListAppend,
    RwRegister,
}

/// All `txn` operations of a history (others, and nemesis events, are ignored), in invocation order.
pub fn decode(history: &History) -> Result<Store, TxnError> {
    let ops = history.ops()?;
    let mut builder = StoreBuilder::default();
    builder.store.txns.reserve(ops.len());
    let mut decoded: Vec<Decoded<'_>> = Vec::new();
    // The integers of generic read lists (imports and hand-written histories; verity's own reader
    // produces the typed fast path, whose lists are borrowed as they are).
    let mut ints: Vec<i64> = Vec::new();
    for op in &ops {
        let inv = &history.events[op.invoke];
        let Process::Client(process) = inv.process else {
            continue;
        };
        if inv.f != F::Txn {
            continue;
        }
        // A committed transaction's completion carries the reads; otherwise only the invocation is
        // trustworthy about what it meant to write (its reads are unknown: the builder says so).
        let source = match (op.outcome, op.completion) {
            (OpOutcome::Ok, Some(c)) => &history.events[c],
            _ => inv,
        };
        decoded.clear();
        ints.clear();
        decode_mops(source.index, &source.value, &mut decoded, &mut ints)?;
        let head = TxnHead {
            invoke: op.invoke,
            completion: op.completion,
            invoke_index: inv.index,
            completion_index: op.completion.map_or(0, |c| history.events[c].index),
            process,
            outcome: op.outcome,
        };
        let ints = &ints;
        builder.push(
            head,
            decoded.iter().map(|d| match *d {
                Decoded::Raw(m) => m,
                Decoded::Copied(key, ref range) => RawMop::ReadList(key, &ints[range.clone()]),
            }),
        )?;
    }
    Ok(builder.finish())
}

/// A decoded micro-op whose read list is borrowed from the history or copied into a buffer.
pub(crate) enum Decoded<'h> {
    Raw(RawMop<'h>),
    Copied(i64, std::ops::Range<usize>),
}

pub(crate) fn decode_mops<'h>(
    index: u64,
    value: &'h Value,
    out: &mut Vec<Decoded<'h>>,
    ints: &mut Vec<i64>,
) -> Result<(), TxnError> {
    if let Value::Txn(mops) = value {
        for m in mops {
            out.push(Decoded::Raw(fast_mop(index, m)?));
        }
        return Ok(());
    }
    let list = value.as_list().ok_or(TxnError::NotAList { index })?;
    for m in list {
        out.push(decode_mop(index, m, ints)?);
    }
    Ok(())
}

/// A micro-op of the typed fast path (already validated by its decoder).
fn fast_mop(index: u64, m: &MicroOp) -> Result<RawMop<'_>, TxnError> {
    Ok(match (m.f, &m.value) {
        (MopF::Append, MopValue::Int(v)) => RawMop::Append(m.key, *v),
        (MopF::Write, MopValue::Int(v)) => RawMop::Write(m.key, *v),
        (MopF::Read, MopValue::Null) => RawMop::ReadNil(m.key),
        (MopF::Read, MopValue::Int(i)) => RawMop::ReadInt(m.key, *i),
        (MopF::Read, MopValue::List(l)) => RawMop::ReadList(m.key, l),
        (_, _) => {
            return Err(TxnError::Malformed {
                index,
                mop: m.to_generic().to_string(),
                why: "appended or written value is not an integer",
            })
        }
    })
}

fn decode_mop<'h>(index: u64, m: &Value, ints: &mut Vec<i64>) -> Result<Decoded<'h>, TxnError> {
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
    let raw = match f {
        "append" => RawMop::Append(
            key,
            v.as_i64()
                .ok_or_else(|| bad("appended value is not an integer"))?,
        ),
        "w" => RawMop::Write(
            key,
            v.as_i64()
                .ok_or_else(|| bad("written value is not an integer"))?,
        ),
        "r" => match v {
            Value::Null => RawMop::ReadNil(key),
            Value::Int(i) => RawMop::ReadInt(key, *i),
            Value::List(l) => {
                let start = ints.len();
                for e in l {
                    ints.push(
                        e.as_i64()
                            .ok_or_else(|| bad("read list holds a non-integer"))?,
                    );
                }
                return Ok(Decoded::Copied(key, start..ints.len()));
            }
            _ => return Err(bad("read value is not null, an integer or a list")),
        },
        _ => return Err(bad("f is not append, r or w")),
    };
    Ok(Decoded::Raw(raw))
}

/// Decides the data type: any `append` means list-append, any `w` rw-register, both is an error.
pub fn data_kind(store: &Store) -> Result<DataKind, &'static str> {
    let (mut append, mut write) = (false, false);
    for p in &store.mops {
        match p.tag() {
            APPEND => append = true,
            WRITE => write = true,
            READ_PREFIX | READ_ODD if p.len() > 0 => append = true,
            _ => {}
        }
    }
    match (append, write) {
        (true, true) => Err("the history mixes list appends and register writes"),
        (false, true) => Ok(DataKind::RwRegister),
        _ => Ok(DataKind::ListAppend),
    }
}
