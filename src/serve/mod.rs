//! `verity serve`: a small web server over a store of runs — an index of every run with its verdict,
//! each run's report and files, downloads, and two runs side by side.
//!
//! It only reads the store. Like `serve-ledger`, it prints where it listens on its first line of
//! output (`serving <store> at http://ADDR/`), so a script can start it on port 0, and serves until
//! interrupted. Pages are server-rendered HTML with inline CSS and work without JavaScript.

mod archive;
mod catalog;
mod compare;
mod files;
mod latency;
mod pages;
mod routes;
mod safe_path;
mod url;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

pub use latency::{latency_quantiles, Quantiles};

use crate::exit::{Failure, Outcome};

#[derive(Debug, Clone, Args)]
#[command(after_help = "Routes:\n  \
/                          every run, newest first, with its verdict; ?verdict=…&target=… filter it\n  \
/runs/<id>/                the files of a run (report.html, history.jsonl, logs, …)\n  \
/download/<id>.tar.zst     the whole run directory, as one archive\n  \
/compare?a=<id>&b=<id>     two runs side by side: verdicts, anomalies, throughput, latency\n  \
/api/runs, /api/runs/<id>, /api/compare?a=&b=   the same as JSON\n\n\
A run id is the run's directory relative to the store, e.g. memory-bank/20261201T101010. \
Nothing outside the store is ever served. Ctrl-C stops the server.")]
pub struct ServeArgs {
    /// The store to serve: the directory `verity run --store` writes runs into.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
    /// Address to listen on; port 0 picks a free one (printed on the first line). Listening on
    /// anything but loopback shows every history and log to the network (a warning says so).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
}

pub fn run(args: ServeArgs) -> Result<Outcome, Failure> {
    let catalog = catalog::Catalog::open(&args.store).map_err(Failure::bad_input)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(catalog, args.bind))?;
    Ok(Outcome::Done)
}

async fn serve(catalog: catalog::Catalog, bind: SocketAddr) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| bind_failure(bind, e))?;
    let addr = listener
        .local_addr()
        .context("cannot read the address it listens on")?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: listening on {addr}, not a loopback address: anyone who can reach it can \
             read every run of {}",
            catalog.root().display()
        );
    }
    println!("serving {} at http://{addr}/", catalog.root().display());
    eprintln!("verity serve: Ctrl-C stops it");
    let app = routes::router(Arc::new(routes::AppState { catalog }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the server failed")?;
    Ok(())
}

/// An address that is taken, not ours, or not allowed is the caller's to change: bad input (254).
fn bind_failure(bind: SocketAddr, e: std::io::Error) -> Failure {
    use std::io::ErrorKind;
    let hint = match e.kind() {
        ErrorKind::AddrInUse => {
            "the address is already in use: pick another port with --bind, or port 0 for a free one"
        }
        ErrorKind::AddrNotAvailable => "no interface of this machine has that address",
        ErrorKind::PermissionDenied => {
            "not allowed to listen there (ports below 1024 need privileges)"
        }
        _ => return Failure::Harness(anyhow::anyhow!("cannot listen on {bind}: {e}")),
    };
    Failure::bad_input(format!("cannot listen on {bind}: {hint}"))
}
