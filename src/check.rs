//! `verity check`: decide a stored run, a history file, or a whole folder of histories, offline.
//!
//! A run directory is judged exactly as `verity run` judged it — the run itself calls
//! [`judge_run_dir`] on the history it just wrote — so the verdict, results.json and junit.xml are
//! reproduced byte for byte. A history is read plain or zstd-compressed (`history.jsonl.zst`). A folder
//! without a run's history is a corpus: every `.jsonl`, `.jsonl.zst` and `.edn` file under it is
//! checked, in parallel, in one process.

use std::path::{Path, PathBuf};

use clap::Args;
use rayon::prelude::*;
use verity_checkers::Validity;
use verity_history::jsonl::{self, ReadError};
use verity_history::History;

use crate::args::{parse_json_value, BudgetArgs};
use crate::exit::{Failure, Outcome};
use crate::plan;
use crate::plan::CheckSettings;
use crate::results::{self, Results};
use crate::store::{self, RunMeta};

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// A run directory (holding history.jsonl or history.jsonl.zst) or a history file (.jsonl,
    /// .jsonl.zst or .edn).
    pub path: PathBuf,
    #[command(flatten)]
    pub options: CheckOptions,
    #[command(flatten)]
    pub output: crate::args::OutputArgs,
}

/// How a history is read and judged (shared by `verity check` and `verity report`).
#[derive(Debug, Clone, Args)]
pub struct CheckOptions {
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

impl CheckOptions {
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

pub fn run(args: CheckArgs) -> Result<Outcome, Failure> {
    init_logging();
    let settings = args.options.settings()?;
    let path = &args.path;
    if path.is_dir() && !is_run_dir(path) {
        if args.output.json || args.output.junit.is_some() {
            return Err(Failure::bad_input(
                "--json and --junit take a run directory or one history file, not a folder of histories",
            ));
        }
        return check_corpus(path, args.options.format.as_deref(), &settings);
    }
    let results = if path.is_dir() {
        judge_run_dir(path, &settings)?
    } else if let Some(results) = judge_streamed(path, args.options.format.as_deref(), &settings)? {
        results
    } else {
        let history = load(path, args.options.format.as_deref())?;
        let results = judge(&history, None, &settings)?;
        // As in judge_run_dir: freeing every value one by one costs more than the process's end.
        std::mem::forget(history);
        results
    };
    let lines = if path.is_dir() {
        vec![format!(
            "report: {}",
            path.join(store::REPORT_FILE).display()
        )]
    } else {
        Vec::new()
    };
    args.output.emit(&results, &lines)?;
    Ok(Outcome::Verdict(results.valid))
}

/// With `VERITY_LOG` set (e.g. `VERITY_LOG=info`, as `verity run` reads it), `verity check` says on
/// stderr how it read the history (streamed into the graph checker's store, or the general path).
fn init_logging() {
    let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("VERITY_LOG") else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The history file of a run directory (plain or compressed), or why `dir` is not one.
pub fn history_of_run_dir(dir: &Path) -> Result<PathBuf, Failure> {
    store::history_file(dir).ok_or_else(|| {
        Failure::bad_input(format!(
            "{} is not a run directory: it holds neither {} nor {}",
            dir.display(),
            store::HISTORY_FILE,
            store::HISTORY_ZST_FILE
        ))
    })
}

/// The chain head that a run's sidecar records, if it has a readable one. A missing or damaged
/// sidecar leaves results.json without a chain (the same on every check); `verity verify` is where
/// it is reported.
pub fn recorded_chain(dir: &Path) -> Option<results::ChainInfo> {
    let bytes = std::fs::read(dir.join(store::CHAIN_FILE)).ok()?;
    let sidecar = verity_history::chain::parse_sidecar(&bytes).ok()?;
    Some(sidecar.last().into())
}

/// A run's directory: it holds a history, or the run.json of a run killed before its history was
/// created (not a folder of histories).
fn is_run_dir(dir: &Path) -> bool {
    store::history_file(dir).is_some() || dir.join(store::META_FILE).is_file()
}

/// Judges the history of a run directory and (re)writes its results.json and junit.xml. A run killed
/// before it created its history is judged as an empty one: nothing was observed, so nothing is
/// proven (the checkers say unknown where they need a final read).
pub fn judge_run_dir(dir: &Path, settings: &CheckSettings) -> Result<Results, Failure> {
    let meta = store::read_meta(dir).map_err(|e| Failure::bad_input(format!("{e:#}")))?;
    let history = match (store::history_file(dir), &meta) {
        (None, Some(_)) => History::new(Vec::new()),
        _ => load(&history_of_run_dir(dir)?, Some("jsonl"))?,
    };
    let mut settings = settings.clone();
    if settings.checkers.is_empty() {
        settings.checkers = meta
            .as_ref()
            .map(|m| m.checkers.clone())
            .unwrap_or_default();
    }
    let mut results = judge(&history, meta.as_ref(), &settings)?;
    results.history.chain = recorded_chain(dir);
    store::write_json(&dir.join(store::RESULTS_FILE), &results)?;
    for (name, verdict) in &results.checkers {
        let artifacts = verity_checkers::registry::CHECKERS
            .get(name)
            .ok()
            .and_then(|c| c.artifacts);
        if let Some(write) = artifacts {
            write(verdict, dir).map_err(|e| {
                Failure::Harness(anyhow::anyhow!(
                    "cannot write the {name} checker's files: {e}"
                ))
            })?;
        }
    }
    let junit_path = dir.join(store::JUNIT_FILE);
    std::fs::write(&junit_path, crate::junit::render(&results)).map_err(|e| {
        Failure::Harness(anyhow::anyhow!(
            "cannot write {}: {e}",
            junit_path.display()
        ))
    })?;
    store::write_json(&dir.join(store::CHECK_TIMES_FILE), &results.check_seconds)?;
    crate::report::write_for_run(dir, &history, &results, meta.as_ref())?;
    // The process ends soon after a check; freeing millions of small values one by one would cost
    // more than parsing them did.
    std::mem::forget(history);
    Ok(results)
}

/// Runs the test plan on a history.
pub fn judge(
    history: &History,
    meta: Option<&RunMeta>,
    settings: &CheckSettings,
) -> Result<Results, Failure> {
    history
        .ops()
        .map_err(|e| Failure::bad_input(format!("malformed history: {e}")))?;
    // A history that recorded its nodes' own states is judged for convergence too.
    let extra: &[&str] = if has_node_states(history) {
        &["convergence"]
    } else {
        &[]
    };
    let workload = meta
        .map(|m| m.workload.as_str())
        .or_else(|| guess_workload(history));
    let names = plan::checker_names(settings, workload, extra)?;
    let (verdicts, seconds) = plan::check_all(history, &names, settings);
    let mut r = results::build(history, meta, verdicts);
    r.check_seconds = seconds;
    Ok(r)
}

/// The graph checker alone on a JSONL or EDN file — `--checker graph`, or no checker named on a
/// history of transactions, whose default plan it is: the file is streamed straight into the graph
/// checker's compact store beside a thin history (verity_checkers::graph::stream), so that
/// histories of tens of millions of transactions fit in memory. The results are those [`judge`]
/// gives; `None` when the general path applies (for EDN also where the EDN stream steps aside: an
/// odd file, or ops without a `:process`).
fn judge_streamed(
    path: &Path,
    format: Option<&str>,
    settings: &CheckSettings,
) -> Result<Option<Results>, Failure> {
    let format = format.map_or_else(|| guess_format(path), str::to_string);
    let edn = match format.as_str() {
        "jsonl" => false,
        "edn" => true,
        _ => return Ok(None),
    };
    // The graph checker alone: asked for by name, or the default plan of a transaction history
    // (found by its first operation; a history that also recorded its nodes' states is judged for
    // convergence too, which needs the general path: see below).
    let by_default = settings.checkers.is_empty()
        && settings.options.model.is_none()
        && guess_file_workload(path, edn)
            .map(|w| plan::checker_names(settings, Some(w), &[]))
            .transpose()?
            .is_some_and(|names| names == ["graph"]);
    if settings.checkers != ["graph"] && !by_default {
        return Ok(None);
    }
    let names = ["graph".to_string()];
    let streamed = if edn {
        match verity_checkers::graph::stream::read_edn_file(path) {
            Some(streamed) => streamed,
            None => {
                tracing::info!(
                    path = %path.display(),
                    "the EDN stream stepped aside: the general path reads the file"
                );
                return Ok(None);
            }
        }
    } else {
        verity_checkers::graph::stream::read_file(path).map_err(|e| match e {
            ReadError::Io { .. } => Failure::bad_input(e.to_string()),
            ReadError::Malformed { .. } => Failure::bad_input(format!("{}: {e}", path.display())),
        })?
    };
    let history = streamed.history;
    if by_default && has_node_states(&history) {
        tracing::info!(
            path = %path.display(),
            "nodes' states recorded: the general path judges convergence too"
        );
        return Ok(None);
    }
    history
        .ops()
        .map_err(|e| Failure::bad_input(format!("malformed history: {e}")))?;
    tracing::info!(
        path = %path.display(),
        format = format.as_str(),
        events = history.events.len(),
        "streamed into the graph checker's store"
    );
    let budget = settings.budget();
    let started = std::time::Instant::now();
    let verdict = match &streamed.store {
        Ok(store) => verity_checkers::graph::GraphChecker::default().check_store(store, &budget),
        Err(e) => verity_checkers::Verdict::unknown(format!("malformed history: {e}")),
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut r = results::build(&history, None, [(names[0].clone(), verdict)].into());
    r.check_seconds = [(names[0].clone(), seconds)].into();
    // As in judge_run_dir: freeing millions of values one by one costs more than the process's end.
    std::mem::forget(history);
    std::mem::forget(streamed.store);
    Ok(Some(r))
}

fn has_node_states(history: &History) -> bool {
    history.events.iter().any(|e| {
        e.process == verity_history::Process::Nemesis
            && e.f.as_str() == verity_checkers::convergence::NODE_STATE_F
    })
}

/// [`guess_workload`] of a history file from its head only: a JSONL one (plain or compressed) from
/// its first lines, an EDN one from the op maps of its first [`verity_history::edn::HEAD_BYTES`];
/// `None` when they do not tell (an unreadable file, a line that does not parse, no client operation
/// early on), and the general path decides.
fn guess_file_workload(path: &Path, edn: bool) -> Option<&'static str> {
    use std::io::{BufRead, BufReader, Read, Seek};
    const LINES_MAX: usize = 1000;
    if edn {
        let head = verity_history::edn::read_edn_head(path);
        return workload_of_first_op(head.iter().find(|e| is_first_op(e))?);
    }
    let mut file = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 4];
    let compressed = file.read_exact(&mut magic).is_ok() && magic == jsonl::ZSTD_MAGIC;
    file.rewind().ok()?;
    let reader: Box<dyn BufRead> = if compressed {
        Box::new(BufReader::new(zstd::stream::read::Decoder::new(file).ok()?))
    } else {
        Box::new(BufReader::new(file))
    };
    for (i, line) in reader.split(b'\n').take(LINES_MAX).enumerate() {
        let event = jsonl::parse_event_line(i + 1, &line.ok()?).ok()??;
        if is_first_op(&event) {
            return workload_of_first_op(&event);
        }
    }
    None
}

/// The workload of a history that comes without run metadata (a Jepsen or Elle file): transactions
/// are judged as ledger-append and rw-register are (the graph checker), anything else as bank.
fn guess_workload(history: &History) -> Option<&'static str> {
    workload_of_first_op(history.events.iter().find(|e| is_first_op(e))?)
}

/// The event [`guess_workload`] decides by: the first client operation, setup aside.
fn is_first_op(e: &verity_history::Event) -> bool {
    e.is_client() && e.f != verity_history::F::Setup
}

fn workload_of_first_op(e: &verity_history::Event) -> Option<&'static str> {
    (e.f == verity_history::F::Txn).then_some("ledger-append")
}

