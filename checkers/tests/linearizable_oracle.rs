//! Cross-check of the WGL search against the brute-force oracle (every real-time-consistent order, every
//! subset of `info` operations) on 11,200 random small histories: ≤ 8 operations, eight model setups, with
//! `ok`, `fail`, `info` and pending operations and arbitrary results, so that both verdicts occur often.
//! The two must agree on every one.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_checkers::linearizable::oracle;
use verity_checkers::linearizable::{models, Linearizable, LinearizableOptions, Model};
use verity_checkers::{Budget, Checker, Validity};
use verity_history::{Event, EventType, History, Process, Transfer, Value, F};
use verity_testkit::tally::{env_or, Tally};

/// Histories per model setup; `VERITY_ORACLE_CASES` raises it for a longer soak.
fn per_model() -> usize {
    env_or("VERITY_ORACLE_CASES", 1_400)
}

/// A random op: its f, the invoke value, and the ok result.
type Gen = fn(&mut ChaCha8Rng) -> (&'static str, Value, Value);

fn small(rng: &mut ChaCha8Rng, n: i64) -> Value {
    Value::Int(rng.gen_range(0..n))
}

fn register_op(rng: &mut ChaCha8Rng, cas: bool, keyed: bool) -> (&'static str, Value, Value) {
    let (f, arg, result) = match rng.gen_range(0..if cas { 3 } else { 2 }) {
        0 => {
            let r = if rng.gen_bool(0.1) {
                Value::Null
            } else {
                small(rng, 3)
            };
            ("read", Value::Null, r)
        }
        1 => {
            let v = small(rng, 3);
            ("write", v.clone(), v)
        }
        _ => {
            let v = Value::List(vec![small(rng, 3), small(rng, 3)]);
            ("cas", v.clone(), v)
        }
    };
    if keyed {
        let k = small(rng, 2);
        let wrap = |v: Value| Value::List(vec![k.clone(), v]);
        (f, wrap(arg), wrap(result))
    } else {
        (f, arg, result)
    }
}

fn gens() -> Vec<(&'static str, Box<dyn Checker>, Gen)> {
    let opts = LinearizableOptions::default();
    vec![
        (
            "register",
            Box::new(Linearizable::new(models::Register::default(), &opts)),
            |r| register_op(r, false, false),
        ),
        (
            "cas-register",
            Box::new(Linearizable::new(models::CasRegister::default(), &opts)),
            |r| register_op(r, true, false),
        ),
        (
            "cas-register keyed",
            Box::new(Linearizable::new(models::CasRegister::default(), &opts)),
            |r| register_op(r, true, true),
        ),
        (
            "mutex",
            Box::new(Linearizable::new(models::Mutex, &opts)),
            |r| {
                (
                    if r.gen_bool(0.5) {
                        "acquire"
                    } else {
                        "release"
                    },
                    Value::Null,
                    Value::Null,
                )
            },
        ),
        (
            "counter",
            Box::new(Linearizable::new(models::Counter::default(), &opts)),
            |r| {
                if r.gen_bool(0.5) {
                    let n = Value::Int(r.gen_range(1..3));
                    ("add", n.clone(), n)
                } else {
                    ("read", Value::Null, small(r, 5))
                }
            },
        ),
        (
            "set",
            Box::new(Linearizable::new(models::Set, &opts)),
            |r| {
                if r.gen_bool(0.5) {
                    let v = small(r, 3);
                    ("add", v.clone(), v)
                } else {
                    let items = (0..3).filter(|_| r.gen_bool(0.4)).map(Value::Int).collect();
                    ("read", Value::Null, Value::List(items))
                }
            },
        ),
        (
            "multi-register",
            Box::new(Linearizable::new(models::MultiRegister::default(), &opts)),
            |r| {
                let len = r.gen_range(1..=2);
                let (mut arg, mut result) = (Vec::new(), Vec::new());
                for _ in 0..len {
                    let k = small(r, 2);
                    let micro =
                        |f: &str, v: Value| Value::List(vec![Value::Str(f.into()), k.clone(), v]);
                    if r.gen_bool(0.5) {
                        arg.push(micro("read", Value::Null));
                        result.push(micro("read", small(r, 2)));
                    } else {
                        let v = small(r, 2);
                        arg.push(micro("write", v.clone()));
                        result.push(micro("write", v));
                    }
                }
                ("txn", Value::List(arg), Value::List(result))
            },
        ),
        (
            "bank",
            Box::new(Linearizable::new(models::Bank, &opts)),
            |r| {
                if r.gen_bool(0.5) {
                    let a = r.gen_range(0..=4);
                    (
                        "read",
                        Value::Null,
                        Value::map([("balances", Value::int_list([a, 4 - a]))]),
                    )
                } else {
                    let from = r.gen_range(0..2);
                    let t = Value::Transfer(Transfer {
                        id: r.gen(),
                        from,
                        to: 1 - from,
                        amount: r.gen_range(1..=3),
                    });
                    ("transfer", t.clone(), t)
                }
            },
        ),
    ]
}

/// A random history of ≤ 8 operations, one process each, with random interleaving and outcomes.
fn random_history(rng: &mut ChaCha8Rng, gen: Gen, bank: bool) -> History {
    let ops_max = std::env::var("VERITY_ORACLE_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8usize);
    let n = rng.gen_range(1..=ops_max);
    let ops: Vec<_> = (0..n).map(|_| gen(rng)).collect();
    let mut order: Vec<usize> = (0..n).flat_map(|i| [i, i]).collect();
    order.shuffle(rng);
    let outcomes: Vec<EventType> = (0..n)
        .map(|_| match rng.gen_range(0..20) {
            0..=13 => EventType::Ok,
            14..=16 => EventType::Fail,
            _ => EventType::Info,
        })
        .collect();
    let pending: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.05)).collect();
    let mut events = Vec::new();
    let mut push = |p: u64, kind: EventType, f: &str, value: Value, error: Option<String>| {
        let index = events.len() as u64;
        events.push(Event {
            index,
            time_ns: index,
            process: Process::Client(p),
            kind,
            f: F::from_name(f),
            value,
            error,
        });
    };
    if bank {
        let b = Value::map([("balances", Value::int_list([2, 2]))]);
        push(100, EventType::Invoke, "setup", b.clone(), None);
        push(100, EventType::Ok, "setup", b, None);
    }
    let mut invoked = vec![false; n];
    for i in order {
        let (f, arg, result) = &ops[i];
        if !invoked[i] {
            invoked[i] = true;
            push(i as u64, EventType::Invoke, f, arg.clone(), None);
        } else if !pending[i] {
            let kind = outcomes[i];
            let (value, error) = match kind {
                EventType::Ok => (result.clone(), None),
                EventType::Fail if bank && *f == "transfer" => {
                    (arg.clone(), Some("insufficient-funds".to_string()))
                }
                _ => (arg.clone(), Some("timeout".to_string())),
            };
            push(i as u64, kind, f, value, error);
        }
    }
    History::new(events)
}

