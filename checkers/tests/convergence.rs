//! Tests of the `convergence` checker: micro-histories written in a tiny DSL, a property test that
//! histories of a simulated correct replicated system are valid, a mutation test per claimed anomaly
//! (`divergent-replicas`, `unavailable`), and a cross-check against brute-force oracles on small
//! random histories.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_checkers::convergence::{
    ledgers_agree, node_state_event_value, Convergence, ConvergenceConfig, NODE_STATE_F,
};
use verity_checkers::{Budget, Checker, Validity, Verdict};
use verity_history::anomaly::{DIVERGENT_REPLICAS, UNAVAILABLE};
use verity_history::{Event, EventType, History, Process, Value, F};
use verity_testkit::replicas::{diverge, make_unavailable, simulate, H, MS};

fn config() -> ConvergenceConfig {
    ConvergenceConfig {
        unavailable_window_ns: 10_000 * MS,
        idle_ns_max: 1_000 * MS,
        compare_applied_order: true,
    }
}

fn check_with(h: &History, config: ConvergenceConfig) -> Verdict {
    Convergence::new(config).check(h, &Budget::unlimited())
}

fn check(h: &History) -> Verdict {
    check_with(h, config())
}

/// A partition from 1 s to 5 s, then a healthy client until 6 s.
fn faulted_then_healed() -> H {
    let mut h = H::default();
    h.invoke(0, 1).ok(10, 1);
    h.nemesis(1_000, "start-partition")
        .nemesis(5_000, "stop-partition");
    h.invoke(5_100, 1).ok(5_200, 1);
    h
}

#[test]
fn agreeing_replicas_after_the_heal_are_valid() {
    let mut h = faulted_then_healed();
    for n in ["n1", "n2", "n3"] {
        h.state(6_000, n, 0, &[10, 20], &[1, 2, 3]);
    }
    let v = check(&h.history());
    assert_eq!(v.valid, Validity::Valid, "{v:?}");
    assert_eq!(v.details["converged_round"], 0);
}

#[test]
fn divergent_replicas_name_every_node_and_what_it_lacks() {
    let mut h = faulted_then_healed();
    h.state(6_000, "n1", 0, &[10, 20], &[1, 2, 3]);
    h.state(6_000, "n2", 0, &[10, 20], &[1, 2, 3]);
    h.state(6_000, "n3", 0, &[12, 18], &[1, 3]);
    let v = check(&h.history());
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(v.anomaly_types(), vec![DIVERGENT_REPLICAS]);
    let a = &v.anomalies[0];
    assert_eq!(a.events.len(), 3);
    assert_eq!(a.expected["nodes"], serde_json::json!(["n1", "n2"]));
    assert_eq!(a.observed["n3"]["missing"], serde_json::json!([2]));
    assert_eq!(a.observed["n3"]["balances"], serde_json::json!([12, 18]));
    assert_eq!(a.observed["n3"]["first_difference_at"], 1);
    assert_eq!(a.observed["n1"]["missing_count"], 0);
}

/// A transactional node state: no balances, applied transaction ids, and a store of keys.
fn store_state(node: &str, applied: &[i64], store: &[(&str, Value)]) -> Value {
    Value::map([
        ("node", Value::from(node)),
        ("round", Value::Int(0)),
        ("balances", Value::int_list([])),
        ("applied", Value::int_list(applied.iter().copied())),
        (
            "store",
            Value::map(store.iter().map(|(k, v)| (k.to_string(), v.clone()))),
        ),
    ])
}

