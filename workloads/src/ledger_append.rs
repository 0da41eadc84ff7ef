//! The ledger-append workload: transfers recorded as appends to per-account journals, so that every
//! read of a journal reveals the order of its versions and the graph checker can infer the
//! dependencies between transactions (Elle's list-append, Kingsbury & Alvaro, VLDB 2020, with a
//! ledger's meaning).
//!
//! Vocabulary (a `txn` operation; the value is a list of micro-ops, Elle's shape):
//! - journal keys: `key = generation * KEY_STRIDE + account`. Like Elle's key rotation, a worker
//!   moves its transfers to a fresh generation of journals every `generation_txns` transactions,
//!   which keeps reads short (the whole list is returned) and the inference fast; an account's
//!   journal is the concatenation of its generations.
//! - transfer `id` from `a` to `b`:
//!   `[["r",a,null],["r",partner(a),null],["r",b,null],["append",a,-id],["append",b,id]]` (the read
//!   of `b` is left out when `b` is `partner(a)`). The debit is appended as `-id`, the credit as
//!   `+id`, and the amount is the pure function [`amount_of`]`(id, max_transfer)`, so balances are
//!   derivable from journals alone ([`balances`]), conservation checks apply, and a journal's values
//!   stay unique per key as Elle requires.
//! - `partner(a) = a ^ 1`: accounts come in couples sharing an overdraft (the textbook write-skew
//!   example). A transfer reads its couple's other journal as a joint-balance check would, so its
//!   read set is larger than its write set: that is what lets snapshot isolation show write skew
//!   (G2-item). A generic transactional store cannot refuse a transfer for want of funds, so this
//!   workload does not abort on balance; negative balances are possible and are not an anomaly here.
//! - audit: `[["r",k1,null],…]`, a read-only transaction over `audit_accounts` journals of the
//!   worker's current generation (read skew shows up as G-single).
//! - setup: `{"balances":[b0,…],"max_transfer":m,"key_stride":KEY_STRIDE}` (recorded for readers).
//! - final read: one transaction reading every journal of every generation used.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::seq::index::sample;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use verity_history::{Invocation, Value, F};

use crate::{Generator, Workload};

/// Keys of one generation are `generation * KEY_STRIDE + account`; accounts must be fewer.
pub const KEY_STRIDE: i64 = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct LedgerAppendConfig {
    /// Number of accounts, even (couples), at most [`KEY_STRIDE`].
    pub accounts: u32,
    pub initial_balance: i64,
    pub max_transfer: i64,
    /// Fraction of transactions that are read-only audits.
    pub audit_fraction: f64,
    /// Journals an audit reads.
    pub audit_accounts: u32,
    /// A worker moves to the next generation of journals after this many transactions (0: never).
    pub generation_txns: u64,
}

impl Default for LedgerAppendConfig {
    fn default() -> Self {
        LedgerAppendConfig {
            accounts: 8,
            initial_balance: 100,
            max_transfer: 5,
            audit_fraction: 0.25,
            audit_accounts: 4,
            generation_txns: 128,
        }
    }
}

/// The amount of transfer `id`: a pure function, so journals of ids are enough to derive balances.
pub fn amount_of(id: i64, max_transfer: i64) -> i64 {
    1 + id.unsigned_abs() as i64 % max_transfer.max(1)
}

/// The couple partner of an account.
pub fn partner(account: u32) -> u32 {
    account ^ 1
}

/// The journal key of `account` in `generation`.
pub fn key(account: u32, generation: u64) -> i64 {
    generation as i64 * KEY_STRIDE + account as i64
}

/// The account a journal key belongs to.
pub fn account_of(key: i64) -> u32 {
    key.rem_euclid(KEY_STRIDE) as u32
}

/// Balances derived from journals: `initial[a]` plus, for every journal entry `e` of account `a`,
/// `signum(e) * amount_of(e)`. Keys of accounts beyond `initial` are ignored.
pub fn balances<'a>(
    initial: &[i64],
    max_transfer: i64,
    journals: impl IntoIterator<Item = (i64, &'a [i64])>,
) -> Vec<i64> {
    let mut out = initial.to_vec();
    for (k, entries) in journals {
        if let Some(b) = out.get_mut(account_of(k) as usize) {
            for &e in entries {
                *b += e.signum() * amount_of(e, max_transfer);
            }
        }
    }
    out
}

fn read(key: i64) -> Value {
    Value::List(vec![Value::from("r"), Value::Int(key), Value::Null])
}

fn append(key: i64, v: i64) -> Value {
    Value::List(vec![Value::from("append"), Value::Int(key), Value::Int(v)])
}

#[derive(Debug, Clone, Default)]
pub struct LedgerAppend {
    pub config: LedgerAppendConfig,
    /// The highest generation any generator has used, for the final read.
    generations: Arc<AtomicU64>,
}

