//! Strongly connected components and the search for short, concrete cycles inside them.
//!
//! As in Elle, a history is serializable (under Adya's formalism) exactly when its dependency graph
//! is acyclic, so the search first cuts the graph into SCCs (petgraph's Kosaraju, which is iterative:
//! a recursive Tarjan overflows the stack on a million-transaction chain) and then looks inside each
//! non-trivial SCC for the shortest cycle of each anomaly class. Each search is a breadth-first
//! search from a start transaction back to itself over (transaction, state) pairs, where a small
//! state machine over the edge kinds taken so far enforces the class (exactly one rw edge for
//! G-single, no two adjacent rw edges for G-nonadjacent, …). Searches run first over data edges
//! only, then with process edges, then with real-time edges, so that a `-process` or `-realtime`
//! anomaly is only reported when the plain one is not there.
//!
//! Every search checks the deadline; a search cut short makes the verdict `unknown` (Elle's
//! `:cycle-search-timeout`), never a hang.

use std::collections::VecDeque;
use std::time::Instant;

use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxHashMap;

use super::infer::{realtime_edges, Inference, DATA, PROCESS, REALTIME, RW, WR, WW};

/// A cycle: `(txn, kind)` means an edge of `kind` from `txn` to the next transaction in the list
/// (the last one points back to the first).
pub type Cycle = Vec<(u32, u8)>;

/// The non-trivial SCCs of the graph of data, process and real-time order: sorted member lists,
/// ordered by their smallest member (deterministic output).
///
/// Most of a typical history lies on no cycle at all, so the graph is first trimmed: repeatedly
/// removing nodes with no remaining predecessor (Kahn's topological sort), then nodes with no
/// remaining successor, leaves only nodes that lie between cycles. Only that remainder — empty for
/// a valid history — is handed to petgraph's SCC search. Linear time, no recursion.
pub fn sccs(inf: &Inference<'_>, with_process: bool, with_realtime: bool) -> Vec<Vec<u32>> {
    let n = inf.store.len();
    // Virtual time nodes: one per ok completion, in history order.
    let mut completions: Vec<(u32, u32)> = inf
        .store
        .txns
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            t.completion()
                .filter(|_| t.is_ok() && with_realtime)
                .map(|c| (c, i as u32))
        })
        .collect();
    completions.sort_unstable();
    let time_nodes = completions.len();
    let total = n + time_nodes;
    let mut edges: Vec<(u32, u32)> = Vec::with_capacity(inf.edges.len() + 3 * n);
    edges.extend(
        inf.edges
            .iter()
            .filter(|e| with_process || e.2 != PROCESS)
            .map(|&(a, b, _)| (a, b)),
    );
    for (rank, &(_, t)) in completions.iter().enumerate() {
        edges.push((t, (n + rank) as u32));
        if rank + 1 < time_nodes {
            edges.push(((n + rank) as u32, (n + rank + 1) as u32));
        }
    }
    for (i, t) in inf.store.txns.iter().enumerate() {
        if !t.may_commit() || time_nodes == 0 {
            continue;
        }
        let before = completions.partition_point(|&(c, _)| c < t.invoke);
        if before > 0 {
            edges.push(((n + before - 1) as u32, i as u32));
        }
    }
    drop(completions);
    let alive = trim(total, &edges);
    let remaining: Vec<u32> = (0..total as u32).filter(|&x| alive[x as usize]).collect();
    if remaining.is_empty() {
        return Vec::new();
    }
    let index: FxHashMap<u32, u32> = remaining
        .iter()
        .enumerate()
        .map(|(i, &x)| (x, i as u32))
        .collect();
    let mut g: DiGraph<(), (), u32> = DiGraph::with_capacity(remaining.len(), remaining.len() * 4);
    for _ in 0..remaining.len() {
        g.add_node(());
    }
    for &(a, b) in &edges {
        if let (Some(&la), Some(&lb)) = (index.get(&a), index.get(&b)) {
            g.add_edge(NodeIndex::new(la as usize), NodeIndex::new(lb as usize), ());
        }
    }
    let mut out: Vec<Vec<u32>> = petgraph::algo::kosaraju_scc(&g)
        .into_iter()
        .filter_map(|scc| {
            let mut real: Vec<u32> = scc
                .iter()
                .map(|x| remaining[x.index()])
                .filter(|&x| (x as usize) < n)
                .collect();
            (real.len() >= 2).then(|| {
                real.sort_unstable();
                real
            })
        })
        .collect();
    out.sort_unstable_by_key(|s| s[0]);
    out
}

