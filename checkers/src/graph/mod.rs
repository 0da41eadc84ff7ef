//! The `graph` checker: Elle-class transactional anomaly detection.
//!
//! Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from Experimental Observations" (VLDB
//! 2020), on top of Adya's direct serialization graph ("Weak Consistency", 1999): decode the
//! transactions ([`txn`]), infer version orders and the ww / wr / rw / process / real-time edges
//! ([`infer`]), cut the graph into strongly connected components and find a shortest cycle of each
//! anomaly class in each ([`cycles`]), name them ([`classify`]), turn the anomalies into consistency
//! models ruled out and still satisfied ([`models`]), and explain each cycle in words ([`explain`])
//! and as a drawing ([`dot`], [`svg`]).
//!
//! The verdict's `details` hold `not`, `also-not` and `satisfied` (models), `process-order` when
//! the history has none (no process issued two transactions), `cycles` (for each
//! reported cycle: anomaly, transactions, steps, explanation, DOT and SVG text), counts (`txns`,
//! `edges`, `sccs`); no timings, so a
//! re-check reproduces the verdict byte for byte. [`write_artifacts`] stores the drawings and explanations in a
//! run directory. Transactions are named `T<index of their invocation event>`.
//!
//! Plain `G2` (anti-dependency cycles through predicates) is never reported: list-append and
//! rw-register reads are item reads, so their write-skew cycles are `G2-item`, as in Elle.

pub mod classify;
pub mod cycles;
pub mod dot;
pub mod explain;
pub mod infer;
pub mod models;
pub mod stream;
pub mod svg;
pub mod txn;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use verity_history::History;

use crate::{Anomaly, Budget, Checker, Verdict};
use cycles::{Local, Search, LEVELS, SEARCHES};
use infer::{Found, Inference, PROCESS, REALTIME};
pub use txn::Store;

/// The default limit on the cycle search (Elle's default is similar: searches that take longer
/// than this report `unknown` instead of running on).
pub const CYCLE_SEARCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How many cycles get a drawing and a proof in the details (more are only counted).
pub const CYCLES_DRAWN_MAX: usize = 20;

/// The Elle-class checker.
#[derive(Debug, Clone)]
pub struct GraphChecker {
    /// Search for `-process` anomalies (strong session models).
    pub process: bool,
    /// Search for `-realtime` anomalies (strict serializability, strong SI).
    pub realtime: bool,
    /// Limit of the cycle search; the verdict's budget deadline also applies.
    pub cycle_search_timeout: Duration,
}

impl Default for GraphChecker {
    fn default() -> Self {
        GraphChecker {
            process: true,
            realtime: true,
            cycle_search_timeout: CYCLE_SEARCH_TIMEOUT,
        }
    }
}

impl Checker for GraphChecker {
    fn name(&self) -> &'static str {
        "graph"
    }

    fn check(&self, history: &History, budget: &Budget) -> Verdict {
        match txn::decode(history) {
            Ok(store) => self.check_store(&store, budget),
            Err(e) => Verdict::unknown(format!("malformed history: {e}")),
        }
    }
}

