//! A read/write register (Knossos's `register`, Herlihy & Wing's running example).
//!
//! `write v` sets the value; `read` returns it. A read whose result is `null` is unknown and
//! constrains nothing (Knossos treats a nil read the same way). Values may be any history value;
//! they are interned, so a state is one `u32`. Independent keys (`[k v]`) partition the history.

use verity_history::{OpOutcome, Value, F};

use crate::linearizable::model::{
    split_independent, Interner, Model, OpContext, ParseError, Parsed,
};

/// A register operation with its observed result, values as interned ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    Read(u32),
    Write(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    pub initial: Value,
}

impl Default for Register {
    fn default() -> Self {
        Register {
            initial: Value::Int(0),
        }
    }
}

/// Parses the read and write operations shared by the register family. Returns `Ok(None)` for an `f`
/// the caller should handle itself.
pub(crate) fn parse_read_write(
    op: OpContext<'_>,
    values: &mut Interner,
) -> Result<Option<Parsed<RegisterOp, u32>>, ParseError> {
    let (key, arg) = split_independent(&op.invoke.value, false);
    let parsed = match op.invoke.f {
        F::Read => match op.result() {
            None => Parsed::Skip,
            Some(result) => {
                let (_, v) = split_independent(result, false);
                if v.is_null() {
                    Parsed::Skip
                } else {
                    Parsed::Op {
                        key,
                        op: RegisterOp::Read(values.id(v)),
                    }
                }
            }
        },
        F::Write if op.outcome == OpOutcome::Fail => Parsed::Skip,
        F::Write => Parsed::Op {
            key,
            op: RegisterOp::Write(values.id(arg)),
        },
        _ => return Ok(None),
    };
    Ok(Some(parsed))
}

pub(crate) fn step_read_write(state: u32, op: &RegisterOp) -> Option<u32> {
    match *op {
        RegisterOp::Read(v) => (v == state).then_some(state),
        RegisterOp::Write(v) => Some(v),
    }
}

pub(crate) fn describe_read_write(op: &RegisterOp, values: &Interner) -> String {
    match *op {
        RegisterOp::Read(v) => format!("read → {}", values.value(v)),
        RegisterOp::Write(v) => format!("write {}", values.value(v)),
    }
}

impl Model for Register {
    type State = u32;
    type Op = RegisterOp;
    type Pool = ();

    fn name(&self) -> &'static str {
        "register"
    }

    fn parse(
        &self,
        op: OpContext<'_>,
        values: &mut Interner,
    ) -> Result<Parsed<RegisterOp, u32>, ParseError> {
        parse_read_write(op, values)?.ok_or_else(|| {
            op.error(format!(
                "the register model knows read and write, not {:?}",
                op.invoke.f.as_str()
            ))
        })
    }

    fn init(&self, values: &mut Interner) -> Option<u32> {
        Some(values.id(&self.initial))
    }

    fn step(&self, state: &u32, op: &RegisterOp) -> Option<u32> {
        step_read_write(*state, op)
    }

    fn is_read_only(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(_))
    }

    fn describe_op(&self, op: &RegisterOp, values: &Interner) -> String {
        describe_read_write(op, values)
    }

    fn describe_state(&self, state: &u32, values: &Interner) -> String {
        values.value(*state).to_string()
    }
}
