//! Who dials which address: the seam between the cluster and the nemesis's TCP proxy mesh.
//!
//! Every node listens on its own loopback port. Whoever talks to a node — a client or another node —
//! dials the address [`Links::dial`] gives for that directed link. Without a proxy that is the node's
//! own listen address ([`DirectLinks`]); with the proxy mesh it is the proxy's port for exactly that
//! (from, to) pair, so the proxy can pass, drop, delay or thin out each directed link on its own.
//! Node-to-node dial addresses are fixed when a node process starts (they are on its command line),
//! so the proxy must be listening before the cluster starts and keep its ports across faults.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::wire::NodeId;

/// The dialling side of a link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// Any client of the harness (every worker, the setup and final reads, the convergence check).
    Client,
    Node(NodeId),
}

/// Maps a directed link to the address its dialler must connect to.
pub trait Links: Send + Sync {
    /// The address `from` dials to reach node `to`. `to` is always one of the cluster's nodes.
    fn dial(&self, from: &Endpoint, to: &str) -> SocketAddr;
}

/// No proxy: every link dials the node directly.
#[derive(Debug, Clone)]
pub struct DirectLinks {
    pub listen: BTreeMap<NodeId, SocketAddr>,
}

impl Links for DirectLinks {
    fn dial(&self, _from: &Endpoint, to: &str) -> SocketAddr {
        *self
            .listen
            .get(to)
            .expect("links are only asked for the cluster's own nodes")
    }
}
