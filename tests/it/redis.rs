//! Redis, the real server from Debian's `redis-server`, started by verity: `--style plain` races
//! on purpose and loses money, `watch-multi` and `lua` are valid on bank and on both transactional
//! workloads (regression: the first watch-multi read a key before its own queued write, and the
//! first lua script encoded an empty journal as an object), reads from a replica behind a partition
//! are stale and reads from the primary are not — three seeds each.

use crate::args;
use crate::support::{run_cases, Case, Expect, CONSERVATION};

const QUICK: &[&str] = &["--nemesis", "none", "--time-limit", "3s"];

fn quick(rest: &'static [&'static str]) -> &'static [&'static str] {
    Box::leak([QUICK, rest].concat().into_boxed_slice())
}

#[test]
fn redis_plain_loses_money_and_watch_multi_and_lua_do_not() {
    let mut cases = vec![Case {
        target: "redis",
        args: quick(args!["--style", "plain"]),
        expect: Expect::AnyOf(&["wrong-total", "balance-mismatch"]),
        forbidden: &[],
    }];
    for style in ["watch-multi", "lua"] {
        for workload in ["bank", "ledger-append", "rw-register"] {
            let args: Vec<&'static str> =
                [QUICK, &["--style", style, "--workload", workload]].concat();
            cases.push(Case {
                target: "redis",
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

#[test]
fn redis_replica_reads_under_partitions_are_stale_and_primary_reads_are_not() {
    let with = |rest: &'static [&'static str]| -> &'static [&'static str] {
        Box::leak([REPLICA_FAULTS, rest].concat().into_boxed_slice())
    };
    let cases = [
        Case {
            target: "redis",
            args: with(args!["--read-from", "replica"]),
            expect: Expect::AnyOf(&["nonlinearizable"]),
            forbidden: CONSERVATION,
        },
        Case {
            target: "redis",
            args: with(args!["--read-from", "primary"]),
            expect: Expect::Valid,
            forbidden: &[],
        },
    ];
    run_cases(&cases);
}
