//! The servers a target starts from a system package — PostgreSQL, MariaDB, Redis, etcd — as the
//! fault layer's nodes: one [`ServerSet`] holds their names and loopback addresses, who dials whom
//! (the proxy mesh, once the controller installs it), the supervisor of their processes, and where
//! their logs and data go. It implements [`Nodes`], so every such target gets kill, restart, pause
//! and the node-state reads of the convergence checker the same way; the target supplies only how
//! to start its servers ([`ServerSet::start`]) and how to read one node's own state
//! ([`NodeStateReader`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use verity_history::Value;
use verity_nemesis::nodes::{ControlError, DirectLinks, Endpoint, Links, Nodes};
use verity_nemesis::process::{reserve_loopback_addrs, Supervisor};
use verity_nemesis::SupervisorError;

use crate::registry::{OptionSpec, TargetOptions};
use crate::TargetError;

pub mod package;

pub const REPLICAS: OptionSpec = OptionSpec {
    name: "replicas",
    about: "streaming replicas beside the primary, replicating through the proxy mesh",
    values: &[],
    required: false,
    default: Some("0"),
};
pub const READ_FROM: OptionSpec = OptionSpec {
    name: "read-from",
    about: "where read-only operations go",
    values: &["primary", "replica"],
    required: false,
    default: Some("primary"),
};
/// How long starting the servers may take.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything a target needs to start its servers.
pub struct StartPlan {
    /// Node names (`n1` the primary) and the loopback address each listens on.
    pub listen: BTreeMap<String, SocketAddr>,
    /// Who dials which address (a replica dials its primary through the proxy).
    pub links: Arc<dyn Links>,
    /// The private directory (owned by `user`) for data, sockets and configuration.
    pub data_dir: PathBuf,
    /// Where the servers' logs go (the run directory).
    pub log_dir: PathBuf,
    pub user: Option<(u32, u32)>,
    /// Where the supervisor records its processes for `verity heal`.
    pub registry: Option<PathBuf>,
}

/// How a target reads one node's own state, directly, for the convergence checker.
#[async_trait]
pub trait NodeStateReader: Send + Sync {
    /// `{"balances": […], "applied": […]}` (and `"store"` for transactional workloads) of the node
    /// reached at `addr`.
    async fn read(&self, node: &str, addr: SocketAddr) -> Result<Value, String>;

    /// The node that leads now, asked of the nodes themselves (`(name, client address)` each), for
    /// servers whose leader moves. `None`: no one could tell.
    async fn primary(&self, _nodes: &[(String, SocketAddr)]) -> Option<String> {
        None
    }
}

/// The servers of one target.
pub struct ServerSet {
    /// The target's name, for directories and messages.
    name: &'static str,
    listen: BTreeMap<String, SocketAddr>,
    links: Mutex<Arc<dyn Links>>,
    /// The ports, held from `new` until the servers start so no one else takes them.
    reserved: Mutex<Vec<TcpListener>>,
    supervisor: Mutex<Option<Arc<Supervisor>>>,
    /// Serialises starting and stopping.
    lifecycle: tokio::sync::Mutex<()>,
    log_dir: PathBuf,
    state_dir: Option<PathBuf>,
    /// The primary, when the target has one that never moves (`None`: ask nobody).
    primary: Option<String>,
    states: Mutex<Option<Arc<dyn NodeStateReader>>>,
    /// Where each node's peers connect, for servers that listen for peers apart (etcd).
    peers: BTreeMap<String, SocketAddr>,
    /// The servers resolve their peers' names each on its own (see
    /// [`Nodes::per_source_addresses`]).
    per_source_addresses: bool,
}

