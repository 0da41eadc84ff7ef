//! Integration tests of the nemesis executor with real processes and a real proxy mesh: a paused
//! process is in state `T` and resumes, a killed node restarts, a partition really cuts the links it
//! names and no others, and whatever ends the test body — a normal heal, a dropped executor, a panic —
//! leaves no process stopped and every link passing. `verity heal`'s state-file path is tested with a
//! controller that is gone and one that is still alive.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use support::{eventually, eventually_blocking, Echo, Sleeper};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use verity_nemesis::faults::{Fault, GrudgeKind, Partition, Transition, PRIMARY};
use verity_nemesis::nemesis::Nemesis;
use verity_nemesis::nodes::{ControlError, Links, Nodes};
use verity_nemesis::proxy::{LinkState, ProxyConfig, ProxyMesh, CLIENT};
use verity_nemesis::schedule::schedule;
use verity_nemesis::signal::process_state;
use verity_nemesis::state::{heal_from_state_file, heal_state_dir, state_file_path, StateFile};

const WITHIN: Duration = Duration::from_secs(10);

/// A supervisor whose "nodes" are `sleep 30` processes: kill is SIGKILL + reap, restart spawns anew.
#[derive(Default)]
struct FakeControl {
    nodes: Mutex<BTreeMap<String, Option<Sleeper>>>,
    log: Mutex<Vec<String>>,
    primary: Mutex<Option<String>>,
}

impl FakeControl {
    fn with_nodes(names: &[&str]) -> Arc<FakeControl> {
        let c = FakeControl::default();
        for n in names {
            c.nodes.lock().insert(n.to_string(), Some(Sleeper::spawn()));
        }
        Arc::new(c)
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().clone()
    }
}

#[async_trait]
impl Nodes for FakeControl {
    fn names(&self) -> Vec<String> {
        self.nodes.lock().keys().cloned().collect()
    }

    fn listen_addrs(&self) -> BTreeMap<String, SocketAddr> {
        BTreeMap::new()
    }

    fn route_through(&self, _links: Arc<dyn Links>) -> Result<(), ControlError> {
        Ok(())
    }

    fn pid(&self, node: &str) -> Option<u32> {
        self.nodes.lock().get(node)?.as_ref().map(Sleeper::pid)
    }

    async fn kill(&self, node: &str) -> Result<(), ControlError> {
        self.log.lock().push(format!("kill {node}"));
        let old = self
            .nodes
            .lock()
            .get_mut(node)
            .ok_or("no such node")?
            .take();
        drop(old); // SIGKILL and reap
        Ok(())
    }

    async fn restart(&self, node: &str) -> Result<(), ControlError> {
        self.log.lock().push(format!("restart {node}"));
        *self.nodes.lock().get_mut(node).ok_or("no such node")? = Some(Sleeper::spawn());
        Ok(())
    }

    async fn primary(&self) -> Option<String> {
        self.primary.lock().clone()
    }
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

async fn mesh(echoes: &[&Echo]) -> Arc<ProxyMesh> {
    let nodes: Vec<(String, Option<SocketAddr>)> = echoes
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("n{}", i + 1), Some(e.addr)))
        .collect();
    Arc::new(
        ProxyMesh::start(&[CLIENT], &nodes, ProxyConfig::default(), 3)
            .await
            .unwrap(),
    )
}

fn isolate(node: &str, all: &[String]) -> Fault {
    let rest: Vec<String> = all.iter().filter(|n| *n != node).cloned().collect();
    let mut grudge = BTreeMap::new();
    grudge.insert(node.to_string(), rest.iter().cloned().collect());
    for r in &rest {
        grudge.insert(r.clone(), [node.to_string()].into_iter().collect());
    }
    Fault::Partition(Partition {
        kind: GrudgeKind::IsolateOne,
        cut: vec![vec![node.to_string()], rest],
        grudge,
    })
}

