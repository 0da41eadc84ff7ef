//! Checks one history file for linearizability and prints the terminal summary — a stand-in for
//! `verity check FILE --checker linearizable` until the binary wires it in.
//!
//! Usage: `cargo run --release -p verity-checkers --example lincheck -- FILE MODEL [--json]`
//! (`.edn` files are read as EDN, anything else as JSONL).

use std::time::{Duration, Instant};

use verity_checkers::linearizable::{checker_for, summary_lines, LinearizableOptions};
use verity_checkers::Budget;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(model)) = (args.first(), args.get(1)) else {
        eprintln!("usage: lincheck FILE MODEL [--json]");
        std::process::exit(254);
    };
    let history = if path.ends_with(".edn") {
        verity_history::edn::read_edn(path).map_err(|e| e.to_string())
    } else {
        verity_history::jsonl::read_jsonl(std::path::Path::new(path)).map_err(|e| e.to_string())
    };
    let history = history.unwrap_or_else(|e| {
        eprintln!("failed to read {path}: {e}");
        std::process::exit(254)
    });
    let checker = checker_for(model, &LinearizableOptions::default()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(254)
    });
    let start = Instant::now();
    let verdict = checker.check(&history, &Budget::with_time_limit(Duration::from_secs(60)));
    let took = start.elapsed();
    for line in summary_lines(&verdict) {
        println!("{line}");
    }
    println!("  checked in {took:.2?}");
    if args.iter().any(|a| a == "--json") {
        println!(
            "{}",
            serde_json::to_string_pretty(&verdict).expect("verdicts serialize")
        );
    }
}
