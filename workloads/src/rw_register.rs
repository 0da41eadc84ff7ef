//! The rw-register workload: transactions of reads and blind writes over a few registers, every
//! written value unique, for stores that have no append (Elle's rw-register, Kingsbury & Alvaro,
//! VLDB 2020).
//!
//! Vocabulary (a `txn` operation; the value is a list of micro-ops):
//! - `["r", k, null]` reads register `k`; the completion fills in the value, or `null` if `k` was
//!   never written.
//! - `["w", k, v]` writes `v`; values are unique across the whole run (`issued * workers + worker +
//!   1`), so each read names the write it saw. Every write is preceded by a read of the same key in
//!   the same transaction (read-modify-write): that read tells the checker which version the write
//!   follows, which is what makes ww and rw edges — and so write skew — visible on registers.
//! - final read: one transaction reading every register.
//!
//! Unique values make wr edges certain; ww and rw edges can only be inferred where a transaction
//! reads a register and then writes it, or reads the initial `null`, so this workload finds fewer
//! anomalies than ledger-append does on the same store. Prefer ledger-append where the store can append.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use verity_history::{Invocation, Value, F};

use crate::{Generator, Workload};

#[derive(Debug, Clone, PartialEq)]
pub struct RwRegisterConfig {
    pub keys: u32,
    /// Keys touched per transaction: 1..=max_txn_length.
    pub max_txn_length: u32,
    /// Chance that a touched key is only read (otherwise it is read, then written).
    pub read_fraction: f64,
}

impl Default for RwRegisterConfig {
    fn default() -> Self {
        RwRegisterConfig {
            keys: 6,
            max_txn_length: 4,
            read_fraction: 0.5,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RwRegister {
    pub config: RwRegisterConfig,
}

impl RwRegister {
    pub fn new(config: RwRegisterConfig) -> Self {
        assert!(config.keys >= 1 && config.max_txn_length >= 1);
        RwRegister { config }
    }
}

fn mop(f: &str, k: i64, v: Value) -> Value {
    Value::List(vec![Value::from(f), Value::Int(k), v])
}

impl Workload for RwRegister {
    fn name(&self) -> &'static str {
        "rw-register"
    }

    fn setup(&self) -> Invocation {
        Invocation {
            f: F::Setup,
            value: Value::map([("keys", Value::Int(self.config.keys.into()))]),
        }
    }

    fn generator(&self, worker: usize, workers: usize) -> Box<dyn Generator> {
        Box::new(RwGenerator {
            config: self.config.clone(),
            worker: worker as u64,
            workers: workers.max(1) as u64,
            issued: 0,
        })
    }

    fn final_reads(&self) -> Vec<Invocation> {
        let mops = (0..self.config.keys)
            .map(|k| mop("r", k.into(), Value::Null))
            .collect();
        vec![Invocation {
            f: F::Txn,
            value: Value::List(mops),
        }]
    }
}

struct RwGenerator {
    config: RwRegisterConfig,
    worker: u64,
    workers: u64,
    issued: u64,
}

impl Generator for RwGenerator {
    fn next(&mut self, rng: &mut ChaCha8Rng) -> Invocation {
        let len = rng.gen_range(1..=self.config.max_txn_length);
        let mut mops = Vec::with_capacity(len as usize);
        for _ in 0..len {
            let k = i64::from(rng.gen_range(0..self.config.keys));
            mops.push(mop("r", k, Value::Null));
            if !rng.gen_bool(self.config.read_fraction) {
                let v = (self.issued * self.workers + self.worker + 1) as i64;
                self.issued += 1;
                mops.push(mop("w", k, Value::Int(v)));
            }
        }
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
    fn written_values_are_unique_across_workers() {
        let w = RwRegister::default();
        let mut seen = HashSet::new();
        for worker in 0..4 {
            let mut g = w.generator(worker, 4);
            let mut rng = ChaCha8Rng::seed_from_u64(worker as u64);
            for _ in 0..500 {
                for m in g.next(&mut rng).value.as_list().unwrap() {
                    let m = m.as_list().unwrap();
                    if m[0].as_str() == Some("w") {
                        assert!(seen.insert(m[2].as_i64().unwrap()));
                    }
                }
            }
        }
        assert!(seen.len() > 1000);
    }
}
