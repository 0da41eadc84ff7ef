//! Soundness at scale: every checker, on histories of simulated *correct* systems, never reports an
//! anomaly. Each family's simulator produces histories with concurrency, timeouts whose effect lands
//! before or after the `info` (or never), clients that crash with an operation in flight, and
//! nemesis events; a single `invalid` verdict is a false alarm and fails the test with its seed.
//!
//! The default suite judges `VERITY_SOUNDNESS_HISTORIES` (default 500) histories per family — a few
//! thousand in all. The long mode judges 100,000 per family and prints the table that
//! `docs/correctness.md` quotes:
//!
//! ```sh
//! cargo test --release -p verity-testkit --test soundness -- --ignored --nocapture
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use verity_checkers::conservation::Conservation;
use verity_checkers::convergence::{Convergence, ConvergenceConfig};
use verity_checkers::graph::GraphChecker;
use verity_checkers::{Budget, Checker, Validity};
use verity_history::{Event, EventType, History, Process};
use verity_testkit::linearizable;
use verity_testkit::objects::{jepsen_bank, BankBug, JepsenBankConfig, SimConfig, SimObject};
use verity_testkit::tally::{env_or, Tally};
use verity_testkit::{ledger, replicas, txn};

/// A family: its name, the checker, and the simulator (seed → history).
struct Family {
    name: &'static str,
    checker: Box<dyn Checker>,
    simulate: fn(u64) -> History,
    /// Whether `unknown` is an acceptable answer here (a checker that, by design, cannot decide
    /// this kind of history); elsewhere every correct small history must be decided valid.
    may_be_unknown: bool,
}

/// The ledger with transfer ids and a journal: 1–200 operations, 2–8 processes, up to 20% timeouts.
fn ledger_sim(seed: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    ledger::simulate(
        rng.gen(),
        &ledger::SimConfig {
            accounts: rng.gen_range(2..=6),
            processes: rng.gen_range(2..=8),
            ops: rng.gen_range(1..=200),
            info_chance: rng.gen_range(0.0..0.2),
            nemesis: true,
        },
    )
}

/// Jepsen's plain bank (no ids, no journal): 5–80 operations, up to 20% of them `info`.
fn jepsen_bank_sim(seed: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let h = jepsen_bank(&JepsenBankConfig {
        accounts: rng.gen_range(2..=5),
        initial: rng.gen_range(3..=10),
        max_transfer: rng.gen_range(1..=5),
        processes: rng.gen_range(2..=8),
        ops: rng.gen_range(5..=80),
        info_rate: rng.gen_range(0.0..0.2),
        bug: BankBug::None,
        seed: rng.gen(),
    });
    verity_testkit::with_nemesis(h, rng.gen())
}

fn object_sim(seed: u64, object: SimObject, max_ops: usize) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let h = verity_testkit::objects::simulate(&SimConfig {
        object,
        clients: rng.gen_range(1..=6),
        ops: rng.gen_range(1..=max_ops),
        info_rate: rng.gen_range(0.0..0.15),
        stale_read_rate: 0.0,
        seed: rng.gen(),
    });
    verity_testkit::with_nemesis(h, rng.gen())
}

fn store_sim(seed: u64, register: bool, strict: bool) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cfg = txn::StoreSim {
        strict,
        nemesis: true,
        ..txn::StoreSim::new(
            rng.gen_range(1..=100),
            rng.gen_range(1..=6),
            rng.gen_range(1..=5),
            register,
        )
    };
    txn::simulate_store(&mut rng, &cfg)
}

/// A family of a linearizable object: its model, and the simulator of up to `max_ops` operations.
fn object(name: &'static str, model: &str, simulate: fn(u64) -> History) -> Family {
    Family {
        name,
        checker: linearizable(model),
        simulate,
        may_be_unknown: false,
    }
}

fn register(seed: u64, cas: bool, keys: u32, max_ops: usize) -> History {
    object_sim(
        seed,
        SimObject::Register {
            values: 5,
            cas,
            keys,
        },
        max_ops,
    )
}

fn families() -> Vec<Family> {
    let strict_graph = || Box::new(GraphChecker::default()) as Box<dyn Checker>;
    // Serializable without strictness: no real-time edges, and no process order either (a
    // serializable store may order one client's transactions against the order it issued them).
    let serializable_graph = || {
        Box::new(GraphChecker {
            process: false,
            realtime: false,
            ..GraphChecker::default()
        }) as Box<dyn Checker>
    };
    vec![
        Family {
            name: "ledger with journal",
            checker: Box::new(Conservation),
            simulate: ledger_sim,
            may_be_unknown: false,
        },
        Family {
            name: "ledger with journal",
            checker: linearizable("bank"),
            simulate: ledger_sim,
            may_be_unknown: false,
        },
        Family {
            name: "Jepsen bank, no ids",
            checker: Box::new(Conservation),
            simulate: jepsen_bank_sim,
            // No setup and no journal: only the reads can be judged, and without a journal a
            // verdict on lost money is unknown by design.
            may_be_unknown: true,
        },
        Family {
            name: "Jepsen bank, no ids",
            checker: linearizable("bank"),
            simulate: jepsen_bank_sim,
            may_be_unknown: false,
        },
        object("register", "register", |s| register(s, false, 1, 60)),
        object("cas-register", "cas-register", |s| register(s, true, 1, 60)),
        object("cas-register, 3 independent keys", "cas-register", |s| {
            register(s, true, 3, 90)
        }),
        object("multi-register", "multi-register", |s| {
            object_sim(s, SimObject::MultiRegister { keys: 3, values: 4 }, 40)
        }),
        object("counter", "counter", |s| {
            object_sim(s, SimObject::Counter, 60)
        }),
        object("set", "set", |s| object_sim(s, SimObject::Set, 60)),
        object("mutex", "mutex", |s| object_sim(s, SimObject::Mutex, 60)),
        Family {
            name: "list-append, strict serializable",
            checker: strict_graph(),
            simulate: |s| store_sim(s, false, true),
            may_be_unknown: false,
        },
        Family {
            name: "rw-register, strict serializable",
            checker: strict_graph(),
            simulate: |s| store_sim(s, true, true),
            may_be_unknown: false,
        },
        Family {
            name: "list-append, serializable",
            checker: serializable_graph(),
            simulate: |s| store_sim(s, false, false),
            may_be_unknown: false,
        },
        Family {
            name: "rw-register, serializable",
            checker: serializable_graph(),
            simulate: |s| store_sim(s, true, false),
            may_be_unknown: false,
        },
        Family {
            name: "replicated ledger under faults",
            checker: Box::new(Convergence::new(ConvergenceConfig {
                unavailable_window_ns: 10_000 * replicas::MS,
                idle_ns_max: 1_000 * replicas::MS,
                compare_applied_order: true,
            })),
            simulate: |s| {
                let mut rng = ChaCha8Rng::seed_from_u64(s);
                replicas::simulate(rng.gen(), rng.gen_range(0..400), rng.gen_range(1..=5))
            },
            may_be_unknown: false,
        },
    ]
}