#[test]
fn stores_of_transactional_replicas_are_compared_key_by_key() {
    let journal = |l: &[i64]| Value::int_list(l.iter().copied());
    let agreeing = [("1", journal(&[1, 2])), ("2", Value::Int(5))];
    // Same applied ids, different store: the store alone decides.
    let differing = [("1", journal(&[2, 1])), ("2", Value::Int(5))];
    let mut h = faulted_then_healed();
    for n in ["n1", "n2"] {
        let v = store_state(n, &[7, 8], &agreeing);
        h.push(6_000, Process::Nemesis, EventType::Info, NODE_STATE_F, v);
    }
    let ok = h.history();
    let v = store_state("n3", &[7, 8], &differing);
    h.push(6_000, Process::Nemesis, EventType::Info, NODE_STATE_F, v);
    let v = check(&h.history());
    assert_eq!(v.anomaly_types(), vec![DIVERGENT_REPLICAS], "{v:?}");
    let n3 = &v.anomalies[0].observed["n3"];
    assert_eq!(n3["differing_keys_count"], 1, "{n3}");
    assert_eq!(n3["differing_keys"]["1"]["here"], "[2,1]", "{n3}");
    assert_eq!(check(&ok).valid, Validity::Valid);
    let states = [
        store_state("a", &[7, 8], &agreeing),
        store_state("b", &[7, 8], &differing),
    ];
    assert!(!ledgers_agree(&states.iter().collect::<Vec<_>>(), true));
    assert!(ledgers_agree(&[&states[0], &states[0]], true));
}

#[test]
fn the_last_round_decides_and_the_first_agreeing_round_is_reported() {
    let mut h = faulted_then_healed();
    h.state(6_000, "n1", 0, &[10, 20], &[1, 2]);
    h.state(6_000, "n2", 0, &[12, 18], &[1]);
    h.state(6_500, "n1", 1, &[10, 20], &[1, 2]);
    h.state(6_500, "n2", 1, &[10, 20], &[1, 2]);
    let v = check(&h.history());
    assert_eq!(v.valid, Validity::Valid, "{v:?}");
    assert_eq!(v.details["converged_round"], 1);
    assert_eq!(v.details["rounds"], 2);
}

#[test]
fn an_unreadable_node_makes_agreement_unknown_but_not_divergence() {
    let mut h = faulted_then_healed();
    h.state(6_000, "n1", 0, &[10], &[1])
        .state(6_000, "n2", 0, &[10], &[1])
        .unreadable(6_000, "n3", 0);
    let v = check(&h.history());
    assert_eq!(v.valid, Validity::Unknown);
    assert!(v.cause.unwrap().contains("n3: connection refused"));

    let mut h = faulted_then_healed();
    h.state(6_000, "n1", 0, &[10], &[1])
        .state(6_000, "n2", 0, &[9], &[])
        .unreadable(6_000, "n3", 0);
    let v = check(&h.history());
    assert_eq!(v.anomaly_types(), vec![DIVERGENT_REPLICAS]);
    assert_eq!(v.anomalies[0].observed["n3"]["error"], "connection refused");
}

#[test]
fn no_node_states_or_open_faults_are_unknown_never_valid() {
    let h = faulted_then_healed();
    assert_eq!(check(&h.history()).valid, Validity::Unknown);
    let mut h = H::default();
    h.nemesis(0, "start-partition")
        .nemesis(1, "stop-partition")
        .nemesis(2, "pause");
    h.state(3, "n1", 0, &[1], &[]).state(3, "n2", 0, &[2], &[]);
    let v = check(&h.history());
    assert_eq!(
        v.valid,
        Validity::Unknown,
        "states read while a node is paused prove nothing"
    );
    assert!(v.cause.unwrap().contains("pause"));
    assert!(v.anomalies.is_empty());
}

#[test]
fn a_heal_event_closes_every_fault() {
    let mut h = H::default();
    h.nemesis(0, "start-partition")
        .nemesis(1, "pause")
        .nemesis(2, "kill")
        .nemesis(3, "heal");
    h.state(4, "n1", 0, &[1], &[7])
        .state(4, "n2", 0, &[1], &[7]);
    assert_eq!(check(&h.history()).valid, Validity::Valid);
}

