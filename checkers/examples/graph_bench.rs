//! Benchmark of the graph checker on generated ledger-append histories.
//!
//! Generation and checking run in separate processes so that the checking process's peak memory
//! (VmHWM) is the checker's own, parsing included:
//!
//! ```text
//! cargo run --release -p verity-checkers --example graph_bench -- gen 1000000 /tmp/h1m.jsonl
//! cargo run --release -p verity-checkers --example graph_bench -- check /tmp/h1m.jsonl
//! cargo run --release -p verity-checkers --example graph_bench -- gen-scc 100000 /tmp/scc.jsonl
//! cargo run --release -p verity-checkers --example graph_bench -- check /tmp/scc.jsonl 2
//! ```
//!
//! `gen` simulates a correct (strict serializable) store serving the ledger-append workload with 10
//! concurrent processes: each transaction takes effect at its completion. `gen-scc` builds the
//! worst case: every transaction reads two journals stale (as empty) and appends to both, so the
//! whole history is one strongly connected component. `check` prints parse and check times, the
//! verdict and the peak resident memory; an optional last argument is the cycle-search limit in
//! seconds.

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_checkers::graph::GraphChecker;
use verity_checkers::{Budget, Checker};
use verity_history::{Event, EventType, Process, Value, F};
use verity_workloads::ledger_append::{LedgerAppend, LedgerAppendConfig};
use verity_workloads::Workload;

const CONCURRENCY: usize = 10;

fn event(index: u64, p: u64, kind: EventType, value: Value) -> Event {
    Event {
        index,
        time_ns: index * 1000,
        process: Process::Client(p),
        kind,
        f: F::Txn,
        value,
        error: None,
    }
}

/// Applies a transaction to the journals, filling in its reads.
fn apply(journals: &mut BTreeMap<i64, Vec<i64>>, txn: &Value) -> Value {
    let mops = txn.as_list().expect("workload txns are lists");
    Value::List(
        mops.iter()
            .map(|m| {
                let m = m.as_list().expect("micro-ops are lists");
                let k = m[1].as_i64().expect("keys are integers");
                match m[0].as_str() {
                    Some("append") => {
                        journals
                            .entry(k)
                            .or_default()
                            .push(m[2].as_i64().expect("values are integers"));
                        Value::List(m.to_vec())
                    }
                    _ => Value::List(vec![
                        m[0].clone(),
                        m[1].clone(),
                        Value::int_list(journals.get(&k).cloned().unwrap_or_default()),
                    ]),
                }
            })
            .collect(),
    )
}

fn generate(n: usize, seed: u64) -> Vec<Event> {
    let wl = LedgerAppend::new(LedgerAppendConfig {
        accounts: 16,
        generation_txns: 16,
        ..LedgerAppendConfig::default()
    });
    let mut gens: Vec<_> = (0..CONCURRENCY)
        .map(|w| wl.generator(w, CONCURRENCY))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut journals: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut open: Vec<Option<Value>> = vec![None; CONCURRENCY];
    let mut events = Vec::with_capacity(2 * n + 2);
    let mut started = 0;
    while started < n || open.iter().any(Option::is_some) {
        let w = rng.gen_range(0..CONCURRENCY);
        let idx = events.len() as u64;
        match open[w].take() {
            Some(inv) => {
                let done = apply(&mut journals, &inv);
                events.push(event(idx, w as u64, EventType::Ok, done));
            }
            None if started < n => {
                let inv = gens[w].next(&mut rng).value;
                events.push(event(idx, w as u64, EventType::Invoke, inv.clone()));
                open[w] = Some(inv);
                started += 1;
            }
            None => {}
        }
    }
    events
}

/// The worst case: even transactions read key 0 as empty and append to key 1, odd ones read key 1
/// as empty and append to key 0; a final read shows every append. Each reader precedes the first
/// writer of the key it read (rw) and the writers of a key are chained (ww): the whole history is
/// one SCC whose every cycle has two or more rw edges, and there is no non-cycle anomaly.
fn generate_scc(n: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(2 * n + 2);
    let mop = |f: &str, k: i64, v: Value| Value::List(vec![Value::from(f), Value::Int(k), v]);
    let txn = |i: i64, read: bool| {
        let (rk, ak) = if i % 2 == 0 { (0, 1) } else { (1, 0) };
        Value::List(vec![
            mop(
                "r",
                rk,
                if read {
                    Value::int_list([])
                } else {
                    Value::Null
                },
            ),
            mop("append", ak, Value::Int(i)),
        ])
    };
    for i in 0..n {
        let p = (i % CONCURRENCY) as u64;
        events.push(event(
            events.len() as u64,
            p,
            EventType::Invoke,
            txn(i as i64, false),
        ));
        events.push(event(
            events.len() as u64,
            p,
            EventType::Ok,
            txn(i as i64, true),
        ));
    }
    let odds = (0..n as i64).filter(|i| i % 2 == 1);
    let evens = (0..n as i64).filter(|i| i % 2 == 0);
    let fin = Value::List(vec![
        mop("r", 0, Value::int_list(odds)),
        mop("r", 1, Value::int_list(evens)),
    ]);
    let blank = Value::List(vec![mop("r", 0, Value::Null), mop("r", 1, Value::Null)]);
    let p = CONCURRENCY as u64;
    events.push(event(events.len() as u64, p, EventType::Invoke, blank));
    events.push(event(events.len() as u64, p, EventType::Ok, fin));
    events
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn write(events: &[Event], path: &str) {
    let f = std::fs::File::create(path).expect("create output file");
    verity_history::jsonl::write_jsonl(BufWriter::new(f), events).expect("write history");
    eprintln!("wrote {} events to {path}", events.len());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") => {
            let n: usize = args[2].parse().expect("transaction count");
            write(&generate(n, 42), &args[3]);
        }
        Some("gen-scc") => {
            let n: usize = args[2].parse().expect("transaction count");
            write(&generate_scc(n), &args[3]);
        }
        Some("check") => {
            let limit = args.get(3).map_or(Duration::from_secs(10), |s| {
                Duration::from_secs_f64(s.parse().expect("seconds"))
            });
            let t0 = Instant::now();
            let bytes = std::fs::read(&args[2]).expect("read history");
            let h = verity_history::jsonl::parse_jsonl(&bytes).expect("parse history");
            drop(bytes);
            let t1 = Instant::now();
            let checker = GraphChecker {
                cycle_search_timeout: limit,
                ..GraphChecker::default()
            };
            let v = checker.check(&h, &Budget::unlimited());
            let t2 = Instant::now();
            println!(
                "events={} txns={} parse_s={:.3} check_s={:.3} total_s={:.3} valid={:?} anomalies={:?} cause={:?} peak_rss_mib={:.0}",
                h.events.len(),
                v.details.get("txns").cloned().unwrap_or_default(),
                (t1 - t0).as_secs_f64(),
                (t2 - t1).as_secs_f64(),
                (t2 - t0).as_secs_f64(),
                v.valid,
                v.anomaly_counts,
                v.cause,
                peak_rss_kib() as f64 / 1024.0,
            );
        }
        _ => eprintln!("usage: graph_bench gen N FILE | gen-scc N FILE | check FILE [LIMIT_S]"),
    }
}
