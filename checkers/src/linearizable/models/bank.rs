//! A bank: a vector of account balances, transfers between accounts, and reads of every balance.
//!
//! This is the model Porcupine's and Knossos's users wrote for TiDB's and others' bank tests (the
//! histories that ran those checkers out of memory; see docs/benchmarks.md). A correct
//! bank applies a transfer atomically and only when the source holds at least the amount, so balances
//! never go negative; it rejects (`fail`, error `insufficient-funds`) a transfer when the source is
//! short. Such a rejection is an observation too: the source balance was below the amount at some
//! instant of the transfer's interval, so it is kept as a read-like operation. Other failures did not
//! happen and are dropped. A read returns `{"balances": [...]}` (final reads also carry `applied`,
//! which this model ignores: the conservation checker judges it).
//!
//! The initial balances come from the `setup` operation, or — for Jepsen histories, which have none —
//! from the first read, when it completed before any other operation began.

use verity_history::{OpOutcome, Value, F};

use crate::linearizable::model::{Interner, Model, OpContext, ParseError, Parsed};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BankOp {
    Transfer {
        from: u32,
        to: u32,
        amount: i64,
    },
    /// A rejected transfer: the source held less than `amount`.
    Short {
        from: u32,
        amount: i64,
    },
    Read(Box<[i64]>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bank;

/// The error a correct bank gives when the source account is short.
pub const INSUFFICIENT_FUNDS: &str = "insufficient-funds";

fn balances(v: &Value) -> Option<Box<[i64]>> {
    v.get("balances")?.as_i64_list().map(Vec::into_boxed_slice)
}

fn transfer_of(v: &Value) -> Option<(u32, u32, i64)> {
    if let Some(t) = v.as_transfer() {
        return Some((t.from, t.to, t.amount));
    }
    let field = |k: &str| v.get(k).and_then(Value::as_i64);
    let from = u32::try_from(field("from")?).ok()?;
    let to = u32::try_from(field("to")?).ok()?;
    Some((from, to, field("amount")?))
}

impl Model for Bank {
    type State = Box<[i64]>;
    type Op = BankOp;

    fn name(&self) -> &'static str {
        "bank"
    }

    fn parse(
        &self,
        op: OpContext<'_>,
        _: &mut Interner,
    ) -> Result<Parsed<BankOp, Self::State>, ParseError> {
        match op.invoke.f {
            F::Setup => {
                let v = op.completion.map_or(&op.invoke.value, |c| &c.value);
                let v = if balances(v).is_some() {
                    v
                } else {
                    &op.invoke.value
                };
                let b = balances(v).ok_or_else(|| {
                    op.error(format!("a setup gives {{\"balances\": [..]}}, not {v}"))
                })?;
                Ok(Parsed::Setup(b))
            }
            F::Transfer => {
                let (from, to, amount) = transfer_of(&op.invoke.value).ok_or_else(|| {
                    op.error(format!(
                        "a transfer is {{from, to, amount}}, not {}",
                        op.invoke.value
                    ))
                })?;
                let parsed = match op.outcome {
                    OpOutcome::Fail => {
                        let short = op.completion.and_then(|c| c.error.as_deref())
                            == Some(INSUFFICIENT_FUNDS);
                        if !short {
                            return Ok(Parsed::Skip);
                        }
                        BankOp::Short { from, amount }
                    }
                    _ => BankOp::Transfer { from, to, amount },
                };
                Ok(Parsed::Op {
                    key: None,
                    op: parsed,
                })
            }
            F::Read => match op.result() {
                None | Some(Value::Null) => Ok(Parsed::Skip),
                Some(v) => {
                    let b = balances(v).ok_or_else(|| {
                        op.error(format!("a read returns {{\"balances\": [..]}}, not {v}"))
                    })?;
                    Ok(Parsed::Op {
                        key: None,
                        op: BankOp::Read(b),
                    })
                }
            },
            ref other => Err(op.error(format!(
                "the bank model knows setup, transfer and read, not {:?}",
                other.as_str()
            ))),
        }
    }

    fn init(&self, _: &mut Interner) -> Option<Self::State> {
        None
    }

    fn init_from_first(&self, op: &BankOp) -> Option<Self::State> {
        match op {
            BankOp::Read(b) => Some(b.clone()),
            _ => None,
        }
    }

    fn step(&self, state: &Self::State, op: &BankOp) -> Option<Self::State> {
        match op {
            BankOp::Transfer { from, to, amount } => {
                let (from, to) = (*from as usize, *to as usize);
                if from >= state.len() || to >= state.len() || state[from] < *amount {
                    return None;
                }
                let mut next = state.clone();
                next[from] -= amount;
                next[to] += amount;
                Some(next)
            }
            BankOp::Short { from, amount } => {
                let balance = *state.get(*from as usize)?;
                (balance < *amount).then(|| state.clone())
            }
            BankOp::Read(seen) => (**seen == **state).then(|| state.clone()),
        }
    }

    fn is_read_only(&self, op: &BankOp) -> bool {
        matches!(op, BankOp::Read(_) | BankOp::Short { .. })
    }

    fn describe_op(&self, op: &BankOp, _: &Interner) -> String {
        match op {
            BankOp::Transfer { from, to, amount } => {
                format!("transfer {amount} from {from} to {to}")
            }
            BankOp::Short { from, amount } => {
                format!("transfer {amount} from {from} rejected (insufficient funds)")
            }
            BankOp::Read(b) => format!("read → {b:?}"),
        }
    }

    fn describe_state(&self, state: &Self::State, _: &Interner) -> String {
        format!("{state:?}")
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len() * 8
    }
}