#[test]
fn order_of_applied_transfers_counts_only_when_asked() {
    let mut h = faulted_then_healed();
    h.state(6_000, "n1", 0, &[5, 5], &[1, 2])
        .state(6_000, "n2", 0, &[5, 5], &[2, 1]);
    assert_eq!(
        check(&h.history()).anomaly_types(),
        vec![DIVERGENT_REPLICAS]
    );
    let unordered = ConvergenceConfig {
        compare_applied_order: false,
        ..config()
    };
    assert_eq!(check_with(&h.history(), unordered).valid, Validity::Valid);
}

#[test]
fn nodes_without_a_journal_are_compared_on_balances() {
    let mut h = faulted_then_healed();
    h.state(6_000, "n1", 0, &[5, 5], &[1, 2]);
    h.push(6_000, Process::Nemesis, EventType::Info, NODE_STATE_F, {
        Value::map([
            ("node", Value::from("n2")),
            ("balances", Value::int_list([5, 5])),
        ])
    });
    assert_eq!(check(&h.history()).valid, Validity::Valid);
}

#[test]
fn helpers_for_the_controller_build_events_and_judge_agreement_alike() {
    let a = Value::map([
        ("balances", Value::int_list([1, 2])),
        ("applied", Value::int_list([5, 6])),
    ]);
    let b = Value::map([
        ("balances", Value::int_list([1, 2])),
        ("applied", Value::int_list([6, 5])),
    ]);
    assert!(ledgers_agree(&[&a, &a], true));
    assert!(!ledgers_agree(&[&a, &b], true));
    assert!(ledgers_agree(&[&a, &b], false));
    assert!(!ledgers_agree(&[&a, &Value::Null], true));
    let v = node_state_event_value("n2", 3, Ok(&a));
    assert_eq!(v.get("node").and_then(Value::as_str), Some("n2"));
    assert_eq!(v.get("round").and_then(Value::as_i64), Some(3));
    let e = node_state_event_value("n3", 0, Err("timeout"));
    assert_eq!(e.get("error").and_then(Value::as_str), Some("timeout"));
    let mut h = faulted_then_healed();
    h.push(6_000, Process::Nemesis, EventType::Info, NODE_STATE_F, v);
    h.push(
        6_000,
        Process::Nemesis,
        EventType::Info,
        NODE_STATE_F,
        node_state_event_value("n1", 3, Ok(&b)),
    );
    assert_eq!(
        check(&h.history()).anomaly_types(),
        vec![DIVERGENT_REPLICAS]
    );
}

#[test]
fn no_success_for_longer_than_the_window_after_the_heal_is_unavailable() {
    let mut h = H::default();
    h.invoke(0, 1)
        .ok(1, 1)
        .nemesis(100, "kill")
        .nemesis(200, "restart");
    let mut t = 200;
    for _ in 0..12 {
        h.invoke(t + 1, 1).fail(t + 999, 1);
        t += 1_000;
    }
    h.invoke(t + 1, 1).ok(t + 2, 1);
    h.state(t + 10, "n1", 0, &[1], &[]);
    let v = check(&h.history());
    assert_eq!(v.anomaly_types(), vec![UNAVAILABLE]);
    let a = &v.anomalies[0];
    assert!(a.observed["unanswered"].as_u64().unwrap() >= 12);
    assert!(a.events.len() >= 3);

    let relaxed = ConvergenceConfig {
        unavailable_window_ns: 20_000 * MS,
        ..config()
    };
    assert_eq!(check_with(&h.history(), relaxed).valid, Validity::Valid);
}

#[test]
fn idle_clients_are_not_an_unavailable_system() {
    let mut h = H::default();
    h.nemesis(0, "pause").nemesis(100, "resume");
    // The clients rest for 30 s after the heal (the recovery window), then succeed at once.
    h.invoke(30_000, 1).ok(30_010, 1);
    h.state(30_100, "n1", 0, &[1], &[]);
    assert_eq!(check(&h.history()).valid, Validity::Valid);
    // A failed attempt, then 30 s of rest: the stretch ends where the clients stopped asking.
    let mut h = H::default();
    h.nemesis(0, "pause").nemesis(100, "resume");
    h.invoke(200, 1)
        .fail(300, 1)
        .invoke(30_000, 1)
        .ok(30_010, 1);
    assert_eq!(check(&h.history()).anomaly_types(), Vec::<String>::new());
}

