//! The journal witness for bank histories: it may only ever prove validity, so every history it
//! proves must also be judged linearizable by the full search; and it should prove almost every
//! history of a correct ledger, which is what makes large bank histories with timeouts decidable.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_checkers::linearizable::{checker_for, witness, LinearizableOptions};
use verity_checkers::{Budget, Validity};
use verity_history::{History, OpOutcome, Value, F};
use verity_testkit::ledger::{simulate, SimConfig};

fn sim(seed: u64, ops: usize, info: f64) -> History {
    simulate(
        seed,
        &SimConfig {
            accounts: 3,
            processes: 4,
            ops,
            info_chance: info,
            nemesis: true,
        },
    )
}

/// Replaces one ok read's balances with another's: a stale (or future) read.
fn swap_reads(h: &mut History, rng: &mut ChaCha8Rng) -> bool {
    let reads: Vec<usize> = h
        .ops()
        .unwrap()
        .into_iter()
        .filter(|o| {
            o.outcome == OpOutcome::Ok
                && h.events[o.invoke].f == F::Read
                && h.events[o.invoke].value.is_null()
        })
        .map(|o| o.completion.unwrap())
        .collect();
    if reads.len() < 2 {
        return false;
    }
    let a = reads[rng.gen_range(0..reads.len())];
    let b = reads[rng.gen_range(0..reads.len())];
    let v: Value = h.events[b].value.clone();
    h.events[a].value = v;
    true
}

#[test]
fn whatever_the_witness_proves_the_search_confirms() {
    let search = checker_for("bank", &LinearizableOptions::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let (mut proved, mut mutated_proved, mut cases) = (0, 0, 0);
    for seed in 0..3000u64 {
        let mut h = sim(seed, rng.gen_range(2..=10), 0.2);
        let mutated = rng.gen_bool(0.5) && swap_reads(&mut h, &mut rng);
        cases += 1;
        if witness::bank_journal(&h).is_some() {
            let v = search.check(&h, &Budget::unlimited());
            assert_eq!(
                v.valid,
                Validity::Valid,
                "seed {seed}: the witness proved a history the search rejects"
            );
            proved += 1;
            mutated_proved += usize::from(mutated);
        }
    }
    assert!(
        proved > cases / 3,
        "the witness proved only {proved} of {cases}"
    );
    assert!(
        mutated_proved > 0,
        "mutations that keep a history valid exist and should be proved"
    );
}

#[test]
fn a_correct_ledger_is_proved_by_its_journal() {
    let mut proved = 0;
    for seed in 0..200u64 {
        let h = sim(seed, 300, 0.05);
        proved += usize::from(witness::bank_journal(&h).is_some());
    }
    assert!(
        proved >= 190,
        "the witness proved only {proved} of 200 correct histories"
    );
}

#[test]
fn no_journal_no_witness() {
    let mut h = sim(1, 20, 0.0);
    let last = h.events.last_mut().unwrap();
    if let Value::Map(m) = &mut last.value {
        m.remove("applied");
    }
    assert!(witness::bank_journal(&h).is_none());
}
