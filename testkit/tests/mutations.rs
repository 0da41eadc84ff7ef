//! Completeness on a mutation corpus: valid histories of simulated correct systems, each broken in
//! the way one anomaly describes, must be judged invalid under that anomaly's *name*.
//!
//! Small histories are confirmed by a brute-force oracle first: a mutation the oracle still finds
//! valid did not create an anomaly and is counted apart ("not an anomaly"), never held against the
//! checker. Every confirmed mutation must be detected by name: a miss, or only another name, fails
//! the test with its seed. Medium histories (too long for the oracles) carry mutations that are
//! anomalies by construction, and must be detected by name just the same.
//!
//! `VERITY_MUTATIONS` sets the histories per mutation (default 200); the table in
//! `docs/correctness.md` comes from
//!
//! ```sh
//! VERITY_MUTATIONS=2000 cargo test --release -p verity-testkit --test mutations -- --nocapture
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use verity_checkers::conservation::Conservation;
use verity_checkers::convergence::{Convergence, ConvergenceConfig};
use verity_checkers::graph::GraphChecker;
use verity_checkers::linearizable::{models, oracle, Model};
use verity_checkers::{Budget, Checker, Validity, Verdict};
use verity_history::{History, Value};
use verity_testkit::linearizable;
use verity_testkit::objects::{
    jepsen_bank_planted, BankBug, JepsenBankConfig, SimConfig, SimObject,
};
use verity_testkit::tally::env_or;
use verity_testkit::{ledger, replicas, txn};

/// What one mutated history came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The mutation did not apply (nothing to mutate in this history).
    NotApplied,
    /// The oracle still finds the mutated history valid: no anomaly was created.
    NotAnAnomaly,
    Detected,
    /// Invalid, but without the expected name.
    OtherName,
    Missed,
}

/// One mutation kind of the corpus.
struct Mutation {
    checker: &'static str,
    name: String,
    anomaly: &'static str,
    /// Whether a brute-force oracle confirms each case (else: an anomaly by construction).
    confirmed: bool,
    /// seed → (mutated history, whether it really is an anomaly), or None when it does not apply.
    make: Box<dyn Fn(u64) -> Option<(History, bool)> + Sync>,
    judge: Box<dyn Fn(&History) -> Verdict + Sync>,
}

#[derive(Default)]
struct Row {
    applied: usize,
    not_an_anomaly: usize,
    detected: usize,
    other_name: usize,
    missed: usize,
    first_failure: Option<(u64, Vec<String>)>,
}

fn run(m: &Mutation, histories: u64) -> Row {
    let fates: Vec<(u64, Fate, Vec<String>)> = (0..histories)
        .into_par_iter()
        .map(|seed| match (m.make)(seed) {
            None => (seed, Fate::NotApplied, vec![]),
            Some((_, false)) => (seed, Fate::NotAnAnomaly, vec![]),
            Some((h, true)) => {
                let v = (m.judge)(&h);
                let names = v.anomaly_types();
                let fate = if names.iter().any(|n| n == m.anomaly) {
                    Fate::Detected
                } else if v.valid == Validity::Invalid {
                    Fate::OtherName
                } else {
                    Fate::Missed
                };
                (seed, fate, names)
            }
        })
        .collect();
    let mut row = Row::default();
    for (seed, fate, names) in fates {
        match fate {
            Fate::NotApplied => continue,
            Fate::NotAnAnomaly => row.not_an_anomaly += 1,
            Fate::Detected => row.detected += 1,
            Fate::OtherName => row.other_name += 1,
            Fate::Missed => row.missed += 1,
        }
        row.applied += 1;
        if matches!(fate, Fate::OtherName | Fate::Missed) && row.first_failure.is_none() {
            row.first_failure = Some((seed, names));
        }
    }
    row
}

fn unlimited(c: &dyn Checker, h: &History) -> Verdict {
    c.check(h, &Budget::unlimited())
}

/// The ledger's mutations (conservation), on small histories the oracle confirms and on medium
/// ones where each mutation is an anomaly by construction.
fn ledger_mutations() -> Vec<Mutation> {
    let mut out = Vec::new();
    for small in [true, false] {
        for m in ledger::MUTATIONS {
            out.push(Mutation {
                checker: "conservation",
                name: format!("{m:?}"),
                anomaly: m.anomaly(),
                confirmed: small,
                make: Box::new(move |seed| {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let ops = if small {
                        rng.gen_range(1..=12)
                    } else {
                        rng.gen_range(40..=200)
                    };
                    let mut h = ledger::simulate(
                        rng.gen(),
                        &ledger::SimConfig {
                            accounts: rng.gen_range(2..=5),
                            processes: rng.gen_range(2..=6),
                            ops,
                            info_chance: rng.gen_range(0.0..0.25),
                            nemesis: true,
                        },
                    );
                    assert_eq!(unlimited(&Conservation, &h).valid, Validity::Valid);
                    if !m.apply(&mut h) {
                        return None;
                    }
                    let real = !small || !ledger::oracle(&h);
                    Some((h, real))
                }),
                judge: Box::new(|h| unlimited(&Conservation, h)),
            });
        }
    }
    out
}