/// Checks every history file under `dir`, one line each, in one process.
fn check_corpus(
    dir: &Path,
    format: Option<&str>,
    settings: &CheckSettings,
) -> Result<Outcome, Failure> {
    let mut files = Vec::new();
    collect_histories(dir, &mut files)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", dir.display())))?;
    files.sort();
    if files.is_empty() {
        return Err(Failure::bad_input(format!(
            "{} holds neither a run (history.jsonl) nor any .jsonl, .jsonl.zst or .edn history",
            dir.display()
        )));
    }
    let verdicts: Vec<(PathBuf, Result<Results, Failure>)> = files
        .into_par_iter()
        .map(|f| {
            let r = load(&f, format).and_then(|h| judge(&h, None, settings));
            (f, r)
        })
        .collect();
    let (mut valid, mut invalid, mut unknown, mut bad) = (0, 0, 0, 0);
    // One write for all the lines, not one per file (stdout flushes at every newline).
    let mut out = String::new();
    for (file, r) in &verdicts {
        let shown = file.strip_prefix(dir).unwrap_or(file).display();
        match r {
            Ok(results) => {
                match results.valid {
                    Validity::Valid => valid += 1,
                    Validity::Invalid => invalid += 1,
                    Validity::Unknown => unknown += 1,
                }
                out.push_str(&format!(
                    "{shown}\t{}\t{}\n",
                    results.valid.as_str(),
                    results.anomaly_types.join(",")
                ));
            }
            Err(e) => {
                bad += 1;
                out.push_str(&format!("{shown}\terror\t{e}\n"));
            }
        }
    }
    out.push_str(&format!(
        "{} histories: {valid} valid, {invalid} invalid, {unknown} unknown, {bad} unreadable\n",
        verdicts.len()
    ));
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::Harness(anyhow::anyhow!("cannot write to stdout: {e}")))?;
    }
    if bad > 0 {
        return Err(Failure::bad_input(format!(
            "{bad} histories could not be read"
        )));
    }
    let overall = verdicts
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .fold(Validity::Valid, |acc, r| acc.merge(r.valid));
    Ok(Outcome::Verdict(overall))
}

