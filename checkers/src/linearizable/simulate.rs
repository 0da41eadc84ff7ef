//! Histories of simulated objects, for property tests, mutation tests and benchmarks.
//!
//! N clients share one atomic object. Each operation is invoked, takes effect at one instant of its
//! interval (the object is atomic, so the history is linearizable by construction), and completes;
//! the scheduler interleaves clients at random from a seed. With `info_rate`, an operation times out:
//! it completes `info` either after taking effect or before — and then it may still take effect at any
//! later instant, or never, as a real timed-out request does. Its process never issues again (the
//! client continues under a new process id, as Jepsen's do). `stale_read_rate` breaks the object: a
//! read returns the state before the latest change, the anomaly this checker exists to catch.
//!
//! Porcupine's and Knossos's test suites use the same idea: simulated correct objects must check
//! valid, and seeded faults must be found.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_history::{Event, EventType, History, Process, Transfer, Value, F};

/// Per scheduler step, the chance that one timed-out request still in the system resolves (takes
/// effect or is lost). Real timeouts resolve within a few round trips; the checker does not know that
/// and keeps every `info` operation open to the end.
pub const ZOMBIE_RESOLVE: f64 = 0.2;

/// The object the clients share.
#[derive(Debug, Clone, PartialEq)]
pub enum SimObject {
    /// A register of values `0..values` with read, write (and cas when `cas`); `keys > 1` wraps every
    /// value in Jepsen's independent `[key v]` tuples.
    Register {
        values: i64,
        cas: bool,
        keys: u32,
    },
    /// A bank of `accounts` holding `initial` each; transfers of `1..=max_transfer`. With `setup`, the
    /// history opens with a setup op (verity's format); without, with a read (Jepsen's).
    Bank {
        accounts: u32,
        initial: i64,
        max_transfer: i64,
        setup: bool,
    },
    /// Registers `0..keys` over values `0..values`, read and written in transactions of 1–3
    /// `[read|write k v]` micro-ops (Knossos's multi-register).
    MultiRegister {
        keys: u32,
        values: i64,
    },
    Counter,
    Set,
    Mutex,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub object: SimObject,
    pub clients: usize,
    /// How many operations are invoked.
    pub ops: usize,
    pub info_rate: f64,
    pub stale_read_rate: f64,
    pub seed: u64,
}

impl SimConfig {
    /// A cas-register with `clients` clients and `ops` operations.
    pub fn cas_register(clients: usize, ops: usize, seed: u64) -> Self {
        SimConfig {
            object: SimObject::Register {
                values: 5,
                cas: true,
                keys: 1,
            },
            clients,
            ops,
            info_rate: 0.0,
            stale_read_rate: 0.0,
            seed,
        }
    }

    /// A bank with `accounts` accounts, `clients` clients and `ops` operations.
    pub fn bank(accounts: u32, clients: usize, ops: usize, seed: u64) -> Self {
        SimConfig {
            object: SimObject::Bank {
                accounts,
                initial: 10,
                max_transfer: 5,
                setup: true,
            },
            clients,
            ops,
            info_rate: 0.0,
            stale_read_rate: 0.0,
            seed,
        }
    }
}

/// The state of the simulated object.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Register(BTreeMap<i64, i64>),
    Bank(Vec<i64>),
    Counter(i64),
    Set(Vec<i64>),
    Mutex(Option<u64>),
}

struct Sim<'a> {
    config: &'a SimConfig,
    rng: ChaCha8Rng,
    state: State,
    /// The state before the latest change, for stale reads.
    previous: State,
    events: Vec<Event>,
    next_transfer_id: u64,
    next_set_element: i64,
}

/// An operation in flight: its invocation, and its result once it took effect.
#[derive(Debug, Clone)]
struct InFlight {
    f: F,
    value: Value,
    result: Option<(EventType, Value, Option<String>)>,
    /// Whether this operation will time out (`info_rate` is the fraction of operations that do),
    /// and if so whether before taking effect.
    timeout: Option<bool>,
}

/// Simulates `config` and returns the history.
pub fn simulate(config: &SimConfig) -> History {
    let mut sim = Sim::new(config);
    sim.run();
    History::new(sim.events)
}

