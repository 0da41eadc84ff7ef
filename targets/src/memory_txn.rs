//! The transactional `memory` target: an in-process store of append-only lists (journals) and
//! registers that runs `txn` operations, serializable by default, with isolation knobs that make it
//! wrong the way real databases are wrong.
//!
//! It serves the ledger-append and rw-register workloads (Elle's list-append and rw-register). Every
//! knob is a genuine weaker isolation level rather than a fabricated answer, and each yields
//! between micro-ops so that concurrent transactions really interleave:
//! - correct (no knob): the whole transaction runs under one lock — strict serializable.
//! - `read-committed`: every read sees the latest committed state (no snapshot), writes are buffered
//!   and installed at commit. Read skew and lost updates follow (G-single).
//! - `snapshot-isolation`: reads come from a snapshot taken at the start, writes install at commit
//!   unless a concurrent transaction committed a write to the same key first (first committer
//!   wins). Write skew follows (G2-item), as in PostgreSQL's REPEATABLE READ.
//! - `dirty-read`: writes go straight into the shared state and an aborting transaction takes them
//!   back out; others read whatever is there (G1a, G1b).
//!
//! As a network would, the client now and then loses a reply and answers `info` (the transaction may
//! or may not have committed), and the store now and then aborts a transaction outright (`fail`).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_history::{Completion, Invocation, MopF, MopValue, Value, F};

use crate::{Client, Target, TargetError};

/// The isolation knobs of the transactional memory target: (name, what it does).
pub const TXN_BUGS: &[(&str, &str)] = &[
    (
        "read-committed",
        "reads see the latest committed state, no snapshot (read skew: G-single)",
    ),
    (
        "snapshot-isolation",
        "snapshot reads, first-committer-wins writes (write skew: G2-item)",
    ),
    (
        "dirty-read",
        "uncommitted writes are visible and aborts take them back (G1a, G1b)",
    ),
];

/// Chance that a reply is lost (the transaction ends `info`, committed or not).
const REPLY_LOSS: f64 = 0.01;
/// Chance that the store aborts a transaction before it does anything.
const SPURIOUS_ABORT: f64 = 0.01;
/// `dirty-read`: chance that a transaction aborts after its writes were visible.
const DIRTY_ABORT: f64 = 0.2;
/// `dirty-read`: how long an aborting transaction keeps its writes visible waiting for another
/// transaction to read one of them, so that a dirty read (G1a) happens even on a loaded machine
/// whose scheduler would otherwise run each transaction start to finish.
const DIRTY_HOLD_MAX: std::time::Duration = std::time::Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    Serializable,
    ReadCommitted,
    Snapshot,
    DirtyRead,
}