impl GraphChecker {
    /// Judges transactions already decoded into a [`Store`] (by [`txn::decode`] from a history, or
    /// straight from a file by [`stream`]).
    pub fn check_store(&self, store: &Store, budget: &Budget) -> Verdict {
        let kind = match txn::data_kind(store) {
            Ok(k) => k,
            Err(e) => return Verdict::unknown(e),
        };
        let mut verdict = Verdict::valid();
        verdict.detail("txns", store.len());
        if store.is_empty() {
            verdict.detail("satisfied", models::boundary(std::iter::empty()).satisfied);
            return verdict;
        }
        if self.process && store.len() > 1 && !any_process_repeats(&store.txns) {
            verdict.detail("process-order", PROCESS_ORDER_UNAVAILABLE);
        }
        let inf = infer::infer(store, kind);
        if budget.expired() {
            // Inference is linear and not interruptible; past the budget, say so rather than search.
            let mut v =
                Verdict::unknown("time-limit: the budget ran out during dependency inference");
            for f in &inf.found {
                v.push(found_anomaly(&inf, f));
            }
            return v;
        }
        verdict.detail("edges", inf.edges.len());
        for f in &inf.found {
            verdict.push(found_anomaly(&inf, f));
        }
        let start = Instant::now();
        let deadline = Some(start + self.cycle_search_timeout)
            .into_iter()
            .chain(budget.deadline)
            .min();
        let sccs = cycles::sccs(&inf, self.process, self.realtime);
        verdict.detail("sccs", sccs.len());
        let mut drawn: Vec<serde_json::Value> = Vec::new();
        let mut timed_out = false;
        for members in sccs {
            let found = match self.search_scc(&inf, members, deadline) {
                Ok(f) => f,
                Err((partial, cycles::TimedOut)) => {
                    timed_out = true;
                    partial
                }
            };
            for (name, cycle) in found {
                // Never a wrong anomaly: a cycle that does not stand on its own edges is a bug of
                // the search or of the naming, and stops the check rather than being reported.
                if let Err(why) = cycles::verify(
                    &inf,
                    &name,
                    &cycle,
                    infer::DATA | levels_extra(self.process, self.realtime),
                ) {
                    panic!(
                        "graph checker: a cycle reported as {name} failed re-verification: {why}"
                    );
                }
                let steps = explain::steps(&inf, &cycle);
                let text = explain::explain(&inf, &name, &cycle);
                let events: Vec<u64> = cycle
                    .iter()
                    .flat_map(|&(t, _)| inf.event_indices(t))
                    .collect();
                if verdict.anomaly_counts.get(&name).copied().unwrap_or(0)
                    < crate::verdict::EXAMPLES_PER_ANOMALY as u64
                    && drawn.len() < CYCLES_DRAWN_MAX
                {
                    drawn.push(serde_json::json!({
                        "anomaly": name,
                        "txns": steps.iter().map(|s| s.from.clone()).collect::<Vec<_>>(),
                        "steps": steps,
                        "explanation": text,
                        "dot": dot::render(&name, &steps),
                        "svg": svg::render(&name, &steps),
                    }));
                }
                verdict.push(Anomaly {
                    name,
                    message: text,
                    events,
                    expected: serde_json::Value::Null,
                    observed: serde_json::to_value(&steps).expect("steps are plain data"),
                });
            }
            if timed_out {
                break;
            }
        }
        if timed_out {
            verdict.detail("cycle-search-timeout", true);
            verdict.set_unknown(format!(
                "cycle-search-timeout: the cycle search exceeded its limit of {:?}",
                self.cycle_search_timeout
            ));
        }
        let names = verdict.anomaly_types();
        let b = models::boundary(names.iter().map(String::as_str));
        verdict.detail("not", &b.not);
        verdict.detail("also-not", &b.also_not);
        verdict.detail("satisfied", &b.satisfied);
        verdict.detail("cycles", drawn);
        verdict
    }
}

/// The note of a verdict on a history in which no process issued two transactions — an EDN history
/// without `:process`, whose ops the reader paired one process each.
pub const PROCESS_ORDER_UNAVAILABLE: &str = "unavailable: no process issued more than one transaction \
(a history without :process), so no -process anomaly is claimed and a strong-session model listed as \
consistent was not checked against process order";

fn any_process_repeats(txns: &[txn::Txn]) -> bool {
    let mut seen = rustc_hash::FxHashSet::default();
    txns.iter().any(|t| !seen.insert(t.process))
}

/// Cycles found in one SCC: (anomaly name, cycle).
type SccCycles = Vec<(String, cycles::Cycle)>;

