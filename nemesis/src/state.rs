//! The state files behind `verity heal`: what a controller leaves on disk so that a `kill -9` of it
//! leaves nothing broken behind.
//!
//! Two kinds of file live in the state directory (`<store>/.nemesis/`), one per controller and
//! purpose, so that concurrent runs never overwrite each other's:
//! - `nemesis-<pid>.json`, written by the executor while any fault is active: the paused pids (with
//!   their start times, so a reused pid is never signalled), the killed nodes, the proxy's ports;
//! - `processes-<pid>-<tag>.json`, written by a [`Supervisor`](crate::process::Supervisor) while it
//!   has processes running: every node's process group and start time, and the temporary
//!   directories to remove.
//!
//! [`heal_state_dir`] reads them all. While the controller that wrote a file is alive, the file is
//! left alone (the controller heals on SIGTERM itself). Once it is dead: paused processes are resumed,
//! every recorded process group that is still the one started is killed, its directories removed,
//! and the file deleted. The proxy lived inside the controller, so its links died with it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::faults::Fault;
use crate::process::Registry;
use crate::signal::{process_state, same_process, send, signal_group, Signal};

#[derive(Debug, Error)]
pub enum NemesisError {
    #[error("read the nemesis state file {path}: {source}")]
    ReadState {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse the nemesis state file {path}: {source}")]
    ParseState {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("list nemesis state files in {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("remove the nemesis state file {path}: {source}")]
    RemoveState {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the state file records while faults are active.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// The controller process; the proxy lives inside it.
    pub controller_pid: u32,
    /// When the controller started (clock ticks since boot, `/proc/<pid>/stat` field 22), so that a
    /// reused pid is not mistaken for it.
    #[serde(default)]
    pub controller_start: Option<u64>,
    /// The proxy's listeners, "src->dst" to port.
    pub proxy_ports: BTreeMap<String, u16>,
    /// Nodes the nemesis stopped with SIGSTOP, and the pid it stopped.
    pub paused: BTreeMap<String, u32>,
    /// When each paused process started, so that a reused pid is never signalled.
    #[serde(default)]
    pub paused_start: BTreeMap<String, u64>,
    /// Nodes the nemesis killed and has not restarted.
    pub killed: Vec<String>,
    pub active: Vec<Fault>,
}

/// What a heal did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HealReport {
    /// (node, process group) of servers killed because their controller is gone.
    pub killed: Vec<(String, u32)>,
    /// Temporary directories removed.
    pub removed: Vec<PathBuf>,
    /// (node, pid) resumed with SIGCONT.
    pub resumed: Vec<(String, u32)>,
    /// (node, pid) recorded as paused that no longer exist or are no longer stopped.
    pub gone: Vec<(String, u32)>,
    /// Nodes killed and not restarted by this heal (a synchronous heal cannot start processes).
    pub still_killed: Vec<String>,
    /// Whether the links were set to pass (false when the proxy died with the controller).
    pub links_passed: bool,
    pub notes: Vec<String>,
}

/// Writes the executor's state file while faults are active, and removes it when none are.
pub fn write_state(path: &Path, state: &StateFile) -> std::io::Result<()> {
    if state.active.is_empty() && state.paused.is_empty() && state.killed.is_empty() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    write_atomically(path, state)
}

/// Writes `value` as JSON to `path` through a temporary file and a rename, so that a reader (or a
/// crash) never sees half a file.
pub fn write_atomically<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = fs::File::create(&tmp)?;
        let json = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        file.write_all(&json)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Undoes what a killed controller left behind, from its state file: resumes every recorded paused
/// process that is still stopped, then removes the file. The proxy lived inside the controller, so its
/// links died with it and need nothing; if the controller is still alive, its links are its own to
/// heal (it heals on SIGTERM) and the file is kept. Killed nodes are not restarted: the target's
/// supervisor died with the controller (its registry file has the servers killed). A missing file means there is nothing to heal.
pub fn heal_from_state_file(path: &Path) -> Result<HealReport, NemesisError> {
    let Some(state) = read_json::<StateFile>(path)? else {
        return Ok(HealReport {
            notes: vec![format!(
                "no state file at {}: nothing to heal",
                path.display()
            )],
            ..HealReport::default()
        });
    };
    let mut report = HealReport::default();
    for (node, pid) in &state.paused {
        // Only the very process we stopped, still stopped, is ours to resume: a reused pid is not.
        let same = same_process(*pid, state.paused_start.get(node).copied());
        if same && process_state(*pid) == Some('T') && send(*pid, Signal::SIGCONT).is_ok() {
            report.resumed.push((node.clone(), *pid));
        } else {
            report.gone.push((node.clone(), *pid));
        }
    }
    report.still_killed = state.killed.clone();
    if controller_alive(state.controller_pid, state.controller_start) {
        report.notes.push(format!(
            "controller pid {} is still running and owns the proxy: stop it with SIGTERM and it heals its links",
            state.controller_pid
        ));
        return Ok(report);
    }
    report
        .notes
        .push("the proxy died with the controller: its links need no healing".to_string());
    fs::remove_file(path).map_err(|source| NemesisError::RemoveState {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(report)
}

/// Where a controller keeps its state file inside `dir`: one file per controller process, so that
/// concurrent runs never overwrite each other's and `verity heal` can find them all.
pub fn state_file_path(dir: &Path) -> PathBuf {
    dir.join(format!("nemesis-{}.json", std::process::id()))
}

/// Heals every state file (`nemesis-*.json`, then `processes-*.json`) in `dir`, in name order: what `verity heal` runs. A
/// missing directory means there is nothing to heal.
pub fn heal_state_dir(dir: &Path) -> Result<Vec<(PathBuf, HealReport)>, NemesisError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(NemesisError::ReadDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (name.starts_with("nemesis-") || name.starts_with("processes-"))
                && name.ends_with(".json")
        })
        .collect();
    // Resume paused processes first (nemesis-), then kill what is left (processes-).
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let is_registry = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("processes-"));
            let report = if is_registry {
                heal_from_registry(&p)
            } else {
                heal_from_state_file(&p)
            };
            report.map(|r| (p, r))
        })
        .collect()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, NemesisError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NemesisError::ReadState {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| NemesisError::ParseState {
            path: path.to_path_buf(),
            source,
        })
}

