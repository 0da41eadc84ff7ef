//! verity's own ledger histories: transfers with ids, and a final read that returns the journal of
//! applied ids. The simulator is the checkers' atomic bank ([`crate::objects`]) with its journal on;
//! this module adds the mutations that break such a history in the way each conservation anomaly
//! describes, the brute-force oracle that judges small ones, and a builder for hand-written ones.

use verity_history::{Event, EventType, History, OpOutcome, Process, Transfer, Value, F};

/// A ledger run as the checkers' bank simulator runs it ([`crate::objects`]), with the journal.
pub struct SimConfig {
    pub accounts: usize,
    pub processes: usize,
    pub ops: usize,
    pub info_chance: f64,
    /// Nemesis events (partitions starting and healing) between the clients' operations.
    pub nemesis: bool,
}

/// Simulates a correct ledger with transfer ids and a journal of applied ids, and returns its
/// history: the bank of [`crate::objects`] with `setup` and `journal`, and the nemesis of
/// [`crate::with_nemesis`] when asked.
pub fn simulate(seed: u64, cfg: &SimConfig) -> History {
    let history = crate::objects::simulate(&crate::objects::SimConfig {
        object: crate::objects::SimObject::Bank {
            accounts: cfg.accounts.max(2) as u32,
            // Little money and large transfers, so that some fail for want of funds.
            initial: 4,
            max_transfer: 5,
            setup: true,
            journal: true,
        },
        clients: cfg.processes,
        ops: cfg.ops,
        info_rate: cfg.info_chance,
        stale_read_rate: 0.0,
        seed,
    });
    if cfg.nemesis {
        crate::with_nemesis(history, seed ^ 0x006e_656d_6573_6973)
    } else {
        history
    }
}

/// Builds histories event by event (times are 1 µs apart).
#[derive(Default)]
pub struct Builder {
    events: Vec<Event>,
}

impl Builder {
    pub fn new() -> Self {
        Builder::default()
    }

    pub fn push(
        &mut self,
        process: Process,
        kind: EventType,
        f: F,
        value: Value,
        error: Option<&str>,
    ) {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time_ns: index * 1000,
            process,
            kind,
            f,
            value,
            error: error.map(str::to_string),
        });
    }

    pub fn finish(self) -> History {
        History::new(self.events)
    }
}

// ---------------------------------------------------------------------------------------------------
// Mutations: each breaks a correct history in the way one anomaly describes.

/// The final read's value, mutably.
pub fn final_value(h: &mut History) -> &mut Value {
    &mut h
        .events
        .last_mut()
        .expect("simulated histories end with the final read")
        .value
}

pub fn journal(h: &mut History) -> &mut Vec<Value> {
    match final_value(h) {
        Value::Map(m) => match m.get_mut("applied") {
            Some(Value::List(l)) => l,
            _ => panic!("final read without a journal"),
        },
        _ => panic!("final read is not a map"),
    }
}

pub fn final_balances(h: &mut History) -> &mut Vec<Value> {
    match final_value(h) {
        Value::Map(m) => match m.get_mut("balances") {
            Some(Value::List(l)) => l,
            _ => panic!("final read without balances"),
        },
        _ => panic!("final read is not a map"),
    }
}

pub fn add(v: &mut Value, delta: i64) {
    if let Value::Int(i) = v {
        *i += delta;
    }
}

/// Transfers of the history with the given outcome.
pub fn transfers(h: &History, outcome: OpOutcome) -> Vec<Transfer> {
    h.ops()
        .unwrap()
        .into_iter()
        .filter(|op| op.outcome == outcome)
        .filter_map(|op| h.events[op.invoke].value.as_transfer().copied())
        .collect()
}

/// Index of an ok, non-final read's completion.
pub fn an_ok_read(h: &History) -> Option<usize> {
    h.ops()
        .unwrap()
        .into_iter()
        .filter(|op| op.outcome == OpOutcome::Ok && h.events[op.invoke].f == F::Read)
        .filter(|op| h.events[op.invoke].value.is_null())
        .map(|op| op.completion.unwrap())
        .next()
}

