//! Replicas run in-process (each [`run_node`] a task; "kill" aborts it, which drops everything not
//! fsynced exactly like a crash) and are driven through the real TCP protocol by the real client.
//! Every wait is a condition polled against a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use verity_history::{EventType, Invocation, Transfer, Value, F};
use verity_ledger::wire::{ClientOp, Outcome, Role, Xfer};
use verity_ledger::{run_node, Bugs, ClusterClient, NodeConfig};

struct TestCluster {
    configs: BTreeMap<String, NodeConfig>,
    running: BTreeMap<String, JoinHandle<()>>,
    listen: BTreeMap<String, std::net::SocketAddr>,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    fn new(n: usize, bugs: &[&str]) -> TestCluster {
        TestCluster::with_snapshots(n, bugs, verity_ledger::node::SNAPSHOT_EVERY)
    }

    fn with_snapshots(n: usize, bugs: &[&str], snapshot_every: u64) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        let addrs: Vec<std::net::SocketAddr> = (0..n)
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            })
            .collect();
        let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let listen: BTreeMap<String, _> = ids.iter().cloned().zip(addrs).collect();
        let bugs = Bugs::parse(bugs).unwrap();
        let configs = ids
            .iter()
            .map(|id| {
                let mut c = NodeConfig::new(id.clone(), listen[id], dir.path().join(id));
                c.peers = listen
                    .iter()
                    .filter(|(p, _)| *p != id)
                    .map(|(p, a)| (p.clone(), *a))
                    .collect();
                c.bugs = bugs;
                c.seed = 42;
                c.snapshot_every = snapshot_every;
                (id.clone(), c)
            })
            .collect();
        let mut t = TestCluster {
            configs,
            running: BTreeMap::new(),
            listen,
            _dir: dir,
        };
        for id in ids {
            t.start(&id);
        }
        t
    }

    fn start(&mut self, id: &str) {
        let config = self.configs[id].clone();
        let handle = tokio::spawn(async move {
            run_node(config, std::future::pending())
                .await
                .expect("node runs");
        });
        self.running.insert(id.to_string(), handle);
    }

    async fn kill(&mut self, id: &str) {
        if let Some(h) = self.running.remove(id) {
            h.abort();
            let _ = h.await;
        }
    }

    fn client(&self, worker: usize) -> ClusterClient {
        ClusterClient::new(self.listen.clone(), worker, Duration::from_secs(3))
    }

    async fn ask(&self, node: &str, op: ClientOp) -> Option<Outcome> {
        self.client(0)
            .call(node, op, Duration::from_millis(500))
            .await
            .ok()
    }

    async fn leader(&self) -> Option<String> {
        for id in self.running.keys() {
            if let Some(Outcome::Status(s)) = self.ask(id, ClientOp::Status).await {
                if s.role == Role::Leader {
                    return Some(s.node);
                }
            }
        }
        None
    }

    async fn local_applied(&self, node: &str) -> Option<Vec<u64>> {
        match self.ask(node, ClientOp::LocalState).await {
            Some(Outcome::Ok { state: Some(s) }) => s.applied,
            _ => None,
        }
    }
}

/// Polls `f` until it yields `Some`, or panics at the deadline.
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The snapshot files in a node's data directory, and the first line of its log.
fn snapshot_files(dir: &std::path::Path) -> (Vec<String>, String) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snapshot-"))
        .collect();
    names.sort();
    let log = std::fs::read_to_string(dir.join("log.jsonl")).unwrap();
    (names, log.lines().next().unwrap_or("").to_string())
}

/// A node of the three-node test cluster other than `leader`.
fn a_follower(leader: &str) -> String {
    let other = ["n1", "n2", "n3"].into_iter().find(|n| *n != leader);
    other.expect("three nodes").to_string()
}

/// The applied transfer ids a final read returned.
fn applied_ids(fin: &verity_history::Completion) -> Vec<u64> {
    let ids = fin.value.get("applied").unwrap().as_i64_list().unwrap();
    ids.into_iter().map(|i| i as u64).collect()
}

fn setup(balances: Vec<i64>) -> Invocation {
    Invocation {
        f: F::Setup,
        value: Value::map([("balances", Value::int_list(balances))]),
    }
}

fn transfer(id: u64, from: u32, to: u32, amount: i64) -> Invocation {
    Invocation {
        f: F::Transfer,
        value: Value::Transfer(Transfer {
            id,
            from,
            to,
            amount,
        }),
    }
}

