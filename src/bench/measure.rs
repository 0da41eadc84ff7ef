//! One child process, measured as a user would see it: wall time from spawn to exit, and its peak
//! resident memory.
//!
//! The peak comes from the kernel's own accounting of the child (`wait4`'s `ru_maxrss`, the same
//! figure GNU time prints as "Maximum resident set size"), so it covers everything the child
//! allocated, reading the file included, and nothing of this process. A child that outlives its
//! deadline is killed (SIGKILL) and reported as such, so one runaway check cannot hold the whole
//! benchmark.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;

/// What one child did.
#[derive(Debug, Clone)]
pub struct Measured {
    pub seconds: f64,
    pub peak_rss_bytes: u64,
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Whether the deadline ran out and the child was killed.
    pub killed: bool,
}

/// Runs `cmd` to its end (or kills it after `deadline`), its standard output written to `stdout_to`
/// and its standard error discarded.
pub fn measure(
    cmd: &mut Command,
    stdout_to: &std::path::Path,
    deadline: Duration,
) -> anyhow::Result<Measured> {
    let out = std::fs::File::create(stdout_to)
        .with_context(|| format!("cannot create {}", stdout_to.display()))?;
    let start = Instant::now();
    let child = cmd
        .stdout(out)
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let pid = i32::try_from(child.id()).context("a process id fits an i32")?;

    // The watchdog kills the child at the deadline unless told it has ended.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let killed = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let killed = Arc::clone(&killed);
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(deadline) {
                killed.store(true, Ordering::SeqCst);
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        })
    };

    let (status, rusage) = wait_with_rusage(pid)?;
    let seconds = start.elapsed().as_secs_f64();
    // The child is reaped: tell the watchdog before its deadline can strike a reused pid.
    let _ = done_tx.send(());
    let _ = watchdog.join();
    // `std::process::Child` neither waits nor kills on drop; it was reaped above.
    drop(child);

    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(Measured {
        seconds,
        // Linux reports ru_maxrss in KiB.
        peak_rss_bytes: u64::try_from(rusage.ru_maxrss).unwrap_or(0) * 1024,
        code,
        killed: killed.load(Ordering::SeqCst),
    })
}

/// Waits for `pid` to end and returns its wait status and resource usage.
fn wait_with_rusage(pid: i32) -> anyhow::Result<(i32, libc::rusage)> {
    let mut status: i32 = 0;
    // SAFETY: `rusage` is plain old data, so all-zero bytes are a valid value of it.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers point at live, writable locals of the right types for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if r == pid {
            return Ok((status, rusage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(anyhow::anyhow!("cannot wait for process {pid}: {err}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_timed_and_its_exit_code_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("out");
        let m = measure(
            Command::new("sh").args(["-c", "echo hi; exit 3"]),
            &out,
            Duration::from_secs(60),
        )
        .expect("sh runs");
        assert_eq!(m.code, Some(3));
        assert!(!m.killed);
        assert!(
            m.peak_rss_bytes > 0,
            "the kernel reports some resident memory"
        );
        assert_eq!(std::fs::read_to_string(&out).expect("output file"), "hi\n");
    }

    #[test]
    fn a_child_past_its_deadline_is_killed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let m = measure(
            Command::new("sleep").arg("30"),
            &dir.path().join("out"),
            Duration::from_millis(100),
        )
        .expect("sleep runs");
        assert!(m.killed);
        assert_eq!(m.code, None, "a killed child has no exit code");
    }
}