#[test]
fn an_operation_hanging_past_the_end_counts() {
    let mut h = H::default();
    h.nemesis(0, "start-loss").nemesis(100, "stop-loss");
    h.invoke(200, 1).invoke(300, 2).fail(12_000, 2);
    h.state(12_100, "n1", 0, &[1], &[]);
    assert_eq!(check(&h.history()).anomaly_types(), vec![UNAVAILABLE]);
}

#[test]
fn without_faults_only_the_replicas_are_judged() {
    let mut h = H::default();
    h.invoke(0, 1).fail(60_000, 1);
    h.state(60_100, "n1", 0, &[1], &[])
        .state(60_100, "n2", 0, &[1], &[]);
    let v = check(&h.history());
    assert_eq!(v.valid, Validity::Valid);
    assert!(v.details["availability"]
        .as_str()
        .unwrap()
        .starts_with("skipped"));
}

// ---------------------------------------------------------------------------------------------------
// A simulated correct replicated ledger, and mutations of it.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn simulated_correct_clusters_are_valid(seed in any::<u64>(), steps in 0usize..400, nodes in 1usize..6) {
        let h = simulate(seed, steps, nodes);
        let v = check(&h);
        prop_assert_eq!(v.valid, Validity::Valid, "{:?}", v);
    }
}

#[test]
fn every_divergence_mutation_is_caught_by_name() {
    let mut caught = 0;
    for seed in 0..100 {
        let mut h = simulate(seed, 200, 3);
        if !diverge(&mut h, (seed % 3) as u8) {
            continue;
        }
        let v = check(&h);
        assert_eq!(
            v.anomaly_types(),
            vec![DIVERGENT_REPLICAS],
            "seed {seed}: {v:?}"
        );
        caught += 1;
    }
    assert!(caught > 50);
}

