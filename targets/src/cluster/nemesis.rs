//! The nemesis: executes fault transitions on a running cluster — link states through the proxy mesh,
//! SIGSTOP/SIGCONT for pause, kill and restart through the supervisor — keeps the set of active faults,
//! and heals all of them whatever happens.
//!
//! It follows Jepsen's `nemesis` protocol (setup, invoke start/stop, teardown that heals) and turmoil's
//! rule guards that uninstall themselves on `Drop`. Two user complaints shaped it: partitions left
//! unhealed when the stop op was never generated (jepsen#602) and paused nodes never resumed when the
//! time limit hit (eloqsql#81). So:
//! - the active set is updated *before* a fault's effect begins, so a heal after any interruption
//!   (a dropped future, a panic, Ctrl-C) covers it;
//! - [`Nemesis::heal_all`] stops every active fault and returns the transitions for the history;
//!   [`Nemesis::heal_sync`] (also run by `Drop` and by [`HealGuard`]) passes every link and resumes every
//!   paused process without awaiting anything, so it works while a panic unwinds;
//! - while any fault is active a state file (JSON) records the paused pids and the proxy's ports, and
//!   [`heal_from_state_file`] undoes what it can after the controller died by SIGKILL. The proxy lives
//!   inside the controller, so its links died with it: after a `kill -9`, healing mostly means SIGCONT
//!   of the paused pids.
//!
//! Kill and restart go through [`NodeControl`], which the cluster's supervisor implements; tests use a
//! fake. Process signals use `nix`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use verity_history::{Value, F};

use super::faults::{Fault, Transition, PRIMARY};
use super::proxy::CLIENT;
use super::proxy::{LinkState, ProxyMesh};
use super::schedule::Step;

/// Errors a [`NodeControl`] may return; any error type converts into it.
pub type ControlError = Box<dyn std::error::Error + Send + Sync>;

/// What the nemesis needs from the process supervisor of a cluster.
#[async_trait]
pub trait NodeControl: Send + Sync {
    /// The pid of the node's running process, or `None` while it is down.
    fn pid(&self, node: &str) -> Option<u32>;
    /// Kills the node's process with SIGKILL and waits until it is gone.
    async fn kill(&self, node: &str) -> Result<(), ControlError>;
    /// Starts the node again on its data directory, address and log.
    async fn restart(&self, node: &str) -> Result<(), ControlError>;
    /// The node that is primary (leader) now, if the cluster has one and can tell. Faults aimed at
    /// the primary ([`PRIMARY`]) are resolved with it; without one they hit the first node.
    async fn primary(&self) -> Option<String> {
        None
    }
}

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

/// A transition as it was carried out, ready to become a `nemesis` `info` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub transition: Transition,
    pub f: F,
    pub value: Value,
    /// What could not be done (a node without a pid, a restart that failed), for the event's `error`.
    pub error: Option<String>,
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

#[derive(Debug, Default)]
struct Active {
    /// Active faults as carried out (primary placeholders resolved).
    faults: Vec<Fault>,
    /// (fault as scheduled, fault as carried out) for faults aimed at the primary, so that the
    /// scheduled stop finds what the start did.
    resolved: Vec<(Fault, Fault)>,
    paused: BTreeMap<String, u32>,
    killed: BTreeSet<String>,
}

/// Executes faults and heals them.
pub struct Nemesis {
    proxy: Option<Arc<ProxyMesh>>,
    control: Arc<dyn NodeControl>,
    state_file: Option<PathBuf>,
    active: Mutex<Active>,
}

impl Nemesis {
    /// A nemesis over a proxy mesh (None when the target's links are not proxied: only pause and kill
    /// then have an effect) and a supervisor. With `state_file`, active faults are recorded there.
    pub fn new(
        proxy: Option<Arc<ProxyMesh>>,
        control: Arc<dyn NodeControl>,
        state_file: Option<PathBuf>,
    ) -> Self {
        Nemesis {
            proxy,
            control,
            state_file,
            active: Mutex::new(Active::default()),
        }
    }

