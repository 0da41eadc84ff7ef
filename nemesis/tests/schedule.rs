//! Tests of the fault schedule: a pure function of the seed (equal for equal seeds, different across
//! seeds), and for any arguments a well-formed plan — sorted, inside the time limit, every start
//! followed by its own stop, one fault at a time, only listed kinds, only known nodes.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;
use verity_nemesis::faults::{Fault, FaultKind, GrudgeKind, Transition, PRIMARY};
use verity_nemesis::schedule::{schedule, Step, STEPS_MAX};

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn all_kinds() -> Vec<FaultKind> {
    FaultKind::ALL.to_vec()
}

#[test]
fn the_same_seed_gives_the_same_schedule() {
    let a = schedule(
        42,
        &all_kinds(),
        Duration::from_secs(5),
        Duration::from_secs(60),
        &names(5),
    );
    let b = schedule(
        42,
        &all_kinds(),
        Duration::from_secs(5),
        Duration::from_secs(60),
        &names(5),
    );
    assert_eq!(a, b);
    assert!(!a.is_empty());
    // The order in which the user listed faults, or nodes, does not matter.
    let mut reversed = all_kinds();
    reversed.reverse();
    let mut nodes = names(5);
    nodes.reverse();
    assert_eq!(
        a,
        schedule(
            42,
            &reversed,
            Duration::from_secs(5),
            Duration::from_secs(60),
            &nodes
        )
    );
}

#[test]
fn different_seeds_give_different_schedules() {
    let schedules: Vec<Vec<Step>> = (0..20)
        .map(|seed| {
            schedule(
                seed,
                &all_kinds(),
                Duration::from_secs(5),
                Duration::from_secs(60),
                &names(3),
            )
        })
        .collect();
    for i in 0..schedules.len() {
        for j in i + 1..schedules.len() {
            assert_ne!(schedules[i], schedules[j], "seeds {i} and {j}");
        }
    }
}

#[test]
fn a_short_default_run_sees_every_listed_kind() {
    let kinds = FaultKind::parse_list("partition,pause,kill").unwrap();
    for seed in 0..50 {
        let s = schedule(
            seed,
            &kinds,
            Duration::from_secs(5),
            Duration::from_secs(30),
            &names(3),
        );
        let seen: BTreeSet<FaultKind> = s.iter().map(|st| st.transition.fault().kind()).collect();
        assert_eq!(seen.len(), 3, "seed {seed}: {seen:?}");
    }
}

#[test]
fn the_primary_is_a_frequent_target_of_every_kind() {
    let mut targeted = std::collections::BTreeMap::new();
    for seed in 0..100 {
        let s = schedule(
            seed,
            &all_kinds(),
            Duration::from_secs(5),
            Duration::from_secs(60),
            &names(3),
        );
        for st in s.iter().filter(|st| st.transition.is_start()) {
            let f = st.transition.fault();
            let e = targeted.entry(f.kind()).or_insert((0, 0));
            e.0 += usize::from(f.targets_primary());
            e.1 += 1;
        }
    }
    for (kind, (primary, all)) in targeted {
        assert!(
            primary * 4 >= all,
            "{kind}: the primary in only {primary} of {all}"
        );
        assert!(
            primary * 4 <= all * 3,
            "{kind}: the primary in {primary} of {all}"
        );
    }
}

#[test]
fn partitions_use_every_shape_across_seeds() {
    let mut shapes = BTreeSet::new();
    for seed in 0..200 {
        for st in schedule(
            seed,
            &[FaultKind::Partition],
            Duration::from_secs(5),
            Duration::from_secs(60),
            &names(5),
        ) {
            if let Fault::Partition(p) = st.transition.fault() {
                shapes.insert(p.kind);
            }
        }
    }
    assert_eq!(shapes, GrudgeKind::ALL.into_iter().collect());
}

/// The invariants every schedule must satisfy.
fn check_well_formed(steps: &[Step], kinds: &[FaultKind], limit: Duration, nodes: &[String]) {
    assert!(steps.len() <= STEPS_MAX);
    assert_eq!(steps.len() % 2, 0);
    for w in steps.windows(2) {
        assert!(w[0].at <= w[1].at, "sorted");
    }
    for pair in steps.chunks(2) {
        let (start, stop) = (&pair[0], &pair[1]);
        let Transition::Start(fault) = &start.transition else {
            panic!("a start comes first: {start:?}")
        };
        assert_eq!(
            stop.transition,
            Transition::Stop(fault.clone()),
            "its own stop follows"
        );
        assert!(start.at < stop.at && stop.at <= limit);
        assert!(kinds.contains(&fault.kind()));
        assert!(!fault.nodes().is_empty());
        assert!(
            fault
                .nodes()
                .iter()
                .all(|n| nodes.contains(n) || n == PRIMARY),
            "{fault:?}"
        );
    }
}

proptest! {
    #[test]
    fn every_schedule_is_well_formed(
        seed in any::<u64>(),
        kind_mask in 1u8..32,
        n in 1usize..8,
        interval_ms in 0u64..10_000,
        limit_ms in 0u64..120_000,
    ) {
        let kinds: Vec<FaultKind> = FaultKind::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| kind_mask & (1 << i) != 0)
            .map(|(_, k)| k)
            .collect();
        let limit = Duration::from_millis(limit_ms);
        let steps = schedule(seed, &kinds, Duration::from_millis(interval_ms), limit, &names(n));
        check_well_formed(&steps, &kinds, limit, &names(n));
        let again = schedule(seed, &kinds, Duration::from_millis(interval_ms), limit, &names(n));
        prop_assert_eq!(steps, again);
    }
}
