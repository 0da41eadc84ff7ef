//! A TCP proxy mesh owned by verity: every client→node and node→node connection goes through it, and
//! each direction of traffic between two endpoints has a state — pass, drop, delay or loss — that the
//! nemesis sets. No root, no iptables, no `tc`: it works wherever the harness can listen on loopback.
//!
//! Jepsen cuts links with iptables and degrades them with `tc netem`; Maelstrom routes every message
//! through its own in-process network. verity sits between the two: real processes and real TCP, but
//! the network between them is a set of listeners that verity runs on tokio. For every directed pair
//! (src, dst) of endpoints — clients are the one endpoint [`CLIENT`] ("c"), nodes are "n1".."nN" —
//! there is a listener on 127.0.0.1 that src dials to reach dst, and the proxy forwards to dst's real
//! address.
//!
//! States are per *direction of bytes*: the state of (a, b) governs bytes from a to b, both on the
//! connections a opens to b (forward) and on the replies over connections b opened to a (backward), so
//! a Jepsen grudge ("b refuses traffic from a") maps onto it one to one. Semantics, chosen to match what
//! TCP does over a faulty IP network rather than to invent failures TCP never shows:
//! - **pass**: bytes are forwarded as they come.
//! - **drop**: no byte moves from a to b. Bytes already sent are held, not discarded — TCP would
//!   retransmit them, and discarding would corrupt the stream — and move again when the link heals, as
//!   with iptables `DROP`. A new connection whose forward direction is dropped is accepted (the kernel
//!   completes the handshake) but held without reaching dst. A connection held longer than
//!   `hold_ms_max` is severed, as a TCP retransmission timeout would end it.
//! - **delay(ms, jitter)**: each chunk is delivered `ms ± jitter` (seeded, uniform) after it was read,
//!   in order, without limiting throughput (chunks are pipelined, not serialized behind the delay).
//! - **loss(p)**: each chunk is lost with probability p and "retransmitted" after a TCP-like timeout of
//!   `loss_rto_ms`, doubling (up to `loss_rto_max_ms`) at every further loss of the same chunk; a
//!   chunk lost more than `loss_retries_max` times in a row severs the connection. Loss therefore
//!   shows as latency spikes and, rarely, a reset — what packet loss looks like from above TCP.
//!
//! Everything is bounded: chunk size, chunks queued per direction, connections per link, delays (the
//! nemesis caps them), and the time a connection may be held.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The endpoint name all clients share.
pub const CLIENT: &str = "c";

/// What happens to bytes travelling one direction between two endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum LinkState {
    #[default]
    Pass,
    Drop,
    Delay {
        delay_ms: u32,
        jitter_ms: u32,
    },
    Loss {
        p: f64,
    },
}

/// Limits of the mesh.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// The most bytes read and forwarded at once.
    pub chunk_bytes: usize,
    /// Chunks queued per direction of a connection before the reader waits (back-pressure).
    pub queue_chunks: usize,
    /// Connections open at once on one listener; more are accepted and closed at once.
    pub connections_per_link_max: usize,
    /// A connection held by a dropped direction longer than this is severed.
    pub hold_ms_max: u64,
    /// The first retransmission timeout of a lost chunk.
    pub loss_rto_ms: u64,
    /// The retransmission timeout doubles at every loss of the same chunk up to this cap (Linux caps
    /// it at 120 s; verity's runs are short).
    pub loss_rto_max_ms: u64,
    /// A chunk lost more often than this in a row severs its connection.
    pub loss_retries_max: u32,
    /// How long the proxy tries to reach dst's real address.
    pub connect_timeout_ms: u64,
    /// Node-to-node listeners of one destination share one port, each source on its own loopback
    /// address (`127.0.<src>.<dst>`): for stores whose members all dial a peer at one advertised
    /// address, resolved per member to its own listener (see [`crate::nodes::Nodes::per_source_addresses`]).
    pub per_source_addresses: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            chunk_bytes: 16 * 1024,
            queue_chunks: 16,
            connections_per_link_max: 256,
            hold_ms_max: 30_000,
            loss_rto_ms: 200,
            loss_rto_max_ms: 2_000,
            loss_retries_max: 6,
            connect_timeout_ms: 2_000,
            per_source_addresses: false,
        }
    }
}

#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("bind a listener for link {src}->{dst}: {source}")]
    Bind {
        src: String,
        dst: String,
        source: io::Error,
    },
    #[error("unknown endpoint {0:?}")]
    UnknownEndpoint(String),
    #[error("endpoint {0:?} is listed twice")]
    DuplicateEndpoint(String),
    #[error("invalid link state {state:?}: {why}")]
    InvalidState { state: LinkState, why: &'static str },
}

