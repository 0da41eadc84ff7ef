//! Helpers for running the verity binary in tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn verity() -> Command {
    Command::new(env!("CARGO_BIN_EXE_verity"))
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
