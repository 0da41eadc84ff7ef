//! `verity bench` without `--checkers`: the harness's own performance, measured the same way every
//! time.
//!
//! Two figures, each repeated and reported as median and spread (this machine is noisy):
//! - the controller against the `memory` target at `--rate 0`: operations recorded to the history per
//!   second, and the controller's resident memory growth per operation during the main phase;
//! - `verity check` of a bank history of about a million events, JSONL parsing included: events per
//!   second and wall time.
//!
//! Each controller run and each check is a child process, timed from start to exit as a user sees it,
//! so runs do not share memory. The output is a Markdown section for
//! docs/benchmarks.md.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use super::{median, spread, BenchArgs};
use crate::exit::{Failure, Outcome};
use crate::store;

pub fn run(args: &BenchArgs, repeat: u32) -> Result<Outcome, Failure> {
    let exe = std::env::current_exe().context("cannot find the verity binary")?;
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;

    let mut ops_per_s = Vec::new();
    let mut bytes_per_op = Vec::new();
    for i in 0..repeat {
        let store = scratch.path().join(format!("controller-{i}"));
        let limit = crate::args::format_duration(args.time_limit).to_string();
        let conc = args.concurrency.to_string();
        let out = run_child(
            &exe,
            &store,
            &[
                "--rate",
                "0",
                "--time-limit",
                &limit,
                "--concurrency",
                &conc,
            ],
        )?;
        let perf: serde_json::Value = read_json(&out.join(store::PERF_FILE))?;
        ops_per_s.push(perf["ops_per_s"].as_f64().unwrap_or(0.0));
        bytes_per_op.push(perf["rss_growth_bytes_per_op"].as_f64().unwrap_or(0.0));
        eprintln!(
            "controller run {}: {:.0} ops/s",
            i + 1,
            ops_per_s.last().unwrap_or(&0.0)
        );
        let _ = std::fs::remove_dir_all(&store);
    }

    // One history of about `events` events: setup and final read are two ops of two events each.
    let store = scratch.path().join("check");
    let ops = (args.events / 2).saturating_sub(2).max(1).to_string();
    let dir = run_child(
        &exe,
        &store,
        &["--rate", "0", "--time-limit", "10m", "--ops", &ops],
    )?;
    let mut events_per_s = Vec::new();
    let mut seconds = Vec::new();
    let mut events = 0;
    for i in 0..repeat {
        let t = Instant::now();
        let status = Command::new(&exe)
            .arg("check")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .context("cannot start verity check")?;
        let secs = t.elapsed().as_secs_f64();
        if status.code() != Some(0) {
            return Err(Failure::Harness(anyhow::anyhow!(
                "benchmark check exited with {status}"
            )));
        }
        events = read_json(&dir.join(store::RESULTS_FILE))?["history"]["events"]
            .as_u64()
            .unwrap_or(0);
        events_per_s.push(events as f64 / secs);
        seconds.push(secs);
        eprintln!("check {}: {events} events in {secs:.3} s", i + 1);
    }

    println!("| measurement | median | min – max | runs |");
    println!("|---|---|---|---|");
    println!(
        "| controller → memory, `--rate 0`, {} workers, {} s: ops recorded/s | {} | {} | {} |",
        args.concurrency,
        args.time_limit.as_secs_f64(),
        fmt0(median(&ops_per_s)),
        spread(&ops_per_s, fmt0),
        repeat
    );
    println!(
        "| controller resident memory growth per op (main phase) | {} B | {} B | {} |",
        fmt1(median(&bytes_per_op)),
        spread(&bytes_per_op, fmt1),
        repeat
    );
    println!(
        "| `verity check` of a {events}-event bank history, parsing included: events/s | {} | {} | {} |",
        fmt0(median(&events_per_s)),
        spread(&events_per_s, fmt0),
        repeat
    );
    println!(
        "| the same check: wall time | {:.3} s | {} s | {} |",
        median(&seconds),
        spread(&seconds, |x| format!("{x:.3}")),
        repeat
    );
    Ok(Outcome::Done)
}

/// Runs `verity run` against the memory target into `store` and returns the run directory.
fn run_child(exe: &Path, store: &Path, extra: &[&str]) -> Result<std::path::PathBuf, Failure> {
    let status = Command::new(exe)
        .args([
            "run", "--target", "memory", "--quiet", "--seed", "1", "--store",
        ])
        .arg(store)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot start verity run")?;
    if status.code() != Some(0) {
        return Err(Failure::Harness(anyhow::anyhow!(
            "benchmark run exited with {status}"
        )));
    }
    let latest = store.join("latest");
    std::fs::canonicalize(&latest)
        .with_context(|| format!("no run in {}", store.display()))
        .map_err(Failure::from)
}

fn read_json(path: &Path) -> Result<serde_json::Value, Failure> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(serde_json::from_str(&text).with_context(|| format!("malformed {}", path.display()))?)
}

fn fmt0(x: f64) -> String {
    format!("{x:.0}")
}

fn fmt1(x: f64) -> String {
    format!("{x:.1}")
}
