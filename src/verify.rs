//! `verity verify <run-dir>`: proves that a run's history and results were not edited after the
//! fact, or names the first line (or results field) that was.
//!
//! Three comparisons, each naming what differs:
//! 1. the history's lines against the hash chain the writer kept beside them (`history.chain`, see
//!    `verity_history::chain`): the first line whose hash differs is the first one edited, deleted,
//!    moved or inserted;
//! 2. the chain's head against the one results.json records (and against `--head`, a head
//!    published elsewhere, e.g. the run summary in a CI log);
//! 3. results.json against a fresh judgement of the history with the same checkers — the check is a
//!    pure function of the history and run.json — naming the first field or verdict that differs.
//!
//! What it cannot prove: whoever rewrites the history, the sidecar and results.json consistently
//! (for example by editing the history, recomputing the chain and running `verity check`) leaves a
//! directory that verifies; only a head kept outside the directory (`--head`) catches that.
//! docs/integrity.md says so at length.
//!
//! Exit codes: 0 intact; 1 something was edited (named); 2 nothing differs but not everything could
//! be proven (a run cut short: lines after its last checkpoint, or no results.json; a run written
//! without a chain); 254 the directory cannot be read as a run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value as Json;
use verity_checkers::Validity;
use verity_history::chain::{self, Chain, ChainCheck, Sidecar};
use verity_history::jsonl::{self, HistoryText};

use crate::args::BudgetArgs;
use crate::exit::{Failure, Outcome};
use crate::plan::CheckSettings;
use crate::results::ChainInfo;
use crate::store;

/// The long help of `verity verify` (set on its subcommand in cli.rs).
pub const LONG_ABOUT: &str = "Proves that a run's history and results.json were not edited after \
the run: recomputes the SHA-256 chain of every history line and compares it with history.chain \
(naming the first line edited, deleted, moved or inserted), compares the chain's head with \
results.json's and with --head, and judges the history again with the run's checkers to compare \
every verdict and field of results.json.\n\nA consistent rewrite of history, chain and results \
together can only be caught with a head kept elsewhere: pass the head the run printed (\"history \
chain: ... head ...\") as --head. See docs/integrity.md.\n\nExit codes: 0 intact; 1 edited (the \
first difference is named); 2 nothing differs but not everything could be proven (a run cut short, \
or written without a chain); 254 not a readable run directory.";

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// A run directory written by `verity run`.
    pub dir: PathBuf,
    /// The chain head published when the run ended (its summary prints it), in hex; a unique prefix
    /// of at least 16 digits is enough.
    #[arg(long, value_name = "HEX", value_parser = parse_head)]
    pub head: Option<String>,
    #[command(flatten)]
    pub budget: BudgetArgs,
}

fn parse_head(s: &str) -> Result<String, String> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() < 16 || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a head is 16 to 64 hexadecimal digits".into());
    }
    Ok(s)
}

/// What verify concluded, with the sentences that say why.
struct Finding {
    validity: Validity,
    lines: Vec<String>,
}

impl Finding {
    fn edited(&mut self, what: String) {
        self.validity = Validity::Invalid;
        self.lines.push(format!("EDITED: {what}"));
    }
    fn unproven(&mut self, what: String) {
        if self.validity == Validity::Valid {
            self.validity = Validity::Unknown;
        }
        self.lines.push(format!("unproven: {what}"));
    }
    fn ok(&mut self, what: String) {
        self.lines.push(format!("ok: {what}"));
    }
}

pub fn run(args: VerifyArgs) -> Result<Outcome, Failure> {
    let finding = verify(&args)?;
    let mut out = String::new();
    for l in &finding.lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(
        out,
        "{}",
        match finding.validity {
            Validity::Valid => "INTACT: neither the history nor results.json was edited",
            Validity::Invalid => "TAMPERED: the run directory is not as the run left it",
            Validity::Unknown => "UNPROVEN: nothing differs, but not everything could be proven",
        }
    );
    print!("{out}");
    Ok(Outcome::Verdict(finding.validity))
}

