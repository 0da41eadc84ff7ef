//! The ledger state machine every replica applies committed log entries to: the bank vocabulary of
//! `workloads/src/bank.rs` (setup, transfer, read, final read), and transactions over a store of
//! journals and registers for the ledger-append and rw-register workloads. A transaction is one log
//! entry, applied whole when the entry is, so a correct cluster is strict serializable.
//!
//! It is deterministic (a pure function of the sequence of commands), which is what state machine
//! replication needs (Schneider, 1990): replicas that apply the same log hold the same ledger. A
//! transfer id is applied at most once — a client that retries after a lost reply must not move money
//! twice — unless the `no-dedupe` knob turns that check off.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::journal::{Applied, IdJournal};

use crate::wire::{Command, LedgerState, Mop, Outcome, Stored, Txn, Xfer};

/// A ledger's state as a snapshot holds it.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    balances: Option<Vec<i64>>,
    total: i64,
    order: Vec<u8>,
    last: u64,
    len: usize,
    set: Vec<u8>,
    store: Vec<(i64, Stored)>,
    txn_reads: Vec<(u64, Vec<Option<Stored>>)>,
    dedupe: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    balances: Option<Vec<i64>>,
    /// The sum of the balances set up: every transfer keeps it.
    total: i64,
    /// Applied transfer and transaction ids, in application order and as a set.
    applied: Applied,
    /// Journals and registers written by transactions.
    store: BTreeMap<i64, Stored>,
    /// The reads each applied transaction returned, so a deduplicated retry answers the same.
    txn_reads: HashMap<u64, Vec<Option<Stored>>>,
    dedupe: bool,
}

impl Ledger {
    pub fn new(dedupe: bool) -> Self {
        Ledger {
            dedupe,
            ..Ledger::default()
        }
    }

    /// Applies one command and says what its client is answered.
    pub fn apply(&mut self, cmd: &Command) -> Outcome {
        match cmd {
            Command::Noop => Outcome::Ok { state: None },
            Command::Setup { balances } => {
                // Idempotent: the first setup wins; a repeated one answers the state it created.
                if self.balances.is_none() {
                    self.total = balances.iter().sum();
                    self.balances = Some(balances.clone());
                }
                Outcome::Ok {
                    state: Some(self.state(false)),
                }
            }
            Command::Transfer(t) => self.transfer(t),
            Command::Txn(t) => self.txn(t),
            Command::Read => Outcome::Ok {
                state: Some(self.state(false)),
            },
            Command::FinalRead => Outcome::Ok {
                state: Some(self.state(true)),
            },
        }
    }

    fn transfer(&mut self, t: &Xfer) -> Outcome {
        let fail = |e: &str| Outcome::Fail {
            error: e.to_string(),
        };
        if self.dedupe && self.applied.contains(t.id) {
            // A retry of a transfer that already happened: it happened, once.
            return Outcome::Ok { state: None };
        }
        let Some(balances) = self.balances.as_mut() else {
            return fail("not-set-up");
        };
        let (from, to) = (t.from as usize, t.to as usize);
        if from >= balances.len() || to >= balances.len() || from == to {
            return fail("no-such-account");
        }
        if t.amount <= 0 {
            return fail("bad-amount");
        }
        if balances[from] < t.amount {
            return fail("insufficient-funds");
        }
        balances[from] -= t.amount;
        balances[to] += t.amount;
        // Money is conserved and never negative on every apply, under every knob of the cluster:
        // they break replication, reads and deduplication, never the state machine's arithmetic.
        verity_history::invariant!(
            balances.iter().sum::<i64>() == self.total && balances[from] >= 0,
            "ledger: transfer {} left balances {balances:?}, which must sum to {} with none negative",
            t.id,
            self.total
        );
        self.applied.push(t.id);
        Outcome::Ok { state: None }
    }

    fn txn(&mut self, t: &Txn) -> Outcome {
        if self.dedupe {
            if let Some(reads) = self.txn_reads.get(&t.id) {
                return Outcome::Committed {
                    reads: reads.clone(),
                };
            }
        }
        let mut reads = Vec::new();
        for m in &t.mops {
            match *m {
                Mop::R { key } => reads.push(self.store.get(&key).cloned()),
                Mop::Append { key, value } => match self.store.get_mut(&key) {
                    Some(Stored::Journal(j)) => j.push(value),
                    // A register appended to becomes a journal, as in Elle's stores it is an error
                    // the checker sees, not the state machine.
                    _ => {
                        self.store.insert(key, Stored::Journal(vec![value]));
                    }
                },
                Mop::W { key, value } => {
                    self.store.insert(key, Stored::Register(value));
                }
            }
        }
        self.applied.push(t.id);
        if self.dedupe {
            self.txn_reads.insert(t.id, reads.clone());
        }
        Outcome::Committed { reads }
    }