    /// A guard that heals synchronously when dropped (also while a panic unwinds). Hold it for the
    /// whole run.
    pub fn guard(self: &Arc<Self>) -> HealGuard {
        HealGuard {
            nemesis: self.clone(),
        }
    }

    /// The faults active now, in the order they started.
    pub fn active(&self) -> Vec<Fault> {
        self.active.lock().faults.clone()
    }

    /// Runs a schedule: at `started + step.at` applies each step and hands the result to `record`.
    /// Stops early when dropped; the active set stays right, so a [`Nemesis::heal_all`] afterwards
    /// undoes whatever had begun.
    pub async fn run(
        &self,
        steps: &[Step],
        started: tokio::time::Instant,
        mut record: impl FnMut(Applied) + Send,
    ) {
        for step in steps {
            tokio::time::sleep_until(started + step.at).await;
            record(self.apply(&step.transition).await);
        }
    }

    /// Carries out one transition. Never fails: what could not be done is in [`Applied::error`].
    /// A fault aimed at the primary is resolved when it starts, and the returned transition (and
    /// event value) names the node it hit; its scheduled stop undoes exactly that.
    pub async fn apply(&self, transition: &Transition) -> Applied {
        let mut problems = Vec::new();
        let done = match transition {
            Transition::Start(scheduled) => {
                let fault = self.resolve(scheduled, &mut problems).await;
                if &fault != scheduled {
                    let pair = (scheduled.clone(), fault.clone());
                    self.active.lock().resolved.push(pair);
                }
                self.start(&fault, &mut problems).await;
                Transition::Start(fault)
            }
            Transition::Stop(scheduled) => {
                let fault = {
                    let mut active = self.active.lock();
                    match active
                        .resolved
                        .iter()
                        .position(|(s, r)| s == scheduled || r == scheduled)
                    {
                        Some(i) => active.resolved.remove(i).1,
                        None => scheduled.clone(),
                    }
                };
                self.stop(&fault, &mut problems).await;
                Transition::Stop(fault)
            }
        };
        self.write_state_file(&mut problems);
        let (f, value) = done.to_event();
        Applied {
            transition: done,
            f,
            value,
            error: (!problems.is_empty()).then(|| problems.join("; ")),
        }
    }

