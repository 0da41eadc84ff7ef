//! What may stop a search before it decides: the deadline, the memory pool shared by the partitions
//! searched in parallel, and cancellation when another partition already found a violation.
//! Porcupine's `CheckOperationsTimeout` and Knossos's `:time-limit` are the deadline; unlike Knossos,
//! which aborts when the JVM heap runs low, memory here is counted by the search itself, so the limit
//! holds whatever else the process does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Memory shared by the searches of one check.
#[derive(Debug)]
pub struct MemoryPool {
    used: AtomicU64,
    max: u64,
}

impl MemoryPool {
    pub fn new(max: u64) -> Self {
        MemoryPool {
            used: AtomicU64::new(0),
            max,
        }
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Moves this search's share from `old` to `new` bytes; false (and no change) if the pool would
    /// overflow.
    pub(crate) fn resize(&self, old: u64, new: u64) -> bool {
        if new <= old {
            self.used.fetch_sub(old - new, Ordering::Relaxed);
            return true;
        }
        let grow = new - old;
        let before = self.used.fetch_add(grow, Ordering::Relaxed);
        if before + grow > self.max {
            self.used.fetch_sub(grow, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// What may stop a search before it decides.
pub struct Limits<'a> {
    pub deadline: Option<Instant>,
    pub memory: &'a MemoryPool,
    /// Set when another partition found a violation that makes this search moot.
    pub cancel: &'a dyn Fn() -> bool,
    /// Whether to use the reductions (eager reads, partial-order reduction, deepening on `info`
    /// runs). Off only to cross-check them against the plain search.
    pub reductions: bool,
}