/// Which nodes survive trimming: removing, until nothing changes, nodes without a live predecessor
/// and then nodes without a live successor. A node on a cycle is never removed.
fn trim(total: usize, edges: &[(u32, u32)]) -> Vec<bool> {
    let mut alive = vec![true; total];
    for forward in [true, false] {
        // CSR of the live edges in the direction of the sweep.
        let mut degree = vec![0u32; total];
        let mut offsets = vec![0u32; total + 1];
        for &(a, b) in edges {
            let (from, to) = if forward { (a, b) } else { (b, a) };
            if alive[from as usize] && alive[to as usize] {
                degree[to as usize] += 1;
                offsets[from as usize + 1] += 1;
            }
        }
        for i in 0..total {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut targets = vec![0u32; offsets[total] as usize];
        for &(a, b) in edges {
            let (from, to) = if forward { (a, b) } else { (b, a) };
            if alive[from as usize] && alive[to as usize] {
                targets[fill[from as usize] as usize] = to;
                fill[from as usize] += 1;
            }
        }
        drop(fill);
        let mut queue: Vec<u32> = (0..total as u32)
            .filter(|&x| alive[x as usize] && degree[x as usize] == 0)
            .collect();
        while let Some(x) = queue.pop() {
            alive[x as usize] = false;
            for &y in &targets[offsets[x as usize] as usize..offsets[x as usize + 1] as usize] {
                degree[y as usize] -= 1;
                if degree[y as usize] == 0 {
                    queue.push(y);
                }
            }
        }
    }
    alive
}

/// One SCC's members with their edges among themselves (data, process, and pairwise real-time).
pub struct Local {
    pub members: Vec<u32>,
    adj: Vec<Vec<(u32, u8)>>,
}

impl Local {
    pub fn new(inf: &Inference<'_>, members: Vec<u32>, with_realtime: bool) -> Local {
        let index: FxHashMap<u32, u32> = members
            .iter()
            .enumerate()
            .map(|(i, &m)| (m, i as u32))
            .collect();
        let mut adj: Vec<Vec<(u32, u8)>> = vec![Vec::new(); members.len()];
        for (li, &m) in members.iter().enumerate() {
            for &(_, b, k) in inf.out_edges(m) {
                if let Some(&lb) = index.get(&b) {
                    adj[li].push((lb, k));
                }
            }
        }
        if with_realtime {
            for (a, b) in realtime_edges(inf, &members) {
                let (la, lb) = (index[&a], index[&b]);
                match adj[la as usize].iter_mut().find(|e| e.0 == lb) {
                    Some(e) => e.1 |= REALTIME,
                    None => adj[la as usize].push((lb, REALTIME)),
                }
            }
        }
        for a in &mut adj {
            a.sort_unstable();
        }
        Local { members, adj }
    }

    pub fn has_kind(&self, kind: u8) -> bool {
        self.adj.iter().flatten().any(|e| e.1 & kind != 0)
    }
}

/// The anomaly classes searched for, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    G0,
    G1c,
    GSingle,
    GNonadjacent,
    G2Item,
    /// Any cycle at all: the fallback that guarantees every non-trivial SCC yields one.
    Any,
}

pub const SEARCHES: [Search; 5] = [
    Search::G0,
    Search::G1c,
    Search::GSingle,
    Search::GNonadjacent,
    Search::G2Item,
];

// State bits of the search automaton.
const HAS_EDGE: u8 = 1;
const FIRST_RW: u8 = 2;
const LAST_RW: u8 = 4;
const ADJACENT: u8 = 8;
const HAS_WR: u8 = 16;
const RW_ONE: u8 = 32;
const RW_MANY: u8 = 64;

impl Search {
    fn kinds(self) -> u8 {
        match self {
            Search::G0 => WW,
            Search::G1c => WW | WR,
            _ => DATA,
        }
    }

