//! The fault schedule: a pure function of (seed, fault kinds, interval, time limit, node names) to the
//! list of fault starts and stops, each at an offset from the start of the main phase.
//!
//! Like Jepsen's `nemesis.combined` packages driven by `gen/stagger`, faults alternate with quiet
//! periods: wait a seeded gap of 0.4..1.0 × interval, start a fault, keep it for 0.6..1.2 × interval,
//! stop it, and again. The bounds make sure three faults fit in 6 intervals (30 s at the default 5 s),
//! so the default run shows partition, pause and kill. One fault is active at a time, so every
//! fault's effect can be attributed and a stop never races another fault's start on the same node. Kinds are dealt from a seeded, reshuffled
//! deck rather than drawn independently, so that even a 30 s run sees each listed kind once. Every
//! start has its stop at or before the time limit: the schedule itself never leaves a fault behind
//! (the executor still heals everything at the end, whatever the schedule says).
//!
//! Jepsen's `:primaries` spec is kept: a partition isolates the current primary 60% of the time, a
//! pause or kill aims at it half the time and a delay or loss a third of the time, because that is
//! where split brains, stale reads and lost acknowledgements show. The schedule names the primary with a placeholder
//! ([`PRIMARY`]); the nemesis resolves it when the fault starts and records the node it hit.
//!
//! Being pure, the schedule is computed before the run, printed or stored, and reproduced from the
//! seed alone, as TigerBeetle's VOPR reproduces a whole simulation from its seed.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::faults::{Fault, FaultKind, GrudgeKind, Partition, Transition, PRIMARY};

/// The ChaCha stream the nemesis draws from, so that its choices do not depend on (or disturb) those
/// of the workload seeded with the same run seed. ("nem" in ASCII.)
pub const NEMESIS_STREAM: u64 = 0x6e_65_6d;
/// The shortest interval honoured; shorter ones are raised to it, which bounds the schedule's length.
pub const INTERVAL_MIN: Duration = Duration::from_millis(100);
/// The most transitions a schedule holds, whatever the time limit.
pub const STEPS_MAX: usize = 20_000;
/// The interval used when the user gives none (Maelstrom and Jepsen use 10 s; runs here are short).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// One transition at its offset from the start of the main phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub at: Duration,
    pub transition: Transition,
}

/// The fault schedule for a run. `faults` may be listed in any order and with repeats; kinds that
/// cannot apply to so few nodes (a partition of one node) are left out. Deterministic: equal arguments
/// give equal schedules.
pub fn schedule(
    seed: u64,
    faults: &[FaultKind],
    interval: Duration,
    time_limit: Duration,
    nodes: &[String],
) -> Vec<Step> {
    let mut nodes = nodes.to_vec();
    nodes.sort();
    nodes.dedup();
    let mut kinds: Vec<FaultKind> = faults
        .iter()
        .copied()
        .filter(|k| feasible(*k, nodes.len()))
        .collect();
    kinds.sort();
    kinds.dedup();
    if kinds.is_empty() {
        return Vec::new();
    }
    let interval = interval.max(INTERVAL_MIN);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(NEMESIS_STREAM);

    let mut steps = Vec::new();
    let mut deck: Vec<FaultKind> = Vec::new();
    let mut t = Duration::ZERO;
    while steps.len() + 2 <= STEPS_MAX {
        let start = t + interval.mul_f64(rng.gen_range(0.4..1.0));
        if start >= time_limit {
            break;
        }
        if deck.is_empty() {
            deck = kinds.clone();
            deck.shuffle(&mut rng);
        }
        let kind = deck.pop().expect("the deck was just refilled");
        let fault = make_fault(kind, &nodes, &mut rng);
        let stop = (start + interval.mul_f64(rng.gen_range(0.6..1.2))).min(time_limit);
        steps.push(Step {
            at: start,
            transition: Transition::Start(fault.clone()),
        });
        steps.push(Step {
            at: stop,
            transition: Transition::Stop(fault),
        });
        t = stop;
    }
    steps
}

