//! The `cluster` target: N `verity node` processes on free loopback ports agreeing on one ledger by
//! Raft, each with its own data directory and log file.
//!
//! Lifecycle, as the controller and the fault layer see it:
//! 1. [`ClusterTarget::new`] picks the nodes' listen addresses (nothing runs yet);
//! 2. optionally [`Nodes::route_through`] installs the proxy mesh as the [`Links`] (who dials which
//!    address for each directed link);
//! 3. [`Target::setup`] starts the processes, waits for a leader and creates the accounts;
//! 4. workers get clients of the replicated ledger; the nemesis kills, restarts and pauses nodes
//!    through [`Nodes`];
//! 5. after the final heal, [`Nodes::states`] reads each node's own state for the convergence
//!    checker; [`Target::teardown`] (or dropping the target) stops every process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use verity_history::{Completion, Invocation, Value};
use verity_ledger::wire::{ClientOp, NodeId, NodeStatus, Outcome, Role, Stored};
use verity_ledger::{Bugs, ClusterClient};
use verity_nemesis::nodes::{ControlError, DirectLinks, Endpoint, Links, Nodes};
use verity_nemesis::process::{reserve_loopback_addrs, ProcessSpec, Supervisor};

use crate::{Client, Target, TargetError};

/// (name, what it does) of every bug knob: the replicated ledger's own.
pub use verity_ledger::BUGS;

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of nodes (>= 1).
    pub nodes: usize,
    /// Where data directories (`<dir>/<node>/`) and logs (`<dir>/<node>.log`) go.
    pub dir: PathBuf,
    pub bugs: Vec<String>,
    pub seed: u64,
    /// The `verity` binary to run as `verity node`; `None` means the running executable.
    pub binary: Option<PathBuf>,
    /// How long a client keeps trying one operation before it answers `info` (or `fail` if certain).
    pub op_timeout: Duration,
    /// How long setup may wait for the cluster to elect a leader and create the accounts.
    pub startup_timeout: Duration,
    /// Transactions address registers (rw-register) rather than journals (ledger-append).
    pub registers: bool,
    /// Where the supervisor records its processes for `verity heal` (`None`: nowhere).
    pub state_dir: Option<PathBuf>,
    /// Applied entries between two snapshots of a node's ledger (`verity node --snapshot-every`).
    pub snapshot_every: u64,
}

impl ClusterOptions {
    pub fn new(nodes: usize, dir: PathBuf, seed: u64) -> Self {
        ClusterOptions {
            nodes,
            dir,
            bugs: Vec::new(),
            seed,
            binary: None,
            op_timeout: Duration::from_secs(2),
            startup_timeout: Duration::from_secs(15),
            registers: false,
            state_dir: None,
            snapshot_every: verity_ledger::node::SNAPSHOT_EVERY,
        }
    }
}

pub struct ClusterTarget {
    options: ClusterOptions,
    bugs: Bugs,
    listen: BTreeMap<NodeId, SocketAddr>,
    links: Mutex<Arc<dyn Links>>,
    supervisor: Mutex<Option<Arc<Supervisor>>>,
    /// The nodes' ports, held from `new` until the nodes start so no one else takes them.
    reserved: Mutex<Vec<std::net::TcpListener>>,
}

impl ClusterTarget {
    /// Checks the options and picks a free loopback port per node. Starts nothing.
    pub fn new(options: ClusterOptions) -> Result<Self, TargetError> {
        let bugs = Bugs::parse(&options.bugs).map_err(|e| TargetError::UnknownBug {
            target: "cluster".into(),
            bug: e.bug,
            choices: e.choices,
        })?;
        if options.nodes == 0 {
            return Err(TargetError::Setup(
                "a cluster needs at least one node".into(),
            ));
        }
        let reserved = reserve_loopback_addrs(options.nodes)
            .map_err(|e| TargetError::Setup(format!("failed to find free loopback ports: {e}")))?;
        let listen: BTreeMap<NodeId, SocketAddr> = (1..=options.nodes)
            .map(|i| format!("n{i}"))
            .zip(reserved.iter().map(|(a, _)| *a))
            .collect();
        let reserved = reserved.into_iter().map(|(_, l)| l).collect();
        let links: Arc<dyn Links> = Arc::new(DirectLinks::new(listen.clone()));
        Ok(ClusterTarget {
            options,
            bugs,
            listen,
            links: Mutex::new(links),
            supervisor: Mutex::new(None),
            reserved: Mutex::new(reserved),
        })
    }

