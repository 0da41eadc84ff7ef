//! Shared helpers of the graph checker's tests: a tiny DSL for transactional histories (in the
//! spirit of Elle's `(op "ax1ry12")`), a simulator of a correct (strict serializable) store, and a
//! brute-force oracle that searches every serial order of a small history.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use verity_history::{Event, EventType, History, Process, Value, F};

/// A micro-op in test shorthand.
#[derive(Debug, Clone, PartialEq)]
pub enum M {
    A(i64, i64),
    /// A list read: `None` = unknown (invocation), `Some(list)`.
    R(i64, Option<Vec<i64>>),
    W(i64, i64),
    /// A register read: `None` unknown; `Some(None)` nil; `Some(Some(v))`.
    Rr(i64, Option<Option<i64>>),
}

pub fn mops_value(mops: &[M]) -> Value {
    Value::List(
        mops.iter()
            .map(|m| {
                let (f, k, v) = match m {
                    M::A(k, v) => ("append", *k, Value::Int(*v)),
                    M::W(k, v) => ("w", *k, Value::Int(*v)),
                    M::R(k, None) | M::Rr(k, None) => ("r", *k, Value::Null),
                    M::R(k, Some(l)) => ("r", *k, Value::int_list(l.iter().copied())),
                    M::Rr(k, Some(v)) => ("r", *k, v.map_or(Value::Null, Value::Int)),
                };
                Value::List(vec![Value::from(f), Value::Int(k), v])
            })
            .collect(),
    )
}

/// The invocation form of micro-ops: reads unknown.
pub fn blank(mops: &[M]) -> Vec<M> {
    mops.iter()
        .map(|m| match m {
            M::R(k, _) => M::R(*k, None),
            M::Rr(k, _) => M::Rr(*k, None),
            other => other.clone(),
        })
        .collect()
}

/// Builds histories event by event.
#[derive(Default)]
pub struct Builder {
    pub events: Vec<Event>,
}

impl Builder {
    pub fn new() -> Self {
        Builder::default()
    }

    fn push(&mut self, p: u64, kind: EventType, value: Value) {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time_ns: index * 10,
            process: Process::Client(p),
            kind,
            f: F::Txn,
            value,
            error: None,
        });
    }

    pub fn invoke(&mut self, p: u64, mops: &[M]) -> &mut Self {
        self.push(p, EventType::Invoke, mops_value(&blank(mops)));
        self
    }

    pub fn complete(&mut self, p: u64, kind: EventType, mops: &[M]) -> &mut Self {
        let v = if kind == EventType::Ok {
            mops_value(mops)
        } else {
            mops_value(&blank(mops))
        };
        self.push(p, kind, v);
        self
    }

    /// An invocation immediately followed by its ok completion.
    pub fn ok(&mut self, p: u64, mops: &[M]) -> &mut Self {
        self.invoke(p, mops).complete(p, EventType::Ok, mops)
    }

    pub fn fail(&mut self, p: u64, mops: &[M]) -> &mut Self {
        self.invoke(p, mops).complete(p, EventType::Fail, mops)
    }

    pub fn info(&mut self, p: u64, mops: &[M]) -> &mut Self {
        self.invoke(p, mops).complete(p, EventType::Info, mops)
    }

    pub fn history(&self) -> History {
        History::new(self.events.clone())
    }
}

/// The state of a simulated store: lists and registers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub lists: BTreeMap<i64, Vec<i64>>,
    pub regs: BTreeMap<i64, i64>,
}

impl State {
    /// Runs micro-ops atomically, filling in reads.
    pub fn apply(&mut self, mops: &[M]) -> Vec<M> {
        mops.iter()
            .map(|m| match m {
                M::A(k, v) => {
                    self.lists.entry(*k).or_default().push(*v);
                    m.clone()
                }
                M::W(k, v) => {
                    self.regs.insert(*k, *v);
                    m.clone()
                }
                M::R(k, _) => M::R(*k, Some(self.lists.get(k).cloned().unwrap_or_default())),
                M::Rr(k, _) => M::Rr(*k, Some(self.regs.get(k).copied())),
            })
            .collect()
    }

