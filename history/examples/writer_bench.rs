//! The history writer alone, in one process: events per second through a [`HistoryWriter`] for each
//! way of writing (plain or zstd, with or without the hash chain), alternating, repeated; and the
//! bytes per event on disk. It isolates the writer thread's own capacity from the harness around it
//! (docs/benchmarks.md).
//!
//! Usage: `cargo run --release -p verity-history --example writer_bench -- [EVENTS] [REPEAT]`

use std::time::Instant;

use verity_history::jsonl::{HistoryWriter, WriterOptions};
use verity_history::{Event, EventType, Process, Transfer, Value, F};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let repeat: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().expect("temp dir");
    let configs = [
        ("plain, no chain", false, false),
        ("plain + chain", false, true),
        ("zstd + chain", true, true),
        ("zstd, no chain", true, false),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    let mut sizes = vec![0f64; configs.len()];
    for round in 0..repeat {
        for k in 0..configs.len() {
            let c = (k + round) % configs.len();
            let (name, compress, chained) = configs[c];
            let path = dir.path().join("h");
            let chain = dir.path().join("c");
            let options = WriterOptions {
                compress,
                chain: chained.then(|| chain.clone()),
            };
            let start = Instant::now();
            let w = HistoryWriter::create_with(&path, &options).expect("create");
            let r = w.recorder();
            for i in 0..events {
                r.record(event(i)).expect("record");
            }
            drop(r);
            w.finish().expect("finish");
            let secs = start.elapsed().as_secs_f64();
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len())
                + std::fs::metadata(&chain).map_or(0, |m| m.len());
            let _ = std::fs::remove_file(&chain);
            rates[c].push(events as f64 / secs);
            sizes[c] = bytes as f64 / events as f64;
            eprintln!(
                "round {} {name:16} {:>12.0} events/s",
                round + 1,
                events as f64 / secs
            );
        }
    }
    println!("| writer | events/s median (min–max) | ÷ plain, no chain | bytes/event on disk |");
    println!("|---|---|---|---|");
    let median = |xs: &mut Vec<f64>| {
        xs.sort_by(|a, b| a.total_cmp(b));
        xs[xs.len() / 2]
    };
    let base = median(&mut rates[0].clone());
    for (c, (name, _, _)) in configs.iter().enumerate() {
        let xs = &mut rates[c];
        let m = median(xs);
        println!(
            "| {name} | {m:.0} ({:.0}–{:.0}) | {:.2} | {:.1} |",
            xs[0],
            xs[xs.len() - 1],
            m / base,
            sizes[c]
        );
    }
}

/// A bank-like event stream: invocations and completions of transfers by 10 processes.
fn event(i: u64) -> Event {
    let id = i / 2;
    Event {
        index: 0,
        time_ns: 1_000_000 + i * 1_537,
        process: Process::Client(id % 10),
        kind: if i.is_multiple_of(2) {
            EventType::Invoke
        } else {
            EventType::Ok
        },
        f: F::Transfer,
        value: Value::Transfer(Transfer {
            id,
            from: (id % 8) as u32,
            to: ((id * 7 + 3) % 8) as u32,
            amount: (id % 5 + 1) as i64,
        }),
        error: None,
    }
}
