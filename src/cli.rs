//! The command line: clap definitions and dispatch to the subcommands.
//!
//! The contract is the design's: `run`, `check`, `list` (and more as capabilities land). Parse errors
//! exit 254 (bad arguments), not clap's default 2, which would read as "unknown" to a CI script.

use clap::{Parser, Subcommand};

use crate::check::CheckArgs;
use crate::exit::{Failure, Outcome};
use crate::run::RunArgs;

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
    Run(Box<RunArgs>),
    /// Check a stored run directory or a history file again, offline.
    Check(CheckArgs),
    /// Write a run's history as Jepsen's history.edn, for Knossos, Elle and Jepsen's bank checker.
    Export(crate::export::ExportArgs),
    /// List every target, workload, bug knob and checker, one per line.
    List,
    /// Undo what a killed run left behind: resume paused nodes, stop its servers, remove their files.
    Heal(crate::heal::HealArgs),
    /// One replica of the built-in replicated ledger (the harness starts these itself).
    Node(crate::node_cmd::NodeArgs),
    /// Measure verity's own speed: the harness (controller and check throughput), or with
    /// --checkers the checkers on large register, bank and list-append histories, adya beside.
    Bench(crate::bench::BenchArgs),
    /// Write the HTML report of a run directory, or of a history file (checked first), again.
    Report(crate::report::ReportArgs),
    /// A reference server of the HTTP ledger protocol, with the memory target's bug knobs behind it.
    ServeLedger(crate::serve_ledger::ServeLedgerArgs),
    /// Browse a store of runs over HTTP: an index with verdicts, reports, files, downloads, comparisons.
    Serve(crate::serve::ServeArgs),
    /// Prove that a run's history and results.json were not edited, or name the first line that was.
    #[command(long_about = crate::verify::LONG_ABOUT)]
    Verify(crate::verify::VerifyArgs),
    /// Run every scenario of a suite file (verity.toml) with its seeds, within a time budget, and
    /// exit by whether each came out as expected.
    TestAll(crate::test_all::TestAllArgs),
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
        Command::Run(args) => crate::run::run(*args),
        Command::Check(args) => crate::check::run(args),
        Command::Export(args) => crate::export::run(args),
        Command::Report(args) => crate::report::run(args),
        Command::Bench(args) => crate::bench::run(args),
        Command::Heal(args) => crate::heal::run(args),
        Command::ServeLedger(args) => crate::serve_ledger::run(args),
        Command::Serve(args) => crate::serve::run(args),
        Command::Verify(args) => crate::verify::run(args),
        Command::TestAll(args) => crate::test_all::run(args),
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
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
