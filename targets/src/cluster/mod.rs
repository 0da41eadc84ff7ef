//! The built-in replicated ledger and the `cluster` target that runs it.
//!
//! `verity node` processes replicate the bank ledger with Raft over TCP (JSON lines), fsync their log
//! before acknowledging, and serve linearizable reads through the log; bug knobs make them unsafe in
//! the ways real systems are. One concept per file: [`wire`] (protocol), [`raft`] (consensus core,
//! sans-I/O), [`storage`] (durable term/vote/log), [`ledger`] (state machine), [`node`] (one replica's
//! event loop and TCP server), [`client`] (the harness's client), [`links`] (who dials which address:
//! the seam to the nemesis's proxy), [`supervisor`] (processes), [`target`] (the `Target`), [`bugs`].

pub mod bugs;
pub mod client;
pub mod ledger;
pub mod links;
pub mod node;
pub mod raft;
pub mod storage;
pub mod supervisor;
pub mod target;
pub mod wire;

pub use bugs::{Bugs, BUGS};
pub use client::ClusterClient;
pub use links::{DirectLinks, Endpoint, Links};
pub use node::{run_node, NodeConfig, NodeError};
pub use supervisor::{NodeSpec, Supervisor, SupervisorError};
pub use target::{ClusterOptions, ClusterTarget};
pub use wire::NodeId;