fn small_object(seed: u64, object: SimObject) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    verity_testkit::objects::simulate(&SimConfig {
        object,
        clients: rng.gen_range(2..=4),
        ops: rng.gen_range(2..=8),
        info_rate: rng.gen_range(0.0..0.15),
        stale_read_rate: 0.5,
        seed: rng.gen(),
    })
}

/// Stale reads of linearizable objects, on histories of at most 8 operations: the simulator's
/// stale reads are anomalies only sometimes, and the brute-force oracle says which.
fn stale_read_mutations() -> Vec<Mutation> {
    fn one<M: Model + Sync + 'static>(name: &'static str, object: SimObject, model: M) -> Mutation {
        let checker = linearizable(name);
        Mutation {
            checker: "linearizable",
            name: format!("stale read: {name}"),
            anomaly: verity_history::anomaly::NONLINEARIZABLE,
            confirmed: true,
            make: Box::new(move |seed| {
                let h = small_object(seed, object.clone());
                let real = !oracle::check_history(&model, &h).expect("simulated histories prepare");
                Some((h, real))
            }),
            judge: Box::new(move |h| unlimited(checker.as_ref(), h)),
        }
    }
    let bank = SimObject::Bank {
        accounts: 3,
        initial: 3,
        max_transfer: 3,
        setup: true,
        journal: false,
    };
    vec![
        one(
            "register",
            SimObject::Register {
                values: 3,
                cas: false,
                keys: 1,
            },
            models::Register::default(),
        ),
        one(
            "cas-register",
            SimObject::Register {
                values: 3,
                cas: true,
                keys: 1,
            },
            models::CasRegister::default(),
        ),
        one("counter", SimObject::Counter, models::Counter::default()),
        one("set", SimObject::Set, models::Set),
        one("bank", bank, models::Bank),
    ]
}

/// Jepsen-format bank histories (no ids, no journal) with a planted bug, certain by construction;
/// the small ones are also confirmed by the brute-force oracle.
fn jepsen_bank_mutations() -> Vec<Mutation> {
    let mut out = Vec::new();
    for small in [true, false] {
        for (bug, what) in [
            (BankBug::LostUpdate, "lost update"),
            (BankBug::Overdraft, "overdraft"),
            (BankBug::StaleRead, "stale read"),
        ] {
            let checker = linearizable("bank");
            out.push(Mutation {
                checker: "linearizable",
                name: format!("Jepsen bank: {what}"),
                anomaly: verity_history::anomaly::NONLINEARIZABLE,
                confirmed: small,
                make: Box::new(move |seed| {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let config = JepsenBankConfig {
                        accounts: rng.gen_range(2..=4),
                        initial: rng.gen_range(3..=6),
                        max_transfer: 3,
                        processes: rng.gen_range(2..=5),
                        ops: if small {
                            rng.gen_range(4..=8)
                        } else {
                            rng.gen_range(40..=120)
                        },
                        info_rate: rng.gen_range(0.0..0.2),
                        bug,
                        seed: rng.gen(),
                    };
                    let (h, planted) = jepsen_bank_planted(&config);
                    if !planted {
                        return None;
                    }
                    let real = !small
                        || !oracle::check_history(&models::Bank, &h)
                            .expect("simulated banks prepare");
                    Some((h, real))
                }),
                judge: Box::new(move |h| unlimited(checker.as_ref(), h)),
            });
        }
    }
    out
}

/// Every Elle class injected into list-append histories (and into rw-register ones where the class
/// has a register form): small ones confirmed by the brute-force serial-order oracle.
fn graph_mutations() -> Vec<Mutation> {
    let mut out = Vec::new();
    for register in [false, true] {
        for small in [true, false] {
            for g in txn::GADGETS {
                if register && !g.has_register_form() {
                    continue;
                }
                let data = if register {
                    "rw-register"
                } else {
                    "list-append"
                };
                out.push(Mutation {
                    checker: "graph",
                    name: format!("{data}: {g:?}"),
                    anomaly: g.anomaly(),
                    confirmed: small,
                    make: Box::new(move |seed| {
                        let mut rng = ChaCha8Rng::seed_from_u64(seed);
                        let txns = if small {
                            rng.gen_range(0..=4)
                        } else {
                            rng.gen_range(20..=100)
                        };
                        let procs = rng.gen_range(1..=4);
                        let keys = rng.gen_range(1..=3);
                        let base = txn::simulate_correct(&mut rng, txns, procs, keys, register);
                        let h = g.inject(&base, register, &mut rng);
                        let real =
                            !small || !txn::explainable(&txn::oracle_txns(&h, register), g.order());
                        Some((h, real))
                    }),
                    judge: Box::new(|h| unlimited(&GraphChecker::default(), h)),
                });
            }
        }
    }
    out
}

