//! Dependency inference: version orders, and the ww / wr / rw, process and real-time edges between
//! transactions.
//!
//! This follows Elle (Kingsbury & Alvaro, VLDB 2020) and Adya's direct serialization graph. For a
//! list-append key every read returns the whole list, so the longest read *is* the version order of
//! the key, and every other read must be a prefix of it (else `incompatible-order`). With unique
//! appended values each element names its writer, which gives in one linear pass:
//! - `ww` T1 → T2: T2's append directly follows T1's in the version order;
//! - `wr` T1 → T2: T2 read a list whose last element T1 appended;
//! - `rw` T1 → T2: T1 read a list that stops right before T2's append.
//!
//! An append no read shows came after the whole known order: rw from each reader of all of it, ww
//! from the writer of its last element. One transaction's appends to a key form one run, in the
//! order it made them; an order that breaks a run is `incompatible-order`.
//!
//! rw-register keys reveal less: a write's position is known only when a transaction read `v` and
//! then wrote `v'` (so `v'` directly follows `v`), or when a read saw the initial `null` (so every
//! committed write follows it). Edges are only drawn where the inference is sound, so a cycle is
//! always a real violation; what cannot be inferred is left out rather than guessed.
//!
//! Real-time order is not materialised pairwise (that is n × concurrency edges): the graph given to
//! the SCC search threads it through a chain of virtual "time" nodes, one per `ok` completion, so
//! that T reaches U through the chain exactly when T completed before U was invoked. Pairwise
//! real-time edges are computed later, only among the members of a non-trivial SCC.

use rustc_hash::{FxHashMap, FxHashSet};

use super::txn::{DataKind, ListView, Mop, ReadValue, Store};

/// Edge kinds, as bits of a mask (an edge may be several kinds at once).
pub const WW: u8 = 1;
pub const WR: u8 = 2;
pub const RW: u8 = 4;
pub const PROCESS: u8 = 8;
pub const REALTIME: u8 = 16;
/// The data dependencies of Adya's DSG.
pub const DATA: u8 = WW | WR | RW;

pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        PROCESS => "process",
        REALTIME => "realtime",
        _ => "mixed",
    }
}

/// Who appended or wrote `value` at `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer {
    pub txn: u32,
    /// Whether this is the transaction's last write to the key (a read of an earlier one is G1b).
    pub last_in_txn: bool,
    pub failed: bool,
    /// Two transactions claim the same value: the history breaks the unique-writes rule and this
    /// value is not used for inference.
    pub ambiguous: bool,
    /// list-append: the value's position in its key's version order ([`UNOBSERVED`] if no read saw it).
    pub pos: u32,
    /// How many writes of the key the transaction made before this one.
    pub seq: u32,
}

/// [`Writer::pos`] of a value no read observed.
pub const UNOBSERVED: u32 = u32::MAX;

/// A non-cycle anomaly found during inference.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub name: &'static str,
    /// Transactions involved (indices into `Inference::txns`), the reader first where there is one.
    pub txns: Vec<u32>,
    pub message: String,
}

/// Everything the later stages need.
pub struct Inference<'h> {
    pub store: &'h Store,
    pub kind: DataKind,
    pub writers: FxHashMap<(i64, i64), Writer>,
    /// list-append: the longest read of each key (its version order) and the transaction that read it.
    pub orders: FxHashMap<i64, (ListView<'h>, u32)>,
    /// Sorted by (src, dst), unique, masks merged: data and process edges.
    pub edges: Vec<(u32, u32, u8)>,
    /// `offsets[t]..offsets[t+1]` indexes `edges` leaving `t`.
    pub offsets: Vec<u32>,
    pub found: Vec<Found>,
}

impl<'h> Inference<'h> {
    pub fn out_edges(&self, t: u32) -> &[(u32, u32, u8)] {
        let (a, b) = (
            self.offsets[t as usize] as usize,
            self.offsets[t as usize + 1] as usize,
        );
        &self.edges[a..b]
    }

    /// Event index of a transaction's invocation (its name in reports: `T<index>`).
    pub fn name(&self, t: u32) -> String {
        format!("T{}", self.store.txns[t as usize].invoke_index)
    }

    /// Event indices of a transaction: its invocation and completion.
    pub fn event_indices(&self, t: u32) -> Vec<u64> {
        let tx = &self.store.txns[t as usize];
        let mut v = vec![tx.invoke_index];
        if tx.completion().is_some() {
            v.push(tx.completion_index);
        }
        v
    }
}

