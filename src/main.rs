//! verity's binary. In this branch only the `node` subcommand (the cluster target's replica) is
//! wired; the lead's controller adds the rest.

mod node_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "verity",
    about = "A Jepsen-style consistency test harness for ledgers"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One replica of the built-in replicated ledger (started by the harness).
    Node(node_cmd::NodeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(254)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match &cli.command {
        Cmd::Node(args) => node_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verity: {e:#}");
            ExitCode::from(255)
        }
    }
}