impl ServerSet {
    /// Picks `nodes` free loopback ports (nothing runs yet). Nodes are `n1`, `n2`, …; with
    /// `fixed_primary`, `n1` is the primary for the whole run.
    pub fn new(
        name: &'static str,
        nodes: usize,
        fixed_primary: bool,
        options: &TargetOptions,
    ) -> Result<ServerSet, TargetError> {
        let reserved = reserve_loopback_addrs(nodes)
            .map_err(|e| TargetError::Setup(format!("failed to find free loopback ports: {e}")))?;
        let listen: BTreeMap<String, SocketAddr> = (1..=nodes)
            .map(|i| format!("n{i}"))
            .zip(reserved.iter().map(|(a, _)| *a))
            .collect();
        let links: Arc<dyn Links> = Arc::new(DirectLinks::new(listen.clone()));
        let log_dir = options.dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("verity-{name}-{}", std::process::id()))
        });
        Ok(ServerSet {
            name,
            primary: fixed_primary.then(|| "n1".to_string()),
            listen,
            links: Mutex::new(links),
            reserved: Mutex::new(reserved.into_iter().map(|(_, l)| l).collect()),
            supervisor: Mutex::new(None),
            lifecycle: tokio::sync::Mutex::new(()),
            log_dir,
            state_dir: options.state_dir.clone(),
            states: Mutex::new(None),
            peers: BTreeMap::new(),
            per_source_addresses: false,
        })
    }

    /// Gives every node a second port for its peers (etcd listens for peers apart from clients),
    /// and has the proxy mesh give each source its own loopback address per destination (the
    /// servers name their peers by one advertised address each, resolved per server).
    pub fn with_peer_ports(mut self) -> Result<ServerSet, TargetError> {
        let reserved = reserve_loopback_addrs(self.listen.len())
            .map_err(|e| TargetError::Setup(format!("failed to find free loopback ports: {e}")))?;
        self.peers = self
            .listen
            .keys()
            .cloned()
            .zip(reserved.iter().map(|(a, _)| *a))
            .collect();
        self.reserved
            .lock()
            .extend(reserved.into_iter().map(|(_, l)| l));
        *self.links.lock() = Arc::new(DirectLinks {
            listen: self.listen.clone(),
            peers: self.peers.clone(),
        });
        self.per_source_addresses = true;
        Ok(self)
    }

    /// Where each node listens for its peers (empty unless [`ServerSet::with_peer_ports`]).
    pub fn peer_listen_addrs(&self) -> &BTreeMap<String, SocketAddr> {
        &self.peers
    }

    /// Where a client dials `node` (the node itself, or the proxy in front of it).
    pub fn client_addr(&self, node: &str) -> SocketAddr {
        self.links.lock().dial(&Endpoint::Client, node)
    }

    pub fn log_dir(&self) -> &std::path::Path {
        &self.log_dir
    }

    /// Installs how node states are read (without it, [`Nodes::states`] answers `None`).
    pub fn read_states_with(&self, reader: Arc<dyn NodeStateReader>) {
        *self.states.lock() = Some(reader);
    }

    /// Starts the servers once: a private directory owned by the servers' user, then `start`.
    /// On failure the directory goes again.
    pub async fn start<F, Fut>(&self, start: F) -> Result<(), TargetError>
    where
        F: FnOnce(StartPlan) -> Fut,
        Fut: Future<Output = Result<Arc<Supervisor>, TargetError>>,
    {
        let _lifecycle = self.lifecycle.lock().await;
        if self.supervisor.lock().is_some() {
            return Ok(());
        }
        let user = package::server_user()?;
        let data_dir = package::private_dir(&format!("verity-{}-", self.name), user)?;
        std::fs::create_dir_all(&self.log_dir).map_err(|e| {
            TargetError::Setup(format!("cannot create {}: {e}", self.log_dir.display()))
        })?;
        let plan = StartPlan {
            listen: self.listen.clone(),
            links: self.links.lock().clone(),
            data_dir: data_dir.clone(),
            log_dir: self.log_dir.clone(),
            user,
            registry: self
                .state_dir
                .as_ref()
                .map(|d| verity_nemesis::process::registry_path(d, self.name)),
        };
        // The ports are the servers' from here on.
        self.reserved.lock().clear();
        let started = tokio::time::timeout(STARTUP_TIMEOUT, start(plan)).await;
        let supervisor = match started {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let _ = std::fs::remove_dir_all(&data_dir);
                return Err(e);
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(&data_dir);
                return Err(TargetError::Setup(format!(
                    "the {} servers did not start within {STARTUP_TIMEOUT:?}; their logs are in {}",
                    self.name,
                    self.log_dir.display()
                )));
            }
        };
        supervisor.remove_on_cleanup(data_dir);
        *self.supervisor.lock() = Some(supervisor);
        Ok(())
    }

    /// Stops every server and removes their data (the logs stay).
    pub async fn stop(&self) -> Result<(), TargetError> {
        let _lifecycle = self.lifecycle.lock().await;
        let supervisor = self.supervisor.lock().take();
        if let Some(s) = supervisor {
            tokio::task::spawn_blocking(move || s.stop_all())
                .await
                .map_err(|e| TargetError::Setup(format!("stopping the servers failed: {e}")))?;
        }
        Ok(())
    }

    /// Runs a blocking supervisor action on `node` (a kill waits for the process group to go).
    async fn with_supervisor(
        &self,
        node: &str,
        action: impl FnOnce(&Supervisor, &str) -> Result<(), SupervisorError> + Send + 'static,
    ) -> Result<(), ControlError> {
        let s = self
            .supervisor
            .lock()
            .clone()
            .ok_or("the servers have not started")?;
        let node = node.to_string();
        tokio::task::spawn_blocking(move || action(&s, &node)).await??;
        Ok(())
    }
}

impl Drop for ServerSet {
    fn drop(&mut self) {
        if let Some(s) = self.supervisor.lock().take() {
            s.stop_all();
        }
    }
}

#[async_trait]
impl Nodes for ServerSet {
    fn names(&self) -> Vec<String> {
        self.listen.keys().cloned().collect()
    }

    fn listen_addrs(&self) -> BTreeMap<String, SocketAddr> {
        self.listen.clone()
    }

    fn peer_addrs(&self) -> Option<BTreeMap<String, SocketAddr>> {
        (!self.peers.is_empty()).then(|| self.peers.clone())
    }

    fn per_source_addresses(&self) -> bool {
        self.per_source_addresses
    }

    fn route_through(&self, links: Arc<dyn Links>) -> Result<(), ControlError> {
        if self.supervisor.lock().is_some() {
            return Err("links must be set before the servers start".into());
        }
        *self.links.lock() = links;
        Ok(())
    }

    fn pid(&self, node: &str) -> Option<u32> {
        self.supervisor.lock().as_ref()?.pid(node)
    }

    async fn kill(&self, node: &str) -> Result<(), ControlError> {
        self.with_supervisor(node, |s, n| s.kill(n)).await
    }

    async fn restart(&self, node: &str) -> Result<(), ControlError> {
        self.with_supervisor(node, |s, n| s.restart(n).map(|_| ()))
            .await
    }

    async fn primary(&self) -> Option<String> {
        if let Some(fixed) = &self.primary {
            return Some(fixed.clone());
        }
        let reader = self.states.lock().clone()?;
        let nodes: Vec<(String, SocketAddr)> = self
            .listen
            .keys()
            .map(|n| (n.clone(), self.client_addr(n)))
            .collect();
        reader.primary(&nodes).await
    }

    async fn states(&self) -> Option<Vec<(String, Result<Value, String>)>> {
        let reader = self.states.lock().clone()?;
        let mut out = Vec::new();
        for node in self.listen.keys() {
            let state = reader.read(node, self.client_addr(node)).await;
            out.push((node.clone(), state));
        }
        Some(out)
    }
}
