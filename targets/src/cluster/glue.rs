//! Glue between the cluster (supervisor, links — from the `cluster` branch) and the nemesis (proxy
//! mesh, `NodeControl` — from the `nemesis` branch): the proxy mesh is the cluster's `Links`, and the
//! supervisor is the nemesis's `NodeControl`.
//!
//! NOT YET COMPILED ON THIS BRANCH: `links` and `supervisor` live on the `cluster` branch. After
//! merging both, add `pub mod glue;` to `cluster/mod.rs`. Verified to build and pass the end-to-end
//! test `tests/it/nemesis.rs` in a trial merge of the two branches.

use std::net::SocketAddr;

use async_trait::async_trait;

use super::links::{Endpoint, Links};
use super::nemesis::{ControlError, NodeControl};
use super::proxy::{ProxyMesh, CLIENT};
use super::supervisor::Supervisor;

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
