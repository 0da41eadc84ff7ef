//! The `memory` target: an in-process ledger, correct by default, with bug knobs that make it wrong in
//! the ways real ledgers are wrong.
//!
//! Every knob is a genuinely wrong implementation rather than a fabricated answer:
//! - `lost-update`: a transfer reads both balances, waits a storage round trip, then writes back absolute values computed
//!   from what it read, overwriting concurrent transfers on the same accounts.
//! - `overdraft`: the funds check and the debit are separate critical sections, a storage round trip
//!   apart.
//! - `lose-acked`: transfers are acknowledged before they are durable; the ledger occasionally
//!   restarts from its last checkpoint and forgets everything acknowledged since.
//! - `duplicate-retry`: the client retries a transfer whose reply was lost, and the ledger does not
//!   deduplicate by transfer id.
//! - `stale-read`: reads are served from a replica snapshot that lags behind the primary. Totals stay
//!   right; only a linearizability checker can see it.
//!
//! The client loses a reply now and then (seeded), as a network would, and retries: a correct ledger
//! deduplicates the retry by id.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_history::{Completion, Invocation, Transfer, Value, F};

use crate::{Client, Target, TargetError};

/// The bug knobs of the memory target: (name, what it does).
pub const BUGS: &[(&str, &str)] = &[
    ("lost-update", "non-atomic read-modify-write of balances"),
    ("overdraft", "the funds check and the debit are not atomic"),
    (
        "lose-acked",
        "acknowledges before a checkpoint; restarts lose acknowledged transfers",
    ),
    (
        "duplicate-retry",
        "retried transfers are not deduplicated by id",
    ),
    ("stale-read", "reads are served from a lagging snapshot"),
];

/// Probability that a client loses the reply to a transfer and retries it.
const REPLY_LOSS: f64 = 0.01;
/// `lose-acked`: applied transfers between checkpoints, and how many transfers apart (drawn
/// uniformly from this range, seeded) the ledger restarts: a run of a few hundred transfers always
/// sees a restart, so the knob is always caught, never just likely.
const CHECKPOINT_EVERY: u64 = 64;
const RESTART_EVERY: std::ops::Range<u64> = 100..400;
/// The simulated storage round trip of the non-atomic (buggy) transfer paths.
const STORAGE_ROUND_TRIP: std::time::Duration = std::time::Duration::from_millis(1);
/// `stale-read`: the snapshot is refreshed after this many applied transfers.
const SNAPSHOT_EVERY: u64 = 8;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bugs {
    lost_update: bool,
    overdraft: bool,
    lose_acked: bool,
    duplicate_retry: bool,
    stale_read: bool,
}

impl Bugs {
    fn parse(names: &[String]) -> Result<Bugs, TargetError> {
        let mut b = Bugs::default();
        for n in names {
            match n.as_str() {
                "lost-update" => b.lost_update = true,
                "overdraft" => b.overdraft = true,
                "lose-acked" => b.lose_acked = true,
                "duplicate-retry" => b.duplicate_retry = true,
                "stale-read" => b.stale_read = true,
                other => {
                    return Err(TargetError::UnknownBug {
                        target: "memory".into(),
                        bug: other.into(),
                        choices: BUGS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                    })
                }
            }
        }
        Ok(b)
    }
}

#[derive(Debug, Clone, Default)]
struct State {
    balances: Vec<i64>,
    /// The sum of the balances set up: every transfer must keep it.
    total: i64,
    /// Applied transfer ids in the order they were applied (a journal).
    applied: Vec<u64>,
    applied_set: HashSet<u64>,
    /// Transfers applied since `checkpoint` was taken (`lose-acked`).
    since_checkpoint: u64,
    checkpoint: Option<Box<(Vec<i64>, Vec<u64>)>>,
    since_snapshot: u64,
}

struct Ledger {
    bugs: Bugs,
    state: Mutex<State>,
    /// The lagging replica of `stale-read`.
    snapshot: Mutex<Vec<i64>>,
    /// `lose-acked`: the seeded draws of when to restart, and transfers left until the next one.
    restarts: Mutex<(ChaCha8Rng, u64)>,
}