/// Transactions with more micro-ops than this look keys up in a hash map rather than by scanning
/// a vector: a final read of every key (hundreds of thousands of them in a long history) would
/// otherwise cost quadratic time, and short transactions — nearly all of them — stay allocation-
/// and hash-free.
const SCAN_MAX: usize = 32;

/// A map from keys for the micro-ops of one transaction.
pub(crate) enum KeyMap<V> {
    Small(Vec<(i64, V)>),
    Large(FxHashMap<i64, V>),
}

impl<V> KeyMap<V> {
    pub(crate) fn for_mops(mops: usize) -> KeyMap<V> {
        if mops > SCAN_MAX {
            KeyMap::Large(FxHashMap::default())
        } else {
            KeyMap::Small(Vec::new())
        }
    }
    pub(crate) fn get_mut(&mut self, key: i64) -> Option<&mut V> {
        match self {
            KeyMap::Small(v) => v.iter_mut().find(|e| e.0 == key).map(|e| &mut e.1),
            KeyMap::Large(m) => m.get_mut(&key),
        }
    }
    pub(crate) fn contains(&self, key: i64) -> bool {
        match self {
            KeyMap::Small(v) => v.iter().any(|e| e.0 == key),
            KeyMap::Large(m) => m.contains_key(&key),
        }
    }
    /// Inserts a key known to be absent.
    pub(crate) fn insert_new(&mut self, key: i64, value: V) {
        match self {
            KeyMap::Small(v) => v.push((key, value)),
            KeyMap::Large(m) => {
                m.insert(key, value);
            }
        }
    }
}

/// The keys a transaction appends to or writes.
fn written_keys(store: &Store, t: u32) -> KeyMap<()> {
    let mops = store.mops(t);
    let mut keys = KeyMap::for_mops(mops.len());
    for m in mops {
        if let Mop::Append { key, .. } | Mop::Write { key, .. } = m {
            if !keys.contains(key) {
                keys.insert_new(key, ());
            }
        }
    }
    keys
}

/// A transaction's external reads: the first read of each key, as the state outside the transaction
/// was. A list read that follows the transaction's own appends counts with those appends taken off
/// its end (when it does not end with them, that is an `internal` anomaly and the read says nothing
/// about the outside); a register read after the transaction's own write says nothing outside.
pub fn external_reads(store: &Store, t: u32) -> impl Iterator<Item = (i64, ReadValue<'_>)> + '_ {
    let mops = store.mops(t);
    let mut done: KeyMap<()> = KeyMap::for_mops(mops.len());
    let mut own: KeyMap<Vec<i64>> = KeyMap::for_mops(mops.len());
    mops.filter_map(move |m| match m {
        Mop::Read { key, value } => {
            if done.contains(key) {
                return None;
            }
            done.insert_new(key, ());
            let v = value?;
            let Some(mine) = own.get_mut(key) else {
                return Some((key, v));
            };
            let ReadValue::List(l) = v else { return None };
            let cut = l.len().checked_sub(mine.len())?;
            let tail_is_mine = (cut..l.len()).zip(mine).all(|(i, m)| l.get(i) == *m);
            tail_is_mine.then(|| (key, ReadValue::List(l.prefix(cut))))
        }
        Mop::Append { key, value } => {
            if !done.contains(key) {
                match own.get_mut(key) {
                    Some(v) => v.push(value),
                    None => own.insert_new(key, vec![value]),
                }
            }
            None
        }
        Mop::Write { key, .. } => {
            if !done.contains(key) {
                done.insert_new(key, ());
            }
            None
        }
    })
}

/// Keys a transaction writes, each once, with the last value written.
pub fn final_writes(store: &Store, t: u32) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for m in store.mops(t) {
        if let Mop::Append { key, value } | Mop::Write { key, value } = m {
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => out.push((key, value)),
            }
        }
    }
    out
}

/// Runs the whole inference.
pub fn infer(store: &Store, kind: DataKind) -> Inference<'_> {
    let mut inf = Inference {
        store,
        kind,
        writers: FxHashMap::default(),
        orders: FxHashMap::default(),
        edges: Vec::new(),
        offsets: Vec::new(),
        found: Vec::new(),
    };
    index_writers(&mut inf);
    check_internal(&mut inf);
    let mut raw: Vec<(u32, u32, u8)> = Vec::with_capacity(inf.store.len() * 6);
    match kind {
        DataKind::ListAppend => list_append_edges(&mut inf, &mut raw),
        DataKind::RwRegister => register_edges(&mut inf, &mut raw),
    }
    process_edges(&inf, &mut raw);
    finish_edges(&mut inf, raw);
    // Parallel phases find things in any order: report them in a fixed one.
    inf.found
        .sort_by(|a, b| (&a.txns, a.name).cmp(&(&b.txns, b.name)));
    inf
}

