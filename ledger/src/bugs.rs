//! The bug knobs of the cluster target: each one is a real wrong implementation of a replicated
//! ledger, of a kind real systems have shipped (Jepsen's analyses are full of them).
//!
//! - `stale-read`: any replica answers reads (and read-only transactions) from its own applied state,
//!   without asking the leader or the log — a follower that lags, or an old leader cut off by a
//!   partition, serves the past.
//! - `early-ack`: the leader applies and acknowledges a transfer once it is in its own (fsynced) log,
//!   and replicates in the background at heartbeat pace (asynchronous replication); a leader crash,
//!   pause or partition then loses acknowledged transfers and leaves the old leader's ledger
//!   different from everyone else's.
//! - `no-dedupe`: the state machine does not check transfer or transaction ids, so a client's retry
//!   of a transfer (or transaction) whose reply was lost is applied twice.
//! - `split-brain`: a leader treats peers it has not heard from as dead and shrinks its quorum, and
//!   trusts a lease counted in its own heartbeats (a clock that stops while the process is paused)
//!   to ignore higher terms, so a partitioned or paused-and-resumed old leader keeps committing and
//!   acknowledging writes on its own while the majority has elected a new leader.

use thiserror::Error;

/// A knob name the ledger does not have.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown bug knob {bug:?} of the replicated ledger: valid choices are {choices}")]
pub struct UnknownBug {
    pub bug: String,
    pub choices: String,
}

/// (name, what it does) of every knob.
pub const BUGS: &[(&str, &str)] = &[
    (
        "stale-read",
        "reads are served by any replica from its local state",
    ),
    (
        "early-ack",
        "the leader acknowledges transfers before a majority has them",
    ),
    (
        "no-dedupe",
        "retried transfer and transaction ids are applied again",
    ),
    (
        "split-brain",
        "a leader cut off from its peers keeps accepting and acknowledging writes",
    ),
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    pub stale_read: bool,
    pub early_ack: bool,
    pub no_dedupe: bool,
    pub split_brain: bool,
}

impl Bugs {
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Bugs, UnknownBug> {
        let mut b = Bugs::default();
        for n in names {
            match n.as_ref() {
                "stale-read" => b.stale_read = true,
                "early-ack" => b.early_ack = true,
                "no-dedupe" => b.no_dedupe = true,
                "split-brain" => b.split_brain = true,
                other => {
                    return Err(UnknownBug {
                        bug: other.into(),
                        choices: BUGS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                    })
                }
            }
        }
        Ok(b)
    }

    /// The knob names that are set, in the order of [`BUGS`].
    pub fn names(&self) -> Vec<&'static str> {
        let set = [
            self.stale_read,
            self.early_ack,
            self.no_dedupe,
            self.split_brain,
        ];
        BUGS.iter()
            .zip(set)
            .filter(|(_, on)| *on)
            .map(|((n, _), _)| *n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_round_trip_by_name_and_unknown_ones_are_rejected() {
        let all: Vec<&str> = BUGS.iter().map(|(n, _)| *n).collect();
        assert_eq!(Bugs::parse(&all).unwrap().names(), all);
        assert!(Bugs::parse(&["nope"])
            .unwrap_err()
            .to_string()
            .contains("split-brain"));
    }
}
