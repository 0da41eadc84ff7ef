//! The fault vocabulary of the nemesis, as plain data: what to break, on which nodes, and how each
//! start and stop of a fault is written into the history.
//!
//! It follows Jepsen's `jepsen.nemesis` and `nemesis.combined`: a partition is a *grudge* — for every
//! node, the set of nodes whose traffic it refuses — built by one of the classic shapes (`split-one`,
//! `bisect`, a random minority, `bridge`, `majorities-ring`, and Jepsen's `:primaries` spec, which
//! cuts off whichever node leads when the fault starts); `pause` is SIGSTOP/SIGCONT; `kill` is
//! SIGKILL then restart; `delay` and `loss` degrade every link touching some nodes (Jepsen does those
//! with `tc netem`, verity with its own TCP proxy, see `proxy.rs`). Faults are values so that the
//! schedule can be a pure function of the seed, compared in tests and serialized into `nemesis` events.
//!
//! Event names follow Jepsen's spirit: `start-partition`/`stop-partition`, `pause`/`resume`,
//! `kill`/`restart`, `start-delay`/`stop-delay`, `start-loss`/`stop-loss`. A stop carries the same value
//! as its start, so a report can pair them and shade the interval.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use verity_history::{Value, F};

/// The longest delay a `delay` fault may add to one chunk, so that a typo cannot stall a run.
pub const DELAY_MS_MAX: u32 = 10_000;
/// The highest loss probability accepted: at 1.0 a link is a partition, and `partition` says that.
pub const LOSS_P_MAX: f64 = 0.9;

/// The kinds of fault a user can list in `--nemesis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Partition,
    Pause,
    Kill,
    Delay,
    Loss,
}

/// (name, one-line description) of every fault kind, for `verity list`.
pub const FAULT_KINDS: &[(&str, &str)] = &[
    ("partition", "cut node-to-node links by a grudge: isolate-one, halves, majority-minority, bridge, majorities-ring, isolate-primary"),
    ("pause", "SIGSTOP some nodes, later SIGCONT"),
    ("kill", "SIGKILL some nodes, later restart them"),
    ("delay", "add latency (with seeded jitter) to every link touching some nodes"),
    ("loss", "lose packets on every link touching some nodes (TCP retransmission stalls)"),
];

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Partition,
        FaultKind::Pause,
        FaultKind::Kill,
        FaultKind::Delay,
        FaultKind::Loss,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
            FaultKind::Delay => "delay",
            FaultKind::Loss => "loss",
        }
    }

    /// Parses a `--nemesis` list such as `partition,pause,kill`. `none` or an empty string is no fault.
    /// The result is sorted and without repeats, so the schedule does not depend on how it was spelled.
    pub fn parse_list(s: &str) -> Result<Vec<FaultKind>, FaultError> {
        let mut kinds = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "none" {
                continue;
            }
            kinds.insert(part.parse::<FaultKind>()?);
        }
        Ok(kinds.into_iter().collect())
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultKind {
    type Err = FaultError;
    fn from_str(s: &str) -> Result<Self, FaultError> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| FaultError::UnknownKind {
                name: s.to_string(),
                choices: FaultKind::ALL.map(FaultKind::as_str).join(", "),
            })
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum FaultError {
    #[error("unknown fault {name:?}: valid choices are {choices}")]
    UnknownKind { name: String, choices: String },
    #[error("a {kind} partition needs at least {needed} nodes, the cluster has {nodes}")]
    TooFewNodes {
        kind: GrudgeKind,
        needed: usize,
        nodes: usize,
    },
}

/// The shapes of a network partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrudgeKind {
    /// One node cut off from all others (Jepsen's `split-one`).
    IsolateOne,
    /// The nodes split into two halves of sizes ⌊n/2⌋ and ⌈n/2⌉ (Jepsen's `bisect`).
    Halves,
    /// A random minority (1..=⌊(n-1)/2⌋ nodes) cut off from the majority.
    MajorityMinority,
    /// Two halves that cannot talk, and one node in the middle that talks to both (Jepsen's `bridge`).
    Bridge,
    /// Every node sees a majority, and no two nodes see the same majority (Jepsen's `majorities-ring`).
    MajoritiesRing,
    /// The current primary (leader) cut off from all others (Jepsen's `:primaries` spec). Which node
    /// that is becomes known only when the fault starts: the schedule holds a placeholder
    /// ([`PRIMARY`]) and the nemesis resolves it from the supervisor.
    IsolatePrimary,
}