fn pause(nodes: &[&str]) -> Fault {
    Fault::Pause {
        nodes: nodes.iter().map(|s| s.to_string()).collect(),
    }
}

fn kill(nodes: &[&str]) -> Fault {
    Fault::Kill {
        nodes: nodes.iter().map(|s| s.to_string()).collect(),
    }
}

fn is_state(pid: u32, want: char) -> impl FnMut() -> bool {
    move || process_state(pid) == Some(want)
}

#[tokio::test]
async fn pause_stops_the_process_and_resume_continues_it() {
    let control = FakeControl::with_nodes(&["n1", "n2"]);
    let dir = tempfile::tempdir().unwrap();
    let state_path = dir.path().join("nemesis.json");
    let nemesis = Nemesis::new(None, control.clone(), Some(state_path.clone()));
    let pid = control.pid("n1").unwrap();
    assert!(eventually(WITHIN, is_state(pid, 'S')).await);

    let started = nemesis.apply(&Transition::Start(pause(&["n1"]))).await;
    assert_eq!(
        (started.f.as_str(), started.error.as_deref()),
        ("pause", None)
    );
    assert!(
        eventually(WITHIN, is_state(pid, 'T')).await,
        "paused node must be in state T"
    );
    let recorded: StateFile =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(recorded.paused.get("n1"), Some(&pid));
    assert_eq!(recorded.controller_pid, std::process::id());
    assert!(recorded.paused_start.contains_key("n1") && recorded.controller_start.is_some());

    let stopped = nemesis.apply(&Transition::Stop(pause(&["n1"]))).await;
    assert_eq!(stopped.f.as_str(), "resume");
    assert!(
        eventually(WITHIN, is_state(pid, 'S')).await,
        "resumed node must sleep again"
    );
    assert!(!state_path.exists(), "no active fault, no state file");
    assert_ne!(process_state(control.pid("n2").unwrap()), Some('T'));
}

#[tokio::test]
async fn kill_then_restart_goes_through_the_supervisor() {
    let control = FakeControl::with_nodes(&["n1", "n2", "n3"]);
    let nemesis = Nemesis::new(None, control.clone(), None);
    let old = control.pid("n2").unwrap();
    let a = nemesis.apply(&Transition::Start(kill(&["n2"]))).await;
    assert_eq!((a.f.as_str(), a.error), ("kill", None));
    assert_eq!(control.pid("n2"), None);
    assert_eq!(process_state(old), None, "the old process is gone");
    let b = nemesis.apply(&Transition::Stop(kill(&["n2"]))).await;
    assert_eq!(b.f.as_str(), "restart");
    let new = control.pid("n2").expect("restarted");
    assert_ne!(new, old);
    assert!(eventually(WITHIN, is_state(new, 'S')).await);
    assert_eq!(control.log(), vec!["kill n2", "restart n2"]);
}

#[tokio::test]
async fn pausing_a_node_that_is_down_is_reported_not_fatal() {
    let control = FakeControl::with_nodes(&["n1"]);
    let nemesis = Nemesis::new(None, control.clone(), None);
    nemesis.apply(&Transition::Start(kill(&["n1"]))).await;
    let p = nemesis.apply(&Transition::Start(pause(&["n1"]))).await;
    assert!(p.error.unwrap().contains("down"));
    let again = nemesis.apply(&Transition::Start(kill(&["n1"]))).await;
    assert_eq!(again.error.as_deref(), Some("already active"));
    let never = nemesis.apply(&Transition::Stop(pause(&["n9"]))).await;
    assert_eq!(never.error.as_deref(), Some("not active"));
}

