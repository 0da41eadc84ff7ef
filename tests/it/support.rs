//! Helpers for running the verity binary in tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

pub fn verity() -> Command {
    Command::new(env!("CARGO_BIN_EXE_verity"))
}

/// `verity run --target memory --rate 0 --quiet` into `store` for `time_limit`, with `extra`
/// arguments (e.g. `--compress=false`): the fastest history writer there is, for the tests that kill
/// or starve it mid-write. Returns the command, to be spawned or run.
pub fn fast_memory_run(store: &Path, time_limit: &str, extra: &[&str]) -> Command {
    let mut cmd = verity();
    cmd.args([
        "run",
        "--target",
        "memory",
        "--rate",
        "0",
        "--time-limit",
        time_limit,
        "--quiet",
    ])
    .args(extra)
    .arg("--store")
    .arg(store);
    cmd
}

pub struct Run {
    pub output: Output,
    pub store: tempfile::TempDir,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().expect("verity exited normally")
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn latest(&self) -> PathBuf {
        self.store.path().join("latest")
    }
    pub fn results(&self) -> serde_json::Value {
        results_of(&self.latest())
    }
}

pub fn results_of(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json exists");
    serde_json::from_str(&text).expect("results.json is JSON")
}

/// Runs `verity run` against the memory target with the given extra arguments into a fresh store.
pub fn run(args: &[&str]) -> Run {
    let mut all = vec!["--target", "memory"];
    all.extend_from_slice(args);
    run_any(&all)
}

/// Runs `verity run` with exactly the given arguments (the default target is the cluster).
pub fn run_any(args: &[&str]) -> Run {
    let store = tempfile::tempdir().expect("temp dir");
    let output = verity()
        .arg("run")
        .arg("--store")
        .arg(store.path())
        .args(args)
        .output()
        .expect("verity runs");
    Run { output, store }
}

pub fn anomaly_types(results: &serde_json::Value) -> Vec<String> {
    results["anomaly_types"]
        .as_array()
        .expect("anomaly_types is a list")
        .iter()
        .map(|v| v.as_str().expect("names are strings").to_string())
        .collect()
}

/// What a case must find.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    Valid,
    /// Valid, and each of these checkers ran and judged the history valid (not skipped).
    ValidBy(&'static [&'static str]),
    /// Invalid, with at least one of these anomalies, and none of `forbidden`.
    AnyOf(&'static [&'static str]),
}

/// Anomalies a stale read must never be mistaken for: the final read comes from the primary.
pub const CONSERVATION: &[&str] = &[
    "lost-transfer",
    "duplicate-transfer",
    "phantom-transfer",
    "failed-transfer-applied",
    "balance-mismatch",
    "wrong-total",
    "negative-balance",
];

pub struct Case {
    pub target: &'static str,
    pub args: &'static [&'static str],
    pub expect: Expect,
    /// Anomalies that must not appear.
    pub forbidden: &'static [&'static str],
}

pub const SEEDS: [u64; 3] = [1, 2, 3];

/// Runs every case on every seed into one store and reports every miss at once.
pub fn run_cases(cases: &[Case]) {
    let store = tempfile::tempdir().expect("temp dir");
    let mut misses = Vec::new();
    for case in cases {
        for seed in SEEDS {
            let started = Instant::now();
            let out = verity()
                .args(["run", "--quiet", "--target", case.target])
                .args(case.args)
                .args(["--seed", &seed.to_string(), "--store"])
                .arg(store.path())
                .output()
                .expect("verity runs");
            let code = out.status.code().unwrap_or(-1);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let what = format!("{} {} --seed {seed}", case.target, case.args.join(" "));
            if !matches!(code, 0 | 1) {
                misses.push(format!("{what}: exit {code}\n{stdout}\n{stderr}"));
                continue;
            }
            let results = results_of(&store.path().join("latest"));
            let found = anomaly_types(&results);
            let bad: Vec<&String> = found
                .iter()
                .filter(|a| case.forbidden.contains(&a.as_str()))
                .collect();
            let ok = match case.expect {
                Expect::Valid => code == 0 && found.is_empty(),
                Expect::ValidBy(checkers) => {
                    code == 0
                        && found.is_empty()
                        && checkers
                            .iter()
                            .all(|c| results["checkers"][c]["valid"] == serde_json::json!(true))
                }
                Expect::AnyOf(names) => {
                    code == 1 && found.iter().any(|a| names.contains(&a.as_str()))
                }
            };
            eprintln!(
                "{what}: exit {code}, {found:?} in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            if !ok || !bad.is_empty() {
                misses.push(format!(
                    "{what}: expected {:?}, got exit {code} with {found:?}\n{stdout}",
                    case.expect
                ));
            }
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n---\n"));
}

/// A `&'static [&str]` from string literals, for case tables.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => {{
        const A: &[&str] = &[$($a),*];
        A
    }};
}

/// The directory of the run being written under `store` (found through `latest`, which a run points
/// at itself as soon as it exists), once its `file` has grown past `min_bytes` (for killing a run
/// mid-write); fails after 30 s.
pub fn wait_for_run_file(store: &Path, file: &str, min_bytes: u64) -> PathBuf {
    wait_for_run(store, std::time::Duration::from_secs(30), |d| {
        d.join(file).metadata().is_ok_and(|m| m.len() > min_bytes)
    })
    .unwrap_or_else(|| panic!("the run never wrote {min_bytes} bytes of its {file}"))
}

/// The directory `store/latest` points at, once `ready` holds for it; `None` after `timeout`.
pub fn wait_for_run(
    store: &Path,
    timeout: std::time::Duration,
    ready: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(d) = std::fs::canonicalize(store.join("latest")) {
            if ready(&d) {
                return Some(d);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
