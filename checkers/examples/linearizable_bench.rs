//! Benchmarks of the linearizability checker on simulated histories (see
//! docs/benchmarks.md for the figures and how they compare with Porcupine's).
//!
//! Each scenario runs in a fresh child process, so its peak resident memory (VmHWM) is its own; the
//! driver repeats each one and prints the median and the spread. Timing covers `check` (pairing ops,
//! parsing, partitioning and the search), not generating the history.
//!
//! Usage:
//!   cargo run --release -p verity-checkers --example linearizable_bench            # every scenario, 5 runs each
//!   cargo run --release -p verity-checkers --example linearizable_bench -- --runs 3 cas-100k-5
//!   cargo run --release -p verity-checkers --example linearizable_bench -- --one cas-100k-5   # one run, in-process

use std::process::Command;
use std::time::{Duration, Instant};

use verity_checkers::linearizable::simulate::{
    jepsen_bank, simulate, BankBug, JepsenBankConfig, SimConfig, SimObject,
};
use verity_checkers::linearizable::{checker_for, LinearizableOptions};
use verity_checkers::Budget;

/// name, model, simulation.
fn scenario(name: &str) -> Option<(&'static str, SimConfig)> {
    let cas = |clients, ops| SimConfig::cas_register(clients, ops, 42);
    let parts: Vec<&str> = name.split('-').collect();
    let count = |s: &str| -> Option<usize> {
        let (digits, mult) = match s.strip_suffix('k') {
            Some(d) => (d, 1_000),
            None => (s, 1),
        };
        digits.parse::<usize>().ok().map(|n| n * mult)
    };
    match parts.as_slice() {
        ["cas", ops, clients] => Some(("cas-register", cas(count(clients)?, count(ops)?))),
        ["bank", ops, clients] => {
            Some(("bank", SimConfig::bank(5, count(clients)?, count(ops)?, 42)))
        }
        // 5,000 events (≈ 2,500 ops), 10 processes, ≈ 5% info: the history that ran Porcupine out of 128 GB.
        ["bank5000events"] => Some((
            "bank",
            SimConfig {
                object: SimObject::Bank {
                    accounts: 5,
                    initial: 10,
                    max_transfer: 5,
                    setup: true,
                    journal: false,
                },
                clients: 10,
                ops: 2_500,
                info_rate: 0.05,
                stale_read_rate: 0.0,
                seed: 42,
            },
        )),
        // bankstale-OPS-CLIENTS-PERCENT: the same with 1% stale reads (the history is invalid).
        ["bankstale", ops, clients, percent] => Some((
            "bank",
            SimConfig {
                info_rate: percent.parse::<f64>().ok()? / 100.0,
                stale_read_rate: 0.01,
                ..SimConfig::bank(5, count(clients)?, count(ops)?, 42)
            },
        )),
        // casstale-OPS-CLIENTS: a cas-register with 1% stale reads.
        ["casstale", ops, clients] => Some((
            "cas-register",
            SimConfig {
                stale_read_rate: 0.01,
                ..cas(count(clients)?, count(ops)?)
            },
        )),
        // bankinfo-OPS-CLIENTS-PERCENT: a 5-account bank with that percentage of operations timing out.
        ["bankinfo", ops, clients, percent] => Some((
            "bank",
            SimConfig {
                info_rate: percent.parse::<f64>().ok()? / 100.0,
                ..SimConfig::bank(5, count(clients)?, count(ops)?, 42)
            },
        )),
        // jbank-BUG-EVENTS-PROCESSES-PERCENT: a Jepsen-format bank (no setup, no ids, 8 accounts)
        // with that percentage of operations timing out; BUG is valid, lost, overdraft or stale.
        ["jbank", bug, events, processes, percent] => Some((
            "bank",
            SimConfig::bank(8, 1, 1, 42), // unused: see `jepsen_scenario`
        ))
        .filter(|_| jepsen_scenario(bug, events, processes, percent).is_some()),
        _ => None,
    }
}

fn jepsen_scenario(
    bug: &str,
    events: &str,
    processes: &str,
    percent: &str,
) -> Option<JepsenBankConfig> {
    let count = |s: &str| -> Option<usize> {
        match s.strip_suffix('k') {
            Some(d) => d.parse::<usize>().ok().map(|n| n * 1_000),
            None => s.parse().ok(),
        }
    };
    let bug = match bug {
        "valid" => BankBug::None,
        "lost" => BankBug::LostUpdate,
        "overdraft" => BankBug::Overdraft,
        "stale" => BankBug::StaleRead,
        _ => return None,
    };
    Some(JepsenBankConfig {
        accounts: 8,
        initial: 12,
        max_transfer: 5,
        processes: count(processes)?,
        ops: count(events)? / 2 - 2,
        info_rate: percent.parse::<f64>().ok()? / 100.0,
        bug,
        seed: 42,
    })
}