/// The placeholder for "the current primary" in a scheduled fault's node list.
pub const PRIMARY: &str = "@primary";

impl GrudgeKind {
    pub const ALL: [GrudgeKind; 6] = [
        GrudgeKind::IsolateOne,
        GrudgeKind::Halves,
        GrudgeKind::MajorityMinority,
        GrudgeKind::Bridge,
        GrudgeKind::MajoritiesRing,
        GrudgeKind::IsolatePrimary,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrudgeKind::IsolateOne => "isolate-one",
            GrudgeKind::Halves => "halves",
            GrudgeKind::MajorityMinority => "majority-minority",
            GrudgeKind::Bridge => "bridge",
            GrudgeKind::MajoritiesRing => "majorities-ring",
            GrudgeKind::IsolatePrimary => "isolate-primary",
        }
    }

    /// The fewest nodes for which the shape cuts anything.
    pub fn nodes_min(self) -> usize {
        match self {
            GrudgeKind::IsolateOne | GrudgeKind::Halves | GrudgeKind::IsolatePrimary => 2,
            GrudgeKind::MajorityMinority | GrudgeKind::Bridge | GrudgeKind::MajoritiesRing => 3,
        }
    }

    /// Whether the shape splits the nodes into components that are fully cut from one another, so that
    /// it can also be written as a `cut` (a list of components).
    pub fn is_complete(self) -> bool {
        matches!(
            self,
            GrudgeKind::IsolateOne
                | GrudgeKind::Halves
                | GrudgeKind::MajorityMinority
                | GrudgeKind::IsolatePrimary
        )
    }
}

impl fmt::Display for GrudgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A grudge: for each node, the nodes whose traffic it refuses. Directional, as in Jepsen: `n1 -> {n2}`
/// means bytes from n2 to n1 are dropped (and only those). Nodes without a grudge are left out.
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

/// A network partition: its shape, its components (for complete shapes) and its grudge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub kind: GrudgeKind,
    /// The components, each sorted, for shapes that are complete; empty otherwise.
    pub cut: Vec<Vec<String>>,
    pub grudge: Grudge,
}

impl Partition {
    /// Builds a partition of `kind` over `nodes`, choosing which nodes go where with `rng`.
    pub fn new(
        kind: GrudgeKind,
        nodes: &[String],
        rng: &mut ChaCha8Rng,
    ) -> Result<Partition, FaultError> {
        let n = nodes.len();
        if n < kind.nodes_min() {
            return Err(FaultError::TooFewNodes {
                kind,
                needed: kind.nodes_min(),
                nodes: n,
            });
        }
        let mut shuffled = nodes.to_vec();
        shuffled.sort();
        shuffled.shuffle(rng);
        let (cut, grudge) = match kind {
            GrudgeKind::IsolateOne => complete(split_at(&shuffled, 1)),
            GrudgeKind::Halves => complete(split_at(&shuffled, n / 2)),
            GrudgeKind::MajorityMinority => {
                let minority = rng.gen_range(1..=(n - 1) / 2);
                complete(split_at(&shuffled, minority))
            }
            GrudgeKind::Bridge => (Vec::new(), bridge(&shuffled)),
            GrudgeKind::MajoritiesRing => (Vec::new(), majorities_ring(&shuffled)),
            // Resolved when the fault starts, by `resolve_primary`.
            GrudgeKind::IsolatePrimary => (vec![vec![PRIMARY.to_string()]], Grudge::new()),
        };
        Ok(Partition { kind, cut, grudge })
    }

    /// `primary` cut off from the other `nodes`: the concrete form of an `isolate-primary` partition.
    pub fn isolating(kind: GrudgeKind, primary: &str, nodes: &[String]) -> Partition {
        let rest: Vec<String> = {
            let mut r: Vec<String> = nodes.iter().filter(|n| *n != primary).cloned().collect();
            r.sort();
            r.dedup();
            r
        };
        let mut parts = vec![vec![primary.to_string()], rest];
        parts.sort();
        let (cut, grudge) = complete(parts);
        Partition { kind, cut, grudge }
    }

    /// Whether bytes from `src` to `dst` are dropped under this partition.
    pub fn drops(&self, src: &str, dst: &str) -> bool {
        self.grudge
            .get(dst)
            .is_some_and(|refused| refused.contains(src))
    }