/// Counters of one direction of traffic (src -> dst).
#[derive(Debug, Default)]
struct DirectionCounters {
    bytes: AtomicU64,
    chunks: AtomicU64,
}

/// Counters of one listener.
#[derive(Debug, Default)]
struct ListenerCounters {
    accepted: AtomicU64,
    active: AtomicU64,
    refused: AtomicU64,
    severed: AtomicU64,
}

/// A snapshot of the counters of a link, for tests, logs and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LinkStats {
    /// Bytes delivered from src to dst (over any connection).
    pub bytes: u64,
    pub chunks: u64,
    /// Connections src opened to dst through this link's listener.
    pub accepted: u64,
    pub active: u64,
    /// Connections refused because the link was at its connection limit.
    pub refused: u64,
    /// Connections severed by a hold timeout, a loss give-up or an I/O error.
    pub severed: u64,
}

struct Shared {
    names: Vec<String>,
    index: BTreeMap<String, usize>,
    /// `states[src * n + dst]`: the state of bytes from src to dst.
    states: Mutex<Vec<LinkState>>,
    /// Bumped after every change of `states`, so held connections wake up.
    version: watch::Sender<u64>,
    upstreams: Mutex<Vec<Option<SocketAddr>>>,
    /// Where a node's peers connect, where that is not where clients do.
    peer_upstreams: Mutex<Vec<Option<SocketAddr>>>,
    /// How many of the endpoints are sources only (clients); the rest are nodes.
    sources: usize,
    directions: Vec<DirectionCounters>,
    listeners: Vec<ListenerCounters>,
    shutdown: watch::Sender<bool>,
    config: ProxyConfig,
    seed: u64,
    connection_count: AtomicU64,
}

impl Shared {
    fn n(&self) -> usize {
        self.names.len()
    }

    fn state(&self, dir: usize) -> LinkState {
        self.states.lock()[dir]
    }
}

/// The mesh: one listener per directed link, and the state of every direction.
pub struct ProxyMesh {
    shared: Arc<Shared>,
    addrs: BTreeMap<(String, String), SocketAddr>,
    accept_tasks: Vec<JoinHandle<()>>,
}

