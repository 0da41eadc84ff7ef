//! The report's chart data, embedded once as compact columnar JSON: every operation as a few small
//! integers (delta-encoded start, duration, lane, outcome, operation), the nemesis intervals, and
//! series pre-aggregated into time buckets (throughput, info rate, latency quantiles, bank totals),
//! so that the page draws a million operations without a DOM node per operation.

use std::collections::BTreeMap;

use serde::Serialize;
use verity_history::{EventType, History, OpOutcome, Process, Value};

use super::Input;

/// Time buckets of the pre-aggregated series: enough for a smooth line on a wide screen, and
/// about twenty operations per bucket on short histories, so that a quantile means something.
const BUCKETS_MAX: usize = 600;
const BUCKETS_MIN: usize = 40;
const OPS_PER_BUCKET: usize = 20;
/// Below this many operations every operation carries its value for the tooltip; above it only
/// the operations an anomaly names do (the size of the file is the budget).
const VALUES_FOR_ALL_BELOW: usize = 20_000;
/// At most this many bank reads are drawn account by account (evenly spread in time); totals are
/// kept per bucket as min and max, so no wrong total is sampled away.
const BALANCE_SAMPLES: usize = 1_500;

#[derive(Serialize)]
pub struct Charts {
    /// The span of the history, in microseconds from its first event.
    pub span_us: u64,
    /// "time", or "events" for a history without times (each event then counts as a millisecond).
    pub clock: &'static str,
    pub lanes: Vec<String>,
    pub f_names: Vec<String>,
    pub ops: OpColumns,
    /// Operation number → its value and error, for the tooltip.
    pub text: BTreeMap<usize, String>,
    pub bands: Vec<Band>,
    pub nodes: Vec<NodeLane>,
    pub buckets: Buckets,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balances: Option<Balances>,
    /// Anomaly id → the operation numbers it names, for highlighting.
    pub anomaly_ops: BTreeMap<String, Vec<usize>>,
}

/// One entry per operation, in invocation order.
#[derive(Serialize, Default)]
pub struct OpColumns {
    /// Start in µs, each relative to the previous operation's start.
    pub s: Vec<u64>,
    /// Duration in µs; -1 while pending (drawn to the end).
    pub d: Vec<i64>,
    pub l: Vec<u32>,
    /// 0 ok, 1 fail, 2 info, 3 pending.
    pub k: Vec<u8>,
    pub f: Vec<u16>,
    /// The invocation's event index, relative to the previous operation's.
    pub i: Vec<i64>,
}

#[derive(Serialize)]
pub struct Band {
    pub s: u64,
    pub e: u64,
    pub kind: String,
    pub label: String,
}

#[derive(Serialize)]
pub struct NodeLane {
    pub name: String,
    /// (start µs, end µs, kind: killed | paused | cut | slow).
    pub down: Vec<(u64, u64, String)>,
}

#[derive(Serialize)]
pub struct Buckets {
    pub width_us: u64,
    pub ok: Vec<u32>,
    pub fail: Vec<u32>,
    pub info: Vec<u32>,
    /// Per operation name: p50, p95, p99 latency in µs per bucket (-1: no completed operation).
    pub latency: BTreeMap<String, [Vec<i64>; 3]>,
}

#[derive(Serialize)]
pub struct Balances {
    pub t: Vec<u64>,
    pub accounts: Vec<Vec<i64>>,
    pub total_min: Vec<Option<i64>>,
    pub total_max: Vec<Option<i64>>,
    pub expected_total: Option<i64>,
}

/// The balances a read returned: `{"balances": […]}`, a plain list, or Jepsen's map of account to
/// balance.
pub fn balances_of(v: &Value) -> Option<Vec<i64>> {
    if let Some(b) = v.get("balances") {
        return b.as_i64_list();
    }
    if let Some(l) = v.as_i64_list() {
        return Some(l);
    }
    if let Value::Map(m) = v {
        let mut pairs: Vec<(i64, i64)> = m
            .iter()
            .map(|(k, x)| Some((k.parse().ok()?, x.as_i64()?)))
            .collect::<Option<_>>()?;
        if pairs.is_empty() {
            return None;
        }
        pairs.sort_unstable();
        return Some(pairs.into_iter().map(|(_, b)| b).collect());
    }
    None
}

