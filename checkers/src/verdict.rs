//! The result of a checker: three-valued, with the evidence for every claim.
//!
//! A checker answers `valid`, `invalid` (with anomalies, each carrying the events behind it and the
//! expected and observed values) or `unknown` with a cause (a budget ran out, the final reads are
//! missing). "Unknown" is an honest answer where "valid" would be a guess.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Valid, invalid, or undecided. Serializes as `true`, `false` or `"unknown"`, as Jepsen does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Validity {
    Valid,
    Unknown,
    Invalid,
}

impl Validity {
    /// Combines verdicts of several checkers: invalid beats unknown beats valid.
    pub fn merge(self, other: Validity) -> Validity {
        self.max(other)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

/// Reads what [`Validity`]'s `Serialize` writes: `true`, `false` or `"unknown"`.
impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(Validity::Valid),
            serde_json::Value::Bool(false) => Ok(Validity::Invalid),
            serde_json::Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "a verdict is true, false or \"unknown\", not {other}"
            ))),
        }
    }
}

/// One instance of an anomaly and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// One of the names in `verity_history::anomaly` (or Elle's taxonomy).
    pub name: String,
    /// A sentence a person can read.
    pub message: String,
    /// Indices of the events that show it.
    pub events: Vec<u64>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub expected: serde_json::Value,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub observed: serde_json::Value,
}

/// How many examples of one anomaly name a verdict keeps; the rest are only counted.
pub const EXAMPLES_PER_ANOMALY: usize = 20;

/// A checker's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub valid: Validity,
    /// Up to [`EXAMPLES_PER_ANOMALY`] examples of each anomaly name, in history order.
    pub anomalies: Vec<Anomaly>,
    /// How many instances of each anomaly name were found in all.
    pub anomaly_counts: BTreeMap<String, u64>,
    /// Why the verdict is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Checker-specific figures (ops checked, states explored, info transfers resolved, …).
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict {
            valid: Validity::Valid,
            anomalies: Vec::new(),
            anomaly_counts: BTreeMap::new(),
            cause: None,
            details: serde_json::Map::new(),
        }
    }
}

impl Verdict {
    pub fn valid() -> Self {
        Verdict::default()
    }

    pub fn unknown(cause: impl Into<String>) -> Self {
        Verdict {
            valid: Validity::Unknown,
            cause: Some(cause.into()),
            ..Verdict::default()
        }
    }

    /// Records an anomaly: counts it, keeps it as an example if there is room, and marks the verdict
    /// invalid.
    pub fn push(&mut self, anomaly: Anomaly) {
        let count = self.anomaly_counts.entry(anomaly.name.clone()).or_insert(0);
        *count += 1;
        if *count as usize <= EXAMPLES_PER_ANOMALY {
            self.anomalies.push(anomaly);
        }
        self.valid = Validity::Invalid;
    }

    /// Marks the verdict unknown (unless it is already invalid: a found anomaly stands).
    pub fn set_unknown(&mut self, cause: impl Into<String>) {
        if self.valid != Validity::Invalid {
            self.valid = Validity::Unknown;
        }
        self.cause.get_or_insert_with(|| cause.into());
    }

    pub fn detail(&mut self, key: &str, value: impl Serialize) {
        let v = serde_json::to_value(value).expect("details are plain data");
        self.details.insert(key.to_string(), v);
    }

    /// The sorted, unique anomaly names.
    pub fn anomaly_types(&self) -> Vec<String> {
        self.anomaly_counts.keys().cloned().collect()
    }
}

/// What a checker may spend. A checker that runs out returns `unknown` with the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub deadline: Option<Instant>,
    /// An upper bound on the memory a checker's search may hold, in bytes.
    pub memory_bytes_max: Option<u64>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::unlimited()
    }
}

impl Budget {
    pub fn unlimited() -> Self {
        Budget {
            deadline: None,
            memory_bytes_max: None,
        }
    }

    pub fn with_time_limit(limit: Duration) -> Self {
        Budget {
            deadline: Some(Instant::now() + limit),
            memory_bytes_max: None,
        }
    }

    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}
