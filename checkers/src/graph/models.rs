//! From anomalies to consistency models: which models a history rules out and which it may satisfy.
//!
//! Follows Elle's `elle.consistency-model` and the Jepsen hierarchy (jepsen.io/consistency): each
//! model forbids some anomalies directly and inherits everything the models it implies forbid
//! (strict-serializable ⇒ serializable ⇒ snapshot-isolation, repeatable-read, …). The report names,
//! as Elle does, the weakest models ruled out (`not`), every stronger one ruled out with them
//! (`also-not`), and the strongest models the history still satisfies as far as these anomalies
//! can tell (`satisfied`: a valid history is not a proof, only the absence of a counterexample).
//!
//! Choices where the literature is silent: `incompatible-order` implies a dirty read (Elle maps it
//! to G1a), `duplicate-elements` leaves no version order at all and so rules out even
//! read-uncommitted, and `internal` (a transaction disagreeing with itself: not seeing its own
//! write, seeing it before making it, or a non-repeatable read inside one transaction, which read
//! committed allows) rules out repeatable-read and snapshot-isolation.

use std::collections::BTreeSet;

/// (model, the models it implies directly, the anomalies it forbids directly).
pub const MODELS: &[(&str, &[&str], &[&str])] = &[
    ("read-uncommitted", &[], &["G0", "duplicate-elements"]),
    (
        "read-committed",
        &["read-uncommitted"],
        &["G1a", "G1b", "G1c", "incompatible-order"],
    ),
    ("monotonic-atomic-view", &["read-committed"], &[]),
    ("cursor-stability", &["read-committed"], &["lost-update"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view"],
        &["G-single", "G-nonadjacent", "G2-item", "internal"],
    ),
    (
        "snapshot-isolation",
        &["monotonic-atomic-view"],
        &["G-single", "G-nonadjacent", "lost-update", "internal"],
    ),
    (
        "serializable",
        &["repeatable-read", "snapshot-isolation"],
        &["G2", "G2-item"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["snapshot-isolation"],
        &[
            "G0-process",
            "G1c-process",
            "G-single-process",
            "G-nonadjacent-process",
        ],
    ),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation"],
        &[
            "G0-realtime",
            "G1c-realtime",
            "G-single-realtime",
            "G-nonadjacent-realtime",
        ],
    ),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
        &["G2-item-process", "G2-process"],
    ),
    (
        "strict-serializable",
        &["strong-session-serializable", "strong-snapshot-isolation"],
        &["G2-item-realtime", "G2-realtime"],
    ),
];

/// What a set of anomalies says about the models.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Boundary {
    /// The weakest models ruled out.
    pub not: Vec<String>,
    /// Models ruled out because a weaker one is.
    #[serde(rename = "also-not")]
    pub also_not: Vec<String>,
    /// The strongest models not ruled out.
    pub satisfied: Vec<String>,
}

fn implies(model: &str) -> &'static [&'static str] {
    MODELS.iter().find(|m| m.0 == model).map_or(&[], |m| m.1)
}

/// Every model `model` implies, itself included.
fn weaker_or_equal(model: &str) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    let mut todo = vec![MODELS.iter().find(|m| m.0 == model).map_or(model, |m| m.0)];
    while let Some(m) = todo.pop() {
        if out.insert(m) {
            todo.extend_from_slice(implies(m));
        }
    }
    out
}

/// Whether an anomaly rules the model out (directly or through a model it implies).
pub fn rules_out(model: &str, anomaly: &str) -> bool {
    weaker_or_equal(model).iter().any(|m| {
        MODELS
            .iter()
            .any(|(n, _, forbids)| n == m && forbids.contains(&anomaly))
    })
}

pub fn boundary<'a>(anomalies: impl IntoIterator<Item = &'a str> + Clone) -> Boundary {
    let out: BTreeSet<&str> = MODELS
        .iter()
        .map(|m| m.0)
        .filter(|m| anomalies.clone().into_iter().any(|a| rules_out(m, a)))
        .collect();
    let mut b = Boundary::default();
    for &m in &out {
        let weaker_out = weaker_or_equal(m)
            .iter()
            .any(|w| *w != m && out.contains(w));
        if weaker_out {
            b.also_not.push(m.to_string());
        } else {
            b.not.push(m.to_string());
        }
    }
    let ok: Vec<&str> = MODELS
        .iter()
        .map(|m| m.0)
        .filter(|m| !out.contains(m))
        .collect();
    for &m in &ok {
        let stronger_ok = ok.iter().any(|s| *s != m && weaker_or_equal(s).contains(m));
        if !stronger_ok {
            b.satisfied.push(m.to_string());
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_anomaly_satisfies_strict_serializable() {
        let b = boundary(std::iter::empty());
        assert_eq!(b.satisfied, vec!["strict-serializable"]);
        assert!(b.not.is_empty() && b.also_not.is_empty());
    }

    #[test]
    fn write_skew_is_still_snapshot_isolation() {
        let b = boundary(["G2-item"]);
        assert_eq!(b.not, vec!["repeatable-read"]);
        assert!(b.also_not.contains(&"serializable".to_string()));
        assert!(b.also_not.contains(&"strict-serializable".to_string()));
        assert!(b
            .satisfied
            .contains(&"strong-snapshot-isolation".to_string()));
    }

    #[test]
    fn read_skew_rules_out_snapshot_isolation_but_not_read_committed() {
        let b = boundary(["G-single"]);
        assert_eq!(b.not, vec!["repeatable-read", "snapshot-isolation"]);
        assert!(b.satisfied.contains(&"cursor-stability".to_string()));
        assert!(b.satisfied.contains(&"monotonic-atomic-view".to_string()));
    }

    #[test]
    fn realtime_only_rules_out_strict() {
        let b = boundary(["G2-item-realtime"]);
        assert_eq!(b.not, vec!["strict-serializable"]);
        assert!(b
            .satisfied
            .contains(&"strong-session-serializable".to_string()));
        let b = boundary(["G1a"]);
        assert_eq!(b.not, vec!["read-committed"]);
        assert_eq!(b.satisfied, vec!["read-uncommitted"]);
    }
}
