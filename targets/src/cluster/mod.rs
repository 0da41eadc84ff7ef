//! The built-in replicated ledger and the `cluster` target that runs it.
//!
//! `verity node` processes replicate the ledger — bank transfers, and transactions over journals and
//! registers (ledger-append, rw-register) — with Raft over TCP (JSON lines), fsync their log before
//! acknowledging, and serve linearizable reads and transactions through the log; bug knobs make them unsafe in
//! the ways real systems are. One concept per file: [`wire`] (protocol), [`raft`] (consensus core,
//! sans-I/O), [`storage`] (durable term/vote/log), [`ledger`] (state machine), [`node`] (one replica's
//! event loop and TCP server), [`client`] (the harness's client), [`links`] (who dials which address:
//! the seam to the nemesis's proxy), [`supervisor`] (processes), [`target`] (the `Target`), [`bugs`]; and the harness side: [`proxy`] (the TCP proxy mesh every link goes
//! through), [`faults`], [`schedule`] (the seeded fault schedule), [`nemesis`] (executes it), [`glue`]
//! (the proxy as the cluster's links, the supervisor as the nemesis's node control).

pub mod bugs;
pub mod client;
pub mod faults;
pub mod glue;
pub mod ledger;
pub mod links;
pub mod nemesis;
pub mod node;
pub mod proxy;
pub mod raft;
pub mod schedule;
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
