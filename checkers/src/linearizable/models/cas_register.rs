//! A compare-and-set register (Knossos's `cas-register`, the model of Jepsen's linearizable-register
//! test and of etcd/Zookeeper/Consul analyses).
//!
//! `write v` sets the value; `cas [old new]` sets it to `new` only if it is `old` (a cas that returned
//! `ok` certainly matched; a failed cas did nothing and is dropped; an `info` cas took effect only
//! where it matched, if at all); `read` returns the value, `null` meaning unknown.

use verity_history::{OpOutcome, Value, F};

use crate::linearizable::model::{
    split_independent, Interner, Model, OpContext, ParseError, Parsed,
};
use crate::linearizable::models::register::{
    describe_read_write, parse_read_write, step_read_write, RegisterOp,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CasOp {
    Rw(RegisterOp),
    Cas { old: u32, new: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct CasRegister {
    pub initial: Value,
}

impl Default for CasRegister {
    fn default() -> Self {
        CasRegister {
            initial: Value::Int(0),
        }
    }
}

impl Model for CasRegister {
    type State = u32;
    type Op = CasOp;
    type Pool = ();

    fn name(&self) -> &'static str {
        "cas-register"
    }

    fn parse(
        &self,
        op: OpContext<'_>,
        values: &mut Interner,
    ) -> Result<Parsed<CasOp, u32>, ParseError> {
        if let Some(parsed) = parse_read_write(op, values)? {
            return Ok(match parsed {
                Parsed::Op { key, op } => Parsed::Op {
                    key,
                    op: CasOp::Rw(op),
                },
                Parsed::Skip => Parsed::Skip,
                Parsed::Setup(s) => Parsed::Setup(s),
            });
        }
        if op.invoke.f != F::Cas {
            return Err(op.error(format!(
                "the cas-register model knows read, write and cas, not {:?}",
                op.invoke.f.as_str()
            )));
        }
        if op.outcome == OpOutcome::Fail {
            return Ok(Parsed::Skip);
        }
        let (key, arg) = split_independent(&op.invoke.value, true);
        match arg.as_list() {
            Some([old, new]) => Ok(Parsed::Op {
                key,
                op: CasOp::Cas {
                    old: values.id(old),
                    new: values.id(new),
                },
            }),
            _ => Err(op.error(format!("a cas takes [old new], not {arg}"))),
        }
    }

    fn init(&self, values: &mut Interner) -> Option<u32> {
        Some(values.id(&self.initial))
    }

    fn step(&self, state: &u32, op: &CasOp) -> Option<u32> {
        match *op {
            CasOp::Rw(rw) => step_read_write(*state, &rw),
            CasOp::Cas { old, new } => (old == *state).then_some(new),
        }
    }

    fn is_read_only(&self, op: &CasOp) -> bool {
        matches!(op, CasOp::Rw(RegisterOp::Read(_)))
    }

    fn describe_op(&self, op: &CasOp, values: &Interner) -> String {
        match op {
            CasOp::Rw(rw) => describe_read_write(rw, values),
            CasOp::Cas { old, new } => {
                format!("cas {}→{}", values.value(*old), values.value(*new))
            }
        }
    }

    fn describe_state(&self, state: &u32, values: &Interner) -> String {
        values.value(*state).to_string()
    }
}