fn oracle_says<M: Model>(model: &M, history: &History) -> bool {
    oracle::check_history(model, history).expect("generated histories prepare")
}

#[test]
fn search_agrees_with_brute_force_on_11200_small_histories() {
    let seed = env_or("VERITY_ORACLE_SEED", 20_261_124u64);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut total = 0;
    for (name, checker, gen) in gens() {
        let mut tally = Tally::default();
        for _ in 0..per_model() {
            let history = random_history(&mut rng, gen, name == "bank");
            let verdict = checker.check(&history, &Budget::unlimited());
            let expected = match name {
                "register" => oracle_says(&models::Register::default(), &history),
                "cas-register" | "cas-register keyed" => {
                    oracle_says(&models::CasRegister::default(), &history)
                }
                "mutex" => oracle_says(&models::Mutex, &history),
                "counter" => oracle_says(&models::Counter::default(), &history),
                "set" => oracle_says(&models::Set, &history),
                "multi-register" => oracle_says(&models::MultiRegister::default(), &history),
                _ => oracle_says(&models::Bank, &history),
            };
            let got = verdict.valid == Validity::Valid;
            assert_ne!(
                verdict.valid,
                Validity::Unknown,
                "{name}: {:?}",
                verdict.cause
            );
            assert_eq!(
                got, expected,
                "{name}: search and oracle disagree on {:#?}",
                history.events
            );
            tally.count_bool(expected);
            total += 1;
        }
        eprintln!("{name}: {tally}");
        tally.assert_both_answers(name, per_model() / 10);
    }
    assert!(total >= 10_000);
}

/// Judges `history` with the plain WGL search (5 s) and, unless it gives up (counted as skipped),
/// requires the fast checker's verdict to be the same, and counts it.
fn against_plain(
    tally: &mut Tally,
    fast: &dyn Checker,
    plain: &dyn Checker,
    history: &History,
    disagreement: impl FnOnce() -> String,
) {
    let b = plain.check(
        history,
        &Budget::with_time_limit(std::time::Duration::from_secs(5)),
    );
    if b.valid == Validity::Unknown {
        tally.skipped += 1;
        return;
    }
    let a = fast.check(history, &Budget::unlimited());
    assert_eq!(a.valid, b.valid, "{}", disagreement());
    tally.count(a.valid);
}