    /// Runs micro-ops and says whether every read returned what `observed` says (unknown reads match).
    pub fn replay(&mut self, observed: &[M]) -> bool {
        let got = self.apply(observed);
        got.iter().zip(observed).all(|(g, o)| match (g, o) {
            (_, M::R(_, None)) | (_, M::Rr(_, None)) => true,
            (M::R(_, Some(a)), M::R(_, Some(b))) => a == b,
            (M::Rr(_, Some(a)), M::Rr(_, Some(b))) => a == b,
            _ => true,
        })
    }
}

/// Random micro-ops over `keys` keys; values from `next_value` (unique).
pub fn random_mops(
    rng: &mut ChaCha8Rng,
    keys: i64,
    max_len: usize,
    register: bool,
    next_value: &mut i64,
) -> Vec<M> {
    let len = rng.gen_range(1..=max_len);
    (0..len)
        .map(|_| {
            let k = rng.gen_range(0..keys);
            if rng.gen_bool(0.5) {
                if register {
                    M::Rr(k, None)
                } else {
                    M::R(k, None)
                }
            } else {
                *next_value += 1;
                if register {
                    M::W(k, *next_value)
                } else {
                    M::A(k, *next_value)
                }
            }
        })
        .collect()
}

/// How a simulated correct store runs.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSim {
    pub txns: usize,
    pub procs: u64,
    pub keys: i64,
    /// rw-register micro-ops (`r`, `w`) instead of list-append (`r`, `append`).
    pub register: bool,
    /// Strict serializable: every transaction takes effect inside its interval. When false the store
    /// is serializable only: a read-only transaction may read an older snapshot (it serializes where
    /// that snapshot was the state), which breaks real-time and process order, never serializability.
    pub strict: bool,
    /// Nemesis events (partitions starting and healing) between the clients' operations.
    pub nemesis: bool,
}

impl StoreSim {
    pub fn new(txns: usize, procs: u64, keys: i64, register: bool) -> Self {
        StoreSim {
            txns,
            procs,
            keys,
            register,
            strict: true,
            nemesis: false,
        }
    }
}

/// Simulates a correct strict serializable store (see [`StoreSim::new`] and [`simulate_store`]).
pub fn simulate_correct(
    rng: &mut ChaCha8Rng,
    txns: usize,
    procs: u64,
    keys: i64,
    register: bool,
) -> History {
    simulate_store(rng, &StoreSim::new(txns, procs, keys, register))
}

/// The fate of a simulated transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Ok,
    /// Fails without effect.
    Fail,
    /// Times out after taking effect.
    InfoApplied,
    /// Times out and never takes effect.
    InfoLost,
    /// Times out, then takes effect later (or is still pending when the history ends).
    InfoLate,
}