    /// Replaces the primary placeholder with the primary the supervisor names now, or else with the
    /// first node, so that the fault still happens (and says where).
    async fn resolve(&self, fault: &Fault, problems: &mut Vec<String>) -> Fault {
        if !fault.targets_primary() {
            return fault.clone();
        }
        let nodes: Vec<String> = self
            .proxy
            .as_ref()
            .map(|p| {
                p.endpoints()
                    .iter()
                    .filter(|n| *n != CLIENT)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let primary = match self.control.primary().await {
            Some(p) => p,
            None => {
                let fallback = nodes.iter().min().cloned();
                problems.push(format!(
                    "no primary known: {} instead",
                    fallback.as_deref().unwrap_or("nothing")
                ));
                match fallback {
                    Some(f) => f,
                    None => return fault.resolve_primary(PRIMARY, &nodes),
                }
            }
        };
        fault.resolve_primary(&primary, &nodes)
    }

    async fn start(&self, fault: &Fault, problems: &mut Vec<String>) {
        {
            let mut active = self.active.lock();
            if active.faults.contains(fault) {
                problems.push("already active".to_string());
                return;
            }
            // Recorded before it takes effect, so any heal covers a half-applied fault.
            active.faults.push(fault.clone());
        }
        match fault {
            Fault::Partition(_) | Fault::Delay { .. } | Fault::Loss { .. } => {
                self.update_links(problems)
            }
            Fault::Pause { nodes } => {
                for node in nodes.iter().filter(|n| *n != PRIMARY) {
                    self.pause(node, problems);
                }
            }
            Fault::Kill { nodes } => {
                for node in nodes.iter().filter(|n| *n != PRIMARY) {
                    {
                        let mut active = self.active.lock();
                        active.killed.insert(node.clone());
                        // A killed process cannot be resumed; its pid may be reused by another.
                        active.paused.remove(node);
                    }
                    if let Err(e) = self.control.kill(node).await {
                        problems.push(format!("kill {node}: {e}"));
                    }
                }
            }
        }
    }

    async fn stop(&self, fault: &Fault, problems: &mut Vec<String>) {
        {
            let mut active = self.active.lock();
            let Some(i) = active.faults.iter().position(|f| f == fault) else {
                problems.push("not active".to_string());
                return;
            };
            active.faults.remove(i);
        }
        match fault {
            Fault::Partition(_) | Fault::Delay { .. } | Fault::Loss { .. } => {
                self.update_links(problems)
            }
            Fault::Pause { nodes } => {
                for node in nodes {
                    let pid = self.active.lock().paused.remove(node);
                    if let Some(pid) = pid {
                        if let Err(e) = send(pid, Signal::SIGCONT) {
                            problems.push(format!("resume {node} (pid {pid}): {e}"));
                        }
                    }
                }
            }
            Fault::Kill { nodes } => {
                for node in nodes {
                    if !self.active.lock().killed.remove(node) {
                        continue;
                    }
                    if let Err(e) = self.control.restart(node).await {
                        problems.push(format!("restart {node}: {e}"));
                    }
                }
            }
        }
    }

    fn pause(&self, node: &str, problems: &mut Vec<String>) {
        if self.active.lock().paused.contains_key(node) {
            problems.push(format!("{node} is already paused"));
            return;
        }
        let Some(pid) = self.control.pid(node) else {
            problems.push(format!("{node} is down: nothing to pause"));
            return;
        };
        // Recorded before the signal, so a heal racing this resumes it.
        self.active.lock().paused.insert(node.to_string(), pid);
        if let Err(e) = send(pid, Signal::SIGSTOP) {
            self.active.lock().paused.remove(node);
            problems.push(format!("pause {node} (pid {pid}): {e}"));
        }
    }

    /// Recomputes every link from the active faults: drop beats loss beats delay beats pass.
    fn update_links(&self, problems: &mut Vec<String>) {
        let Some(proxy) = &self.proxy else {
            problems.push("no proxy: link faults have no effect on this target".to_string());
            return;
        };
        let faults = self.active.lock().faults.clone();
        if let Err(e) = proxy.set_all(|src, dst| link_state(&faults, src, dst)) {
            problems.push(format!("set links: {e}"));
        }
    }

    /// Stops every active fault, newest first, and returns the transitions for the history. Then, as a
    /// safety net, passes every link and resumes anything still recorded as paused.
    pub async fn heal_all(&self) -> Vec<Applied> {
        let mut applied = Vec::new();
        // Bounded: every stop removes one fault, and nothing else adds faults while we hold the
        // only call path; the bound guards against a concurrent start.
        for _ in 0..1_000 {
            let Some(fault) = self.active.lock().faults.last().cloned() else {
                break;
            };
            applied.push(self.apply(&Transition::Stop(fault)).await);
        }
        let _ = self.heal_sync();
        applied
    }

    /// Heals what can be healed without awaiting: every link passes, every paused process is resumed.
    /// Killed nodes stay down (starting processes is the supervisor's job). Safe to call from `Drop`,
    /// a panic hook or a signal-handling task; calling it twice is harmless.
    pub fn heal_sync(&self) -> HealReport {
        let mut report = HealReport::default();
        if let Some(proxy) = &self.proxy {
            proxy.pass_all();
            report.links_passed = true;
        }
        let mut problems = Vec::new();
        {
            let mut active = self.active.lock();
            for (node, pid) in std::mem::take(&mut active.paused) {
                match send(pid, Signal::SIGCONT) {
                    Ok(()) => report.resumed.push((node, pid)),
                    Err(_) => report.gone.push((node, pid)),
                }
            }
            active.faults.retain(|f| matches!(f, Fault::Kill { .. }));
            active
                .resolved
                .retain(|(_, r)| matches!(r, Fault::Kill { .. }));
            report.still_killed = active.killed.iter().cloned().collect();
        }
        self.write_state_file(&mut problems);
        report.notes = problems;
        report
    }

    /// Writes the state file while faults are active and removes it when none are.
    fn write_state_file(&self, problems: &mut Vec<String>) {
        let Some(path) = &self.state_file else {
            return;
        };
        let state = {
            let active = self.active.lock();
            let paused_start = active
                .paused
                .iter()
                .filter_map(|(node, pid)| Some((node.clone(), process_start_time(*pid)?)))
                .collect();
            StateFile {
                controller_pid: std::process::id(),
                controller_start: process_start_time(std::process::id()),
                proxy_ports: self.proxy.as_ref().map(|p| p.ports()).unwrap_or_default(),
                paused: active.paused.clone(),
                paused_start,
                killed: active.killed.iter().cloned().collect(),
                active: active.faults.clone(),
            }
        };
        let result =
            if state.active.is_empty() && state.paused.is_empty() && state.killed.is_empty() {
                match fs::remove_file(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            } else {
                write_atomically(path, &state)
            };
        if let Err(e) = result {
            problems.push(format!("state file {}: {e}", path.display()));
        }
    }
}

impl Drop for Nemesis {
    fn drop(&mut self) {
        let _ = self.heal_sync();
    }
}

/// Heals synchronously when dropped. Returned by [`Nemesis::guard`].
#[must_use = "the guard heals when dropped; dropping it at once heals at once"]
pub struct HealGuard {
    nemesis: Arc<Nemesis>,
}

impl Drop for HealGuard {
    fn drop(&mut self) {
        let _ = self.nemesis.heal_sync();
    }
}

/// The state of bytes from `src` to `dst` under a set of active faults.
pub fn link_state(faults: &[Fault], src: &str, dst: &str) -> LinkState {
    let touches = |nodes: &[String]| nodes.iter().any(|n| n == src || n == dst);
    let mut state = LinkState::Pass;
    for fault in faults {
        let candidate = match fault {
            Fault::Partition(p) if p.drops(src, dst) => LinkState::Drop,
            Fault::Loss { nodes, p } if touches(nodes) => LinkState::Loss { p: *p },
            Fault::Delay {
                nodes,
                delay_ms,
                jitter_ms,
            } if touches(nodes) => LinkState::Delay {
                delay_ms: *delay_ms,
                jitter_ms: *jitter_ms,
            },
            _ => continue,
        };
        if rank(candidate) > rank(state) {
            state = candidate;
        }
    }
    state
}

fn rank(s: LinkState) -> u8 {
    match s {
        LinkState::Pass => 0,
        LinkState::Delay { .. } => 1,
        LinkState::Loss { .. } => 2,
        LinkState::Drop => 3,
    }
}

/// Sends a signal, refusing pids that would hit more than one process or the controller itself.
fn send(pid: u32, sig: Signal) -> Result<(), Errno> {
    let raw = i32::try_from(pid).map_err(|_| Errno::EINVAL)?;
    if raw <= 1 || pid == std::process::id() {
        return Err(Errno::EINVAL);
    }
    signal::kill(Pid::from_raw(raw), sig)
}

/// The scheduling state of a process from `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, …), or `None` if it
/// does not exist.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain ") "; the state follows the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// When a process started, in clock ticks since boot (`/proc/<pid>/stat` field 22): with the pid, it
/// names one process for the life of the machine.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields after the command: state is field 3, so start time (22) is the 20th from here.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `start` (unknown start: assume it is).
fn same_process(pid: u32, start: Option<u64>) -> bool {
    match start {
        Some(start) => process_start_time(pid) == Some(start),
        None => true,
    }
}

fn write_atomically(path: &Path, state: &StateFile) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = fs::File::create(&tmp)?;
        let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        file.write_all(&json)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Undoes what a killed controller left behind, from its state file: resumes every recorded paused
/// process that is still stopped, then removes the file. The proxy lived inside the controller, so its
/// links died with it and need nothing; if the controller is still alive, its links are its own to
/// heal (it heals on SIGTERM) and the file is kept. Killed nodes are not restarted: the cluster's
/// supervisor died with the controller. A missing file means there is nothing to heal.
pub fn heal_from_state_file(path: &Path) -> Result<HealReport, NemesisError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(HealReport {
                notes: vec![format!(
                    "no state file at {}: nothing to heal",
                    path.display()
                )],
                ..HealReport::default()
            })
        }
        Err(source) => {
            return Err(NemesisError::ReadState {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let state: StateFile =
        serde_json::from_str(&text).map_err(|source| NemesisError::ParseState {
            path: path.to_path_buf(),
            source,
        })?;
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
    let controller_alive = state.controller_pid != std::process::id()
        && process_state(state.controller_pid).is_some_and(|s| s != 'Z')
        && same_process(state.controller_pid, state.controller_start);
    if controller_alive {
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

/// Heals every state file (`nemesis-*.json`) in `dir`, in name order: what `verity heal` runs. A
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
            name.starts_with("nemesis-") && name.ends_with(".json")
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| heal_from_state_file(&p).map(|r| (p, r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::cluster::faults::{GrudgeKind, Partition};

    fn one_way(dst: &str, src: &str) -> Fault {
        let mut grudge = BTreeMap::new();
        grudge.insert(dst.to_string(), BTreeSet::from([src.to_string()]));
        Fault::Partition(Partition {
            kind: GrudgeKind::MajoritiesRing,
            cut: Vec::new(),
            grudge,
        })
    }

    #[test]
    fn a_one_way_grudge_drops_one_direction_only() {
        let faults = [one_way("n1", "n3")];
        assert_eq!(link_state(&faults, "n3", "n1"), LinkState::Drop);
        assert_eq!(link_state(&faults, "n1", "n3"), LinkState::Pass);
        assert_eq!(link_state(&faults, "c", "n1"), LinkState::Pass);
    }

    #[test]
    fn drop_beats_loss_beats_delay_and_only_touched_links_change() {
        let delay = Fault::Delay {
            nodes: vec!["n1".into()],
            delay_ms: 10,
            jitter_ms: 0,
        };
        let loss = Fault::Loss {
            nodes: vec!["n1".into()],
            p: 0.1,
        };
        let faults = [delay.clone(), loss.clone(), one_way("n2", "n1")];
        assert_eq!(link_state(&faults, "n1", "n2"), LinkState::Drop);
        assert_eq!(link_state(&faults, "n2", "n1"), LinkState::Loss { p: 0.1 });
        assert_eq!(link_state(&faults[..1], "c", "n1"), delay_state());
        assert_eq!(link_state(&faults[..1], "n2", "n3"), LinkState::Pass);
        assert_eq!(link_state(&[], "n1", "n2"), LinkState::Pass);

        fn delay_state() -> LinkState {
            LinkState::Delay {
                delay_ms: 10,
                jitter_ms: 0,
            }
        }
    }

    #[test]
    fn signals_never_reach_init_the_process_group_or_ourselves() {
        assert_eq!(send(0, Signal::SIGCONT), Err(Errno::EINVAL));
        assert_eq!(send(1, Signal::SIGCONT), Err(Errno::EINVAL));
        assert_eq!(send(u32::MAX, Signal::SIGCONT), Err(Errno::EINVAL));
        assert_eq!(
            send(std::process::id(), Signal::SIGSTOP),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn process_state_reads_our_own_and_none_for_missing() {
        assert!(matches!(process_state(std::process::id()), Some('R' | 'S')));
        assert_eq!(process_state(u32::MAX), None);
        let start = process_start_time(std::process::id()).expect("our own start time");
        assert!(same_process(std::process::id(), Some(start)));
        assert!(!same_process(std::process::id(), Some(start + 1)));
        assert_eq!(process_start_time(u32::MAX), None);
    }
}