fn verify(args: &VerifyArgs) -> Result<Finding, Failure> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(Failure::bad_input(format!(
            "{} is not a run directory",
            dir.display()
        )));
    }
    if store::history_file(dir).is_none() && dir.join(store::META_FILE).is_file() {
        return no_history(dir);
    }
    let history_path = crate::check::history_of_run_dir(dir)?;
    let name = history_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = jsonl::read_text_lenient(&history_path)
        .map_err(|e| Failure::bad_input(format!("{}: {e}", history_path.display())))?;
    let results = read_results(dir)?;
    let mut f = Finding {
        validity: Validity::Valid,
        lines: Vec::new(),
    };
    let Some(sidecar) = read_sidecar(dir, results.as_ref(), &mut f)? else {
        return Ok(f);
    };
    let chain = check_lines(&name, &text, &sidecar, results.as_ref(), &mut f);
    if let Some(head) = &args.head {
        match chain {
            Some(c) if c.head_hex().starts_with(head.as_str()) => {
                f.ok(format!("the chain ends at the published head {head}"))
            }
            Some(c) => f.edited(format!(
                "the history's chain ends at {}, not at the published head {head}: history, \
                 chain and results were rewritten together, or this is another run",
                c.head_hex()
            )),
            None => f.edited(format!(
                "the history does not verify, so it cannot end at the published head {head}"
            )),
        }
    }
    let Some(results) = results else {
        f.unproven(format!(
            "{dir}/{file} is missing: the run was cut short before its check, or the file was deleted",
            dir = dir.display(),
            file = store::RESULTS_FILE
        ));
        return Ok(f);
    };
    check_results_head(&results, &sidecar, &mut f);
    if f.validity == Validity::Valid || chain.is_some() {
        rejudge(dir, &text, &results, &args.budget, &mut f)?;
    }
    Ok(f)
}

/// results.json as stored (`None` when there is none); a file that is not JSON was edited.
/// A run directory with its run.json and no history: a run killed before it created one (nothing
/// to prove), unless its results count events that must then have been deleted.
fn no_history(dir: &Path) -> Result<Finding, Failure> {
    let mut f = Finding {
        validity: Validity::Valid,
        lines: Vec::new(),
    };
    let recorded = read_results(dir)?
        .and_then(|r| r["history"]["events"].as_u64())
        .unwrap_or(0);
    if recorded > 0 {
        f.edited(format!(
            "{} records {recorded} history events, but the history file is gone",
            store::RESULTS_FILE
        ));
    } else {
        f.unproven(format!(
            "{} holds no history: the run was stopped before it recorded anything",
            dir.display()
        ));
    }
    Ok(f)
}

