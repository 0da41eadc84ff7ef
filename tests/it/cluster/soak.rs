//! A soak of the cluster target: concurrent bank workers against 3 real node processes while a
//! small seeded fault loop kills (-9, then restarts) and pauses (SIGSTOP/SIGCONT) nodes — the
//! leader half of the time — then heal, final read, and a convergence wait. The history is judged by
//! a compact oracle that leans on the final read's application order (the same idea as
//! TigerBeetle's Jepsen checker: with a total order in hand, linearizability is a linear check):
//! lost, duplicate, phantom and failed-but-applied transfers; final balances against a replay; every
//! read must equal a prefix state of the application order that includes each transfer acknowledged
//! before the read began and excludes each transfer invoked after it ended; and every node must hold
//! the same ledger after the heal.
//!
//! This is a measuring tool, not the project's checkers (those live in `checkers/`). It is slow, so
//! it is ignored by default; run it with
//! `VERITY_SOAK_SECONDS=30 VERITY_SOAK_SEEDS=1,2,3 VERITY_SOAK_BUG=stale-read \
//!  cargo test --release --test it soak -- --ignored --nocapture`.
//! Other knobs: `VERITY_SOAK_FAULTS=0` (no faults), `VERITY_SOAK_SETTLE=1` (start the clock once
//! every replica has applied the setup), `VERITY_SOAK_KEEP=1` (keep data and node logs).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Mutex;
use tokio::time::Instant;
use verity_history::{EventType, Transfer, Value, F};
use verity_targets::cluster::{ClusterOptions, ClusterTarget};
use verity_targets::Target;
use verity_workloads::bank::{final_read, Bank};
use verity_workloads::Workload;

#[derive(Debug, Clone)]
enum What {
    Transfer(Transfer),
    Read(Vec<i64>),
}

#[derive(Debug, Clone)]
struct Rec {
    what: What,
    kind: EventType,
    start: Duration,
    end: Duration,
}

#[derive(Debug, Default)]
pub struct Report {
    pub ops: usize,
    pub ok: usize,
    pub info: usize,
    pub fail: usize,
    pub ops_per_s: f64,
    /// Anomaly name -> seconds into the run of its first occurrence.
    pub anomalies: BTreeMap<&'static str, f64>,
}

fn note(anomalies: &mut BTreeMap<&'static str, f64>, name: &'static str, at: Duration) {
    let t = at.as_secs_f64();
    let e = anomalies.entry(name).or_insert(t);
    *e = e.min(t);
}

fn signal(sig: &str, pid: u32) {
    // The node may have died meanwhile; nothing to do then.
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

async fn nemesis(t: Arc<ClusterTarget>, seed: u64, until: Instant) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65);
    let sup = t.supervisor().expect("started");
    let mut log = Vec::new();
    while Instant::now() + Duration::from_secs(4) < until {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1500..3000))).await;
        let target = match (rng.gen_bool(0.5), t.leader().await) {
            (true, Some(l)) => l,
            _ => t.node_ids()[rng.gen_range(0..3)].clone(),
        };
        let hold = Duration::from_millis(rng.gen_range(800..2500));
        if rng.gen_bool(0.5) {
            let Some(pid) = sup.pid(&target) else {
                continue;
            };
            log.push(format!("pause {target}"));
            signal("-STOP", pid);
            tokio::time::sleep(hold).await;
            signal("-CONT", pid);
        } else {
            log.push(format!("kill {target}"));
            let _ = sup.kill(&target);
            tokio::time::sleep(hold).await;
            let _ = sup.start(&target);
        }
    }
    log
}