impl ProxyMesh {
    /// Binds a listener for every (src, dst) with src among `sources` or the nodes and dst a node,
    /// src ≠ dst. `nodes` gives each node's real address when known; [`ProxyMesh::set_upstream`] sets
    /// or changes it later (a node that is given its peers' proxy addresses before it listens).
    /// Must be called inside a tokio runtime.
    pub async fn start(
        sources: &[&str],
        nodes: &[(String, Option<SocketAddr>)],
        config: ProxyConfig,
        seed: u64,
    ) -> Result<ProxyMesh, ProxyError> {
        let mut names: Vec<String> = Vec::new();
        for name in sources
            .iter()
            .map(|s| s.to_string())
            .chain(nodes.iter().map(|(n, _)| n.clone()))
        {
            if names.contains(&name) {
                return Err(ProxyError::DuplicateEndpoint(name));
            }
            names.push(name);
        }
        let n = names.len();
        let index: BTreeMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i))
            .collect();
        let mut upstreams = vec![None; n];
        for (name, addr) in nodes {
            upstreams[index[name]] = *addr;
        }
        let shared = Arc::new(Shared {
            names: names.clone(),
            index,
            states: Mutex::new(vec![LinkState::Pass; n * n]),
            version: watch::channel(0).0,
            upstreams: Mutex::new(upstreams),
            peer_upstreams: Mutex::new(vec![None; n]),
            sources: sources.len(),
            directions: (0..n * n).map(|_| DirectionCounters::default()).collect(),
            listeners: (0..n * n).map(|_| ListenerCounters::default()).collect(),
            shutdown: watch::channel(false).0,
            config,
            seed,
            connection_count: AtomicU64::new(0),
        });
        let mut mesh = ProxyMesh {
            shared: shared.clone(),
            addrs: BTreeMap::new(),
            accept_tasks: Vec::new(),
        };
        let first_node = sources.len();
        for dst in first_node..n {
            let mut listeners = Vec::new();
            for src in (0..n).filter(|s| *s != dst) {
                let by_source = shared.config.per_source_addresses && src >= first_node;
                if !by_source {
                    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await;
                    listeners.push((src, listener.map_err(|e| bind_error(&names, src, dst, e))?));
                }
            }
            if shared.config.per_source_addresses {
                listeners.extend(bind_per_source(&names, first_node, dst).await?);
            }
            for (src, listener) in listeners {
                let addr = listener
                    .local_addr()
                    .map_err(|e| bind_error(&names, src, dst, e))?;
                mesh.addrs
                    .insert((names[src].clone(), names[dst].clone()), addr);
                let task = tokio::spawn(accept_loop(shared.clone(), listener, src, dst));
                mesh.accept_tasks.push(task);
            }
        }
        Ok(mesh)
    }

    /// Sets where the node's peers connect, when that is not where its clients do.
    pub fn set_peer_upstream(&self, node: &str, addr: SocketAddr) -> Result<(), ProxyError> {
        let i = self.idx(node)?;
        self.shared.peer_upstreams.lock()[i] = Some(addr);
        Ok(())
    }

    /// The address src must dial to reach dst through the proxy.
    pub fn addr(&self, src: &str, dst: &str) -> Option<SocketAddr> {
        self.addrs.get(&(src.to_string(), dst.to_string())).copied()
    }

    /// Every listener as "src->dst" and its port, sorted: what the state file records.
    pub fn ports(&self) -> BTreeMap<String, u16> {
        self.addrs
            .iter()
            .map(|((s, d), a)| (format!("{s}->{d}"), a.port()))
            .collect()
    }

    /// Every endpoint name, sources first, in the order given to [`ProxyMesh::start`].
    pub fn endpoints(&self) -> &[String] {
        &self.shared.names
    }

    /// Sets (or changes, after a restart on another port) the real address of a node.
    pub fn set_upstream(&self, node: &str, addr: SocketAddr) -> Result<(), ProxyError> {
        let i = self.idx(node)?;
        self.shared.upstreams.lock()[i] = Some(addr);
        Ok(())
    }

    /// Sets the state of bytes from `src` to `dst`.
    pub fn set(&self, src: &str, dst: &str, state: LinkState) -> Result<(), ProxyError> {
        validate(state)?;
        let dir = self.idx(src)? * self.shared.n() + self.idx(dst)?;
        self.shared.states.lock()[dir] = state;
        self.shared.version.send_modify(|v| *v += 1);
        Ok(())
    }

    /// Replaces the state of every direction at once with `f(src, dst)`, so a fault's links change
    /// together and held connections wake up once.
    pub fn set_all(&self, f: impl Fn(&str, &str) -> LinkState) -> Result<(), ProxyError> {
        let n = self.shared.n();
        let mut next = vec![LinkState::Pass; n * n];
        for (s, src) in self.shared.names.iter().enumerate() {
            for (d, dst) in self.shared.names.iter().enumerate() {
                if s != d {
                    next[s * n + d] = validate(f(src, dst))?;
                }
            }
        }
        *self.shared.states.lock() = next;
        self.shared.version.send_modify(|v| *v += 1);
        Ok(())
    }

    /// Every direction passes. Synchronous and infallible, so it can run in `Drop` and panic paths.
    pub fn pass_all(&self) {
        self.shared.states.lock().fill(LinkState::Pass);
        self.shared.version.send_modify(|v| *v += 1);
    }

    /// The state of bytes from `src` to `dst`.
    pub fn state(&self, src: &str, dst: &str) -> Option<LinkState> {
        let dir = self.shared.index.get(src)? * self.shared.n() + self.shared.index.get(dst)?;
        Some(self.shared.state(dir))
    }

    /// Whether every direction passes.
    pub fn all_pass(&self) -> bool {
        self.shared
            .states
            .lock()
            .iter()
            .all(|s| *s == LinkState::Pass)
    }

    /// Counters of traffic from src to dst, and of the listener src dials to reach dst.
    pub fn stats(&self, src: &str, dst: &str) -> Option<LinkStats> {
        let dir = self.shared.index.get(src)? * self.shared.n() + self.shared.index.get(dst)?;
        let d = &self.shared.directions[dir];
        let l = &self.shared.listeners[dir];
        Some(LinkStats {
            bytes: d.bytes.load(Ordering::Relaxed),
            chunks: d.chunks.load(Ordering::Relaxed),
            accepted: l.accepted.load(Ordering::Relaxed),
            active: l.active.load(Ordering::Relaxed),
            refused: l.refused.load(Ordering::Relaxed),
            severed: l.severed.load(Ordering::Relaxed),
        })
    }

    /// The counters of every direction between distinct endpoints, keyed "src->dst", sorted: for the
    /// run's log and report (how much each link carried, how many connections it severed).
    pub fn all_stats(&self) -> BTreeMap<String, LinkStats> {
        let names = &self.shared.names;
        let mut out = BTreeMap::new();
        for src in names {
            for dst in names.iter().filter(|d| *d != src) {
                if let Some(s) = self.stats(src, dst) {
                    out.insert(format!("{src}->{dst}"), s);
                }
            }
        }
        out
    }

    fn idx(&self, name: &str) -> Result<usize, ProxyError> {
        self.shared
            .index
            .get(name)
            .copied()
            .ok_or_else(|| ProxyError::UnknownEndpoint(name.to_string()))
    }
}