fn index_writers(inf: &mut Inference<'_>) {
    let store = inf.store;
    let mut writers: FxHashMap<(i64, i64), Writer> = FxHashMap::default();
    writers.reserve(store.len() * 2);
    let mut last: Vec<bool> = Vec::new();
    for (i, t) in store.txns.iter().enumerate() {
        // Whether each micro-op is the last write of its key in the transaction, from the end.
        let mops = store.mops(i as u32);
        let mut later: KeyMap<()> = KeyMap::for_mops(mops.len());
        last.clear();
        let mut rev: Vec<Mop<'_>> = mops.clone().collect();
        rev.reverse();
        for m in &rev {
            let (Mop::Append { key, .. } | Mop::Write { key, .. }) = *m else {
                last.push(false);
                continue;
            };
            last.push(!later.contains(key));
            if !later.contains(key) {
                later.insert_new(key, ());
            }
        }
        last.reverse();
        let mut seqs: KeyMap<u32> = KeyMap::for_mops(mops.len());
        for (j, m) in mops.enumerate() {
            let (Mop::Append { key, value } | Mop::Write { key, value }) = m else {
                continue;
            };
            let seq = match seqs.get_mut(key) {
                Some(n) => {
                    *n += 1;
                    *n
                }
                None => {
                    seqs.insert_new(key, 0);
                    0
                }
            };
            let last_in_txn = last[j];
            let w = Writer {
                txn: i as u32,
                last_in_txn,
                failed: !t.may_commit(),
                ambiguous: false,
                pos: UNOBSERVED,
                seq,
            };
            writers
                .entry((key, value))
                .and_modify(|prev| {
                    if prev.txn != w.txn {
                        prev.ambiguous = true
                    }
                })
                .or_insert(w);
        }
    }
    inf.writers = writers;
}

/// What a transaction knows about a key from its own earlier micro-ops.
#[derive(Clone, Copy)]
enum Known<'h> {
    /// It read this.
    Read(ReadValue<'h>),
    /// It wrote this register value.
    Written(i64),
    /// It only appended so far: the outside state is unknown.
    Appended,
}

/// Elle's `internal` anomaly: a transaction's reads must agree with its own earlier reads and writes.
/// Per transaction and independent, so it runs in parallel.
fn check_internal(inf: &mut Inference<'_>) {
    use rayon::prelude::*;
    let store = inf.store;
    let found: Vec<Found> = store
        .txns
        .par_iter()
        .enumerate()
        .filter(|(i, t)| t.is_ok() && store.mops(*i as u32).len() > 1)
        .filter_map(|(i, _)| {
            internal_of(store, i as u32).map(|message| Found {
                name: "internal",
                txns: vec![i as u32],
                message,
            })
        })
        .collect();
    inf.found.extend(found);
}