/// The reductions against the plain WGL search on histories too long for the brute force: simulated
/// objects with timeouts and stale reads (so both verdicts occur), 20–80 operations, 2–4 clients. The
/// plain search may give up (its blow-up is what the reductions avoid); those histories are skipped.
#[test]
fn reductions_agree_with_the_plain_search_on_medium_histories() {
    use verity_checkers::linearizable::simulate::{simulate, SimConfig, SimObject};
    use verity_checkers::linearizable::{checker_for, LinearizableOptions};
    let seed = env_or("VERITY_ORACLE_SEED", 77u64);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tally = Tally::default();
    for _ in 0..per_model() / 3 {
        let (model, object) = match rng.gen_range(0..5) {
            0 => (
                "cas-register",
                SimObject::Register {
                    values: 3,
                    cas: true,
                    keys: 1,
                },
            ),
            1 => (
                "bank",
                SimObject::Bank {
                    accounts: 3,
                    initial: 3,
                    max_transfer: 3,
                    setup: true,
                    journal: false,
                },
            ),
            2 => ("counter", SimObject::Counter),
            3 => (
                "multi-register",
                SimObject::MultiRegister { keys: 2, values: 3 },
            ),
            _ => ("set", SimObject::Set),
        };
        let config = SimConfig {
            object,
            clients: rng.gen_range(2..=4),
            ops: rng.gen_range(20..=80),
            info_rate: rng.gen_range(0.0..0.1),
            stale_read_rate: if rng.gen_bool(0.5) {
                rng.gen_range(0.0..0.1)
            } else {
                0.0
            },
            seed: rng.gen(),
        };
        let history = simulate(&config);
        let fast = checker_for(model, &LinearizableOptions::default()).expect("known model");
        let plain_options = LinearizableOptions {
            plain: true,
            ..LinearizableOptions::default()
        };
        let plain = checker_for(model, &plain_options).expect("known model");
        against_plain(&mut tally, fast.as_ref(), plain.as_ref(), &history, || {
            format!("{model}: reductions and plain search disagree on {config:?}")
        });
    }
    eprintln!("medium histories: {tally}");
    assert!(tally.skipped * 10 < tally.judged(), "{tally}");
    tally.assert_both_answers("medium histories", 50);
}

/// A small Jepsen-format bank history (no setup, no ids, heavy `info`), from the simulator, and —
/// for 70% of them — mutated: one read shows other balances (same total), or one transfer's
/// outcome or amount changes, so that invalid verdicts occur often.
fn small_jepsen_bank(rng: &mut ChaCha8Rng) -> History {
    use verity_checkers::linearizable::simulate::{jepsen_bank, BankBug, JepsenBankConfig};
    let config = JepsenBankConfig {
        accounts: rng.gen_range(2..=3),
        initial: rng.gen_range(2..=4),
        max_transfer: 3,
        processes: rng.gen_range(2..=4),
        ops: rng.gen_range(3..=9),
        info_rate: rng.gen_range(0.1..0.5),
        bug: BankBug::None,
        seed: rng.gen(),
    };
    let mut history = jepsen_bank(&config);
    if rng.gen_bool(0.7) {
        let n = history.events.len();
        // Never the opening read (events 0 and 1): it gives the initial balances.
        let i = rng.gen_range(2..n);
        let e = &mut history.events[i];
        match (&e.f, e.kind) {
            (F::Read, EventType::Ok) => {
                if let Some(mut b) = e.value.get("balances").and_then(Value::as_i64_list) {
                    let (x, y) = (rng.gen_range(0..b.len()), rng.gen_range(0..b.len()));
                    b[x] -= 1;
                    b[y] += 1;
                    e.value = Value::map([("balances", Value::int_list(b))]);
                }
            }
            (F::Transfer, EventType::Ok) => {
                e.kind = EventType::Fail;
                e.error = Some("insufficient-funds".into());
            }
            (F::Transfer, EventType::Info) => {
                e.kind = EventType::Ok;
                e.error = None;
            }
            (F::Transfer, EventType::Invoke) => {
                let amount = rng.gen_range(1..=3);
                let v = e.value.clone();
                let field = |k: &str| v.get(k).cloned().unwrap_or(Value::Int(0));
                e.value = Value::map([
                    ("from", field("from")),
                    ("to", field("to")),
                    ("amount", Value::Int(amount)),
                ]);
            }
            _ => {}
        }
    }
    history
}

