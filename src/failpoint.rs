//! Stopping points for the harness's own crash tests.
//!
//! With `VERITY_FAILPOINT=<name>` in its environment, `verity run` stops itself (SIGSTOP) the first
//! time it reaches the point of that name, after writing `failpoint-<name>` (its pid) into the run
//! directory. A test waits for that file and then sends SIGKILL: the kill lands at an exact moment of
//! the run instead of whenever a sleep happens to end. Without the variable every point is a no-op.
//!
//! The points: `start` (the target's nodes or servers are started), `setup` (the target is set up, the main phase has not begun), `fault` (the nemesis
//! has just applied its first fault), `final-reads` (the main phase and recovery are over) and
//! `check` (the history is complete and about to be judged).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The variable that names the point to stop at.
pub const VAR: &str = "VERITY_FAILPOINT";

/// The run directory and the point asked for, when one is.
static ARMED: OnceLock<Option<(PathBuf, String)>> = OnceLock::new();
static FIRED: AtomicBool = AtomicBool::new(false);

/// Arms the point named by [`VAR`] for the run in `dir` (once per process).
pub fn arm(dir: &Path) {
    ARMED.get_or_init(|| {
        let name = std::env::var(VAR).ok().filter(|n| !n.is_empty())?;
        Some((dir.to_path_buf(), name))
    });
}

/// Stops the process here if this is the armed point and it has not fired yet.
pub fn reached(name: &str) {
    let Some(Some((dir, wanted))) = ARMED.get() else {
        return;
    };
    if wanted != name || FIRED.swap(true, Ordering::SeqCst) {
        return;
    }
    let marker = dir.join(format!("failpoint-{name}"));
    if let Err(e) = std::fs::write(&marker, std::process::id().to_string()) {
        tracing::warn!("cannot write {}: {e}", marker.display());
    }
    tracing::warn!(point = name, "failpoint reached: stopping");
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
}
