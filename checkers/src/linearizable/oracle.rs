//! A brute-force linearizability oracle, for cross-checking the search on small histories.
//!
//! It tries every order of the operations consistent with real time (an operation may come next only
//! if no unplaced operation returned before it was called), every subset of the `info` operations, and
//! nothing else: no memo, no list of entries, no fingerprints — the definition, written plainly, so a
//! bug in the search's machinery cannot hide in both. Exponential: meant for ≤ 10 operations.

use verity_history::History;

use crate::linearizable::model::Model;
use crate::linearizable::partition::{prepare, OpRecord, PrepareError};

/// Whether some real-time-consistent order of `ops` (each required op once, each optional op at most
/// once) is accepted by `model` from `initial`.
pub fn linearizable<M: Model>(model: &M, initial: &M::State, ops: &[OpRecord<M::Op>]) -> bool {
    assert!(
        ops.len() <= 20,
        "the oracle is exponential: {} operations is too many",
        ops.len()
    );
    place(model, initial, ops, 0)
}

fn place<M: Model>(model: &M, state: &M::State, ops: &[OpRecord<M::Op>], placed: u32) -> bool {
    let unplaced = |j: usize| placed & (1 << j) == 0;
    if (0..ops.len()).all(|j| !unplaced(j) || !ops[j].required()) {
        return true;
    }
    (0..ops.len()).filter(|&i| unplaced(i)).any(|i| {
        // `i` may go next only if no unplaced op had to come before it.
        let blocked =
            (0..ops.len()).any(|j| unplaced(j) && ops[j].ret.is_some_and(|r| r < ops[i].call));
        !blocked
            && model
                .step(state, &ops[i].op)
                .is_some_and(|next| place(model, &next, ops, placed | (1 << i)))
    })
}

/// Decides a whole history by brute force, partition by partition.
pub fn check_history<M: Model>(model: &M, history: &History) -> Result<bool, PrepareError> {
    let prepared = prepare(model, history)?;
    Ok(prepared
        .partitions
        .iter()
        .all(|p| linearizable(model, &prepared.initial, &p.ops)))
}