impl<'a> Sim<'a> {
    fn new(config: &'a SimConfig) -> Self {
        let state = match &config.object {
            SimObject::Register { .. } | SimObject::MultiRegister { .. } => {
                State::Register(BTreeMap::new())
            }
            SimObject::Bank {
                accounts, initial, ..
            } => State::Bank(vec![*initial; *accounts as usize]),
            SimObject::Counter => State::Counter(0),
            SimObject::Set => State::Set(Vec::new()),
            SimObject::Mutex => State::Mutex(None),
        };
        Sim {
            config,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            previous: state.clone(),
            state,
            events: Vec::new(),
            next_transfer_id: 1,
            next_set_element: 0,
        }
    }

    fn emit(&mut self, process: u64, kind: EventType, f: F, value: Value, error: Option<String>) {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time_ns: index * 1_000,
            process: Process::Client(process),
            kind,
            f,
            value,
            error,
        });
    }

    fn run(&mut self) {
        self.opening();
        let clients = self.config.clients.max(1);
        let mut process: Vec<u64> = (0..clients as u64).collect();
        let mut in_flight: Vec<Option<InFlight>> = vec![None; clients];
        // Timed-out operations that have not taken effect yet: they may, later, or never.
        let mut zombies: Vec<InFlight> = Vec::new();
        let mut invoked = 0usize;
        let step_max = self.config.ops.saturating_mul(8 * clients) + 1_000;
        for _ in 0..step_max {
            if invoked >= self.config.ops && in_flight.iter().all(Option::is_none) {
                break;
            }
            // Each timed-out request still in the system resolves soon: it takes effect or is lost.
            if !zombies.is_empty() && self.rng.gen_bool(ZOMBIE_RESOLVE) {
                let z = zombies.swap_remove(self.rng.gen_range(0..zombies.len()));
                if self.rng.gen_bool(0.5) {
                    self.apply(&z.f, &z.value, process[0]);
                }
            }
            let c = self.rng.gen_range(0..clients);
            match in_flight[c].take() {
                None if invoked < self.config.ops => {
                    let (f, value) = self.generate(process[c]);
                    self.emit(
                        process[c],
                        EventType::Invoke,
                        f.clone(),
                        value.clone(),
                        None,
                    );
                    invoked += 1;
                    let timeout = (self.config.info_rate > 0.0
                        && self.rng.gen_bool(self.config.info_rate))
                    .then(|| self.rng.gen_bool(0.5));
                    in_flight[c] = Some(InFlight {
                        f,
                        value,
                        result: None,
                        timeout,
                    });
                }
                None => {}
                Some(op) => {
                    // A timeout "before" strikes before the op takes effect; "after", once it has.
                    let timeout = match op.timeout {
                        Some(before) => before || op.result.is_some(),
                        None => false,
                    };
                    match (op.result.is_some(), timeout) {
                        (false, false) => {
                            let result = self.apply(&op.f, &op.value, process[c]);
                            in_flight[c] = Some(InFlight {
                                result: Some(result),
                                ..op
                            });
                        }
                        (applied, true) => {
                            self.emit(
                                process[c],
                                EventType::Info,
                                op.f.clone(),
                                op.value.clone(),
                                Some("timeout".into()),
                            );
                            if !applied {
                                zombies.push(op);
                            }
                            process[c] += clients as u64;
                        }
                        (true, false) => {
                            let (kind, value, error) = op.result.expect("checked above");
                            self.emit(process[c], kind, op.f, value, error);
                        }
                    }
                }
            }
        }
        self.closing(&process);
    }

    /// The operations that open the history: a bank's setup, or the read Jepsen's bank opens with.
    fn opening(&mut self) {
        if let SimObject::Bank { setup, .. } = self.config.object {
            let balances = self.balances();
            let p = u64::MAX / 2;
            if setup {
                self.emit(p, EventType::Invoke, F::Setup, balances.clone(), None);
                self.emit(p, EventType::Ok, F::Setup, balances, None);
            } else {
                self.emit(p, EventType::Invoke, F::Read, Value::Null, None);
                self.emit(p, EventType::Ok, F::Read, balances, None);
            }
        }
    }

    /// A bank history ends with a final read of every balance, after everything completed.
    fn closing(&mut self, process: &[u64]) {
        if let SimObject::Bank { .. } = self.config.object {
            let p = process[0];
            self.emit(p, EventType::Invoke, F::Read, Value::Null, None);
            let balances = self.balances();
            self.emit(p, EventType::Ok, F::Read, balances, None);
        }
    }

    fn balances(&self) -> Value {
        match &self.state {
            State::Bank(b) => Value::map([("balances", Value::int_list(b.iter().copied()))]),
            _ => Value::Null,
        }
    }

    fn generate(&mut self, process: u64) -> (F, Value) {
        let rng = &mut self.rng;
        match self.config.object {
            SimObject::Register { values, cas, keys } => {
                let roll = rng.gen_range(0..4);
                let v = |rng: &mut ChaCha8Rng| Value::Int(rng.gen_range(0..values.max(1)));
                let (f, value) = match roll {
                    0 | 1 => (F::Read, Value::Null),
                    2 if cas => (F::Cas, Value::List(vec![v(rng), v(rng)])),
                    _ => (F::Write, v(rng)),
                };
                if keys > 1 {
                    let k = Value::Int(i64::from(rng.gen_range(0..keys)));
                    (f, Value::List(vec![k, value]))
                } else {
                    (f, value)
                }
            }
            SimObject::Bank {
                accounts,
                max_transfer,
                ..
            } => {
                if rng.gen_bool(0.5) {
                    return (F::Read, Value::Null);
                }
                let from = rng.gen_range(0..accounts);
                let to = (from + rng.gen_range(1..accounts.max(2))) % accounts;
                let id = self.next_transfer_id;
                self.next_transfer_id += 1;
                let amount = rng.gen_range(1..=max_transfer.max(1));
                (
                    F::Transfer,
                    Value::Transfer(Transfer {
                        id,
                        from,
                        to,
                        amount,
                    }),
                )
            }
            SimObject::Counter => match rng.gen_bool(0.5) {
                true => (F::Read, Value::Null),
                false => (F::Other("add".into()), Value::Int(rng.gen_range(1..=3))),
            },
            SimObject::MultiRegister { keys, values } => {
                let len = rng.gen_range(1..=3);
                let micros = (0..len)
                    .map(|_| {
                        let k = Value::Int(i64::from(rng.gen_range(0..keys.max(1))));
                        if rng.gen_bool(0.5) {
                            Value::List(vec![Value::Str("read".into()), k, Value::Null])
                        } else {
                            let v = Value::Int(rng.gen_range(0..values.max(1)));
                            Value::List(vec![Value::Str("write".into()), k, v])
                        }
                    })
                    .collect();
                (F::Txn, Value::List(micros))
            }
            SimObject::Set => match rng.gen_bool(0.5) {
                true => (F::Read, Value::Null),
                false => {
                    self.next_set_element += 1;
                    (F::Other("add".into()), Value::Int(self.next_set_element))
                }
            },
            SimObject::Mutex => match self.state {
                State::Mutex(Some(holder)) if holder == process => {
                    (F::Other("release".into()), Value::Null)
                }
                _ => (F::Other("acquire".into()), Value::Null),
            },
        }
    }

    /// Applies one operation atomically, now; returns its completion.
    fn apply(&mut self, f: &F, value: &Value, process: u64) -> (EventType, Value, Option<String>) {
        let stale = matches!(f, F::Read | F::Txn)
            && self.config.stale_read_rate > 0.0
            && self.rng.gen_bool(self.config.stale_read_rate);
        let before = self.state.clone();
        let seen = if stale {
            self.previous.clone()
        } else {
            self.state.clone()
        };
        let result = apply_to(&mut self.state, &seen, f, value, process);
        if self.state != before {
            self.previous = before;
        }
        result
    }
}

