//! `verity serve-ledger`: the reference server of verity's HTTP ledger protocol
//! (`docs/protocols/http.md`), with the memory target — and its bug knobs — behind it.
//!
//! It prints the address it listens on as its first line of output (`listening on
//! http://127.0.0.1:PORT`), so a script can start it on port 0 and read where it went, and serves
//! until interrupted.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use verity_targets::http_server::{self, Misbehave, ServerOptions};
use verity_targets::registry::TARGETS;
use verity_targets::TargetError;

use crate::exit::{Failure, Outcome};

#[derive(Debug, Clone, Args)]
pub struct ServeLedgerArgs {
    /// Address to listen on; port 0 picks a free one (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: SocketAddr,
    /// The workload it serves (bank, ledger-append or rw-register).
    #[arg(long, default_value = "bank")]
    pub workload: String,
    /// Make the ledger wrong on purpose, as `verity run --target memory --bug` does (repeatable).
    #[arg(long = "bug", value_name = "KNOB")]
    pub bugs: Vec<String>,
    /// Seed of the ledger's own random choices (lost replies, restarts of `lose-acked`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Answer badly on purpose, after doing what was asked: truncated, wrong-type, wrong-id,
    /// error-500 or hang — to see what a client must survive.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Misbehave::NAMES))]
    pub misbehave: Option<String>,
    /// With --misbehave: break every N-th answer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub every: u64,
}

pub fn run(args: ServeLedgerArgs) -> Result<Outcome, Failure> {
    let memory = TARGETS
        .get("memory")
        .map_err(|e| Failure::Harness(anyhow::anyhow!("{e}")))?;
    let knobs = (memory.bugs)(&args.workload);
    if let Some(b) = args
        .bugs
        .iter()
        .find(|b| !knobs.iter().any(|(n, _)| n == b))
    {
        let names: Vec<&str> = knobs.iter().map(|(n, _)| *n).collect();
        return Err(Failure::bad_input(format!(
            "unknown bug knob {b:?} with workload {}: valid choices are {}",
            args.workload,
            names.join(", ")
        )));
    }
    let options = ServerOptions {
        workload: args.workload.clone(),
        bugs: args.bugs.clone(),
        seed: args.seed,
        misbehave: args
            .misbehave
            .as_deref()
            .and_then(Misbehave::parse)
            .map(|m| (m, args.every)),
    };
    http_server::reference_target(&options).map_err(bad_or_harness)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (listener, addr) = http_server::bind(args.bind).await.map_err(bad_or_harness)?;
        println!("listening on http://{addr}");
        eprintln!(
            "verity serve-ledger: workload {}, bugs [{}]; Ctrl-C stops it",
            args.workload,
            args.bugs.join(", ")
        );
        tokio::select! {
            served = http_server::serve(listener, options) => served.map_err(bad_or_harness),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    Ok(Outcome::Done)
}

fn bad_or_harness(e: TargetError) -> Failure {
    match e {
        TargetError::BadOptions(_) | TargetError::UnknownBug { .. } => {
            Failure::bad_input(e.to_string())
        }
        other => Failure::Harness(anyhow::anyhow!("{other}")),
    }
}
