//! The `convergence` checker: after the last fault heals, do the replicas agree on one ledger, and does
//! the system answer again?
//!
//! It follows the liveness phase of TigerBeetle's VOPR (once faults stop, the connected replicas must
//! converge) and Jepsen's practice of healing before final reads. Two claims, both pure functions of
//! the history:
//! - `divergent-replicas`: each node's own state, read directly after the final heal, is recorded in
//!   the history; if two readable nodes hold different ledgers in the last round of reads, the verdict
//!   names every node's state and what each lacks or has extra.
//! - `unavailable`: after the final heal, clients kept asking and no operation succeeded for longer than
//!   the allowed window.
//!
//! **Node-state events.** The controller records each read of a node as a `nemesis` `info` event with
//! `f = "node-state"` (nemesis events are not client operations, so every other checker ignores them)
//! and value `{"node":"n1","round":0,"balances":[…],"applied":[ids in apply order]}`, or
//! `{"node":"n1","round":0,"error":"…"}` when the node could not be read. Rounds number successive
//! polls: the controller may poll until the states agree or a deadline passes; the checker judges the
//! last round and reports in which round the nodes first agreed. A transactional store adds
//! `"store":{"<key>":value,…}` (journals and registers), compared key by key. Other keys (term,
//! commit index) are kept as evidence but not compared. [`node_state_value`] and [`node_state_error_value`] build them.
//!
//! **The final heal** is the nemesis event after which no fault is open: fault starts and stops are
//! paired by name (`start-partition`/`stop-partition`, `pause`/`resume`, `kill`/`restart`,
//! `start-delay`/`stop-delay`, `start-loss`/`stop-loss`); a `heal` event closes them all. If the
//! history ends with a fault still open, neither claim can be made and the verdict is `unknown`.
//!
//! **Unavailability**, precisely: starting at the final heal, a *stretch* of unanswered demand begins
//! when an operation is outstanding (or is invoked) and no later operation has yet completed `ok`; it
//! ends at the next `ok` completion, or when no operation has been outstanding for longer than
//! `idle_ns_max` (the clients stopped asking; the stretch ends where they stopped), or at the last
//! client event. A stretch longer than `unavailable_window_ns` is an `unavailable` anomaly. Pauses of
//! the clients therefore never count as unavailability of the system.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use verity_history::anomaly::{DIVERGENT_REPLICAS, UNAVAILABLE};
use verity_history::{Event, EventType, History, Process, Value};

use crate::{Anomaly, Budget, Checker, Verdict};

/// The `f` of a node-state event.
pub const NODE_STATE_F: &str = "node-state";
/// The `f` of an event that heals every fault at once.
pub const HEAL_F: &str = "heal";
/// Nemesis event names as (start, stop) pairs; the same names as the nemesis in verity-targets.
pub const FAULT_EVENT_PAIRS: [(&str, &str); 5] = [
    ("start-partition", "stop-partition"),
    ("pause", "resume"),
    ("kill", "restart"),
    ("start-delay", "stop-delay"),
    ("start-loss", "stop-loss"),
];
/// How many ids of a node's missing or extra transfers are shown as evidence.
const IDS_SHOWN_MAX: usize = 20;
/// Up to this many applied ids, a node's whole journal is shown as evidence.
const JOURNAL_SHOWN_MAX: usize = 200;
/// How many failed or timed-out completions are cited for an unavailable stretch.
const EVENTS_CITED_MAX: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvergenceConfig {
    /// The longest stretch of unanswered demand allowed after the final heal.
    pub unavailable_window_ns: u64,
    /// A pause of the clients longer than this ends a stretch of demand.
    pub idle_ns_max: u64,
    /// Whether replicas must agree on the order of applied transfers, not only on the set.
    pub compare_applied_order: bool,
}