    /// Node names, sorted (`n1`, `n2`, …).
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.listen.keys().cloned().collect()
    }

    /// Where each node listens (what a proxy must forward to).
    pub fn listen_addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.listen.clone()
    }

    /// Routes every link through `links` (the proxy mesh). Only before the nodes start.
    pub fn route_through(&self, links: Arc<dyn Links>) -> Result<(), TargetError> {
        if self.supervisor.lock().is_some() {
            return Err(TargetError::Setup(
                "links must be set before the cluster starts".into(),
            ));
        }
        *self.links.lock() = links;
        Ok(())
    }

    pub fn links(&self) -> Arc<dyn Links> {
        self.links.lock().clone()
    }

    /// The address a client dials for each node.
    pub fn client_addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.links().client_addrs(&self.node_ids())
    }

    /// The process supervisor, once the cluster has started (kill, restart, pids).
    pub fn supervisor(&self) -> Option<Arc<Supervisor>> {
        self.supervisor.lock().clone()
    }

    /// The `verity node` arguments of node `id`, dialling its peers as `links` says.
    fn node_args(&self, id: &str, links: &dyn Links) -> Vec<String> {
        let listen = self.listen[id];
        let mut args = vec![
            "node".to_string(),
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            listen.to_string(),
            "--data-dir".into(),
            self.options.dir.join(id).display().to_string(),
            "--seed".into(),
            self.options.seed.to_string(),
            "--snapshot-every".into(),
            self.options.snapshot_every.to_string(),
            "--watch-stdin".into(),
        ];
        for peer in self.listen.keys().filter(|p| *p != id) {
            let addr = links.dial(&Endpoint::Node(id.to_string()), peer);
            args.push("--peer".into());
            args.push(format!("{peer}={addr}"));
        }
        for bug in self.bugs.names() {
            args.push("--bug".into());
            args.push(bug.into());
        }
        args
    }

    /// Starts every node process (idempotent).
    pub fn start(&self) -> Result<Arc<Supervisor>, TargetError> {
        let mut slot = self.supervisor.lock();
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let binary = match &self.options.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe().map_err(|e| {
                TargetError::Setup(format!("failed to find the verity binary: {e}"))
            })?,
        };
        std::fs::create_dir_all(&self.options.dir).map_err(|e| {
            TargetError::Setup(format!(
                "failed to create {}: {e}",
                self.options.dir.display()
            ))
        })?;
        let links = self.links();
        let specs = self
            .listen
            .keys()
            .map(|id| {
                let mut spec = ProcessSpec::new(
                    id.clone(),
                    binary.clone(),
                    self.options.dir.join(format!("{id}.log")),
                )
                .args(self.node_args(id, links.as_ref()));
                spec.watch_stdin = true;
                spec
            })
            .collect();
        let registry = self
            .options
            .state_dir
            .as_ref()
            .map(|d| verity_nemesis::process::registry_path(d, "cluster"));
        let supervisor = Arc::new(Supervisor::new(specs, registry));
        *slot = Some(supervisor.clone());
        self.reserved.lock().clear();
        supervisor
            .start_all()
            .map_err(|e| TargetError::Setup(e.to_string()))?;
        Ok(supervisor)
    }

    fn client_with_timeout(&self, worker: usize, op_timeout: Duration) -> ClusterClient {
        ClusterClient::new(self.client_addrs(), worker, op_timeout)
            .with_registers(self.options.registers)
    }

    /// One request to one node, directly (no redirects).
    async fn ask(&self, node: &str, op: ClientOp, timeout: Duration) -> Result<Outcome, String> {
        let mut c = self.client_with_timeout(0, timeout);
        c.call(node, op, timeout)
            .await
            .map_err(|e| format!("{e:?}"))
    }

    /// Each node's own applied state (`{"balances":[…],"applied":[…]}`, and `"store"` with every key
    /// once transactions ran), read without consensus.
    pub async fn node_states(&self) -> Vec<(String, Result<Value, String>)> {
        let mut out = Vec::new();
        for id in self.node_ids() {
            let r = match self
                .ask(&id, ClientOp::LocalState, Duration::from_secs(2))
                .await
            {
                Ok(Outcome::Ok { state: Some(s) }) => {
                    let applied = s.applied.unwrap_or_default().into_iter().map(|i| i as i64);
                    let mut entries = vec![
                        ("balances", Value::int_list(s.balances)),
                        ("applied", Value::int_list(applied)),
                    ];
                    if let Some(store) = s.store {
                        entries.push(("store", store_value(store)));
                    }
                    Ok(Value::map(entries))
                }
                Ok(other) => Err(format!("unexpected answer {other:?}")),
                Err(e) => Err(e),
            };
            out.push((id, r));
        }
        out
    }

    /// Each node's role, term, leader and indexes.
    pub async fn statuses(&self) -> Vec<(String, Result<NodeStatus, String>)> {
        let mut out = Vec::new();
        for id in self.node_ids() {
            let r = match self
                .ask(&id, ClientOp::Status, Duration::from_secs(1))
                .await
            {
                Ok(Outcome::Status(s)) => Ok(s),
                Ok(other) => Err(format!("unexpected answer {other:?}")),
                Err(e) => Err(e),
            };
            out.push((id, r));
        }
        out
    }

    /// The node that claims leadership in the highest term, if any answers.
    pub async fn leader(&self) -> Option<NodeId> {
        self.statuses()
            .await
            .into_iter()
            .filter_map(|(_, s)| s.ok())
            .filter(|s| s.role == Role::Leader)
            .max_by_key(|s| s.term)
            .map(|s| s.node)
    }
}