impl Isolation {
    fn parse(bugs: &[String]) -> Result<Isolation, TargetError> {
        let mut level = Isolation::Serializable;
        for b in bugs {
            level = match b.as_str() {
                "read-committed" => Isolation::ReadCommitted,
                "snapshot-isolation" => Isolation::Snapshot,
                "dirty-read" => Isolation::DirtyRead,
                other => {
                    return Err(TargetError::UnknownBug {
                        target: "memory".into(),
                        bug: other.into(),
                        choices: TXN_BUGS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            };
        }
        Ok(level)
    }
}

/// One micro-op, decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mop {
    Read(i64),
    Append(i64, i64),
    Write(i64, i64),
}

/// A key's committed versions: list elements (or register values) with their commit timestamps, in
/// commit order. A list's state at time `t` is the elements with `ts <= t`; a register's is the last
/// value with `ts <= t`. Dirty writes carry `ts = DIRTY` until they commit.
#[derive(Debug, Clone, Default)]
struct Versions(Vec<(i64, u64)>);

const DIRTY: u64 = u64::MAX;

#[derive(Debug, Default)]
struct Store {
    clock: u64,
    keys: HashMap<i64, Versions>,
    /// Whether a key holds a register (written with `w`) rather than a list.
    registers: HashMap<i64, bool>,
    /// `dirty-read`: uncommitted values some transaction has read.
    dirty_seen: std::collections::HashSet<i64>,
}

impl Store {
    fn last_commit(&self, k: i64) -> u64 {
        self.keys
            .get(&k)
            .and_then(|v| v.0.iter().rev().find(|e| e.1 != DIRTY))
            .map_or(0, |e| e.1)
    }

    /// The value of `k` as of `ts` (or everything, dirty included, with `DIRTY`).
    fn read(&self, k: i64, ts: u64, register: bool) -> Value {
        let visible = self
            .keys
            .get(&k)
            .map(|v| v.0.iter().filter(|e| e.1 <= ts).map(|e| e.0));
        if register {
            visible
                .and_then(|mut it| it.next_back())
                .map_or(Value::Null, Value::Int)
        } else {
            Value::int_list(visible.into_iter().flatten())
        }
    }
}

struct Shared {
    isolation: Isolation,
    /// rw-register rather than list-append: a never-written key reads as `null`, not `[]`.
    registers: bool,
    store: Mutex<Store>,
}

/// The transactional in-memory target.
pub struct MemoryTxnTarget {
    shared: Arc<Shared>,
    seed: u64,
}

impl MemoryTxnTarget {
    /// `registers`: serve rw-register (registers) rather than ledger-append (lists).
    pub fn new(bugs: &[String], seed: u64, registers: bool) -> Result<Self, TargetError> {
        Ok(MemoryTxnTarget {
            shared: Arc::new(Shared {
                isolation: Isolation::parse(bugs)?,
                registers,
                store: Mutex::new(Store::default()),
            }),
            seed,
        })
    }
}

#[async_trait]
impl Target for MemoryTxnTarget {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn setup(&self, init: &Invocation) -> Result<Completion, TargetError> {
        *self.shared.store.lock() = Store::default();
        Ok(Completion::ok(init.value.clone()))
    }

    async fn client(&self, worker: usize) -> Result<Box<dyn Client>, TargetError> {
        Ok(Box::new(TxnClient {
            shared: self.shared.clone(),
            rng: ChaCha8Rng::seed_from_u64(
                self.seed
                    .wrapping_mul(0x9e37_79b9)
                    .wrapping_add(worker as u64 + 1),
            ),
        }))
    }
}

struct TxnClient {
    shared: Arc<Shared>,
    rng: ChaCha8Rng,
}

fn decode(value: &Value) -> Option<Vec<Mop>> {
    value
        .micro_ops()?
        .iter()
        .map(|m| match (m.f, &m.value) {
            (MopF::Read, _) => Some(Mop::Read(m.key)),
            (MopF::Append, MopValue::Int(v)) => Some(Mop::Append(m.key, *v)),
            (MopF::Write, MopValue::Int(v)) => Some(Mop::Write(m.key, *v)),
            _ => None,
        })
        .collect()
}

fn encode(mops: &[Mop], reads: &[Value]) -> Value {
    let mut reads = reads.iter();
    Value::List(
        mops.iter()
            .map(|m| {
                let (f, k, v) = match *m {
                    Mop::Read(k) => ("r", k, reads.next().cloned().unwrap_or(Value::Null)),
                    Mop::Append(k, v) => ("append", k, Value::Int(v)),
                    Mop::Write(k, v) => ("w", k, Value::Int(v)),
                };
                Value::List(vec![Value::from(f), Value::Int(k), v])
            })
            .collect(),
    )
}

/// Whether a key is a register: the store serves registers, or the key was written with `w`.
fn is_register(store: &Store, registers: bool, mops: &[Mop], k: i64) -> bool {
    registers
        || mops
            .iter()
            .any(|m| matches!(*m, Mop::Write(key, _) if key == k))
        || store.registers.get(&k).copied().unwrap_or(false)
}

/// A read merged with the transaction's own buffered writes to the key.
fn with_own_writes(base: Value, own: &[Mop], k: i64) -> Value {
    let mut v = base;
    for m in own {
        match (*m, &mut v) {
            (Mop::Append(key, x), Value::List(l)) if key == k => l.push(Value::Int(x)),
            (Mop::Append(key, x), Value::Null) if key == k => v = Value::int_list([x]),
            (Mop::Write(key, x), _) if key == k => v = Value::Int(x),
            _ => {}
        }
    }
    v
}

fn install(store: &mut Store, writes: &[Mop], ts: u64) {
    for m in writes {
        match *m {
            Mop::Append(k, v) => store.keys.entry(k).or_default().0.push((v, ts)),
            Mop::Write(k, v) => {
                store.registers.insert(k, true);
                store.keys.entry(k).or_default().0.push((v, ts));
            }
            Mop::Read(_) => {}
        }
    }
}

impl TxnClient {
    /// Strict serializable: the whole transaction under the lock.
    fn run_serializable(&self, mops: &[Mop]) -> Vec<Value> {
        let mut s = self.shared.store.lock();
        s.clock += 1;
        let ts = s.clock;
        let mut reads = Vec::new();
        for (i, m) in mops.iter().enumerate() {
            match *m {
                Mop::Read(k) => {
                    let reg = is_register(&s, self.shared.registers, mops, k);
                    reads.push(s.read(k, ts, reg));
                }
                _ => install(&mut s, &mops[i..=i], ts),
            }
        }
        reads
    }

    /// Buffered writes; reads from the latest committed state (read committed) or from the
    /// snapshot at `snapshot`. Returns `None` when first-committer-wins aborts the transaction.
    async fn run_buffered(&self, mops: &[Mop], snapshot: Option<u64>) -> Option<Vec<Value>> {
        let mut own: Vec<Mop> = Vec::new();
        let mut reads = Vec::new();
        for m in mops {
            match *m {
                Mop::Read(k) => {
                    let v = {
                        let s = self.shared.store.lock();
                        let ts = snapshot.unwrap_or(s.clock);
                        let reg = is_register(&s, self.shared.registers, mops, k);
                        s.read(k, ts, reg)
                    };
                    reads.push(with_own_writes(v, &own, k));
                }
                w => own.push(w),
            }
            tokio::task::yield_now().await;
        }
        let mut s = self.shared.store.lock();
        if let Some(snap) = snapshot {
            let conflict = own.iter().any(|m| match *m {
                Mop::Append(k, _) | Mop::Write(k, _) => s.last_commit(k) > snap,
                Mop::Read(_) => false,
            });
            if conflict {
                return None;
            }
        }
        s.clock += 1;
        let ts = s.clock;
        install(&mut s, &own, ts);
        Some(reads)
    }

    /// Writes are visible at once; an abort removes them again.
    async fn run_dirty(&mut self, mops: &[Mop]) -> Option<Vec<Value>> {
        let mut reads = Vec::new();
        for m in mops {
            {
                let mut s = self.shared.store.lock();
                match *m {
                    Mop::Read(k) => {
                        let reg = is_register(&s, self.shared.registers, mops, k);
                        let dirty: Vec<i64> = s.keys.get(&k).map_or(Vec::new(), |v| {
                            v.0.iter().filter(|e| e.1 == DIRTY).map(|e| e.0).collect()
                        });
                        s.dirty_seen.extend(dirty);
                        reads.push(s.read(k, DIRTY, reg));
                    }
                    w => install(&mut s, &[w], DIRTY),
                }
            }
            tokio::task::yield_now().await;
        }
        let abort = self.rng.gen_bool(DIRTY_ABORT);
        let written: Vec<i64> = mops
            .iter()
            .filter_map(|m| match *m {
                Mop::Append(_, v) | Mop::Write(_, v) => Some(v),
                Mop::Read(_) => None,
            })
            .collect();
        if abort && !written.is_empty() {
            // Hold the doomed writes until someone has read one (bounded), then take them back.
            let deadline = tokio::time::Instant::now() + DIRTY_HOLD_MAX;
            while tokio::time::Instant::now() < deadline {
                let seen = {
                    let s = self.shared.store.lock();
                    written.iter().any(|v| s.dirty_seen.contains(v))
                };
                if seen {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        let mut s = self.shared.store.lock();
        for v in &written {
            s.dirty_seen.remove(v);
        }
        s.clock += 1;
        let ts = s.clock;
        for m in mops {
            if let Mop::Append(k, v) | Mop::Write(k, v) = *m {
                if let Some(vs) = s.keys.get_mut(&k) {
                    if abort {
                        vs.0.retain(|e| !(e.0 == v && e.1 == DIRTY));
                    } else if let Some(e) = vs.0.iter_mut().find(|e| e.0 == v && e.1 == DIRTY) {
                        e.1 = ts;
                    }
                }
            }
        }
        (!abort).then_some(reads)
    }
}

#[async_trait]
impl Client for TxnClient {
    async fn invoke(&mut self, op: &Invocation) -> Completion {
        if op.f != F::Txn {
            return Completion::fail(op.value.clone(), "unsupported-operation");
        }
        let Some(mops) = decode(&op.value) else {
            return Completion::fail(op.value.clone(), "malformed-txn");
        };
        if self.rng.gen_bool(SPURIOUS_ABORT) {
            return Completion::fail(op.value.clone(), "aborted");
        }
        let result = match self.shared.isolation {
            Isolation::Serializable => Some(self.run_serializable(&mops)),
            Isolation::ReadCommitted => self.run_buffered(&mops, None).await,
            Isolation::Snapshot => {
                let snap = self.shared.store.lock().clock;
                tokio::task::yield_now().await;
                self.run_buffered(&mops, Some(snap)).await
            }
            Isolation::DirtyRead => self.run_dirty(&mops).await,
        };
        match result {
            None => Completion::fail(op.value.clone(), "aborted"),
            Some(_) if self.rng.gen_bool(REPLY_LOSS) => {
                Completion::info(op.value.clone(), "reply-lost")
            }
            Some(reads) => Completion::ok(encode(&mops, &reads)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(mops: Value) -> Invocation {
        Invocation {
            f: F::Txn,
            value: mops,
        }
    }

    fn m(f: &str, k: i64, v: Value) -> Value {
        Value::List(vec![Value::from(f), Value::Int(k), v])
    }

    #[tokio::test]
    async fn serializable_reads_see_earlier_appends_and_writes() {
        let t = MemoryTxnTarget::new(&[], 7, false).unwrap();
        let mut c = t.client(0).await.unwrap();
        let mut done = 0;
        for i in 1..=50 {
            let r = c
                .invoke(&txn(Value::List(vec![
                    m("append", 1, Value::Int(i)),
                    m("w", 2, Value::Int(i)),
                ])))
                .await;
            done += i64::from(r.kind == verity_history::EventType::Ok);
        }
        let r = c
            .invoke(&txn(Value::List(vec![
                m("r", 1, Value::Null),
                m("r", 2, Value::Null),
            ])))
            .await;
        if r.kind == verity_history::EventType::Ok {
            let mops = r.value.as_list().unwrap();
            let list = mops[0].as_list().unwrap()[2].as_i64_list().unwrap();
            assert!(
                list.len() as i64 >= done,
                "every committed append is visible"
            );
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "appends keep their order"
            );
            assert_eq!(mops[1].as_list().unwrap()[2].as_i64(), list.last().copied());
        }
    }

    #[test]
    fn unknown_knob_names_the_choices() {
        let Err(e) = MemoryTxnTarget::new(&["nope".into()], 0, false) else {
            panic!("an unknown knob must be rejected")
        };
        assert!(e.to_string().contains("snapshot-isolation"));
    }
}
