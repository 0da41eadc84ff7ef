//! A brute-force oracle of every consistency model the graph checker names, for the cross-check of
//! its "rules out / still consistent with" lists (`checkers/tests/graph_models.rs`).
//!
//! It decides each model directly, from its definition, over every execution of a small
//! history (≤ 6 transactions, ≤ 3 keys): which `info` / pending transactions committed, and then
//!
//! - **serializable family** (operational): a total order of the committed transactions in which
//!   every `ok` read sees exactly the state of the prefix before it plus its own earlier writes;
//!   strong-session serializable keeps each process's order, strict serializable real-time order;
//! - **snapshot-isolation family** (operational): a commit order and, per transaction, a start point
//!   in it; reads see the snapshot at the start plus own writes, and no two concurrent committed
//!   transactions write the same key (first committer wins). Strong-session SI starts a transaction
//!   after the commit of its process's earlier transactions, strong SI after every transaction that
//!   completed before it was invoked (Daudjee & Salem);
//! - **Adya's levels** (Adya, "Weak Consistency", 1999), over every version order of every key:
//!   read-uncommitted (PL-1, no G0), read-committed (PL-2, no G0 / G1a / G1b / G1c), cursor
//!   stability (PL-CS, also no G-cursor: a cycle of one anti-dependency and write dependencies, all on
//!   one key) and repeatable read (PL-2.99, also no G2-item; with item reads only, as here, that is
//!   an acyclic DSG).
//!
//! Monotonic atomic view has no exact definition over these histories that the oracle implements:
//! it is decided only where its neighbours decide it (snapshot isolation possible ⇒ MAV possible;
//! read committed impossible ⇒ MAV impossible) and counted as undecided otherwise.
//!
//! The oracle's semantics, where the definitions leave a choice:
//! - a key's version order is the order its versions were installed, so a read of a key before the
//!   transaction's own write of it reads an older version than its own; a list value is the
//!   concatenation of the appends along the version order;
//! - a read after the transaction's own write of the key reads its own version: the register's
//!   value it wrote; for a list, the older version its appends went onto followed by them (in the
//!   serializable and SI models, that version is the state its reads see);
//! - a read may see an intermediate version (G1b) or an uncommitted or aborted transaction's
//!   appends on top of a committed version (G1a, a dirty read); anything else — a value no
//!   execution produces, a read contradicting the transaction's own writes — has no
//!   interpretation under any model;
//! - an `info` or pending transaction's reads are unknown, so they are left out of the DSG: for
//!   each of Adya's levels some choice of the versions they read adds no forbidden cycle.

use std::collections::{BTreeMap, BTreeSet};

use verity_history::EventType;

use crate::txn::{OTxn, State, M};
/// What the oracle says of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Possible,
    Impossible,
    Undecided,
}

/// The operational models, as bits.
const SER: u8 = 1;
const SESSION_SER: u8 = 2;
const STRICT_SER: u8 = 4;
const SI: u8 = 8;
const SESSION_SI: u8 = 16;
const STRONG_SI: u8 = 32;
const OPERATIONAL: u8 = 63;

/// Adya's levels, as bits.
const RU: u8 = 1;
const RC: u8 = 2;
const CS: u8 = 4;
const RR: u8 = 8;
const ADYA: u8 = 15;

pub struct Oracle<'a> {
    txns: &'a [OTxn],
    register: bool,
    keys: Vec<i64>,
    /// `before[u]`: transactions that must precede `u` in session order / in real time.
    session_before: Vec<Vec<usize>>,
    realtime_before: Vec<Vec<usize>>,
}

fn writes_of(t: &OTxn, key: i64) -> Vec<i64> {
    t.mops
        .iter()
        .filter_map(|m| match m {
            M::A(k, v) | M::W(k, v) if *k == key => Some(*v),
            _ => None,
        })
        .collect()
}

