//! A whole history, and the pairing of its events into operations.
//!
//! Checkers mostly reason about operations — an invocation together with its completion — rather than
//! about single events. [`History::ops`] pairs them once, in history order, and rejects histories that
//! break the process discipline (a completion without an invocation, a process invoking twice).

use thiserror::Error;

use crate::event::{Event, EventType, Process};

/// A history as read from disk or built in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
    /// Set when the file ended in a partial line (the writer was killed mid-write): the line number and
    /// how many bytes were dropped.
    pub torn_tail: Option<TornTail>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TornTail {
    pub line: usize,
    pub bytes: usize,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpOutcome {
    Ok,
    Fail,
    Info,
    /// The history ends before the operation completed: as uncertain as `info`.
    Pending,
}

impl OpOutcome {
    /// Whether the operation may have taken effect without the history saying it did.
    pub fn is_indeterminate(self) -> bool {
        matches!(self, OpOutcome::Info | OpOutcome::Pending)
    }
}

/// An invocation and its completion, as positions in [`History::events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub invoke: usize,
    pub completion: Option<usize>,
    pub outcome: OpOutcome,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HistoryError {
    #[error("event {index}: process {process} completes an operation it never invoked")]
    CompletionWithoutInvoke { index: u64, process: Process },
    #[error("event {index}: process {process} invokes while its previous operation (event {previous}) is still open")]
    DoubleInvoke {
        index: u64,
        process: Process,
        previous: u64,
    },
    #[error("event {index}: process {process} issues an operation after an `info` completion (a crashed process never issues again)")]
    InvokeAfterInfo { index: u64, process: Process },
}

impl History {
    pub fn new(events: Vec<Event>) -> Self {
        History {
            events,
            torn_tail: None,
        }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Pairs client invocations with their completions, in order of invocation. Nemesis events are not
    /// operations and are skipped.
    pub fn ops(&self) -> Result<Vec<Op>, HistoryError> {
        use std::collections::HashMap;
        let mut open: HashMap<u64, usize> = HashMap::new();
        let mut crashed: std::collections::HashSet<u64> = Default::default();
        let mut ops: Vec<Op> = Vec::with_capacity(self.events.len() / 2 + 1);
        // Position in `ops` of each open invocation, so completions fill in place.
        let mut slot_of: HashMap<usize, usize> = HashMap::new();
        for (i, e) in self.events.iter().enumerate() {
            let Process::Client(p) = e.process else {
                continue;
            };
            if e.kind == EventType::Invoke {
                if let Some(&prev) = open.get(&p) {
                    return Err(HistoryError::DoubleInvoke {
                        index: e.index,
                        process: e.process,
                        previous: self.events[prev].index,
                    });
                }
                if crashed.contains(&p) {
                    return Err(HistoryError::InvokeAfterInfo {
                        index: e.index,
                        process: e.process,
                    });
                }
                open.insert(p, i);
                slot_of.insert(i, ops.len());
                ops.push(Op {
                    invoke: i,
                    completion: None,
                    outcome: OpOutcome::Pending,
                });
            } else {
                let Some(inv) = open.remove(&p) else {
                    return Err(HistoryError::CompletionWithoutInvoke {
                        index: e.index,
                        process: e.process,
                    });
                };
                let slot = slot_of
                    .remove(&inv)
                    .expect("every open invocation has a slot");
                ops[slot].completion = Some(i);
                ops[slot].outcome = match e.kind {
                    EventType::Ok => OpOutcome::Ok,
                    EventType::Fail => OpOutcome::Fail,
                    EventType::Info => {
                        crashed.insert(p);
                        OpOutcome::Info
                    }
                    EventType::Invoke => unreachable!("handled above"),
                };
            }
        }
        Ok(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Value, F};

    fn ev(index: u64, process: u64, kind: EventType) -> Event {
        Event {
            index,
            time_ns: index * 10,
            process: Process::Client(process),
            kind,
            f: F::Read,
            value: Value::Null,
            error: None,
        }
    }

    #[test]
    fn pairs_interleaved_operations() {
        let h = History::new(vec![
            ev(0, 1, EventType::Invoke),
            ev(1, 2, EventType::Invoke),
            ev(2, 2, EventType::Ok),
            ev(3, 1, EventType::Info),
            ev(4, 3, EventType::Invoke),
        ]);
        let ops = h.ops().unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(
            (ops[0].completion, ops[0].outcome),
            (Some(3), OpOutcome::Info)
        );
        assert_eq!(
            (ops[1].completion, ops[1].outcome),
            (Some(2), OpOutcome::Ok)
        );
        assert_eq!(
            (ops[2].completion, ops[2].outcome),
            (None, OpOutcome::Pending)
        );
    }

    #[test]
    fn rejects_broken_process_discipline() {
        let h = History::new(vec![ev(0, 1, EventType::Ok)]);
        assert!(matches!(
            h.ops(),
            Err(HistoryError::CompletionWithoutInvoke { .. })
        ));
        let h = History::new(vec![
            ev(0, 1, EventType::Invoke),
            ev(1, 1, EventType::Invoke),
        ]);
        assert!(matches!(h.ops(), Err(HistoryError::DoubleInvoke { .. })));
        let h = History::new(vec![
            ev(0, 1, EventType::Invoke),
            ev(1, 1, EventType::Info),
            ev(2, 1, EventType::Invoke),
        ]);
        assert!(matches!(h.ops(), Err(HistoryError::InvokeAfterInfo { .. })));
    }
}