#[tokio::test]
async fn a_partition_cuts_exactly_its_grudge_and_heals() {
    let (e1, e2, e3) = (
        Echo::start().await,
        Echo::start().await,
        Echo::start().await,
    );
    let proxy = mesh(&[&e1, &e2, &e3]).await;
    let control = FakeControl::with_nodes(&["n1", "n2", "n3"]);
    let nemesis = Nemesis::new(Some(proxy.clone()), control, None);
    let fault = isolate("n1", &names(3));
    let applied = nemesis.apply(&Transition::Start(fault.clone())).await;
    assert_eq!(applied.f.as_str(), "start-partition");
    for a in names(3) {
        for b in names(3) {
            if a == b {
                continue;
            }
            let want = if a == "n1" || b == "n1" {
                LinkState::Drop
            } else {
                LinkState::Pass
            };
            assert_eq!(proxy.state(&a, &b), Some(want), "{a}->{b}");
        }
        assert_eq!(
            proxy.state(CLIENT, &a),
            Some(LinkState::Pass),
            "clients are not partitioned"
        );
    }
    let mut s = TcpStream::connect(proxy.addr("n2", "n1").unwrap())
        .await
        .unwrap();
    s.write_all(b"hello").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e1.received(), 0, "the partition really drops traffic");
    nemesis.apply(&Transition::Stop(fault)).await;
    assert!(proxy.all_pass());
    let mut back = [0u8; 5];
    tokio::time::timeout(WITHIN, s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"hello");
}

#[tokio::test]
async fn delay_and_loss_touch_every_link_of_their_nodes() {
    let (e1, e2) = (Echo::start().await, Echo::start().await);
    let proxy = mesh(&[&e1, &e2]).await;
    let nemesis = Nemesis::new(Some(proxy.clone()), FakeControl::with_nodes(&[]), None);
    let delay = Fault::Delay {
        nodes: vec!["n2".into()],
        delay_ms: 50,
        jitter_ms: 10,
    };
    assert_eq!(
        nemesis
            .apply(&Transition::Start(delay.clone()))
            .await
            .f
            .as_str(),
        "start-delay"
    );
    let want = LinkState::Delay {
        delay_ms: 50,
        jitter_ms: 10,
    };
    assert_eq!(proxy.state(CLIENT, "n2"), Some(want));
    assert_eq!(proxy.state("n2", "n1"), Some(want));
    assert_eq!(proxy.state(CLIENT, "n1"), Some(LinkState::Pass));
    nemesis.apply(&Transition::Stop(delay)).await;
    let loss = Fault::Loss {
        nodes: names(2),
        p: 0.1,
    };
    assert_eq!(
        nemesis
            .apply(&Transition::Start(loss.clone()))
            .await
            .f
            .as_str(),
        "start-loss"
    );
    assert_eq!(proxy.state(CLIENT, "n1"), Some(LinkState::Loss { p: 0.1 }));
    assert_eq!(
        nemesis.apply(&Transition::Stop(loss)).await.f.as_str(),
        "stop-loss"
    );
    assert!(proxy.all_pass());
}

#[tokio::test]
async fn heal_all_stops_everything_newest_first() {
    let (e1, e2, e3) = (
        Echo::start().await,
        Echo::start().await,
        Echo::start().await,
    );
    let proxy = mesh(&[&e1, &e2, &e3]).await;
    let control = FakeControl::with_nodes(&["n1", "n2", "n3"]);
    let dir = tempfile::tempdir().unwrap();
    let state_path = dir.path().join("nemesis.json");
    let nemesis = Nemesis::new(
        Some(proxy.clone()),
        control.clone(),
        Some(state_path.clone()),
    );
    let paused_pid = control.pid("n3").unwrap();
    nemesis
        .apply(&Transition::Start(isolate("n1", &names(3))))
        .await;
    nemesis.apply(&Transition::Start(pause(&["n3"]))).await;
    nemesis.apply(&Transition::Start(kill(&["n2"]))).await;
    assert!(state_path.exists());
    assert_eq!(nemesis.active().len(), 3);

    let healed = nemesis.heal_all().await;
    let fs: Vec<&str> = healed.iter().map(|a| a.f.as_str()).collect();
    assert_eq!(fs, vec!["restart", "resume", "stop-partition"]);
    assert!(healed.iter().all(|a| a.error.is_none()), "{healed:?}");
    assert!(nemesis.active().is_empty());
    assert!(proxy.all_pass());
    assert!(eventually(WITHIN, is_state(paused_pid, 'S')).await);
    assert!(control.pid("n2").is_some());
    assert!(!state_path.exists());
    assert!(
        nemesis.heal_all().await.is_empty(),
        "healing twice is harmless"
    );
}