    fn step(self, s: u8, kind: u8) -> Option<u8> {
        let mut n = s | HAS_EDGE;
        if kind == RW {
            if s & HAS_EDGE == 0 {
                n |= FIRST_RW;
            }
            if s & LAST_RW != 0 {
                n |= ADJACENT;
            }
            n |= LAST_RW;
            if s & (RW_ONE | RW_MANY) != 0 {
                n = (n & !RW_ONE) | RW_MANY;
            } else {
                n |= RW_ONE;
            }
        } else {
            n &= !LAST_RW;
        }
        if kind == WR {
            n |= HAS_WR;
        }
        let ok = match self {
            Search::GSingle => n & RW_MANY == 0,
            Search::GNonadjacent => n & ADJACENT == 0,
            _ => true,
        };
        ok.then_some(n)
    }

    /// Whether a path in state `s` that has just returned to its start is a cycle of this class.
    fn accepts(self, s: u8) -> bool {
        let wraps_adjacent = s & FIRST_RW != 0 && s & LAST_RW != 0;
        match self {
            Search::G0 => true,
            Search::G1c => s & HAS_WR != 0,
            Search::GSingle => s & RW_ONE != 0,
            Search::GNonadjacent => s & RW_MANY != 0 && s & ADJACENT == 0 && !wraps_adjacent,
            Search::G2Item => s & RW_MANY != 0 && (s & ADJACENT != 0 || wraps_adjacent),
            Search::Any => true,
        }
    }
}

/// The search was cut short by the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

/// SCCs up to this size are searched from every member, which gives the shortest cycle of a class;
/// larger ones from at most [`STARTS_MAX`] members (a class found nowhere else would otherwise cost
/// a search per member: quadratic on a huge SCC). The [`Search::Any`] fallback still finds a cycle.
const EXHAUSTIVE_MAX: usize = 64;
const STARTS_MAX: usize = 4;
/// In an SCC larger than [`EXHAUSTIVE_MAX`], one search of a class gives up after visiting this
/// many states (the class may exist elsewhere; the [`Search::Any`] fallback is not capped), so a
/// huge SCC costs a bounded amount of work per class instead of the whole time limit.
const VISITS_MAX: usize = 50_000;

/// The shortest cycle of class `search` using data edges plus the `extra` kinds (process, real-time).
pub fn find(
    local: &Local,
    search: Search,
    extra: u8,
    deadline: Option<Instant>,
) -> Result<Option<Cycle>, TimedOut> {
    let allowed = search.kinds() | extra;
    let mut best: Option<Vec<(u32, u8)>> = None;
    let exhaustive = local.members.len() <= EXHAUSTIVE_MAX;
    let starts = if exhaustive {
        local.members.len()
    } else {
        STARTS_MAX.min(local.members.len())
    };
    let visits_max = if exhaustive || search == Search::Any {
        usize::MAX
    } else {
        VISITS_MAX
    };
    for start in 0..starts as u32 {
        let limit = best.as_ref().map_or(usize::MAX, |b| b.len() - 1);
        if let Some(c) = bfs(local, search, allowed, start, limit, visits_max, deadline)? {
            let shorter = best.as_ref().is_none_or(|b| c.len() < b.len());
            if shorter {
                best = Some(c);
            }
            if !exhaustive || best.as_ref().is_some_and(|b| b.len() <= 2) {
                break;
            }
        }
    }
    Ok(best.map(|c| {
        c.into_iter()
            .map(|(l, k)| (local.members[l as usize], k))
            .collect()
    }))
}

/// Breadth-first search from `start` back to itself; `limit` caps the path length (a shorter cycle
/// is already known).
fn bfs(
    local: &Local,
    search: Search,
    allowed: u8,
    start: u32,
    limit: usize,
    visits_max: usize,
    deadline: Option<Instant>,
) -> Result<Option<Vec<(u32, u8)>>, TimedOut> {
    // (node, state) -> (previous node, previous state, kind of the edge taken)
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(TimedOut);
    }
    let mut parent: FxHashMap<(u32, u8), (u32, u8, u8)> = FxHashMap::default();
    let mut queue: VecDeque<(u32, u8, usize)> = VecDeque::new();
    queue.push_back((start, 0, 0));
    let mut steps: u64 = 0;
    while let Some((node, state, depth)) = queue.pop_front() {
        steps += 1;
        if steps.is_multiple_of(1024) && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(TimedOut);
        }
        if depth >= limit {
            continue;
        }
        for &(next, mask) in &local.adj[node as usize] {
            let mut bits = mask & allowed;
            while bits != 0 {
                let kind = bits & bits.wrapping_neg();
                bits &= !kind;
                let Some(ns) = search.step(state, kind) else {
                    continue;
                };
                if next == start {
                    if search.accepts(ns) {
                        return Ok(Some(unwind(&parent, start, node, state, kind)));
                    }
                    continue;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry((next, ns)) {
                    e.insert((node, state, kind));
                    queue.push_back((next, ns, depth + 1));
                    if parent.len() > visits_max {
                        return Ok(None);
                    }
                }
            }
        }
    }
    Ok(None)
}

