//! What the fault layer needs from a target that runs processes: its nodes, and who dials whom.
//!
//! Jepsen keeps the database, the client, the nemesis and the network as separate protocols (`DB`,
//! `Kill`, `Pause`, `Primary`, `Net`), so that one nemesis serves every store. This is the same seam:
//! a target with nodes — verity's own replicated ledger, a PostgreSQL primary with its replicas, a
//! MariaDB pair — implements [`Nodes`], and the proxy mesh, the schedule and the executor act on it
//! without knowing what the nodes store.
//!
//! Links: every node listens on its own loopback port. Whoever talks to a node — a client or another
//! node — dials the address [`Links::dial`] gives for that directed link. Without a proxy that is the
//! node's own listen address ([`DirectLinks`]); with the proxy mesh it is the proxy's port for exactly
//! that (from, to) pair, so each directed link can be passed, dropped, delayed or thinned out on its
//! own. A store is configured with its peers' addresses when its processes start (a command line, a
//! `primary_conninfo`, a `CHANGE MASTER TO`), so the mesh must be listening, and the target routed
//! through it with [`Nodes::route_through`], before the nodes start; the mesh keeps its ports across
//! faults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use verity_history::Value;

/// Errors a [`Nodes`] implementation may return; any error type converts into it.
pub type ControlError = Box<dyn std::error::Error + Send + Sync>;

/// The dialling side of a link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// Any client of the harness (every worker, the setup and final reads, the convergence check).
    Client,
    Node(String),
}

/// Maps a directed link to the address its dialler must connect to.
pub trait Links: Send + Sync {
    /// The address `from` dials to reach node `to`. `to` is always one of the target's nodes.
    fn dial(&self, from: &Endpoint, to: &str) -> SocketAddr;

    /// The address every client dials for each node.
    fn client_addrs(&self, nodes: &[String]) -> BTreeMap<String, SocketAddr> {
        nodes
            .iter()
            .map(|n| (n.clone(), self.dial(&Endpoint::Client, n)))
            .collect()
    }
}

/// No proxy: every link dials the node directly.
#[derive(Debug, Clone)]
pub struct DirectLinks {
    pub listen: BTreeMap<String, SocketAddr>,
    /// Where peers dial a node, where that is not where clients do (empty: the same).
    pub peers: BTreeMap<String, SocketAddr>,
}

impl DirectLinks {
    pub fn new(listen: BTreeMap<String, SocketAddr>) -> DirectLinks {
        DirectLinks {
            listen,
            peers: BTreeMap::new(),
        }
    }
}

impl Links for DirectLinks {
    fn dial(&self, from: &Endpoint, to: &str) -> SocketAddr {
        if let (Endpoint::Node(_), Some(peer)) = (from, self.peers.get(to)) {
            return *peer;
        }
        *self
            .listen
            .get(to)
            .expect("links are only asked for the target's own nodes")
    }
}

/// The nodes of a target, as the fault layer acts on them.
///
/// Pause and resume are SIGSTOP and SIGCONT of the process group that [`Nodes::pid`] leads (a server
/// that forks, as PostgreSQL does, stops whole); kill and restart are the target's, since only it
/// knows how its node comes back (same data directory, same address, same log).
#[async_trait]
pub trait Nodes: Send + Sync {
    /// Node names, sorted (`n1`, `n2`, …).
    fn names(&self) -> Vec<String>;

    /// Where each node listens: what the proxy mesh forwards each link to.
    fn listen_addrs(&self) -> BTreeMap<String, SocketAddr>;

    /// Where each node's peers connect, for a store that listens for its peers apart from its
    /// clients (etcd's peer port); `None`: peers connect where clients do.
    fn peer_addrs(&self) -> Option<BTreeMap<String, SocketAddr>> {
        None
    }

    /// The store's members all dial a peer at one advertised address (etcd's peer URLs are the
    /// same for every member), which each member resolves on its own: the proxy mesh then gives
    /// each source its own loopback address on one port per destination (`127.0.<src>.<dst>`), so
    /// the same address reaches a different listener — its own link — from every member.
    fn per_source_addresses(&self) -> bool {
        false
    }

    /// Routes every link — client to node, node to node — through `links`. Only before the nodes
    /// start: a store is told its peers' addresses when it starts.
    fn route_through(&self, links: Arc<dyn Links>) -> Result<(), ControlError>;

    /// The pid of the node's running process (the leader of its process group), `None` while down.
    fn pid(&self, node: &str) -> Option<u32>;

    /// Kills the node's processes with SIGKILL and waits until they are gone.
    async fn kill(&self, node: &str) -> Result<(), ControlError>;

    /// Starts the node again on its data directory, address and log.
    async fn restart(&self, node: &str) -> Result<(), ControlError>;

    /// The node that is primary (leader) now, if the target has one and can tell. Faults aimed at
    /// the primary are resolved with it; without one they hit the first node.
    async fn primary(&self) -> Option<String> {
        None
    }

    /// Each node's own state, read without going through the others, for the convergence checker:
    /// `{"balances": […], "applied": […]}` (and `"store"` for transactional workloads). `None` when
    /// the target cannot read its nodes one by one.
    async fn states(&self) -> Option<Vec<(String, Result<Value, String>)>> {
        None
    }
}
