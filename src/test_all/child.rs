//! Each case runs as a child process — this same binary, `verity run … --json` — so a run that
//! crashes, hangs or leaks cannot take the suite down with it, and so the budget can be enforced
//! from outside: at the budget's end the run is interrupted (SIGTERM: it ends its main phase, heals,
//! reads and checks, as on Ctrl-C), and a run still going `grace` later is killed with its process
//! group and `verity heal` cleans up after it. Its run directory is known from its first line on
//! stderr, so even a killed run is reported with the directory that holds its history.
//!
//! Children get their own process group: a Ctrl-C at the terminal reaches test-all alone, which
//! forwards it — once per interrupt — to the running case, so the second Ctrl-C aborts it as it would
//! abort `verity run` itself.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// How often a running child is looked at.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long a server may take to print its URL.
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server gets to stop after SIGTERM before SIGKILL.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// How many of a child's last stderr lines are kept (for the reason of a crash).
const STDERR_LINES_KEPT: usize = 20;

/// Interrupts (SIGINT, SIGTERM) test-all has received.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

pub fn interrupts() -> usize {
    INTERRUPTS.load(Ordering::Relaxed)
}

/// Counts SIGINT and SIGTERM from now on instead of dying of them.
pub fn catch_interrupts() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    let _ = ready_tx.send(false);
                    return;
                };
                let _ = ready_tx.send(true);
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    let n = INTERRUPTS.fetch_add(1, Ordering::Relaxed) + 1;
                    eprintln!(
                        "verity test-all: interrupted ({n}) — finishing the running case, starting no more"
                    );
                }
            })
        })?;
    match ready_rx.recv() {
        Ok(true) => Ok(()),
        _ => anyhow::bail!("cannot install the signal handlers"),
    }
}

/// How a child run ended.
#[derive(Debug)]
pub struct Finished {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr_tail: Vec<String>,
    pub run_dir: Option<PathBuf>,
    /// Why test-all interrupted it, if it did: "the budget" or "an interrupt" (of test-all).
    pub interrupted: Option<&'static str>,
    /// …and finally killed it, or aborted it with a second interrupt.
    pub aborted: bool,
}

#[derive(Default)]
struct StderrState {
    tail: std::collections::VecDeque<String>,
    run_dir: Option<PathBuf>,
}

/// The run directory a line of `verity run`'s stderr names, if it names one.
fn run_dir_of(line: &str) -> Option<PathBuf> {
    if let Some(rest) = line.strip_prefix("verity: run ") {
        let end = rest.rfind(" (seed ")?;
        return Some(PathBuf::from(&rest[..end]));
    }
    line.strip_prefix("run directory: ")
        .map(|d| PathBuf::from(d.trim()))
}

/// Runs `exe run --json <args>`, interrupting it at `deadline` and killing it `grace` later.
pub fn run(
    exe: &Path,
    args: &[String],
    deadline: Instant,
    grace: Duration,
) -> anyhow::Result<Finished> {
    let mut child = Command::new(exe)
        .arg("run")
        .arg("--json")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let state = Arc::new(Mutex::new(StderrState::default()));
    let err = child.stderr.take().expect("stderr is piped");
    let err_state = state.clone();
    let err_thread = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let mut s = err_state.lock().expect("no holder panics");
            if s.run_dir.is_none() {
                s.run_dir = run_dir_of(&line);
            }
            s.tail.push_back(line);
            if s.tail.len() > STDERR_LINES_KEPT {
                s.tail.pop_front();
            }
        }
    });
    let pid = Pid::from_raw(child.id() as i32);
    let seen = interrupts();
    let mut forwarded = 0;
    let mut interrupted_at: Option<Instant> = None;
    let mut interrupted_by = None;
    let mut aborted = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let now = Instant::now();
        let asked = interrupts() - seen;
        if asked > forwarded && forwarded < 2 {
            let _ = kill(pid, Signal::SIGTERM);
            forwarded += 1;
            interrupted_at.get_or_insert(now);
            interrupted_by.get_or_insert("an interrupt");
            aborted |= forwarded >= 2;
        }
        if now >= deadline && interrupted_at.is_none() {
            let _ = kill(pid, Signal::SIGTERM);
            interrupted_at = Some(now);
            interrupted_by = Some("the budget");
        }
        if interrupted_at.is_some_and(|t| now >= t + grace) && !aborted {
            let _ = killpg(pid, Signal::SIGKILL);
            aborted = true;
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    let stdout = out_thread.join().unwrap_or_default();
    let _ = err_thread.join();
    let state = state.lock().expect("no holder panics");
    Ok(Finished {
        code: status.code(),
        stdout,
        stderr_tail: state.tail.iter().cloned().collect(),
        run_dir: state.run_dir.clone(),
        interrupted: interrupted_by,
        aborted,
    })
}

/// Runs `verity heal` on the store after a killed run, so that nothing it started keeps running.
pub fn heal(exe: &Path, store: &Path) -> String {
    match Command::new(exe)
        .arg("heal")
        .arg("--store")
        .arg(store)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => "verity heal cleaned up after it".to_string(),
        Ok(out) => format!(
            "verity heal failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("cannot run verity heal: {e}"),
    }
}

/// A server a case runs against, stopped (with its process group) when dropped.
pub struct Server {
    child: Child,
    pub url: String,
}

/// Starts `command` with `sh -c`, `verity` on its PATH meaning this binary, and waits until it
/// prints a URL (the first word starting `http://` or `https://` on its stdout).
pub fn start_server(exe: &Path, command: &str) -> Result<Server, String> {
    let mut path = exe
        .parent()
        .map(|p| p.as_os_str().to_owned())
        .unwrap_or_default();
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the server {command:?}: {e}"))?;
    let (tx, rx) = mpsc::sync_channel::<String>(16);
    let out = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        let mut sent = false;
        // Reads to the end, so the server never blocks on a full pipe.
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if !sent {
                if let Some(url) = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://") || w.starts_with("https://"))
                {
                    sent = tx.send(url.to_string()).is_ok();
                }
            }
        }
    });
    let err = child.stderr.take().expect("stderr is piped");
    let err_tail = Arc::new(Mutex::new(String::new()));
    let tail = err_tail.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            *tail.lock().expect("no holder panics") = line;
        }
    });
    let mut server = Server {
        child,
        url: String::new(),
    };
    match rx.recv_timeout(SERVER_START_TIMEOUT) {
        Ok(url) => {
            server.url = url;
            Ok(server)
        }
        Err(e) => {
            drop(server);
            let last = err_tail.lock().expect("no holder panics").clone();
            let why = match e {
                mpsc::RecvTimeoutError::Timeout => {
                    format!("printed no URL within {}s", SERVER_START_TIMEOUT.as_secs())
                }
                mpsc::RecvTimeoutError::Disconnected => "exited without printing a URL".into(),
            };
            Err(format!(
                "the server {command:?} {why}{}",
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ))
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let until = Instant::now() + SERVER_STOP_TIMEOUT;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_directory_is_read_from_either_line_that_names_it() {
        assert_eq!(
            run_dir_of("verity: run results/memory-bank/20261201T101010 (seed 7)"),
            Some(PathBuf::from("results/memory-bank/20261201T101010"))
        );
        assert_eq!(
            run_dir_of("run directory: /tmp/a b/memory-bank/x"),
            Some(PathBuf::from("/tmp/a b/memory-bank/x"))
        );
        assert_eq!(run_dir_of("verity: interrupted"), None);
    }
}
