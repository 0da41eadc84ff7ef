//! A set (Knossos's `set`): `add v` inserts v; `read` returns every element. A read must return
//! exactly the elements added before it in one real-time-consistent order — a stale or lost element
//! is a read that cannot be linearized. (Jepsen's `set-full` checker is the cheaper, weaker cousin.)

use verity_history::{OpOutcome, Value};

use crate::linearizable::model::{Interner, Model, OpContext, ParseError, Parsed};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SetOp {
    Add(u32),
    /// The elements read, sorted and unique.
    Read(Box<[u32]>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Set;

fn read_elements(v: &Value, values: &mut Interner) -> Option<Box<[u32]>> {
    let mut ids: Vec<u32> = v.as_list()?.iter().map(|e| values.id(e)).collect();
    ids.sort_unstable();
    ids.dedup();
    Some(ids.into_boxed_slice())
}

impl Model for Set {
    /// The elements, sorted.
    type State = Box<[u32]>;
    type Op = SetOp;
    type Pool = ();

    fn name(&self) -> &'static str {
        "set"
    }

    fn parse(
        &self,
        op: OpContext<'_>,
        values: &mut Interner,
    ) -> Result<Parsed<SetOp, Self::State>, ParseError> {
        if op.outcome == OpOutcome::Fail {
            return Ok(Parsed::Skip);
        }
        let parsed = match op.invoke.f.as_str() {
            "add" => SetOp::Add(values.id(&op.invoke.value)),
            "read" => match op.result() {
                None | Some(Value::Null) => return Ok(Parsed::Skip),
                Some(v) => SetOp::Read(read_elements(v, values).ok_or_else(|| {
                    op.error(format!("a set read returns a list of elements, not {v}"))
                })?),
            },
            other => {
                return Err(op.error(format!("the set model knows add and read, not {other:?}")))
            }
        };
        Ok(Parsed::Op {
            key: None,
            op: parsed,
        })
    }

    fn init(&self, _: &mut Interner) -> Option<Self::State> {
        Some(Box::default())
    }

    fn step(&self, set: &Self::State, op: &SetOp) -> Option<Self::State> {
        match op {
            SetOp::Add(v) => match set.binary_search(v) {
                Ok(_) => Some(set.clone()),
                Err(at) => {
                    let mut next = Vec::with_capacity(set.len() + 1);
                    next.extend_from_slice(&set[..at]);
                    next.push(*v);
                    next.extend_from_slice(&set[at..]);
                    Some(next.into_boxed_slice())
                }
            },
            SetOp::Read(seen) => (seen == set).then(|| set.clone()),
        }
    }

    fn is_read_only(&self, op: &SetOp) -> bool {
        matches!(op, SetOp::Read(_))
    }

    fn describe_op(&self, op: &SetOp, values: &Interner) -> String {
        match op {
            SetOp::Add(v) => format!("add {}", values.value(*v)),
            SetOp::Read(seen) => format!("read → {}", describe_elements(seen, values)),
        }
    }

    fn describe_state(&self, set: &Self::State, values: &Interner) -> String {
        describe_elements(set, values)
    }

    fn state_heap_bytes(&self, set: &Self::State) -> usize {
        set.len() * 4
    }
}

fn describe_elements(ids: &[u32], values: &Interner) -> String {
    let items: Vec<String> = ids.iter().map(|id| values.value(*id).to_string()).collect();
    format!("#{{{}}}", items.join(" "))
}
