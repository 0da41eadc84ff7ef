//! `verity node`: one replica of the built-in replicated ledger, as the cluster target's supervisor
//! starts it. The arguments map one to one onto [`NodeConfig`]; everything else is in
//! `verity_ledger::node`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::Args;
use verity_ledger::{run_node, Bugs, NodeConfig};

#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// This node's name (e.g. n1).
    #[arg(long)]
    pub id: String,
    /// Address to accept clients and peers on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// A peer and the address to dial for it, as NAME=HOST:PORT (repeat per peer).
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(String, SocketAddr)>,
    /// Directory for the durable Raft state.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// A bug knob (repeatable): stale-read, early-ack, no-dedupe, split-brain.
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Exit when standard input closes (the harness holds it open while it lives).
    #[arg(long)]
    pub watch_stdin: bool,
    #[arg(long, default_value_t = 300)]
    pub election_timeout_min_ms: u64,
    #[arg(long, default_value_t = 600)]
    pub election_timeout_max_ms: u64,
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// Applied log entries between two snapshots of the ledger, after which the log is compacted
    /// (0: never).
    #[arg(long, default_value_t = verity_ledger::node::SNAPSHOT_EVERY)]
    pub snapshot_every: u64,
}

fn parse_peer(s: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=HOST:PORT, got {s:?}"))?;
    let addr = addr
        .parse()
        .map_err(|e| format!("bad address in {s:?}: {e}"))?;
    Ok((name.to_string(), addr))
}

impl NodeArgs {
    pub fn config(&self) -> anyhow::Result<NodeConfig> {
        let bugs = Bugs::parse(&self.bugs).map_err(|e| anyhow!(e))?;
        let mut peers = BTreeMap::new();
        for (name, addr) in &self.peers {
            if name == &self.id || peers.insert(name.clone(), *addr).is_some() {
                return Err(anyhow!("peer {name} given twice or equal to this node"));
            }
        }
        if self.election_timeout_min_ms == 0
            || self.election_timeout_min_ms > self.election_timeout_max_ms
        {
            return Err(anyhow!("election timeout range is empty"));
        }
        let mut c = NodeConfig::new(self.id.clone(), self.listen, self.data_dir.clone());
        c.peers = peers;
        c.bugs = bugs;
        c.seed = self.seed;
        c.election_timeout_min_ms = self.election_timeout_min_ms;
        c.election_timeout_max_ms = self.election_timeout_max_ms;
        c.heartbeat_ms = self.heartbeat_ms;
        c.snapshot_every = self.snapshot_every;
        Ok(c)
    }
}

/// Runs the node until it fails or (with `--watch-stdin`) its parent goes away.
pub fn run(args: &NodeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    let watch = args.watch_stdin;
    runtime.block_on(async move {
        let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
        if watch {
            // EOF (or an error) on stdin: the harness is gone; so are we. A plain thread, because
            // a blocking read of stdin is what it is.
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                let mut stdin = std::io::stdin();
                while let Ok(n) = std::io::Read::read(&mut stdin, &mut buf) {
                    if n == 0 {
                        break;
                    }
                }
                let _ = gone_tx.send(());
            });
        }
        let shutdown = async move {
            if watch {
                let _ = gone_rx.await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        run_node(config, shutdown).await.context("node failed")
    })
}