/// The first internal inconsistency of a transaction, if any.
fn internal_of(store: &Store, t: u32) -> Option<String> {
    // key -> (what is known, values appended since)
    let mops = store.mops(t);
    let mut known: KeyMap<(Known<'_>, Vec<i64>)> = KeyMap::for_mops(mops.len());
    for m in mops {
        match m {
            Mop::Append { key, value } => match known.get_mut(key) {
                Some(e) => e.1.push(value),
                None => known.insert_new(key, (Known::Appended, vec![value])),
            },
            Mop::Write { key, value } => match known.get_mut(key) {
                Some(e) => *e = (Known::Written(value), Vec::new()),
                None => known.insert_new(key, (Known::Written(value), Vec::new())),
            },
            Mop::Read {
                key,
                value: Some(v),
            } => {
                let Some(e) = known.get_mut(key) else {
                    known.insert_new(key, (Known::Read(v), Vec::new()));
                    continue;
                };
                if !agrees(e.0, &e.1, v) {
                    let observed: Vec<i64> = match v {
                        ReadValue::Nil => Vec::new(),
                        ReadValue::Int(x) => vec![x],
                        ReadValue::List(l) => l.iter().collect(),
                    };
                    let expected = match e.0 {
                        Known::Read(ReadValue::List(l)) => format!(
                            "{:?}",
                            l.iter().chain(e.1.iter().copied()).collect::<Vec<_>>()
                        ),
                        Known::Read(ReadValue::Nil) => format!("{:?}", e.1),
                        Known::Read(ReadValue::Int(x)) | Known::Written(x) => format!("[{x}]"),
                        Known::Appended => format!("a list ending in {:?}", e.1),
                    };
                    return Some(format!("read key {key} as {observed:?}, but its own earlier operations imply {expected}"));
                }
                *e = (Known::Read(v), Vec::new());
            }
            Mop::Read { value: None, .. } => {}
        }
    }
    None
}

/// Whether a read agrees with what the transaction knew plus what it appended since.
fn agrees(known: Known<'_>, appended: &[i64], v: ReadValue<'_>) -> bool {
    let list_ends_with = |l: &ListView<'_>, tail: &[i64]| {
        l.len() >= tail.len()
            && tail
                .iter()
                .enumerate()
                .all(|(j, x)| l.get(l.len() - tail.len() + j) == *x)
    };
    match (known, v) {
        (Known::Read(ReadValue::List(prior)), ReadValue::List(l)) => {
            l.len() == prior.len() + appended.len()
                && prior.is_prefix_of(&l)
                && list_ends_with(&l, appended)
        }
        (Known::Read(ReadValue::List(prior)), ReadValue::Nil) => {
            prior.is_empty() && appended.is_empty()
        }
        (Known::Read(ReadValue::Nil), ReadValue::List(l)) => {
            l.len() == appended.len() && list_ends_with(&l, appended)
        }
        (Known::Read(ReadValue::Nil), ReadValue::Nil) => appended.is_empty(),
        (Known::Read(ReadValue::Int(x)) | Known::Written(x), ReadValue::Int(y)) => x == y,
        (Known::Written(_), _) => false,
        (Known::Read(ReadValue::Int(_)), _) | (Known::Read(_), ReadValue::Int(_)) => false,
        (Known::Appended, ReadValue::List(l)) => list_ends_with(&l, appended),
        (Known::Appended, ReadValue::Nil) => appended.is_empty(),
        (Known::Appended, ReadValue::Int(_)) => false,
    }
}

fn is_prefix(a: ListView<'_>, b: ListView<'_>) -> bool {
    a.is_prefix_of(&b)
}

/// What the parallel scan of reads against the version orders produces.
#[derive(Default)]
struct ReadScan {
    raw: Vec<(u32, u32, u8)>,
    found: Vec<Found>,
    incompatible: Vec<(i64, Found)>,
    read_then_append: Vec<(i64, usize, u32)>,
}

impl ReadScan {
    fn merge(mut self, mut other: ReadScan) -> ReadScan {
        self.raw.append(&mut other.raw);
        self.found.append(&mut other.found);
        self.incompatible.append(&mut other.incompatible);
        self.read_then_append.append(&mut other.read_then_append);
        self
    }
}

type Orders<'h> = FxHashMap<i64, (ListView<'h>, u32)>;

/// The longest read of each key, in parallel: ties go to the earliest transaction (determinism).
fn longest_reads(store: &Store) -> Orders<'_> {
    use rayon::prelude::*;
    let better = |a: &(ListView<'_>, u32), b: &(ListView<'_>, u32)| {
        b.0.len() > a.0.len() || (b.0.len() == a.0.len() && b.1 < a.1)
    };
    store
        .txns
        .par_iter()
        .enumerate()
        .filter(|(_, t)| t.is_ok())
        .fold(Orders::default, |mut orders, (i, _)| {
            for (key, v) in external_reads(store, i as u32) {
                let Some(l) = v.list() else { continue };
                let cand = (l, i as u32);
                let e = orders.entry(key).or_insert(cand);
                if better(e, &cand) {
                    *e = cand;
                }
            }
            orders
        })
        .reduce(Orders::default, |mut a, b| {
            for (k, cand) in b {
                let e = a.entry(k).or_insert(cand);
                if better(e, &cand) {
                    *e = cand;
                }
            }
            a
        })
}