impl Default for ConvergenceConfig {
    fn default() -> Self {
        ConvergenceConfig {
            unavailable_window_ns: 10_000_000_000,
            idle_ns_max: 1_000_000_000,
            compare_applied_order: true,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Convergence {
    pub config: ConvergenceConfig,
}

impl Convergence {
    pub fn new(config: ConvergenceConfig) -> Self {
        Convergence { config }
    }
}

/// The value of a node-state event for a node that was read.
pub fn node_state_value(node: &str, round: u64, balances: &[i64], applied: &[u64]) -> Value {
    Value::map([
        ("node", Value::from(node)),
        ("round", Value::Int(round.min(i64::MAX as u64) as i64)),
        ("balances", Value::int_list(balances.iter().copied())),
        (
            "applied",
            Value::List(
                applied
                    .iter()
                    .map(|id| Value::Int((*id).min(i64::MAX as u64) as i64))
                    .collect(),
            ),
        ),
    ])
}

/// The value of a node-state event for a node that could not be read.
pub fn node_state_error_value(node: &str, round: u64, error: &str) -> Value {
    Value::map([
        ("node", Value::from(node)),
        ("round", Value::Int(round.min(i64::MAX as u64) as i64)),
        ("error", Value::from(error)),
    ])
}

/// The value of a node-state event from what a target answered for one node: its state map (e.g.
/// `{"balances":[…],"applied":[…]}`) gains `node` and `round`; an error becomes an error value.
pub fn node_state_event_value(node: &str, round: u64, state: Result<&Value, &str>) -> Value {
    match state {
        Ok(Value::Map(m)) => {
            let mut m = m.clone();
            m.insert("node".to_string(), Value::from(node));
            m.insert(
                "round".to_string(),
                Value::Int(round.min(i64::MAX as u64) as i64),
            );
            Value::Map(m)
        }
        Ok(other) => node_state_error_value(node, round, &format!("not a state map: {other}")),
        Err(e) => node_state_error_value(node, round, e),
    }
}

/// Whether node states (values as a target answers them, `{"balances":[…],"applied":[…]}`) all hold
/// one ledger, judged as the checker judges it: for a controller polling until the nodes converge.
/// A state that is not a map with integer balances never agrees.
pub fn ledgers_agree(states: &[&Value], compare_applied_order: bool) -> bool {
    let mut round = Round::default();
    for (i, v) in states.iter().enumerate() {
        let Some(balances) = v.get("balances").and_then(Value::as_i64_list) else {
            return false;
        };
        let applied = v.get("applied").and_then(Value::as_i64_list);
        round.states.insert(
            format!("{i:09}"),
            NodeState {
                event: i,
                balances,
                applied,
                store: store_of(v),
            },
        );
    }
    let config = ConvergenceConfig {
        compare_applied_order,
        ..ConvergenceConfig::default()
    };
    agrees(&round, &config)
}

impl Checker for Convergence {
    fn name(&self) -> &'static str {
        "convergence"
    }

    fn check(&self, history: &History, _budget: &Budget) -> Verdict {
        let ev = &history.events;
        let mut verdict = Verdict::valid();
        let heal = match final_heal(ev) {
            Ok(h) => h,
            Err(open) => {
                return Verdict::unknown(format!(
                    "the history ends with faults still open ({}), so neither convergence nor availability after the heal can be judged",
                    open.join(", ")
                ))
            }
        };
        verdict.detail("final_heal_index", heal.map(|i| ev[i].index));
        check_replicas(ev, heal, &self.config, &mut verdict);
        match heal {
            Some(h) => check_availability(ev, h, &self.config, &mut verdict),
            None => verdict.detail(
                "availability",
                "skipped: the history has no fault and so no heal to measure from",
            ),
        }
        verdict
    }
}

fn is_nemesis(e: &Event) -> bool {
    e.process == Process::Nemesis
}

fn is_node_state(e: &Event) -> bool {
    is_nemesis(e) && e.f.as_str() == NODE_STATE_F
}

/// The position of the final heal: the last nemesis event that left no fault open. `Ok(None)` when no
/// fault ever started; `Err(open faults)` when some are still open at the end.
fn final_heal(ev: &[Event]) -> Result<Option<usize>, Vec<String>> {
    let mut open: BTreeMap<&str, u64> = BTreeMap::new();
    let mut heal = None;
    for (i, e) in ev.iter().enumerate() {
        if !is_nemesis(e) || is_node_state(e) {
            continue;
        }
        let f = e.f.as_str();
        let was_open = open.values().any(|c| *c > 0);
        if f == HEAL_F {
            open.clear();
        } else if let Some((start, _)) = FAULT_EVENT_PAIRS.iter().find(|(s, _)| *s == f) {
            *open.entry(start).or_insert(0) += 1;
        } else if let Some((start, _)) = FAULT_EVENT_PAIRS.iter().find(|(_, s)| *s == f) {
            let c = open.entry(start).or_insert(0);
            *c = c.saturating_sub(1);
        } else {
            continue; // a nemesis event this checker does not know: neither a fault nor a heal
        }
        let now_open = open.values().any(|c| *c > 0);
        if !now_open && (was_open || f == HEAL_F || heal.is_some()) {
            heal = Some(i);
        }
    }
    let still: Vec<String> = open
        .iter()
        .filter(|(_, c)| **c > 0)
        .map(|(f, c)| format!("{c}× {f}"))
        .collect();
    if still.is_empty() {
        Ok(heal)
    } else {
        Err(still)
    }
}

/// A node's store, key by key, each value in its canonical JSON text (maps are sorted, so equal
/// values have equal texts). An absent store is an empty one.
type Store = BTreeMap<String, String>;

fn store_of(v: &Value) -> Store {
    match v.get("store") {
        Some(Value::Map(m)) => m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        _ => Store::new(),
    }
}

/// One node's state as read.
#[derive(Debug, Clone, PartialEq)]
struct NodeState {
    event: usize,
    balances: Vec<i64>,
    applied: Option<Vec<i64>>,
    store: Store,
}

/// The comparable part of a state: what "one ledger" means.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LedgerKey {
    balances: Vec<i64>,
    applied: Option<Vec<i64>>,
    store: Store,
}

/// `with_applied` is false when some node of the round does not report its journal: then only balances
/// can be compared, and a missing journal is not itself a difference.
fn key_of(s: &NodeState, config: &ConvergenceConfig, with_applied: bool) -> LedgerKey {
    let mut applied = if with_applied {
        s.applied.clone()
    } else {
        None
    };
    if !config.compare_applied_order {
        if let Some(a) = &mut applied {
            a.sort_unstable();
        }
    }
    LedgerKey {
        balances: s.balances.clone(),
        applied,
        store: s.store.clone(),
    }
}

/// The node states of one round: the readable ones, and the errors of the others.
#[derive(Debug, Default)]
struct Round {
    states: BTreeMap<String, NodeState>,
    errors: BTreeMap<String, (usize, String)>,
}

/// Groups node-state events after the final heal by round; a later read of a node in the same round
/// replaces an earlier one.
fn rounds(ev: &[Event], heal: Option<usize>) -> BTreeMap<i64, Round> {
    let from = heal.map_or(0, |h| h + 1);
    let mut rounds: BTreeMap<i64, Round> = BTreeMap::new();
    for (i, e) in ev.iter().enumerate().skip(from) {
        if !is_node_state(e) {
            continue;
        }
        let node = e
            .value
            .get("node")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let round = e.value.get("round").and_then(Value::as_i64).unwrap_or(0);
        let r = rounds.entry(round).or_default();
        let balances = e.value.get("balances").and_then(Value::as_i64_list);
        let error = e
            .value
            .get("error")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        match (balances, error) {
            (Some(balances), None) => {
                let applied = e.value.get("applied").and_then(Value::as_i64_list);
                r.errors.remove(&node);
                r.states.insert(
                    node,
                    NodeState {
                        event: i,
                        balances,
                        applied,
                        store: store_of(&e.value),
                    },
                );
            }
            (_, error) => {
                let why = error.unwrap_or_else(|| {
                    "malformed node-state: no list of integer balances".to_string()
                });
                r.states.remove(&node);
                r.errors.insert(node, (i, why));
            }
        }
    }
    rounds
}

impl Round {
    fn with_applied(&self) -> bool {
        self.states.values().all(|s| s.applied.is_some())
    }
}

/// Whether the readable nodes of a round all hold one ledger.
fn agrees(round: &Round, config: &ConvergenceConfig) -> bool {
    let with_applied = round.with_applied();
    let keys: BTreeSet<LedgerKey> = round
        .states
        .values()
        .map(|s| key_of(s, config, with_applied))
        .collect();
    keys.len() <= 1
}

fn check_replicas(
    ev: &[Event],
    heal: Option<usize>,
    config: &ConvergenceConfig,
    verdict: &mut Verdict,
) {
    let rounds = rounds(ev, heal);
    verdict.detail("rounds", rounds.len());
    let Some((last_round, last)) = rounds.iter().next_back() else {
        verdict.set_unknown(
            "no node-state events after the final heal: the replicas' own states were never read",
        );
        return;
    };
    let first_agreeing = rounds
        .iter()
        .find(|(_, r)| r.errors.is_empty() && !r.states.is_empty() && agrees(r, config))
        .map(|(k, _)| *k);
    verdict.detail("converged_round", first_agreeing);
    verdict.detail("nodes_read", last.states.keys().collect::<Vec<_>>());
    if !agrees(last, config) {
        verdict.push(divergence(ev, *last_round, last, config));
        return;
    }
    if !last.errors.is_empty() {
        let why: Vec<String> = last
            .errors
            .iter()
            .map(|(n, (_, e))| format!("{n}: {e}"))
            .collect();
        verdict.set_unknown(format!(
            "the readable nodes agree, but some nodes could not be read after the final heal ({})",
            why.join("; ")
        ));
    } else if last.states.len() < 2 {
        verdict.detail("replicas", "only one node was read: nothing to compare");
    }
}

/// The anomaly for a round whose nodes disagree. The reference ledger is the one most nodes hold (ties
/// go to the lowest node name); every node is shown against it.
fn divergence(ev: &[Event], round: i64, r: &Round, config: &ConvergenceConfig) -> Anomaly {
    let with_applied = r.with_applied();
    let mut groups: BTreeMap<LedgerKey, Vec<&str>> = BTreeMap::new();
    for (node, s) in &r.states {
        groups
            .entry(key_of(s, config, with_applied))
            .or_default()
            .push(node);
    }
    let (reference, holders) = groups
        .iter()
        .max_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.1[0].cmp(a.1[0])))
        .expect("a disagreeing round has at least two groups");
    let mut observed = serde_json::Map::new();
    for (node, s) in &r.states {
        observed.insert(
            node.clone(),
            describe(s, reference, config.compare_applied_order),
        );
    }
    for (node, (i, e)) in &r.errors {
        observed.insert(node.clone(), json!({"error": e, "event": ev[*i].index}));
    }
    let others: Vec<String> = groups
        .iter()
        .filter(|(k, _)| *k != reference)
        .map(|(_, nodes)| nodes.join(","))
        .collect();
    let mut events: Vec<u64> = r.states.values().map(|s| ev[s.event].index).collect();
    events.sort_unstable();
    Anomaly {
        name: DIVERGENT_REPLICAS.to_string(),
        message: format!(
            "after the final heal (read round {round}) the replicas hold {} different ledgers: {} agree, {} differ",
            groups.len(),
            holders.join(","),
            others.join(" and ")
        ),
        events,
        expected: json!({"nodes": holders, "balances": reference.balances, "applied_count": reference.applied.as_ref().map(Vec::len)}),
        observed: serde_json::Value::Object(observed),
    }
}