pub fn build(input: &Input, anomaly_events: &BTreeMap<String, Vec<u64>>) -> Charts {
    let h = input.history;
    let us = |pos: usize| input.time_ns_at(pos) / 1_000;
    let span_us = (0..h.events.len()).map(us).max().unwrap_or(0).max(1);

    let (lanes, lane_of) = lanes(input);
    let mut f_names: Vec<String> = Vec::new();
    let mut f_index: BTreeMap<String, u16> = BTreeMap::new();
    let mut cols = OpColumns::default();
    let (mut prev_s, mut prev_i) = (0u64, 0i64);
    let buckets = (input.ops.len() / OPS_PER_BUCKET).clamp(BUCKETS_MIN, BUCKETS_MAX);
    let width_us = span_us.div_ceil(buckets as u64).max(1);
    let bucket = |t: u64| ((t / width_us) as usize).min(buckets - 1);
    let mut ok = vec![0u32; buckets];
    let mut fail = vec![0u32; buckets];
    let mut info = vec![0u32; buckets];
    let mut lat: BTreeMap<u16, Vec<Vec<u32>>> = BTreeMap::new();
    let mut text = BTreeMap::new();
    let all_values = input.ops.len() < VALUES_FOR_ALL_BELOW;
    let mut reads: Vec<(u64, Vec<i64>)> = Vec::new();

    for (n, op) in input.ops.iter().enumerate() {
        let inv = &h.events[op.invoke];
        let f = *f_index
            .entry(inv.f.as_str().to_string())
            .or_insert_with(|| {
                f_names.push(inv.f.as_str().to_string());
                (f_names.len() - 1) as u16
            });
        let s = us(op.invoke);
        let comp = op.completion.map(|c| &h.events[c]);
        let d = op.completion.map_or(-1, |c| us(c).saturating_sub(s) as i64);
        cols.s.push(s.saturating_sub(prev_s));
        prev_s = s;
        cols.d.push(d);
        cols.l.push(lane_of(inv.process));
        cols.k.push(match op.outcome {
            OpOutcome::Ok => 0,
            OpOutcome::Fail => 1,
            OpOutcome::Info => 2,
            OpOutcome::Pending => 3,
        });
        cols.f.push(f);
        cols.i.push(inv.index as i64 - prev_i);
        prev_i = inv.index as i64;
        if let (Some(c), Some(cpos)) = (comp, op.completion) {
            let b = bucket(us(cpos));
            match c.kind {
                EventType::Ok => ok[b] += 1,
                EventType::Fail => fail[b] += 1,
                _ => info[b] += 1,
            }
            if c.kind == EventType::Ok {
                lat.entry(f).or_insert_with(|| vec![Vec::new(); buckets])[bucket(s)]
                    .push(d.clamp(0, u32::MAX as i64) as u32);
                if inv.f.as_str() == "read" {
                    if let Some(b) = balances_of(&c.value) {
                        reads.push((us(cpos), b));
                    }
                }
            }
        }
        if all_values {
            text.insert(n, op_text(input, n));
        }
    }
    let mut anomaly_ops = BTreeMap::new();
    for (id, events) in anomaly_events {
        let mut nums: Vec<usize> = events.iter().filter_map(|e| input.op_number(*e)).collect();
        nums.sort_unstable();
        nums.dedup();
        for &n in &nums {
            text.entry(n).or_insert_with(|| op_text(input, n));
        }
        anomaly_ops.insert(id.clone(), nums);
    }
    let latency = lat
        .into_iter()
        .map(|(f, per_bucket)| {
            let mut q: [Vec<i64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
            for mut xs in per_bucket {
                for (j, p) in [0.50, 0.95, 0.99].into_iter().enumerate() {
                    q[j].push(quantile(&mut xs, p));
                }
            }
            (f_names[f as usize].clone(), q)
        })
        .collect();
    let (bands, nodes) = faults(h, &us, span_us);
    Charts {
        span_us,
        clock: if input.logical_clock {
            "events"
        } else {
            "time"
        },
        lanes,
        f_names,
        ops: cols,
        text,
        bands,
        nodes,
        buckets: Buckets {
            width_us,
            ok,
            fail,
            info,
            latency,
        },
        balances: balances(reads, buckets, &bucket, input),
        anomaly_ops,
    }
}

fn quantile(xs: &mut [u32], p: f64) -> i64 {
    if xs.is_empty() {
        return -1;
    }
    let k = ((xs.len() - 1) as f64 * p).round() as usize;
    let (_, v, _) = xs.select_nth_unstable(k);
    *v as i64
}

/// The tooltip text of operation `n`: its value and, for a fail or info, the reason.
fn op_text(input: &Input, n: usize) -> String {
    let op = &input.ops[n];
    let h = input.history;
    let inv = &h.events[op.invoke];
    let comp = op.completion.map(|c| &h.events[c]);
    let value = comp
        .filter(|c| !c.value.is_null())
        .map_or(&inv.value, |c| &c.value);
    let mut t = super::model::short(&value.to_string(), 160);
    if let Some(why) = comp.and_then(|c| c.error.as_deref()) {
        t.push_str(" — ");
        t.push_str(&super::model::short(why, 120));
    }
    t
}

/// Lanes of the timeline: one per worker (process modulo concurrency, as a crashed process's
/// successor takes its worker's place) when the run's concurrency is known, else one per process.
fn lanes(input: &Input) -> (Vec<String>, impl Fn(Process) -> u32) {
    let mut procs: Vec<u64> = input
        .history
        .events
        .iter()
        .filter_map(|e| match e.process {
            Process::Client(p) => Some(p),
            Process::Nemesis => None,
        })
        .collect();
    procs.sort_unstable();
    procs.dedup();
    let concurrency = input.meta.map(|m| m.concurrency as u64).filter(|c| *c > 0);
    let (names, index): (Vec<String>, BTreeMap<u64, u32>) = match concurrency {
        Some(c) => {
            let workers: std::collections::BTreeSet<u64> = procs.iter().map(|p| p % c).collect();
            let names = workers.iter().map(|w| format!("worker {w}")).collect();
            let index = procs
                .iter()
                .map(|p| {
                    (
                        *p,
                        workers.iter().position(|w| *w == p % c).unwrap_or(0) as u32,
                    )
                })
                .collect();
            (names, index)
        }
        None => (
            procs.iter().map(|p| format!("process {p}")).collect(),
            procs
                .iter()
                .enumerate()
                .map(|(i, p)| (*p, i as u32))
                .collect(),
        ),
    };
    (names, move |p: Process| match p {
        Process::Client(p) => index.get(&p).copied().unwrap_or(0),
        Process::Nemesis => 0,
    })
}

/// The start of a fault and the name of the event that ends it.
fn ends(f: &str) -> Option<String> {
    match f {
        "kill" => Some("restart".into()),
        "pause" => Some("resume".into()),
        _ => f.strip_prefix("start").map(|rest| format!("stop{rest}")),
    }
}

/// Nemesis intervals (a start paired with its stop, or cut at the next heal or the end) and, per
/// node, when it was killed, paused, cut off or slowed.
fn faults(h: &History, us: &dyn Fn(usize) -> u64, span_us: u64) -> (Vec<Band>, Vec<NodeLane>) {
    let mut open: Vec<(String, String, u64, Value)> = Vec::new(); // (end f, kind, start, value)
    let mut bands = Vec::new();
    let mut per_node: BTreeMap<String, Vec<(u64, u64, String)>> = BTreeMap::new();
    let mut close = |kind: &str, s: u64, e: u64, v: &Value, bands: &mut Vec<Band>| {
        let label = format!("{kind} {}", super::model::short(&v.to_string(), 100));
        bands.push(Band {
            s,
            e: e.max(s + 1),
            kind: kind.to_string(),
            label,
        });
        let (mark, nodes) = affected(kind, v);
        for n in nodes {
            per_node
                .entry(n)
                .or_default()
                .push((s, e.max(s + 1), mark.into()));
        }
    };
    for (pos, e) in h
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.process == Process::Nemesis)
    {
        let f = e.f.as_str();
        let t = us(pos);
        if let Some(end) = ends(f) {
            let kind = f.strip_prefix("start-").unwrap_or(f).to_string();
            let kind = if kind == "start" {
                "fault".into()
            } else {
                kind
            };
            open.push((end, kind, t, e.value.clone()));
        } else if f == "heal" {
            for (_, kind, s, v) in open.drain(..) {
                close(&kind, s, t, &v, &mut bands);
            }
        } else if let Some(pos) = open.iter().position(|(end, _, _, _)| end == f) {
            let (_, kind, s, v) = open.remove(pos);
            close(&kind, s, t, &v, &mut bands);
        }
    }
    for (_, kind, s, v) in open {
        close(&kind, s, span_us, &v, &mut bands);
    }
    bands.sort_by_key(|b| (b.s, b.e));
    let nodes = per_node
        .into_iter()
        .map(|(name, down)| NodeLane { name, down })
        .collect();
    (bands, nodes)
}

