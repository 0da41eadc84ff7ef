//! Starts, kills and restarts the processes of a target's nodes, knows their pids, and records them
//! so that nothing outlives verity.
//!
//! Each node is its own OS process, as Jepsen's `db/Kill` and `db/Pause` assume: a SIGKILL is a real
//! crash that loses everything not fsynced. Every node leads its own process group, which does three
//! things: a Ctrl-C at the terminal reaches only verity (which heals and reads before it stops the
//! nodes); a server that forks workers (PostgreSQL's postmaster and its backends) is paused, resumed
//! and killed whole by signalling the group; and a kill leaves no orphan holding the port or the
//! shared memory that the restart needs.
//!
//! Nothing may outlive the controller: a node started with `watch_stdin` holds a pipe from the
//! supervisor and exits when it closes (verity's own nodes do); every other server is listed, with its
//! process group and start time, in a registry file under the state directory, so that `verity heal`
//! can kill exactly those groups — never a reused pid — after a `kill -9` of the controller, and
//! remove the temporary directories they ran in. Standard output and error of a node go to its log
//! file, appended across restarts.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::signal::{process_start_time, signal_group, Signal};

/// How long a killed node's process group may take to disappear before the kill is reported.
const KILL_WAIT_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum SupervisorError {
    #[error("unknown node {0}")]
    UnknownNode(String),
    #[error("failed to start node {node} ({program}): {source}")]
    Spawn {
        node: String,
        program: PathBuf,
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
    #[error("node {node}: processes of group {pgid} still run {waited:?} after SIGKILL")]
    Lingering {
        node: String,
        pgid: u32,
        waited: Duration,
    },
}

/// Everything needed to start one node's process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// The node's name.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Run as this (uid, gid) rather than as verity's own user (servers that refuse root).
    pub user: Option<(u32, u32)>,
    /// Standard output and error, appended across restarts.
    pub log_path: PathBuf,
    /// Give the process a pipe on stdin that closes when the supervisor (or verity) goes away; the
    /// program must exit when it reads end-of-file.
    pub watch_stdin: bool,
    /// Run with this file as its `/etc/hosts`, in a mount namespace of its own (needs root): how
    /// each member of a store gets its own answer for a peer's name.
    pub hosts: Option<PathBuf>,
}

impl ProcessSpec {
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>, log_path: PathBuf) -> Self {
        ProcessSpec {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            user: None,
            log_path,
            watch_stdin: false,
            hosts: None,
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

struct Running {
    child: Child,
    /// Held open so the node can notice our death; dropped on kill.
    _stdin: Option<ChildStdin>,
}

/// What the registry file records of one running node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The process group (and pid of its leader).
    pub pgid: u32,
    /// The leader's start time (clock ticks since boot), so that a reused pid is never signalled.
    pub start: Option<u64>,
    pub program: String,
}

/// The registry file: what a controller has running, and what to remove once it is gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    pub controller_pid: u32,
    pub controller_start: Option<u64>,
    pub processes: BTreeMap<String, Recorded>,
    /// Directories to remove after the processes are gone (a server's temporary data directory).
    pub cleanup: Vec<PathBuf>,
}