/// The object's sequential semantics. `seen` is what a read returns (the state, or a stale one).
fn apply_to(
    state: &mut State,
    seen: &State,
    f: &F,
    value: &Value,
    process: u64,
) -> (EventType, Value, Option<String>) {
    let ok = |v: Value| (EventType::Ok, v, None);
    match (state, f.as_str()) {
        (State::Register(regs), "txn") => {
            let State::Register(old) = seen else {
                unreachable!("same kind of state")
            };
            ok(apply_txn(regs, old, value))
        }
        (State::Register(regs), name) => {
            let (key, arg) = match value.as_list() {
                Some([k, v]) if name != "cas" || v.as_list().is_some() => (k.as_i64(), v.clone()),
                _ => (None, value.clone()),
            };
            let k = key.unwrap_or(0);
            let wrap = |v: Value| match key {
                Some(k) => Value::List(vec![Value::Int(k), v]),
                None => v,
            };
            let current = regs.get(&k).copied().unwrap_or(0);
            match name {
                "read" => {
                    let State::Register(old) = seen else {
                        unreachable!("same kind of state")
                    };
                    ok(wrap(Value::Int(old.get(&k).copied().unwrap_or(0))))
                }
                "write" => {
                    regs.insert(k, arg.as_i64().unwrap_or(0));
                    ok(value.clone())
                }
                _ => {
                    let pair = arg.as_i64_list().unwrap_or_default();
                    if pair.first() == Some(&current) {
                        regs.insert(k, pair[1]);
                        ok(value.clone())
                    } else {
                        (EventType::Fail, value.clone(), Some("mismatch".into()))
                    }
                }
            }
        }
        (State::Bank(balances), "transfer") => {
            let t = *value
                .as_transfer()
                .expect("the simulator generates transfers");
            if balances[t.from as usize] < t.amount {
                return (
                    EventType::Fail,
                    value.clone(),
                    Some("insufficient-funds".into()),
                );
            }
            balances[t.from as usize] -= t.amount;
            balances[t.to as usize] += t.amount;
            ok(value.clone())
        }
        (State::Bank(_), _) => {
            let State::Bank(b) = seen else {
                unreachable!("same kind of state")
            };
            ok(Value::map([(
                "balances",
                Value::int_list(b.iter().copied()),
            )]))
        }
        (State::Counter(total), "add") => {
            *total += value.as_i64().unwrap_or(1);
            ok(value.clone())
        }
        (State::Counter(_), _) => {
            let State::Counter(t) = seen else {
                unreachable!("same kind of state")
            };
            ok(Value::Int(*t))
        }
        (State::Set(elements), "add") => {
            elements.push(value.as_i64().unwrap_or(0));
            ok(value.clone())
        }
        (State::Set(_), _) => {
            let State::Set(e) = seen else {
                unreachable!("same kind of state")
            };
            ok(Value::int_list(e.iter().copied()))
        }
        (State::Mutex(holder), "acquire") => match holder {
            None => {
                *holder = Some(process);
                ok(Value::Null)
            }
            Some(_) => (EventType::Fail, Value::Null, Some("held".into())),
        },
        (State::Mutex(holder), _) => match holder {
            Some(p) if *p == process => {
                *holder = None;
                ok(Value::Null)
            }
            _ => (EventType::Fail, Value::Null, Some("not-held".into())),
        },
    }
}

/// Applies a multi-register transaction: reads see `seen` (the state, or a stale one) overlaid with
/// the transaction's own earlier writes. Returns the completed transaction, reads filled in.
fn apply_txn(regs: &mut BTreeMap<i64, i64>, seen: &BTreeMap<i64, i64>, txn: &Value) -> Value {
    let mut own: BTreeMap<i64, i64> = BTreeMap::new();
    let micros = txn.as_list().unwrap_or_default();
    let done = micros
        .iter()
        .map(|m| {
            let parts = m.as_list().unwrap_or_default();
            let (f, k) = match parts {
                [f, k, _] => (f.as_str().unwrap_or(""), k.as_i64().unwrap_or(0)),
                _ => ("", 0),
            };
            if f == "write" {
                let v = parts[2].as_i64().unwrap_or(0);
                own.insert(k, v);
                regs.insert(k, v);
                m.clone()
            } else {
                let v = own.get(&k).or_else(|| seen.get(&k)).copied().unwrap_or(0);
                Value::List(vec![
                    Value::Str("read".into()),
                    Value::Int(k),
                    Value::Int(v),
                ])
            }
        })
        .collect();
    Value::List(done)
}