fn list_append_edges(inf: &mut Inference<'_>, raw: &mut Vec<(u32, u32, u8)>) {
    use rayon::prelude::*;
    // 1. The longest read of each key is its version order.
    let orders = longest_reads(inf.store);
    // 2. Every element of an order: its position, duplicates, dirty writers; ww edges.
    let mut keys: Vec<i64> = orders.keys().copied().collect();
    keys.sort_unstable();
    // The writer at each position of each order, so that the read scan below looks up small,
    // key-local vectors instead of the big writer map (whose misses dominated the scan).
    let mut order_writers: FxHashMap<i64, Vec<Option<Writer>>> = FxHashMap::default();
    order_writers.reserve(keys.len());
    for &key in &keys {
        let (order, reader) = orders[&key];
        let mut prev: Option<Writer> = None;
        let mut dup_reported = false;
        // The writer of the previous element (none at the start or when unknown), for the rule
        // that each transaction's appends to the key form one run in the order it made them.
        let mut before: Option<Option<Writer>> = Some(None);
        let mut torn_reported = false;
        let mut at: Vec<Option<Writer>> = Vec::with_capacity(order.len());
        for (p, e) in order.iter().enumerate() {
            let w = match inf.writers.get_mut(&(key, e)) {
                Some(w) if w.pos != UNOBSERVED => {
                    if !dup_reported {
                        dup_reported = true;
                        inf.found.push(Found {
                            name: "duplicate-elements",
                            txns: vec![reader],
                            message: format!("read key {key} as a list holding {e} more than once"),
                        });
                    }
                    None
                }
                Some(w) => {
                    w.pos = p as u32;
                    Some(*w)
                }
                None => None,
            };
            if let Some(w) = w.filter(|w| w.failed && !w.ambiguous) {
                inf.found.push(Found {
                    name: "G1a",
                    txns: vec![reader, w.txn],
                    message: format!(
                        "read key {key} including {e}, which was appended by a transaction that failed (aborted)"
                    ),
                });
            }
            let known = w.filter(|w| !w.ambiguous);
            if let (Some(b), false) = (before, torn_reported) {
                if let Some(torn) = torn_run(b, known) {
                    torn_reported = true;
                    inf.found.push(Found {
                        name: "incompatible-order",
                        txns: vec![reader, torn],
                        message: format!(
                            "read key {key} as a list in which one transaction's appends are not one run in the order it made them (at {e}, position {p})"
                        ),
                    });
                }
            }
            before = known.map(Some);
            at.push(known);
            let usable = w.filter(|w| !w.failed && !w.ambiguous);
            if let (Some(a), Some(b)) = (prev, usable) {
                if a.txn != b.txn {
                    raw.push((a.txn, b.txn, WW));
                }
            }
            prev = usable;
        }
        order_writers.insert(key, at);
    }
    // 3. Each read against its key's order, in parallel: wr, rw, G1b, incompatible-order, and the
    //    reads that lost-update needs.
    let inf_ref: &Inference<'_> = inf;
    let scan = inf_ref
        .store
        .txns
        .par_iter()
        .enumerate()
        .filter(|(_, t)| t.is_ok())
        .fold(ReadScan::default, |mut acc, (i, _)| {
            scan_reads(inf_ref, &orders, &order_writers, i as u32, &mut acc);
            acc
        })
        .reduce(ReadScan::default, ReadScan::merge);
    raw.extend(scan.raw);
    inf.found.extend(scan.found);
    let mut incompatible = scan.incompatible;
    incompatible.sort_by_key(|(k, f)| (*k, f.txns.clone()));
    incompatible.dedup_by_key(|(k, _)| *k);
    inf.found.extend(incompatible.into_iter().map(|(_, f)| f));
    lost_updates(inf, scan.read_then_append);
    unobserved_appends(inf, &orders, raw);
    inf.orders = orders;
}

/// Whether two neighbours in a key's version order break a transaction's run of appends: one
/// after its own predecessor in the transaction is somewhere else, or one whose successor in the
/// transaction is not next. `prev` is none at the start of the order; the transaction returned is
/// the one whose run breaks.
fn torn_run(prev: Option<Writer>, cur: Option<Writer>) -> Option<u32> {
    let follows = |p: &Writer, c: &Writer| p.txn == c.txn && c.seq == p.seq + 1;
    if let Some(c) = cur.filter(|c| c.seq > 0) {
        if !prev.is_some_and(|p| follows(&p, &c)) {
            return Some(c.txn);
        }
    }
    if let (Some(p), Some(c)) = (prev.filter(|p| !p.last_in_txn), cur) {
        if !follows(&p, &c) {
            return Some(p.txn);
        }
    }
    None
}