/// The bank search's prunes (a due operation no choice can help; an `info` operation that ends its
/// run and enables nothing) against the brute force, on 10,000 small Jepsen-format bank histories
/// with heavy `info`: valid ones from the simulator and mutated ones.
#[test]
fn bank_search_agrees_with_brute_force_on_10000_small_jepsen_histories() {
    let seed = env_or("VERITY_ORACLE_SEED", 20_261_202u64);
    let cases = std::env::var("VERITY_ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(10_000, |c| c.max(1) * 8);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let checker = Linearizable::new(models::Bank, &LinearizableOptions::default());
    let (mut tally, mut info_ops) = (Tally::default(), 0);
    for case in 0..cases {
        let history = small_jepsen_bank(&mut rng);
        info_ops += history
            .events
            .iter()
            .filter(|e| e.kind == EventType::Info)
            .count();
        let verdict = checker.check(&history, &Budget::unlimited());
        assert_ne!(
            verdict.valid,
            Validity::Unknown,
            "case {case}: {:?}",
            verdict.cause
        );
        let expected = oracle_says(&models::Bank, &history);
        assert_eq!(
            verdict.valid == Validity::Valid,
            expected,
            "case {case}: search and oracle disagree on {:#?}",
            history.events
        );
        tally.count_bool(expected);
    }
    eprintln!("small jepsen banks: {tally}, {info_ops} info ops");
    assert!(tally.judged() >= 10_000 || cases < 10_000);
    tally.assert_both_answers("small jepsen banks", cases / 10);
    assert!(
        info_ops > cases,
        "heavy info: {info_ops} info ops in {cases} histories"
    );
}

/// The same prunes against the plain WGL search on medium Jepsen-format bank histories (40–120
/// operations, 3–6 processes, 10–40% `info`), planted bugs included; histories the plain search
/// cannot decide in 5 s are skipped.
#[test]
fn bank_search_agrees_with_the_plain_search_on_medium_jepsen_histories() {
    use verity_checkers::linearizable::simulate::{jepsen_bank, BankBug, JepsenBankConfig};
    let mut rng = ChaCha8Rng::seed_from_u64(1_202);
    let fast = Linearizable::new(models::Bank, &LinearizableOptions::default());
    let plain = Linearizable::new(
        models::Bank,
        &LinearizableOptions {
            plain: true,
            ..LinearizableOptions::default()
        },
    );
    let mut tally = Tally::default();
    for case in 0..300 {
        let bug = match rng.gen_range(0..6) {
            0 => BankBug::LostUpdate,
            1 => BankBug::Overdraft,
            2 => BankBug::StaleRead,
            _ => BankBug::None,
        };
        let config = JepsenBankConfig {
            accounts: rng.gen_range(2..=5),
            initial: rng.gen_range(3..=8),
            max_transfer: 4,
            processes: rng.gen_range(3..=6),
            ops: rng.gen_range(40..=120),
            info_rate: rng.gen_range(0.1..0.4),
            bug,
            seed: rng.gen(),
        };
        let history = jepsen_bank(&config);
        against_plain(&mut tally, &fast, &plain, &history, || {
            format!("case {case}: prunes and plain search disagree on {config:?}")
        });
    }
    eprintln!("medium jepsen banks: {tally}");
    assert!(tally.skipped * 4 < tally.judged(), "{tally}");
    tally.assert_both_answers("medium jepsen banks", 30);
}

/// Every planted bug is certain: the simulator's lost update, overdraft and stale read are found
/// in histories with heavy `info` (and their valid twins are valid).
#[test]
fn planted_bank_bugs_are_found_and_their_valid_twins_pass() {
    use verity_checkers::linearizable::simulate::{jepsen_bank_planted, BankBug, JepsenBankConfig};
    let checker = Linearizable::new(models::Bank, &LinearizableOptions::default());
    let mut planted_count = 0;
    for seed in 0..20u64 {
        for bug in [
            BankBug::None,
            BankBug::LostUpdate,
            BankBug::Overdraft,
            BankBug::StaleRead,
        ] {
            let config = JepsenBankConfig {
                accounts: 4,
                initial: 6,
                max_transfer: 4,
                processes: 4,
                ops: 60,
                info_rate: 0.15,
                bug,
                seed,
            };
            let (history, planted) = jepsen_bank_planted(&config);
            if !planted {
                continue;
            }
            planted_count += 1;
            let verdict = checker.check(&history, &Budget::unlimited());
            let expected = if bug == BankBug::None {
                Validity::Valid
            } else {
                Validity::Invalid
            };
            assert_eq!(verdict.valid, expected, "{config:?}: {:?}", verdict.cause);
        }
    }
    assert!(
        planted_count >= 70,
        "only {planted_count} of 80 histories carry their bug"
    );
}
