//! A mutex (Knossos's `mutex`): `acquire` succeeds only when the lock is free, `release` only when it
//! is held. Jepsen used it for etcd's and Hazelcast's locks; two clients holding the lock at once show
//! up as an acquire that cannot be linearized.

use verity_history::OpOutcome;

use crate::linearizable::model::{Interner, Model, OpContext, ParseError, Parsed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MutexOp {
    Acquire,
    Release,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mutex;

impl Model for Mutex {
    /// Whether the lock is held.
    type State = bool;
    type Op = MutexOp;
    type Pool = ();

    fn name(&self) -> &'static str {
        "mutex"
    }

    fn parse(
        &self,
        op: OpContext<'_>,
        _: &mut Interner,
    ) -> Result<Parsed<MutexOp, bool>, ParseError> {
        if op.outcome == OpOutcome::Fail {
            return Ok(Parsed::Skip);
        }
        let parsed = match op.invoke.f.as_str() {
            "acquire" | "lock" => MutexOp::Acquire,
            "release" | "unlock" => MutexOp::Release,
            other => {
                return Err(op.error(format!(
                    "the mutex model knows acquire and release, not {other:?}"
                )))
            }
        };
        Ok(Parsed::Op {
            key: None,
            op: parsed,
        })
    }

    fn init(&self, _: &mut Interner) -> Option<bool> {
        Some(false)
    }

    fn step(&self, held: &bool, op: &MutexOp) -> Option<bool> {
        match op {
            MutexOp::Acquire => (!held).then_some(true),
            MutexOp::Release => held.then_some(false),
        }
    }

    fn describe_op(&self, op: &MutexOp, _: &Interner) -> String {
        match op {
            MutexOp::Acquire => "acquire".into(),
            MutexOp::Release => "release".into(),
        }
    }

    fn describe_state(&self, held: &bool, _: &Interner) -> String {
        if *held { "held" } else { "free" }.into()
    }
}