/// Starts and stops the processes of one target's nodes.
pub struct Supervisor {
    specs: BTreeMap<String, ProcessSpec>,
    running: Mutex<BTreeMap<String, Running>>,
    /// Where this supervisor's registry is kept (`None`: nowhere, as in tests).
    registry_path: Option<PathBuf>,
    cleanup: Mutex<Vec<PathBuf>>,
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

/// Where a supervisor of this controller keeps its registry in `dir`: one file per supervisor, so
/// that concurrent runs (and several targets of one process) never overwrite each other's.
pub fn registry_path(dir: &Path, tag: &str) -> PathBuf {
    dir.join(format!("processes-{}-{tag}.json", std::process::id()))
}

impl Supervisor {
    /// A supervisor of `specs`; with `registry_path`, running processes are recorded there.
    pub fn new(specs: Vec<ProcessSpec>, registry_path: Option<PathBuf>) -> Self {
        Supervisor {
            specs: specs.into_iter().map(|s| (s.name.clone(), s)).collect(),
            running: Mutex::new(BTreeMap::new()),
            registry_path,
            cleanup: Mutex::new(Vec::new()),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.specs.keys().cloned().collect()
    }

    pub fn spec(&self, name: &str) -> Option<&ProcessSpec> {
        self.specs.get(name)
    }

    /// Asks `verity heal` to remove `dir` once this controller and its processes are gone; the
    /// supervisor removes it itself in [`Supervisor::stop_all`].
    pub fn remove_on_cleanup(&self, dir: PathBuf) {
        self.cleanup.lock().push(dir);
        self.write_registry(&self.running.lock());
    }

    /// Starts a node that is not running; returns its pid.
    pub fn start(&self, name: &str) -> Result<u32, SupervisorError> {
        let spec = self
            .specs
            .get(name)
            .ok_or_else(|| SupervisorError::UnknownNode(name.into()))?;
        let mut running = self.running.lock();
        if let Some(r) = running.get_mut(name) {
            if matches!(r.child.try_wait(), Ok(None)) {
                return Ok(r.child.id());
            }
        }
        let files = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SupervisorError::Files { path, source }
        };
        if let Some(parent) = spec.log_path.parent() {
            fs::create_dir_all(parent).map_err(files(parent))?;
        }
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(files(&spec.log_path))?;
        writeln!(
            log,
            "--- verity supervisor: starting {} {}",
            spec.program.display(),
            spec.args.join(" ")
        )
        .map_err(files(&spec.log_path))?;
        let err_log = log.try_clone().map_err(files(&spec.log_path))?;
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(if spec.watch_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(log)
            .stderr(err_log)
            .process_group(0);
        if let Some(cwd) = &spec.cwd {
            command.current_dir(cwd);
        }
        match (&spec.hosts, spec.user) {
            (Some(hosts), user) => private_hosts(&mut command, hosts, user).map_err(|source| {
                SupervisorError::Spawn {
                    node: name.into(),
                    program: spec.program.clone(),
                    source,
                }
            })?,
            (None, Some((uid, gid))) => {
                // std drops the supplementary groups too when root sets a uid.
                command.uid(uid).gid(gid);
            }
            (None, None) => {}
        }
        let mut child = command.spawn().map_err(|source| SupervisorError::Spawn {
            node: name.into(),
            program: spec.program.clone(),
            source,
        })?;
        let pid = child.id();
        let stdin = child.stdin.take();
        running.insert(
            name.to_string(),
            Running {
                child,
                _stdin: stdin,
            },
        );
        self.write_registry(&running);
        Ok(pid)
    }

    pub fn start_all(&self) -> Result<(), SupervisorError> {
        for name in self.specs.keys() {
            self.start(name)?;
        }
        Ok(())
    }

    /// SIGKILLs a node's whole process group (paused or not), reaps it and waits until no process
    /// of the group is left. Killing a node that is not running is a no-op.
    pub fn kill(&self, name: &str) -> Result<(), SupervisorError> {
        if !self.specs.contains_key(name) {
            return Err(SupervisorError::UnknownNode(name.into()));
        }
        let mut running = self.running.lock();
        let Some(mut r) = running.remove(name) else {
            return Ok(());
        };
        let pgid = r.child.id();
        let _ = signal_group(pgid, Signal::SIGKILL);
        // SIGKILL cannot be caught; the wait returns promptly.
        r.child.wait().map_err(|source| SupervisorError::Kill {
            node: name.into(),
            source,
        })?;
        self.write_registry(&running);
        drop(running);
        wait_group_gone(name, pgid)
    }

    /// SIGKILL, then start again with the same arguments, data and log.
    pub fn restart(&self, name: &str) -> Result<u32, SupervisorError> {
        self.kill(name)?;
        self.start(name)
    }

    /// The pid of a running node (the leader of its process group).
    pub fn pid(&self, name: &str) -> Option<u32> {
        let mut running = self.running.lock();
        let r = running.get_mut(name)?;
        matches!(r.child.try_wait(), Ok(None)).then(|| r.child.id())
    }

    /// Whether the node's process has exited (it was started and is no longer running).
    pub fn exited(&self, name: &str) -> Option<std::process::ExitStatus> {
        let mut running = self.running.lock();
        running.get_mut(name)?.child.try_wait().ok().flatten()
    }

    /// Pids of every running node.
    pub fn pids(&self) -> BTreeMap<String, u32> {
        self.specs
            .keys()
            .filter_map(|n| Some((n.clone(), self.pid(n)?)))
            .collect()
    }

    /// Kills every node and removes the cleanup directories. Safe to call more than once.
    pub fn stop_all(&self) {
        for name in self.specs.keys() {
            // A node that cannot be killed is already gone; nothing else to do about it here.
            let _ = self.kill(name);
        }
        for dir in std::mem::take(&mut *self.cleanup.lock()) {
            let _ = fs::remove_dir_all(&dir);
        }
        if let Some(path) = &self.registry_path {
            let _ = fs::remove_file(path);
        }
    }

    fn write_registry(&self, running: &BTreeMap<String, Running>) {
        let Some(path) = &self.registry_path else {
            return;
        };
        let registry = Registry {
            controller_pid: std::process::id(),
            controller_start: process_start_time(std::process::id()),
            processes: running
                .iter()
                .map(|(name, r)| {
                    let pid = r.child.id();
                    let program = self.specs[name].program.display().to_string();
                    let start = process_start_time(pid);
                    (
                        name.clone(),
                        Recorded {
                            pgid: pid,
                            start,
                            program,
                        },
                    )
                })
                .collect(),
            cleanup: self.cleanup.lock().clone(),
        };
        // Best effort: a registry that cannot be written costs only the after-crash cleanup.
        if let Some(dir) = path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        if let Err(e) = crate::state::write_atomically(path, &registry) {
            eprintln!("verity: cannot write {}: {e}", path.display());
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Has the child start in a mount namespace of its own with `hosts` bind-mounted on `/etc/hosts`,
/// then (the namespace made) drop to `user`. Everything the child runs between fork and exec is a
/// plain system call on memory prepared here: no allocation after the fork.
fn private_hosts(
    command: &mut Command,
    hosts: &Path,
    user: Option<(u32, u32)>,
) -> std::io::Result<()> {
    use nix::libc;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let to_c = |b: &[u8]| CString::new(b).map_err(std::io::Error::other);
    let source = to_c(hosts.as_os_str().as_bytes())?;
    let target = to_c(b"/etc/hosts")?;
    let root = to_c(b"/")?;
    let check = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: the closure only makes system calls on the CStrings it owns; nothing allocates.
    unsafe {
        command.pre_exec(move || {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            // Private: the bind mount below must not leak into the parent's namespace.
            check(libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))?;
            if let Some((uid, gid)) = user {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
            Ok(())
        });
    }
    Ok(())
}

/// Waits (bounded) until no live process is left in group `pgid`.
fn wait_group_gone(name: &str, pgid: u32) -> Result<(), SupervisorError> {
    let started = Instant::now();
    while crate::signal::group_alive(pgid) {
        if started.elapsed() > KILL_WAIT_MAX {
            return Err(SupervisorError::Lingering {
                node: name.into(),
                pgid,
                waited: started.elapsed(),
            });
        }
        let _ = signal_group(pgid, Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
