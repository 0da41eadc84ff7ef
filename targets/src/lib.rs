//! verity-targets: the [`Target`] and [`Client`] traits, and every ledger adapter.
//!
//! A target is the system under test. The controller asks it to set up a ledger, opens one [`Client`]
//! per worker, and sends each client invocations. Clients never return errors: every answer is a
//! completion — `ok`, `fail` (certainly did not happen) or `info` (may have happened). A new adapter is
//! one new module plus one line in [`registry`].

pub mod cluster;
pub mod decoders;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod exec;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub mod http_server;
#[cfg(feature = "mariadb")]
pub mod mariadb;
pub mod memory;
pub mod memory_txn;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod registry;
pub mod servers;
#[cfg(any(feature = "postgres", feature = "mariadb"))]
pub mod sql;

use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;
use verity_history::{Completion, Invocation};
use verity_nemesis::nodes::Nodes;

#[derive(Debug, Error)]
pub enum TargetError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Connect(String),
    #[error("unknown bug knob {bug:?} for target {target}: valid choices are {choices}")]
    UnknownBug {
        target: String,
        bug: String,
        choices: String,
    },
    #[error("target {target} does not support workload {workload}")]
    UnsupportedWorkload { target: String, workload: String },
    /// Target options that cannot go together: bad input.
    #[error("{0}")]
    BadOptions(String),
    /// What the target needs is not on this machine (a server binary): bad input, not a crash.
    #[error("{what} is not installed: {hint}")]
    Unavailable { what: String, hint: String },
}

/// One connection to the system under test, owned by one worker.
#[async_trait]
pub trait Client: Send {
    async fn invoke(&mut self, op: &Invocation) -> Completion;
}

/// The system under test.
#[async_trait]
pub trait Target: Send + Sync {
    fn name(&self) -> &'static str;

    /// Creates the initial state described by the workload's setup invocation (e.g. the accounts and
    /// their balances) and answers with the state as created.
    async fn setup(&self, init: &Invocation) -> Result<Completion, TargetError>;

    /// Opens a client for one worker.
    async fn client(&self, worker: usize) -> Result<Box<dyn Client>, TargetError>;

    /// Releases everything the target started.
    async fn teardown(&self) -> Result<(), TargetError> {
        Ok(())
    }

    /// The nodes the fault layer may break, for a target that runs processes; `None` for one that
    /// does not (an in-process ledger, a server reached by `--url`).
    fn nodes(self: Arc<Self>) -> Option<Arc<dyn Nodes>> {
        None
    }
}

/// An error with every cause it wraps, `a: b: c` (drivers often say only "error sending request").
/// The first 80 characters of a reply an adapter could not use, for the reason of an operation.
pub(crate) fn shorten(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text += &format!(": {more}");
        }
        source = s.source();
    }
    text
}