/// Simulates a correct store: `procs` processes run `txns` random transactions; each takes effect
/// atomically at a random instant between its invocation and completion (strict serializable), or
/// — with `strict` off — a read-only one may read an older snapshot. Some fail (no effect), some end
/// `info` (effect before, after, or never), some are still open when the history ends (a crashed
/// client: effect or not).
pub fn simulate_store(rng: &mut ChaCha8Rng, cfg: &StoreSim) -> History {
    #[derive(Clone)]
    struct Open {
        p: u64,
        mops: Vec<M>,
        result: Option<Vec<M>>,
        fate: Fate,
    }
    let mut b = Builder::new();
    let mut state = State::default();
    // Every state the store has been in, for the serializable store's old snapshots.
    let mut snapshots: Vec<State> = vec![state.clone()];
    let mut open: Vec<Open> = Vec::new();
    // Timed out, still to take effect.
    let mut late: Vec<Vec<M>> = Vec::new();
    let mut next_value = 0;
    let mut next_proc = cfg.procs;
    let mut idle: Vec<u64> = (0..cfg.procs).collect();
    let mut started = 0;
    let mut guard = 0;
    let txns = cfg.txns;
    while (started < txns || !open.is_empty()) && guard < txns * 10 + 100 {
        guard += 1;
        if !late.is_empty() && rng.gen_bool(0.1) {
            let mops = late.swap_remove(rng.gen_range(0..late.len()));
            state.apply(&mops);
            snapshots.push(state.clone());
        }
        let choice = rng.gen_range(0..3);
        if choice == 0 && started < txns && !idle.is_empty() {
            let i = rng.gen_range(0..idle.len());
            let p = idle.swap_remove(i);
            let mops = random_mops(rng, cfg.keys, 4, cfg.register, &mut next_value);
            b.invoke(p, &mops);
            let fate = match rng.gen_range(0..24) {
                0 => Fate::Fail,
                1 => Fate::InfoApplied,
                2 => Fate::InfoLost,
                3 => Fate::InfoLate,
                _ => Fate::Ok,
            };
            open.push(Open {
                p,
                mops,
                result: None,
                fate,
            });
            started += 1;
        } else if choice == 1 && !open.is_empty() {
            // Take effect.
            let i = rng.gen_range(0..open.len());
            let o = &mut open[i];
            if o.result.is_none() && matches!(o.fate, Fate::Ok | Fate::InfoApplied) {
                let read_only = o.mops.iter().all(|m| matches!(m, M::R(..) | M::Rr(..)));
                if !cfg.strict && read_only && rng.gen_bool(0.3) {
                    let mut old = snapshots[rng.gen_range(0..snapshots.len())].clone();
                    o.result = Some(old.apply(&o.mops));
                } else {
                    o.result = Some(state.apply(&o.mops));
                    snapshots.push(state.clone());
                }
            }
        } else if !open.is_empty() {
            let i = rng.gen_range(0..open.len());
            let ready = open[i].result.is_some()
                || matches!(open[i].fate, Fate::Fail | Fate::InfoLost | Fate::InfoLate);
            if !ready {
                continue;
            }
            let o = open.swap_remove(i);
            match o.fate {
                Fate::Ok => {
                    b.complete(o.p, EventType::Ok, o.result.as_ref().expect("applied"));
                    idle.push(o.p);
                }
                Fate::Fail => {
                    b.complete(o.p, EventType::Fail, &o.mops);
                    idle.push(o.p);
                }
                _ => {
                    if o.fate == Fate::InfoLate {
                        late.push(o.mops.clone());
                    }
                    b.complete(o.p, EventType::Info, &o.mops);
                    idle.push(next_proc);
                    next_proc += 1;
                }
            }
        }
    }
    // Whatever is still open stays pending (the history ends), after taking effect or not.
    if cfg.nemesis {
        crate::with_nemesis(b.history(), rng.gen())
    } else {
        b.history()
    }
}

/// A transaction of a small history as the oracle sees it.
#[derive(Debug, Clone)]
pub struct OTxn {
    pub process: u64,
    pub invoke: usize,
    pub complete: Option<usize>,
    pub kind: EventType,
    pub mops: Vec<M>,
}

pub fn parse_m(v: &Value, register: bool, reads_known: bool) -> Vec<M> {
    v.as_list()
        .unwrap()
        .iter()
        .map(|m| {
            let m = m.as_list().unwrap();
            let k = m[1].as_i64().unwrap();
            match m[0].as_str().unwrap() {
                "append" => M::A(k, m[2].as_i64().unwrap()),
                "w" => M::W(k, m[2].as_i64().unwrap()),
                _ if !reads_known => {
                    if register {
                        M::Rr(k, None)
                    } else {
                        M::R(k, None)
                    }
                }
                _ if register => M::Rr(k, Some(m[2].as_i64())),
                _ => M::R(k, Some(m[2].as_i64_list().unwrap_or_default())),
            }
        })
        .collect()
}

/// The transactions of a history built by [`Builder`].
pub fn oracle_txns(h: &History, register: bool) -> Vec<OTxn> {
    let ops = h.ops().unwrap();
    ops.iter()
        .map(|op| {
            let kind = op
                .completion
                .map_or(EventType::Invoke, |c| h.events[c].kind);
            let ok = kind == EventType::Ok;
            let src = if ok {
                &h.events[op.completion.unwrap()]
            } else {
                &h.events[op.invoke]
            };
            OTxn {
                process: match h.events[op.invoke].process {
                    Process::Client(p) => p,
                    Process::Nemesis => u64::MAX,
                },
                invoke: op.invoke,
                complete: op.completion,
                kind,
                mops: parse_m(&src.value, register, ok),
            }
        })
        .collect()
}