fn final_read() -> Invocation {
    Invocation {
        f: F::Read,
        value: Value::map([("final", Value::Bool(true))]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_is_elected_transfers_commit_and_replicas_converge() {
    let t = TestCluster::new(3, &[]);
    eventually("a leader", Duration::from_secs(10), || t.leader()).await;
    let mut c = t.client(0);
    assert_eq!(c.invoke(&setup(vec![10, 10, 10])).await.kind, EventType::Ok);
    for id in 1..=20u64 {
        let done = c
            .invoke(&transfer(id, (id % 3) as u32, ((id + 1) % 3) as u32, 1))
            .await;
        assert_eq!(done.kind, EventType::Ok, "{done:?}");
    }
    let short = c.invoke(&transfer(99, 0, 1, 1000)).await;
    assert_eq!(
        (short.kind, short.error.as_deref()),
        (EventType::Fail, Some("insufficient-funds"))
    );
    let fin = c.invoke(&final_read()).await;
    let applied = fin.value.get("applied").unwrap().as_i64_list().unwrap();
    assert_eq!(applied, (1..=20).collect::<Vec<i64>>());
    assert_eq!(
        fin.value
            .get("balances")
            .unwrap()
            .as_i64_list()
            .unwrap()
            .iter()
            .sum::<i64>(),
        30
    );
    let expected: Vec<u64> = (1..=20).collect();
    for id in ["n1", "n2", "n3"] {
        let e = expected.clone();
        eventually("replica convergence", Duration::from_secs(5), || async {
            (t.local_applied(id).await == Some(e.clone())).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_no_acknowledged_transfer_and_it_catches_up_after_restart() {
    let mut t = TestCluster::new(3, &[]);
    let mut c = t.client(1);
    assert_eq!(c.invoke(&setup(vec![100, 100])).await.kind, EventType::Ok);
    let mut acked = Vec::new();
    for id in 1..=10u64 {
        if c.invoke(&transfer(id, 0, 1, 1)).await.kind == EventType::Ok {
            acked.push(id);
        }
    }
    assert_eq!(acked.len(), 10);
    let old = eventually("a leader", Duration::from_secs(10), || t.leader()).await;
    t.kill(&old).await;
    // The survivors elect a new leader and keep going.
    for id in 11..=20u64 {
        let done = c.invoke(&transfer(id, 1, 0, 1)).await;
        if done.kind == EventType::Ok {
            acked.push(id);
        }
    }
    assert!(acked.len() > 10, "the majority kept accepting transfers");
    t.start(&old);
    let fin = c.invoke(&final_read()).await;
    assert_eq!(fin.kind, EventType::Ok);
    let applied = applied_ids(&fin);
    for id in &acked {
        assert!(
            applied.contains(id),
            "acknowledged transfer {id} lost: {applied:?}"
        );
    }
    eventually(
        "the restarted node to catch up",
        Duration::from_secs(10),
        || async { (t.local_applied(&old).await == Some(applied.clone())).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_read_node_serves_its_local_state_and_a_correct_one_refuses() {
    for (bugs, serves) in [(vec!["stale-read"], true), (vec![], false)] {
        let mut t = TestCluster::new(3, &bugs);
        let mut c = t.client(0);
        assert_eq!(c.invoke(&setup(vec![5, 5])).await.kind, EventType::Ok);
        assert_eq!(c.invoke(&transfer(1, 0, 1, 2)).await.kind, EventType::Ok);
        let leader = eventually("a leader", Duration::from_secs(10), || t.leader()).await;
        let follower = a_follower(&leader);
        eventually("the follower to apply", Duration::from_secs(5), || async {
            (t.local_applied(&follower).await == Some(vec![1])).then_some(())
        })
        .await;
        // Cut the follower off from everyone: it can no longer know what the cluster decides.
        for other in ["n1", "n2", "n3"].into_iter().filter(|n| *n != follower) {
            t.kill(other).await;
        }
        let answer = t.ask(&follower, ClientOp::Read).await;
        match (serves, answer) {
            (true, Some(Outcome::Ok { state: Some(s) })) => assert_eq!(s.balances, vec![3, 7]),
            (false, Some(Outcome::NotLeader { .. })) => {}
            (s, other) => panic!("stale-read={s}: unexpected answer {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_transfer_id_applies_once_unless_no_dedupe() {
    for (bugs, expected) in [(vec![], vec![7u64]), (vec!["no-dedupe"], vec![7, 7])] {
        let t = TestCluster::new(1, &bugs);
        let mut c = t.client(0);
        assert_eq!(c.invoke(&setup(vec![5, 5])).await.kind, EventType::Ok);
        let op = ClientOp::Transfer {
            transfer: Xfer {
                id: 7,
                from: 0,
                to: 1,
                amount: 1,
            },
        };
        for _ in 0..2 {
            assert!(matches!(
                c.run(&op, Duration::from_secs(3)).await,
                Ok(Outcome::Ok { .. })
            ));
        }
        assert_eq!(t.local_applied("n1").await, Some(expected));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_a_majority_acks_only_with_early_ack_or_split_brain() {
    for (bugs, acks) in [
        (vec![], false),
        (vec!["early-ack"], true),
        (vec!["split-brain"], true),
    ] {
        let mut t = TestCluster::new(3, &bugs);
        let mut c = t.client(0);
        assert_eq!(c.invoke(&setup(vec![5, 5])).await.kind, EventType::Ok);
        let leader = eventually("a leader", Duration::from_secs(10), || t.leader()).await;
        for other in ["n1", "n2", "n3"].into_iter().filter(|n| *n != leader) {
            t.kill(other).await;
        }
        let op = ClientOp::Transfer {
            transfer: Xfer {
                id: 1,
                from: 0,
                to: 1,
                amount: 1,
            },
        };
        // Straight to the old leader, as a client that knew it would do.
        let answer = c.call(&leader, op, Duration::from_secs(2)).await;
        let acked = matches!(answer, Ok(Outcome::Ok { .. }));
        assert_eq!(acked, acks, "bugs {bugs:?}: {answer:?}");
    }
}

/// With a snapshot every 10 entries the leader compacts its log while a follower is down, so the
/// follower can only catch up from the leader's snapshot; then every node is killed at once and
/// restarts from its own snapshot plus the log after it, losing nothing acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_compacted_log_installs_the_snapshot_and_all_restart_from_theirs() {
    let mut t = TestCluster::with_snapshots(3, &[], 10);
    let mut c = t.client(2);
    assert_eq!(c.invoke(&setup(vec![100, 100])).await.kind, EventType::Ok);
    let leader = eventually("a leader", Duration::from_secs(10), || t.leader()).await;
    let behind = a_follower(&leader);
    t.kill(&behind).await;
    let mut acked = Vec::new();
    for id in 1..=60u64 {
        if c.invoke(&transfer(id, (id % 2) as u32, ((id + 1) % 2) as u32, 1))
            .await
            .kind
            == EventType::Ok
        {
            acked.push(id);
        }
    }
    assert!(acked.len() >= 50, "the majority kept accepting: {acked:?}");
    let dirs: BTreeMap<String, _> = t
        .configs
        .iter()
        .map(|(id, c)| (id.clone(), c.data_dir.clone()))
        .collect();
    let dir = |id: &str| dirs[id].clone();
    let leader_now = eventually("a leader", Duration::from_secs(10), || t.leader()).await;
    let (snaps, header) = snapshot_files(&dir(&leader_now));
    assert_eq!(snaps.len(), 1, "one snapshot kept: {snaps:?}");
    assert!(header.starts_with(r#"{"snapshot":{"index":"#), "{header}");
    assert!(!header.contains(r#""index":0"#), "{header}");

    t.start(&behind);
    let fin = c.invoke(&final_read()).await;
    assert_eq!(fin.kind, EventType::Ok);
    let applied = applied_ids(&fin);
    for id in &acked {
        assert!(applied.contains(id), "acknowledged transfer {id} lost");
    }
    eventually(
        "the follower to catch up",
        Duration::from_secs(10),
        || async { (t.local_applied(&behind).await == Some(applied.clone())).then_some(()) },
    )
    .await;
    let (snaps, header) = snapshot_files(&dir(&behind));
    assert_eq!(
        snaps.len(),
        1,
        "the follower holds the snapshot it installed"
    );
    assert!(header.starts_with(r#"{"snapshot":"#), "{header}");

    for id in ["n1", "n2", "n3"] {
        t.kill(id).await;
    }
    for id in ["n1", "n2", "n3"] {
        t.start(id);
    }
    let after = c.invoke(&final_read()).await;
    assert_eq!(after.kind, EventType::Ok, "{after:?}");
    let again = applied_ids(&after);
    assert_eq!(
        again, applied,
        "the restart from snapshots changed the ledger"
    );
    let balances = after.value.get("balances").unwrap().as_i64_list().unwrap();
    assert_eq!(balances.iter().sum::<i64>(), 200);
    for id in ["n1", "n2", "n3"] {
        eventually(
            "every replica to converge",
            Duration::from_secs(10),
            || async { (t.local_applied(id).await == Some(again.clone())).then_some(()) },
        )
        .await;
    }
}