/// Whether the controller that wrote a file still runs (then the file is its own business).
fn controller_alive(pid: u32, start: Option<u64>) -> bool {
    pid != std::process::id()
        && process_state(pid).is_some_and(|s| s != 'Z')
        && same_process(pid, start)
}

/// Kills the process groups a dead controller's supervisor left running and removes their
/// temporary directories: what `verity heal` does with a `processes-*.json` registry.
pub fn heal_from_registry(path: &Path) -> Result<HealReport, NemesisError> {
    let mut report = HealReport::default();
    let Some(registry) = read_json::<Registry>(path)? else {
        return Ok(report);
    };
    if controller_alive(registry.controller_pid, registry.controller_start) {
        report.notes.push(format!(
            "controller pid {} is still running and owns its servers: stop it with SIGTERM",
            registry.controller_pid
        ));
        return Ok(report);
    }
    for (node, p) in &registry.processes {
        // Only the very group we started: a pid reused since is someone else's.
        if !same_process(p.pgid, p.start) {
            continue;
        }
        let _ = signal_group(p.pgid, Signal::SIGCONT);
        if signal_group(p.pgid, Signal::SIGKILL).is_ok() {
            report.killed.push((node.clone(), p.pgid));
        }
    }
    for p in registry.processes.values() {
        wait_gone(p.pgid);
    }
    for dir in &registry.cleanup {
        if dir.exists() && fs::remove_dir_all(dir).is_ok() {
            report.removed.push(dir.clone());
        }
    }
    fs::remove_file(path).map_err(|source| NemesisError::RemoveState {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(report)
}

/// Waits (up to 5 s) until no live process is left in a killed group, so its files can go.
fn wait_gone(pgid: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while crate::signal::group_alive(pgid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