/// A node's state, and how it differs from the reference ledger.
fn describe(s: &NodeState, reference: &LedgerKey, ordered: bool) -> serde_json::Value {
    let mut d = json!({"balances": s.balances});
    if let Some(applied) = &s.applied {
        d["applied_count"] = json!(applied.len());
        if applied.len() <= JOURNAL_SHOWN_MAX {
            d["applied"] = json!(applied);
        }
        if let Some(reference) = &reference.applied {
            let mine: BTreeSet<i64> = applied.iter().copied().collect();
            let theirs: BTreeSet<i64> = reference.iter().copied().collect();
            let missing: Vec<i64> = theirs
                .difference(&mine)
                .take(IDS_SHOWN_MAX)
                .copied()
                .collect();
            let extra: Vec<i64> = mine
                .difference(&theirs)
                .take(IDS_SHOWN_MAX)
                .copied()
                .collect();
            d["missing"] = json!(missing);
            d["extra"] = json!(extra);
            d["missing_count"] = json!(theirs.difference(&mine).count());
            d["extra_count"] = json!(mine.difference(&theirs).count());
            let first_difference = applied
                .iter()
                .zip(reference.iter())
                .position(|(a, b)| a != b);
            let first_difference = first_difference.or_else(|| {
                (applied.len() != reference.len()).then(|| applied.len().min(reference.len()))
            });
            if ordered {
                d["first_difference_at"] = json!(first_difference);
            }
        }
    }
    if !s.store.is_empty() || !reference.store.is_empty() {
        let differing: Vec<&String> = s
            .store
            .keys()
            .chain(reference.store.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| s.store.get(*k) != reference.store.get(*k))
            .collect();
        d["store_keys"] = json!(s.store.len());
        d["differing_keys_count"] = json!(differing.len());
        let shown: serde_json::Map<String, serde_json::Value> = differing
            .into_iter()
            .take(IDS_SHOWN_MAX)
            .map(|k| {
                let text = |st: &Store| st.get(k).cloned().unwrap_or_else(|| "absent".into());
                (
                    k.clone(),
                    json!({"here": text(&s.store), "reference": text(&reference.store)}),
                )
            })
            .collect();
        d["differing_keys"] = serde_json::Value::Object(shown);
    }
    d
}

