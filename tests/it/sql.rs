//! PostgreSQL and MariaDB, the real servers from Debian's packages (installed by `scripts/setup`),
//! started by verity itself: every isolation level and transfer style that should be safe is judged
//! valid, every one that should not is caught with the right anomaly, on three seeds each; stale
//! reads from a replica behind a partition are caught, reads from the primary are not; `--url`
//! reaches a server verity did not start; a `kill -9` of verity leaves servers that `verity heal`
//! stops and removes.
//!
//! Anomalies on a real server come from real concurrency, not from a seed; each case runs long and
//! hot enough (10 workers at 1000 ops/s for 3–6 s, thousands of transactions) that a configuration
//! which allows the anomaly shows it many times over, so catching it is certain rather than likely.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::args;
use std::time::{Duration, Instant};

use crate::support::{results_of, run_cases, verity, Case, Expect, CONSERVATION};

const QUICK: &[&str] = &["--nemesis", "none", "--time-limit", "3s"];

#[test]
fn postgres_isolation_levels_and_styles_get_the_verdicts_they_deserve() {
    let quick = |rest: &'static [&'static str]| -> &'static [&'static str] {
        Box::leak([QUICK, rest].concat().into_boxed_slice())
    };
    let cases = [
        Case {
            target: "postgres",
            args: quick(args![
                "--isolation",
                "read-committed",
                "--style",
                "read-modify-write"
            ]),
            expect: Expect::AnyOf(&["wrong-total", "balance-mismatch"]),
            forbidden: &[],
        },
        Case {
            target: "postgres",
            args: quick(args![
                "--workload",
                "ledger-append",
                "--isolation",
                "read-committed",
                "--style",
                "read-modify-write"
            ]),
            expect: Expect::AnyOf(&["lost-update", "G-single"]),
            forbidden: &[],
        },
        Case {
            target: "postgres",
            args: quick(args![
                "--workload",
                "ledger-append",
                "--isolation",
                "repeatable-read"
            ]),
            expect: Expect::AnyOf(&["G2-item"]),
            // Snapshot isolation forbids everything weaker than write skew.
            forbidden: &["G0", "G1a", "G1b", "G1c", "G-single", "lost-update"],
        },
        Case {
            target: "postgres",
            args: quick(args!["--isolation", "repeatable-read", "--style", "atomic"]),
            expect: Expect::Valid,
            forbidden: &[],
        },
    ];
    run_cases(&cases);
}

#[test]
fn postgres_serializable_is_valid_in_every_style_on_bank_and_ledger_append() {
    let mut cases = Vec::new();
    for style in ["atomic", "read-modify-write", "select-for-update"] {
        for workload in ["bank", "ledger-append"] {
            let args: Vec<&'static str> = [
                QUICK,
                &[
                    "--isolation",
                    "serializable",
                    "--style",
                    style,
                    "--workload",
                    workload,
                ],
            ]
            .concat();
            cases.push(Case {
                target: "postgres",
                args: Box::leak(args.into_boxed_slice()),
                expect: Expect::Valid,
                forbidden: &[],
            });
        }
    }
    run_cases(&cases);
}

const REPLICA_FAULTS: &[&str] = &[
    "--replicas",
    "1",
    "--nemesis",
    "partition",
    "--nemesis-interval",
    "1500ms",
    "--time-limit",
    "5s",
    "--recovery",
    "1s",
];

fn with_replica(rest: &'static [&'static str]) -> &'static [&'static str] {
    Box::leak([REPLICA_FAULTS, rest].concat().into_boxed_slice())
}

#[test]
fn postgres_replica_reads_under_partitions_are_stale_and_primary_reads_are_not() {
    let cases = [
        Case {
            target: "postgres",
            args: with_replica(args!["--read-from", "replica"]),
            expect: Expect::AnyOf(&["nonlinearizable"]),
            forbidden: CONSERVATION,
        },
        Case {
            target: "postgres",
            args: with_replica(args!["--read-from", "primary"]),
            expect: Expect::Valid,
            forbidden: &[],
        },
        Case {
            target: "postgres",
            args: with_replica(args![
                "--read-from",
                "replica",
                "--workload",
                "ledger-append",
                "--isolation",
                "serializable"
            ]),
            expect: Expect::AnyOf(&[
                "G-single-realtime",
                "G-single-process",
                "G-nonadjacent-realtime",
                "G-nonadjacent-process",
                "G2-item",
                "G2-item-process",
                "G2-item-realtime",
            ]),
            forbidden: &["duplicate-elements", "G0", "G1a", "G1b"],
        },
    ];
    run_cases(&cases);
}

