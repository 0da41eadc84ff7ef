//! `verity run --replay <run-dir>`: run again with the seed and options a stored run recorded.
//!
//! The stored run's arguments come from its run.json (`args`, or its `command` split as a shell
//! would for runs recorded before `args` was kept) and are parsed by the same clap definitions as
//! the command line, so a replay is exactly the run its reproduce line describes. What cannot be
//! replayed is said before the run starts: a different verity version, another machine shape.

use std::path::Path;

use clap::Parser;

use verity_checkers::Validity;

use super::RunArgs;
use crate::cli::{Cli, Command};
use crate::exit::Failure;
use crate::store::{self, Host, RunMeta};

/// What the replayed run was, to compare its outcome with.
pub struct Original {
    pub dir: std::path::PathBuf,
    /// `valid` and `anomaly_types` of its results.json, when it has one.
    pub verdict: Option<(Validity, Vec<String>)>,
}

/// The arguments of the replay: the stored run's, with this invocation's output and check budget.
pub fn prepare(args: &RunArgs, dir: &Path) -> Result<(RunArgs, Original), Failure> {
    refuse_shaping_options(args)?;
    // `results/latest` moves to the replay as soon as it starts: hold on to the run it named.
    let dir = &std::fs::canonicalize(dir)
        .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", dir.display())))?;
    let meta = store::read_meta(dir)
        .map_err(|e| Failure::bad_input(format!("{e:#}")))?
        .ok_or_else(|| {
            Failure::bad_input(format!(
                "{} is not a run directory: it holds no {}",
                dir.display(),
                store::META_FILE
            ))
        })?;
    let stored = stored_args(&meta, dir)?;
    let argv = ["verity", "run"]
        .into_iter()
        .map(String::from)
        .chain(stored.iter().cloned());
    let mut replay = match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Run(r),
        }) => *r,
        Ok(_) => unreachable!("the arguments start with `run`"),
        Err(e) => {
            return Err(Failure::bad_input(format!(
                "{}: its recorded options are not understood by this verity: {}",
                dir.join(store::META_FILE).display(),
                e.render().to_string().lines().next().unwrap_or_default()
            )))
        }
    };
    replay.output = args.output.clone();
    replay.quiet = args.quiet;
    replay.compress = args.compress.or(replay.compress);
    replay.budget = args.budget.clone();
    let original = Original {
        dir: dir.to_path_buf(),
        verdict: stored_verdict(dir),
    };
    for line in differences(&meta) {
        eprintln!("verity: replay: {line}");
    }
    Ok((replay, original))
}

/// Compares the replay's verdict with the original's, in one line for the summary.
pub fn compare(original: &Original, valid: Validity, anomalies: &[String]) -> String {
    let show = |valid: &Validity, anomalies: &[String]| {
        let v = valid.as_str().to_uppercase();
        if anomalies.is_empty() {
            v
        } else {
            format!("{v} [{}]", anomalies.join(", "))
        }
    };
    match &original.verdict {
        None => format!(
            "replay of {}: {} (the original run has no results.json to compare with)",
            original.dir.display(),
            show(&valid, anomalies)
        ),
        Some((v, a)) if *v == valid && a == anomalies => format!(
            "replay of {}: {}, the same verdict as the original",
            original.dir.display(),
            show(&valid, anomalies)
        ),
        Some((v, a)) => format!(
            "replay of {}: {}, the original was {}",
            original.dir.display(),
            show(&valid, anomalies),
            show(v, a)
        ),
    }
}

/// A replay takes every option from the stored run; one given here as well would be silently lost.
fn refuse_shaping_options(args: &RunArgs) -> Result<(), Failure> {
    let plain = match Cli::try_parse_from(["verity", "run"]) {
        Ok(Cli {
            command: Command::Run(r),
        }) => r,
        _ => unreachable!("`verity run` parses"),
    };
    // --compress changes the file form, not the run: it may be set anew.
    let mut args = args.clone();
    args.compress = None;
    let given = super::controller::reproduce_args(&args, 0);
    let defaults = super::controller::reproduce_args(&plain, 0);
    if given != defaults || args.seed.is_some() {
        return Err(Failure::bad_input(
            "--replay runs the stored run's own options and seed: only --json, --junit, --quiet, \
             --compress and the check budget may be given beside it",
        ));
    }
    Ok(())
}

fn stored_args(meta: &RunMeta, dir: &Path) -> Result<Vec<String>, Failure> {
    if !meta.args.is_empty() {
        return Ok(meta.args.clone());
    }
    let words = shlex::split(&meta.command).unwrap_or_default();
    match words.as_slice() {
        [verity, run, rest @ ..] if verity == "verity" && run == "run" => Ok(rest.to_vec()),
        _ => Err(Failure::bad_input(format!(
            "{}: its command {:?} is not a `verity run` command",
            dir.join(store::META_FILE).display(),
            meta.command
        ))),
    }
}

fn stored_verdict(dir: &Path) -> Option<(Validity, Vec<String>)> {
    let text = std::fs::read(dir.join(store::RESULTS_FILE)).ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let valid = serde_json::from_value(doc.get("valid")?.clone()).ok()?;
    let anomalies = doc
        .get("anomaly_types")?
        .as_array()?
        .iter()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    Some((valid, anomalies))
}

/// What differs between the machine and verity that recorded the run and these.
fn differences(meta: &RunMeta) -> Vec<String> {
    let mut lines = Vec::new();
    let version = env!("CARGO_PKG_VERSION");
    if meta.verity_version != version {
        lines.push(format!(
            "recorded by verity {}, replayed by verity {version}: checkers and workloads may differ",
            meta.verity_version
        ));
    }
    let here = Host::this();
    match &meta.host {
        None => lines.push("the run did not record its machine; it cannot be compared".into()),
        Some(h) if *h != here => lines.push(format!(
            "recorded on {} {} with {} cpus, replayed on {} {} with {} cpus: timing, and so the \
             interleaving, will differ",
            h.os, h.arch, h.cpus, here.os, here.arch, here.cpus
        )),
        Some(_) => {}
    }
    if lines.is_empty() {
        lines.push(format!(
            "same verity version ({version}) and machine shape as the recording"
        ));
    }
    lines
}
