//! `verity verify`: an untouched run verifies; any edit of its history or of a verdict in
//! results.json fails and is named; a compressed history verifies and judges exactly as the plain
//! one with the same lines.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;

use crate::support::{fast_memory_run, run, verity, wait_for_run_file, Run};

fn verify(dir: &Path, extra: &[&str]) -> (i32, String) {
    let out = verity()
        .arg("verify")
        .arg(dir)
        .args(extra)
        .output()
        .expect("verity runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().expect("verity exited normally"), text)
}

/// One small plain run, shared by the tests that copy and edit it.
fn plain_run() -> &'static (Run, PathBuf) {
    static RUN: OnceLock<(Run, PathBuf)> = OnceLock::new();
    RUN.get_or_init(|| {
        let r = run(&[
            "--rate",
            "0",
            "--ops",
            "150",
            "--compress=false",
            "--seed",
            "7",
            "--quiet",
        ]);
        assert_eq!(r.code(), 0, "{}", r.stderr());
        let dir = std::fs::canonicalize(r.latest()).expect("latest resolves");
        (r, dir)
    })
}

/// A copy of the run's directory to edit.
fn copy_of(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(dir).expect("run dir") {
        let p = entry.expect("entry").path();
        if p.is_file() {
            std::fs::copy(&p, copy.path().join(p.file_name().unwrap())).expect("copy");
        }
    }
    copy
}

