//! The ledger's record of applied ids, compact and exact for any u64: the application order as
//! zigzag varints of the wrapping difference to the previous id (dense ids from verity's bank
//! workload take one or two bytes each), and the set for deduplication as a `RoaringTreemap`.

use roaring::RoaringTreemap;

/// Applied ids in application order (repeats kept, as the `no-dedupe` knob can apply one twice).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdJournal {
    bytes: Vec<u8>,
    last: u64,
    len: usize,
}

impl IdJournal {
    pub fn push(&mut self, id: u64) {
        let delta = id.wrapping_sub(self.last) as i64;
        let mut z = ((delta << 1) ^ (delta >> 63)) as u64;
        while z >= 0x80 {
            self.bytes.push((z as u8) | 0x80);
            z >>= 7;
        }
        self.bytes.push(z as u8);
        self.last = id;
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the encoding.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let mut pos = 0;
        let mut prev = 0u64;
        std::iter::from_fn(move || {
            if pos >= self.bytes.len() {
                return None;
            }
            let mut z = 0u64;
            let mut shift = 0;
            loop {
                // A truncated or overlong varint ends the iteration (a restore checks the count).
                let b = *self.bytes.get(pos)?;
                if shift > 63 {
                    return None;
                }
                pos += 1;
                z |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    break;
                }
                shift += 7;
            }
            let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
            prev = prev.wrapping_add(delta as u64);
            Some(prev)
        })
    }

    pub fn to_vec(&self) -> Vec<u64> {
        self.iter().collect()
    }

    /// The encoding, its last id and its length, for a snapshot.
    pub fn parts(&self) -> (&[u8], u64, usize) {
        (&self.bytes, self.last, self.len)
    }

    /// Rebuilds a journal from `parts`, checking that the bytes decode to `len` ids ending at `last`.
    pub fn from_parts(bytes: Vec<u8>, last: u64, len: usize) -> Result<Self, String> {
        let j = IdJournal { bytes, last, len };
        // The ids the bytes decode to, encoded again, must give back the same journal: a wrong
        // count or last id, a truncated or overlong varint, trailing bytes are all corruption.
        let mut again = IdJournal::default();
        j.iter().for_each(|id| again.push(id));
        if again != j {
            return Err(format!(
                "applied journal: {} bytes decode to {} ids ending at {}, expected {len} ending at {last}",
                j.bytes.len(),
                again.len,
                again.last
            ));
        }
        Ok(j)
    }
}

/// Applied ids, in order and as a set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    pub order: IdJournal,
    pub set: RoaringTreemap,
}

impl Applied {
    pub fn push(&mut self, id: u64) {
        self.order.push(id);
        self.set.insert(id);
    }

    pub fn contains(&self, id: u64) -> bool {
        self.set.contains(id)
    }

    /// Bytes the two structures take (the serialized size of the set, close to its heap size).
    pub fn heap_bytes(&self) -> usize {
        self.order.encoded_len() + self.set.serialized_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn journal_round_trips_any_ids(ids in proptest::collection::vec(any::<u64>(), 0..300)) {
            let mut a = Applied::default();
            for &id in &ids {
                a.push(id);
            }
            prop_assert_eq!(a.order.to_vec(), ids.clone());
            prop_assert_eq!(a.order.len(), ids.len());
            for &id in &ids {
                prop_assert!(a.contains(id));
            }
            let set: std::collections::HashSet<u64> = ids.iter().copied().collect();
            prop_assert_eq!(a.set.len() as usize, set.len());
        }
    }

    #[test]
    fn extremes_round_trip() {
        let ids = [0, u64::MAX, 0, 1, u64::MAX - 1, 1 << 63, 7, 7];
        let mut j = IdJournal::default();
        for id in ids {
            j.push(id);
        }
        assert_eq!(j.to_vec(), ids);
    }

    /// Bank-workload ids (id = issued*workers + worker + 1, applied roughly in order): bytes per
    /// transfer, against 8 B (Vec<u64>) + ~20 B (HashSet<u64>) before.
    #[test]
    fn bytes_per_transfer_for_bank_ids() {
        let workers = 10u64;
        let n = 200_000u64;
        let mut a = Applied::default();
        // Worker w issues ids w+1, w+1+workers, ...; interleave them with a fixed shuffle of each
        // round so consecutive ids are out of order by up to a round.
        for issued in 0..n / workers {
            for k in 0..workers {
                let worker = (k * 7 + issued) % workers;
                a.push(issued * workers + worker + 1);
            }
        }
        let per = a.heap_bytes() as f64 / n as f64;
        println!(
            "applied journal: {:.2} B/transfer (order {:.2}, set {:.2})",
            per,
            a.order.encoded_len() as f64 / n as f64,
            a.set.serialized_size() as f64 / n as f64
        );
        assert_eq!(a.order.len(), n as usize);
        assert!(per < 4.0, "{per} bytes per transfer");
    }
}