fn collect_histories(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    // A run directory contributes its history only (not its nodes' data files).
    if let Some(run_history) = store::history_file(dir) {
        out.push(run_history);
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        // The entry's own type (no further stat), following a symbolic link only when it is one.
        let is_dir = match entry.file_type()? {
            t if t.is_symlink() => path.is_dir(),
            t => t.is_dir(),
        };
        if is_dir {
            collect_histories(&path, out)?;
        } else if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.ends_with(".jsonl") || n.ends_with(".jsonl.zst") || n.ends_with(".edn")
        }) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a history file in the given or guessed format.
pub fn load(path: &Path, format: Option<&str>) -> Result<History, Failure> {
    let format = format
        .map(str::to_string)
        .unwrap_or_else(|| guess_format(path));
    match format.as_str() {
        "jsonl" => jsonl::read_jsonl(path).map_err(|e| match e {
            ReadError::Io { .. } => Failure::bad_input(e.to_string()),
            ReadError::Malformed { .. } => Failure::bad_input(format!("{}: {e}", path.display())),
        }),
        "edn" => verity_history::edn::read_edn(path)
            .map_err(|e| Failure::bad_input(format!("{}: {e}", path.display()))),
        other => Err(Failure::bad_input(format!(
            "unsupported history format {other:?}: valid choices are jsonl, edn"
        ))),
    }
}

fn guess_format(path: &Path) -> String {
    match path.extension().and_then(|e| e.to_str()) {
        Some("edn") => "edn".into(),
        _ => "jsonl".into(),
    }
}