fn head_of(output: &str) -> String {
    output
        .split("head ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("verify prints the head")
        .to_string()
}

#[test]
fn an_untouched_run_verifies_and_the_summary_prints_its_head() {
    let (r, dir) = plain_run();
    let (code, out) = verify(dir, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("INTACT"), "{out}");
    let head = head_of(&out);
    assert!(
        r.stdout().contains(&format!("head {head}")),
        "the run summary publishes the head: {}",
        r.stdout()
    );
    let results = crate::support::results_of(dir);
    assert_eq!(results["history"]["chain"]["head"], head.as_str());
    assert_eq!(
        results["history"]["chain"]["lines"],
        results["history"]["events"]
    );
    let (code, out) = verify(dir, &["--head", &head[..20]]);
    assert_eq!(code, 0, "{out}");
    let other = format!(
        "{}{}",
        if head.starts_with('0') { "1" } else { "0" },
        &head[1..]
    );
    let (code, out) = verify(dir, &["--head", &other]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("published head"), "{out}");
}

#[test]
fn a_compressed_history_verifies_and_judges_exactly_as_the_plain_one() {
    let (_, dir) = plain_run();
    let copy = copy_of(dir);
    let plain = std::fs::read(dir.join("history.jsonl")).unwrap();
    std::fs::remove_file(copy.path().join("history.jsonl")).unwrap();
    let packed = copy.path().join("history.jsonl.zst");
    std::fs::write(&packed, zstd::encode_all(&plain[..], 1).unwrap()).unwrap();
    let (code, a) = verify(dir, &[]);
    assert_eq!(code, 0, "{a}");
    let (code, b) = verify(copy.path(), &[]);
    assert_eq!(code, 0, "{b}");
    assert_eq!(head_of(&a), head_of(&b), "one chain for both forms");
    // `verity check` of both writes the same results.json, byte for byte.
    for d in [dir.as_path(), copy.path()] {
        let out = verity().arg("check").arg(d).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    assert_eq!(
        std::fs::read(dir.join("results.json")).unwrap(),
        std::fs::read(copy.path().join("results.json")).unwrap()
    );
    let out = verity().arg("check").arg(&packed).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a .jsonl.zst file is checked: {out:?}"
    );
}

#[test]
fn a_run_at_rate_zero_writes_a_compressed_history_that_verifies() {
    let r = run(&["--rate", "0", "--ops", "300", "--seed", "3", "--quiet"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let dir = std::fs::canonicalize(r.latest()).unwrap();
    assert!(dir.join("history.jsonl.zst").is_file());
    assert!(!dir.join("history.jsonl").exists());
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, 0, "{out}");

    // A changed byte in the compressed file: found, as a line or as data that stops decoding.
    let copy = copy_of(&dir);
    let path = copy.path().join("history.jsonl.zst");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let (code, out) = verify(copy.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("EDITED: line "), "{out}");
}

#[test]
fn a_run_cut_short_is_unproven_not_tampered_and_a_non_run_is_bad_input() {
    let (_, dir) = plain_run();
    let copy = copy_of(dir);
    std::fs::remove_file(copy.path().join("results.json")).unwrap();
    let (code, out) = verify(copy.path(), &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("results.json is missing"), "{out}");
    // Lines written after the last checkpoint of a run that never finished cannot be proven.
    let history = copy.path().join("history.jsonl");
    let mut text = std::fs::read(&history).unwrap();
    let last = text[..text.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let again = text[last..].to_vec();
    text.extend_from_slice(&again);
    std::fs::write(&history, text).unwrap();
    let (code, out) = verify(copy.path(), &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("follows the chain's last checkpoint"), "{out}");

    let empty = tempfile::tempdir().unwrap();
    let (code, out) = verify(empty.path(), &[]);
    assert_eq!(code, 254, "{out}");
    assert!(out.contains("is not a run directory"), "{out}");
}

#[test]
fn a_compressed_run_killed_mid_write_is_read_and_never_called_tampered() {
    let store = tempfile::tempdir().unwrap();
    let mut child = fast_memory_run(store.path(), "60s", &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the compressed history to pass a megabyte, then SIGKILL mid-write.
    let dir = wait_for_run_file(store.path(), "history.jsonl.zst", 1 << 20);
    child.kill().unwrap();
    child.wait().unwrap();
    let out = verity().arg("check").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no final read: unknown; {stdout}"
    );
    let results = crate::support::results_of(&dir);
    assert!(results["history"]["events"].as_u64().unwrap() > 1000);
    assert!(
        results["history"]["torn_tail"].is_object(),
        "a stream cut inside its frame is reported: {}",
        results["history"]
    );
    let (code, out) = verify(&dir, &[]);
    assert!(code == 0 || code == 2, "a crash is not tampering: {out}");
    assert!(!out.contains("EDITED"), "{out}");
}

#[derive(Debug, Clone)]
enum Edit {
    Byte {
        line: usize,
        at: usize,
        mask: u8,
    },
    Delete {
        line: usize,
    },
    Swap {
        a: usize,
        b: usize,
    },
    Insert {
        at: usize,
        copy: usize,
    },
    Truncate {
        at: usize,
    },
    /// Flip one checker's verdict in results.json.
    Verdict {
        checker: usize,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), 1u8..=255).prop_map(|(line, at, mask)| Edit::Byte {
            line,
            at,
            mask
        }),
        any::<usize>().prop_map(|line| Edit::Delete { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap { a, b }),
        (any::<usize>(), any::<usize>()).prop_map(|(at, copy)| Edit::Insert { at, copy }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
        any::<usize>().prop_map(|checker| Edit::Verdict { checker }),
    ]
}

fn lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Applies a history edit; returns the first line (1-based) that differs afterwards.
fn edit_history(text: &[u8], edit: &Edit) -> (Vec<u8>, Option<u64>) {
    let mut ls = lines(text);
    let n = ls.len();
    let edited = match *edit {
        Edit::Byte { line, at, mask } => {
            let l = line % n;
            let at = at % ls[l].len();
            ls[l][at] ^= mask;
            ls.concat()
        }
        Edit::Delete { line } => {
            ls.remove(line % n);
            ls.concat()
        }
        Edit::Swap { a, b } => {
            ls.swap(a % n, b % n);
            ls.concat()
        }
        Edit::Insert { at, copy } => {
            let c = ls[copy % n].clone();
            ls.insert(at % (n + 1), c);
            ls.concat()
        }
        Edit::Truncate { at } => text[..at % text.len()].to_vec(),
        Edit::Verdict { .. } => unreachable!("not a history edit"),
    };
    let (old, new) = (lines(text), lines(&edited));
    let same = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let first = (same < old.len().max(new.len())).then_some(same as u64 + 1);
    (edited, first)
}

proptest! {
    // Each case runs `verity verify` (a process, and a fresh judgement): few cases, a fixed seed.
    #![proptest_config(ProptestConfig {
        cases: 24,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0fed),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_edit_of_a_stored_run_fails_verification_and_is_named(edit in edit()) {
        let (_, dir) = plain_run();
        let copy = copy_of(dir);
        let expected = if let Edit::Verdict { checker } = edit {
            let path = copy.path().join("results.json");
            let mut results: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let names: Vec<String> = results["checkers"].as_object().unwrap().keys().cloned().collect();
            let name = &names[checker % names.len()];
            let v = &mut results["checkers"][name]["valid"];
            *v = serde_json::Value::Bool(!v.as_bool().expect("a valid run's verdicts are true"));
            std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
            format!("results.json was edited at checkers.{name}.valid")
        } else {
            let path = copy.path().join("history.jsonl");
            let (edited, first) = edit_history(&std::fs::read(&path).unwrap(), &edit);
            std::fs::write(&path, edited).unwrap();
            match first {
                None => return Ok(()), // a line swapped with itself: nothing changed
                Some(line) => format!("line {line} "),
            }
        };
        let (code, out) = verify(copy.path(), &[]);
        prop_assert_eq!(code, 1, "{:?}: {}", edit, out);
        prop_assert!(out.contains(&expected), "{:?}: expected {:?} in {}", edit, expected, out);
    }
}
