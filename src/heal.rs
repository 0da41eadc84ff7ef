//! `verity heal`: undo the faults a killed run left behind.
//!
//! While faults are active, every run keeps a state file under `<store>/.nemesis/`, and while a target
//! has servers running, a registry of their process groups. After a kill -9 of the controller its
//! proxy died with it (so every link is gone, not cut), but nodes it paused stay stopped and servers
//! that do not watch their parent keep running: heal resumes the paused ones, stops every server the
//! dead controller started and removes their temporary directories — checked by process start time,
//! so a reused pid is never signalled — and then the state files.

use anyhow::Context;
use clap::Args;

use crate::exit::{Failure, Outcome};

#[derive(Debug, Clone, Args)]
pub struct HealArgs {
    /// The store whose runs left faults behind.
    #[arg(long, default_value = "results")]
    pub store: std::path::PathBuf,
}

pub fn run(args: HealArgs) -> Result<Outcome, Failure> {
    let dir = crate::run::state_dir(&args.store);
    if !dir.is_dir() {
        println!("nothing to heal: no fault state under {}", dir.display());
        return Ok(Outcome::Done);
    }
    let reports = verity_nemesis::heal_state_dir(&dir)
        .with_context(|| format!("cannot heal from {}", dir.display()))?;
    if reports.is_empty() {
        println!("nothing to heal: no fault state under {}", dir.display());
    }
    for (file, report) in reports {
        println!("{}:", file.display());
        for (node, pid) in &report.resumed {
            println!("  resumed {node} (pid {pid})");
        }
        for (node, pgid) in &report.killed {
            println!("  stopped {node} (process group {pgid})");
        }
        for dir in &report.removed {
            println!("  removed {}", dir.display());
        }
        for (node, pid) in &report.gone {
            println!("  {node} (pid {pid}) is no longer paused or no longer exists");
        }
        for node in &report.still_killed {
            println!("  {node} was killed and is not running");
        }
        for note in &report.notes {
            println!("  {note}");
        }
    }
    Ok(Outcome::Done)
}