/// A node's store as a history value: `{"<key>": [journal…] or register, …}`.
fn store_value(store: Vec<(i64, Stored)>) -> Value {
    Value::map(store.into_iter().map(|(k, v)| {
        let v = match v {
            Stored::Journal(j) => Value::int_list(j),
            Stored::Register(r) => Value::Int(r),
        };
        (k.to_string(), v)
    }))
}

#[async_trait]
impl Target for ClusterTarget {
    fn name(&self) -> &'static str {
        "cluster"
    }

    async fn setup(&self, init: &Invocation) -> Result<Completion, TargetError> {
        self.start()?;
        let mut c = self.client_with_timeout(0, self.options.startup_timeout);
        let done = c.invoke(init).await;
        match done.kind {
            verity_history::EventType::Ok => Ok(done),
            _ => Err(TargetError::Setup(format!(
                "the cluster did not create the accounts within {:?}: {}",
                self.options.startup_timeout,
                done.error.unwrap_or_default()
            ))),
        }
    }

    async fn client(&self, worker: usize) -> Result<Box<dyn Client>, TargetError> {
        Ok(Box::new(LedgerClient(
            self.client_with_timeout(worker, self.options.op_timeout),
        )))
    }

    fn nodes(self: Arc<Self>) -> Option<Arc<dyn Nodes>> {
        Some(self)
    }

    async fn teardown(&self) -> Result<(), TargetError> {
        if let Some(s) = self.supervisor() {
            s.stop_all();
        }
        Ok(())
    }
}

/// A worker's client: the replicated ledger's own.
struct LedgerClient(ClusterClient);

#[async_trait]
impl Client for LedgerClient {
    async fn invoke(&mut self, op: &Invocation) -> Completion {
        self.0.invoke(op).await
    }
}

/// The cluster as the fault layer acts on it: processes through the supervisor, the primary
/// through a leader query, each replica's state by a local read.
#[async_trait]
impl Nodes for ClusterTarget {
    fn names(&self) -> Vec<String> {
        self.node_ids()
    }
    fn listen_addrs(&self) -> BTreeMap<String, SocketAddr> {
        self.listen.clone()
    }
    fn route_through(&self, links: Arc<dyn Links>) -> Result<(), ControlError> {
        ClusterTarget::route_through(self, links).map_err(Into::into)
    }
    fn pid(&self, node: &str) -> Option<u32> {
        self.supervisor()?.pid(node)
    }
    async fn kill(&self, node: &str) -> Result<(), ControlError> {
        let s = self.supervisor().ok_or("the cluster has not started")?;
        s.kill(node).map_err(Into::into)
    }
    async fn restart(&self, node: &str) -> Result<(), ControlError> {
        let s = self.supervisor().ok_or("the cluster has not started")?;
        s.restart(node).map(|_| ()).map_err(Into::into)
    }
    async fn primary(&self) -> Option<String> {
        self.leader().await
    }
    async fn states(&self) -> Option<Vec<(String, Result<Value, String>)>> {
        Some(self.node_states().await)
    }
}

impl Drop for ClusterTarget {
    fn drop(&mut self) {
        if let Some(s) = self.supervisor.lock().take() {
            s.stop_all();
        }
    }
}
