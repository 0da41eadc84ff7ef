//! Benchmark of the `convergence` checker on a large history: one million client events around a
//! series of faults, then five replicas each reporting a journal of 200,000 applied transfers. The
//! checker is linear in the events plus n·log n in the journals; it must never be what makes a CI run
//! slow.
//!
//! Run: `cargo run --release -p verity-checkers --example convergence_bench [repeats]`

use std::time::Instant;

use verity_checkers::convergence::{node_state_value, Convergence, NODE_STATE_F};
use verity_checkers::{Budget, Checker};
use verity_history::{Event, EventType, History, Process, Value, F};

const CLIENT_EVENTS: u64 = 1_000_000;
const APPLIED: u64 = 200_000;
const NODES: usize = 5;

fn history() -> History {
    let mut events = Vec::with_capacity(CLIENT_EVENTS as usize + 64);
    let push = |events: &mut Vec<Event>, process: Process, kind: EventType, f: F, value: Value| {
        let index = events.len() as u64;
        events.push(Event {
            index,
            time_ns: index * 20_000,
            process,
            kind,
            f,
            value,
            error: None,
        });
    };
    let faults = [
        "start-partition",
        "stop-partition",
        "pause",
        "resume",
        "kill",
        "restart",
    ];
    for i in 0..CLIENT_EVENTS / 2 {
        if i % 50_000 == 0 {
            let f = faults[(i / 50_000) as usize % faults.len()];
            push(
                &mut events,
                Process::Nemesis,
                EventType::Info,
                F::Other(f.into()),
                Value::Null,
            );
        }
        let p = Process::Client(i % 10);
        push(&mut events, p, EventType::Invoke, F::Read, Value::Null);
        let kind = if i % 7 == 0 {
            EventType::Fail
        } else {
            EventType::Ok
        };
        push(&mut events, p, kind, F::Read, Value::Null);
    }
    push(
        &mut events,
        Process::Nemesis,
        EventType::Info,
        F::Other("heal".into()),
        Value::Null,
    );
    let applied: Vec<u64> = (0..APPLIED).collect();
    let balances: Vec<i64> = (0..8).collect();
    for n in 1..=NODES {
        let v = node_state_value(&format!("n{n}"), 0, &balances, &applied);
        push(
            &mut events,
            Process::Nemesis,
            EventType::Info,
            F::Other(NODE_STATE_F.into()),
            v,
        );
    }
    History::new(events)
}

fn main() {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let h = history();
    let checker = Convergence::default();
    let mut ms = Vec::new();
    for _ in 0..repeats {
        let t0 = Instant::now();
        let v = checker.check(&h, &Budget::unlimited());
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        assert_eq!(v.valid, verity_checkers::Validity::Valid, "{v:?}");
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "convergence on {} events ({} replicas x {} applied): median {:.1} ms (min {:.1}, max {:.1})",
        h.events.len(),
        NODES,
        APPLIED,
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1]
    );
}