/// Whether a fault kind can do anything to `n` nodes.
fn feasible(kind: FaultKind, n: usize) -> bool {
    match kind {
        FaultKind::Partition => GrudgeKind::ALL.iter().any(|g| n >= g.nodes_min()),
        _ => n >= 1,
    }
}

/// Draws the details of one fault of `kind`.
fn make_fault(kind: FaultKind, nodes: &[String], rng: &mut ChaCha8Rng) -> Fault {
    match kind {
        FaultKind::Partition => {
            // Cutting off the primary is what exposes split brains and lost acknowledgements, so it
            // gets 60%; the other shapes share the rest.
            let shapes: Vec<GrudgeKind> = GrudgeKind::ALL
                .into_iter()
                .filter(|g| nodes.len() >= g.nodes_min() && *g != GrudgeKind::IsolatePrimary)
                .collect();
            let shape = if rng.gen_bool(0.6) {
                GrudgeKind::IsolatePrimary
            } else {
                *shapes.choose(rng).expect("feasible() guarantees one shape")
            };
            Fault::Partition(
                Partition::new(shape, nodes, rng).expect("the shape fits the node count"),
            )
        }
        FaultKind::Pause => Fault::Pause {
            nodes: targets(nodes, rng),
        },
        FaultKind::Kill => Fault::Kill {
            nodes: targets(nodes, rng),
        },
        FaultKind::Delay => {
            let delay_ms = *[20, 50, 100, 200].choose(rng).expect("non-empty");
            Fault::Delay {
                nodes: one_or_all(nodes, rng),
                delay_ms,
                jitter_ms: delay_ms / 4,
            }
        }
        FaultKind::Loss => Fault::Loss {
            nodes: one_or_all(nodes, rng),
            p: *[0.05, 0.1, 0.2].choose(rng).expect("non-empty"),
        },
    }
}

/// Which nodes a pause or kill hits, after Jepsen's node specs: the primary (resolved when the fault
/// starts), one node, a minority, a majority, or all of them.
fn targets(nodes: &[String], rng: &mut ChaCha8Rng) -> Vec<String> {
    let n = nodes.len();
    let roll: f64 = rng.gen();
    if roll < 0.5 {
        return vec![PRIMARY.to_string()];
    }
    let count = if roll < 0.7 || n == 1 {
        1
    } else if roll < 0.8 {
        rng.gen_range(1..=((n - 1) / 2).max(1))
    } else if roll < 0.9 {
        n / 2 + 1
    } else {
        n
    };
    pick(nodes, count, rng)
}

/// The primary, one node or all of them.
fn one_or_all(nodes: &[String], rng: &mut ChaCha8Rng) -> Vec<String> {
    match rng.gen_range(0..3) {
        0 => vec![PRIMARY.to_string()],
        1 => pick(nodes, 1, rng),
        _ => pick(nodes, nodes.len(), rng),
    }
}

fn pick(nodes: &[String], count: usize, rng: &mut ChaCha8Rng) -> Vec<String> {
    let mut chosen: Vec<String> = nodes.choose_multiple(rng, count).cloned().collect();
    chosen.sort();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn no_faults_or_no_nodes_is_an_empty_schedule() {
        let s = schedule(1, &[], DEFAULT_INTERVAL, Duration::from_secs(60), &nodes(3));
        assert!(s.is_empty());
        let s = schedule(
            1,
            &[FaultKind::Partition],
            DEFAULT_INTERVAL,
            Duration::from_secs(60),
            &nodes(1),
        );
        assert!(s.is_empty(), "one node cannot be partitioned");
        let s = schedule(
            1,
            &[FaultKind::Kill],
            DEFAULT_INTERVAL,
            Duration::from_secs(60),
            &[],
        );
        assert!(s.is_empty());
    }

    #[test]
    fn a_zero_interval_is_raised_and_the_schedule_stays_bounded() {
        let s = schedule(
            1,
            &[FaultKind::Pause],
            Duration::ZERO,
            Duration::from_secs(3600),
            &nodes(3),
        );
        assert!(s.len() <= STEPS_MAX);
        assert!(!s.is_empty());
    }
}
