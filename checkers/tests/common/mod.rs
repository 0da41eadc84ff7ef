//! A simulated correct bank, for property tests: concurrent processes whose transfers and reads each
//! take effect atomically at one instant inside their interval, some of which time out (`info`) and
//! then take effect later or never. Whatever it produces is, by construction, a valid history.

#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_history::{Event, EventType, History, Process, Transfer, Value, F};

pub struct SimConfig {
    pub accounts: usize,
    pub processes: usize,
    pub ops: usize,
    pub info_chance: f64,
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

pub struct Builder {
    events: Vec<Event>,
}

impl Builder {
    pub fn new() -> Self {
        Builder { events: Vec::new() }
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
    for _ in 0..step_max {
        if invoked >= cfg.ops && slots.iter().all(|s| matches!(s, Slot::Idle)) {
            break;
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
    // Anything still in flight times out; its effect already happened or is dropped.
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
