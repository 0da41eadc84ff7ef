//! What starting a real database server from its Debian package takes, whichever server it is:
//! finding its binaries (and naming the package when they are missing), an unprivileged user for
//! servers that refuse to run as root, a private temporary directory that user owns, running a
//! setup program to completion with its output kept, waiting for a port, and the last lines of a log
//! for the error a user reads when a server will not start.

use std::io::{BufRead, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::TargetError;

/// The system user servers run as when verity runs as root (PostgreSQL refuses root; MariaDB runs
/// as root only when told to).
pub const SERVER_USER: &str = "verity";

/// Lines of a server's log quoted when it fails to start.
const LOG_TAIL_LINES: usize = 15;

/// The first of `names` in the directory `$env` when that is set (and nowhere else), otherwise
/// as [`find_binary`] finds it. The variable lets a user point at a server installed elsewhere,
/// and a test at a directory without one.
pub fn find_program(env: &str, names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    match std::env::var_os(env) {
        Some(dir) => names
            .iter()
            .map(|n| PathBuf::from(&dir).join(n))
            .find(|p| p.is_file()),
        None => find_binary(names, dirs),
    }
}

/// The first of `names` found in `dirs` (in order) or on `PATH`.
pub fn find_binary(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    for dir in dirs {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The error for a server binary that is not installed: bad input (exit 254), naming the package.
pub fn missing(what: &str, package: &str) -> TargetError {
    let mut e = missing_without_url(what, package);
    if let TargetError::Unavailable { hint, .. } = &mut e {
        hint.push_str(", or pass --url to use a server that is already running");
    }
    e
}

/// [`missing`], for a target that always starts its own servers.
pub fn missing_without_url(what: &str, package: &str) -> TargetError {
    TargetError::Unavailable {
        what: what.to_string(),
        hint: format!("install the Debian package {package} (as root: scripts/setup {package})"),
    }
}

/// The (uid, gid) servers run as: our own when not root; as root, the `verity` system user, created
/// on first use.
pub fn server_user() -> Result<Option<(u32, u32)>, TargetError> {
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(None);
    }
    if let Some(ids) = lookup_user(SERVER_USER) {
        return Ok(Some(ids));
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVER_USER,
        ])
        .output()
        .map_err(|e| TargetError::Setup(format!("cannot run useradd: {e}")))?;
    // A concurrent run may have created the user first.
    match lookup_user(SERVER_USER) {
        Some(ids) => Ok(Some(ids)),
        None => Err(TargetError::Setup(format!(
            "cannot create the system user {SERVER_USER} that servers run as: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let user = nix::unistd::User::from_name(name).ok()??;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// A fresh private directory under the system temp dir, owned by `user` (so a server running as it
/// can write there), removed by the caller when the target stops.
pub fn private_dir(prefix: &str, user: Option<(u32, u32)>) -> Result<PathBuf, TargetError> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| TargetError::Setup(format!("cannot create a temporary directory: {e}")))?
        .keep();
    chown_to(&dir, user)?;
    Ok(dir)
}

/// Creates `dir` (mode 0700) and gives it to `user`.
pub fn owned_dir(dir: &Path, user: Option<(u32, u32)>) -> Result<(), TargetError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| TargetError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    chown_to(dir, user)
}

fn chown_to(path: &Path, user: Option<(u32, u32)>) -> Result<(), TargetError> {
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| TargetError::Setup(format!("cannot chown {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Runs a setup program (initdb, mariadb-install-db, pg_basebackup) to completion as `user`,
/// appending its output to `log`; fails with the log's last lines.
pub fn run_to_completion(
    program: &Path,
    args: &[String],
    user: Option<(u32, u32)>,
    log: &Path,
) -> Result<(), TargetError> {
    use std::os::unix::process::CommandExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| TargetError::Setup(format!("cannot open {}: {e}", log.display())))?;
    // Where this program's output starts in the log: its first lines usually name the problem.
    let start = file.metadata().map(|m| m.len()).unwrap_or(0);
    let err = file
        .try_clone()
        .map_err(|e| TargetError::Setup(format!("cannot open {}: {e}", log.display())))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(err)
        .current_dir("/");
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    let status = command
        .status()
        .map_err(|e| TargetError::Setup(format!("cannot run {}: {e}", program.display())))?;
    if status.success() {
        return Ok(());
    }
    Err(TargetError::Setup(format!(
        "{} {} failed ({status}); its output (in {}):\n{}",
        program.display(),
        args.join(" "),
        log.display(),
        output_since(log, start)
    )))
}

/// What a program wrote to `log` from byte `start` on: its first and last lines, for an error.
fn output_since(log: &Path, start: u64) -> String {
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b[(start as usize).min(b.len())..]).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let shown: Vec<&str> = if lines.len() <= 2 * LOG_TAIL_LINES {
        lines
    } else {
        let mut v = lines[..LOG_TAIL_LINES].to_vec();
        v.push("…");
        v.extend_from_slice(&lines[lines.len() - LOG_TAIL_LINES..]);
        v
    };
    shown
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last lines of a log file, for an error message.
pub fn log_tail(path: &Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return "(no log)".to_string();
    };
    // The tail is in the last 16 KiB of any log worth quoting.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[start..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until something accepts connections at `addr`, or `exited` says the server is gone, or
/// `timeout` passes. The error names what happened and quotes the log.
pub async fn wait_for_port(
    addr: SocketAddr,
    timeout: Duration,
    log: &Path,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<(), TargetError> {
    let started = Instant::now();
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                .await;
        if matches!(attempt, Ok(Ok(_))) {
            return Ok(());
        }
        if let Some(status) = exited() {
            return Err(TargetError::Setup(format!(
                "the server exited during startup ({status}); the end of {}:\n{}",
                log.display(),
                log_tail(log)
            )));
        }
        if started.elapsed() > timeout {
            return Err(TargetError::Setup(format!(
                "the server did not accept connections on {addr} within {timeout:?}; the end of {}:\n{}",
                log.display(),
                log_tail(log)
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_server_names_its_package_and_is_bad_input() {
        let e = missing("PostgreSQL (initdb, postgres)", "postgresql");
        let text = e.to_string();
        assert!(
            text.contains("postgresql") && text.contains("scripts/setup"),
            "{text}"
        );
        assert!(matches!(e, TargetError::Unavailable { .. }));
    }

    #[test]
    fn binaries_are_found_in_the_given_dirs_first_then_on_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fake-server"), "").unwrap();
        let found = find_binary(&["nope", "fake-server"], &[dir.path().to_path_buf()]);
        assert_eq!(found, Some(dir.path().join("fake-server")));
        assert!(find_binary(&["sh"], &[]).is_some(), "sh is on PATH");
        assert_eq!(find_binary(&["no-such-binary-anywhere"], &[]), None);
    }

    #[test]
    fn the_log_tail_is_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, text).unwrap();
        let tail = log_tail(&log);
        assert!(
            tail.contains("line 99") && !tail.contains("line 80\n"),
            "{tail}"
        );
        assert_eq!(log_tail(&dir.path().join("missing")), "(no log)");
    }
}
