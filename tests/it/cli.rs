//! Bad input gets exit 254 and one line that names the problem and the valid choices.

use crate::support::verity;

fn fails_with(args: &[&str], needles: &[&str]) {
    let out = verity().args(args).output().expect("verity runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
    let line = stderr.lines().last().unwrap_or_default();
    for n in needles {
        assert!(line.contains(n), "{args:?}: {line:?} should mention {n:?}");
    }
}

#[test]
fn unknown_names_list_the_valid_choices() {
    fails_with(&["run", "--target", "nope"], &["nope", "memory"]);
    fails_with(&["run", "--workload", "nope"], &["nope", "bank"]);
    fails_with(
        &["run", "--target", "memory", "--bug", "nope"],
        &["nope", "lost-update", "stale-read"],
    );
    fails_with(
        &["run", "--bug", "nope"],
        &["nope", "early-ack", "split-brain"],
    );
    fails_with(&["run", "--nemesis", "flood"], &["flood", "partition"]);
    fails_with(
        &[
            "run",
            "--workload",
            "ledger-append",
            "--bug",
            "read-committed",
        ],
        &["read-committed", "cluster", "stale-read", "no-dedupe"],
    );
    fails_with(
        &["run", "--target", "memory", "--nemesis", "pause"],
        &["cluster"],
    );
    fails_with(&["run", "--checker", "nope"], &["nope", "conservation"]);
}

#[test]
fn malformed_arguments_are_named() {
    fails_with(&["run", "--time-limit", "ten"], &["ten", "30s"]);
    fails_with(&["run", "--concurrency", "0"], &["concurrency"]);
    fails_with(&["frob"], &["frob"]);
}

#[test]
fn unreadable_or_malformed_histories_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        &["check", dir.path().join("missing.jsonl").to_str().unwrap()],
        &["missing.jsonl"],
    );
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"index\":0,\"time_ns\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\nnot json\n{}\n").unwrap();
    fails_with(&["check", bad.to_str().unwrap()], &["line 2"]);
    fails_with(
        &["check", dir.path().to_str().unwrap()],
        &["could not be read"],
    );
    let empty = tempfile::tempdir().unwrap();
    fails_with(
        &["check", empty.path().to_str().unwrap()],
        &["neither a run"],
    );
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(
        &broken,
        "{\"index\":0,\"time_ns\":0,\"process\":1,\"type\":\"ok\",\"f\":\"read\"}\n",
    )
    .unwrap();
    fails_with(&["check", broken.to_str().unwrap()], &["never invoked"]);
}

#[test]
fn list_names_every_target_workload_bug_and_checker() {
    let out = verity().arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "target    memory",
        "workload  bank",
        "bug       lose-acked",
        "checker   conservation",
    ] {
        assert!(
            text.contains(needle),
            "verity list lacks {needle:?}:\n{text}"
        );
    }
}

#[test]
fn help_explains_exit_codes() {
    let out = verity().args(["--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("254") && text.contains("unknown"), "{text}");
}