#[test]
fn every_unavailability_mutation_is_caught_by_name() {
    for seed in 0..50 {
        let mut h = simulate(seed, 300, 3);
        if !make_unavailable(&mut h) {
            continue;
        }
        let v = check(&h);
        assert!(
            v.anomaly_types().contains(&UNAVAILABLE.to_string()),
            "seed {seed}: {v:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// Brute-force oracles.

/// Small random client histories around one partition, with strictly increasing even times so that
/// no boundary of the odd window or idle limit can tie.
fn small(seed: u64) -> (History, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut events = Vec::new();
    let steps = rng.gen_range(2..30);
    let heal_at = rng.gen_range(1..steps);
    let mut busy = [false; 3];
    let mut process = [0u64, 1, 2];
    let mut next = 3;
    let push = |events: &mut Vec<Event>, process: Process, kind: EventType, f: &str| {
        let index = events.len() as u64;
        let time_ns = events.last().map_or(0, |e: &Event| e.time_ns) + 2 * (1 + rng_gap(index));
        events.push(Event {
            index,
            time_ns,
            process,
            kind,
            f: F::from_name(f),
            value: Value::Null,
            error: None,
        });
    };
    push(
        &mut events,
        Process::Nemesis,
        EventType::Info,
        "start-partition",
    );
    let mut heal = 0;
    for step in 0..steps {
        if step == heal_at {
            heal = events.len();
            push(
                &mut events,
                Process::Nemesis,
                EventType::Info,
                "stop-partition",
            );
        }
        let w = rng.gen_range(0..3);
        if !busy[w] {
            busy[w] = true;
            push(
                &mut events,
                Process::Client(process[w]),
                EventType::Invoke,
                "read",
            );
        } else {
            busy[w] = false;
            let kind = [EventType::Ok, EventType::Fail, EventType::Info][rng.gen_range(0..3)];
            push(&mut events, Process::Client(process[w]), kind, "read");
            if kind == EventType::Info {
                process[w] = next;
                next += 1;
            }
        }
    }
    if heal == 0 {
        heal = events.len();
        push(
            &mut events,
            Process::Nemesis,
            EventType::Info,
            "stop-partition",
        );
    }
    (History::new(events), heal)
}

/// Spreads the gaps between events unevenly but deterministically (0..5 extra steps).
fn rng_gap(index: u64) -> u64 {
    (index * index * 7 + index * 3) % 5
}

/// Whether some interval [d, e) after the heal is longer than the window, has no `ok` completion
/// strictly inside, starts and ends with an operation outstanding, and holds no run of idle instants
/// longer than the idle limit — checked instant by instant.
fn unavailable_oracle(h: &History, heal: usize, window: u64, idle_max: u64) -> bool {
    let ev = &h.events;
    let heal_t = ev[heal].time_ns;
    let Some(last) = ev.iter().rev().find(|e| e.is_client()).map(|e| e.time_ns) else {
        return false;
    };
    if last <= heal_t {
        return false;
    }
    let ops = h.ops().unwrap();
    let intervals: Vec<(u64, u64)> = ops
        .iter()
        .map(|op| {
            (
                ev[op.invoke].time_ns,
                op.completion.map_or(u64::MAX, |c| ev[c].time_ns),
            )
        })
        .collect();
    let outstanding = |t: u64| intervals.iter().any(|(a, b)| *a <= t && t < *b);
    let oks: Vec<u64> = ev
        .iter()
        .filter(|e| e.is_client() && e.kind == EventType::Ok && e.time_ns > heal_t)
        .map(|e| e.time_ns)
        .collect();
    for d in heal_t..=last {
        if !outstanding(d) {
            continue;
        }
        let mut idle_run = 0;
        for e in d + 1..=last {
            // Extend [d, e) by instant e-1.
            if outstanding(e - 1) {
                idle_run = 0;
            } else {
                idle_run += 1;
                if idle_run > idle_max {
                    break;
                }
            }
            if oks.iter().any(|s| d < *s && *s < e) {
                break;
            }
            if e - d > window && outstanding(e - 1) {
                return true;
            }
        }
    }
    false
}

#[test]
fn unavailability_agrees_with_a_brute_force_oracle() {
    let mut positives = 0;
    for seed in 0..3_000 {
        let (h, heal) = small(seed);
        let (window, idle_max) = (7, 3);
        let config = ConvergenceConfig {
            unavailable_window_ns: window,
            idle_ns_max: idle_max,
            compare_applied_order: true,
        };
        let v = check_with(&h, config);
        let claimed = v.anomaly_counts.contains_key(UNAVAILABLE);
        let truth = unavailable_oracle(&h, heal, window, idle_max);
        assert_eq!(claimed, truth, "seed {seed}: {:?}\n{v:?}", h.events);
        positives += usize::from(truth);
    }
    assert!(
        positives > 100,
        "the oracle test must exercise both answers ({positives} positives)"
    );
}

#[test]
fn divergence_agrees_with_pairwise_comparison() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut positives = 0;
    for _ in 0..2_000 {
        let mut h = H::default();
        h.nemesis(0, "kill").nemesis(1, "restart");
        let n = rng.gen_range(1..5);
        let mut states = Vec::new();
        for i in 0..n {
            let balances = vec![rng.gen_range(0..2), 3];
            let applied: Vec<u64> = (0..rng.gen_range(0..3))
                .map(|_| rng.gen_range(0..2))
                .collect();
            h.state(2, &format!("n{i}"), 0, &balances, &applied);
            states.push((balances, applied));
        }
        let truth = states.iter().any(|a| states.iter().any(|b| a != b));
        let v = check(&h.history());
        assert_eq!(
            v.anomaly_counts.contains_key(DIVERGENT_REPLICAS),
            truth,
            "{states:?} {v:?}"
        );
        assert_eq!(v.valid == Validity::Valid, !truth);
        positives += usize::from(truth);
    }
    assert!(positives > 200);
}