impl Ledger {
    fn read(&self, is_final: bool) -> Value {
        let s = self.state.lock();
        if is_final {
            return Value::map([
                ("balances", Value::int_list(s.balances.iter().copied())),
                (
                    "applied",
                    Value::int_list(s.applied.iter().map(|&i| i as i64)),
                ),
            ]);
        }
        if self.bugs.stale_read {
            drop(s);
            return Value::map([(
                "balances",
                Value::int_list(self.snapshot.lock().iter().copied()),
            )]);
        }
        Value::map([("balances", Value::int_list(s.balances.iter().copied()))])
    }

    /// Applies a transfer atomically (the correct path). Returns `Ok(true)` if applied now,
    /// `Ok(false)` if it had been applied before, `Err` when funds are short.
    fn transfer(&self, t: &Transfer) -> Result<bool, &'static str> {
        let mut s = self.state.lock();
        if !self.bugs.duplicate_retry && s.applied_set.contains(&t.id) {
            return Ok(false);
        }
        let (from, to) = (t.from as usize, t.to as usize);
        if s.balances[from] < t.amount {
            return Err("insufficient-funds");
        }
        s.balances[from] -= t.amount;
        s.balances[to] += t.amount;
        self.record(&mut s, t.id);
        Ok(true)
    }

    /// `lose-acked`: counts a transfer towards the next restart; true when it is due (and draws
    /// the one after).
    fn restart_due(&self) -> bool {
        let mut r = self.restarts.lock();
        r.1 = r.1.saturating_sub(1);
        if r.1 > 0 {
            return false;
        }
        r.1 = r.0.gen_range(RESTART_EVERY);
        true
    }

    /// Journals an applied transfer, and does the bookkeeping of the snapshot and checkpoint knobs.
    fn record(&self, s: &mut State, id: u64) {
        s.applied.push(id);
        s.applied_set.insert(id);
        if self.bugs.stale_read {
            s.since_snapshot += 1;
            if s.since_snapshot >= SNAPSHOT_EVERY {
                s.since_snapshot = 0;
                self.snapshot.lock().clone_from(&s.balances);
            }
        }
        if self.bugs.lose_acked {
            s.since_checkpoint += 1;
            if s.checkpoint.is_none() || s.since_checkpoint >= CHECKPOINT_EVERY {
                s.since_checkpoint = 0;
                s.checkpoint = Some(Box::new((s.balances.clone(), s.applied.clone())));
            } else if self.restart_due() {
                // A restart: everything since the checkpoint was only in memory, and is gone.
                let (balances, applied) = *s.checkpoint.take().expect("checked above");
                s.applied_set = applied.iter().copied().collect();
                s.balances = balances;
                s.applied = applied;
                s.since_checkpoint = 0;
                s.checkpoint = Some(Box::new((s.balances.clone(), s.applied.clone())));
            }
        }
        self.check_money(s);
    }

    /// Money is conserved by every apply (except under `lost-update`, whose write-back of stale
    /// balances creates and destroys money), and no balance goes negative (except under `overdraft`,
    /// whose funds check is not atomic with the debit). Every other knob keeps both.
    fn check_money(&self, s: &State) {
        verity_history::invariant!(
            self.bugs.lost_update || s.balances.iter().sum::<i64>() == s.total,
            "memory ledger: the balances {:?} no longer sum to {}",
            s.balances,
            s.total
        );
        verity_history::invariant!(
            self.bugs.overdraft || s.balances.iter().all(|&b| b >= 0),
            "memory ledger: a negative balance in {:?}",
            s.balances
        );
    }

    /// `lost-update`: read, wait, write back absolute balances.
    async fn transfer_lost_update(&self, t: &Transfer) -> Result<bool, &'static str> {
        let (from, to) = (t.from as usize, t.to as usize);
        let (b_from, b_to) = {
            let s = self.state.lock();
            if s.applied_set.contains(&t.id) {
                return Ok(false);
            }
            (s.balances[from], s.balances[to])
        };
        if b_from < t.amount {
            return Err("insufficient-funds");
        }
        storage_round_trip().await;
        let mut s = self.state.lock();
        s.balances[from] = b_from - t.amount;
        s.balances[to] = b_to + t.amount;
        self.record(&mut s, t.id);
        Ok(true)
    }

    /// `overdraft`: check, wait, then debit without checking again.
    async fn transfer_overdraft(&self, t: &Transfer) -> Result<bool, &'static str> {
        let (from, to) = (t.from as usize, t.to as usize);
        {
            let s = self.state.lock();
            if s.applied_set.contains(&t.id) {
                return Ok(false);
            }
            if s.balances[from] < t.amount {
                return Err("insufficient-funds");
            }
        }
        storage_round_trip().await;
        let mut s = self.state.lock();
        s.balances[from] -= t.amount;
        s.balances[to] += t.amount;
        self.record(&mut s, t.id);
        Ok(true)
    }

    async fn apply(&self, t: &Transfer) -> Result<bool, &'static str> {
        if self.bugs.lost_update {
            self.transfer_lost_update(t).await
        } else if self.bugs.overdraft {
            self.transfer_overdraft(t).await
        } else {
            self.transfer(t)
        }
    }
}

