//! Signals to node processes, and what `/proc` says about a process — with the guards that keep a
//! fault from ever reaching init, verity itself, or a process that merely reuses an old pid.
//!
//! A node leads its own process group (see `process.rs`), so pausing or killing it signals the
//! group: a server that forks workers stops whole. A process that does not lead a group (a test's
//! stand-in) is signalled alone, so a fault never reaches the group of whoever spawned it.

use std::fs;

use nix::errno::Errno;
use nix::sys::signal;
pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Sends a signal to a node: to the process group it leads, or to it alone if it leads none.
/// Refuses pids that would hit more than one process, init, or the controller itself.
pub fn send(pid: u32, sig: Signal) -> Result<(), Errno> {
    let raw = checked(pid)?;
    match nix::unistd::getpgid(Some(Pid::from_raw(raw))) {
        Ok(pgid) if pgid.as_raw() == raw => signal_group(pid, sig),
        _ => signal::kill(Pid::from_raw(raw), sig),
    }
}

/// Sends a signal to the process group `pgid`, never to our own group.
pub fn signal_group(pgid: u32, sig: Signal) -> Result<(), Errno> {
    let raw = checked(pgid)?;
    let own = nix::unistd::getpgrp().as_raw();
    if raw == own {
        return Err(Errno::EINVAL);
    }
    signal::killpg(Pid::from_raw(raw), sig)
}

fn checked(pid: u32) -> Result<i32, Errno> {
    let raw = i32::try_from(pid).map_err(|_| Errno::EINVAL)?;
    if raw <= 1 || pid == std::process::id() {
        return Err(Errno::EINVAL);
    }
    Ok(raw)
}

/// The fields of `/proc/<pid>/stat` after the command name (state is the first).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain ") "; the fields follow the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// The scheduling state of a process (`R`, `S`, `T`, `Z`, …), or `None` if it does not exist.
pub fn process_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// When a process started, in clock ticks since boot (`/proc/<pid>/stat` field 22): with the pid, it
/// names one process for the life of the machine.
pub fn process_start_time(pid: u32) -> Option<u64> {
    // State is field 3, so the start time (22) is the 20th after the command.
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `start` (unknown start: assume it is).
pub fn same_process(pid: u32, start: Option<u64>) -> bool {
    match start {
        Some(start) => process_start_time(pid) == Some(start),
        None => process_state(pid).is_some(),
    }
}

/// Whether any live (not zombie) process belongs to group `pgid`. Zombies are skipped: an orphan
/// reparented to an init that does not reap would otherwise count forever.
pub fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            stat_fields(pid).is_some_and(|f| {
                // Field 5 (pgrp) is the 3rd after the command; state is the 1st.
                f.first().is_some_and(|s| s != "Z" && s != "X")
                    && f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_never_reach_init_the_process_group_or_ourselves() {
        assert_eq!(send(0, Signal::SIGCONT), Err(Errno::EINVAL));
        assert_eq!(send(1, Signal::SIGCONT), Err(Errno::EINVAL));
        assert_eq!(send(u32::MAX, Signal::SIGCONT), Err(Errno::EINVAL));
        assert_eq!(
            send(std::process::id(), Signal::SIGSTOP),
            Err(Errno::EINVAL)
        );
        let own_group = nix::unistd::getpgrp().as_raw() as u32;
        if own_group > 1 && own_group != std::process::id() {
            assert_eq!(signal_group(own_group, Signal::SIGCONT), Err(Errno::EINVAL));
        }
    }

    #[test]
    fn process_state_reads_our_own_and_none_for_missing() {
        assert!(matches!(process_state(std::process::id()), Some('R' | 'S')));
        assert_eq!(process_state(u32::MAX), None);
        let start = process_start_time(std::process::id()).expect("our own start time");
        assert!(same_process(std::process::id(), Some(start)));
        assert!(!same_process(std::process::id(), Some(start + 1)));
        assert_eq!(process_start_time(u32::MAX), None);
        assert!(group_alive(nix::unistd::getpgrp().as_raw() as u32));
        assert!(!group_alive(u32::MAX));
    }
}