#[test]
fn mariadb_repeatable_read_loses_updates_and_serializable_does_not() {
    let quick = |rest: &'static [&'static str]| -> &'static [&'static str] {
        Box::leak([QUICK, rest].concat().into_boxed_slice())
    };
    let cases = [
        Case {
            target: "mariadb",
            args: quick(args![
                "--isolation",
                "repeatable-read",
                "--style",
                "read-modify-write"
            ]),
            expect: Expect::AnyOf(&["wrong-total", "balance-mismatch"]),
            forbidden: &[],
        },
        Case {
            target: "mariadb",
            args: quick(args![
                "--workload",
                "ledger-append",
                "--isolation",
                "repeatable-read",
                "--style",
                "read-modify-write"
            ]),
            expect: Expect::AnyOf(&["lost-update"]),
            forbidden: &[],
        },
        Case {
            target: "mariadb",
            args: quick(args![
                "--isolation",
                "serializable",
                "--style",
                "read-modify-write"
            ]),
            expect: Expect::Valid,
            forbidden: &[],
        },
        Case {
            target: "mariadb",
            args: quick(args![
                "--workload",
                "ledger-append",
                "--isolation",
                "serializable"
            ]),
            expect: Expect::Valid,
            forbidden: &[],
        },
    ];
    run_cases(&cases);
}

#[test]
fn mariadb_replica_reads_under_partitions_are_stale_and_primary_reads_are_not() {
    let cases = [
        Case {
            target: "mariadb",
            args: with_replica(args!["--read-from", "replica"]),
            expect: Expect::AnyOf(&["nonlinearizable"]),
            forbidden: CONSERVATION,
        },
        Case {
            target: "mariadb",
            args: with_replica(args!["--read-from", "primary"]),
            expect: Expect::Valid,
            forbidden: &[],
        },
    ];
    run_cases(&cases);
}

/// `--url`: a server verity did not start (here one the test starts through the library) is used
/// as it is, with no nodes to fault.
#[test]
fn a_server_given_by_url_is_used_and_has_no_nodes_to_fault() {
    use verity_history::{Invocation, Value, F};
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = verity_targets::registry::TargetOptions {
        workload: "bank".into(),
        dir: Some(dir.path().join("server")),
        ..Default::default()
    };
    let server = verity_targets::postgres::create(&options).expect("a postgres target");
    let init = Invocation {
        f: F::Setup,
        value: Value::map([("balances", Value::int_list([1, 2]))]),
    };
    runtime
        .block_on(server.setup(&init))
        .expect("the server starts");
    let port = server
        .clone()
        .nodes()
        .expect("a started server has nodes")
        .listen_addrs()["n1"]
        .port();
    let url = format!("postgresql://verity@127.0.0.1:{port}/postgres");

    let store = tempfile::tempdir().expect("temp dir");
    let run = |extra: &[&str]| {
        verity()
            .args(["run", "--quiet", "--target", "postgres", "--url", &url])
            .args(["--time-limit", "2s", "--seed", "4", "--store"])
            .arg(store.path())
            .args(extra)
            .output()
            .expect("verity runs")
    };
    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results = results_of(&store.path().join("latest"));
    assert!(
        results["checkers"].get("convergence").is_none(),
        "a --url server has no replicas to compare"
    );
    let out = run(&["--nemesis", "kill"]);
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--url"), "{err}");
    runtime.block_on(server.teardown()).expect("teardown");
}