fn scan_reads<'h>(
    inf: &Inference<'h>,
    orders: &Orders<'h>,
    order_writers: &FxHashMap<i64, Vec<Option<Writer>>>,
    i: u32,
    acc: &mut ReadScan,
) {
    let written = written_keys(inf.store, i);
    let writes_key = |key: i64| written.contains(key);
    for (key, v) in external_reads(inf.store, i) {
        let Some(l) = v.list() else { continue };
        let (order, longest) = orders[&key];
        if !is_prefix(l, order) {
            acc.incompatible.push((
                key,
                Found {
                    name: "incompatible-order",
                    txns: vec![i, longest],
                    message: format!(
                        "read key {key} as {:?}, which is not a prefix of {:?} read by another transaction",
                        l.iter().collect::<Vec<_>>(),
                        order.iter().collect::<Vec<_>>()
                    ),
                },
            ));
            acc.found.extend(dirty_element(inf, key, l, i));
            continue;
        }
        let at = &order_writers[&key];
        if writes_key(key) {
            acc.read_then_append.push((key, l.len(), i));
            // Nearly always the reader's first append to the key is the element right after what
            // it read; its run of appends then starts there (a run broken or repeated elsewhere is
            // already reported), and the writer index need not be probed.
            let own_next = at
                .get(l.len())
                .copied()
                .flatten()
                .is_some_and(|w| w.txn == i && w.seq == 0);
            if !own_next {
                acc.found.extend(own_appends_in_read(inf, key, l, i));
            }
        }
        if let Some(last) = l.last() {
            if let Some(w) = at[l.len() - 1] {
                if w.txn != i && !w.failed {
                    acc.raw.push((w.txn, i, WR));
                    if !w.last_in_txn {
                        acc.found.push(Found {
                            name: "G1b",
                            txns: vec![i, w.txn],
                            message: format!(
                                "read key {key} ending in {last}, an intermediate append of a transaction that appended to it again later"
                            ),
                        });
                    }
                }
            }
        }
        if l.len() < order.len() {
            if let Some(w) = at[l.len()].filter(|w| !w.failed) {
                if w.txn != i {
                    acc.raw.push((i, w.txn, RW));
                }
            }
        }
    }
}

/// A read that holds one of the reader's own appends where the outside state is (the read with
/// the reader's earlier appends taken off its end, a prefix of the key's version order): an earlier
/// append there is in the list twice (`duplicate-elements`), a later one was seen before it was
/// made (`internal`). No execution explains either. Costs one look-up per append of the key by the
/// reader, as the position of each element in the order is known.
fn own_appends_in_read(inf: &Inference<'_>, key: i64, l: ListView<'_>, i: u32) -> Option<Found> {
    let mut before_read = true;
    for m in inf.store.mops(i) {
        match m {
            Mop::Read { key: k, .. } if k == key => before_read = false,
            Mop::Append { key: k, value } if k == key => {
                let Some(w) = inf.writers.get(&(key, value)) else {
                    continue;
                };
                if w.txn != i || w.ambiguous || w.pos == UNOBSERVED || w.pos as usize >= l.len() {
                    continue;
                }
                let shown: Vec<i64> = l.iter().collect();
                return Some(if before_read {
                    Found {
                        name: "duplicate-elements",
                        txns: vec![i],
                        message: format!(
                            "read key {key} as a list holding {value} more than once: {shown:?} before its own append of {value}"
                        ),
                    }
                } else {
                    Found {
                        name: "internal",
                        txns: vec![i],
                        message: format!(
                            "read key {key} as {shown:?}, holding {value}, which it appends only later"
                        ),
                    }
                });
            }
            _ => {}
        }
    }
    None
}

/// Most edges a key may get from [`unobserved_appends`]; beyond it some are left out (which can
/// only hide an anomaly, never invent one) so that the inference stays near-linear.
const UNOBSERVED_EDGES_PER_KEY_MAX: usize = 1 << 16;

