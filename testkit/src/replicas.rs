//! A replicated ledger as the convergence checker sees it: clients whose operations succeed unless a
//! fault is active, a nemesis whose faults come and go and all heal at the end, and the nodes' own
//! reports of their ledgers; plus the mutations that make replicas diverge or the system stay
//! unavailable after the heal.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_checkers::convergence::{node_state_error_value, node_state_value, NODE_STATE_F};
use verity_history::{Event, EventType, History, Process, Value, F};

/// One millisecond in nanoseconds.
pub const MS: u64 = 1_000_000;

/// A history under construction; every event is stamped with an explicit time in ms.
#[derive(Default)]
pub struct H {
    pub events: Vec<Event>,
}

impl H {
    pub fn push(
        &mut self,
        t_ms: u64,
        process: Process,
        kind: EventType,
        f: &str,
        value: Value,
    ) -> &mut Self {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time_ns: t_ms * MS,
            process,
            kind,
            f: F::from_name(f),
            value,
            error: None,
        });
        self
    }
    pub fn invoke(&mut self, t: u64, p: u64) -> &mut Self {
        self.push(
            t,
            Process::Client(p),
            EventType::Invoke,
            "read",
            Value::Null,
        )
    }
    pub fn done(&mut self, t: u64, p: u64, kind: EventType) -> &mut Self {
        self.push(t, Process::Client(p), kind, "read", Value::Null)
    }
    pub fn ok(&mut self, t: u64, p: u64) -> &mut Self {
        self.done(t, p, EventType::Ok)
    }
    pub fn fail(&mut self, t: u64, p: u64) -> &mut Self {
        self.done(t, p, EventType::Fail)
    }
    pub fn nemesis(&mut self, t: u64, f: &str) -> &mut Self {
        self.push(t, Process::Nemesis, EventType::Info, f, Value::Null)
    }
    pub fn state(
        &mut self,
        t: u64,
        node: &str,
        round: u64,
        balances: &[i64],
        applied: &[u64],
    ) -> &mut Self {
        let v = node_state_value(node, round, balances, applied);
        self.push(t, Process::Nemesis, EventType::Info, NODE_STATE_F, v)
    }
    pub fn unreadable(&mut self, t: u64, node: &str, round: u64) -> &mut Self {
        let v = node_state_error_value(node, round, "connection refused");
        self.push(t, Process::Nemesis, EventType::Info, NODE_STATE_F, v)
    }
    pub fn history(&self) -> History {
        History::new(self.events.clone())
    }
}

/// Clients against a correct replicated system: ops succeed unless a fault is active, faults come and
/// go, every fault heals at the end, and the nodes report one ledger.
pub fn simulate(seed: u64, steps: usize, nodes: usize) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut h = H::default();
    let mut t = 0;
    let mut busy = [false; 3];
    let mut process = [0u64, 1, 2];
    let mut next_process = 3;
    let mut fault: Option<(&str, &str)> = None;
    let pairs = verity_checkers::convergence::FAULT_EVENT_PAIRS;
    let mut applied: Vec<u64> = Vec::new();
    for _ in 0..steps {
        t += rng.gen_range(1..100);
        if rng.gen_bool(0.05) {
            match fault.take() {
                Some((_, stop)) => {
                    h.nemesis(t, stop);
                }
                None => {
                    let pair = pairs[rng.gen_range(0..pairs.len())];
                    h.nemesis(t, pair.0);
                    fault = Some(pair);
                }
            }
            continue;
        }
        let w = rng.gen_range(0..3);
        if !busy[w] {
            h.invoke(t, process[w]);
            busy[w] = true;
            continue;
        }
        busy[w] = false;
        if fault.is_none() {
            h.ok(t, process[w]);
            applied.push(applied.len() as u64);
        } else if rng.gen_bool(0.5) {
            h.fail(t, process[w]);
        } else {
            h.done(t, process[w], EventType::Info);
            process[w] = next_process;
            next_process += 1;
        }
    }
    if let Some((_, stop)) = fault {
        t += 1;
        h.nemesis(t, stop);
    }
    for (w, b) in busy.iter().enumerate() {
        if *b {
            t += 1;
            h.ok(t, process[w]);
        }
    }
    let balances = [applied.len() as i64, 100 - applied.len() as i64];
    for round in 0..rng.gen_range(1..3) {
        for n in 1..=nodes {
            h.state(t + 10 + round, &format!("n{n}"), round, &balances, &applied);
        }
    }
    h.history()
}

/// Changes one node's state in the last round: a balance, a missing id, or an extra id.
pub fn diverge(h: &mut History, how: u8) -> bool {
    let Some(e) = h
        .events
        .iter_mut()
        .rev()
        .find(|e| e.f.as_str() == NODE_STATE_F)
    else {
        return false;
    };
    let Value::Map(m) = &mut e.value else {
        return false;
    };
    match how {
        0 => {
            if let Some(Value::List(b)) = m.get_mut("balances") {
                b[0] = Value::Int(b[0].as_i64().unwrap_or(0) + 1);
            }
        }
        1 => match m.get_mut("applied") {
            Some(Value::List(a)) if !a.is_empty() => {
                a.pop();
            }
            _ => return false,
        },
        _ => {
            if let Some(Value::List(a)) = m.get_mut("applied") {
                a.push(Value::Int(1_000_000));
            }
        }
    }
    true
}

/// Makes the system unavailable after the final heal: time after the last fault event stretches by
/// 20 s and every success after it but the last becomes a failure, so that clients keep asking and
/// nothing succeeds for longer than the window. False when too few operations follow the heal.
pub fn make_unavailable(h: &mut History) -> bool {
    let Some(heal) = h
        .events
        .iter()
        .rposition(|e| e.process == Process::Nemesis && e.f.as_str() != NODE_STATE_F)
    else {
        return false;
    };
    let client_after: Vec<usize> = (heal + 1..h.events.len())
        .filter(|i| h.events[*i].is_client())
        .collect();
    if client_after.len() < 4 {
        return false;
    }
    let Some(&last_ok) = client_after
        .iter()
        .rev()
        .find(|i| h.events[**i].kind == EventType::Ok)
    else {
        return false;
    };
    for &i in &client_after {
        if h.events[i].kind == EventType::Ok && i != last_ok {
            h.events[i].kind = EventType::Fail;
        }
    }
    for e in h.events.iter_mut().skip(last_ok) {
        e.time_ns += 20_000 * MS;
    }
    true
}
