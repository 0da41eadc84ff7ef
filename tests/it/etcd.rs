//! etcd, a real three-member Raft store from Debian's `etcd-server`, started by verity with every
//! member↔member and client↔member link through the proxy mesh: serializable reads (answered by any
//! member from its own state) are caught stale under partitions; linearizable reads stay valid on
//! bank and both transactional workloads under partitions, pauses and kills, and the members
//! converge after the heal — three seeds each.

use crate::args;
use crate::support::{run_cases, Case, Expect, CONSERVATION};

/// The stale read must be certain, not likely: with a 2 s interval every partition lasts at least
/// 1.2 s (more than twice etcd's 500 ms election timeout, so the majority elects and commits while
/// the cut-off member still answers), and in 10 s each of the three seeds' schedules cuts one member
/// off from the other two for that long (seed 1 at 1.0 s and 4.2 s, seed 2 at 6.4 s, seed 3 at
/// 4.1 s and 7.0 s), on top of the thousands of reads a lagging follower already answers stale.
/// At 5 s with a 1.5 s interval one seed once saw no stale read on a loaded machine.
#[test]
fn etcd_serializable_reads_are_stale_under_partitions() {
    run_cases(&[Case {
        target: "etcd",
        args: args![
            "--read",
            "serializable",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "2s",
            "--time-limit",
            "10s",
            "--recovery",
            "1s",
        ],
        expect: Expect::AnyOf(&["nonlinearizable"]),
        forbidden: CONSERVATION,
    }]);
}

const FAULTS: &[&str] = &[
    "--read",
    "linearizable",
    "--nemesis",
    "partition,pause,kill",
    "--nemesis-interval",
    "1500ms",
    "--time-limit",
    "6s",
    "--recovery",
    "2s",
];

#[test]
fn etcd_linearizable_survives_partitions_pauses_and_kills_and_converges() {
    let cases: Vec<Case> = ["bank", "ledger-append", "rw-register"]
        .into_iter()
        .map(|workload| Case {
            target: "etcd",
            args: Box::leak(
                [FAULTS, &["--workload", workload]]
                    .concat()
                    .into_boxed_slice(),
            ),
            expect: Expect::ValidBy(&["convergence"]),
            forbidden: &[],
        })
        .collect();
    run_cases(&cases);
}