    /// The whole state, serialized for a snapshot: `from_snapshot` restores a ledger that applies
    /// every further command as this one would.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let (order, last, len) = self.applied.order.parts();
        let mut set = Vec::with_capacity(self.applied.set.serialized_size());
        self.applied
            .set
            .serialize_into(&mut set)
            .expect("writing to a Vec does not fail");
        let mut txn_reads: Vec<_> = self
            .txn_reads
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        txn_reads.sort_by_key(|(k, _)| *k);
        let snap = Snapshot {
            balances: self.balances.clone(),
            total: self.total,
            order: order.to_vec(),
            last,
            len,
            set,
            store: self.store.iter().map(|(k, v)| (*k, v.clone())).collect(),
            txn_reads,
            dedupe: self.dedupe,
        };
        serde_json::to_vec(&snap).expect("a ledger snapshot serializes")
    }

    pub fn from_snapshot(bytes: &[u8]) -> Result<Ledger, String> {
        let s: Snapshot =
            serde_json::from_slice(bytes).map_err(|e| format!("ledger snapshot: {e}"))?;
        let order = IdJournal::from_parts(s.order, s.last, s.len)?;
        let set = roaring::RoaringTreemap::deserialize_from(&s.set[..])
            .map_err(|e| format!("ledger snapshot: applied set: {e}"))?;
        if let Some(b) = &s.balances {
            if b.iter().sum::<i64>() != s.total {
                return Err(format!(
                    "ledger snapshot: balances sum to {}, not the total {}",
                    b.iter().sum::<i64>(),
                    s.total
                ));
            }
        }
        Ok(Ledger {
            balances: s.balances,
            total: s.total,
            applied: Applied { order, set },
            store: s.store.into_iter().collect(),
            txn_reads: s.txn_reads.into_iter().collect(),
            dedupe: s.dedupe,
        })
    }

    /// What a read-only transaction sees in this replica's applied state, without changing it.
    pub fn read_only(&self, t: &Txn) -> Outcome {
        let reads = t
            .mops
            .iter()
            .filter_map(|m| match *m {
                Mop::R { key } => Some(self.store.get(&key).cloned()),
                _ => None,
            })
            .collect();
        Outcome::Committed { reads }
    }

    /// Balances, and with `with_applied` the applied ids and the store too. Before setup there are
    /// no accounts.
    pub fn state(&self, with_applied: bool) -> LedgerState {
        LedgerState {
            balances: self.balances.clone().unwrap_or_default(),
            applied: with_applied.then(|| self.applied.order.to_vec()),
            store: (with_applied && !self.store.is_empty())
                .then(|| self.store.iter().map(|(k, v)| (*k, v.clone())).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u64, from: u32, to: u32, amount: i64) -> Command {
        Command::Transfer(Xfer {
            id,
            from,
            to,
            amount,
        })
    }

    #[test]
    fn transfers_move_money_once_and_fail_when_short() {
        let mut l = Ledger::new(true);
        assert!(
            matches!(l.apply(&t(1, 0, 1, 1)), Outcome::Fail { .. }),
            "before setup"
        );
        l.apply(&Command::Setup {
            balances: vec![5, 5],
        });
        l.apply(&Command::Setup {
            balances: vec![9, 9],
        });
        assert_eq!(l.apply(&t(1, 0, 1, 3)), Outcome::Ok { state: None });
        assert_eq!(l.apply(&t(1, 0, 1, 3)), Outcome::Ok { state: None });
        assert_eq!(
            l.apply(&t(2, 0, 1, 3)),
            Outcome::Fail {
                error: "insufficient-funds".into()
            }
        );
        assert_eq!(l.state(true).balances, vec![2, 8]);
        assert_eq!(l.state(true).applied, Some(vec![1]));
    }

    #[test]
    #[should_panic(expected = "which must sum to 10")]
    fn money_forged_into_the_state_trips_the_conservation_invariant() {
        let mut l = Ledger::new(true);
        l.apply(&Command::Setup {
            balances: vec![5, 5],
        });
        l.balances.as_mut().unwrap()[1] += 1;
        l.apply(&t(1, 0, 1, 1));
    }

    #[test]
    fn without_dedupe_a_retry_applies_twice() {
        let mut l = Ledger::new(false);
        l.apply(&Command::Setup {
            balances: vec![5, 5],
        });
        l.apply(&t(1, 0, 1, 1));
        l.apply(&t(1, 0, 1, 1));
        assert_eq!(l.state(true).applied, Some(vec![1, 1]));
        assert_eq!(l.state(false).balances, vec![3, 7]);
    }

    fn txn(id: u64, mops: &[Mop]) -> Command {
        Command::Txn(Txn {
            id,
            mops: mops.to_vec(),
        })
    }

    #[test]
    fn transactions_read_their_own_and_earlier_writes_and_retries_answer_the_same() {
        let mut l = Ledger::new(true);
        let first = l.apply(&txn(
            1,
            &[
                Mop::R { key: 1 },
                Mop::Append { key: 1, value: 10 },
                Mop::R { key: 1 },
                Mop::W { key: 2, value: 5 },
            ],
        ));
        assert_eq!(
            first,
            Outcome::Committed {
                reads: vec![None, Some(Stored::Journal(vec![10]))]
            }
        );
        assert_eq!(
            l.apply(&txn(1, &[])),
            first,
            "a retry answers the first run"
        );
        let second = l.apply(&txn(
            2,
            &[
                Mop::Append { key: 1, value: 11 },
                Mop::R { key: 1 },
                Mop::R { key: 2 },
            ],
        ));
        assert_eq!(
            second,
            Outcome::Committed {
                reads: vec![
                    Some(Stored::Journal(vec![10, 11])),
                    Some(Stored::Register(5))
                ]
            }
        );
        let state = l.state(true);
        assert_eq!(state.applied, Some(vec![1, 2]));
        assert_eq!(state.store.unwrap().len(), 2);
    }

    #[test]
    fn without_dedupe_a_retried_transaction_appends_twice() {
        let mut l = Ledger::new(false);
        let t = txn(1, &[Mop::Append { key: 1, value: 10 }]);
        l.apply(&t);
        l.apply(&t);
        assert_eq!(
            l.read_only(&Txn {
                id: 2,
                mops: vec![Mop::R { key: 1 }]
            }),
            Outcome::Committed {
                reads: vec![Some(Stored::Journal(vec![10, 10]))]
            }
        );
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;
    use proptest::prelude::*;

    fn command() -> impl Strategy<Value = Command> {
        // Few ids and accounts, so retries, failures and store conflicts happen often.
        let xfer = (0u64..40, 0u32..4, 0u32..4, -1i64..30).prop_map(|(id, from, to, amount)| {
            Command::Transfer(Xfer {
                id,
                from,
                to,
                amount,
            })
        });
        let mop = prop_oneof![
            (0i64..4).prop_map(|key| Mop::R { key }),
            (0i64..4, 0i64..100).prop_map(|(key, value)| Mop::Append { key, value }),
            (0i64..4, 0i64..100).prop_map(|(key, value)| Mop::W { key, value }),
        ];
        let txn = (0u64..40, proptest::collection::vec(mop, 1..4))
            .prop_map(|(id, mops)| Command::Txn(Txn { id, mops }));
        prop_oneof![
            1 => Just(Command::Setup { balances: vec![50, 50, 50] }),
            6 => xfer,
            3 => txn,
            1 => Just(Command::Read),
            1 => Just(Command::FinalRead),
            1 => Just(Command::Noop),
        ]
    }

    proptest! {
        #[test]
        fn a_restored_snapshot_applies_the_rest_identically(
            dedupe in any::<bool>(),
            before in proptest::collection::vec(command(), 0..60),
            after in proptest::collection::vec(command(), 0..60),
        ) {
            let mut a = Ledger::new(dedupe);
            for c in &before {
                a.apply(c);
            }
            let mut b = Ledger::from_snapshot(&a.to_snapshot()).unwrap();
            prop_assert_eq!(a.state(true), b.state(true));
            for c in &after {
                prop_assert_eq!(a.apply(c), b.apply(c));
            }
            prop_assert_eq!(a.apply(&Command::FinalRead), b.apply(&Command::FinalRead));
            prop_assert_eq!(a.to_snapshot(), b.to_snapshot());
        }
    }

    #[test]
    fn a_corrupt_snapshot_is_an_error_not_a_panic() {
        let mut l = Ledger::new(true);
        l.apply(&Command::Setup {
            balances: vec![10, 10],
        });
        for id in [1, 300, 2] {
            l.apply(&Command::Transfer(Xfer {
                id,
                from: 0,
                to: 1,
                amount: 1,
            }));
        }
        let good = l.to_snapshot();
        assert!(Ledger::from_snapshot(&good).is_ok());
        assert!(Ledger::from_snapshot(b"not json").is_err());
        assert!(Ledger::from_snapshot(&good[..good.len() / 2]).is_err());
        // A journal whose length disagrees with its bytes.
        let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
        v["len"] = serde_json::json!(7);
        assert!(Ledger::from_snapshot(&serde_json::to_vec(&v).unwrap()).is_err());
        // A truncated varint (continuation bit on the last byte).
        v["len"] = serde_json::json!(3);
        v["order"] = serde_json::json!([2, 0x80]);
        assert!(Ledger::from_snapshot(&serde_json::to_vec(&v).unwrap()).is_err());
    }
}