/// A committed append that no read observed came after every read of its key: a reader that saw
/// the whole known version order precedes its writer (rw), and so does the writer of the order's
/// last element (ww). Without this, a read of `[]` would say nothing about appends no one saw.
///
/// An `info` transaction counts as committed here once a read observed one of its appends, as
/// everywhere else in the checker (had it aborted, that read was dirty: G1a). The writer of the
/// order's last element must be `ok` for the ww edge, though: a read that ends in an `info`
/// transaction's append may be a dirty read of it, which read uncommitted allows, and then nothing
/// follows it.
fn unobserved_appends(inf: &Inference<'_>, orders: &Orders<'_>, raw: &mut Vec<(u32, u32, u8)>) {
    // Whether a read observed one of an info transaction's appends (few transactions are info).
    let observed = |t: u32| {
        inf.store.mops(t).any(|m| match m {
            Mop::Append { key, value } => inf
                .writers
                .get(&(key, value))
                .is_some_and(|w| w.txn == t && w.pos != UNOBSERVED && !w.ambiguous),
            _ => false,
        })
    };
    let mut unobserved: FxHashMap<i64, Vec<u32>> = FxHashMap::default();
    for (&(key, _), w) in &inf.writers {
        if w.failed || w.ambiguous || w.pos != UNOBSERVED || !orders.contains_key(&key) {
            continue;
        }
        if inf.store.txns[w.txn as usize].is_ok() || observed(w.txn) {
            unobserved.entry(key).or_default().push(w.txn);
        }
    }
    if unobserved.is_empty() {
        return;
    }
    for (key, ws) in &unobserved {
        let order = orders[key].0;
        let Some(last) = order.last() else { continue };
        let Some(x) = inf.writers.get(&(*key, last)).filter(|x| {
            !x.failed
                && !x.ambiguous
                && x.pos as usize == order.len() - 1
                && inf.store.txns[x.txn as usize].is_ok()
        }) else {
            continue;
        };
        for &w in ws {
            if w != x.txn {
                raw.push((x.txn, w, WW));
            }
        }
    }
    let mut budget: FxHashMap<i64, usize> = FxHashMap::default();
    for (i, _) in inf.store.txns.iter().enumerate().filter(|(_, t)| t.is_ok()) {
        for (key, v) in external_reads(inf.store, i as u32) {
            let (Some(l), Some(ws)) = (v.list(), unobserved.get(&key)) else {
                continue;
            };
            if l.len() != orders[&key].0.len() || !is_prefix(l, orders[&key].0) {
                continue;
            }
            let used = budget.entry(key).or_insert(0);
            for &w in ws {
                if w != i as u32 && *used < UNOBSERVED_EDGES_PER_KEY_MAX {
                    raw.push((i as u32, w, RW));
                    *used += 1;
                }
            }
        }
    }
}

/// For a read that does not fit the version order, check its elements one by one.
fn dirty_element(inf: &Inference<'_>, key: i64, l: ListView<'_>, reader: u32) -> Option<Found> {
    for e in l.iter() {
        if let Some(w) = inf
            .writers
            .get(&(key, e))
            .filter(|w| w.failed && !w.ambiguous)
        {
            return Some(Found {
                name: "G1a",
                txns: vec![reader, w.txn],
                message: format!(
                    "read key {key} including {e}, which was appended by a transaction that failed (aborted)"
                ),
            });
        }
    }
    None
}

/// Elle's lost update: committed transactions that read the same version of a key and both wrote it.
/// `entries` are (key, version, reader); for registers the version is an index of the value read.
fn lost_updates(inf: &mut Inference<'_>, mut entries: Vec<(i64, usize, u32)>) {
    entries.sort_unstable();
    for group in entries.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
        if group.len() >= 2 {
            inf.found.push(Found {
                name: "lost-update",
                txns: group.iter().map(|e| e.2).collect(),
                message: format!(
                    "{} committed transactions read the same version of key {} and all wrote it",
                    group.len(),
                    group[0].0
                ),
            });
        }
    }
}

