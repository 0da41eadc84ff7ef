//! Process-level tests of the cluster target: real `verity node` processes on free loopback ports in
//! temporary directories, started, killed (-9), paused and stopped through the target's supervisor.
//! Every wait is a condition with a deadline; no test sleeps and hopes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;
use verity_history::{EventType, Invocation, Transfer, Value, F};
use verity_targets::cluster::{ClusterOptions, ClusterTarget};
use verity_targets::Target;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_verity"))
}

fn cluster(dir: &Path, bugs: &[&str]) -> ClusterTarget {
    let mut o = ClusterOptions::new(3, dir.to_path_buf(), 7);
    o.binary = Some(binary());
    o.bugs = bugs.iter().map(|b| b.to_string()).collect();
    ClusterTarget::new(o).expect("options are valid")
}

async fn eventually<T, Fut: Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Fut,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn setup() -> Invocation {
    Invocation {
        f: F::Setup,
        value: Value::map([("balances", Value::int_list([50, 50, 50]))]),
    }
}

fn transfer(id: u64) -> Invocation {
    Invocation {
        f: F::Transfer,
        value: Value::Transfer(Transfer {
            id,
            from: (id % 3) as u32,
            to: ((id + 1) % 3) as u32,
            amount: 1,
        }),
    }
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive: the supervisor reaps what it kills, so /proc/<pid> disappears.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

/// Applied ids of every node, once all three answer and agree.
async fn converged(t: &ClusterTarget) -> Option<Vec<i64>> {
    let states = t.node_states().await;
    let applied: Vec<Vec<i64>> = states
        .iter()
        .filter_map(|(_, s)| s.as_ref().ok()?.get("applied")?.as_i64_list())
        .collect();
    (applied.len() == 3 && applied.windows(2).all(|w| w[0] == w[1])).then(|| applied[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_starts_commits_converges_logs_and_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let t = cluster(dir.path(), &[]);
    assert_eq!(t.setup(&setup()).await.unwrap().kind, EventType::Ok);
    let pids = t.supervisor().unwrap().pids();
    assert_eq!(pids.len(), 3);
    let mut c = t.client(0).await.unwrap();
    for id in 1..=30 {
        assert_eq!(c.invoke(&transfer(id)).await.kind, EventType::Ok);
    }
    let applied = eventually("convergence", Duration::from_secs(10), || converged(&t)).await;
    assert_eq!(applied, (1..=30).collect::<Vec<i64>>());
    for n in ["n1", "n2", "n3"] {
        let log = std::fs::read_to_string(dir.path().join(format!("{n}.log"))).unwrap();
        assert!(log.contains("starting"), "{n}.log: {log}");
        assert!(dir.path().join(n).join("log.jsonl").exists());
    }
    t.teardown().await.unwrap();
    for pid in pids.values() {
        assert!(!alive(*pid), "node {pid} outlived teardown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_loses_nothing_acknowledged_and_the_restarted_node_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let t = cluster(dir.path(), &[]);
    t.setup(&setup()).await.unwrap();
    let mut c = t.client(0).await.unwrap();
    let mut acked = Vec::new();
    for id in 1..=20 {
        if c.invoke(&transfer(id)).await.kind == EventType::Ok {
            acked.push(id as i64);
        }
    }
    let leader = eventually("a leader", Duration::from_secs(10), || t.leader()).await;
    let sup = t.supervisor().unwrap();
    let old_pid = sup.pid(&leader).unwrap();
    sup.kill(&leader).unwrap();
    assert!(!alive(old_pid));
    for id in 21..=40 {
        if c.invoke(&transfer(id)).await.kind == EventType::Ok {
            acked.push(id as i64);
        }
    }
    let new_leader = eventually("a new leader", Duration::from_secs(10), || t.leader()).await;
    assert_ne!(new_leader, leader);
    sup.start(&leader).unwrap();
    let applied = eventually("convergence after restart", Duration::from_secs(15), || {
        converged(&t)
    })
    .await;
    for id in &acked {
        assert!(applied.contains(id), "acknowledged transfer {id} lost");
    }
    assert!(acked.len() >= 30, "only {} of 40 acknowledged", acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_is_stopped_the_rest_commit_and_it_catches_up_when_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let t = cluster(dir.path(), &[]);
    t.setup(&setup()).await.unwrap();
    let leader = eventually("a leader", Duration::from_secs(10), || t.leader()).await;
    let follower = t.node_ids().into_iter().find(|n| *n != leader).unwrap();
    let pid = t.supervisor().unwrap().pid(&follower).unwrap();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    eventually("state T", Duration::from_secs(5), || async {
        (proc_state(pid) == Some('T')).then_some(())
    })
    .await;
    let mut c = t.client(1).await.unwrap();
    let mut ok = 0;
    for id in 1..=20 {
        ok += (c.invoke(&transfer(id)).await.kind == EventType::Ok) as usize;
    }
    assert!(ok >= 15, "the majority kept committing ({ok}/20)");
    signal("-CONT");
    eventually("running again", Duration::from_secs(5), || async {
        (proc_state(pid) != Some('T')).then_some(())
    })
    .await;
    let applied = eventually("convergence after resume", Duration::from_secs(15), || {
        converged(&t)
    })
    .await;
    assert!(applied.len() >= ok);
}

/// Reads `node` directly with a short deadline: `Some(balances)` if it answered one.
async fn read_at(t: &ClusterTarget, node: &str) -> Option<Vec<i64>> {
    use verity_ledger::wire::{ClientOp, Outcome};
    let mut c = verity_ledger::ClusterClient::new(t.client_addrs(), 0, Duration::from_secs(1));
    match c.call(node, ClientOp::Read, Duration::from_secs(1)).await {
        Ok(Outcome::Ok { state: Some(s) }) => Some(s.balances),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_read_node_answers_from_local_state_when_cut_off_and_a_correct_one_does_not() {
    for (bugs, answers) in [(vec!["stale-read"], true), (vec![], false)] {
        let dir = tempfile::tempdir().unwrap();
        let t = cluster(dir.path(), &bugs);
        t.setup(&setup()).await.unwrap();
        let mut c = t.client(0).await.unwrap();
        assert_eq!(c.invoke(&transfer(1)).await.kind, EventType::Ok);
        let applied = eventually("convergence", Duration::from_secs(10), || converged(&t)).await;
        assert_eq!(applied, vec![1]);
        let sup = t.supervisor().unwrap();
        let lone = "n1";
        let others: Vec<u32> = ["n2", "n3"].iter().map(|n| sup.pid(n).unwrap()).collect();
        for pid in &others {
            assert!(Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status()
                .unwrap()
                .success());
        }
        // n1 cannot reach a majority: only local state could answer now, for a read and for a
        // read-only transaction alike.
        let got = read_at(&t, lone).await;
        let read_only = verity_ledger::wire::Txn {
            id: 1,
            mops: vec![verity_ledger::wire::Mop::R { key: 1 }],
        };
        let got_txn = txn_at(&t, lone, read_only).await;
        for pid in &others {
            assert!(Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status()
                .unwrap()
                .success());
        }
        assert_eq!(
            got_txn, answers,
            "stale-read={answers}: a read-only transaction"
        );
        match (answers, got) {
            (true, Some(b)) => assert_eq!(b, vec![50, 49, 51]),
            (false, None) => {}
            (a, g) => panic!("stale-read={a}: got {g:?}"),
        }
        t.teardown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_target_stops_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let t = cluster(dir.path(), &["no-dedupe"]);
    t.setup(&setup()).await.unwrap();
    let pids = t.supervisor().unwrap().pids();
    drop(t);
    for pid in pids.values() {
        assert!(!alive(*pid), "node {pid} outlived its target");
    }
}

#[test]
fn a_node_exits_when_its_parent_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .args([
            "node",
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:0",
            "--watch-stdin",
            "--data-dir",
        ])
        .arg(dir.path().join("n1"))
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Closing the pipe is what the harness's death looks like to the node.
    drop(child.stdin.take());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node outlived its parent's pipe"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_node_arguments_exit_254() {
    let out = Command::new(binary())
        .args(["node", "--id", "n1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
}

mod soak;

/// One transaction sent straight to `node` with a chosen id, as a retrying client would send it.
async fn txn_at(t: &ClusterTarget, node: &str, txn: verity_ledger::wire::Txn) -> bool {
    use verity_ledger::wire::{ClientOp, Outcome};
    let mut c = verity_ledger::ClusterClient::new(t.client_addrs(), 0, Duration::from_secs(2));
    matches!(
        c.call(node, ClientOp::Txn { txn }, Duration::from_secs(2))
            .await,
        Ok(Outcome::Committed { .. })
    )
}

/// Each node's store, once all three answer and agree.
async fn converged_store(t: &ClusterTarget) -> Option<String> {
    let states = t.node_states().await;
    let stores: Vec<String> = states
        .iter()
        .filter_map(|(_, s)| Some(s.as_ref().ok()?.get("store")?.to_string()))
        .collect();
    (stores.len() == 3 && stores.windows(2).all(|w| w[0] == w[1])).then(|| stores[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_replicate_and_a_retried_one_applies_once_unless_no_dedupe() {
    use verity_ledger::wire::{Mop, Txn};
    for (bugs, copies) in [(vec![], 1), (vec!["no-dedupe"], 2)] {
        let dir = tempfile::tempdir().unwrap();
        let t = cluster(dir.path(), &bugs);
        let setup = Invocation {
            f: F::Setup,
            value: Value::map([("key_stride", Value::Int(1000))]),
        };
        assert_eq!(t.setup(&setup).await.unwrap().kind, EventType::Ok);
        // Through the harness's client: a transaction's reads see the appends before it.
        let mut c = t.client(0).await.unwrap();
        let append =
            |v: i64| Value::List(vec![Value::from("append"), Value::Int(1), Value::Int(v)]);
        let read = Value::List(vec![Value::from("r"), Value::Int(1), Value::Null]);
        for v in 1..=3 {
            let done = c
                .invoke(&Invocation {
                    f: F::Txn,
                    value: Value::List(vec![read.clone(), append(v)]),
                })
                .await;
            assert_eq!(done.kind, EventType::Ok, "{done:?}");
            let mops = done.value.to_generic();
            let seen = mops.as_list().unwrap()[0].as_list().unwrap()[2].as_i64_list();
            assert_eq!(seen, Some((1..v).collect::<Vec<_>>()), "bugs {bugs:?}");
        }
        // The same transaction id twice, as after a lost reply.
        let leader = eventually("a leader", Duration::from_secs(10), || t.leader()).await;
        let retried = Txn {
            id: 99,
            mops: vec![Mop::Append { key: 2, value: 7 }],
        };
        assert!(txn_at(&t, &leader, retried.clone()).await);
        assert!(txn_at(&t, &leader, retried).await);
        let store = eventually("stores converge", Duration::from_secs(10), || {
            converged_store(&t)
        })
        .await;
        let expected = vec!["7"; copies].join(",");
        assert!(
            store.contains(&format!("\"2\":[{expected}]")),
            "bugs {bugs:?}: store {store}"
        );
        t.teardown().await.unwrap();
    }
}