fn read_results(dir: &Path) -> Result<Option<Json>, Failure> {
    let path = dir.join(store::RESULTS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => Ok(Some(v)),
            // Not JSON: kept as a string, so the comparison names the whole document.
            Err(e) => Ok(Some(Json::String(format!("(not JSON: {e})")))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::bad_input(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// The chain's sidecar, or what its absence means.
fn read_sidecar(
    dir: &Path,
    results: Option<&Json>,
    f: &mut Finding,
) -> Result<Option<Sidecar>, Failure> {
    let path = dir.join(store::CHAIN_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if results.is_some_and(|r| !r["history"]["chain"].is_null()) {
                f.edited(format!(
                    "{} was deleted: results.json records a chain",
                    store::CHAIN_FILE
                ));
            } else {
                f.unproven(format!(
                    "this run has no {} (written before verity kept one, or with --no-chain): \
                     there is nothing to verify it against",
                    store::CHAIN_FILE
                ));
            }
            return Ok(None);
        }
        Err(e) => {
            return Err(Failure::bad_input(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    match chain::parse_sidecar(&bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            f.edited(format!("{} was edited or damaged: {e}", store::CHAIN_FILE));
            Ok(None)
        }
    }
}

/// Compares the history's lines with the chain; returns the recomputed chain when they match.
fn check_lines(
    name: &str,
    text: &HistoryText,
    sidecar: &Sidecar,
    results: Option<&Json>,
    f: &mut Finding,
) -> Option<Chain> {
    let form = if text.compressed {
        " (lines of the decompressed text)"
    } else {
        ""
    };
    match chain::check(text, sidecar) {
        ChainCheck::Intact(c) => {
            f.ok(format!(
                "{name}: all {} lines match {}{form}; head {}",
                c.lines,
                store::CHAIN_FILE,
                c.head_hex()
            ));
            if sidecar.torn_bytes > 0 {
                f.ok(format!(
                    "{}'s last block is cut short ({} bytes): the run was killed while writing it",
                    store::CHAIN_FILE,
                    sidecar.torn_bytes
                ));
            }
            Some(c)
        }
        ChainCheck::Differs { line } => {
            let intact = match line {
                1 => String::new(),
                n => format!("; lines 1 to {} are intact", n - 1),
            };
            f.edited(format!(
                "line {line} of {name} was edited, deleted or moved, or a line was inserted \
                 before it{form}{intact}"
            ));
            None
        }
        ChainCheck::DiffersWithin { from, to } => {
            f.edited(format!(
                "a line among lines {from} to {to} of {name} was edited, deleted, moved or \
                 inserted{form}"
            ));
            None
        }
        ChainCheck::Missing { lines, chained } => {
            let why = match &text.corrupt {
                Some(e) => format!(": the compressed data stops decoding ({e})"),
                None => String::new(),
            };
            f.edited(format!(
                "line {} of {name} was deleted{form}: the history holds {lines} whole lines, \
                 the chain covers {chained}{why}",
                lines + 1
            ));
            None
        }
        ChainCheck::Unchained { chain, extra } => {
            let more = match extra {
                1 => String::new(),
                n => format!(" (and the {} after it)", n - 1),
            };
            let range = format!("line {}{more} of {name}{form}", chain.lines + 1);
            // A finished run was judged on exactly its chained lines; a run cut short and checked
            // later was judged on more lines than its last checkpoint covers.
            let finished = results.is_some_and(|r| {
                r["history"]["chain"]["lines"].as_u64() == r["history"]["events"].as_u64()
            });
            if finished {
                f.edited(format!(
                    "{range} was added after the run: its chain ends at line {}",
                    chain.lines
                ));
            } else {
                f.unproven(format!(
                    "{range} follows the chain's last checkpoint: the run was cut short before \
                     it could cover it (lines 1 to {} match)",
                    chain.lines
                ));
            }
            None
        }
    }
}

/// results.json's record of the chain against the sidecar's.
fn check_results_head(results: &Json, sidecar: &Sidecar, f: &mut Finding) {
    let recorded: Option<ChainInfo> = serde_json::from_value(results["history"]["chain"].clone())
        .ok()
        .filter(|_| !results["history"]["chain"].is_null());
    let expected = ChainInfo::from(sidecar.last());
    match recorded {
        None => {
            f.edited("results.json's history.chain was removed: the run kept a chain".to_string())
        }
        Some(r) if r.head != expected.head => f.edited(format!(
            "results.json's history.chain.head was edited: it records {}, the chain ends at {}",
            r.head, expected.head
        )),
        Some(r) if r.lines != expected.lines => f.edited(format!(
            "results.json's history.chain.lines was edited: it records {}, the chain covers {}",
            r.lines, expected.lines
        )),
        Some(_) => f.ok(format!(
            "results.json records the chain's head ({} lines)",
            expected.lines
        )),
    }
}

/// Judges the history again with the checkers results.json names and compares every field.
fn rejudge(
    dir: &Path,
    text: &HistoryText,
    stored: &Json,
    budget: &BudgetArgs,
    f: &mut Finding,
) -> Result<(), Failure> {
    let history = match jsonl::parse_text(text) {
        Ok(h) => h,
        Err(e) => {
            f.edited(format!("the history no longer parses: {e}"));
            return Ok(());
        }
    };
    let meta = store::read_meta(dir).map_err(|e| Failure::bad_input(format!("{e:#}")))?;
    let checkers: Vec<String> = stored["checkers"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if checkers.is_empty() {
        f.edited("results.json names no checker: its verdicts were removed".to_string());
        return Ok(());
    }
    let settings = CheckSettings {
        checkers,
        options: Default::default(),
        time_limit: Some(budget.check_time_limit),
        memory_mib: Some(budget.check_memory_mib),
    };
    let mut fresh = match crate::check::judge(&history, meta.as_ref(), &settings) {
        Ok(r) => r,
        Err(e) => {
            f.edited(format!(
                "results.json names checkers that cannot judge: {e}"
            ));
            return Ok(());
        }
    };
    fresh.history.chain = crate::check::recorded_chain(dir);
    let fresh = serde_json::to_value(&fresh).map_err(|e| Failure::Harness(e.into()))?;
    match first_difference(stored, &fresh, "") {
        None => f.ok(format!(
            "results.json matches a fresh judgement of the history by {} checker(s)",
            stored["checkers"].as_object().map_or(0, |m| m.len())
        )),
        Some((path, was, is)) => f.edited(format!(
            "results.json was edited at {path}: it says {was}, the history gives {is}"
        )),
    }
    std::mem::forget(history);
    Ok(())
}

/// The first place (in key order) where `stored` and `fresh` differ: its path, and both values.
fn first_difference(stored: &Json, fresh: &Json, path: &str) -> Option<(String, String, String)> {
    let here = || {
        if path.is_empty() {
            "the document".to_string()
        } else {
            path.to_string()
        }
    };
    let show = |v: Option<&Json>| match v {
        None => "nothing".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 80 {
                format!("{}…", s.chars().take(80).collect::<String>())
            } else {
                s
            }
        }
    };
    match (stored, fresh) {
        (Json::Object(a), Json::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => first_difference(x, y, &p),
                    (x, y) => Some((p, show(x), show(y))),
                }
            })
        }
        (Json::Array(a), Json::Array(b)) => {
            let n = a.len().max(b.len());
            (0..n).find_map(|i| {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => first_difference(x, y, &p),
                    (x, y) => Some((p, show(x), show(y))),
                }
            })
        }
        (a, b) if a == b => None,
        (a, b) => Some((here(), show(Some(a)), show(Some(b)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let a: Json =
            serde_json::json!({"valid": true, "checkers": {"c": {"valid": "valid", "n": [1, 2]}}});
        let b: Json = serde_json::json!({"valid": true, "checkers": {"c": {"valid": "invalid", "n": [1, 3]}}});
        let (path, was, is) = first_difference(&a, &b, "").unwrap();
        assert_eq!(
            (path.as_str(), was.as_str(), is.as_str()),
            ("checkers.c.n[1]", "2", "3")
        );
        assert_eq!(first_difference(&a, &a, ""), None);
        let (path, _, is) =
            first_difference(&serde_json::json!({}), &serde_json::json!({"x": 1}), "").unwrap();
        assert_eq!((path.as_str(), is.as_str()), ("x", "1"));
    }

    #[test]
    fn a_head_is_hex_of_a_useful_length() {
        assert!(parse_head("0123456789abcdef").is_ok());
        assert_eq!(
            parse_head(" ABCDEF0123456789 ").unwrap(),
            "abcdef0123456789"
        );
        assert!(parse_head("abc").is_err());
        assert!(parse_head("zz23456789abcdef").is_err());
    }
}
