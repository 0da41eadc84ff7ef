//! `verity bench`: verity's own performance, measured the same way every time, as a Markdown
//! section for docs/benchmarks.md.
//!
//! Two benchmarks share the command. Without `--checkers`, the harness's ([`harness`]): controller
//! throughput against the memory target and the check of a million-event bank history. With
//! `--checkers`, the checkers at their limits ([`checkers`]): issue #14's histories, generated from
//! a seed, each checked end to end by `verity check` as a child process, with adya beside it on the
//! transaction histories. Both repeat every measurement and report median and spread, because this
//! machine is shared and noisy.

mod checkers;
mod harness;
mod kinds;
mod measure;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::exit::{Failure, Outcome};

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  verity bench                                  # the harness: \
controller and check throughput\n  verity bench --checkers --repeat 3            # every history, full \
size, adya beside\n  verity bench --checkers --scale 0.01 --repeat 1   # a quick look at \
every kind\n  verity bench --checkers --only list-append --keep /tmp/h   # one family; keep the files"
)]
pub struct BenchArgs {
    /// How many times each measurement is repeated [default: 5, or 3 with --checkers].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: Option<u32>,
    /// Main-phase length of each controller run.
    #[arg(long, default_value = "5s", value_parser = crate::args::parse_duration)]
    pub time_limit: Duration,
    /// Size of the history the check benchmark reads, in events.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Concurrency of the controller runs.
    #[arg(long, default_value_t = 10)]
    pub concurrency: u32,
    #[command(flatten)]
    pub checkers: CheckersArgs,
}

/// The checkers benchmark's options.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Checkers benchmark")]
pub struct CheckersArgs {
    /// Benchmark the checkers instead of the harness: large cas-register, bank, Jepsen-format bank
    /// and list-append histories (docs/benchmarks.md, "Checkers at their limits"), generated from --seed as JSONL and EDN, each checked by
    /// `verity check` in a child process (reading the file included), timed and its peak resident
    /// memory taken; adya checks the list-append histories in the same run, alternated with verity.
    #[arg(long)]
    pub checkers: bool,
    /// Size of every history as a fraction of the (1 = 100,000 register ops, 1,000,000
    /// transactions, …; 0.01 for a quick run). No history is made smaller than 20 operations.
    #[arg(long, default_value_t = 1.0, requires = "checkers", value_parser = parse_scale)]
    pub scale: f64,
    /// Only these kinds or families (comma-separated): cas, bank, jepsen-bank, list-append, or a
    /// kind's name as the table prints it (e.g. bank-100k-5-info1).
    #[arg(long, value_delimiter = ',', requires = "checkers")]
    pub only: Vec<String>,
    /// The formats each history is checked in (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "jsonl,edn", value_parser = ["jsonl", "edn"], requires = "checkers")]
    pub formats: Vec<String>,
    /// Seed of every generated history.
    #[arg(long, default_value_t = 42, requires = "checkers")]
    pub seed: u64,
    /// `--check-time-limit` of every `verity check`; a check that runs into it is reported as
    /// "unknown after N s" and not repeated (its time is the limit).
    #[arg(long, default_value = "60s", value_parser = crate::args::parse_duration, requires = "checkers")]
    pub check_time_limit: Duration,
    /// `--check-memory-mib` of every `verity check`: the memory a checker's search may hold.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(16..=1 << 20), requires = "checkers")]
    pub check_memory_mib: u64,
    /// Wall-clock limit of each adya run, after which it is killed and reported unknown (adya's
    /// own --cycle-search-timeout bounds only the cycle search of each component).
    #[arg(long, default_value = "10m", value_parser = crate::args::parse_duration, requires = "checkers")]
    pub peer_time_limit: Duration,
    /// The adya binary; found on PATH or in ~/.cargo/bin when omitted (`cargo install adya
    /// --no-default-features`).
    #[arg(long, requires = "checkers", conflicts_with = "no_adya")]
    pub adya: Option<PathBuf>,
    /// Leave adya out (the list-append histories are then checked by verity alone).
    #[arg(long, requires = "checkers")]
    pub no_adya: bool,
    /// Write the generated histories into this folder and keep them, to check them again by hand;
    /// by default they live in a temporary folder, each removed once measured.
    #[arg(long, value_name = "DIR", requires = "checkers")]
    pub keep: Option<PathBuf>,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 100.0 => Ok(x),
        _ => Err(format!(
            "{s:?} is not a scale between 0 (exclusive) and 100"
        )),
    }
}

pub fn run(args: BenchArgs) -> Result<Outcome, Failure> {
    if args.checkers.checkers {
        checkers::run(&args.checkers, args.repeat.unwrap_or(3))
    } else {
        harness::run(&args, args.repeat.unwrap_or(5))
    }
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn spread(xs: &[f64], f: impl Fn(f64) -> String) -> String {
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{} – {}", f(min), f(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(spread(&[3.0, 1.0, 2.0], |x| format!("{x}")), "1 – 3");
    }
}