/// Which orders the oracle accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Any serial order (serializable).
    Any,
    /// Serial orders that keep each process's order (strong session serializable).
    Process,
    /// Serial orders that keep real-time order (strict serializable).
    Realtime,
}

/// Whether some serial order of some committed subset explains every ok read: all ok transactions
/// are in, fail ones are out, info and pending ones may be either.
pub fn explainable(txns: &[OTxn], order: Order) -> bool {
    let maybe: Vec<usize> = (0..txns.len())
        .filter(|&i| matches!(txns[i].kind, EventType::Info | EventType::Invoke))
        .collect();
    let must: Vec<usize> = (0..txns.len())
        .filter(|&i| txns[i].kind == EventType::Ok)
        .collect();
    for mask in 0..(1u32 << maybe.len()) {
        let mut set = must.clone();
        for (j, &i) in maybe.iter().enumerate() {
            if mask & (1 << j) != 0 {
                set.push(i);
            }
        }
        if permute(txns, &mut set, 0, order) {
            return true;
        }
    }
    false
}

fn precedes(txns: &[OTxn], a: usize, b: usize, order: Order) -> bool {
    let (ta, tb) = (&txns[a], &txns[b]);
    let completed_before = ta.kind == EventType::Ok && ta.complete.is_some_and(|c| c < tb.invoke);
    match order {
        Order::Any => false,
        Order::Process => ta.process == tb.process && completed_before,
        Order::Realtime => completed_before,
    }
}

fn permute(txns: &[OTxn], set: &mut Vec<usize>, k: usize, order: Order) -> bool {
    if k == set.len() {
        let mut s = State::default();
        return set.iter().all(|&i| s.replay(&txns[i].mops));
    }
    for i in k..set.len() {
        set.swap(k, i);
        // Prune: the chosen transaction must not have to follow any one still unplaced.
        let c = set[k];
        let ok = set[k + 1..]
            .iter()
            .all(|&later| !precedes(txns, later, c, order));
        if ok && prefix_ok(txns, &set[..=k]) && permute(txns, set, k + 1, order) {
            set.swap(k, i);
            return true;
        }
        set.swap(k, i);
    }
    false
}

/// Replays a prefix to prune early.
fn prefix_ok(txns: &[OTxn], prefix: &[usize]) -> bool {
    let mut s = State::default();
    prefix.iter().all(|&i| s.replay(&txns[i].mops))
}

pub fn shuffle<T>(rng: &mut ChaCha8Rng, v: &mut [T]) {
    v.shuffle(rng);
}

/// An open transaction of the buggy store: process, micro-ops, result once applied, fate
/// (0 ok, 1 fail, 2 info).
type OpenTxn = (u64, Vec<M>, Option<Vec<M>>, u8);