#[test]
fn a_panic_while_faults_are_active_leaves_nothing_paused_and_every_link_passing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let control = FakeControl::with_nodes(&["n1", "n2", "n3"]);
    let pids: Vec<u32> = names(3).iter().map(|n| control.pid(n).unwrap()).collect();
    let (echoes, proxy) = runtime.block_on(async {
        let echoes = vec![
            Echo::start().await,
            Echo::start().await,
            Echo::start().await,
        ];
        let proxy = mesh(&echoes.iter().collect::<Vec<_>>()).await;
        (echoes, proxy)
    });
    let nemesis = Arc::new(Nemesis::new(Some(proxy.clone()), control.clone(), None));
    let task = {
        let nemesis = nemesis.clone();
        runtime.spawn(async move {
            let _guard = nemesis.guard();
            nemesis
                .apply(&Transition::Start(pause(&["n1", "n2", "n3"])))
                .await;
            nemesis
                .apply(&Transition::Start(isolate("n2", &names(3))))
                .await;
            assert!(!nemesis.active().is_empty());
            panic!("injected failure in the middle of a run");
        })
    };
    let joined = runtime.block_on(task);
    assert!(joined.unwrap_err().is_panic());
    for pid in pids {
        assert!(
            eventually_blocking(WITHIN, is_state(pid, 'S')),
            "pid {pid} left in state {:?}",
            process_state(pid)
        );
    }
    assert!(proxy.all_pass());
    // And bytes really flow over the link the partition had cut.
    runtime.block_on(async {
        let mut s = TcpStream::connect(proxy.addr("n1", "n2").unwrap())
            .await
            .unwrap();
        s.write_all(b"after").await.unwrap();
        let mut back = [0u8; 5];
        tokio::time::timeout(WITHIN, s.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echoes[1].received(), 5);
    });
}

#[tokio::test]
async fn dropping_the_nemesis_heals() {
    let control = FakeControl::with_nodes(&["n1"]);
    let pid = control.pid("n1").unwrap();
    {
        let nemesis = Nemesis::new(None, control.clone(), None);
        nemesis.apply(&Transition::Start(pause(&["n1"]))).await;
        assert!(eventually(WITHIN, is_state(pid, 'T')).await);
    }
    assert!(eventually(WITHIN, is_state(pid, 'S')).await);
}

#[tokio::test]
async fn running_a_schedule_applies_every_step_in_order_and_ends_healed() {
    let (e1, e2, e3) = (
        Echo::start().await,
        Echo::start().await,
        Echo::start().await,
    );
    let proxy = mesh(&[&e1, &e2, &e3]).await;
    let control = FakeControl::with_nodes(&["n1", "n2", "n3"]);
    *control.primary.lock() = Some("n2".into());
    let nemesis = Nemesis::new(Some(proxy.clone()), control.clone(), None);
    let kinds =
        verity_nemesis::faults::FaultKind::parse_list("partition,pause,kill,delay,loss").unwrap();
    let steps = schedule(
        11,
        &kinds,
        Duration::from_millis(100),
        Duration::from_millis(1500),
        &names(3),
    );
    assert!(steps.len() >= 4);
    let mut events = Vec::new();
    nemesis
        .run(&steps, tokio::time::Instant::now(), |a| events.push(a))
        .await;
    assert_eq!(events.len(), steps.len());
    for (a, s) in events.iter().zip(&steps) {
        let resolved = s.transition.fault().resolve_primary("n2", &names(3));
        assert_eq!(a.transition.fault(), &resolved);
        assert_eq!(a.transition.is_start(), s.transition.is_start());
        assert_eq!(a.f.as_str(), s.transition.event_name());
        assert_eq!(a.error, None, "{a:?}");
    }
    assert!(nemesis.active().is_empty());
    assert!(nemesis.heal_all().await.is_empty());
    assert!(proxy.all_pass());
    for n in names(3) {
        let pid = control.pid(&n).expect("every node is up at the end");
        assert_ne!(process_state(pid), Some('T'));
    }
}

