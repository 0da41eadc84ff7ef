//! verity-ledger: the built-in replicated ledger that `verity node` runs.
//!
//! Replicas agree on one ledger — bank transfers, and transactions over journals and registers
//! (ledger-append, rw-register) — by Raft over TCP (JSON lines), fsync their log before
//! acknowledging, and serve linearizable reads and transactions through the log; bug knobs make
//! them unsafe in the ways real systems are. One concept per file: [`wire`] (protocol), [`raft`]
//! (consensus core, sans-I/O), [`storage`] (durable term/vote/log), [`ledger`] (state machine),
//! [`node`] (one replica's event loop and TCP server), [`client`] (the harness's client), [`bugs`].
//!
//! The crate knows nothing of the harness: the `cluster` target of verity-targets starts these
//! nodes, and the fault layer (verity-nemesis) breaks the links between them.

pub mod bugs;
pub mod client;
pub mod journal;
pub mod ledger;
pub mod node;
pub mod raft;
pub mod storage;
pub mod wire;

pub use bugs::{Bugs, UnknownBug, BUGS};
pub use client::ClusterClient;
pub use node::{run_node, NodeConfig, NodeError};
pub use wire::NodeId;
