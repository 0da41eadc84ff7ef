//! The nemesis: executes fault transitions on a running target's nodes — link states through the
//! proxy mesh, SIGSTOP/SIGCONT for pause, kill and restart through the target — keeps the set of
//! active faults, and heals all of them whatever happens.
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
//! - while any fault is active a state file (`state.rs`) records the paused pids and the proxy's
//!   ports, so that `verity heal` undoes what it can after the controller died by SIGKILL.
//!
//! The nemesis knows nodes, never the store behind them: kill, restart and the primary come from the
//! target's [`Nodes`]; pause signals the process group a node's pid leads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use verity_history::{Value, F};

use crate::faults::{Fault, Transition, PRIMARY};
use crate::nodes::Nodes;
use crate::proxy::{LinkState, ProxyMesh, CLIENT};
use crate::schedule::Step;
use crate::signal::{process_start_time, send, Signal};
use crate::state::{write_state, HealReport, StateFile};

/// A transition as it was carried out, ready to become a `nemesis` `info` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub transition: Transition,
    pub f: F,
    pub value: Value,
    /// What could not be done (a node without a pid, a restart that failed), for the event's `error`.
    pub error: Option<String>,
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
    nodes: Arc<dyn Nodes>,
    state_file: Option<PathBuf>,
    active: Mutex<Active>,
}

impl Nemesis {
    /// A nemesis over a proxy mesh (None when the target's links are not proxied: only pause and kill
    /// then have an effect) and a supervisor. With `state_file`, active faults are recorded there.
    pub fn new(
        proxy: Option<Arc<ProxyMesh>>,
        nodes: Arc<dyn Nodes>,
        state_file: Option<PathBuf>,
    ) -> Self {
        Nemesis {
            proxy,
            nodes,
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
        let primary = match self.nodes.primary().await {
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
                    if let Err(e) = self.nodes.kill(node).await {
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
                    if let Err(e) = self.nodes.restart(node).await {
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
        let Some(pid) = self.nodes.pid(node) else {
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
        let result = write_state(path, &state);
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::faults::{GrudgeKind, Partition};

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
}
