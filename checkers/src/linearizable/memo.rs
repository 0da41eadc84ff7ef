//! The memo of configurations already explored: 128-bit fingerprints of (linearized set, state).
//!
//! Lowe ("Testing for linearizability", 2017) and Porcupine memoize the pair (bitset of linearized
//! operations, model state); a pair seen before was a dead end and need not be explored again. A
//! bitset is as long as the history, so that costs O(n) bytes per entry and O(n) per hash: the reason
//! Porcupine needs gigabytes on 100,000-operation histories. Here the linearized set is hashed
//! incrementally (Zobrist hashing: a random 128-bit key per operation, XORed in when the operation is
//! linearized and out when it is undone), the state is hashed with two independently keyed SipHash
//! functions, and the memo keeps only the 128-bit fingerprint of the pair — TLC's fingerprinting of
//! states. Entries are 16 bytes whatever the history length.
//!
//! The price is a false "seen before" when two configurations share a fingerprint, which could only
//! turn a linearizable history into a reported violation. For m explored configurations the chance of
//! any collision is below m²/2¹²⁹: for 10⁹ configurations (more than any memory budget here allows),
//! under 10⁻²¹. The cross-check against the brute-force oracle exercises it.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random keys, one per operation of a partition. Seeded, so fingerprints (and so the search order and
/// its statistics) are the same on every run.
pub fn zobrist_keys(n: usize) -> Vec<u128> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x7665_7269_7479);
    (0..n)
        .map(|_| (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()))
        .collect()
}

/// A 128-bit fingerprint of a state: two SipHash-1-3 digests under different keys.
pub fn state_fingerprint<S: Hash>(state: &S) -> u128 {
    #[expect(
        deprecated,
        reason = "SipHasher13 is not public; SipHasher's keyed constructor is the std way to key it"
    )]
    let (mut a, mut b) = (
        std::hash::SipHasher::new_with_keys(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
        std::hash::SipHasher::new_with_keys(0x6a09_e667_f3bc_c908, 0xbb67_ae85_84ca_a73b),
    );
    state.hash(&mut a);
    state.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// Fingerprints are already uniformly random: hashing them again would waste time.
#[derive(Default, Clone, Copy)]
pub struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = (v as u64) ^ ((v >> 64) as u64);
    }
}

/// The set of fingerprints of configurations explored.
#[derive(Default)]
pub struct Memo {
    seen: HashSet<u128, BuildHasherDefault<FoldHasher>>,
}

/// Bytes one usable memo slot costs: the fingerprint and hashbrown's control byte, over its 7/8 load.
const SLOT_BYTES: u64 = 20;

impl Memo {
    /// Records `fingerprint`; false if it was there already.
    pub fn insert(&mut self, fingerprint: u128) -> bool {
        self.seen.insert(fingerprint)
    }

    pub fn contains(&self, fingerprint: u128) -> bool {
        self.seen.contains(&fingerprint)
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Bytes the table holds now.
    pub fn bytes(&self) -> u64 {
        self.seen.capacity() as u64 * SLOT_BYTES
    }

    /// Bytes the table would hold after its next insert (it doubles when full), so the search can stop
    /// *before* an allocation that would break the budget.
    pub fn bytes_after_insert(&self) -> u64 {
        if self.seen.len() < self.seen.capacity() {
            self.bytes()
        } else {
            (self.seen.capacity().max(3) as u64) * 2 * SLOT_BYTES
        }
    }
}
