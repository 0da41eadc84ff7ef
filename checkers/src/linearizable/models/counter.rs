//! A counter (Jepsen's `counter` checker, Maelstrom's g-counter/pn-counter, as a linearizable
//! object): `add n` (also `increment`/`inc`, default 1) adds n; `read` returns the total. Unlike
//! Jepsen's bounds check, this judges every read against one real-time order of the adds.

use verity_history::{OpOutcome, Value, F};

use crate::linearizable::model::{Interner, Model, OpContext, ParseError, Parsed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterOp {
    Add(i64),
    Read(i64),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counter {
    pub initial: i64,
}

impl Model for Counter {
    type State = i64;
    type Op = CounterOp;
    type Pool = ();

    fn name(&self) -> &'static str {
        "counter"
    }

    fn parse(
        &self,
        op: OpContext<'_>,
        _: &mut Interner,
    ) -> Result<Parsed<CounterOp, i64>, ParseError> {
        if op.outcome == OpOutcome::Fail {
            return Ok(Parsed::Skip);
        }
        let parsed = match op.invoke.f.as_str() {
            "add" | "increment" | "inc" => match &op.invoke.value {
                Value::Null => CounterOp::Add(1),
                Value::Int(n) => CounterOp::Add(*n),
                other => return Err(op.error(format!("an add takes an integer, not {other}"))),
            },
            "read" => match op.result() {
                None | Some(Value::Null) => return Ok(Parsed::Skip),
                Some(Value::Int(n)) => CounterOp::Read(*n),
                Some(other) => {
                    return Err(op.error(format!("a counter read returns an integer, not {other}")))
                }
            },
            other => {
                return Err(op.error(format!(
                    "the counter model knows add and read, not {other:?}"
                )))
            }
        };
        debug_assert!(op.invoke.f != F::Write);
        Ok(Parsed::Op {
            key: None,
            op: parsed,
        })
    }

    fn init(&self, _: &mut Interner) -> Option<i64> {
        Some(self.initial)
    }

    fn step(&self, total: &i64, op: &CounterOp) -> Option<i64> {
        match *op {
            CounterOp::Add(n) => total.checked_add(n),
            CounterOp::Read(n) => (n == *total).then_some(*total),
        }
    }

    fn is_read_only(&self, op: &CounterOp) -> bool {
        matches!(op, CounterOp::Read(_))
    }

    fn describe_op(&self, op: &CounterOp, _: &Interner) -> String {
        match op {
            CounterOp::Add(n) => format!("add {n}"),
            CounterOp::Read(n) => format!("read → {n}"),
        }
    }

    fn describe_state(&self, total: &i64, _: &Interner) -> String {
        total.to_string()
    }
}
