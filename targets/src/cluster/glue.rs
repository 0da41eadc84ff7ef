//! Glue between the cluster (supervisor, links — from the `cluster` branch) and the nemesis (proxy
//! mesh, `NodeControl` — from the `nemesis` branch): the proxy mesh is the cluster's `Links`, and the
//! cluster target is the nemesis's `NodeControl` (its supervisor kills and restarts, its leader query
//! names the primary that `isolate-primary` and primary-aimed faults hit).
//!
//! NOT YET COMPILED ON THIS BRANCH: `links` and `supervisor` live on the `cluster` branch. After
//! merging both, add `pub mod glue;` to `cluster/mod.rs`. Verified to build and pass the end-to-end
//! test `tests/it/nemesis.rs` in a trial merge of the two branches.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;

use super::links::{Endpoint, Links};
use super::nemesis::{ControlError, NodeControl};
use super::proxy::{ProxyMesh, CLIENT};
use super::supervisor::Supervisor;
use super::target::ClusterTarget;

impl Links for ProxyMesh {
    fn dial(&self, from: &Endpoint, to: &str) -> SocketAddr {
        let src = match from {
            Endpoint::Client => CLIENT,
            Endpoint::Node(id) => id.as_str(),
        };
        self.addr(src, to)
            .expect("the mesh has a listener for every (endpoint, node) pair")
    }
}

#[async_trait]
impl NodeControl for Supervisor {
    fn pid(&self, node: &str) -> Option<u32> {
        Supervisor::pid(self, node)
    }
    async fn kill(&self, node: &str) -> Result<(), ControlError> {
        Supervisor::kill(self, node).map_err(Into::into)
    }
    async fn restart(&self, node: &str) -> Result<(), ControlError> {
        Supervisor::restart(self, node)
            .map(|_| ())
            .map_err(Into::into)
    }
}

/// The cluster as the nemesis controls it: processes through the supervisor, the primary through a
/// leader query.
pub struct ClusterControl(pub Arc<ClusterTarget>);

impl ClusterControl {
    fn supervisor(&self) -> Result<Arc<Supervisor>, ControlError> {
        self.0
            .supervisor()
            .ok_or_else(|| "the cluster has not started".into())
    }
}

#[async_trait]
impl NodeControl for ClusterControl {
    fn pid(&self, node: &str) -> Option<u32> {
        self.0.supervisor()?.pid(node)
    }
    async fn kill(&self, node: &str) -> Result<(), ControlError> {
        self.supervisor()?.kill(node).map_err(Into::into)
    }
    async fn restart(&self, node: &str) -> Result<(), ControlError> {
        self.supervisor()?
            .restart(node)
            .map(|_| ())
            .map_err(Into::into)
    }
    async fn primary(&self) -> Option<String> {
        self.0.leader().await
    }
}