/// The history of a scenario, simulated.
fn history_of(name: &str, config: &SimConfig) -> verity_history::History {
    if let ["jbank", bug, events, processes, percent] =
        name.split('-').collect::<Vec<_>>().as_slice()
    {
        let mut j = jepsen_scenario(bug, events, processes, percent).expect("checked by scenario");
        j.seed = config.seed;
        return jepsen_bank(&j);
    }
    simulate(config)
}

const ALL: &[&str] = &[
    // The comparisons.
    "cas-100k-5",
    "bank-100k-5",
    "cas-1k-20",
    "cas-10k-20",
    "bank5000events",
    // Scaling: ops × clients.
    "cas-1k-5",
    "cas-10k-5",
    "cas-1k-10",
    "cas-10k-10",
    "cas-100k-10",
    "cas-100k-20",
    "bank-1k-5",
    "bank-10k-5",
    "bank-1k-10",
    "bank-10k-10",
    "bank-100k-10",
    "bank-1k-20",
    "bank-10k-20",
    "bank-100k-20",
    // Timeouts: a 5,000-event bank history with 0–5% info ops.
    "bankinfo-2500-10-1",
    "bankinfo-2500-10-2",
    "bankinfo-2500-5-5",
    // Invalid histories (1% stale reads): the search must exhaust the prefix.
    "casstale-100k-5",
    "casstale-10k-10",
    "casstale-10k-20",
    "bankstale-2500-10-5",
    "bankstale-100k-5-0",
];

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One run in this process: prints `name events verdict seconds peak_rss_kib accounted_bytes states`.
fn run_one(name: &str) {
    let Some((model, config)) = scenario(name) else {
        eprintln!("unknown scenario {name}");
        std::process::exit(254);
    };
    let mut config = config;
    if let Some(seed) = std::env::var("BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.seed = seed;
    }
    let history = history_of(name, &config);
    if let Some(path) = std::env::var_os("BENCH_WRITE") {
        let file = std::fs::File::create(&path).expect("history file created");
        verity_history::jsonl::write_jsonl(std::io::BufWriter::new(file), &history.events)
            .expect("history written");
    }
    let info = history
        .events
        .iter()
        .filter(|e| e.kind == verity_history::EventType::Info)
        .count();
    let checker = checker_for(model, &LinearizableOptions::default()).expect("known model");
    let seconds = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let budget = Budget::with_time_limit(Duration::from_secs(seconds));
    let start = Instant::now();
    let verdict = checker.check(&history, &budget);
    let took = start.elapsed().as_secs_f64();
    let stats = &verdict.details["stats"];
    if std::env::var_os("BENCH_STATS").is_some() {
        eprintln!("{name}: {stats}");
    }
    println!(
        "{name} {} {} {} {took:.4} {} {} {}",
        history.events.len(),
        info,
        verdict.valid.as_str(),
        vm_hwm_kib(),
        stats["peak_bytes"],
        stats["states_explored"],
    );
}

fn median_spread(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        run_one(args.get(i + 1).map(String::as_str).unwrap_or(""));
        return;
    }
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5);
    let named: Vec<&str> = args
        .iter()
        .filter(|a| scenario(a).is_some())
        .map(String::as_str)
        .collect();
    let list = if named.is_empty() {
        ALL.to_vec()
    } else {
        named
    };
    let exe = std::env::current_exe().expect("own path");
    println!("| scenario | events | info | verdict | time s (median [min–max]) | peak RSS MiB (median [min–max]) | checker-accounted MiB | configurations |");
    println!("|---|---|---|---|---|---|---|---|");
    for name in list {
        let mut times = Vec::new();
        let mut rss = Vec::new();
        let mut last: Vec<String> = Vec::new();
        for _ in 0..runs {
            let out = Command::new(&exe)
                .args(["--one", name])
                .output()
                .expect("child runs");
            let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
            last = line.split_whitespace().map(str::to_string).collect();
            if last.len() < 8 {
                eprintln!("{name}: bad output {line:?}");
                break;
            }
            times.push(last[4].parse::<f64>().unwrap_or(f64::NAN));
            rss.push(last[5].parse::<f64>().unwrap_or(f64::NAN) / 1024.0);
        }
        if times.is_empty() {
            continue;
        }
        let (t, t0, t1) = median_spread(times);
        let (r, r0, r1) = median_spread(rss);
        let accounted = last[6].parse::<f64>().unwrap_or(0.0) / (1024.0 * 1024.0);
        println!(
            "| {name} | {} | {} | {} | {t:.3} [{t0:.3}–{t1:.3}] | {r:.1} [{r0:.1}–{r1:.1}] | {accounted:.1} | {} |",
            last[1], last[2], last[3], last[7]
        );
    }
}