pub fn read_balances(h: &mut History, at: usize) -> &mut Vec<Value> {
    match &mut h.events[at].value {
        Value::Map(m) => match m.get_mut("balances") {
            Some(Value::List(l)) => l,
            _ => panic!(),
        },
        _ => panic!(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerMutation {
    WrongTotal,
    NegativeBalance,
    LostTransfer,
    DuplicateTransfer,
    PhantomTransfer,
    FailedTransferApplied,
    BalanceMismatch,
}

pub const MUTATIONS: [LedgerMutation; 7] = [
    LedgerMutation::WrongTotal,
    LedgerMutation::NegativeBalance,
    LedgerMutation::LostTransfer,
    LedgerMutation::DuplicateTransfer,
    LedgerMutation::PhantomTransfer,
    LedgerMutation::FailedTransferApplied,
    LedgerMutation::BalanceMismatch,
];

impl LedgerMutation {
    pub fn anomaly(self) -> &'static str {
        use verity_history::anomaly::*;
        match self {
            LedgerMutation::WrongTotal => WRONG_TOTAL,
            LedgerMutation::NegativeBalance => NEGATIVE_BALANCE,
            LedgerMutation::LostTransfer => LOST_TRANSFER,
            LedgerMutation::DuplicateTransfer => DUPLICATE_TRANSFER,
            LedgerMutation::PhantomTransfer => PHANTOM_TRANSFER,
            LedgerMutation::FailedTransferApplied => FAILED_TRANSFER_APPLIED,
            LedgerMutation::BalanceMismatch => BALANCE_MISMATCH,
        }
    }

    /// Applies the mutation; returns false when the history offers nothing to mutate.
    pub fn apply(self, h: &mut History) -> bool {
        match self {
            LedgerMutation::WrongTotal => {
                let Some(at) = an_ok_read(h) else {
                    return false;
                };
                add(&mut read_balances(h, at)[0], 1);
            }
            LedgerMutation::NegativeBalance => {
                let Some(at) = an_ok_read(h) else {
                    return false;
                };
                let b = read_balances(h, at);
                let shift = b[0].as_i64().unwrap() + 1;
                add(&mut b[0], -shift);
                add(&mut b[1], shift);
            }
            LedgerMutation::LostTransfer => {
                let Some(t) = transfers(h, OpOutcome::Ok).into_iter().next() else {
                    return false;
                };
                journal(h).retain(|v| v.as_i64() != Some(t.id as i64));
                let b = final_balances(h);
                add(&mut b[t.from as usize], t.amount);
                add(&mut b[t.to as usize], -t.amount);
            }
            LedgerMutation::DuplicateTransfer => {
                let Some(t) = transfers(h, OpOutcome::Ok).into_iter().next() else {
                    return false;
                };
                journal(h).push(Value::Int(t.id as i64));
                let b = final_balances(h);
                add(&mut b[t.from as usize], -t.amount);
                add(&mut b[t.to as usize], t.amount);
            }
            LedgerMutation::PhantomTransfer => journal(h).push(Value::Int(1_000_000)),
            LedgerMutation::FailedTransferApplied => {
                let Some(t) = transfers(h, OpOutcome::Fail).into_iter().next() else {
                    return false;
                };
                journal(h).push(Value::Int(t.id as i64));
                let b = final_balances(h);
                add(&mut b[t.from as usize], -t.amount);
                add(&mut b[t.to as usize], t.amount);
            }
            LedgerMutation::BalanceMismatch => {
                let b = final_balances(h);
                add(&mut b[0], 1);
                add(&mut b[1], -1);
            }
        }
        true
    }
}

/// The oracle: the definition of a conserving ledger, checked by brute force. Valid iff every ok read
/// sums to the total with no negative balance, and some subset S of the indeterminate transfers makes
/// the final journal exactly `ok ∪ S` (each once, nothing failed or unknown) whose replay gives the
/// final balances.
pub fn oracle(h: &History) -> bool {
    let ev = &h.events;
    let ops = h.ops().unwrap();
    let initial = ev[1].value.get("balances").unwrap().as_i64_list().unwrap();
    let total: i64 = initial.iter().sum();
    for op in &ops {
        if op.outcome == OpOutcome::Ok && ev[op.invoke].f == F::Read {
            let b = ev[op.completion.unwrap()]
                .value
                .get("balances")
                .unwrap()
                .as_i64_list()
                .unwrap();
            if b.iter().sum::<i64>() != total
                || b.iter().any(|&x| x < 0)
                || b.len() != initial.len()
            {
                return false;
            }
        }
    }
    let fin = &ev.last().unwrap().value;
    let journal = fin.get("applied").unwrap().as_i64_list().unwrap();
    let fin_balances = fin.get("balances").unwrap().as_i64_list().unwrap();
    let all: Vec<(Transfer, OpOutcome)> = ops
        .iter()
        .filter_map(|op| ev[op.invoke].value.as_transfer().map(|t| (*t, op.outcome)))
        .collect();
    let uncertain: Vec<Transfer> = all
        .iter()
        .filter(|(_, o)| o.is_indeterminate())
        .map(|(t, _)| *t)
        .collect();
    let certain: Vec<i64> = all
        .iter()
        .filter(|(_, o)| *o == OpOutcome::Ok)
        .map(|(t, _)| t.id as i64)
        .collect();
    let mut sorted_journal = journal.clone();
    sorted_journal.sort_unstable();
    for mask in 0u32..(1 << uncertain.len()) {
        let mut expected = certain.clone();
        for (i, t) in uncertain.iter().enumerate() {
            if mask & (1 << i) != 0 {
                expected.push(t.id as i64);
            }
        }
        expected.sort_unstable();
        if expected != sorted_journal {
            continue;
        }
        let mut b = initial.clone();
        for id in &journal {
            let (t, _) = all.iter().find(|(t, _)| t.id as i64 == *id).unwrap();
            b[t.from as usize] -= t.amount;
            b[t.to as usize] += t.amount;
        }
        return b == fin_balances;
    }
    false
}
