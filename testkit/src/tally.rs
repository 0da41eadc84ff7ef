//! Counting verdicts over many generated histories, and the knobs that scale such runs.

use std::fmt;

use verity_checkers::{Validity, Verdict};

/// A number from the environment (`VERITY_ORACLE_SEED=7`, …), or the default when it is unset or
/// not a number.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How many histories of each kind were judged how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub valid: usize,
    pub invalid: usize,
    pub unknown: usize,
    /// Histories a reference could not decide, left out of the comparison.
    pub skipped: usize,
}

impl Tally {
    /// Counts one verdict.
    pub fn count(&mut self, validity: Validity) {
        match validity {
            Validity::Valid => self.valid += 1,
            Validity::Invalid => self.invalid += 1,
            Validity::Unknown => self.unknown += 1,
        }
    }

    /// Counts one decided answer: valid or not.
    pub fn count_bool(&mut self, valid: bool) {
        self.count(if valid {
            Validity::Valid
        } else {
            Validity::Invalid
        });
    }

    pub fn count_verdict(&mut self, verdict: &Verdict) {
        self.count(verdict.valid);
    }

    /// The histories judged (skipped ones excluded).
    pub fn judged(&self) -> usize {
        self.valid + self.invalid + self.unknown
    }

    pub fn add(&mut self, other: &Tally) {
        self.valid += other.valid;
        self.invalid += other.invalid;
        self.unknown += other.unknown;
        self.skipped += other.skipped;
    }

    /// Both answers occurred more than `min` times each, or the agreement it records means little.
    pub fn assert_both_answers(&self, what: &str, min: usize) {
        assert!(
            self.valid > min && self.invalid > min,
            "{what}: both verdicts must be exercised: {self}"
        );
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} valid, {} invalid", self.valid, self.invalid)?;
        if self.unknown > 0 {
            write!(f, ", {} unknown", self.unknown)?;
        }
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}