#[test]
fn heal_from_state_file_resumes_paused_pids_of_a_dead_controller() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nemesis.json");
    let paused = Sleeper::spawn();
    let running = Sleeper::spawn();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(paused.pid() as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    assert!(eventually_blocking(WITHIN, is_state(paused.pid(), 'T')));
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    let state = StateFile {
        controller_pid: dead.id(),
        paused: [
            ("n1".to_string(), paused.pid()),
            ("n2".to_string(), running.pid()),
        ]
        .into(),
        killed: vec!["n3".into()],
        ..StateFile::default()
    };
    std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();

    let report = heal_from_state_file(&path).unwrap();
    assert_eq!(report.resumed, vec![("n1".to_string(), paused.pid())]);
    assert_eq!(
        report.gone,
        vec![("n2".to_string(), running.pid())],
        "a running pid is not ours to signal"
    );
    assert_eq!(report.still_killed, vec!["n3".to_string()]);
    assert!(eventually_blocking(WITHIN, is_state(paused.pid(), 'S')));
    assert!(!path.exists());
    let again = heal_from_state_file(&path).unwrap();
    assert!(again.resumed.is_empty() && again.notes[0].contains("nothing to heal"));
}

#[test]
fn heal_from_state_file_keeps_the_file_while_the_controller_lives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nemesis.json");
    let controller = Sleeper::spawn();
    let state = StateFile {
        controller_pid: controller.pid(),
        ..StateFile::default()
    };
    std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
    let report = heal_from_state_file(&path).unwrap();
    assert!(report.notes[0].contains("still running"));
    assert!(path.exists());
    std::fs::write(&path, "{not json").unwrap();
    assert!(heal_from_state_file(&path).is_err());
}

#[test]
fn heal_state_dir_heals_every_run_that_left_a_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(heal_state_dir(&dir.path().join("missing"))
        .unwrap()
        .is_empty());
    let paused = Sleeper::spawn();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(paused.pid() as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    assert!(eventually_blocking(WITHIN, is_state(paused.pid(), 'T')));
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    let state = StateFile {
        controller_pid: dead.id(),
        paused: [("n1".to_string(), paused.pid())].into(),
        ..StateFile::default()
    };
    let ours = state_file_path(dir.path());
    assert!(ours
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("nemesis-"));
    let other = dir.path().join("nemesis-1.json");
    std::fs::write(&other, serde_json::to_string(&state).unwrap()).unwrap();
    std::fs::write(dir.path().join("unrelated.json"), "{}").unwrap();
    let healed = heal_state_dir(dir.path()).unwrap();
    assert_eq!(healed.len(), 1);
    assert_eq!(healed[0].1.resumed, vec![("n1".to_string(), paused.pid())]);
    assert!(eventually_blocking(WITHIN, is_state(paused.pid(), 'S')));
    assert!(!other.exists());
}