/// The mesh as the target's links: every dialler reaches a node through the mesh's listener for
/// exactly that (from, to) pair.
impl crate::nodes::Links for ProxyMesh {
    fn dial(&self, from: &crate::nodes::Endpoint, to: &str) -> SocketAddr {
        let src = match from {
            crate::nodes::Endpoint::Client => CLIENT,
            crate::nodes::Endpoint::Node(id) => id.as_str(),
        };
        self.addr(src, to)
            .expect("the mesh has a listener for every (endpoint, node) pair")
    }
}

impl Drop for ProxyMesh {
    /// Stops accepting and closes every proxied connection.
    fn drop(&mut self) {
        for task in &self.accept_tasks {
            task.abort();
        }
        self.shared.shutdown.send_replace(true);
    }
}

fn validate(state: LinkState) -> Result<LinkState, ProxyError> {
    match state {
        LinkState::Delay {
            delay_ms,
            jitter_ms,
        } if delay_ms > super::faults::DELAY_MS_MAX || jitter_ms > delay_ms => {
            Err(ProxyError::InvalidState {
                state,
                why: "delay must be at most DELAY_MS_MAX and jitter at most the delay",
            })
        }
        LinkState::Loss { p } if !(0.0..=super::faults::LOSS_P_MAX).contains(&p) => {
            Err(ProxyError::InvalidState {
                state,
                why: "loss probability must be within 0..=LOSS_P_MAX",
            })
        }
        _ => Ok(state),
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, src: usize, dst: usize) {
    let link = src * shared.n() + dst;
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let counters = &shared.listeners[link];
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        if counters.active.load(Ordering::Relaxed) >= shared.config.connections_per_link_max as u64
        {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            drop(inbound);
            continue;
        }
        counters.active.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut shutdown = shared.shutdown.subscribe();
            let severed = tokio::select! {
                r = serve(&shared, inbound, src, dst) => r.is_err(),
                _ = shutdown.wait_for(|s| *s) => false,
            };
            let counters = &shared.listeners[link];
            if severed {
                counters.severed.fetch_add(1, Ordering::Relaxed);
            }
            counters.active.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

fn bind_error(names: &[String], src: usize, dst: usize, source: io::Error) -> ProxyError {
    ProxyError::Bind {
        src: names[src].clone(),
        dst: names[dst].clone(),
        source,
    }
}

/// The listeners of every node source to `dst` on one port, each on `127.0.<src>.<dst>`
/// (1-based among the endpoints): a port free on all of those addresses, found in a bounded number
/// of tries.
async fn bind_per_source(
    names: &[String],
    first_node: usize,
    dst: usize,
) -> Result<Vec<(usize, TcpListener)>, ProxyError> {
    let sources: Vec<usize> = (first_node..names.len()).filter(|s| *s != dst).collect();
    let ip = |src: usize| Ipv4Addr::new(127, 0, src as u8 + 1, dst as u8 + 1);
    let mut last = None;
    for _ in 0..64 {
        let Some(&first) = sources.first() else {
            return Ok(Vec::new());
        };
        let l = TcpListener::bind((ip(first), 0))
            .await
            .map_err(|e| bind_error(names, first, dst, e))?;
        let port = l
            .local_addr()
            .map_err(|e| bind_error(names, first, dst, e))?
            .port();
        let mut got = vec![(first, l)];
        let mut ok = true;
        for &src in &sources[1..] {
            match TcpListener::bind((ip(src), port)).await {
                Ok(l) => got.push((src, l)),
                Err(e) => {
                    last = Some(bind_error(names, src, dst, e));
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Ok(got);
        }
    }
    Err(last.expect("64 failed attempts leave an error"))
}

/// Why a connection ended early: both sockets are closed.
#[derive(Debug)]
struct Severed;

/// Forwards one connection from src to dst until both directions end.
async fn serve(shared: &Shared, inbound: TcpStream, src: usize, dst: usize) -> Result<(), Severed> {
    let n = shared.n();
    let forward = src * n + dst;
    let backward = dst * n + src;
    let number = shared.connection_count.fetch_add(1, Ordering::Relaxed);
    // Hold a new connection whose forward direction is dropped: it must not reach dst.
    hold_while_dropped(shared, forward).await?;
    let upstream_addr = if src >= shared.sources {
        shared.peer_upstreams.lock()[dst].or(shared.upstreams.lock()[dst])
    } else {
        shared.upstreams.lock()[dst]
    }
    .ok_or(Severed)?;
    let connect = TcpStream::connect(upstream_addr);
    let timeout = Duration::from_millis(shared.config.connect_timeout_ms);
    let upstream = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(s)) => s,
        _ => return Err(Severed),
    };
    let _ = inbound.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (ir, iw) = inbound.into_split();
    let (ur, uw) = upstream.into_split();
    let rng = |dir: usize| {
        let mut r = ChaCha8Rng::seed_from_u64(shared.seed);
        r.set_stream((number << 20) | dir as u64);
        r
    };
    let a = pump(shared, forward, ir, uw, rng(forward));
    let b = pump(shared, backward, ur, iw, rng(backward));
    // The first direction to be severed ends both: dropping the halves closes the sockets.
    tokio::try_join!(a, b).map(|_| ())
}

/// Moves bytes one way: a reader that stamps each chunk with its delivery time, and a writer that
/// delivers in order at that time, unless the direction is dropped.
async fn pump<R, W>(
    shared: &Shared,
    dir: usize,
    mut reader: R,
    mut writer: W,
    mut rng: ChaCha8Rng,
) -> Result<(), Severed>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(shared.config.queue_chunks.max(1));
    let read_side = async move {
        let mut buf = vec![0u8; shared.config.chunk_bytes.max(1)];
        loop {
            let n = reader.read(&mut buf).await.map_err(|_| Severed)?;
            if n == 0 {
                return Ok::<(), Severed>(());
            }
            let due = Instant::now() + extra_latency(shared, shared.state(dir), &mut rng)?;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
        // Returning drops `tx`, which tells the writer the stream ended.
    };
    let write_side = async move {
        let mut last_due = Instant::now();
        while let Some((due, chunk)) = rx.recv().await {
            last_due = last_due.max(due);
            // The timer wheel has millisecond granularity: never visit it for a chunk already due.
            if last_due > Instant::now() {
                tokio::time::sleep_until(last_due).await;
            }
            hold_while_dropped(shared, dir).await?;
            writer.write_all(&chunk).await.map_err(|_| Severed)?;
            let counters = &shared.directions[dir];
            counters
                .bytes
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            counters.chunks.fetch_add(1, Ordering::Relaxed);
        }
        // Half-close: the other direction may still be talking.
        let _ = writer.shutdown().await;
        Ok::<(), Severed>(())
    };
    tokio::try_join!(read_side, write_side).map(|_| ())
}

/// The latency a chunk read now gets on top of the network's own, per the direction's state.
fn extra_latency(
    shared: &Shared,
    state: LinkState,
    rng: &mut ChaCha8Rng,
) -> Result<Duration, Severed> {
    match state {
        LinkState::Pass | LinkState::Drop => Ok(Duration::ZERO),
        LinkState::Delay {
            delay_ms,
            jitter_ms,
        } => {
            let jitter = i64::from(jitter_ms);
            let ms = i64::from(delay_ms) + rng.gen_range(-jitter..=jitter);
            Ok(Duration::from_millis(ms.max(0) as u64))
        }
        LinkState::Loss { p } => {
            let mut extra = Duration::ZERO;
            let mut rto = Duration::from_millis(shared.config.loss_rto_ms);
            let rto_max = Duration::from_millis(shared.config.loss_rto_max_ms).max(rto);
            let mut losses = 0;
            while rng.gen_bool(p) {
                losses += 1;
                if losses > shared.config.loss_retries_max {
                    return Err(Severed);
                }
                extra += rto;
                rto = (rto * 2).min(rto_max);
            }
            Ok(extra)
        }
    }
}

/// Waits while the direction is dropped; severs after `hold_ms_max`.
async fn hold_while_dropped(shared: &Shared, dir: usize) -> Result<(), Severed> {
    if shared.state(dir) != LinkState::Drop {
        return Ok(()); // the common case, without touching the watch channel
    }
    let deadline = Instant::now() + Duration::from_millis(shared.config.hold_ms_max);
    let mut version = shared.version.subscribe();
    loop {
        // Mark the current version seen *before* reading the state, so no change is missed.
        version.borrow_and_update();
        if shared.state(dir) != LinkState::Drop {
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, version.changed()).await {
            Ok(Ok(())) => continue,
            // Timed out, or the mesh is gone.
            _ => return Err(Severed),
        }
    }
}
