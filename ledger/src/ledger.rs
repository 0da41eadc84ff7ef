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

use crate::journal::Applied;

use crate::wire::{Command, LedgerState, Mop, Outcome, Stored, Txn, Xfer};

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
