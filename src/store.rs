//! The run directory: `results/<target>-<workload>/<YYYYMMDDTHHMMSS>/` with the history (plain or
//! compressed) and its hash chain, the run's metadata, results, log and node logs; `results/latest` points at the newest run.
//!
//! `run.json` holds everything needed to re-check a run offline and to reproduce it (seed, options, the
//! exact command), so `verity check <dir>` writes a results.json byte-identical to the run's own.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const HISTORY_FILE: &str = "history.jsonl";
/// The history of a run written compressed (`--compress`, the default at `--rate 0`).
pub const HISTORY_ZST_FILE: &str = "history.jsonl.zst";
/// The hash chain of the history's lines (docs/integrity.md).
pub const CHAIN_FILE: &str = "history.chain";
pub const META_FILE: &str = "run.json";
pub const RESULTS_FILE: &str = "results.json";
pub const LOG_FILE: &str = "verity.log";
pub const JUNIT_FILE: &str = "junit.xml";
/// The harness's own throughput and memory during the main phase (not part of the verdict).
pub const PERF_FILE: &str = "perf.json";
/// How long each checker took (seconds), written by every check; not part of the verdict.
pub const CHECK_TIMES_FILE: &str = "check-times.json";
/// The HTML report of a run.
pub const REPORT_FILE: &str = "report.html";
/// Present while `verity run` writes the run: the controller's process id. A run directory without
/// results whose marker names a live process is running; with a dead one, it was cut short.
pub const RUNNING_FILE: &str = "running.pid";

/// The history file of a run directory, plain or compressed, whichever it holds.
pub fn history_file(dir: &Path) -> Option<PathBuf> {
    [HISTORY_FILE, HISTORY_ZST_FILE]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Marks `dir` as being written by this process.
pub fn mark_running(dir: &Path) -> anyhow::Result<()> {
    fs::write(dir.join(RUNNING_FILE), format!("{}\n", std::process::id()))
        .context("cannot write the running marker")
}

/// Removes the marker once the run's results are written.
pub fn mark_done(dir: &Path) {
    let _ = fs::remove_file(dir.join(RUNNING_FILE));
}

/// What a run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub verity_version: String,
    pub target: String,
    pub workload: String,
    pub bugs: Vec<String>,
    pub seed: u64,
    /// The command that reproduces this run.
    pub command: String,
    /// The same as arguments of `verity run` (what `verity run --replay` runs); empty in runs
    /// recorded before it was kept, whose `command` is split instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The machine the run was recorded on, so that a replay can say what differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    /// Target options given on the command line (`isolation` → `serializable`).
    #[serde(default)]
    pub target_options: std::collections::BTreeMap<String, String>,
    /// Wall-clock start, RFC 3339 (histories themselves only hold monotonic time).
    pub started_at: String,
    pub time_limit_s: f64,
    pub concurrency: u32,
    pub rate: u64,
    pub op_timeout_s: f64,
    pub accounts: u32,
    pub hot: f64,
    #[serde(default)]
    pub nodes: u32,
    /// The fault kinds of the nemesis (empty: none).
    #[serde(default)]
    pub nemesis: Vec<String>,
    #[serde(default)]
    pub nemesis_interval_s: f64,
    /// The checkers of the test plan.
    pub checkers: Vec<String>,
}

/// The shape of the machine a run was recorded on (no names: run.json may be shared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub os: String,
    pub arch: String,
    pub cpus: usize,
}

impl Host {
    pub fn this() -> Host {
        Host {
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Creates a fresh run directory under `store`; a suffix keeps two runs in one second apart.
pub fn create_run_dir(
    store: &Path,
    target: &str,
    workload: &str,
    stamp: &str,
) -> anyhow::Result<PathBuf> {
    let parent = store.join(format!("{target}-{workload}"));
    fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    for n in 0..1000 {
        let name = if n == 0 {
            stamp.to_string()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = parent.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    anyhow::bail!(
        "more than 1000 runs started in one second under {}",
        parent.display()
    )
}

/// Puts `<store>/latest` back to what it pointed at before (a link read with `read_link`), or
/// removes it if there was none.
pub fn restore_latest(store: &Path, previous: Option<&Path>) {
    let _ = match previous {
        Some(p) => point_latest(store, p),
        None => fs::remove_file(store.join("latest")).map_err(Into::into),
    };
}

/// Points `<store>/latest` at `dir` (a relative symlink, replaced atomically).
pub fn update_latest(store: &Path, dir: &Path) -> anyhow::Result<()> {
    point_latest(store, dir.strip_prefix(store).unwrap_or(dir))
}

fn point_latest(store: &Path, rel: &Path) -> anyhow::Result<()> {
    let tmp = store.join(".latest.tmp");
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(rel, &tmp).context("cannot create the latest link")?;
    fs::rename(&tmp, store.join("latest")).context("cannot replace the latest link")?;
    Ok(())
}

/// Writes `value` as pretty JSON, atomically: to a temporary file beside `path`, then renamed over
/// it, so a run killed mid-write leaves the old file or the new one, never half of one.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("cannot serialize")?;
    text.push('\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

pub fn read_meta(dir: &Path) -> anyhow::Result<Option<RunMeta>> {
    let path = dir.join(META_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("malformed {}", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