    /// Every directed (src, dst) pair of nodes whose traffic is dropped, sorted.
    pub fn dropped_links(&self) -> Vec<(String, String)> {
        let mut links: Vec<(String, String)> = self
            .grudge
            .iter()
            .flat_map(|(dst, srcs)| srcs.iter().map(move |src| (src.clone(), dst.clone())))
            .collect();
        links.sort();
        links
    }
}

/// Splits a shuffled node list into a first group of `k` and the rest.
fn split_at(shuffled: &[String], k: usize) -> Vec<Vec<String>> {
    let (a, b) = shuffled.split_at(k);
    let mut parts = vec![a.to_vec(), b.to_vec()];
    for p in &mut parts {
        p.sort();
    }
    parts.sort();
    parts
}

/// A complete grudge: every node refuses every node outside its own component (Jepsen's
/// `complete-grudge`).
fn complete(components: Vec<Vec<String>>) -> (Vec<Vec<String>>, Grudge) {
    let mut grudge = Grudge::new();
    for (i, comp) in components.iter().enumerate() {
        let others: BTreeSet<String> = components
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, c)| c.iter().cloned())
            .collect();
        for node in comp {
            grudge.insert(node.clone(), others.clone());
        }
    }
    (components, grudge)
}

/// Two halves around a bridge node: the halves refuse each other, the bridge is refused by no one.
fn bridge(shuffled: &[String]) -> Grudge {
    let mid = shuffled.len() / 2;
    let left: BTreeSet<String> = shuffled[..mid].iter().cloned().collect();
    let right: BTreeSet<String> = shuffled[mid + 1..].iter().cloned().collect();
    let mut grudge = Grudge::new();
    for node in &left {
        grudge.insert(node.clone(), right.clone());
    }
    for node in &right {
        grudge.insert(node.clone(), left.clone());
    }
    grudge
}

/// Places the nodes on a ring; each node hears only the majority-sized window of the ring that starts
/// `(m-1)/2` places before it. With an odd majority the windows are centred and the grudge symmetric;
/// with an even majority (3 or 7 nodes) they lean forward and the grudge is one-way, which is still a
/// set of distinct overlapping majorities, as Jepsen's definition asks.
fn majorities_ring(ring: &[String]) -> Grudge {
    let n = ring.len();
    let majority = n / 2 + 1;
    let back = (majority - 1) / 2;
    let mut grudge = Grudge::new();
    for (i, node) in ring.iter().enumerate() {
        let heard: BTreeSet<usize> = (0..majority).map(|k| (i + n - back + k) % n).collect();
        let refused: BTreeSet<String> = (0..n)
            .filter(|j| !heard.contains(j))
            .map(|j| ring[j].clone())
            .collect();
        if !refused.is_empty() {
            grudge.insert(node.clone(), refused);
        }
    }
    grudge
}

