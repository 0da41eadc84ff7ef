//! The command line: clap definitions and dispatch to the subcommands.
//!
//! The contract is the design's: `run`, `check`, `list` (and more as capabilities land). Parse errors
//! exit 254 (bad arguments), not clap's default 2, which would read as "unknown" to a CI script.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::exit::{Failure, Outcome};

#[derive(Debug, Parser)]
#[command(
    name = "verity",
    version,
    about = "A Jepsen-style consistency test harness for ledgers",
    long_about = "verity drives concurrent money-transfer workloads against a ledger, records every \
operation in a durable history, and checks that history for lost, duplicated and phantom money, \
stale reads and transactional anomalies.\n\nExit codes: 0 valid, 1 invalid (an anomaly was found), \
2 unknown (the checkers could not decide), 254 bad arguments or input, 255 the harness failed."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workload against a target, record the history, and check it.
    Run(RunArgs),
    /// Check a stored run directory or a history file again, offline.
    Check(CheckArgs),
    /// List every target, workload, bug knob and checker, one per line.
    List,
    /// Undo the faults (paused nodes) that a killed run left behind.
    Heal(crate::heal::HealArgs),
    /// One replica of the built-in replicated ledger (the harness starts these itself).
    Node(crate::node_cmd::NodeArgs),
    /// Measure the harness's own speed (controller throughput, check throughput).
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The system under test (see `verity list`): by default the built-in 3-node replicated ledger.
    #[arg(long, default_value = "cluster")]
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
    /// Default: 3s for the cluster (its client retries through a leader election, as a real
    /// client would), 1s otherwise.
    #[arg(long, value_parser = parse_duration)]
    pub op_timeout: Option<Duration>,
    /// Where run directories are stored.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
    /// Comma-separated checkers to run instead of the workload's default plan.
    #[arg(long, value_delimiter = ',')]
    pub checker: Vec<String>,
    /// Number of nodes of the cluster target.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub nodes: u32,
    /// Faults to inject, comma-separated: partition, pause, kill, delay, loss, or none
    /// (default for the cluster: partition,pause,kill; other targets: none).
    #[arg(long)]
    pub nemesis: Option<String>,
    /// Mean time between faults; each fault lasts about as long.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub nemesis_interval: Duration,
    /// After the final heal, how long the cluster gets to recover before the final reads.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub recovery: Duration,
    /// Number of accounts in the bank.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub accounts: u32,
    /// Fraction of transfers that touch only two hot accounts (0..1), to raise contention.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub hot: f64,
    /// Hide the progress bar even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub budget: BudgetArgs,
}

impl RunArgs {
    /// `--op-timeout`, or the target's default.
    pub fn op_timeout(&self) -> Duration {
        self.op_timeout.unwrap_or(if self.target == "cluster" {
            CLUSTER_OP_TIMEOUT
        } else {
            OP_TIMEOUT
        })
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

/// The default `--op-timeout`.
pub const OP_TIMEOUT: Duration = Duration::from_secs(1);
/// The default `--op-timeout` of the cluster: long enough for a client to find the new leader after a
/// leader fails (an election takes 0.3–1.5 s), which is when retried requests happen.
pub const CLUSTER_OP_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// A run directory (holding history.jsonl) or a history file.
    pub path: PathBuf,
    /// Format of a history file; guessed from the extension when omitted.
    #[arg(long, value_parser = ["jsonl", "edn"])]
    pub format: Option<String>,
    /// Comma-separated checkers to run instead of the default plan.
    #[arg(long, value_delimiter = ',')]
    pub checker: Vec<String>,
    /// Model of the linearizability checker (see `verity list`); alone, it checks linearizability only.
    #[arg(long)]
    pub model: Option<String>,
    /// Initial value of a register model, as JSON (e.g. 0 or null); 0 when omitted.
    #[arg(long, value_parser = parse_json_value)]
    pub initial: Option<verity_history::Value>,
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// Limits on checking; a checker that runs out answers `unknown` with the cause.
#[derive(Debug, Clone, Args)]
pub struct BudgetArgs {
    /// Wall-clock limit of the checks, e.g. 5m; a checker that runs out answers `unknown`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub check_time_limit: Duration,
    /// Memory a checker's search may hold, in MiB.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(16..=1 << 20))]
    pub check_memory_mib: u64,
}

impl CheckArgs {
    pub fn settings(&self) -> Result<crate::plan::CheckSettings, Failure> {
        Ok(crate::plan::CheckSettings {
            checkers: self.checker.clone(),
            options: verity_checkers::registry::CheckerOptions {
                model: self.model.clone(),
                initial: self.initial.clone(),
            },
            time_limit: Some(self.budget.check_time_limit),
            memory_mib: Some(self.budget.check_memory_mib),
        })
    }
}

fn parse_json_value(s: &str) -> Result<verity_history::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("{s:?} is not a JSON value: {e}"))
}

/// Parses a duration: `10s`, `2m`, `1m30s`, `500ms`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(s)
        .map_err(|_| format!("malformed duration {s:?}: expected e.g. 30s, 2m, 1m30s or 500ms"))
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a fraction between 0 and 1")),
    }
}

pub fn dispatch() -> Result<Outcome, Failure> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return Ok(Outcome::Done);
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return Err(Failure::bad_input("a subcommand is required"));
            }
            // One line that names the problem; clap's own text carries the valid choices.
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ");
            let hint: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("possible values") || l.contains("tip:"))
                .map(str::trim)
                .collect();
            let msg = if hint.is_empty() {
                first.to_string()
            } else {
                format!("{first} ({})", hint.join("; "))
            };
            return Err(Failure::bad_input(msg));
        }
    };
    match cli.command {
        Command::Run(args) => crate::controller::run(args),
        Command::Check(args) => crate::check::run(args),
        Command::Bench(args) => crate::bench::run(args),
        Command::Heal(args) => crate::heal::run(args),
        Command::Node(args) => crate::node_cmd::run(&args)
            .map(|()| Outcome::Done)
            .map_err(Failure::Harness),
        Command::List => {
            crate::list::print();
            Ok(Outcome::Done)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_or_explain() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        let e = parse_duration("ten").unwrap_err();
        assert!(e.contains("malformed duration") && e.contains("30s"), "{e}");
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
