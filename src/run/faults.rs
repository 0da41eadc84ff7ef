//! The fault side of a run against any target with nodes: the proxy mesh every link goes through, the
//! seeded fault schedule, the nemesis that executes it, and what happens after the main phase — heal
//! everything, wait out a recovery window, and read every node's own state until they agree.
//!
//! Healing is not left to the happy path: the nemesis holds a [`HealGuard`] from the moment it exists,
//! which heals synchronously on drop — at the end of the run, on an error, during a panic's unwinding
//! — and a state file records active faults so `verity heal` can resume paused nodes after a kill -9.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use verity_checkers::convergence::{ledgers_agree, node_state_event_value, HEAL_F, NODE_STATE_F};
use verity_history::jsonl::Recorder;
use verity_history::{Event, EventType, Process, Value, F};
use verity_nemesis::schedule::{schedule, Step};
use verity_nemesis::{
    state_file_path, Applied, FaultKind, HealGuard, Nemesis, Nodes, ProxyConfig, ProxyMesh, CLIENT,
};

use crate::clock::Clock;

/// How long node states are polled for agreement after the final reads.
const CONVERGENCE_DEADLINE: Duration = Duration::from_secs(10);
const CONVERGENCE_POLL: Duration = Duration::from_millis(250);

/// Where `verity run` keeps nemesis state files, under the store.
pub fn state_dir(store: &Path) -> std::path::PathBuf {
    store.join(".nemesis")
}

/// Starts the proxy mesh in front of the target's nodes and routes every link through it. Must run
/// before the nodes start.
pub async fn route_through_proxy(target: &dyn Nodes, seed: u64) -> anyhow::Result<Arc<ProxyMesh>> {
    let nodes: Vec<(String, Option<SocketAddr>)> = target
        .listen_addrs()
        .into_iter()
        .map(|(n, a)| (n, Some(a)))
        .collect();
    let config = ProxyConfig {
        per_source_addresses: target.per_source_addresses(),
        ..ProxyConfig::default()
    };
    let proxy = ProxyMesh::start(&[CLIENT], &nodes, config, seed)
        .await
        .context("cannot start the proxy mesh")?;
    for (node, addr) in target.peer_addrs().unwrap_or_default() {
        proxy
            .set_peer_upstream(&node, addr)
            .context("cannot point the proxy at a node's peer port")?;
    }
    let proxy = Arc::new(proxy);
    target
        .route_through(proxy.clone())
        .map_err(|e| anyhow::anyhow!("cannot route the target through the proxy: {e}"))?;
    Ok(proxy)
}

/// The running nemesis of one run.
pub struct Faults {
    pub nemesis: Arc<Nemesis>,
    pub steps: Vec<Step>,
    _guard: HealGuard,
}

impl Faults {
    pub fn new(
        target: Arc<dyn Nodes>,
        proxy: Arc<ProxyMesh>,
        store: &Path,
        kinds: &[FaultKind],
        seed: u64,
        interval: Duration,
        time_limit: Duration,
    ) -> anyhow::Result<Faults> {
        let dir = state_dir(store);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let nodes = target.names();
        let nemesis = Arc::new(Nemesis::new(
            Some(proxy),
            target,
            Some(state_file_path(&dir)),
        ));
        let guard = nemesis.guard();
        let steps = schedule(seed, kinds, interval, time_limit, &nodes);
        Ok(Faults {
            nemesis,
            steps,
            _guard: guard,
        })
    }

    /// Runs the schedule from `started`, recording every transition, until the task is aborted.
    pub fn spawn(
        &self,
        started: tokio::time::Instant,
        recorder: Recorder,
        clock: Clock,
    ) -> tokio::task::JoinHandle<()> {
        let nemesis = self.nemesis.clone();
        let steps = self.steps.clone();
        tokio::spawn(async move {
            nemesis
                .run(&steps, started, move |applied| {
                    tracing::info!(f = %applied.f, value = %applied.value, error = ?applied.error, "nemesis");
                    let _ = record_applied(&recorder, &clock, applied);
                    crate::failpoint::reached("fault");
                })
                .await;
        })
    }

    /// Heals every fault, recording each undo and then one `heal` event.
    pub async fn heal_all(&self, recorder: &Recorder, clock: &Clock) -> anyhow::Result<()> {
        for applied in self.nemesis.heal_all().await {
            tracing::info!(f = %applied.f, value = %applied.value, error = ?applied.error, "heal");
            record_applied(recorder, clock, applied)?;
        }
        record_nemesis(recorder, clock, F::from_name(HEAL_F), Value::Null, None)
    }
}

fn record_applied(recorder: &Recorder, clock: &Clock, applied: Applied) -> anyhow::Result<()> {
    record_nemesis(recorder, clock, applied.f, applied.value, applied.error)
}

fn record_nemesis(
    recorder: &Recorder,
    clock: &Clock,
    f: F,
    value: Value,
    error: Option<String>,
) -> anyhow::Result<()> {
    recorder
        .record(Event {
            index: 0,
            time_ns: clock.now_ns(),
            process: Process::Nemesis,
            kind: EventType::Info,
            f,
            value,
            error,
        })
        .context("cannot record the history")
}

/// Reads every node's own state in rounds, recording each, until all agree or the deadline passes.
/// Returns whether they agreed (`false` also when the target cannot read its nodes one by one).
pub async fn read_node_states(
    target: &dyn Nodes,
    recorder: &Recorder,
    clock: &Clock,
) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + CONVERGENCE_DEADLINE;
    let mut round = 0u64;
    loop {
        let Some(states) = target.states().await else {
            return Ok(false);
        };
        for (node, state) in &states {
            let value = node_state_event_value(node, round, state.as_ref().map_err(String::as_str));
            record_nemesis(recorder, clock, F::from_name(NODE_STATE_F), value, None)?;
        }
        let readable: Vec<&Value> = states.iter().filter_map(|(_, s)| s.as_ref().ok()).collect();
        if readable.len() == states.len() && ledgers_agree(&readable, true) {
            tracing::info!(round, "replicas agree");
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(round, "replicas did not agree before the deadline");
            return Ok(false);
        }
        round += 1;
        tokio::time::sleep(CONVERGENCE_POLL).await;
    }
}