/// One fault, with everything needed to start and to stop it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    Partition(Partition),
    Pause {
        nodes: Vec<String>,
    },
    Kill {
        nodes: Vec<String>,
    },
    /// Every chunk on a link touching `nodes` (client links included) is held `delay_ms ± jitter_ms`.
    Delay {
        nodes: Vec<String>,
        delay_ms: u32,
        jitter_ms: u32,
    },
    /// Every chunk on a link touching `nodes` is lost with probability `p` and "retransmitted" after a
    /// TCP-like timeout (see `proxy.rs` for the exact semantics).
    Loss {
        nodes: Vec<String>,
        p: f64,
    },
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Partition(_) => FaultKind::Partition,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Delay { .. } => FaultKind::Delay,
            Fault::Loss { .. } => FaultKind::Loss,
        }
    }

    /// Whether the fault names the current primary, to be resolved when it starts.
    pub fn targets_primary(&self) -> bool {
        match self {
            Fault::Partition(p) => p.kind == GrudgeKind::IsolatePrimary && p.grudge.is_empty(),
            Fault::Pause { nodes }
            | Fault::Kill { nodes }
            | Fault::Delay { nodes, .. }
            | Fault::Loss { nodes, .. } => nodes.iter().any(|n| n == PRIMARY),
        }
    }

    /// The fault with the [`PRIMARY`] placeholder replaced by `primary` (a cluster of `nodes`).
    pub fn resolve_primary(&self, primary: &str, nodes: &[String]) -> Fault {
        let swap = |list: &[String]| -> Vec<String> {
            let mut l: Vec<String> = list
                .iter()
                .map(|n| {
                    if n == PRIMARY {
                        primary.to_string()
                    } else {
                        n.clone()
                    }
                })
                .collect();
            l.sort();
            l.dedup();
            l
        };
        match self {
            Fault::Partition(p) if self.targets_primary() => {
                Fault::Partition(Partition::isolating(p.kind, primary, nodes))
            }
            Fault::Partition(_) => self.clone(),
            Fault::Pause { nodes } => Fault::Pause { nodes: swap(nodes) },
            Fault::Kill { nodes } => Fault::Kill { nodes: swap(nodes) },
            Fault::Delay {
                nodes,
                delay_ms,
                jitter_ms,
            } => Fault::Delay {
                nodes: swap(nodes),
                delay_ms: *delay_ms,
                jitter_ms: *jitter_ms,
            },
            Fault::Loss { nodes, p } => Fault::Loss {
                nodes: swap(nodes),
                p: *p,
            },
        }
    }

    /// The nodes the fault touches directly, sorted.
    pub fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = match self {
            Fault::Partition(p) if self.targets_primary() => vec![PRIMARY.to_string()],
            Fault::Partition(p) => p
                .grudge
                .iter()
                .flat_map(|(dst, srcs)| std::iter::once(dst.clone()).chain(srcs.iter().cloned()))
                .collect(),
            Fault::Pause { nodes }
            | Fault::Kill { nodes }
            | Fault::Delay { nodes, .. }
            | Fault::Loss { nodes, .. } => nodes.clone(),
        };
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The history value of the fault: what a person needs to know to read the timeline.
    pub fn to_value(&self) -> Value {
        let names =
            |nodes: &[String]| Value::List(nodes.iter().map(|n| Value::from(n.as_str())).collect());
        match self {
            Fault::Partition(p) => {
                let mut m = verity_history::value::Map::new();
                m.insert("kind".to_string(), Value::from(p.kind.as_str()));
                if !p.cut.is_empty() {
                    let cut = p.cut.iter().map(|c| names(c)).collect();
                    m.insert("cut".to_string(), Value::List(cut));
                }
                let grudge = p
                    .grudge
                    .iter()
                    .map(|(dst, srcs)| {
                        (
                            dst.clone(),
                            names(&srcs.iter().cloned().collect::<Vec<_>>()),
                        )
                    })
                    .collect();
                m.insert("grudge".to_string(), Value::Map(grudge));
                Value::Map(m)
            }
            Fault::Pause { nodes } | Fault::Kill { nodes } => Value::map([("nodes", names(nodes))]),
            Fault::Delay {
                nodes,
                delay_ms,
                jitter_ms,
            } => Value::map([
                ("nodes", names(nodes)),
                ("delay_ms", Value::Int(i64::from(*delay_ms))),
                ("jitter_ms", Value::Int(i64::from(*jitter_ms))),
            ]),
            Fault::Loss { nodes, p } => {
                Value::map([("nodes", names(nodes)), ("p", Value::Float(*p))])
            }
        }
    }
}

impl fmt::Display for Fault {
    /// One short line for the terminal and logs: `partition halves n1 | n2 n3`, `pause n2`,
    /// `delay n1 100±25ms`, `loss n1 n2 n3 10%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(p) if !p.cut.is_empty() => {
                let parts: Vec<String> = p.cut.iter().map(|c| c.join(" ")).collect();
                write!(f, "partition {} {}", p.kind, parts.join(" | "))
            }
            Fault::Partition(p) => {
                let refusals: Vec<String> = p
                    .grudge
                    .iter()
                    .map(|(dst, srcs)| {
                        let srcs: Vec<&str> = srcs.iter().map(String::as_str).collect();
                        format!("{dst}<-x-{}", srcs.join(","))
                    })
                    .collect();
                write!(f, "partition {} {}", p.kind, refusals.join(" "))
            }
            Fault::Pause { nodes } => write!(f, "pause {}", nodes.join(" ")),
            Fault::Kill { nodes } => write!(f, "kill {}", nodes.join(" ")),
            Fault::Delay {
                nodes,
                delay_ms,
                jitter_ms,
            } => write!(f, "delay {} {delay_ms}±{jitter_ms}ms", nodes.join(" ")),
            Fault::Loss { nodes, p } => write!(f, "loss {} {:.0}%", nodes.join(" "), p * 100.0),
        }
    }
}

/// A change of the nemesis' state: a fault begins or ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "transition", content = "fault", rename_all = "kebab-case")]
pub enum Transition {
    Start(Fault),
    Stop(Fault),
}

