//! Library-level driver: runs the ledger-append (and rw-register) workload against the
//! transactional memory target with tokio tasks for a bounded number of transactions, records the
//! events as the controller would, and checks the history with the graph checker.
//!
//! Acceptance (issue P4): each isolation knob is caught with its anomaly name on at least 9 of 10
//! seeds, and the correct store stays valid on 10 of 10. Run with `--nocapture` for the figures.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use verity_checkers::graph::GraphChecker;
use verity_checkers::{Budget, Checker, Validity, Verdict};
use verity_history::{Event, EventType, History, Invocation, Process};
use verity_targets::registry::{create as create_target, TargetOptions};
use verity_workloads::registry::{create as create_workload, WorkloadOptions};

const WORKERS: usize = 5;
const TXNS_PER_WORKER: usize = 200;

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Recorder {
    /// Numbers events in the order they are recorded; time is that order (a logical clock), which
    /// is sound for real-time order because an invocation is recorded before the client is called
    /// and a completion after it returns.
    fn record(
        &self,
        process: u64,
        kind: EventType,
        inv: &Invocation,
        value: verity_history::Value,
        error: Option<String>,
    ) {
        let mut events = self.0.lock().expect("recorder lock");
        let index = events.len() as u64;
        events.push(Event {
            index,
            time_ns: index,
            process: Process::Client(process),
            kind,
            f: inv.f.clone(),
            value,
            error,
        });
    }
}

async fn run(workload: &str, bugs: &[&str], seed: u64) -> History {
    let wl: Arc<dyn verity_workloads::Workload> =
        Arc::from(create_workload(workload, &WorkloadOptions::default()).expect("known workload"));
    let options = TargetOptions {
        bugs: bugs.iter().map(|s| s.to_string()).collect(),
        seed,
        workload: workload.into(),
        ..TargetOptions::default()
    };
    let target = create_target("memory", &options)
        .expect("known target")
        .expect("valid knobs");
    target.setup(&wl.setup()).await.expect("setup");
    let rec = Recorder::default();
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let (wl, rec, mut client) = (
            wl.clone(),
            rec.clone(),
            target.client(worker).await.expect("client"),
        );
        tasks.push(tokio::spawn(async move {
            let mut generator = wl.generator(worker, WORKERS);
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(worker as u64));
            let mut process = worker as u64;
            for _ in 0..TXNS_PER_WORKER {
                let inv = generator.next(&mut rng);
                rec.record(process, EventType::Invoke, &inv, inv.value.clone(), None);
                tokio::task::yield_now().await;
                let c = client.invoke(&inv).await;
                rec.record(process, c.kind, &inv, c.value, c.error);
                if c.kind == EventType::Info {
                    // A process whose op ended info never issues again.
                    process += WORKERS as u64;
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker task");
    }
    let mut client = target.client(WORKERS).await.expect("client");
    for inv in wl.final_reads() {
        let p = 1_000_000;
        rec.record(p, EventType::Invoke, &inv, inv.value.clone(), None);
        let c = client.invoke(&inv).await;
        rec.record(p, c.kind, &inv, c.value, c.error);
    }
    let events = rec.0.lock().expect("recorder lock").clone();
    History::new(events)
}

fn check(h: &History) -> Verdict {
    GraphChecker::default().check(h, &Budget::unlimited())
}

/// Runs 10 seeds; returns how many were caught (per `caught`) and the anomaly names seen.
async fn ten_seeds(
    workload: &str,
    bugs: &[&str],
    caught: impl Fn(&Verdict) -> bool,
) -> (usize, Vec<Vec<String>>) {
    let mut hits = 0;
    let mut all = Vec::new();
    for seed in 1..=10 {
        let h = run(workload, bugs, seed).await;
        let started = Instant::now();
        let v = check(&h);
        let took = started.elapsed();
        if caught(&v) {
            hits += 1;
        }
        eprintln!(
            "{workload} {bugs:?} seed {seed}: {} events, valid={:?}, anomalies={:?}, check {:?}",
            h.events.len(),
            v.valid,
            v.anomaly_counts,
            took
        );
        all.push(v.anomaly_types());
    }
    (hits, all)
}

fn has(v: &Verdict, base: &str) -> bool {
    v.anomaly_types().iter().any(|n| n == base)
}

#[tokio::test]
async fn correct_memory_store_is_valid_on_ten_of_ten_seeds() {
    for workload in ["ledger-append", "rw-register"] {
        let (hits, names) = ten_seeds(workload, &[], |v| v.valid == Validity::Valid).await;
        assert_eq!(hits, 10, "{workload}: {names:?}");
    }
}

#[tokio::test]
async fn read_committed_is_caught_as_g_single() {
    let (hits, names) =
        ten_seeds("ledger-append", &["read-committed"], |v| has(v, "G-single")).await;
    eprintln!("read-committed: G-single on {hits}/10");
    assert!(hits >= 9, "{names:?}");
    // And nothing read committed forbids.
    for n in names.iter().flatten() {
        assert!(
            ![
                "G0",
                "G1a",
                "G1b",
                "G1c",
                "incompatible-order",
                "duplicate-elements"
            ]
            .contains(&n.as_str()),
            "{n}"
        );
    }
}

#[tokio::test]
async fn snapshot_isolation_is_caught_as_g2_item() {
    let (hits, names) = ten_seeds("ledger-append", &["snapshot-isolation"], |v| {
        has(v, "G2-item")
    })
    .await;
    eprintln!("snapshot-isolation: G2-item on {hits}/10");
    assert!(hits >= 9, "{names:?}");
    // And nothing snapshot isolation forbids.
    for n in names.iter().flatten() {
        assert!(
            ![
                "G0",
                "G1a",
                "G1b",
                "G1c",
                "G-single",
                "G-nonadjacent",
                "lost-update"
            ]
            .contains(&n.as_str()),
            "{n}"
        );
    }
}

#[tokio::test]
async fn dirty_read_is_caught_as_g1a_or_g1b() {
    let (hits, names) = ten_seeds("ledger-append", &["dirty-read"], |v| {
        has(v, "G1a") || has(v, "G1b")
    })
    .await;
    eprintln!("dirty-read: G1a/G1b on {hits}/10");
    assert!(hits >= 9, "{names:?}");
}

#[tokio::test]
async fn rw_register_knobs_are_caught_too() {
    let (rc, _) = ten_seeds("rw-register", &["read-committed"], |v| {
        v.valid == Validity::Invalid
    })
    .await;
    let (si, _) = ten_seeds("rw-register", &["snapshot-isolation"], |v| {
        has(v, "G2-item")
    })
    .await;
    let (dirty, _) = ten_seeds("rw-register", &["dirty-read"], |v| {
        has(v, "G1a") || has(v, "G1b")
    })
    .await;
    eprintln!("rw-register: read-committed invalid {rc}/10, snapshot-isolation G2-item {si}/10, dirty-read G1a/G1b {dirty}/10");
    assert!(rc >= 9 && si >= 9 && dirty >= 9);
}