/// A stretch of unanswered demand: from `from_ns` (at event `from`) to `to_ns` (at event `to`).
struct Stretch {
    from: usize,
    from_ns: u64,
    to: usize,
    to_ns: u64,
    unanswered: Vec<usize>,
}

fn check_availability(
    ev: &[Event],
    heal: usize,
    config: &ConvergenceConfig,
    verdict: &mut Verdict,
) {
    let stretches = demand_stretches(ev, heal, config.idle_ns_max);
    let longest = stretches
        .iter()
        .map(|s| s.to_ns - s.from_ns)
        .max()
        .unwrap_or(0);
    verdict.detail("longest_unanswered_after_heal_ms", longest / 1_000_000);
    verdict.detail(
        "unavailable_window_ms",
        config.unavailable_window_ns / 1_000_000,
    );
    for s in stretches {
        let gap = s.to_ns - s.from_ns;
        if gap <= config.unavailable_window_ns {
            continue;
        }
        let mut events = vec![ev[s.from].index];
        events.extend(
            s.unanswered
                .iter()
                .take(EVENTS_CITED_MAX)
                .map(|i| ev[*i].index),
        );
        events.push(ev[s.to].index);
        events.sort_unstable();
        events.dedup();
        verdict.push(Anomaly {
            name: UNAVAILABLE.to_string(),
            message: format!(
                "after the final heal no operation succeeded for {} ms (allowed: {} ms) while clients were asking; {} attempts failed or timed out meanwhile",
                gap / 1_000_000,
                config.unavailable_window_ns / 1_000_000,
                s.unanswered.len()
            ),
            events,
            expected: json!({"window_ms": config.unavailable_window_ns / 1_000_000}),
            observed: json!({"from_ns": s.from_ns, "to_ns": s.to_ns, "unanswered": s.unanswered.len()}),
        });
    }
}

