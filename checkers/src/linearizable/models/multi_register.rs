//! A set of registers read and written in transactions (Knossos's `multi-register`).
//!
//! The one operation is `txn`, whose value is a list of micro-ops `[f k v]` with f `read`/`r` or
//! `write`/`w`. The transaction applies atomically: its reads see the registers as the preceding
//! writes of the same transaction left them. A read of `null` is unknown and constrains nothing.
//! Unwritten registers hold the initial value. An `info` transaction carries no read results, so only
//! its writes matter.

use std::collections::BTreeMap;

use verity_history::{OpOutcome, Value};

use crate::linearizable::model::{Interner, Model, OpContext, ParseError, Parsed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Micro {
    /// A read of register `key` that saw `value` (`None`: unknown).
    Read {
        key: u32,
        value: Option<u32>,
    },
    Write {
        key: u32,
        value: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Txn(pub Box<[Micro]>);

#[derive(Debug, Clone, PartialEq)]
pub struct MultiRegister {
    pub initial: Value,
}

impl Default for MultiRegister {
    fn default() -> Self {
        MultiRegister {
            initial: Value::Int(0),
        }
    }
}

fn parse_micro(m: &Value, known: bool, values: &mut Interner) -> Option<Micro> {
    let [f, k, v] = m.as_list()? else {
        return None;
    };
    let key = values.id(k);
    match f.as_str()? {
        "read" | "r" => Some(Micro::Read {
            key,
            value: (known && !v.is_null()).then(|| values.id(v)),
        }),
        "write" | "w" => Some(Micro::Write {
            key,
            value: values.id(v),
        }),
        _ => None,
    }
}

impl Model for MultiRegister {
    /// Register key id → value id; registers not present hold the initial value.
    type State = BTreeMap<u32, u32>;
    type Op = Txn;
    type Pool = ();

    fn name(&self) -> &'static str {
        "multi-register"
    }

    fn parse(
        &self,
        op: OpContext<'_>,
        values: &mut Interner,
    ) -> Result<Parsed<Txn, Self::State>, ParseError> {
        if op.outcome == OpOutcome::Fail {
            return Ok(Parsed::Skip);
        }
        if op.invoke.f.as_str() != "txn" {
            return Err(op.error(format!(
                "the multi-register model knows txn, not {:?}",
                op.invoke.f.as_str()
            )));
        }
        let (value, known) = match op.result() {
            Some(v) => (v, true),
            None => (&op.invoke.value, false),
        };
        let micros = value
            .as_list()
            .and_then(|l| {
                l.iter()
                    .map(|m| parse_micro(m, known, values))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                op.error(format!(
                    "a txn is a list of [read|write key value], not {value}"
                ))
            })?;
        Ok(Parsed::Op {
            key: None,
            op: Txn(micros.into_boxed_slice()),
        })
    }

    fn init(&self, values: &mut Interner) -> Option<Self::State> {
        // Interning the initial value first gives it id 0 in a fresh interner; it is looked up again in
        // `step` through `initial_id`, so no id is assumed.
        values.id(&self.initial);
        Some(BTreeMap::new())
    }

    fn step(&self, state: &Self::State, txn: &Txn) -> Option<Self::State> {
        let mut next = state.clone();
        for m in txn.0.iter() {
            match *m {
                Micro::Read { value: None, .. } => {}
                Micro::Read {
                    key,
                    value: Some(v),
                } => {
                    let current = next.get(&key).copied().unwrap_or(self.initial_id());
                    if current != v {
                        return None;
                    }
                }
                Micro::Write { key, value } => {
                    next.insert(key, value);
                }
            }
        }
        Some(next)
    }

    fn is_read_only(&self, txn: &Txn) -> bool {
        txn.0.iter().all(|m| matches!(m, Micro::Read { .. }))
    }

    fn describe_op(&self, txn: &Txn, values: &Interner) -> String {
        let parts: Vec<String> = txn
            .0
            .iter()
            .map(|m| match *m {
                Micro::Read { key, value } => format!(
                    "r {} {}",
                    values.value(key),
                    value.map_or("?".to_string(), |v| values.value(v).to_string())
                ),
                Micro::Write { key, value } => {
                    format!("w {} {}", values.value(key), values.value(value))
                }
            })
            .collect();
        format!("txn [{}]", parts.join(", "))
    }

    fn describe_state(&self, state: &Self::State, values: &Interner) -> String {
        let parts: Vec<String> = state
            .iter()
            .map(|(k, v)| format!("{} {}", values.value(*k), values.value(*v)))
            .collect();
        format!("{{{}}} (others {})", parts.join(", "), self.initial)
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len() * 16
    }
}

impl MultiRegister {
    /// The interned id of the initial value. The checker interns it first (in [`Model::init`]), so it is
    /// id 0 of the partition's interner.
    fn initial_id(&self) -> u32 {
        0
    }
}