impl Transition {
    pub fn fault(&self) -> &Fault {
        match self {
            Transition::Start(f) | Transition::Stop(f) => f,
        }
    }

    pub fn is_start(&self) -> bool {
        matches!(self, Transition::Start(_))
    }

    /// The `f` of the nemesis event that records this transition.
    pub fn event_name(&self) -> &'static str {
        match (self, self.fault().kind()) {
            (Transition::Start(_), FaultKind::Partition) => "start-partition",
            (Transition::Stop(_), FaultKind::Partition) => "stop-partition",
            (Transition::Start(_), FaultKind::Pause) => "pause",
            (Transition::Stop(_), FaultKind::Pause) => "resume",
            (Transition::Start(_), FaultKind::Kill) => "kill",
            (Transition::Stop(_), FaultKind::Kill) => "restart",
            (Transition::Start(_), FaultKind::Delay) => "start-delay",
            (Transition::Stop(_), FaultKind::Delay) => "stop-delay",
            (Transition::Start(_), FaultKind::Loss) => "start-loss",
            (Transition::Stop(_), FaultKind::Loss) => "stop-loss",
        }
    }

    /// The (f, value) of the `nemesis` `info` event that records this transition.
    pub fn to_event(&self) -> (F, Value) {
        (F::Other(self.event_name().into()), self.fault().to_value())
    }
}

