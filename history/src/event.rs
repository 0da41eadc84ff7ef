//! One line of a history: who did what, when, and how it ended.
//!
//! An operation is an `invoke` event followed by exactly one completion from the same process: `ok` (it
//! happened), `fail` (it certainly did not happen) or `info` (unknown: it may take effect at any later
//! time, or never). Nemesis actions are `info` events of the `nemesis` process. This is Jepsen's model of
//! a history, kept deliberately identical so that Knossos and Elle histories import as they are.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::Value;

/// One event of a history. `index` is the event's position in the history; `time_ns` is monotonic
/// nanoseconds since the start of the run, read by the controller's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub index: u64,
    pub time_ns: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: F,
    #[serde(default)]
    pub value: Value,
    /// Why a `fail` or `info` completion ended as it did (`timeout`, `insufficient-funds`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Event {
    pub fn is_invoke(&self) -> bool {
        self.kind == EventType::Invoke
    }

    /// An empty event, for filling a slot that is about to be overwritten or discarded.
    pub fn placeholder() -> Event {
        Event {
            index: 0,
            time_ns: 0,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: F::Setup,
            value: Value::Null,
            error: None,
        }
    }

    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Client(_))
    }
}

/// The four kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// Who issued an event: a numbered client process, or the nemesis. In JSON a client is a number and the
/// nemesis is the string `"nemesis"`, as in Jepsen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a process number or \"nemesis\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom(format!("negative process number {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Process, E> {
                match v {
                    "nemesis" => Ok(Process::Nemesis),
                    other => Err(E::custom(format!(
                        "unknown process {other:?}: expected a number or \"nemesis\""
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The function of an operation. The common ones are variants so that matching on them is cheap; any
/// other name (a nemesis fault, an adapter's own operation) is kept as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum F {
    /// Initial state of a ledger, written by the setup phase before any client op.
    Setup,
    Transfer,
    Read,
    Write,
    Cas,
    Txn,
    Other(Box<str>),
}

impl F {
    pub fn as_str(&self) -> &str {
        match self {
            F::Setup => "setup",
            F::Transfer => "transfer",
            F::Read => "read",
            F::Write => "write",
            F::Cas => "cas",
            F::Txn => "txn",
            F::Other(s) => s,
        }
    }

    pub fn from_name(s: &str) -> F {
        match s {
            "setup" => F::Setup,
            "transfer" => F::Transfer,
            "read" => F::Read,
            "write" => F::Write,
            "cas" => F::Cas,
            "txn" => F::Txn,
            other => F::Other(other.into()),
        }
    }
}

impl fmt::Display for F {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for F {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for F {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = F;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an operation name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<F, E> {
                Ok(F::from_name(v))
            }
        }
        d.deserialize_str(V)
    }
}
