//! The bank workload: concurrent transfers between accounts, reads of every balance, and a final read
//! of the balances together with the ids of every transfer the ledger applied.
//!
//! It follows Jepsen's `jepsen.tests.bank` (transfers of 1..=max between distinct accounts, mixed with
//! reads), with what a ledger auditor needs that Jepsen's lacks: every transfer carries a unique id, so
//! the final read can name lost, duplicated and phantom transfers and resolve timed-out ones.
//!
//! Vocabulary (the conservation checker and every target rely on it):
//! - setup: `{"balances":[b0,b1,…]}` — the initial balance of each account.
//! - transfer: a [`Transfer`] value; `fail` with error `insufficient-funds` when the source is short.
//! - read: invoked with `null`, answered `{"balances":[…]}`.
//! - final read: invoked with `{"final":true}`, answered `{"balances":[…],"applied":[ids in the order
//!   the ledger applied them]}`.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use verity_history::{Invocation, Transfer, Value, F};

use crate::{Generator, Workload};

#[derive(Debug, Clone, PartialEq)]
pub struct BankConfig {
    pub accounts: u32,
    /// Initial balance of every account.
    pub initial_balance: i64,
    /// Transfers move 1..=max_transfer.
    pub max_transfer: i64,
    /// Fraction of operations that are reads.
    pub read_fraction: f64,
    /// With this probability a transfer touches only the first two ("hot") accounts.
    pub hot: f64,
}

impl Default for BankConfig {
    fn default() -> Self {
        BankConfig {
            accounts: 8,
            initial_balance: 10,
            max_transfer: 5,
            read_fraction: 0.5,
            hot: 0.0,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Bank {
    pub config: BankConfig,
}

impl Bank {
    pub fn new(config: BankConfig) -> Self {
        assert!(
            config.accounts >= 2,
            "a bank needs two accounts to transfer between"
        );
        assert!(config.max_transfer >= 1);
        Bank { config }
    }
}

/// The final-read invocation of the bank vocabulary.
pub fn final_read() -> Invocation {
    Invocation {
        f: F::Read,
        value: Value::map([("final", Value::Bool(true))]),
    }
}

/// Whether an invocation value marks a final read.
pub fn is_final_read(value: &Value) -> bool {
    matches!(value.get("final"), Some(Value::Bool(true)))
}

impl Workload for Bank {
    fn name(&self) -> &'static str {
        "bank"
    }

    fn setup(&self) -> Invocation {
        let balances = (0..self.config.accounts).map(|_| self.config.initial_balance);
        Invocation {
            f: F::Setup,
            value: Value::map([("balances", Value::int_list(balances))]),
        }
    }

    fn generator(&self, worker: usize, workers: usize) -> Box<dyn Generator> {
        Box::new(BankGenerator {
            config: self.config.clone(),
            worker: worker as u64,
            workers: workers.max(1) as u64,
            issued: 0,
        })
    }

    fn final_reads(&self) -> Vec<Invocation> {
        vec![final_read()]
    }
}

struct BankGenerator {
    config: BankConfig,
    worker: u64,
    workers: u64,
    issued: u64,
}

impl Generator for BankGenerator {
    fn next(&mut self, rng: &mut ChaCha8Rng) -> Invocation {
        if rng.gen_bool(self.config.read_fraction) {
            return Invocation {
                f: F::Read,
                value: Value::Null,
            };
        }
        let n = if rng.gen_bool(self.config.hot) {
            2
        } else {
            self.config.accounts
        };
        let from = rng.gen_range(0..n);
        let mut to = rng.gen_range(0..n - 1);
        if to >= from {
            to += 1;
        }
        // Ids interleave across workers so that no two workers ever produce the same one.
        let id = self.issued * self.workers + self.worker + 1;
        self.issued += 1;
        Invocation {
            f: F::Transfer,
            value: Value::Transfer(Transfer {
                id,
                from,
                to,
                amount: rng.gen_range(1..=self.config.max_transfer),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_across_workers_and_transfers_are_between_distinct_accounts() {
        let bank = Bank::new(BankConfig {
            hot: 0.3,
            ..BankConfig::default()
        });
        let mut ids = HashSet::new();
        for w in 0..4 {
            let mut g = bank.generator(w, 4);
            let mut rng = ChaCha8Rng::seed_from_u64(w as u64);
            for _ in 0..1000 {
                let op = g.next(&mut rng);
                if let Value::Transfer(t) = op.value {
                    assert_ne!(t.from, t.to);
                    assert!(t.to < 8 && t.from < 8);
                    assert!((1..=5).contains(&t.amount));
                    assert!(ids.insert(t.id), "id {} issued twice", t.id);
                }
            }
        }
        assert!(ids.len() > 1000);
    }

    #[test]
    fn same_seed_same_operations() {
        let bank = Bank::default();
        let run = || {
            let mut g = bank.generator(1, 3);
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            (0..100).map(|_| g.next(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
