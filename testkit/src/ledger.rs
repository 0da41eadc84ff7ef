//! A simulated correct bank, for property tests: concurrent processes whose transfers and reads each
//! take effect atomically at one instant inside their interval, some of which time out (`info`) and
//! then take effect later or never. Whatever it produces is, by construction, a valid history.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_history::{Event, EventType, History, OpOutcome, Process, Transfer, Value, F};

pub struct SimConfig {
    pub accounts: usize,
    pub processes: usize,
    pub ops: usize,
    pub info_chance: f64,
    /// Nemesis events (partitions starting and healing) between the clients' operations.
    pub nemesis: bool,
}

enum Slot {
    Idle,
    /// An op in flight; `result` is set once it has taken effect.
    Busy {
        f: F,
        invoke_value: Value,
        result: Option<(EventType, Value)>,
    },
}

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
    /// A nemesis event (`start-partition`, …) between the clients' operations.
    pub fn nemesis(&mut self, f: &str) {
        self.push(
            Process::Nemesis,
            EventType::Info,
            F::from_name(f),
            Value::Null,
            None,
        );
    }
    pub fn finish(self) -> History {
        History::new(self.events)
    }
}

fn balances_value(b: &[i64]) -> Value {
    Value::map([("balances", Value::int_list(b.iter().copied()))])
}

fn apply(balances: &mut [i64], journal: &mut Vec<i64>, t: &Transfer) -> bool {
    if balances[t.from as usize] < t.amount {
        return false;
    }
    balances[t.from as usize] -= t.amount;
    balances[t.to as usize] += t.amount;
    journal.push(t.id as i64);
    true
}

/// Simulates a correct ledger and returns its history.
pub fn simulate(seed: u64, cfg: &SimConfig) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Builder::new();
    let mut balances: Vec<i64> = (0..cfg.accounts).map(|_| rng.gen_range(0..10)).collect();
    let mut journal: Vec<i64> = Vec::new();
    b.push(
        Process::Client(0),
        EventType::Invoke,
        F::Setup,
        balances_value(&balances),
        None,
    );
    b.push(
        Process::Client(0),
        EventType::Ok,
        F::Setup,
        balances_value(&balances),
        None,
    );

    let mut pids: Vec<u64> = (1..=cfg.processes as u64).collect();
    let mut next_pid = cfg.processes as u64 + 1;
    let mut slots: Vec<Slot> = (0..cfg.processes).map(|_| Slot::Idle).collect();
    // Timed-out transfers that may still take effect.
    let mut floating: Vec<Transfer> = Vec::new();
    let mut invoked = 0;
    let mut next_id = 1;
    let step_max = cfg.ops * 4 + 16;
    let mut nemesis = crate::Nemesis::default();
    for _ in 0..step_max {
        if invoked >= cfg.ops && slots.iter().all(|s| matches!(s, Slot::Idle)) {
            break;
        }
        if let Some(f) = cfg.nemesis.then(|| nemesis.step(&mut rng)).flatten() {
            b.nemesis(f);
        }
        if !floating.is_empty() && rng.gen_bool(0.1) {
            let t = floating.swap_remove(rng.gen_range(0..floating.len()));
            apply(&mut balances, &mut journal, &t);
        }
        let i = rng.gen_range(0..slots.len());
        let pid = Process::Client(pids[i]);
        match &mut slots[i] {
            Slot::Idle if invoked < cfg.ops => {
                invoked += 1;
                let (f, v) = if rng.gen_bool(0.5) {
                    (F::Read, Value::Null)
                } else {
                    let from = rng.gen_range(0..cfg.accounts) as u32;
                    let to = (from + rng.gen_range(1..cfg.accounts) as u32) % cfg.accounts as u32;
                    let t = Transfer {
                        id: next_id,
                        from,
                        to,
                        amount: rng.gen_range(1..=5),
                    };
                    next_id += 1;
                    (F::Transfer, Value::Transfer(t))
                };
                b.push(pid, EventType::Invoke, f.clone(), v.clone(), None);
                slots[i] = Slot::Busy {
                    f,
                    invoke_value: v,
                    result: None,
                };
            }
            Slot::Idle => {}
            Slot::Busy {
                f,
                invoke_value,
                result,
            } => match result {
                None if rng.gen_bool(cfg.info_chance) => {
                    // Times out before taking effect: it may take effect later, or never.
                    if let Value::Transfer(t) = invoke_value {
                        floating.push(*t);
                    }
                    b.push(
                        pid,
                        EventType::Info,
                        f.clone(),
                        invoke_value.clone(),
                        Some("timeout"),
                    );
                    pids[i] = next_pid;
                    next_pid += 1;
                    slots[i] = Slot::Idle;
                }
                None => {
                    *result = Some(match (&*f, &*invoke_value) {
                        (F::Transfer, Value::Transfer(t)) => {
                            if apply(&mut balances, &mut journal, t) {
                                (EventType::Ok, invoke_value.clone())
                            } else {
                                (EventType::Fail, invoke_value.clone())
                            }
                        }
                        _ => (EventType::Ok, balances_value(&balances)),
                    });
                }
                Some((kind, value)) => {
                    let (f, kind, value) = (f.clone(), *kind, value.clone());
                    if rng.gen_bool(cfg.info_chance) {
                        b.push(
                            pid,
                            EventType::Info,
                            f,
                            invoke_value.clone(),
                            Some("timeout"),
                        );
                        pids[i] = next_pid;
                        next_pid += 1;
                    } else {
                        let err = (kind == EventType::Fail).then_some("insufficient-funds");
                        b.push(pid, kind, f, value, err);
                    }
                    slots[i] = Slot::Idle;
                }
            },
        }
    }
    if let Some(f) = nemesis.finish() {
        b.nemesis(f);
    }
    // Anything still in flight times out (its client crashed); its effect already happened, or
    // happens later, or never.
    for (i, s) in slots.iter_mut().enumerate() {
        if let Slot::Busy {
            f,
            invoke_value,
            result,
        } = s
        {
            if result.is_none() {
                if let Value::Transfer(t) = invoke_value {
                    floating.push(*t);
                }
            }
            b.push(
                Process::Client(pids[i]),
                EventType::Info,
                f.clone(),
                invoke_value.clone(),
                Some("timeout"),
            );
            *s = Slot::Idle;
        }
    }
    for t in floating {
        if rng.gen_bool(0.5) {
            apply(&mut balances, &mut journal, &t);
        }
    }
    let reader = Process::Client(next_pid);
    b.push(
        reader,
        EventType::Invoke,
        F::Read,
        Value::map([("final", Value::Bool(true))]),
        None,
    );
    b.push(
        reader,
        EventType::Ok,
        F::Read,
        Value::map([
            ("balances", Value::int_list(balances.iter().copied())),
            (
                "applied",
                Value::List(journal.into_iter().map(Value::Int).collect()),
            ),
        ]),
        None,
    );
    b.finish()
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
