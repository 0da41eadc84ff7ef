//! Processes for ops that carry none.
//!
//! Elle's histories (and hand-written ones) often leave out `:process`. Without it there is no telling
//! which completion ends which invocation, so the reader does what Elle's readers do: each invocation
//! is paired with the first later completion of the same `:f` that answers it — for a transaction,
//! the same micro-ops on the same keys with the same written values — and each such pair becomes its
//! own process, numbered after every process the file does name. One process per operation means no
//! process order at all: a checker sees that no process issued twice and claims nothing that needs it.

use std::borrow::Cow;

use crate::event::{EventType, Process, F};
use crate::value::{MicroOp, Value};

/// What pairing needs to know of one op map.
pub struct Header<'a> {
    pub line: usize,
    pub kind: EventType,
    pub process: Option<Process>,
    pub f: &'a F,
    /// The op's value, decoded only for ops without a process.
    pub value: Option<Cow<'a, Value>>,
}

/// The process of every op: its own, or a fresh one shared by an invocation and its completion.
pub fn assign(headers: &[Header<'_>]) -> Result<Vec<Process>, (usize, String)> {
    let base = headers
        .iter()
        .filter_map(|h| match h.process {
            Some(Process::Client(p)) => Some(p + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut next = base;
    // Open invocations without a process: (process given, f, micro-ops if a transaction).
    let mut open: Vec<(u64, &F, Option<Vec<MicroOp>>)> = Vec::new();
    let mut out = Vec::with_capacity(headers.len());
    for h in headers {
        if let Some(p) = h.process {
            out.push(p);
            continue;
        }
        let mops = h
            .value
            .as_ref()
            .and_then(|v| v.micro_ops())
            .map(|m| m.into_owned());
        if h.kind == EventType::Invoke {
            open.push((next, h.f, mops));
            out.push(Process::Client(next));
            next += 1;
            continue;
        }
        let answered = open.iter().position(|(_, f, asked)| {
            *f == h.f
                && match (asked, &mops) {
                    (Some(asked), Some(got)) => MicroOp::answers(asked, got),
                    _ => true,
                }
        });
        let Some(at) = answered else {
            return Err((
                h.line,
                format!(
                    "this :{} completion has no :process and follows no open invocation of :{} it could complete: \
                     expected every op to carry :process, or each completion to follow its invocation",
                    h.kind.as_str(),
                    h.f
                ),
            ));
        };
        out.push(Process::Client(open.remove(at).0));
    }
    Ok(out)
}
