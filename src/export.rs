//! `verity export`: a run's history in a format the Jepsen ecosystem reads.
//!
//! Today that is EDN in Jepsen's `history.edn` shape, one op map per line, which Knossos, Elle and
//! Jepsen's bank checker read (the mapping, field by field, is in docs/formats.md and in
//! `verity_history::edn::write`). A disputed result can so be checked again by the tools its reader
//! already trusts, and `verity check --format edn` reads the file back to the same verdict.
//!
//! `--format adya` writes the transactions of a ledger-append or rw-register history as the JSON
//! lines that Elle's command-line tools and adya read (`{"index":2,"type":"ok","f":"txn",
//! "process":0,"time":16681711,"value":[["r",7,[]],["append",7,-1]]}`), leaving out the setup op
//! and nemesis events, which are not transactions. It reads a compressed history or an EDN file as
//! well, so anyone can check any of verity's transaction histories with adya.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use verity_history::edn::write::{write_edn, WriteOptions};
use verity_history::{Event, History, Process, Value, F};

use crate::exit::{Failure, Outcome};

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Each event becomes one op map, e.g. {:type :invoke, :f :transfer, :value {:id 17, :from 1, \
:to 4, :amount 5}, :time 1203, :process 3, :index 0}; the nemesis is :process :nemesis; transactions are \
[[:append k v] [:r k [1 2]]]; a final read with its journal is {:balances {0 10, 1 20} :transfers #{1 2 5}}. \
The whole mapping is in docs/formats.md. `verity check --format edn FILE` reads the export back to the same \
verdict.\n\nExamples:\n  verity export --format edn store/latest -o history.edn\n  \
verity export --format edn store/latest --plain-bank-reads > for-jepsen-bank.edn\n  \
verity export --format adya store/latest -o h.jsonl && adya check h.jsonl   # transactions, for adya"
)]
pub struct ExportArgs {
    /// A run directory (its history is exported) or a history file (.jsonl or .edn).
    pub path: PathBuf,
    /// The format to write: edn (Jepsen's history.edn: one op map per line) or adya (the
    /// transactions as the JSON lines adya and Elle's tools read).
    #[arg(long, value_parser = ["edn", "adya"])]
    pub format: String,
    /// Where to write the export; standard output when omitted.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Format of a history file given as PATH; guessed from its extension when omitted.
    #[arg(long, value_parser = ["jsonl", "edn"])]
    pub input_format: Option<String>,
    /// Write every bank read as a plain map account → balance, leaving out the journal of applied
    /// transfer ids that verity's final read carries, for Jepsen's bank checker (which knows no
    /// journal; verity then checks only totals and negative balances on the export).
    #[arg(long)]
    pub plain_bank_reads: bool,
}

pub fn run(args: ExportArgs) -> Result<Outcome, Failure> {
    let (source, format) = if args.path.is_dir() {
        (crate::check::history_of_run_dir(&args.path)?, Some("jsonl"))
    } else {
        (args.path.clone(), args.input_format.as_deref())
    };
    let history = crate::check::load(&source, format)?;
    let options = WriteOptions {
        plain_bank_reads: args.plain_bank_reads,
    };
    let adya = args.format == "adya";
    if adya && !history.events.iter().any(is_transaction) {
        return Err(Failure::bad_input(format!(
            "{} holds no transactions (:f :txn): adya checks ledger-append (list-append) and \
             rw-register histories",
            source.display()
        )));
    }
    let write = |out: &mut dyn Write| match adya {
        true => write_adya(&history, out),
        false => write_edn(&history, options, &mut &mut *out),
    };
    match &args.out {
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let written = write(&mut out).and_then(|()| out.flush());
            match written {
                // A reader that stopped early (`| head`) is no failure of the export.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => {
                    return Err(harness(format!(
                        "cannot write the export to standard output: {e}"
                    )))
                }
                Ok(()) => {}
            }
        }
        Some(path) => {
            write_file(path, |out| write(out))?;
            eprintln!(
                "exported {} events of {} to {}",
                history.len(),
                source.display(),
                path.display()
            );
        }
    }
    Ok(Outcome::Done)
}

/// Writes beside `path` first and renames, so an interrupted export never leaves half a file under
/// the name asked for.
fn write_file(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), Failure> {
    let name = path
        .file_name()
        .ok_or_else(|| Failure::bad_input(format!("{} names no file", path.display())))?;
    let partial = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let file = std::fs::File::create(&partial)
        .map_err(|e| Failure::bad_input(format!("cannot create {}: {e}", partial.display())))?;
    let mut out = BufWriter::new(file);
    let written = write(&mut out)
        .and_then(|()| out.flush())
        .and_then(|()| out.get_ref().sync_all())
        .and_then(|()| std::fs::rename(&partial, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        harness(format!("cannot write {}: {e}", path.display()))
    })
}

fn is_transaction(e: &Event) -> bool {
    e.f == F::Txn && matches!(e.process, Process::Client(_))
}

/// One op as adya reads it: Elle's JSON shape, `time` for verity's `time_ns`.
#[derive(Serialize)]
struct AdyaOp<'a> {
    index: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    f: &'a str,
    process: u64,
    time: u64,
    value: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Writes the client transactions of `history`, one JSON object per line, indices unchanged (so
/// adya's report names the same ops as verity's).
fn write_adya(history: &History, out: &mut dyn Write) -> std::io::Result<()> {
    for e in history.events.iter().filter(|e| is_transaction(e)) {
        let Process::Client(process) = e.process else {
            unreachable!("is_transaction keeps client events only")
        };
        let op = AdyaOp {
            index: e.index,
            kind: e.kind.as_str(),
            f: "txn",
            process,
            time: e.time_ns,
            value: &e.value,
            error: e.error.as_deref(),
        };
        serde_json::to_writer(&mut *out, &op).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn harness(msg: String) -> Failure {
    Failure::Harness(anyhow::anyhow!(msg))
}