#[test]
fn a_missing_server_is_bad_input_naming_its_package_and_a_broken_one_quotes_its_log() {
    let empty = tempfile::tempdir().expect("temp dir");
    let store = tempfile::tempdir().expect("temp dir");
    // Each target names the package to install and the script that installs it.
    for (target, env, package) in [
        ("postgres", "VERITY_POSTGRES_BINDIR", "postgresql"),
        ("mariadb", "VERITY_MARIADB_BINDIR", "mariadb-server"),
        ("redis", "VERITY_REDIS_BINDIR", "redis-server"),
        ("etcd", "VERITY_ETCD_BINDIR", "etcd-server"),
    ] {
        let out = verity()
            .args(["run", "--quiet", "--target", target, "--store"])
            .arg(store.path())
            .env(env, empty.path())
            .output()
            .expect("verity runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{target}: {err}");
        assert!(
            err.contains(package) && err.contains("scripts/setup"),
            "{target}: {err}"
        );
    }

    // A server that cannot initialise: exit 255, the end of its log in the message, the log kept.
    let broken = tempfile::tempdir().expect("temp dir");
    for name in ["initdb", "postgres", "pg_basebackup"] {
        let path = broken.path().join(name);
        std::fs::write(
            &path,
            "#!/bin/sh\necho 'FATAL: the disk is on fire' >&2\nexit 1\n",
        )
        .expect("write a fake server");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let out = verity()
        .args(["run", "--quiet", "--target", "postgres", "--store"])
        .arg(store.path())
        .env("VERITY_POSTGRES_BINDIR", broken.path())
        .output()
        .expect("verity runs");
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the disk is on fire"), "{err}");
    let log = store.path().join("latest/postgres/setup.log");
    let kept = std::fs::read_to_string(&log).expect("the setup log is kept in the run directory");
    assert!(kept.contains("the disk is on fire"));
}

/// Reads the process registry a run keeps under `<store>/.nemesis/` once it lists `nodes` servers
/// and a directory to remove.
fn wait_for_registry(store: &Path, nodes: usize, child: &mut Child) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "verity ended before its servers were up"
        );
        let files = std::fs::read_dir(store.join(".nemesis"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("processes-"))
            });
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let running = v["processes"].as_object().map_or(0, |p| p.len());
            let cleanup = v["cleanup"].as_array().map_or(0, |c| c.len());
            if running == nodes && cleanup > 0 {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "no registry of {nodes} servers");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn after_a_kill_9_of_verity_heal_stops_its_servers_and_removes_their_files() {
    for target in ["postgres", "mariadb"] {
        let store = tempfile::tempdir().expect("temp dir");
        let mut child: Child = verity()
            .args(["run", "--quiet", "--target", target, "--replicas", "1"])
            .args(["--nemesis", "pause", "--nemesis-interval", "500ms"])
            .args(["--time-limit", "60s", "--store"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("verity starts");
        let registry = wait_for_registry(store.path(), 2, &mut child);
        // Let the main phase start, so a pause may well be active at the kill.
        std::thread::sleep(Duration::from_millis(1500));
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        let groups: Vec<u32> = registry["processes"]
            .as_object()
            .expect("processes")
            .values()
            .map(|p| p["pgid"].as_u64().expect("pgid") as u32)
            .collect();
        let dirs: Vec<String> = registry["cleanup"]
            .as_array()
            .expect("cleanup")
            .iter()
            .map(|d| d.as_str().expect("a path").to_string())
            .collect();
        assert!(
            groups
                .iter()
                .all(|g| verity_nemesis::signal::group_alive(*g)),
            "{target}: the servers outlive a kill -9 of verity (which is why heal exists)"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_verity"))
            .args(["heal", "--store"])
            .arg(store.path())
            .output()
            .expect("verity heal runs");
        assert_eq!(out.status.code(), Some(0));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("stopped n1"), "{target}: {said}");
        for g in &groups {
            assert!(
                !verity_nemesis::signal::group_alive(*g),
                "{target}: process group {g} still runs after verity heal"
            );
        }
        for d in &dirs {
            assert!(!Path::new(d).exists(), "{target}: {d} was not removed");
        }
        let again = Command::new(env!("CARGO_BIN_EXE_verity"))
            .args(["heal", "--store"])
            .arg(store.path())
            .output()
            .expect("verity heal runs");
        assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to heal"));
    }
}
