//! The ledger state machine every replica applies committed log entries to: the bank vocabulary of
//! `workloads/src/bank.rs` (setup, transfer, read, final read).
//!
//! It is deterministic (a pure function of the sequence of commands), which is what state machine
//! replication needs (Schneider, 1990): replicas that apply the same log hold the same ledger. A
//! transfer id is applied at most once — a client that retries after a lost reply must not move money
//! twice — unless the `no-dedupe` knob turns that check off.

use std::collections::HashSet;

use super::wire::{Command, LedgerState, Outcome, Xfer};

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    balances: Option<Vec<i64>>,
    /// Applied transfer ids in application order.
    applied: Vec<u64>,
    applied_set: HashSet<u64>,
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
                    self.balances = Some(balances.clone());
                }
                Outcome::Ok {
                    state: Some(self.state(false)),
                }
            }
            Command::Transfer(t) => self.transfer(t),
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
        if self.dedupe && self.applied_set.contains(&t.id) {
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
        self.applied.push(t.id);
        self.applied_set.insert(t.id);
        Outcome::Ok { state: None }
    }

    /// Balances, and with `with_applied` the applied ids too. Before setup there are no accounts.
    pub fn state(&self, with_applied: bool) -> LedgerState {
        LedgerState {
            balances: self.balances.clone().unwrap_or_default(),
            applied: with_applied.then(|| self.applied.clone()),
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
}