/// Every stretch of unanswered demand after the heal at `heal` (see the module docs). Times are made
/// non-decreasing in history order, so a recorder's small reorderings cannot make a negative gap.
fn demand_stretches(ev: &[Event], heal: usize, idle_ns_max: u64) -> Vec<Stretch> {
    let mut outstanding: u64 = 0;
    let mut clock: u64 = 0;
    let mut out = Vec::new();
    // (start event, start time, unanswered completions) of the current stretch.
    let mut demand: Option<(usize, u64, Vec<usize>)> = None;
    let mut idle_since: Option<(usize, u64)> = None;
    let mut last_client: Option<(usize, u64)> = None;
    for (i, e) in ev.iter().enumerate() {
        clock = clock.max(e.time_ns);
        if i == heal && outstanding > 0 {
            demand = Some((i, clock, Vec::new()));
        }
        if !e.is_client() {
            continue;
        }
        let after = i > heal;
        if after {
            last_client = Some((i, clock));
        }
        match e.kind {
            EventType::Invoke => {
                outstanding += 1;
                if !after {
                    continue;
                }
                if let Some((j, t)) = idle_since.take() {
                    if clock - t > idle_ns_max {
                        close(&mut demand, j, t, &mut out);
                    }
                }
                if demand.is_none() {
                    demand = Some((i, clock, Vec::new()));
                }
            }
            kind => {
                outstanding = outstanding.saturating_sub(1);
                if !after {
                    continue;
                }
                if kind == EventType::Ok {
                    close(&mut demand, i, clock, &mut out);
                    idle_since = None;
                    if outstanding > 0 {
                        demand = Some((i, clock, Vec::new()));
                    }
                } else {
                    if let Some((_, _, unanswered)) = &mut demand {
                        unanswered.push(i);
                    }
                    if outstanding == 0 && demand.is_some() {
                        idle_since = Some((i, clock));
                    }
                }
            }
        }
    }
    let end = idle_since.or(last_client);
    if let Some((j, t)) = end {
        close(&mut demand, j, t, &mut out);
    }
    out
}

fn close(
    demand: &mut Option<(usize, u64, Vec<usize>)>,
    to: usize,
    to_ns: u64,
    out: &mut Vec<Stretch>,
) {
    if let Some((from, from_ns, unanswered)) = demand.take() {
        out.push(Stretch {
            from,
            from_ns,
            to,
            to_ns,
            unanswered,
        });
    }
}
