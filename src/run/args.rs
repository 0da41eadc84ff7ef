//! The arguments of `verity run`: what to run against, for how long, under which faults, and the
//! target options that only some targets take.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use verity_targets::registry::{TargetEntry, TARGETS};

use crate::args::{parse_duration, parse_fraction, BudgetArgs};
use crate::exit::Failure;

/// The target of `verity run` when none is given: the built-in replicated ledger, which needs
/// nothing installed and has nodes to fault.
pub const DEFAULT_TARGET: &str = "cluster";

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The system under test (see `verity list`): by default the built-in 3-node replicated ledger.
    #[arg(long, default_value = DEFAULT_TARGET)]
    pub target: String,
    /// What the clients do (see `verity list`).
    #[arg(long, default_value = "bank")]
    pub workload: String,
    /// Make the target wrong on purpose; repeat for several knobs (see `verity list`).
    #[arg(long = "bug", value_name = "KNOB")]
    pub bugs: Vec<String>,
    /// How long the main phase runs, e.g. 10s, 2m, 500ms.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Number of concurrent client workers.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Target rate of operations per second over all workers; 0 runs as fast as possible.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Stop the main phase after this many operations in all (0 = only the time limit stops it).
    #[arg(long, default_value_t = 0)]
    pub ops: u64,
    /// Seed of every random choice; a random one is drawn and printed when omitted.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long a client operation may take before it is recorded as `info` (indeterminate).
    /// Default: the target's (see `verity list`): 3s for the cluster, whose client retries
    /// through a leader election as a real client would.
    #[arg(long, value_parser = parse_duration)]
    pub op_timeout: Option<Duration>,
    /// Where run directories are stored.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
    /// Comma-separated checkers to run instead of the workload's default plan.
    #[arg(long, value_delimiter = ',')]
    pub checker: Vec<String>,
    /// Faults to inject, comma-separated: partition, pause, kill, delay, loss, or none. Default: the
    /// target's (see `verity list`; none for a target without nodes).
    #[arg(long)]
    pub nemesis: Option<String>,
    /// Mean time between faults; each fault lasts about as long.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub nemesis_interval: Duration,
    /// After the final heal, how long a target with nodes gets to recover before the final reads.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub recovery: Duration,
    /// Number of accounts in the bank.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub accounts: u32,
    /// Fraction of transfers that touch only two hot accounts (0..1), to raise contention.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub hot: f64,
    /// Run again what a stored run ran: the seed and every option recorded in its run.json. Only
    /// --json, --junit, --quiet, --compress and the check budget may be given beside it. Prints what differs
    /// from the verity version and machine that recorded the run, and whether the verdict is the
    /// same (a concurrent run takes its own interleaving: the seed fixes every choice verity makes,
    /// not the target's timing).
    #[arg(long, value_name = "RUN_DIR")]
    pub replay: Option<PathBuf>,
    /// Hide the progress bar even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    /// Write the history zstd-compressed, as history.jsonl.zst (a few tens of bytes per operation
    /// instead of about 240; every reader takes both forms). Default: on at --rate 0, off otherwise;
    /// --compress=false writes plain history.jsonl at any rate.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub compress: Option<bool>,
    /// For benchmarks only: write no hash chain (history.chain), so the run cannot be verified.
    #[arg(long, hide = true)]
    pub no_chain: bool,
    #[command(flatten)]
    pub target_options: TargetArgs,
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[command(flatten)]
    pub output: crate::args::OutputArgs,
}

/// Options that only some targets take; a target refuses the ones it does not (see `verity list`).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Target options")]
pub struct TargetArgs {
    /// Number of nodes (cluster: replicas agreeing by Raft; etcd: members; default 3).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub nodes: Option<u32>,
    /// Connect to a server that is already running instead of starting one (postgres, mariadb,
    /// redis), or the ledger's base URL (http, required).
    #[arg(long)]
    pub url: Option<String>,
    /// Transaction isolation level: read-committed, repeatable-read or serializable (postgres,
    /// mariadb; default: the server's own, read-committed and repeatable-read).
    #[arg(long)]
    pub isolation: Option<String>,
    /// How a transfer is written. postgres, mariadb: atomic (the database computes; default),
    /// read-modify-write (the client computes: the classic lost update) or select-for-update (row
    /// locks first). redis: plain (GET, then SET: racy on purpose), watch-multi (optimistic
    /// transaction) or lua (one server-side script; default).
    #[arg(long)]
    pub style: Option<String>,
    /// Replicas beside the primary (postgres, mariadb, redis), replicating through the proxy mesh so the
    /// nemesis can cut and delay them. Default: 0.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=8))]
    pub replicas: Option<u32>,
    /// The adapter program of `--target exec`: a shell command speaking JSON lines on stdin and
    /// stdout (docs/protocols/exec.md), e.g. "python3 examples/exec/sqlite_ledger.py".
    #[arg(long)]
    pub cmd: Option<String>,
    /// How etcd serves reads: linearizable (through the leader's read index; default) or
    /// serializable (any member answers from its own state).
    #[arg(long)]
    pub read: Option<String>,
    /// Where read-only operations go: primary or replica (as behind a reader endpoint). The final
    /// read always goes to the primary. Default: primary.
    #[arg(long)]
    pub read_from: Option<String>,
}

impl TargetArgs {
    /// The options given, by name as on the command line (without dashes).
    pub fn params(&self) -> BTreeMap<String, String> {
        let given = [
            ("nodes", self.nodes.map(|n| n.to_string())),
            ("url", self.url.clone()),
            ("isolation", self.isolation.clone()),
            ("style", self.style.clone()),
            ("replicas", self.replicas.map(|n| n.to_string())),
            ("read-from", self.read_from.clone()),
            ("cmd", self.cmd.clone()),
            ("read", self.read.clone()),
        ];
        given
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect()
    }
}

impl RunArgs {
    /// The registry entry of `--target`.
    pub fn target_entry(&self) -> Result<&'static TargetEntry, Failure> {
        TARGETS
            .get(&self.target)
            .map_err(|e| Failure::bad_input(e.to_string()))
    }

    /// `--op-timeout`, or the target's default.
    pub fn op_timeout(&self) -> Duration {
        self.op_timeout.unwrap_or_else(|| {
            TARGETS
                .get(&self.target)
                .map_or(Duration::from_secs(1), |t| t.op_timeout)
        })
    }

    /// Whether the history is written compressed: `--compress`, or by default at `--rate 0`.
    pub fn compress(&self) -> bool {
        self.compress.unwrap_or(self.rate == 0)
    }

    pub fn check_settings(&self) -> crate::plan::CheckSettings {
        crate::plan::CheckSettings {
            checkers: self.checker.clone(),
            options: Default::default(),
            time_limit: Some(self.budget.check_time_limit),
            memory_mib: Some(self.budget.check_memory_mib),
        }
    }
}