pub fn written_keys(t: &OTxn) -> BTreeSet<i64> {
    t.mops
        .iter()
        .filter_map(|m| match m {
            M::A(k, _) | M::W(k, _) => Some(*k),
            _ => None,
        })
        .collect()
}

pub fn is_ok(t: &OTxn) -> bool {
    t.kind == EventType::Ok
}

pub fn maybe(t: &OTxn) -> bool {
    matches!(t.kind, EventType::Info | EventType::Invoke)
}

impl<'a> Oracle<'a> {
    pub fn new(txns: &'a [OTxn], register: bool) -> Self {
        let keys: BTreeSet<i64> = txns
            .iter()
            .flat_map(|t| {
                t.mops.iter().map(|m| match m {
                    M::A(k, _) | M::W(k, _) | M::R(k, _) | M::Rr(k, _) => *k,
                })
            })
            .collect();
        let completed_before =
            |a: &OTxn, b: &OTxn| is_ok(a) && a.complete.is_some_and(|c| c < b.invoke);
        let before = |same_process: bool| -> Vec<Vec<usize>> {
            (0..txns.len())
                .map(|u| {
                    (0..txns.len())
                        .filter(|&t| {
                            t != u
                                && completed_before(&txns[t], &txns[u])
                                && (!same_process || txns[t].process == txns[u].process)
                        })
                        .collect()
                })
                .collect()
        };
        Oracle {
            txns,
            register,
            keys: keys.into_iter().collect(),
            session_before: before(true),
            realtime_before: before(false),
        }
    }

