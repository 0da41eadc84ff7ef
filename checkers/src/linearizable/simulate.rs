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
    /// history opens with a setup op (verity's format); without, with a read (Jepsen's). With
    /// `journal`, the history ends as verity's ledger runs do: a final read (`{"final": true}`)
    /// that returns, beside the balances, the journal of applied transfer ids in the order they
    /// took effect.
    Bank {
        accounts: u32,
        initial: i64,
        max_transfer: i64,
        setup: bool,
        journal: bool,
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
                journal: false,
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
    /// The bank's applied transfer ids, in the order they took effect.
    journal: Vec<i64>,
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
            journal: Vec::new(),
        }
    }

    fn emit(&mut self, process: u64, kind: EventType, f: F, value: Value, error: Option<String>) {
        push_event(&mut self.events, process, kind, f, value, error);
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

    /// A bank history ends with a final read of every balance, after everything completed (and,
    /// with a journal, of the applied ids).
    fn closing(&mut self, process: &[u64]) {
        if let SimObject::Bank { journal, .. } = self.config.object {
            let p = process[0];
            if journal {
                let invoke = Value::map([("final", Value::Bool(true))]);
                self.emit(p, EventType::Invoke, F::Read, invoke, None);
                let State::Bank(b) = &self.state else {
                    unreachable!("a bank's state")
                };
                let value = Value::map([
                    ("balances", Value::int_list(b.iter().copied())),
                    ("applied", Value::int_list(self.journal.iter().copied())),
                ]);
                self.emit(p, EventType::Ok, F::Read, value, None);
            } else {
                self.emit(p, EventType::Invoke, F::Read, Value::Null, None);
                let balances = self.balances();
                self.emit(p, EventType::Ok, F::Read, balances, None);
            }
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
        if let (F::Transfer, EventType::Ok, Some(t)) = (f, result.0, value.as_transfer()) {
            self.journal.push(t.id as i64);
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

/// A bug the Jepsen-format bank simulator can plant; each is constructed so that the history is
/// certainly not linearizable, whatever the timed-out transfers did (see [`jepsen_bank`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankBug {
    None,
    /// One transfer writes both balances from values read when it was invoked, overwriting a
    /// concurrent change: the total changes, and the final read shows it.
    LostUpdate,
    /// One transfer is applied although its source is short; the next operation applied is a read,
    /// which shows the negative balance.
    Overdraft,
    /// One read returns the balances from before the last transfer touching account 0, although that
    /// transfer completed before the read was invoked.
    StaleRead,
}

/// A bank history in Jepsen's format: no setup and no transfer ids — a first read shows the
/// initial balances, transfers are `{from, to, amount}`, reads return every balance, a final read
/// ends it. Half the operations are transfers; `info_rate` is the fraction of all *operations* that
/// time out (so twice that of the transfers; half of them after taking effect, the others later or
/// never).
#[derive(Debug, Clone, PartialEq)]
pub struct JepsenBankConfig {
    pub accounts: u32,
    pub initial: i64,
    pub max_transfer: i64,
    pub processes: usize,
    /// How many operations are invoked (about twice as many events).
    pub ops: usize,
    pub info_rate: f64,
    pub bug: BankBug,
    pub seed: u64,
}

/// Simulates a bank as [`JepsenBankConfig`] says. Certainty of the bugs:
/// - lost update: the bug is planted only where it changes the total; no set of transfers changes
///   the total, and the final read (after every operation completed) shows the new one;
/// - overdraft: no transfer takes a balance below zero from non-negative balances, and the read
///   applied right after shows the negative one;
/// - stale read: transfers touching account 0 never time out, and none is in flight during the
///   stale read, so account 0 holds exactly what the transfers completed before the read left in
///   it — which the stale read does not show.
pub fn jepsen_bank(config: &JepsenBankConfig) -> History {
    jepsen_bank_planted(config).0
}

/// [`jepsen_bank`], and whether the bug was planted (always true for [`BankBug::None`]): a short
/// history may end before the chance came.
pub fn jepsen_bank_planted(config: &JepsenBankConfig) -> (History, bool) {
    let sim = JepsenBank::new(config);
    sim.run()
}

struct JepsenBank<'a> {
    config: &'a JepsenBankConfig,
    rng: ChaCha8Rng,
    balances: Vec<i64>,
    events: Vec<Event>,
    /// The bug is still to be planted.
    bug_armed: bool,
    /// After an overdraft: nothing but a read may be applied until one is.
    witness_due: bool,
    /// A stale read is in flight: transfers touching account 0 are not invoked.
    stale_in_flight: bool,
    /// The balances before the last transfer touching account 0 was applied.
    before_last_zero: Option<Vec<i64>>,
    /// Transfers touching account 0 invoked and not completed (they never time out).
    zero_in_flight: usize,
}

#[derive(Debug, Clone)]
struct BankOpInFlight {
    transfer: Option<(u32, u32, i64)>,
    /// Balances when it was invoked (for the lost update).
    seen_at_invoke: Vec<i64>,
    result: Option<(EventType, Value, Option<String>)>,
    /// Some(before) when it will time out; before = ahead of taking effect.
    timeout: Option<bool>,
    stale: bool,
}

impl<'a> JepsenBank<'a> {
    fn new(config: &'a JepsenBankConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let balances = (0..config.accounts.max(2))
            .map(|_| rng.gen_range(config.initial / 2..=config.initial + config.initial / 2))
            .collect();
        JepsenBank {
            config,
            rng,
            balances,
            events: Vec::new(),
            bug_armed: config.bug != BankBug::None,
            witness_due: false,
            stale_in_flight: false,
            before_last_zero: None,
            zero_in_flight: 0,
        }
    }

    fn emit(&mut self, process: u64, kind: EventType, f: F, value: Value, error: Option<String>) {
        push_event(&mut self.events, process, kind, f, value, error);
    }

    fn read_value(b: &[i64]) -> Value {
        Value::map([("balances", Value::int_list(b.iter().copied()))])
    }

    fn transfer_value(from: u32, to: u32, amount: i64) -> Value {
        Value::map([
            ("from", Value::Int(i64::from(from))),
            ("to", Value::Int(i64::from(to))),
            ("amount", Value::Int(amount)),
        ])
    }

    /// The bug may be planted once the history is a third through.
    fn bug_time(&self, invoked: usize) -> bool {
        self.bug_armed && invoked * 3 >= self.config.ops
    }

    fn run(mut self) -> (History, bool) {
        let p0 = 0u64;
        let opening = Self::read_value(&self.balances);
        self.emit(p0, EventType::Invoke, F::Read, Value::Null, None);
        self.emit(p0, EventType::Ok, F::Read, opening, None);
        let n = self.config.processes.max(1);
        let mut process: Vec<u64> = (0..n as u64).collect();
        let mut in_flight: Vec<Option<BankOpInFlight>> = vec![None; n];
        let mut zombies: Vec<(u32, u32, i64)> = Vec::new();
        let mut invoked = 0usize;
        let step_max = self.config.ops.saturating_mul(16 * n) + 1_000;
        for _ in 0..step_max {
            if invoked >= self.config.ops && in_flight.iter().all(Option::is_none) {
                break;
            }
            if !zombies.is_empty() && !self.witness_due && self.rng.gen_bool(ZOMBIE_RESOLVE) {
                let (f, t, a) = zombies.swap_remove(self.rng.gen_range(0..zombies.len()));
                if self.rng.gen_bool(0.5) && self.balances[f as usize] >= a {
                    self.balances[f as usize] -= a;
                    self.balances[t as usize] += a;
                }
            }
            let c = self.rng.gen_range(0..n);
            match in_flight[c].take() {
                None if invoked < self.config.ops => {
                    let op = self.invoke(invoked);
                    let value = match op.transfer {
                        Some((f, t, a)) => Self::transfer_value(f, t, a),
                        None => Value::Null,
                    };
                    let f = if op.transfer.is_some() {
                        F::Transfer
                    } else {
                        F::Read
                    };
                    self.emit(process[c], EventType::Invoke, f, value, None);
                    invoked += 1;
                    in_flight[c] = Some(op);
                }
                None => {}
                Some(mut op) => {
                    let timeout = op
                        .timeout
                        .is_some_and(|before| before || op.result.is_some());
                    if op.result.is_none() && !timeout {
                        if self.witness_due && op.transfer.is_some() {
                            in_flight[c] = Some(op); // waits until the overdraft is seen
                            continue;
                        }
                        op.result = Some(self.apply(&mut op, invoked));
                        in_flight[c] = Some(op);
                    } else if timeout {
                        let (f, t, a) = op.transfer.expect("only transfers time out");
                        self.emit(
                            process[c],
                            EventType::Info,
                            F::Transfer,
                            Self::transfer_value(f, t, a),
                            Some("timeout".into()),
                        );
                        if op.result.is_none() {
                            zombies.push((f, t, a));
                        }
                        process[c] += n as u64;
                    } else {
                        let (kind, value, error) = op.result.take().expect("applied");
                        let f = if op.transfer.is_some() {
                            F::Transfer
                        } else {
                            F::Read
                        };
                        if op.stale {
                            self.stale_in_flight = false;
                        }
                        if op.transfer.is_some_and(|(f, t, _)| f == 0 || t == 0) {
                            self.zero_in_flight -= 1;
                        }
                        self.emit(process[c], kind, f, value, error);
                    }
                }
            }
        }
        // A process of its own: a client's last operation may still be open (pending).
        let last = process.iter().max().copied().unwrap_or(0) + 1;
        let closing = Self::read_value(&self.balances);
        self.emit(last, EventType::Invoke, F::Read, Value::Null, None);
        self.emit(last, EventType::Ok, F::Read, closing, None);
        (History::new(self.events), !self.bug_armed)
    }

    fn invoke(&mut self, invoked: usize) -> BankOpInFlight {
        let accounts = self.config.accounts.max(2);
        let mut op = BankOpInFlight {
            transfer: None,
            seen_at_invoke: self.balances.clone(),
            result: None,
            timeout: None,
            stale: false,
        };
        let protect_zero = self.config.bug == BankBug::StaleRead;
        if self.rng.gen_bool(0.5) {
            // A stale read needs account 0 quiet for its whole interval.
            if protect_zero
                && self.bug_time(invoked)
                && !self.stale_in_flight
                && self.zero_in_flight == 0
            {
                if let Some(before) = self.before_last_zero.clone() {
                    if before != self.balances {
                        op.stale = true;
                        self.stale_in_flight = true;
                    }
                }
            }
            return op;
        }
        let avoid_zero = protect_zero && self.stale_in_flight;
        let low = u32::from(avoid_zero);
        if accounts - low < 2 {
            return op; // a read instead
        }
        let from = self.rng.gen_range(low..accounts);
        let mut to = self.rng.gen_range(low..accounts - 1);
        if to >= from {
            to += 1;
        }
        let mut amount = self.rng.gen_range(1..=self.config.max_transfer.max(1));
        if self.config.bug == BankBug::Overdraft && self.bug_time(invoked) {
            amount = amount.max(self.balances[from as usize] + 1); // a chance to overdraw
        }
        op.transfer = Some((from, to, amount));
        let touches_zero = from == 0 || to == 0;
        if touches_zero {
            self.zero_in_flight += 1;
        }
        if self.config.info_rate > 0.0
            && !(protect_zero && touches_zero)
            && self.rng.gen_bool((2.0 * self.config.info_rate).min(1.0))
        {
            op.timeout = Some(self.rng.gen_bool(0.5));
        }
        op
    }

    /// Applies one operation now; returns its completion.
    fn apply(
        &mut self,
        op: &mut BankOpInFlight,
        invoked: usize,
    ) -> (EventType, Value, Option<String>) {
        let Some((f, t, a)) = op.transfer else {
            if op.stale {
                self.bug_armed = false;
                let stale = self
                    .before_last_zero
                    .clone()
                    .expect("a stale read has its state");
                return (EventType::Ok, Self::read_value(&stale), None);
            }
            self.witness_due = false;
            return (EventType::Ok, Self::read_value(&self.balances), None);
        };
        let (fu, tu) = (f as usize, t as usize);
        let value = Self::transfer_value(f, t, a);
        let plant = self.bug_time(invoked) && op.timeout.is_none();
        if plant && self.config.bug == BankBug::LostUpdate {
            // Read-modify-write from the balances seen at invocation: a lost update when either
            // account changed since — planted only then, so the total certainly changes.
            let (sf, st) = (op.seen_at_invoke[fu], op.seen_at_invoke[tu]);
            if sf >= a && sf + st != self.balances[fu] + self.balances[tu] {
                self.balances[fu] = sf - a;
                self.balances[tu] = st + a;
                self.bug_armed = false;
                return (EventType::Ok, value, None);
            }
        }
        if self.balances[fu] < a {
            if plant && self.config.bug == BankBug::Overdraft {
                self.balances[fu] -= a;
                self.balances[tu] += a;
                self.bug_armed = false;
                self.witness_due = true;
                return (EventType::Ok, value, None);
            }
            return (
                EventType::Fail,
                value,
                Some(super::models::bank::INSUFFICIENT_FUNDS.into()),
            );
        }
        if f == 0 || t == 0 {
            self.before_last_zero = Some(self.balances.clone());
        }
        self.balances[fu] -= a;
        self.balances[tu] += a;
        (EventType::Ok, value, None)
    }
}

/// Appends a client event, numbered in order, one microsecond after the one before.
fn push_event(
    events: &mut Vec<Event>,
    process: u64,
    kind: EventType,
    f: F,
    value: Value,
    error: Option<String>,
) {
    let index = events.len() as u64;
    events.push(Event {
        index,
        time_ns: index * 1_000,
        process: Process::Client(process),
        kind,
        f,
        value,
        error,
    });
}
