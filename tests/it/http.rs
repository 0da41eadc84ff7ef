//! `--target http` against `verity serve-ledger`, the reference server of the protocol: without a
//! knob it is valid, with each bug knob it shows the same anomaly as the memory target with that
//! knob (three seeds each), and every way a server can answer badly — a body cut short, fields of the
//! wrong type, the answer to another request, a 500, a hang past `--op-timeout`, a connection reset
//! in the middle of a request — costs operations (`info`/`fail` with the reason), never the run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use crate::reset_proxy::ResettingProxy;
use crate::support::{anomaly_types, results_of, verity};

/// A `verity serve-ledger` child, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = verity()
            .arg("serve-ledger")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("verity serve-ledger starts");
        let stdout = child.stdout.take().expect("stdout piped");
        // The first line names the address; reading it waits exactly until the server listens.
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_http(store: &std::path::Path, url: &str, args: &[&str]) -> (i32, String) {
    let out = verity()
        .args([
            "run", "--quiet", "--target", "http", "--url", url, "--store",
        ])
        .arg(store)
        .args(args)
        .output()
        .expect("verity runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_memory_knob_shows_through_the_protocol_as_it_does_in_memory() {
    let cases: [(&str, &str, &[&str]); 9] = [
        ("bank", "", &[]),
        ("bank", "lost-update", &["wrong-total", "balance-mismatch"]),
        ("bank", "overdraft", &["negative-balance"]),
        ("bank", "lose-acked", &["lost-transfer"]),
        ("bank", "duplicate-retry", &["duplicate-transfer"]),
        ("bank", "stale-read", &["nonlinearizable"]),
        ("ledger-append", "read-committed", &["G-single"]),
        ("ledger-append", "snapshot-isolation", &["G2-item"]),
        ("ledger-append", "dirty-read", &["G1a", "G1b"]),
    ];
    let store = tempfile::tempdir().expect("temp dir");
    let mut misses = Vec::new();
    for (workload, bug, expected) in cases {
        for seed in ["1", "2", "3"] {
            let mut args = vec!["--workload", workload, "--seed", seed];
            if !bug.is_empty() {
                args.extend(["--bug", bug]);
            }
            let server = Server::start(&args);
            let (code, out) = run_http(
                store.path(),
                &server.url,
                &["--workload", workload, "--time-limit", "3s", "--seed", seed],
            );
            let found = anomaly_types(&results_of(&store.path().join("latest")));
            let ok = if expected.is_empty() {
                code == 0
            } else {
                code == 1 && found.iter().any(|a| expected.contains(&a.as_str()))
            };
            if !ok {
                misses.push(format!(
                    "{workload} --bug {bug:?} seed {seed}: exit {code}, {found:?}\n{out}"
                ));
            }
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n---\n"));
}

#[test]
fn a_server_that_answers_badly_costs_operations_never_the_run() {
    let store = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("truncated", "an answer that is not JSON"),
        ("wrong-type", "a transfer answer without its id"),
        ("wrong-id", "the answer to transfer"),
        ("error-500", "HTTP 500"),
        ("hang", "timeout"),
    ];
    for (mode, reason) in cases {
        let server = Server::start(&["--misbehave", mode, "--every", "20"]);
        let started = Instant::now();
        let (code, out) = run_http(
            store.path(),
            &server.url,
            &["--time-limit", "3s", "--op-timeout", "500ms", "--seed", "1"],
        );
        // The server did what was asked before answering badly: the ledger is right, the unknown
        // outcomes are resolved by the final read.
        assert_eq!(code, 0, "--misbehave {mode}:\n{out}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "--misbehave {mode} hung the run"
        );
        let results = results_of(&store.path().join("latest"));
        let errors = results["stats"]["errors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            errors
                .iter()
                .any(|e| e["reason"].as_str().is_some_and(|r| r.contains(reason))
                    && e["type"] == "info"),
            "--misbehave {mode}: no info {reason:?} among {errors:?}"
        );
        assert!(
            out.contains(reason),
            "--misbehave {mode}: the summary does not say why\n{out}"
        );
    }
}

#[test]
fn a_connection_reset_mid_request_costs_the_operation_never_the_run() {
    let store = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&[]);
    let upstream = server
        .url
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .expect("the server's URL is http://address");
    // Every 10th transfer reaches the ledger, and its answer is replaced by a TCP RST.
    let proxy = ResettingProxy::start(upstream, b"POST /transfer", 10);
    let started = Instant::now();
    let (code, out) = run_http(
        store.path(),
        &proxy.url(),
        &["--time-limit", "3s", "--op-timeout", "2s", "--seed", "1"],
    );
    // The reset transfers happened or not: the final read (never reset) says which, so the
    // verdict is decided, and valid.
    assert_eq!(code, 0, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "resets hung the run"
    );
    let resets = proxy.resets.load(Ordering::SeqCst);
    assert!(resets > 0, "the proxy reset nothing:\n{out}");
    let results = results_of(&store.path().join("latest"));
    let info = &results["stats"]["by_f"]["transfer"]["info"];
    assert_eq!(
        info.as_u64(),
        Some(resets),
        "each reset transfer is one info operation\n{out}"
    );
    let errors = results["stats"]["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let reset_reason = |e: &serde_json::Value| {
        e["type"] == "info" && e["reason"].as_str().is_some_and(|r| r.contains("reset"))
    };
    assert!(
        errors.iter().any(reset_reason),
        "no info operation says the connection was reset: {errors:?}"
    );
    assert!(out.contains("reset"), "the summary does not say why\n{out}");
}

#[test]
fn a_url_that_is_not_a_ledger_or_not_there_is_refused() {
    let store = tempfile::tempdir().expect("temp dir");
    let (code, out) = run_http(store.path(), "not a url", &[]);
    assert_eq!(code, 254, "{out}");
    let server = Server::start(&[]);
    let (code, out) = run_http(store.path(), &server.url, &["--workload", "ledger-append"]);
    assert_eq!(code, 254, "a bank server asked for ledger-append:\n{out}");
    assert!(
        out.contains("does not serve workload ledger-append"),
        "{out}"
    );
    drop(server);
    let out = verity()
        .args(["run", "--quiet", "--target", "http", "--store"])
        .arg(store.path())
        .output()
        .expect("verity runs");
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"));
}