/// Which nodes a fault touches, and how: the listed nodes of a kill or pause, the minority side
/// (every node with a grudge) of a partition.
fn affected(kind: &str, v: &Value) -> (&'static str, Vec<String>) {
    let names = |x: Option<&Value>| -> Vec<String> {
        x.and_then(Value::as_list)
            .map(|l| {
                l.iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    match kind {
        "kill" => ("killed", names(v.get("nodes"))),
        "pause" => ("paused", names(v.get("nodes"))),
        "partition" => {
            let cut: Vec<Vec<String>> = v
                .get("cut")
                .and_then(Value::as_list)
                .map(|groups| groups.iter().map(|g| names(Some(g))).collect())
                .unwrap_or_default();
            // Every side but the largest is cut off from the majority.
            let largest = cut.iter().map(Vec::len).max().unwrap_or(0);
            let mut seen_largest = false;
            let mut out = Vec::new();
            for g in cut {
                if g.len() == largest && !seen_largest {
                    seen_largest = true;
                    continue;
                }
                out.extend(g);
            }
            ("cut", out)
        }
        _ => ("slow", names(v.get("nodes"))),
    }
}

fn balances(
    mut reads: Vec<(u64, Vec<i64>)>,
    buckets: usize,
    bucket: &dyn Fn(u64) -> usize,
    input: &Input,
) -> Option<Balances> {
    if reads.is_empty() {
        return None;
    }
    reads.sort_by_key(|r| r.0);
    let mut total_min = vec![None; buckets];
    let mut total_max = vec![None; buckets];
    for (t, b) in &reads {
        let total: i64 = b.iter().sum();
        let i = bucket(*t);
        total_min[i] = Some(total_min[i].map_or(total, |m: i64| m.min(total)));
        total_max[i] = Some(total_max[i].map_or(total, |m: i64| m.max(total)));
    }
    let step = reads.len().div_ceil(BALANCE_SAMPLES).max(1);
    let accounts = reads.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let mut t = Vec::new();
    let mut cols = vec![Vec::new(); accounts];
    for (j, (time, b)) in reads.iter().enumerate() {
        if j % step != 0 && j != reads.len() - 1 {
            continue;
        }
        t.push(*time);
        for (a, col) in cols.iter_mut().enumerate() {
            col.push(b.get(a).copied().unwrap_or(0));
        }
    }
    let expected_total = input.results["checkers"]["conservation"]["details"]["total"].as_i64();
    Some(Balances {
        t,
        accounts: cols,
        total_min,
        total_max,
        expected_total,
    })
}