/// A buggy store: each transaction takes effect at a random instant, but its reads may be stale
/// (a random earlier version), a failed transaction may be applied anyway, and a transaction's
/// writes may be split around another's.
pub fn simulate_buggy(
    rng: &mut ChaCha8Rng,
    txns: usize,
    procs: u64,
    keys: i64,
    register: bool,
) -> History {
    let mut b = Builder::new();
    let mut state = State::default();
    let mut versions: Vec<State> = vec![state.clone()];
    let mut next_value = 0;
    let mut open: Vec<OpenTxn> = Vec::new();
    let mut idle: Vec<u64> = (0..procs).collect();
    let mut next_proc = procs;
    let mut started = 0;
    for _ in 0..txns * 8 {
        if started == txns && open.is_empty() {
            break;
        }
        match rng.gen_range(0..3) {
            0 if started < txns && !idle.is_empty() => {
                let p = idle.swap_remove(rng.gen_range(0..idle.len()));
                let mops = random_mops(rng, keys, 3, register, &mut next_value);
                b.invoke(p, &mops);
                let fate = match rng.gen_range(0..10) {
                    0 => 1,
                    1 => 2,
                    _ => 0,
                };
                open.push((p, mops, None, fate));
                started += 1;
            }
            1 if !open.is_empty() => {
                let i = rng.gen_range(0..open.len());
                if open[i].2.is_none() && (open[i].3 != 1 || rng.gen_bool(0.3)) {
                    let mops = open[i].1.clone();
                    // Reads from a random (possibly stale) version, writes to the latest state.
                    let mut snapshot = if rng.gen_bool(0.4) {
                        versions[rng.gen_range(0..versions.len())].clone()
                    } else {
                        state.clone()
                    };
                    let mut result = Vec::new();
                    for m in &mops {
                        match m {
                            M::A(..) | M::W(..) => {
                                state.apply(std::slice::from_ref(m));
                                snapshot.apply(std::slice::from_ref(m));
                            }
                            _ => result.extend(snapshot.apply(std::slice::from_ref(m))),
                        }
                    }
                    // Re-assemble in micro-op order.
                    let mut reads = result.into_iter();
                    let filled = mops
                        .iter()
                        .map(|m| match m {
                            M::R(..) | M::Rr(..) => reads.next().expect("one result per read"),
                            w => w.clone(),
                        })
                        .collect();
                    open[i].2 = Some(filled);
                    versions.push(state.clone());
                }
            }
            _ if !open.is_empty() => {
                let i = rng.gen_range(0..open.len());
                if open[i].2.is_none() && open[i].3 == 0 {
                    continue;
                }
                let (p, mops, result, fate) = open.swap_remove(i);
                match fate {
                    0 => {
                        b.complete(p, EventType::Ok, result.as_ref().expect("applied"));
                        idle.push(p);
                    }
                    1 => {
                        b.complete(p, EventType::Fail, &mops);
                        idle.push(p);
                    }
                    _ => {
                        b.complete(p, EventType::Info, &mops);
                        idle.push(next_proc);
                        next_proc += 1;
                    }
                }
            }
            _ => {}
        }
    }
    // Close whatever is open as info, so every transaction is in the history.
    for (p, mops, _, _) in open {
        b.complete(p, EventType::Info, &mops);
    }
    b.history()
}

// ---------------------------------------------------------------------------------------------------
// Injected anomalies: a few transactions on fresh keys whose observations form exactly one anomaly,
// merged into a valid history at random points.

/// An anomaly to inject into a list-append history (or, where it says so, an rw-register one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gadget {
    /// Two transactions each write x and y, in opposite orders: a write cycle.
    G0,
    /// A read of a failed transaction's write (aborted read).
    G1a,
    /// A read of a state a transaction passed through, not its final one (dirty / intermediate read).
    G1b,
    /// Two transactions that each read the other's write: circular information flow.
    G1c,
    /// Read skew: one anti-dependency in a cycle.
    GSingle,
    /// Two anti-dependencies, not next to each other, in a cycle of four.
    GNonadjacent,
    /// Write skew: two anti-dependencies in a cycle of two.
    G2Item,
    /// Two transactions read the same version of x and both append to it.
    LostUpdate,
    /// A transaction that does not see its own write.
    Internal,
    /// One transaction finished before the other began, yet the versions order them backwards.
    G0Realtime,
    /// A transaction reads what one that began after it finished wrote.
    G1cRealtime,
    /// A read, begun after a write finished, that misses it (a stale read).
    GSingleRealtime,
    /// [`Gadget::G0Realtime`] within one process.
    G0Process,
    /// [`Gadget::G1cRealtime`] within one process.
    G1cProcess,
    /// [`Gadget::GSingleRealtime`] within one process.
    GSingleProcess,
}

pub const GADGETS: [Gadget; 15] = [
    Gadget::G0,
    Gadget::G1a,
    Gadget::G1b,
    Gadget::G1c,
    Gadget::GSingle,
    Gadget::GNonadjacent,
    Gadget::G2Item,
    Gadget::LostUpdate,
    Gadget::Internal,
    Gadget::G0Realtime,
    Gadget::G1cRealtime,
    Gadget::GSingleRealtime,
    Gadget::G0Process,
    Gadget::G1cProcess,
    Gadget::GSingleProcess,
];

/// One step of a gadget: transaction `t` (0, 1, …) is invoked or completes.
type Step = (usize, EventType);
/// A gadget's transaction: process, fate, micro-ops with their results.
type GadgetTxn = (u64, EventType, Vec<M>);