/// The gap between a read and the write that depends on it in the buggy paths: a round trip to the
/// storage layer, as in a real service that reads a row, decides, and writes it back.
async fn storage_round_trip() {
    tokio::time::sleep(STORAGE_ROUND_TRIP).await;
}

/// The in-process ledger target.
pub struct MemoryTarget {
    ledger: Arc<Ledger>,
    seed: u64,
}

impl MemoryTarget {
    pub fn new(bugs: &[String], seed: u64) -> Result<Self, TargetError> {
        let bugs = Bugs::parse(bugs)?;
        Ok(MemoryTarget {
            ledger: Arc::new(Ledger {
                bugs,
                state: Mutex::new(State::default()),
                snapshot: Mutex::new(Vec::new()),
                restarts: Mutex::new({
                    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c6f_7365);
                    let first = rng.gen_range(RESTART_EVERY);
                    (rng, first)
                }),
            }),
            seed,
        })
    }
}

#[async_trait]
impl Target for MemoryTarget {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn setup(&self, init: &Invocation) -> Result<Completion, TargetError> {
        let balances = init
            .value
            .get("balances")
            .and_then(Value::as_i64_list)
            .ok_or_else(|| TargetError::Setup("setup needs {\"balances\":[…]}".into()))?;
        let mut s = self.ledger.state.lock();
        *s = State {
            total: balances.iter().sum(),
            balances: balances.clone(),
            ..State::default()
        };
        *self.ledger.snapshot.lock() = balances;
        Ok(Completion::ok(init.value.clone()))
    }

    async fn client(&self, worker: usize) -> Result<Box<dyn Client>, TargetError> {
        Ok(Box::new(MemoryClient {
            ledger: self.ledger.clone(),
            rng: ChaCha8Rng::seed_from_u64(self.seed.wrapping_add(worker as u64 + 1)),
        }))
    }
}

struct MemoryClient {
    ledger: Arc<Ledger>,
    rng: ChaCha8Rng,
}

