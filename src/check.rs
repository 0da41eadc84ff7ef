//! `verity check`: decide a stored run or a history file offline.
//!
//! A run directory is judged exactly as `verity run` judged it — the run itself calls
//! [`judge_run_dir`] on the history it just wrote — so the verdict and results.json are reproduced byte
//! for byte.

use std::path::Path;

use verity_checkers::registry::CheckerOptions;
use verity_checkers::Budget;
use verity_history::jsonl::{self, ReadError};
use verity_history::History;

use crate::cli::CheckArgs;
use crate::exit::{Failure, Outcome};
use crate::results::{self, Results};
use crate::store::{self, RunMeta};
use crate::{plan, summary};

pub fn run(args: CheckArgs) -> Result<Outcome, Failure> {
    let path = &args.path;
    if path.is_dir() {
        let results = judge_run_dir(path, &args.checker)?;
        print!("{}", summary::render(&results));
        return Ok(Outcome::Verdict(results.valid));
    }
    let history = load(path, args.format.as_deref())?;
    let results = judge(&history, None, &args.checker)?;
    print!("{}", summary::render(&results));
    Ok(Outcome::Verdict(results.valid))
}

/// Judges the history of a run directory and (re)writes its results.json.
pub fn judge_run_dir(dir: &Path, checkers: &[String]) -> Result<Results, Failure> {
    let history_path = dir.join(store::HISTORY_FILE);
    if !history_path.is_file() {
        return Err(Failure::bad_input(format!(
            "{} is not a run directory: it holds no {}",
            dir.display(),
            store::HISTORY_FILE
        )));
    }
    let meta = store::read_meta(dir).map_err(|e| Failure::bad_input(format!("{e:#}")))?;
    let history = load(&history_path, Some("jsonl"))?;
    let requested: Vec<String> = if checkers.is_empty() {
        meta.as_ref()
            .map(|m| m.checkers.clone())
            .unwrap_or_default()
    } else {
        checkers.to_vec()
    };
    let results = judge(&history, meta.as_ref(), &requested)?;
    store::write_json(&dir.join(store::RESULTS_FILE), &results)?;
    let junit_path = dir.join(store::JUNIT_FILE);
    std::fs::write(&junit_path, crate::junit::render(&results)).map_err(|e| {
        Failure::Harness(anyhow::anyhow!(
            "cannot write {}: {e}",
            junit_path.display()
        ))
    })?;
    // The process ends soon after a check; freeing millions of small values one by one would cost
    // more than parsing them did.
    std::mem::forget(history);
    Ok(results)
}

/// Runs the test plan on a history.
pub fn judge(
    history: &History,
    meta: Option<&RunMeta>,
    checkers: &[String],
) -> Result<Results, Failure> {
    history
        .ops()
        .map_err(|e| Failure::bad_input(format!("malformed history: {e}")))?;
    let names = plan::checker_names(checkers, meta.map(|m| m.workload.as_str()))?;
    let verdicts = plan::check_all(
        history,
        &names,
        &CheckerOptions::default(),
        &Budget::unlimited(),
    );
    Ok(results::build(history, meta, verdicts))
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
        other => Err(Failure::bad_input(format!(
            "unsupported history format {other:?}: valid choices are jsonl"
        ))),
    }
}

fn guess_format(path: &Path) -> String {
    match path.extension().and_then(|e| e.to_str()) {
        Some("edn") => "edn".into(),
        _ => "jsonl".into(),
    }
}