impl LedgerAppend {
    pub fn new(config: LedgerAppendConfig) -> Self {
        assert!(
            config.accounts >= 2 && config.accounts.is_multiple_of(2),
            "accounts come in couples"
        );
        assert!(
            i64::from(config.accounts) <= KEY_STRIDE,
            "accounts must fit in a generation"
        );
        assert!(config.max_transfer >= 1);
        LedgerAppend {
            config,
            generations: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl LedgerAppend {
    /// The workload with its default configuration.
    pub fn default_config() -> Self {
        LedgerAppend::new(LedgerAppendConfig::default())
    }
}

impl Workload for LedgerAppend {
    fn name(&self) -> &'static str {
        "ledger-append"
    }

    fn setup(&self) -> Invocation {
        let balances = (0..self.config.accounts).map(|_| self.config.initial_balance);
        Invocation {
            f: F::Setup,
            value: Value::map([
                ("balances", Value::int_list(balances)),
                ("max_transfer", Value::Int(self.config.max_transfer)),
                ("key_stride", Value::Int(KEY_STRIDE)),
            ]),
        }
    }

    fn generator(&self, worker: usize, workers: usize) -> Box<dyn Generator> {
        Box::new(LedgerGenerator {
            config: self.config.clone(),
            worker: worker as u64,
            workers: workers.max(1) as u64,
            issued: 0,
            generations: self.generations.clone(),
        })
    }

    fn final_reads(&self) -> Vec<Invocation> {
        let last = self.generations.load(Ordering::SeqCst);
        let mops = (0..=last)
            .flat_map(|g| (0..self.config.accounts).map(move |a| read(key(a, g))))
            .collect();
        vec![Invocation {
            f: F::Txn,
            value: Value::List(mops),
        }]
    }
}

struct LedgerGenerator {
    config: LedgerAppendConfig,
    worker: u64,
    workers: u64,
    issued: u64,
    generations: Arc<AtomicU64>,
}

impl Generator for LedgerGenerator {
    fn next(&mut self, rng: &mut ChaCha8Rng) -> Invocation {
        let generation = match self.config.generation_txns {
            0 => 0,
            n => self.issued / n,
        };
        self.generations.fetch_max(generation, Ordering::SeqCst);
        // Ids interleave across workers so that no two workers ever produce the same one.
        let id = (self.issued * self.workers + self.worker + 1) as i64;
        self.issued += 1;
        let n = self.config.accounts;
        if rng.gen_bool(self.config.audit_fraction) {
            let count = self.config.audit_accounts.clamp(1, n) as usize;
            let mops = sample(rng, n as usize, count)
                .into_iter()
                .map(|a| read(key(a as u32, generation)))
                .collect();
            return Invocation {
                f: F::Txn,
                value: Value::List(mops),
            };
        }
        let from = rng.gen_range(0..n);
        let mut to = rng.gen_range(0..n - 1);
        if to >= from {
            to += 1;
        }
        let mut mops = vec![
            read(key(from, generation)),
            read(key(partner(from), generation)),
        ];
        if to != partner(from) {
            mops.push(read(key(to, generation)));
        }
        mops.push(append(key(from, generation), -id));
        mops.push(append(key(to, generation), id));
        Invocation {
            f: F::Txn,
            value: Value::List(mops),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn appended_values_are_unique_per_key_and_balances_conserve() {
        let w = LedgerAppend::new(LedgerAppendConfig::default());
        let mut seen = HashSet::new();
        let mut journals: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
        for worker in 0..3 {
            let mut g = w.generator(worker, 3);
            let mut rng = ChaCha8Rng::seed_from_u64(worker as u64);
            for _ in 0..500 {
                let op = g.next(&mut rng);
                for m in op.value.as_list().unwrap() {
                    let m = m.as_list().unwrap();
                    if m[0].as_str() == Some("append") {
                        let (k, v) = (m[1].as_i64().unwrap(), m[2].as_i64().unwrap());
                        assert!(seen.insert((k, v)), "value {v} appended twice to {k}");
                        journals.entry(k).or_default().push(v);
                    }
                }
            }
        }
        let initial = vec![100; 8];
        let b = balances(
            &initial,
            5,
            journals.iter().map(|(k, v)| (*k, v.as_slice())),
        );
        assert_eq!(
            b.iter().sum::<i64>(),
            800,
            "every transfer debits and credits the same amount"
        );
        assert_ne!(b, initial);
        let fin = w.final_reads();
        assert!(
            fin[0].value.as_list().unwrap().len() >= 8 * 3,
            "final read covers every generation"
        );
    }

    #[test]
    fn same_seed_same_operations() {
        let w = LedgerAppend::default_config();
        let run = || {
            let mut g = w.generator(1, 3);
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            (0..100).map(|_| g.next(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
