//! Tests of the conservation checker: simulated correct banks are valid, each anomaly is found by the
//! mutation that creates it, and the verdict agrees with a brute-force oracle on small histories.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_checkers::conservation::Conservation;
use verity_checkers::{Budget, Checker, Validity, Verdict};
use verity_history::{EventType, History, Process, Value, F};
use verity_testkit::ledger::{
    oracle, simulate, Builder, LedgerMutation as Mutation, SimConfig, MUTATIONS,
};

fn check(h: &History) -> Verdict {
    Conservation.check(h, &Budget::unlimited())
}

fn sim(seed: u64, ops: usize, info_chance: f64) -> History {
    simulate(
        seed,
        &SimConfig {
            accounts: 4,
            processes: 4,
            ops,
            info_chance,
            nemesis: true,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn simulated_correct_banks_are_valid(seed in any::<u64>(), ops in 1usize..200, info in 0.0f64..0.2) {
        let h = sim(seed, ops, info);
        let v = check(&h);
        prop_assert_eq!(v.valid, Validity::Valid, "anomalies: {:?}", v.anomalies);
    }
}

#[test]
fn every_mutation_is_caught_by_its_anomaly_name() {
    for m in MUTATIONS {
        let mut caught = 0;
        for seed in 0..50 {
            let mut h = sim(seed, 60, 0.05);
            if !m.apply(&mut h) {
                continue;
            }
            let v = check(&h);
            assert_eq!(
                v.valid,
                Validity::Invalid,
                "{m:?} on seed {seed} went unnoticed"
            );
            assert!(
                v.anomaly_types().iter().any(|a| a == m.anomaly()),
                "{m:?} on seed {seed}: expected {}, got {:?}",
                m.anomaly(),
                v.anomaly_types()
            );
            let example = v.anomalies.iter().find(|a| a.name == m.anomaly()).unwrap();
            assert!(
                !example.events.is_empty(),
                "{m:?}: the anomaly names no events"
            );
            caught += 1;
        }
        assert!(
            caught >= 10,
            "{m:?} could be applied to only {caught} histories"
        );
    }
}

#[test]
fn timed_out_transfers_are_resolved_by_the_final_journal() {
    let h = sim(7, 200, 0.2);
    let v = check(&h);
    assert_eq!(v.valid, Validity::Valid);
    let info = &v.details["info_transfers"];
    let total = info["total"].as_u64().unwrap();
    assert!(total > 0, "the seed should produce timed-out transfers");
    assert_eq!(
        total,
        info["committed"].as_u64().unwrap() + info["not_committed"].as_u64().unwrap()
    );
}

#[test]
fn missing_or_failed_final_read_is_unknown_never_valid() {
    let mut h = sim(3, 40, 0.0);
    h.events.truncate(h.events.len() - 2);
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown);
    assert!(v.cause.unwrap().contains("final read"));

    let mut h = sim(3, 40, 0.0);
    let last = h.events.last_mut().unwrap();
    last.kind = EventType::Fail;
    assert_eq!(check(&h).valid, Validity::Unknown);
}

#[test]
fn an_anomaly_outranks_a_missing_final_read() {
    let mut h = sim(3, 40, 0.0);
    Mutation::WrongTotal.apply(&mut h);
    h.events.truncate(h.events.len() - 2);
    assert_eq!(check(&h).valid, Validity::Invalid);
}

#[test]
fn jepsen_bank_format_without_ids_checks_reads_only() {
    let mut b = Builder::new();
    let read = |v: [i64; 2]| Value::map([("balances", Value::int_list(v))]);
    let p = Process::Client(1);
    b.push(p, EventType::Invoke, F::Read, Value::Null, None);
    b.push(p, EventType::Ok, F::Read, read([5, 5]), None);
    b.push(
        p,
        EventType::Invoke,
        F::Read,
        Value::map([("final", Value::Bool(true))]),
        None,
    );
    b.push(p, EventType::Ok, F::Read, read([4, 5]), None);
    let v = check(&b.finish());
    assert_eq!(v.anomaly_types(), vec!["wrong-total".to_string()]);
    assert!(v.details["ledger_checks"]
        .as_str()
        .unwrap()
        .starts_with("skipped"));
}

#[test]
fn no_initial_state_is_unknown() {
    let mut b = Builder::new();
    b.push(
        Process::Client(1),
        EventType::Invoke,
        F::Read,
        Value::Null,
        None,
    );
    b.push(
        Process::Client(2),
        EventType::Invoke,
        F::Read,
        Value::Null,
        None,
    );
    let v = check(&b.finish());
    assert_eq!(v.valid, Validity::Unknown);
}

#[test]
fn agrees_with_a_brute_force_oracle_on_small_histories() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let (mut valid, mut invalid) = (0, 0);
    for case in 0..10_000u64 {
        let mut h = sim(case, rng.gen_range(1..=12), 0.25);
        if rng.gen_bool(0.5) {
            let m = MUTATIONS[rng.gen_range(0..MUTATIONS.len())];
            m.apply(&mut h);
        }
        let expected = oracle(&h);
        let got = check(&h).valid;
        assert_eq!(
            got == Validity::Valid,
            expected,
            "case {case}: checker says {got:?}, oracle says valid={expected}"
        );
        if expected {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    assert!(
        valid > 1000 && invalid > 1000,
        "unbalanced cases: {valid} valid, {invalid} invalid"
    );
}

#[test]
fn a_read_the_checker_cannot_interpret_is_unknown_never_an_anomaly() {
    for odd in [
        Value::Null,
        Value::Str("oops".into()),
        Value::map([(
            "balances",
            Value::List(vec![Value::Int(5), Value::Str("x".into())]),
        )]),
        Value::map([("accounts", Value::int_list([5, 5]))]),
    ] {
        let mut b = Builder::new();
        let read = |v: [i64; 2]| Value::map([("balances", Value::int_list(v))]);
        let p = Process::Client(1);
        b.push(p, EventType::Invoke, F::Read, Value::Null, None);
        b.push(p, EventType::Ok, F::Read, read([5, 5]), None);
        b.push(p, EventType::Invoke, F::Read, Value::Null, None);
        b.push(p, EventType::Ok, F::Read, odd.clone(), None);
        let v = check(&b.finish());
        assert_eq!(v.valid, Validity::Unknown, "{odd}: {v:?}");
        assert!(v.anomalies.is_empty(), "{odd}: {:?}", v.anomaly_types());
        let cause = v.cause.unwrap();
        assert!(
            cause.contains("event 3") && cause.contains("expected balances"),
            "{cause}"
        );
    }
}

/// Regression: a final read carrying the journal in the shape `verity export` writes was read as
/// a read without balances and reported as `wrong-total`.
#[test]
fn regression_a_final_read_with_balances_and_transfers_is_no_wrong_total() {
    let text = "{:type :invoke, :f :setup, :value {:balances [10 20]}, :process 0, :index 0}\n\
        {:type :ok, :f :setup, :value {:balances [10 20]}, :process 0, :index 1}\n\
        {:type :invoke, :f :transfer, :value {:id 1, :from 0, :to 1, :amount 5}, :process 1, :index 2}\n\
        {:type :ok, :f :transfer, :value {:id 1, :from 0, :to 1, :amount 5}, :process 1, :index 3}\n\
        {:type :invoke, :f :read, :value nil, :process 2, :index 4, :final? true}\n\
        {:type :ok, :f :read, :value {:balances {0 5, 1 25} :transfers #{1}}, :process 2, :index 5, :final? true}\n";
    let h = verity_history::edn::parse_edn(text).unwrap();
    let v = check(&h);
    assert_eq!(v.valid, Validity::Valid, "{v:?}");
    assert_eq!(v.details["applied"], 1);
    // The same read missing the acknowledged transfer is a lost transfer, found through the journal.
    let h = verity_history::edn::parse_edn(
        &text.replace("{0 5, 1 25} :transfers #{1}", "{0 10, 1 20} :transfers #{}"),
    )
    .unwrap();
    assert_eq!(check(&h).anomaly_types(), vec!["lost-transfer".to_string()]);
}