fn convergence() -> Convergence {
    Convergence::new(ConvergenceConfig {
        unavailable_window_ns: 10_000 * replicas::MS,
        idle_ns_max: 1_000 * replicas::MS,
        compare_applied_order: true,
    })
}

/// Swaps two ids in the last node report's journal: that replica applied them in another order.
fn reorder_a_journal(h: &mut History) -> bool {
    let Some(e) = h
        .events
        .iter_mut()
        .rev()
        .find(|e| e.f.as_str() == verity_checkers::convergence::NODE_STATE_F)
    else {
        return false;
    };
    let Value::Map(m) = &mut e.value else {
        return false;
    };
    match m.get_mut("applied") {
        Some(Value::List(a)) if a.len() >= 2 => {
            let n = a.len();
            a.swap(n - 2, n - 1);
            true
        }
        _ => false,
    }
}

/// Divergent replicas (three ways, and a reordered journal) and an unavailable window, on histories
/// with two or more nodes; divergence is confirmed by comparing the last round's reports pairwise.
fn convergence_mutations() -> Vec<Mutation> {
    type Mutate = fn(&mut History) -> bool;
    let kinds: [(&str, &'static str, Mutate); 5] = [
        ("divergent balance", "divergent-replicas", |h| {
            replicas::diverge(h, 0)
        }),
        ("replica misses an id", "divergent-replicas", |h| {
            replicas::diverge(h, 1)
        }),
        ("replica has an extra id", "divergent-replicas", |h| {
            replicas::diverge(h, 2)
        }),
        ("reordered journal", "divergent-replicas", reorder_a_journal),
        (
            "unavailable after the heal",
            "unavailable",
            replicas::make_unavailable,
        ),
    ];
    kinds
        .into_iter()
        .map(|(name, anomaly, mutate)| Mutation {
            checker: "convergence",
            name: name.to_string(),
            anomaly,
            confirmed: anomaly == "divergent-replicas",
            make: Box::new(move |seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut h =
                    replicas::simulate(rng.gen(), rng.gen_range(50..400), rng.gen_range(2..=5));
                if !mutate(&mut h) {
                    return None;
                }
                let real = anomaly != "divergent-replicas" || last_round_disagrees(&h);
                Some((h, real))
            }),
            judge: Box::new(|h| unlimited(&convergence(), h)),
        })
        .collect()
}

/// Whether two node reports of the last round differ (the definition of divergence).
fn last_round_disagrees(h: &History) -> bool {
    let reports: Vec<&Value> = h
        .events
        .iter()
        .filter(|e| e.f.as_str() == verity_checkers::convergence::NODE_STATE_F)
        .map(|e| &e.value)
        .collect();
    let Some(last) = reports.last().and_then(|v| v.get("round")) else {
        return false;
    };
    let round: Vec<(Option<&Value>, Option<&Value>)> = reports
        .iter()
        .filter(|v| v.get("round") == Some(last))
        .map(|v| (v.get("balances"), v.get("applied")))
        .collect();
    round.iter().any(|a| round.iter().any(|b| a != b))
}

#[test]
fn every_injected_anomaly_is_found_by_its_name() {
    let histories: u64 = env_or("VERITY_MUTATIONS", 200);
    let corpus: Vec<Mutation> = [
        ledger_mutations(),
        stale_read_mutations(),
        jepsen_bank_mutations(),
        graph_mutations(),
        convergence_mutations(),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!("| checker | mutation | anomaly | histories | confirmed by | not an anomaly | detected by name | other name only | missed |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for m in &corpus {
        let row = run(m, histories);
        println!(
            "| {} | {} | `{}` | {} | {} | {} | {} | {} | {} |",
            m.checker,
            m.name,
            m.anomaly,
            row.applied,
            if m.confirmed {
                "oracle"
            } else {
                "construction"
            },
            row.not_an_anomaly,
            row.detected,
            row.other_name,
            row.missed
        );
        if let Some((seed, names)) = &row.first_failure {
            failures.push(format!(
                "{} / {}: {} missed, {} under another name; first at seed {seed}: {names:?}",
                m.checker, m.name, row.missed, row.other_name
            ));
        }
        // Enough real cases, or the figures say little.
        let real = row.applied - row.not_an_anomaly;
        if real * 10 < histories as usize {
            failures.push(format!(
                "{} / {}: only {real} of {histories} histories carry the anomaly",
                m.checker, m.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
