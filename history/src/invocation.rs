//! What a client is asked to do and what it answers: the two halves of an operation before they become
//! events. Workloads produce [`Invocation`]s, targets answer with [`Completion`]s, and the controller
//! stamps both with a process and a time and records them.

use crate::event::{EventType, F};
use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub f: F,
    pub value: Value,
}

/// A client's answer. `kind` is never `Invoke`. Clients never return errors: anything that went wrong
/// is a `fail` (it certainly did not happen) or an `info` (it may have happened).
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub kind: EventType,
    pub value: Value,
    pub error: Option<String>,
}

impl Completion {
    pub fn ok(value: Value) -> Self {
        Completion {
            kind: EventType::Ok,
            value,
            error: None,
        }
    }

    pub fn fail(value: Value, error: impl Into<String>) -> Self {
        Completion {
            kind: EventType::Fail,
            value,
            error: Some(error.into()),
        }
    }

    pub fn info(value: Value, error: impl Into<String>) -> Self {
        Completion {
            kind: EventType::Info,
            value,
            error: Some(error.into()),
        }
    }
}