#[async_trait]
impl Client for MemoryClient {
    async fn invoke(&mut self, op: &Invocation) -> Completion {
        match (&op.f, &op.value) {
            (F::Read, v) => {
                let is_final = matches!(v.get("final"), Some(Value::Bool(true)));
                Completion::ok(self.ledger.read(is_final))
            }
            (F::Transfer, Value::Transfer(t)) => {
                let accounts = self.ledger.state.lock().balances.len();
                if t.from as usize >= accounts || t.to as usize >= accounts {
                    return Completion::fail(op.value.clone(), "no-such-account");
                }
                let mut result = self.ledger.apply(t).await;
                // The reply was lost on the way back: retry, as any client would.
                while self.rng.gen_bool(REPLY_LOSS) {
                    result = match self.ledger.apply(t).await {
                        Ok(_) if result.is_ok() => Ok(true),
                        other => other,
                    };
                }
                match result {
                    Ok(_) => Completion::ok(op.value.clone()),
                    Err(e) => Completion::fail(op.value.clone(), e),
                }
            }
            _ => Completion::fail(op.value.clone(), "unsupported-operation"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup_invocation() -> Invocation {
        Invocation {
            f: F::Setup,
            value: Value::map([("balances", Value::int_list([10, 10, 10]))]),
        }
    }

    fn tr(id: u64, from: u32, to: u32, amount: i64) -> Transfer {
        Transfer {
            id,
            from,
            to,
            amount,
        }
    }

    fn transfer(id: u64, from: u32, to: u32, amount: i64) -> Invocation {
        Invocation {
            f: F::Transfer,
            value: Value::Transfer(tr(id, from, to, amount)),
        }
    }

    #[tokio::test]
    async fn correct_ledger_moves_money_and_rejects_overdrafts() {
        let t = MemoryTarget::new(&[], 1).unwrap();
        t.setup(&setup_invocation()).await.unwrap();
        let mut c = t.client(0).await.unwrap();
        assert_eq!(
            c.invoke(&transfer(1, 0, 1, 4)).await.kind,
            verity_history::EventType::Ok
        );
        let failed = c.invoke(&transfer(2, 0, 2, 7)).await;
        assert_eq!(failed.kind, verity_history::EventType::Fail);
        assert_eq!(failed.error.as_deref(), Some("insufficient-funds"));
        let fin = c
            .invoke(&Invocation {
                f: F::Read,
                value: Value::map([("final", Value::Bool(true))]),
            })
            .await;
        assert_eq!(
            fin.value.get("balances").unwrap().as_i64_list().unwrap(),
            vec![6, 14, 10]
        );
        assert_eq!(
            fin.value.get("applied").unwrap().as_i64_list().unwrap(),
            vec![1]
        );
    }

    #[tokio::test]
    async fn a_retried_transfer_is_applied_once_unless_the_knob_is_set() {
        for (bugs, expected) in [
            (vec![], vec![1]),
            (vec!["duplicate-retry".to_string()], vec![1, 1]),
        ] {
            let t = MemoryTarget::new(&bugs, 1).unwrap();
            t.setup(&setup_invocation()).await.unwrap();
            let tr = tr(1, 0, 1, 1);
            t.ledger.apply(&tr).await.unwrap();
            t.ledger.apply(&tr).await.unwrap();
            let s = t.ledger.state.lock();
            assert_eq!(
                s.applied.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                expected
            );
        }
    }

    /// A ledger whose state was corrupted behind its back (money created) and then applies a
    /// transfer: the conservation invariant must stop it, unless `lost-update` is on.
    async fn apply_after_forging_money(bugs: &[&str]) -> Vec<i64> {
        let bugs: Vec<String> = bugs.iter().map(|b| b.to_string()).collect();
        let t = MemoryTarget::new(&bugs, 1).unwrap();
        t.setup(&setup_invocation()).await.unwrap();
        t.ledger.state.lock().balances[2] += 5;
        let tr = tr(1, 0, 1, 1);
        t.ledger.apply(&tr).await.unwrap();
        let balances = t.ledger.state.lock().balances.clone();
        balances
    }

    #[tokio::test]
    #[should_panic(expected = "no longer sum to 30")]
    async fn money_created_behind_the_ledgers_back_trips_the_conservation_invariant() {
        apply_after_forging_money(&[]).await;
    }

    #[tokio::test]
    async fn under_lost_update_unconserved_money_is_the_knob_not_a_panic() {
        assert_eq!(
            apply_after_forging_money(&["lost-update"]).await,
            [9, 11, 15]
        );
    }

    #[tokio::test]
    #[should_panic(expected = "a negative balance")]
    async fn a_negative_balance_trips_the_invariant_unless_overdraft_is_on() {
        let t = MemoryTarget::new(&[], 1).unwrap();
        t.setup(&setup_invocation()).await.unwrap();
        {
            let mut s = t.ledger.state.lock();
            s.balances[0] -= 12;
            s.balances[1] += 12;
        }
        let tr = tr(1, 1, 2, 1);
        t.ledger.apply(&tr).await.unwrap();
    }

    #[test]
    fn unknown_bug_names_the_choices() {
        let Err(e) = MemoryTarget::new(&["nope".into()], 0) else {
            panic!("an unknown knob must be rejected")
        };
        let msg = e.to_string();
        assert!(msg.contains("nope") && msg.contains("lost-update"), "{msg}");
    }
}