fn register_edges(inf: &mut Inference<'_>, raw: &mut Vec<(u32, u32, u8)>) {
    // (key, value read: None for the initial nil) -> readers
    let mut readers: FxHashMap<(i64, Option<i64>), Vec<u32>> = FxHashMap::default();
    let mut successions: Vec<(i64, Option<i64>, u32)> = Vec::new();
    let mut read_then_write: Vec<(i64, usize, u32)> = Vec::new();
    let store = inf.store;
    for (i, _) in store.txns.iter().enumerate().filter(|(_, t)| t.is_ok()) {
        let i = i as u32;
        let writes: FxHashSet<i64> = final_writes(store, i).into_iter().map(|w| w.0).collect();
        for (key, v) in external_reads(store, i) {
            let read = match v {
                ReadValue::Nil => None,
                ReadValue::Int(x) => Some(x),
                ReadValue::List(_) => continue,
            };
            readers.entry((key, read)).or_default().push(i);
            if writes.contains(&key) {
                successions.push((key, read, i));
                // Encode the version read for lost-update grouping: nil as 0, v as v's bits + 1.
                let version = read.map_or(0, |x| (x as u64 as usize).wrapping_add(1));
                read_then_write.push((key, version, i));
            }
            let Some(x) = read else { continue };
            let Some(w) = inf.writers.get(&(key, x)).copied().filter(|w| !w.ambiguous) else {
                continue;
            };
            if w.txn == i {
                // Read before the transaction's own write of the key (else it is not external).
                inf.found.push(Found {
                    name: "internal",
                    txns: vec![i],
                    message: format!("read key {key} = {x}, a value it writes itself only later"),
                });
                continue;
            }
            if w.failed {
                inf.found.push(Found {
                    name: "G1a",
                    txns: vec![i, w.txn],
                    message: format!(
                        "read key {key} = {x}, written by a transaction that failed (aborted)"
                    ),
                });
                continue;
            }
            raw.push((w.txn, i, WR));
            if !w.last_in_txn {
                inf.found.push(Found {
                    name: "G1b",
                    txns: vec![i, w.txn],
                    message: format!(
                        "read key {key} = {x}, an intermediate write of a transaction that wrote the key again"
                    ),
                });
            }
        }
    }
    // T read v then wrote v': v' directly follows v. Writer(v) -ww-> T; other readers of v -rw-> T.
    for &(key, read, t) in &successions {
        if let Some(x) = read {
            if let Some(w) = inf
                .writers
                .get(&(key, x))
                .filter(|w| !w.ambiguous && !w.failed)
            {
                if w.txn != t {
                    raw.push((w.txn, t, WW));
                }
            }
        }
        for &r in readers.get(&(key, read)).map(Vec::as_slice).unwrap_or(&[]) {
            if r != t {
                raw.push((r, t, RW));
            }
        }
    }
    // A read of the initial nil precedes every committed write of the key.
    let mut committed_writers: FxHashMap<i64, Vec<u32>> = FxHashMap::default();
    for (&(key, _), w) in &inf.writers {
        if !w.failed && !w.ambiguous && store.txns[w.txn as usize].is_ok() && w.last_in_txn {
            committed_writers.entry(key).or_default().push(w.txn);
        }
    }
    for (&(key, read), rs) in &readers {
        if read.is_some() {
            continue;
        }
        for &w in committed_writers
            .get(&key)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            for &r in rs {
                if r != w {
                    raw.push((r, w, RW));
                }
            }
        }
    }
    lost_updates(inf, read_then_write);
}

/// Successive transactions of one process, from a committed one to the next that may commit.
fn process_edges(inf: &Inference<'_>, raw: &mut Vec<(u32, u32, u8)>) {
    let mut last: FxHashMap<u64, u32> = FxHashMap::default();
    for (i, t) in inf.store.txns.iter().enumerate() {
        if !t.may_commit() {
            continue;
        }
        if let Some(&p) = last.get(&t.process) {
            raw.push((p, i as u32, PROCESS));
        }
        if t.is_ok() {
            last.insert(t.process, i as u32);
        } else {
            last.remove(&t.process);
        }
    }
}

fn finish_edges(inf: &mut Inference<'_>, mut raw: Vec<(u32, u32, u8)>) {
    use rayon::slice::ParallelSliceMut;
    raw.par_sort_unstable_by_key(|&(a, b, _)| ((a as u64) << 32) | b as u64);
    let mut edges: Vec<(u32, u32, u8)> = Vec::with_capacity(raw.len());
    for (a, b, k) in raw {
        match edges.last_mut() {
            Some(e) if e.0 == a && e.1 == b => e.2 |= k,
            _ => edges.push((a, b, k)),
        }
    }
    let n = inf.store.len();
    let mut offsets = vec![0u32; n + 1];
    for &(a, _, _) in &edges {
        offsets[a as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    inf.edges = edges;
    inf.offsets = offsets;
}

/// Real-time edges among `members` (transaction ids), transitively reduced: T → U when T completed
/// `ok` before U was invoked and no third member sits between them.
pub fn realtime_edges(inf: &Inference<'_>, members: &[u32]) -> Vec<(u32, u32)> {
    // (position, is_completion, txn): completions sort before an invocation at the same position,
    // which never happens anyway since positions are distinct events.
    let mut evs: Vec<(u32, bool, u32)> = Vec::with_capacity(members.len() * 2);
    for &m in members {
        let t = &inf.store.txns[m as usize];
        evs.push((t.invoke, false, m));
        if let (true, Some(c)) = (t.is_ok(), t.completion()) {
            evs.push((c, true, m));
        }
    }
    evs.sort_unstable();
    let mut frontier: Vec<u32> = Vec::new();
    let mut seen_at_invoke: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    let mut out = Vec::new();
    for (_, is_completion, m) in evs {
        if is_completion {
            if let Some(before) = seen_at_invoke.remove(&m) {
                frontier.retain(|f| !before.contains(f));
            }
            frontier.push(m);
        } else {
            out.extend(frontier.iter().map(|&f| (f, m)));
            if inf.store.txns[m as usize].is_ok() {
                seen_at_invoke.insert(m, frontier.clone());
            }
        }
    }
    out
}