/// Every `f` a nemesis event may carry, as (start, stop) pairs, for checkers and reports that pair them.
pub const EVENT_PAIRS: [(&str, &str); 5] = [
    ("start-partition", "stop-partition"),
    ("pause", "resume"),
    ("kill", "restart"),
    ("start-delay", "stop-delay"),
    ("start-loss", "stop-loss"),
];

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// Whether `a` and `b` can exchange bytes in both directions under a grudge.
    fn connected(g: &Grudge, a: &str, b: &str) -> bool {
        let refuses = |dst: &str, src: &str| g.get(dst).is_some_and(|s| s.contains(src));
        !refuses(a, b) && !refuses(b, a)
    }

    #[test]
    fn complete_shapes_cut_exactly_between_components() {
        for n in 2..=7 {
            for kind in [
                GrudgeKind::IsolateOne,
                GrudgeKind::Halves,
                GrudgeKind::MajorityMinority,
            ] {
                if n < kind.nodes_min() {
                    continue;
                }
                for seed in 0..20 {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let p = Partition::new(kind, &nodes(n), &mut rng).unwrap();
                    assert_eq!(p.cut.len(), 2);
                    let sizes: Vec<usize> = p.cut.iter().map(Vec::len).collect();
                    assert_eq!(sizes.iter().sum::<usize>(), n);
                    let small = *sizes.iter().min().unwrap();
                    match kind {
                        GrudgeKind::IsolateOne => assert_eq!(small, 1),
                        GrudgeKind::Halves => assert_eq!(small, n / 2),
                        _ => assert!(small >= 1 && 2 * small < n, "{sizes:?}"),
                    }
                    for a in &nodes(n) {
                        for b in &nodes(n) {
                            let same = p.cut.iter().any(|c| c.contains(a) && c.contains(b));
                            assert_eq!(connected(&p.grudge, a, b), same, "{a} {b} {p:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bridge_keeps_one_node_connected_to_both_sides() {
        for n in 3..=7 {
            let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
            let p = Partition::new(GrudgeKind::Bridge, &nodes(n), &mut rng).unwrap();
            let bridges: Vec<String> = nodes(n)
                .into_iter()
                .filter(|b| nodes(n).iter().all(|o| connected(&p.grudge, b, o)))
                .collect();
            assert_eq!(bridges.len(), 1, "{p:?}");
            assert!(!p.grudge.is_empty());
        }
    }

    #[test]
    fn majorities_ring_gives_every_node_a_distinct_majority() {
        for n in 3..=9 {
            let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
            let p = Partition::new(GrudgeKind::MajoritiesRing, &nodes(n), &mut rng).unwrap();
            let mut views = BTreeSet::new();
            for node in nodes(n) {
                let refused = p.grudge.get(&node).map_or(0, BTreeSet::len);
                let heard = n - refused;
                assert_eq!(heard, n / 2 + 1, "{node} hears {heard} of {n}");
                let view: BTreeSet<String> = nodes(n)
                    .into_iter()
                    .filter(|s| !p.drops(s, &node))
                    .collect();
                assert!(view.contains(&node));
                views.insert(view);
            }
            assert_eq!(views.len(), n, "views must differ");
        }
    }

    #[test]
    fn isolate_primary_is_a_placeholder_until_resolved() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let p = Partition::new(GrudgeKind::IsolatePrimary, &nodes(3), &mut rng).unwrap();
        let f = Fault::Partition(p);
        assert!(f.targets_primary());
        assert_eq!(f.nodes(), vec![PRIMARY.to_string()]);
        let r = f.resolve_primary("n2", &nodes(3));
        assert!(!r.targets_primary());
        let Fault::Partition(rp) = &r else { panic!() };
        assert_eq!(rp.kind, GrudgeKind::IsolatePrimary);
        assert_eq!(
            rp.cut,
            vec![
                vec!["n1".to_string(), "n3".to_string()],
                vec!["n2".to_string()]
            ]
        );
        assert!(rp.drops("n1", "n2") && rp.drops("n2", "n3") && !rp.drops("n1", "n3"));
        assert_eq!(r.to_string(), "partition isolate-primary n1 n3 | n2");
        let pause = Fault::Pause {
            nodes: vec![PRIMARY.into(), "n3".into()],
        };
        assert!(pause.targets_primary());
        assert_eq!(
            pause.resolve_primary("n1", &nodes(3)).nodes(),
            vec!["n1", "n3"]
        );
        let kill = Fault::Kill {
            nodes: vec!["n3".into()],
        };
        assert!(!kill.targets_primary());
        assert_eq!(kill.resolve_primary("n1", &nodes(3)), kill);
    }

    #[test]
    fn too_few_nodes_is_an_error_not_a_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(Partition::new(GrudgeKind::Bridge, &nodes(2), &mut rng).is_err());
        assert!(Partition::new(GrudgeKind::IsolateOne, &nodes(1), &mut rng).is_err());
    }

    #[test]
    fn events_are_named_as_in_jepsen_and_carry_the_grudge() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let p = Partition::new(GrudgeKind::IsolateOne, &nodes(3), &mut rng).unwrap();
        let start = Transition::Start(Fault::Partition(p.clone()));
        let (f, v) = start.to_event();
        assert_eq!(f.as_str(), "start-partition");
        assert_eq!(v.get("kind").and_then(Value::as_str), Some("isolate-one"));
        assert_eq!(
            v.get("cut").and_then(Value::as_list).map(<[Value]>::len),
            Some(2)
        );
        assert_eq!(
            Transition::Stop(Fault::Partition(p)).to_event().0.as_str(),
            "stop-partition"
        );
        let pause = Fault::Pause {
            nodes: vec!["n2".into()],
        };
        assert_eq!(Transition::Start(pause.clone()).event_name(), "pause");
        assert_eq!(Transition::Stop(pause).event_name(), "resume");
        let s = serde_json::to_string(&Transition::Start(Fault::Kill {
            nodes: vec!["n1".into()],
        }))
        .unwrap();
        let back: Transition = serde_json::from_str(&s).unwrap();
        assert_eq!(back.event_name(), "kill");
    }

    #[test]
    fn faults_print_on_one_short_line() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let p = Partition::new(GrudgeKind::IsolateOne, &nodes(3), &mut rng).unwrap();
        let line = Fault::Partition(p).to_string();
        assert!(line.starts_with("partition isolate-one "), "{line}");
        assert_eq!(line.matches(" | ").count(), 1);
        let ring = Partition::new(GrudgeKind::MajoritiesRing, &nodes(3), &mut rng).unwrap();
        assert!(Fault::Partition(ring).to_string().contains("<-x-"));
        let delay = Fault::Delay {
            nodes: vec!["n1".into()],
            delay_ms: 100,
            jitter_ms: 25,
        };
        assert_eq!(delay.to_string(), "delay n1 100±25ms");
        let loss = Fault::Loss {
            nodes: nodes(2),
            p: 0.1,
        };
        assert_eq!(loss.to_string(), "loss n1 n2 10%");
    }

    #[test]
    fn nemesis_lists_parse_sorted_and_reject_unknown_names() {
        assert_eq!(
            FaultKind::parse_list("kill, partition,pause,kill").unwrap(),
            vec![FaultKind::Partition, FaultKind::Pause, FaultKind::Kill]
        );
        assert_eq!(FaultKind::parse_list("none").unwrap(), vec![]);
        assert!(FaultKind::parse_list("partition,clock").is_err());
    }
}