/// One judged history.
struct Judged {
    seed: u64,
    valid: Validity,
    anomalies: Vec<String>,
    cause: Option<String>,
    events: usize,
    /// Client operations that ended `info` (timed out).
    info: usize,
    nemesis: usize,
}

/// What one family's run found.
#[derive(Default)]
struct Row {
    tally: Tally,
    events: usize,
    info: usize,
    nemesis: usize,
    /// The first seed judged invalid, and the anomalies it named.
    false_alarm: Option<(u64, Vec<String>)>,
    first_unknown: Option<(u64, String)>,
}

fn judge(family: &Family, histories: u64, base_seed: u64) -> Row {
    let judged: Vec<Judged> = (0..histories)
        .into_par_iter()
        .map(|i| {
            let seed = base_seed.wrapping_add(i);
            let h = (family.simulate)(seed);
            let v = family.checker.check(&h, &Budget::unlimited());
            let count = |f: &dyn Fn(&Event) -> bool| h.events.iter().filter(|e| f(e)).count();
            Judged {
                seed,
                valid: v.valid,
                anomalies: v.anomaly_types(),
                cause: v.cause,
                events: h.events.len(),
                info: count(&|e| e.is_client() && e.kind == EventType::Info),
                nemesis: count(&|e| e.process == Process::Nemesis),
            }
        })
        .collect();
    let mut row = Row::default();
    for j in judged {
        row.tally.count(j.valid);
        row.events += j.events;
        row.info += j.info;
        row.nemesis += j.nemesis;
        if j.valid == Validity::Invalid && row.false_alarm.is_none() {
            row.false_alarm = Some((j.seed, j.anomalies));
        } else if j.valid == Validity::Unknown && row.first_unknown.is_none() {
            row.first_unknown = Some((j.seed, j.cause.unwrap_or_default()));
        }
    }
    row
}

fn soundness(histories: u64) {
    let base_seed: u64 = env_or("VERITY_SOUNDNESS_SEED", 20_261_202);
    println!(
        "| family | checker | histories | events | timed-out ops | nemesis events | valid | unknown | false alarms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for family in families() {
        let row = judge(&family, histories, base_seed);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            family.name,
            family.checker.name(),
            row.tally.judged(),
            row.events,
            row.info,
            row.nemesis,
            row.tally.valid,
            row.tally.unknown,
            row.tally.invalid,
        );
        if let Some((seed, anomalies)) = &row.false_alarm {
            failures.push(format!(
                "{} / {}: {} false alarms, the first at seed {seed}: {anomalies:?}",
                family.name,
                family.checker.name(),
                row.tally.invalid
            ));
        }
        if !family.may_be_unknown {
            if let Some((seed, cause)) = &row.first_unknown {
                failures.push(format!(
                    "{} / {}: {} undecided correct histories, the first at seed {seed}: {cause}",
                    family.name,
                    family.checker.name(),
                    row.tally.unknown
                ));
            }
        }
        // The simulators must really exercise timeouts, or "no false alarms" says little.
        assert!(
            (row.info > 0 && row.nemesis > 0) || histories < 10,
            "{}: {} timed-out operations, {} nemesis events",
            family.name,
            row.info,
            row.nemesis
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn correct_systems_never_raise_an_alarm() {
    soundness(env_or("VERITY_SOUNDNESS_HISTORIES", 500));
}

#[test]
#[ignore = "100,000 histories per family (tens of minutes): cargo test --release -p verity-testkit --test soundness -- --ignored --nocapture"]
fn correct_systems_never_raise_an_alarm_at_scale() {
    soundness(100_000);
}

/// The serializable-only stores must really break real-time order, or their families would test
/// nothing the strict ones do not: the strict checker finds `-realtime` cycles in some of them.
#[test]
fn the_serializable_stores_break_real_time_order() {
    for register in [false, true] {
        let broken = (0..300)
            .filter(|&s| {
                let v = GraphChecker::default()
                    .check(&store_sim(s, register, false), &Budget::unlimited());
                v.anomaly_types()
                    .iter()
                    .any(|a| a.ends_with("-realtime") || a.ends_with("-process"))
            })
            .count();
        assert!(
            broken > 10,
            "register {register}: only {broken} of 300 histories break real time"
        );
    }
}