fn unwind(
    parent: &FxHashMap<(u32, u8), (u32, u8, u8)>,
    start: u32,
    last: u32,
    last_state: u8,
    closing: u8,
) -> Vec<(u32, u8)> {
    let mut rev = vec![(last, closing)];
    let (mut node, mut state) = (last, last_state);
    while !(node == start && state == 0) {
        let &(p, ps, k) = parent
            .get(&(node, state))
            .expect("every visited state has a parent");
        rev.push((p, k));
        node = p;
        state = ps;
    }
    rev.reverse();
    rev
}

/// The edge-kind levels searched, in order: data only, then with process, then with real-time.
pub const LEVELS: [u8; 3] = [0, PROCESS, PROCESS | REALTIME];

/// Re-verifies a cycle about to be reported as `name`, edge by edge, against the inference it came
/// from — independently of the search that found it: every step is one edge kind the checker was
/// allowed to use (`allowed`: the data kinds, plus [`PROCESS`] and [`REALTIME`] when those searches
/// are on); a data or process edge from each transaction to the next really is in the graph with
/// that kind, a real-time edge really is "completed `ok` before the next was invoked"; the last
/// step leads back to the first transaction (the cycle closes); and the name is the one the edge
/// kinds give (the count and adjacency of rw edges, a wr edge for G1c, the suffix of the strongest
/// order edge used). `Err` says which check failed. Cheap: only reported cycles are verified.
pub fn verify(inf: &Inference<'_>, name: &str, cycle: &Cycle, allowed: u8) -> Result<(), String> {
    let n = inf.store.len() as u32;
    if cycle.is_empty() {
        return Err("an empty cycle".into());
    }
    for (i, &(t, kind)) in cycle.iter().enumerate() {
        let (u, _) = cycle[(i + 1) % cycle.len()];
        if t >= n || u >= n {
            return Err(format!(
                "step {i}: transaction {t} or {u} is not in the history"
            ));
        }
        if kind.count_ones() != 1 || kind & allowed == 0 {
            return Err(format!(
                "step {i}: edge kind {kind:#x} is not one allowed kind"
            ));
        }
        let exists = if kind == REALTIME {
            let (a, b) = (&inf.store.txns[t as usize], &inf.store.txns[u as usize]);
            a.is_ok() && a.completion().is_some_and(|c| c < b.invoke)
        } else {
            let out = inf.out_edges(t);
            out.binary_search_by_key(&u, |e| e.1)
                .is_ok_and(|k| out[k].2 & kind != 0)
        };
        if !exists {
            return Err(format!(
                "step {i}: no {} edge from transaction {t} to transaction {u}",
                super::infer::kind_name(kind)
            ));
        }
    }
    let kinds: Vec<u8> = cycle.iter().map(|e| e.1).collect();
    let count = |k: u8| kinds.iter().filter(|&&x| x == k).count();
    let (rw, wr, ww) = (count(RW), count(WR), count(WW));
    if rw + wr + ww == 0 {
        return Err("a cycle without a data edge".into());
    }
    let len = kinds.len();
    let adjacent_rw = (0..len).any(|i| kinds[i] == RW && kinds[(i + 1) % len] == RW);
    let base = match (rw, wr) {
        (0, 0) => "G0",
        (0, _) => "G1c",
        (1, _) => "G-single",
        _ if adjacent_rw => "G2-item",
        _ => "G-nonadjacent",
    };
    let suffix = if kinds.contains(&REALTIME) {
        "-realtime"
    } else if kinds.contains(&PROCESS) {
        "-process"
    } else {
        ""
    };
    if name != format!("{base}{suffix}") {
        return Err(format!(
            "named {name} but its edges ({rw} rw, {wr} wr, {ww} ww{}) make it {base}{suffix}",
            if suffix.is_empty() {
                String::new()
            } else {
                format!(", {}", &suffix[1..])
            }
        ));
    }
    Ok(())
}