impl Gadget {
    /// The anomaly the checker must name.
    pub fn anomaly(self) -> &'static str {
        match self {
            Gadget::G0 => "G0",
            Gadget::G1a => "G1a",
            Gadget::G1b => "G1b",
            Gadget::G1c => "G1c",
            Gadget::GSingle => "G-single",
            Gadget::GNonadjacent => "G-nonadjacent",
            Gadget::G2Item => "G2-item",
            Gadget::LostUpdate => "lost-update",
            Gadget::Internal => "internal",
            Gadget::G0Realtime => "G0-realtime",
            Gadget::G1cRealtime => "G1c-realtime",
            Gadget::GSingleRealtime => "G-single-realtime",
            Gadget::G0Process => "G0-process",
            Gadget::G1cProcess => "G1c-process",
            Gadget::GSingleProcess => "G-single-process",
        }
    }

    /// The orders a serial explanation must keep for the anomaly to be one.
    pub fn order(self) -> Order {
        match self {
            Gadget::G0Realtime | Gadget::G1cRealtime | Gadget::GSingleRealtime => Order::Realtime,
            Gadget::G0Process | Gadget::G1cProcess | Gadget::GSingleProcess => Order::Process,
            _ => Order::Any,
        }
    }

    /// Whether an rw-register form exists (writes instead of appends; G1b and G0 need a version
    /// order that registers only reveal through reads of intermediate values, so they stay
    /// list-append only).
    pub fn has_register_form(self) -> bool {
        matches!(
            self,
            Gadget::G1a | Gadget::G1c | Gadget::GSingle | Gadget::G2Item | Gadget::LostUpdate
        )
    }

    /// The gadget's transactions (process, fate, micro-ops with their results) on keys from `k`,
    /// and the order of their events. Values are unique: 1_000_000 + n.
    fn build(self, k: i64, register: bool) -> (Vec<GadgetTxn>, Vec<Step>) {
        use EventType::{Fail, Invoke, Ok};
        let (x, y, z, w) = (k, k + 1, k + 2, k + 3);
        let v = |n: i64| 1_000_000 + n;
        let a = |key, n| {
            if register {
                M::W(key, v(n))
            } else {
                M::A(key, v(n))
            }
        };
        let r = |key, seen: &[i64]| {
            if register {
                M::Rr(key, Some(seen.last().map(|n| v(*n))))
            } else {
                M::R(key, Some(seen.iter().map(|n| v(*n)).collect()))
            }
        };
        let (p, q, s, u) = (1_000_000, 1_000_001, 1_000_002, 1_000_003);
        // Both invoked before either completes.
        let concurrent2 = vec![(0, Invoke), (1, Invoke), (0, Ok), (1, Ok)];
        // The first completes before the second is invoked.
        let sequential2 = vec![(0, Invoke), (0, Ok), (1, Invoke), (1, Ok)];
        let with_final = |mut steps: Vec<Step>, reader: usize| {
            steps.extend([(reader, Invoke), (reader, Ok)]);
            steps
        };
        match self {
            Gadget::G0 => (
                vec![
                    (p, Ok, vec![a(x, 1), a(y, 1)]),
                    (q, Ok, vec![a(x, 2), a(y, 2)]),
                    (s, Ok, vec![r(x, &[1, 2]), r(y, &[2, 1])]),
                ],
                with_final(concurrent2, 2),
            ),
            Gadget::G1a => (
                vec![(p, Fail, vec![a(x, 1)]), (q, Ok, vec![r(x, &[1])])],
                concurrent2,
            ),
            Gadget::G1b => (
                vec![
                    (p, Ok, vec![a(x, 1), a(x, 2)]),
                    (q, Ok, vec![r(x, &[1])]),
                    (s, Ok, vec![r(x, &[1, 2])]),
                ],
                with_final(concurrent2, 2),
            ),
            Gadget::G1c => (
                vec![
                    (p, Ok, vec![a(x, 1), r(y, &[2])]),
                    (q, Ok, vec![a(y, 2), r(x, &[1])]),
                ],
                concurrent2,
            ),
            Gadget::GSingle => (
                vec![
                    (p, Ok, vec![a(x, 1), a(y, 1)]),
                    (q, Ok, vec![r(x, &[]), r(y, &[1])]),
                    (s, Ok, vec![r(x, &[1])]),
                ],
                with_final(concurrent2, 2),
            ),
            Gadget::GNonadjacent => (
                vec![
                    (p, Ok, vec![r(x, &[]), r(w, &[4])]),
                    (q, Ok, vec![a(x, 1), a(y, 2)]),
                    (s, Ok, vec![r(y, &[2]), r(z, &[])]),
                    (u, Ok, vec![a(z, 3), a(w, 4)]),
                    (1_000_004, Ok, vec![r(x, &[1]), r(z, &[3])]),
                ],
                vec![
                    (0, Invoke),
                    (1, Invoke),
                    (2, Invoke),
                    (3, Invoke),
                    (0, Ok),
                    (1, Ok),
                    (2, Ok),
                    (3, Ok),
                    (4, Invoke),
                    (4, Ok),
                ],
            ),
            Gadget::G2Item => (
                vec![
                    (p, Ok, vec![r(x, &[]), a(y, 1)]),
                    (q, Ok, vec![r(y, &[]), a(x, 2)]),
                    (s, Ok, vec![r(x, &[2]), r(y, &[1])]),
                ],
                with_final(concurrent2, 2),
            ),
            Gadget::LostUpdate => (
                vec![
                    (p, Ok, vec![r(x, &[]), a(x, 1)]),
                    (q, Ok, vec![r(x, &[]), a(x, 2)]),
                    (s, Ok, vec![r(x, &[1, 2])]),
                ],
                with_final(concurrent2, 2),
            ),
            Gadget::Internal => (
                vec![(p, Ok, vec![a(x, 1), r(x, &[])])],
                vec![(0, Invoke), (0, Ok)],
            ),
            Gadget::G0Realtime | Gadget::G0Process => (
                vec![
                    (p, Ok, vec![a(x, 1)]),
                    (
                        if self == Gadget::G0Process { p } else { q },
                        Ok,
                        vec![a(x, 2)],
                    ),
                    (s, Ok, vec![r(x, &[2, 1])]),
                ],
                with_final(sequential2, 2),
            ),
            Gadget::G1cRealtime | Gadget::G1cProcess => (
                vec![
                    (p, Ok, vec![r(x, &[1])]),
                    (
                        if self == Gadget::G1cProcess { p } else { q },
                        Ok,
                        vec![a(x, 1)],
                    ),
                ],
                sequential2,
            ),
            Gadget::GSingleRealtime | Gadget::GSingleProcess => (
                vec![
                    (p, Ok, vec![a(x, 1)]),
                    (
                        if self == Gadget::GSingleProcess { p } else { q },
                        Ok,
                        vec![r(x, &[])],
                    ),
                    (s, Ok, vec![r(x, &[1])]),
                ],
                with_final(sequential2, 2),
            ),
        }
    }

    /// Merges the gadget into `base` at random points (each sequence keeps its own order), on keys
    /// no base transaction touches; events are renumbered.
    pub fn inject(self, base: &History, register: bool, rng: &mut ChaCha8Rng) -> History {
        let (txns, steps) = self.build(1_000, register);
        let mut gadget = Builder::new();
        for (t, kind) in &steps {
            let (p, fate, mops) = &txns[*t];
            if *kind == EventType::Invoke {
                gadget.invoke(*p, mops);
            } else {
                gadget.complete(*p, *fate, mops);
            }
        }
        let (mut i, mut j) = (0, 0);
        let (a, b) = (&base.events, &gadget.events);
        let mut events = Vec::with_capacity(a.len() + b.len());
        while i < a.len() || j < b.len() {
            let take_base =
                j == b.len() || (i < a.len() && rng.gen_range(0..a.len() + b.len()) < a.len());
            let mut e = if take_base {
                i += 1;
                a[i - 1].clone()
            } else {
                j += 1;
                b[j - 1].clone()
            };
            e.index = events.len() as u64;
            e.time_ns = e.index * 10;
            events.push(e);
        }
        History::new(events)
    }
}
