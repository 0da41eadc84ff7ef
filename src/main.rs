//! verity: a Jepsen-style consistency test harness for ledgers.
//!
//! `main` only parses the command line and maps the outcome to an exit code; every subcommand lives in
//! its own module. Exit codes are Jepsen's, so existing CI scripts keep working: 0 valid, 1 invalid,
//! 2 unknown, 254 bad arguments or input, 255 the harness itself failed.

mod args;
mod bench;
mod check;
mod cli;
mod clock;
mod exit;
mod export;
mod failpoint;
mod heal;
mod junit;
mod list;
mod node_cmd;
mod plan;
mod progress;
mod report;
mod results;
mod run;
mod serve;
mod serve_ledger;
mod store;
mod suite;
mod summary;
mod test_all;
mod verify;

use std::process::ExitCode;

/// Histories are millions of small values; mimalloc allocates and frees them much faster than the
/// system allocator, across the checker threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    exit::run_and_exit(cli::dispatch)
}