    /// Every model of the checker's list, decided.
    pub fn decide(&self) -> BTreeMap<&'static str, Decision> {
        // Transactions that may or may not have committed; those without writes change nothing
        // but add order constraints, so they are taken as not committed.
        let optional: Vec<usize> = (0..self.txns.len())
            .filter(|&i| maybe(&self.txns[i]) && !written_keys(&self.txns[i]).is_empty())
            .collect();
        let (mut operational, mut adya) = (0u8, 0u8);
        for mask in 0..(1u32 << optional.len()) {
            let committed: Vec<bool> = (0..self.txns.len())
                .map(|i| {
                    is_ok(&self.txns[i])
                        || optional
                            .iter()
                            .position(|&o| o == i)
                            .is_some_and(|j| mask & (1 << j) != 0)
                })
                .collect();
            if operational != OPERATIONAL {
                operational |= self.operational(&committed, OPERATIONAL & !operational);
            }
            if adya != ADYA {
                adya |= self.adya(&committed);
            }
            if operational == OPERATIONAL && adya == ADYA {
                break;
            }
        }
        let yes = |b: bool| {
            if b {
                Decision::Possible
            } else {
                Decision::Impossible
            }
        };
        let mav = if operational & SI != 0 {
            Decision::Possible
        } else if adya & RC == 0 {
            Decision::Impossible
        } else {
            Decision::Undecided
        };
        let mut out = BTreeMap::new();
        out.insert("read-uncommitted", yes(adya & RU != 0));
        out.insert("read-committed", yes(adya & RC != 0));
        out.insert("monotonic-atomic-view", mav);
        out.insert("cursor-stability", yes(adya & CS != 0));
        out.insert("repeatable-read", yes(adya & RR != 0));
        out.insert("snapshot-isolation", yes(operational & SI != 0));
        out.insert("serializable", yes(operational & SER != 0));
        out.insert(
            "strong-session-snapshot-isolation",
            yes(operational & SESSION_SI != 0),
        );
        out.insert(
            "strong-snapshot-isolation",
            yes(operational & STRONG_SI != 0),
        );
        out.insert(
            "strong-session-serializable",
            yes(operational & SESSION_SER != 0),
        );
        out.insert("strict-serializable", yes(operational & STRICT_SER != 0));
        out
    }

    // --- Operational models: a depth-first search over commit orders. ---

    /// Which of the `wanted` operational models some commit order of `committed` satisfies.
    fn operational(&self, committed: &[bool], wanted: u8) -> u8 {
        let members: Vec<usize> = (0..self.txns.len()).filter(|&i| committed[i]).collect();
        let mut search = OrderSearch {
            oracle: self,
            committed,
            members,
            order: Vec::new(),
            states: vec![State::default()],
            found: 0,
        };
        search.dfs(wanted);
        search.found
    }

    // --- Adya's levels: every version order of every key. ---

    /// Which of Adya's levels some version order of the `committed` transactions satisfies.
    fn adya(&self, committed: &[bool]) -> u8 {
        let mut per_key: Vec<Vec<KeyExec>> = Vec::new();
        for &k in &self.keys {
            let execs = self.key_execs(committed, k);
            if execs.is_empty() {
                return 0;
            }
            per_key.push(execs);
        }
        let mut found = 0u8;
        let mut chosen: Vec<&KeyExec> = Vec::new();
        self.product(&per_key, &mut chosen, &mut found);
        found
    }

    fn product<'k>(
        &self,
        per_key: &'k [Vec<KeyExec>],
        chosen: &mut Vec<&'k KeyExec>,
        found: &mut u8,
    ) {
        if *found == ADYA {
            return;
        }
        let Some(execs) = per_key.get(chosen.len()) else {
            *found |= self.judge(chosen);
            return;
        };
        for e in execs {
            chosen.push(e);
            self.product(per_key, chosen, found);
            chosen.pop();
        }
    }

    /// Adya's levels one choice of version orders satisfies.
    fn judge(&self, chosen: &[&KeyExec]) -> u8 {
        let n = self.txns.len();
        let mut ww = vec![0u64; n];
        let mut all = vec![0u64; n];
        let mut g1c = vec![0u64; n];
        let (mut dirty, mut intermediate, mut cursor) = (false, false, false);
        for e in chosen {
            dirty |= e.dirty;
            intermediate |= e.intermediate;
            cursor |= e.cursor;
            for &(a, b, kind) in &e.edges {
                all[a] |= 1 << b;
                if kind != Kind::Rw {
                    g1c[a] |= 1 << b;
                }
                if kind == Kind::Ww {
                    ww[a] |= 1 << b;
                }
            }
        }
        let mut out = 0;
        if acyclic(&ww) {
            out |= RU;
        }
        if !dirty && !intermediate && acyclic(&g1c) {
            out |= RC;
            if !cursor {
                out |= CS;
            }
            if acyclic(&all) {
                out |= RR;
            }
        }
        out
    }

    /// Every version order of `key` (an order of its committed writers) under which every `ok`
    /// read of the key has an interpretation, with the DSG edges and phenomena it implies.
    fn key_execs(&self, committed: &[bool], key: i64) -> Vec<KeyExec> {
        let writers: Vec<usize> = (0..self.txns.len())
            .filter(|&i| committed[i] && !writes_of(&self.txns[i], key).is_empty())
            .collect();
        let mut out = Vec::new();
        permutations(&writers, &mut |order| {
            if let Some(e) = self.key_exec(committed, key, order) {
                out.push(e);
            }
        });
        out
    }

    fn key_exec(&self, committed: &[bool], key: i64, order: &[usize]) -> Option<KeyExec> {
        // values[j]: the value of the j-th version (0: the initial one), as a list (list-append)
        // or as the register's value (the last element, none for the initial version).
        let mut values: Vec<Vec<i64>> = vec![Vec::new()];
        for &w in order {
            let mut v = values.last().expect("initial version").clone();
            let writes = writes_of(&self.txns[w], key);
            if self.register {
                v = vec![*writes.last().expect("a writer writes")];
            } else {
                v.extend(writes);
            }
            values.push(v);
        }
        let mut e = KeyExec::default();
        for (i, &w) in order.iter().enumerate() {
            if i > 0 {
                e.edges.push((order[i - 1], w, Kind::Ww));
            }
        }
        for (t, tx) in self.txns.iter().enumerate().filter(|(_, t)| is_ok(t)) {
            let pos = order.iter().position(|&w| w == t);
            let mut own: Option<Vec<i64>> = None;
            for m in &tx.mops {
                match m {
                    M::A(k, v) | M::W(k, v) if *k == key => {
                        let o = own.get_or_insert_with(Vec::new);
                        if self.register {
                            o.clear();
                        }
                        o.push(*v);
                    }
                    M::R(k, Some(_)) | M::Rr(k, Some(_)) if *k == key => {
                        let read: Vec<i64> = match m {
                            M::R(_, Some(l)) => l.clone(),
                            M::Rr(_, Some(r)) => r.iter().copied().collect(),
                            _ => unreachable!("matched above"),
                        };
                        self.interpret(
                            &mut e,
                            committed,
                            key,
                            order,
                            &values,
                            t,
                            pos,
                            own.as_deref(),
                            read,
                        )?;
                    }
                    _ => {}
                }
            }
        }
        Some(e)
    }

    /// Interprets one read of `key` by `t` under a version order; `None` if it has none.
    #[expect(
        clippy::too_many_arguments,
        reason = "one read in the context of its version order"
    )]
    fn interpret(
        &self,
        e: &mut KeyExec,
        committed: &[bool],
        key: i64,
        order: &[usize],
        values: &[Vec<i64>],
        t: usize,
        pos: Option<usize>,
        own: Option<&[i64]>,
        read: Vec<i64>,
    ) -> Option<()> {
        let read = match own {
            // A register read after the transaction's own write reads that write.
            Some(own) if self.register => return (read == own[own.len() - 1..]).then_some(()),
            // A list read after its own appends reads its own version: the version it appended to
            // followed by its appends. That base version is a read of the key like any other (as
            // the checker takes it), and it need not be the one preceding the transaction's in the
            // version order: a store without first-committer-wins installs the appends on a newer
            // one (a lost update, G-cursor).
            Some(own) => {
                if !read.ends_with(own) {
                    return None;
                }
                read[..read.len() - own.len()].to_vec()
            }
            None => read,
        };
        // A read sees a version older than the transaction's own.
        let newest = pos.unwrap_or(order.len());
        if let Some(j) = (0..=newest).find(|&j| values[j] == read) {
            if j > 0 && order[j - 1] != t {
                e.edges.push((order[j - 1], t, Kind::Wr));
            }
            if j < order.len() && order[j] != t {
                e.edges.push((t, order[j], Kind::Rw));
                // Another write of the key came between this read and the transaction's own.
                e.cursor |= pos.is_some_and(|p| j < p);
            }
            return Some(());
        }
        // An intermediate version of a committed writer (G1b).
        for j in 1..=newest.min(order.len()) {
            let writes = writes_of(&self.txns[order[j - 1]], key);
            for m in 1..writes.len() {
                if self.is_on(values, j - 1, &writes[..m], &read) {
                    e.intermediate = true;
                    return Some(());
                }
            }
        }
        // A dirty read: appends of a transaction that did not commit on top of a version (G1a).
        for (f, tx) in self.txns.iter().enumerate() {
            if committed[f] || f == t {
                continue;
            }
            let writes = writes_of(tx, key);
            for m in 1..=writes.len() {
                if (0..=newest).any(|j| self.is_on(values, j, &writes[..m], &read)) {
                    e.dirty = true;
                    return Some(());
                }
            }
        }
        None
    }

    /// Whether `read` is the value of version `j` after `writes` (the start of one transaction's
    /// writes of the key).
    fn is_on(&self, values: &[Vec<i64>], j: usize, writes: &[i64], read: &[i64]) -> bool {
        if self.register {
            read == &writes[writes.len() - 1..]
        } else {
            read.len() == values[j].len() + writes.len()
                && read.starts_with(&values[j])
                && read.ends_with(writes)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ww,
    Wr,
    Rw,
}

/// One key's version order, and what it implies.
#[derive(Debug, Default)]
struct KeyExec {
    edges: Vec<(usize, usize, Kind)>,
    /// Some read sees an aborted or uncommitted transaction's write (G1a).
    dirty: bool,
    /// Some read sees an intermediate version (G1b).
    intermediate: bool,
    /// G-cursor on this key.
    cursor: bool,
}

fn acyclic(adj: &[u64]) -> bool {
    // Transitive closure by repeated squaring of reachability; n ≤ 64.
    let mut reach = adj.to_vec();
    loop {
        let mut changed = false;
        for a in 0..reach.len() {
            let mut r = reach[a];
            let mut bits = reach[a];
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                r |= reach[b];
            }
            if r != reach[a] {
                reach[a] = r;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    (0..reach.len()).all(|a| reach[a] & (1 << a) == 0)
}

fn permutations(items: &[usize], f: &mut impl FnMut(&[usize])) {
    fn go(v: &mut Vec<usize>, k: usize, f: &mut impl FnMut(&[usize])) {
        if k == v.len() {
            f(v);
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            go(v, k + 1, f);
            v.swap(k, i);
        }
    }
    go(&mut items.to_vec(), 0, f);
}

/// A depth-first search over commit orders: the prefix placed so far and the state after each of
/// its prefixes.
struct OrderSearch<'o, 'a> {
    oracle: &'o Oracle<'a>,
    committed: &'o [bool],
    members: Vec<usize>,
    order: Vec<usize>,
    states: Vec<State>,
    found: u8,
}

impl OrderSearch<'_, '_> {
    fn dfs(&mut self, alive: u8) {
        let alive = alive & !self.found;
        if alive == 0 {
            return;
        }
        if self.order.len() == self.members.len() {
            self.found |= alive;
            return;
        }
        for idx in 0..self.members.len() {
            let t = self.members[idx];
            if self.order.contains(&t) {
                continue;
            }
            let next = alive & self.place(t);
            if next == 0 {
                continue;
            }
            let mut s = self.states.last().expect("initial state").clone();
            s.apply(&self.oracle.txns[t].mops);
            self.order.push(t);
            self.states.push(s);
            self.dfs(next);
            self.order.pop();
            self.states.pop();
            if self.found & alive == alive {
                return;
            }
        }
    }

    /// The models under which `t` can commit next.
    fn place(&self, t: usize) -> u8 {
        let tx = &self.oracle.txns[t];
        let i = self.order.len();
        let pos = |u: usize| self.order.iter().position(|&o| o == u);
        // The lowest start point its predecessors allow; none if one of them is not placed yet.
        let bound = |before: &[usize]| -> Option<usize> {
            before
                .iter()
                .filter(|&&u| self.committed[u])
                .try_fold(0, |lb, &u| pos(u).map(|p| lb.max(p + 1)))
        };
        let session = bound(&self.oracle.session_before[t]);
        let realtime = bound(&self.oracle.realtime_before[t]);
        let mut out = 0;
        // Serial: reads see the state of the whole prefix.
        let serial = !is_ok(tx) || self.states[i].clone().replay(&tx.mops);
        if serial {
            out |= SER;
            if session.is_some() {
                out |= SESSION_SER;
            }
            if realtime.is_some() {
                out |= STRICT_SER;
            }
        }
        // Snapshot isolation: some start point k ≤ i whose snapshot explains the reads, with no
        // transaction committed since k writing a key t writes.
        let mine = written_keys(tx);
        let start_ok = |k: usize| {
            (!is_ok(tx) || self.states[k].clone().replay(&tx.mops))
                && self.order[k..i]
                    .iter()
                    .all(|&u| written_keys(&self.oracle.txns[u]).is_disjoint(&mine))
        };
        // Start points that work form no interval in general: each bound is checked on its own.
        let works_from = |lb: usize| (lb..=i).any(start_ok);
        if works_from(0) {
            out |= SI;
            if session.is_some_and(works_from) {
                out |= SESSION_SI;
            }
            if realtime.is_some_and(works_from) {
                out |= STRONG_SI;
            }
        }
        out
    }
}