impl GraphChecker {
    fn search_scc(
        &self,
        inf: &Inference<'_>,
        members: Vec<u32>,
        deadline: Option<Instant>,
    ) -> Result<SccCycles, (SccCycles, cycles::TimedOut)> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err((Vec::new(), cycles::TimedOut));
        }
        // Building a huge SCC's local graph is not interruptible (about 0.3 s per million members).
        let local = Local::new(inf, members, self.realtime);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err((Vec::new(), cycles::TimedOut));
        }
        let mut found: SccCycles = Vec::new();
        let mut levels: Vec<u8> = vec![LEVELS[0]];
        if self.process && local.has_kind(PROCESS) {
            levels.push(LEVELS[1]);
        }
        if self.realtime && local.has_kind(REALTIME) {
            levels.push(LEVELS[2]);
        }
        for extra in levels {
            for search in SEARCHES {
                if already_covered(search, extra, &found) {
                    continue;
                }
                let cycle = match cycles::find(&local, search, extra, deadline) {
                    Ok(c) => c,
                    Err(t) => return Err((found, t)),
                };
                let Some(cycle) = cycle else { continue };
                let name = classify::classify(&cycle);
                let names: Vec<String> = found.iter().map(|f| f.0.clone()).collect();
                if !names.contains(&name) && !classify::subsumed(&name, &names) {
                    found.push((name, cycle));
                }
            }
        }
        if found.is_empty() {
            // Every member of an SCC lies on a cycle: with every kind of edge, one is found.
            let extra = levels_extra(self.process, self.realtime);
            match cycles::find(&local, Search::Any, extra, deadline) {
                Ok(Some(cycle)) => found.push((classify::classify(&cycle), cycle)),
                // Only when the SCC exists through edges of a kind the checker was told to ignore.
                Ok(None) => {}
                Err(t) => return Err((found, t)),
            }
        }
        Ok(found)
    }
}

/// Whether a search at a level can only find what is already reported (its class without suffix or
/// with a weaker one).
fn already_covered(search: Search, extra: u8, found: &SccCycles) -> bool {
    if extra == 0 {
        return false;
    }
    let base = match search {
        Search::G0 => "G0",
        Search::G1c => "G1c",
        Search::GSingle => "G-single",
        Search::GNonadjacent => "G-nonadjacent",
        Search::G2Item => "G2-item",
        Search::Any => return false,
    };
    let weaker: &[&str] = if extra & REALTIME != 0 {
        &["", "-process"]
    } else {
        &[""]
    };
    weaker
        .iter()
        .any(|s| found.iter().any(|f| f.0 == format!("{base}{s}")))
}

fn levels_extra(process: bool, realtime: bool) -> u8 {
    (if process { PROCESS } else { 0 }) | (if realtime { REALTIME } else { 0 })
}

fn found_anomaly(inf: &Inference<'_>, f: &Found) -> Anomaly {
    let names: Vec<String> = f.txns.iter().map(|&t| inf.name(t)).collect();
    Anomaly {
        name: f.name.to_string(),
        message: format!("{}: {}", names.join(", "), f.message),
        events: f.txns.iter().flat_map(|&t| inf.event_indices(t)).collect(),
        expected: serde_json::Value::Null,
        observed: serde_json::Value::Null,
    }
}

/// Writes the drawings and proofs of a graph verdict into `dir/graph/`: for each drawn cycle
/// `NN-<anomaly>.dot` and `.svg`, and `explanations.txt` with every anomaly's message. Returns the
/// paths written (none when the verdict holds no anomaly).
pub fn write_artifacts(verdict: &Verdict, dir: &Path) -> io::Result<Vec<PathBuf>> {
    if verdict.anomalies.is_empty() {
        return Ok(Vec::new());
    }
    let out = dir.join("graph");
    std::fs::create_dir_all(&out)?;
    let mut written = Vec::new();
    let cycles = verdict
        .details
        .get("cycles")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    for (i, c) in cycles.iter().enumerate() {
        let name = c.get("anomaly").and_then(|a| a.as_str()).unwrap_or("cycle");
        let safe: String = name
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '-' {
                    ch
                } else {
                    '_'
                }
            })
            .collect();
        for ext in ["dot", "svg"] {
            if let Some(text) = c.get(ext).and_then(|t| t.as_str()) {
                let p = out.join(format!("{i:02}-{safe}.{ext}"));
                std::fs::write(&p, text)?;
                written.push(p);
            }
        }
    }
    let mut text = String::new();
    for a in &verdict.anomalies {
        text.push_str(&format!("[{}] {}\n", a.name, a.message));
    }
    for key in ["not", "also-not", "satisfied"] {
        if let Some(v) = verdict.details.get(key) {
            text.push_str(&format!("{key}: {v}\n"));
        }
    }
    let p = out.join("explanations.txt");
    std::fs::write(&p, text)?;
    written.push(p);
    Ok(written)
}