pub async fn soak(seed: u64, bug: Option<&str>, seconds: u64, dir: PathBuf) -> Report {
    let mut o = ClusterOptions::new(3, dir, seed);
    o.binary = Some(PathBuf::from(env!("CARGO_BIN_EXE_verity")));
    o.bugs = bug.into_iter().map(String::from).collect();
    let t = Arc::new(ClusterTarget::new(o).expect("valid options"));
    let bank = Bank::default();
    let init = bank.setup();
    let initial = init
        .value
        .get("balances")
        .and_then(Value::as_i64_list)
        .expect("bank setup");
    t.setup(&init).await.expect("cluster sets up");
    if std::env::var("VERITY_SOAK_SETTLE").is_ok() {
        // Start the clock only once every replica has applied the setup, so that a stale read of
        // the empty pre-setup ledger does not decide how soon staleness is seen.
        let settle = Instant::now() + Duration::from_secs(10);
        while Instant::now() < settle {
            let states = t.node_states().await;
            let ready = states.iter().all(|(_, s)| {
                s.as_ref()
                    .ok()
                    .and_then(|v| v.get("balances")?.as_i64_list())
                    .is_some_and(|b| !b.is_empty())
            });
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(seconds);
    let recs = Arc::new(Mutex::new(Vec::<Rec>::new()));
    let workers = 6;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (t, recs) = (t.clone(), recs.clone());
        let mut gen = bank.generator(w, workers);
        tasks.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(w as u64));
            let mut c = t.client(w).await.expect("client");
            while Instant::now() < until {
                let op = gen.next(&mut rng);
                let start = t0.elapsed();
                let done = c.invoke(&op).await;
                let end = t0.elapsed();
                let what = match (&op.f, op.value.clone(), &done.value) {
                    (F::Transfer, Value::Transfer(x), _) => What::Transfer(x),
                    (F::Read, _, v) => What::Read(
                        v.get("balances")
                            .and_then(Value::as_i64_list)
                            .unwrap_or_default(),
                    ),
                    _ => continue,
                };
                recs.lock().expect("no worker panics holding it").push(Rec {
                    what,
                    kind: done.kind,
                    start,
                    end,
                });
            }
        }));
    }
    // VERITY_SOAK_FAULTS=0: no faults (a throughput baseline).
    let faults = std::env::var("VERITY_SOAK_FAULTS").map_or(true, |v| v != "0");
    let nemesis = tokio::spawn({
        let t = t.clone();
        async move {
            if faults {
                nemesis(t, seed, until).await
            } else {
                Vec::new()
            }
        }
    });
    for task in tasks {
        task.await.expect("worker");
    }
    let _faults = nemesis.await.expect("nemesis");
    // Heal: resume anything paused, start anything dead.
    let sup = t.supervisor().expect("started");
    for id in t.node_ids() {
        if let Some(pid) = sup.pid(&id) {
            signal("-CONT", pid);
        }
        let _ = sup.start(&id);
    }
    let main_s = t0.elapsed().as_secs_f64();
    let mut c = t.client(0).await.expect("client");
    let mut fin = None;
    for _ in 0..20 {
        let done = c.invoke(&final_read()).await;
        if done.kind == EventType::Ok {
            fin = Some(done.value);
            break;
        }
    }
    let fin = fin.expect("a final read within the recovery window");
    let applied: Vec<u64> = fin
        .get("applied")
        .and_then(Value::as_i64_list)
        .unwrap_or_default()
        .into_iter()
        .map(|i| i as u64)
        .collect();
    let balances = fin
        .get("balances")
        .and_then(Value::as_i64_list)
        .unwrap_or_default();
    let mut report = judge(
        &recs.lock().expect("workers are done"),
        &initial,
        &applied,
        &balances,
        t0.elapsed(),
    );
    // Convergence: every node's own state, equal within a bounded time.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let states: Vec<_> = t
            .node_states()
            .await
            .into_iter()
            .map(|(_, s)| s.ok())
            .collect();
        if states.iter().all(|s| s.is_some() && *s == states[0]) {
            break;
        }
        if Instant::now() > deadline {
            note(&mut report.anomalies, "divergent-replicas", t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report.ops_per_s = report.ops as f64 / main_s;
    t.teardown().await.expect("teardown");
    report
}

fn judge(
    recs: &[Rec],
    initial: &[i64],
    applied: &[u64],
    balances: &[i64],
    end: Duration,
) -> Report {
    let mut r = Report {
        ops: recs.len(),
        ..Report::default()
    };
    for rec in recs {
        match rec.kind {
            EventType::Ok => r.ok += 1,
            EventType::Fail => r.fail += 1,
            _ => r.info += 1,
        }
    }
    let mut transfers: HashMap<u64, &Rec> = HashMap::new();
    for rec in recs {
        if let What::Transfer(x) = rec.what {
            transfers.insert(x.id, rec);
        }
    }
    let mut pos: HashMap<u64, usize> = HashMap::new();
    for (i, id) in applied.iter().enumerate() {
        if pos.insert(*id, i).is_some() {
            let at = transfers.get(id).map_or(end, |t| t.end);
            note(&mut r.anomalies, "duplicate-transfer", at);
        }
        match transfers.get(id) {
            None => note(&mut r.anomalies, "phantom-transfer", end),
            Some(t) if t.kind == EventType::Fail => {
                note(&mut r.anomalies, "failed-transfer-applied", t.end)
            }
            _ => {}
        }
    }
    for (id, t) in &transfers {
        if t.kind == EventType::Ok && !pos.contains_key(id) {
            note(&mut r.anomalies, "lost-transfer", t.end);
        }
    }
    let states = prefix_states(&transfers, applied, initial);
    if let Some(last) = states.last() {
        if last != balances {
            note(&mut r.anomalies, "balance-mismatch", end);
        }
    }
    let mut index: HashMap<&[i64], Vec<usize>> = HashMap::new();
    for (k, s) in states.iter().enumerate() {
        index.entry(s.as_slice()).or_default().push(k);
    }
    // Must include: acknowledged before the read began (prefix max of position+1 by end time).
    // Must exclude: invoked after it ended (suffix min of position by start time).
    let mut by_end: Vec<(Duration, usize)> = Vec::new();
    let mut by_start: Vec<(Duration, usize)> = Vec::new();
    for (i, id) in applied.iter().enumerate() {
        if let Some(t) = transfers.get(id) {
            if t.kind == EventType::Ok {
                by_end.push((t.end, i + 1));
            }
            by_start.push((t.start, i));
        }
    }
    by_end.sort_unstable();
    by_start.sort_unstable();
    let prefix_max: Vec<usize> = by_end
        .iter()
        .scan(0, |m, &(_, p)| {
            *m = (*m).max(p);
            Some(*m)
        })
        .collect();
    let mut suffix_min = vec![applied.len(); by_start.len() + 1];
    for k in (0..by_start.len()).rev() {
        suffix_min[k] = suffix_min[k + 1].min(by_start[k].1);
    }
    for rec in recs {
        let What::Read(b) = &rec.what else { continue };
        if rec.kind != EventType::Ok {
            continue;
        }
        let before = by_end.partition_point(|(end, _)| *end < rec.start);
        let lo = if before == 0 {
            0
        } else {
            prefix_max[before - 1]
        };
        let after = by_start.partition_point(|(start, _)| *start <= rec.end);
        let hi = suffix_min[after];
        let ok = index
            .get(b.as_slice())
            .is_some_and(|ks| ks.iter().any(|&k| lo <= k && k <= hi));
        if !ok {
            note(&mut r.anomalies, "nonlinearizable", rec.end);
        }
    }
    r
}

/// The ledger after each prefix of the application order.
fn prefix_states(
    transfers: &HashMap<u64, &Rec>,
    applied: &[u64],
    initial: &[i64],
) -> Vec<Vec<i64>> {
    let mut s = initial.to_vec();
    let mut out = vec![s.clone()];
    for id in applied {
        if let Some(Rec {
            what: What::Transfer(x),
            ..
        }) = transfers.get(id)
        {
            s[x.from as usize] -= x.amount;
            s[x.to as usize] += x.amount;
        }
        out.push(s.clone());
    }
    out
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow soak; see the module documentation for the command"]
async fn soak_cluster() {
    let seconds: u64 = std::env::var("VERITY_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seeds: Vec<u64> = env_list("VERITY_SOAK_SEEDS", "1")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let bug = std::env::var("VERITY_SOAK_BUG")
        .ok()
        .filter(|b| !b.is_empty());
    let mut failures = Vec::new();
    for seed in seeds {
        let dir = tempfile::tempdir().unwrap();
        // VERITY_SOAK_KEEP=1 keeps the node logs and data for a post-mortem.
        let path = match std::env::var("VERITY_SOAK_KEEP") {
            Ok(_) => dir.keep(),
            Err(_) => dir.path().to_path_buf(),
        };
        println!("soak seed={seed} dir={}", path.display());
        let r = soak(seed, bug.as_deref(), seconds, path).await;
        println!(
            "soak seed={seed} bug={} seconds={seconds} ops={} ok={} fail={} info={} ops_per_s={:.0} anomalies={:?}",
            bug.as_deref().unwrap_or("none"),
            r.ops,
            r.ok,
            r.fail,
            r.info,
            r.ops_per_s,
            r.anomalies
        );
        if bug.is_none() && !r.anomalies.is_empty() {
            failures.push(seed);
        }
    }
    assert!(
        failures.is_empty(),
        "safe mode found anomalies on seeds {failures:?}"
    );
}
