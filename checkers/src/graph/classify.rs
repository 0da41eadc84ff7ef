//! Naming a cycle: Adya's and Elle's anomaly classes, from the kinds of the cycle's edges.
//!
//! - `G0` (write cycle): only ww edges.
//! - `G1c` (circular information flow): ww and wr edges, at least one wr.
//! - `G-single` (read skew, a cycle with exactly one anti-dependency).
//! - `G-nonadjacent`: two or more rw edges, no two of them adjacent (Cerone & Gotsman: snapshot
//!   isolation forbids it, so it separates SI from serializability in the other direction).
//! - `G2-item`: two or more rw edges, some adjacent (write skew; SI allows it).
//!
//! A cycle that needs process edges gets the suffix `-process` (it violates strong *session* models);
//! one that needs real-time edges `-realtime` (it violates strict serializability). These are the
//! names Elle reports, so that Jepsen users read them unchanged.

use super::cycles::Cycle;
use super::infer::{PROCESS, REALTIME, RW, WR};

/// Every cycle class, in order of severity.
pub const CYCLE_ANOMALIES: [&str; 5] = ["G0", "G1c", "G-single", "G-nonadjacent", "G2-item"];

/// Every anomaly name the graph checker can report.
pub const ALL_ANOMALIES: [&str; 23] = [
    "G0",
    "G0-process",
    "G0-realtime",
    "G1a",
    "G1b",
    "G1c",
    "G1c-process",
    "G1c-realtime",
    "G-single",
    "G-single-process",
    "G-single-realtime",
    "G-nonadjacent",
    "G-nonadjacent-process",
    "G-nonadjacent-realtime",
    "G2-item",
    "G2-item-process",
    "G2-item-realtime",
    "G2",
    "lost-update",
    "internal",
    "incompatible-order",
    "duplicate-elements",
    "cycle-search-timeout",
];

/// The base class of a cycle, without suffix.
pub fn base_class(cycle: &Cycle) -> &'static str {
    let kinds: Vec<u8> = cycle.iter().map(|e| e.1).collect();
    let rw = kinds.iter().filter(|&&k| k == RW).count();
    match rw {
        0 if kinds.contains(&WR) => "G1c",
        0 => "G0",
        1 => "G-single",
        _ => {
            let n = kinds.len();
            let adjacent = (0..n).any(|i| kinds[i] == RW && kinds[(i + 1) % n] == RW);
            if adjacent {
                "G2-item"
            } else {
                "G-nonadjacent"
            }
        }
    }
}

/// The full name of a cycle: its base class and the `-process` / `-realtime` suffix it needs.
pub fn classify(cycle: &Cycle) -> String {
    let base = base_class(cycle);
    let suffix = if cycle.iter().any(|e| e.1 == REALTIME) {
        "-realtime"
    } else if cycle.iter().any(|e| e.1 == PROCESS) {
        "-process"
    } else {
        ""
    };
    format!("{base}{suffix}")
}

/// Whether reporting `name` adds nothing because `found` already holds the same base class with a
/// weaker (or no) suffix: G-single-realtime is not news when G-single is there.
pub fn subsumed(name: &str, found: &[String]) -> bool {
    let (base, suffix) = split(name);
    found.iter().any(|f| {
        let (b, s) = split(f);
        b == base && rank(s) < rank(suffix)
    })
}

fn split(name: &str) -> (&str, &str) {
    for s in ["-process", "-realtime"] {
        if let Some(b) = name.strip_suffix(s) {
            return (b, s);
        }
    }
    (name, "")
}

fn rank(suffix: &str) -> u8 {
    match suffix {
        "" => 0,
        "-process" => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::infer::WW;

    #[test]
    fn classes_follow_the_rw_edges() {
        assert_eq!(classify(&vec![(1, WW), (2, WW)]), "G0");
        assert_eq!(classify(&vec![(1, WW), (2, WR)]), "G1c");
        assert_eq!(classify(&vec![(1, RW), (2, WR)]), "G-single");
        assert_eq!(
            classify(&vec![(1, RW), (2, WR), (3, RW), (4, WW)]),
            "G-nonadjacent"
        );
        assert_eq!(classify(&vec![(1, RW), (2, RW)]), "G2-item");
        assert_eq!(
            classify(&vec![(1, RW), (2, WR), (3, RW)]),
            "G2-item",
            "rw edges wrap around"
        );
        assert_eq!(classify(&vec![(1, RW), (2, REALTIME)]), "G-single-realtime");
        assert_eq!(classify(&vec![(1, WW), (2, PROCESS)]), "G0-process");
    }

    #[test]
    fn weaker_suffixes_subsume() {
        let found = vec!["G-single".to_string(), "G0-process".to_string()];
        assert!(subsumed("G-single-realtime", &found));
        assert!(subsumed("G0-realtime", &found));
        assert!(!subsumed("G0", &found));
        assert!(!subsumed("G2-item-process", &found));
    }
}