#[test]
fn heal_from_state_file_never_signals_a_reused_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nemesis.json");
    let stopped = Sleeper::spawn();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(stopped.pid() as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    assert!(eventually_blocking(WITHIN, is_state(stopped.pid(), 'T')));
    // The file says the pid belonged to a process that started at another time: not ours.
    let start = verity_nemesis::signal::process_start_time(stopped.pid()).unwrap();
    let state = StateFile {
        controller_pid: u32::MAX,
        paused: [("n1".to_string(), stopped.pid())].into(),
        paused_start: [("n1".to_string(), start + 1)].into(),
        ..StateFile::default()
    };
    std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
    let report = heal_from_state_file(&path).unwrap();
    assert!(report.resumed.is_empty());
    assert_eq!(
        process_state(stopped.pid()),
        Some('T'),
        "a stranger's stopped process stays stopped"
    );
}

#[tokio::test]
async fn faults_aimed_at_the_primary_hit_the_node_the_supervisor_names() {
    let (e1, e2, e3) = (
        Echo::start().await,
        Echo::start().await,
        Echo::start().await,
    );
    let proxy = mesh(&[&e1, &e2, &e3]).await;
    let control = FakeControl::with_nodes(&["n1", "n2", "n3"]);
    *control.primary.lock() = Some("n2".into());
    let nemesis = Nemesis::new(Some(proxy.clone()), control.clone(), None);
    let scheduled = pause(&[PRIMARY]);
    let started = nemesis.apply(&Transition::Start(scheduled.clone())).await;
    assert_eq!(
        started.transition,
        Transition::Start(pause(&["n2"])),
        "the event names the node"
    );
    assert_eq!(started.error, None);
    let pid = control.pid("n2").unwrap();
    assert!(eventually(WITHIN, is_state(pid, 'T')).await);
    // The leader changes meanwhile: the scheduled stop still resumes the node that was paused.
    *control.primary.lock() = Some("n3".into());
    let stopped = nemesis.apply(&Transition::Stop(scheduled)).await;
    assert_eq!(stopped.transition, Transition::Stop(pause(&["n2"])));
    assert!(eventually(WITHIN, is_state(pid, 'S')).await);

    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let cut =
        Fault::Partition(Partition::new(GrudgeKind::IsolatePrimary, &names(3), &mut rng).unwrap());
    let a = nemesis.apply(&Transition::Start(cut.clone())).await;
    assert!(a.f.as_str() == "start-partition" && a.error.is_none());
    assert_eq!(proxy.state("n1", "n3"), Some(LinkState::Drop));
    assert_eq!(proxy.state("n3", "n2"), Some(LinkState::Drop));
    assert_eq!(proxy.state("n1", "n2"), Some(LinkState::Pass));
    assert_eq!(
        a.value.get("cut").and_then(|c| c.as_list()).map(<[_]>::len),
        Some(2)
    );
    nemesis.apply(&Transition::Stop(cut.clone())).await;
    assert!(proxy.all_pass() && nemesis.active().is_empty());

    // Healed by heal_all, the scheduled stop that comes later finds nothing to do.
    nemesis.apply(&Transition::Start(cut.clone())).await;
    assert_eq!(nemesis.heal_all().await.len(), 1);
    assert_eq!(
        nemesis.apply(&Transition::Stop(cut)).await.error.as_deref(),
        Some("not active")
    );
}

#[tokio::test]
async fn without_a_known_primary_the_first_node_is_hit_and_the_event_says_so() {
    let (e1, e2) = (Echo::start().await, Echo::start().await);
    let proxy = mesh(&[&e1, &e2]).await;
    let control = FakeControl::with_nodes(&["n1", "n2"]);
    let nemesis = Nemesis::new(Some(proxy), control.clone(), None);
    let a = nemesis.apply(&Transition::Start(kill(&[PRIMARY]))).await;
    assert_eq!(a.transition, Transition::Start(kill(&["n1"])));
    assert!(a.error.unwrap().contains("no primary known"));
    assert_eq!(control.pid("n1"), None);
    nemesis.apply(&Transition::Stop(kill(&[PRIMARY]))).await;
    assert!(control.pid("n1").is_some());
    assert_eq!(control.log(), vec!["kill n1", "restart n1"]);
}
