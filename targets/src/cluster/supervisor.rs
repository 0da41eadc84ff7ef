//! Starts, kills and restarts the `verity node` processes of a cluster, and knows their pids.
//!
//! Each node runs as its own OS process (as Jepsen's `db/Kill` and `db/Pause` assume): a SIGKILL is a
//! real crash that loses everything not fsynced, and the nemesis can SIGSTOP/SIGCONT a node by the pid
//! given here. Nodes get their own process group, so a Ctrl-C at the terminal reaches only verity,
//! which then heals and reads before it stops them; and each node watches its stdin, a pipe from the
//! supervisor, so that a verity killed with -9 takes its nodes with it (the pipe closes) instead of
//! leaving orphans. Standard output and error of a node go to `<dir>/<node>.log`, appended across
//! restarts.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use parking_lot::Mutex;
use thiserror::Error;

use super::bugs::Bugs;
use super::wire::NodeId;

#[derive(Debug, Error)]
pub enum SupervisorError {
    #[error("unknown node {0}")]
    UnknownNode(String),
    #[error("failed to start node {node} ({binary}): {source}")]
    Spawn {
        node: String,
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to prepare {path}: {source}")]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to kill node {node}: {source}")]
    Kill {
        node: String,
        #[source]
        source: std::io::Error,
    },
}

/// Everything needed to start one node process.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: NodeId,
    pub listen: SocketAddr,
    /// Address this node dials for each peer.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
}

struct Running {
    child: Child,
    /// Held open so the node can notice our death; dropped on kill.
    _stdin: Option<ChildStdin>,
}

pub struct Supervisor {
    binary: PathBuf,
    bugs: Bugs,
    seed: u64,
    specs: BTreeMap<NodeId, NodeSpec>,
    running: Mutex<BTreeMap<NodeId, Running>>,
}

/// `n` distinct free loopback addresses, each held by a bound listener until the caller drops it
/// (so nothing else, such as the proxy mesh, can take the port in the meantime). The node binds the
/// port right after its listener is dropped.
pub fn reserve_loopback_addrs(n: usize) -> std::io::Result<Vec<(SocketAddr, TcpListener)>> {
    (0..n)
        .map(|_| {
            let l = TcpListener::bind("127.0.0.1:0")?;
            Ok((l.local_addr()?, l))
        })
        .collect()
}

/// `n` distinct free loopback addresses, released before returning.
pub fn free_loopback_addrs(n: usize) -> std::io::Result<Vec<SocketAddr>> {
    Ok(reserve_loopback_addrs(n)?
        .into_iter()
        .map(|(a, _)| a)
        .collect())
}

impl Supervisor {
    pub fn new(binary: PathBuf, specs: Vec<NodeSpec>, bugs: Bugs, seed: u64) -> Self {
        Supervisor {
            binary,
            bugs,
            seed,
            specs: specs.into_iter().map(|s| (s.id.clone(), s)).collect(),
            running: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.specs.keys().cloned().collect()
    }

    pub fn spec(&self, id: &str) -> Option<&NodeSpec> {
        self.specs.get(id)
    }

    /// The `verity node` arguments of a node.
    pub fn args(&self, spec: &NodeSpec) -> Vec<String> {
        let mut args = vec![
            "node".to_string(),
            "--id".into(),
            spec.id.clone(),
            "--listen".into(),
            spec.listen.to_string(),
            "--data-dir".into(),
            spec.data_dir.display().to_string(),
            "--seed".into(),
            self.seed.to_string(),
            "--watch-stdin".into(),
        ];
        for (peer, addr) in &spec.peers {
            args.push("--peer".into());
            args.push(format!("{peer}={addr}"));
        }
        for bug in self.bugs.names() {
            args.push("--bug".into());
            args.push(bug.into());
        }
        args
    }

    /// Starts a node that is not running; returns its pid.
    pub fn start(&self, id: &str) -> Result<u32, SupervisorError> {
        let spec = self
            .specs
            .get(id)
            .ok_or_else(|| SupervisorError::UnknownNode(id.into()))?;
        let mut running = self.running.lock();
        if let Some(r) = running.get_mut(id) {
            if matches!(r.child.try_wait(), Ok(None)) {
                return Ok(r.child.id());
            }
        }
        let files = |path: &PathBuf| {
            let path = path.clone();
            move |source| SupervisorError::Files { path, source }
        };
        fs::create_dir_all(&spec.data_dir).map_err(files(&spec.data_dir))?;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(files(&spec.log_path))?;
        let args = self.args(spec);
        writeln!(
            log,
            "--- verity supervisor: starting {} {}",
            self.binary.display(),
            args.join(" ")
        )
        .map_err(files(&spec.log_path))?;
        let err_log = log.try_clone().map_err(files(&spec.log_path))?;
        let mut child = Command::new(&self.binary)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(err_log)
            .process_group(0)
            .spawn()
            .map_err(|source| SupervisorError::Spawn {
                node: id.into(),
                binary: self.binary.clone(),
                source,
            })?;
        let pid = child.id();
        let stdin = child.stdin.take();
        running.insert(
            id.to_string(),
            Running {
                child,
                _stdin: stdin,
            },
        );
        Ok(pid)
    }

    pub fn start_all(&self) -> Result<(), SupervisorError> {
        for id in self.specs.keys() {
            self.start(id)?;
        }
        Ok(())
    }

    /// SIGKILLs a node (paused or not) and reaps it. Killing a node that is not running is a no-op.
    pub fn kill(&self, id: &str) -> Result<(), SupervisorError> {
        if !self.specs.contains_key(id) {
            return Err(SupervisorError::UnknownNode(id.into()));
        }
        let Some(mut r) = self.running.lock().remove(id) else {
            return Ok(());
        };
        if matches!(r.child.try_wait(), Ok(None)) {
            r.child.kill().map_err(|source| SupervisorError::Kill {
                node: id.into(),
                source,
            })?;
        }
        // SIGKILL cannot be caught; the wait returns promptly.
        r.child.wait().map_err(|source| SupervisorError::Kill {
            node: id.into(),
            source,
        })?;
        Ok(())
    }

    /// SIGKILL, then start again with the same data directory and addresses.
    pub fn restart(&self, id: &str) -> Result<u32, SupervisorError> {
        self.kill(id)?;
        self.start(id)
    }

    /// The pid of a running node (for SIGSTOP/SIGCONT).
    pub fn pid(&self, id: &str) -> Option<u32> {
        let mut running = self.running.lock();
        let r = running.get_mut(id)?;
        matches!(r.child.try_wait(), Ok(None)).then(|| r.child.id())
    }

    /// Pids of every running node.
    pub fn pids(&self) -> BTreeMap<NodeId, u32> {
        self.specs
            .keys()
            .filter_map(|id| Some((id.clone(), self.pid(id)?)))
            .collect()
    }

    /// Kills every node. Safe to call more than once.
    pub fn stop_all(&self) {
        for id in self.specs.keys() {
            // A node that cannot be killed is already gone; nothing else to do about it here.
            let _ = self.kill(id);
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}
