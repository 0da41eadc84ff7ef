//! One replica of the replicated ledger: a TCP server for clients and peers, a Raft core, a durable
//! log, and the ledger state machine. `verity node` runs exactly this ([`run_node`]).
//!
//! The shape is etcd-raft's: one task owns the consensus core and the state machine and loops
//! "take input -> step the core -> persist (fsync) -> send messages -> apply committed entries ->
//! answer clients". Inputs arrive from connection tasks over one bounded channel and are taken in
//! batches, so one fsync covers many requests. Peer links are one outbound TCP connection per peer,
//! dialled at the address the harness gave (the proxy's port for this directed link when the
//! nemesis is active), redialled after any failure; a message that cannot be sent is dropped, which
//! Raft tolerates by design (heartbeats resend what was lost).
//!
//! Every [`NodeConfig::snapshot_every`] applied entries the node snapshots its ledger and compacts
//! its log (Raft §7), so a node's memory and its restart time follow the ledger's state, not the
//! length of the run; a follower that fell behind the leader's snapshot is sent the snapshot.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::bugs::Bugs;
use crate::ledger::Ledger;
use crate::raft::{Raft, RaftConfig, Ready};
use crate::storage::{Snapshot, Storage, StorageError};
use crate::wire::{ClientOp, Command, Frame, NodeId, Outcome, PeerMsg, Request, Response, Role};

/// Longest accepted line: a full append message fits many times over.
pub const LINE_MAX_BYTES: u64 = 16 << 20;
const INBOX_MAX: usize = 8192;
const INPUT_BATCH_MAX: usize = 1024;
const PEER_QUEUE_MAX: usize = 2048;
const CONN_QUEUE_MAX: usize = 1024;
const PENDING_MAX: usize = 65_536;
const TICK: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Where this node accepts connections (clients and peers).
    pub listen: SocketAddr,
    /// Every other node and the address to DIAL to reach it from this node (the node's own listen
    /// address without a proxy; the proxy's port for the link this -> peer with one).
    pub peers: BTreeMap<NodeId, SocketAddr>,
    pub data_dir: PathBuf,
    pub bugs: Bugs,
    pub seed: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_ms: u64,
    /// Applied entries between two snapshots (0: never compact). Not under the `early-ack` and
    /// `split-brain` knobs, which apply or commit entries a majority does not hold: a snapshot holds
    /// committed state only, so those runs keep their whole log.
    pub snapshot_every: u64,
}

/// The default of [`NodeConfig::snapshot_every`]: a snapshot of a ledger of a million transfers is
/// a few MB, written once per this many entries.
pub const SNAPSHOT_EVERY: u64 = 10_000;

impl NodeConfig {
    pub fn new(id: impl Into<NodeId>, listen: SocketAddr, data_dir: PathBuf) -> Self {
        NodeConfig {
            id: id.into(),
            listen,
            peers: BTreeMap::new(),
            data_dir,
            bugs: Bugs::default(),
            seed: 0,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            heartbeat_ms: 50,
            snapshot_every: SNAPSHOT_EVERY,
        }
    }
}

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("failed to listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{node}: snapshot at index {index} does not restore: {why}")]
    Snapshot {
        node: NodeId,
        index: u64,
        why: String,
    },
}

/// Timestamped line on stderr (the node's log file when started by the supervisor).
macro_rules! log {
    ($id:expr, $($arg:tt)*) => {{
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        eprintln!("{ms} {} {}", $id, format_args!($($arg)*));
    }};
}

enum Input {
    Peer {
        from: NodeId,
        msg: PeerMsg,
    },
    Client {
        req: Request,
        reply: mpsc::Sender<Response>,
    },
}

struct Pending {
    term: u64,
    req_id: u64,
    reply: mpsc::Sender<Response>,
}

/// Runs one replica until `shutdown` completes (or forever). Dropping the returned future stops
/// every task of the node, as a crash would; what was fsynced survives.
pub async fn run_node(
    config: NodeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| NodeError::Bind {
            addr: config.listen,
            source,
        })?;
    let storage_dir = config.data_dir.clone();
    let (storage, recovered) = tokio::task::block_in_place(|| Storage::open(&storage_dir))?;
    let snapshot_meta = recovered.snapshot.as_ref().map(|s| s.meta);
    log!(
        config.id,
        "starting: listen {} peers {:?} bugs {:?} term {} snapshot {:?} log {} entries",
        config.listen,
        config.peers,
        config.bugs.names(),
        recovered.hard.term,
        snapshot_meta,
        recovered.entries.len()
    );
    let ledger = match &recovered.snapshot {
        Some(s) => restore(&config.id, s)?,
        None => Ledger::new(!config.bugs.no_dedupe),
    };
    let start = Instant::now();
    let mut raft_cfg = RaftConfig::new(
        config.id.clone(),
        config.peers.keys().cloned().collect(),
        config.seed,
    );
    raft_cfg.election_timeout_min_ms = config.election_timeout_min_ms;
    raft_cfg.election_timeout_max_ms = config.election_timeout_max_ms;
    raft_cfg.heartbeat_ms = config.heartbeat_ms;
    raft_cfg.split_brain = config.bugs.split_brain;
    raft_cfg.async_replication = config.bugs.early_ack;
    let raft = Raft::new(raft_cfg, recovered, 0);

    let mut tasks = JoinSet::new();
    let (in_tx, mut in_rx) = mpsc::channel::<Input>(INBOX_MAX);
    tasks.spawn(accept_loop(listener, in_tx));
    let mut peer_tx = BTreeMap::new();
    for (peer, addr) in &config.peers {
        let (tx, rx) = mpsc::channel::<String>(PEER_QUEUE_MAX);
        peer_tx.insert(peer.clone(), tx);
        tasks.spawn(peer_sender(config.id.clone(), *addr, rx));
    }
    let compacts = !config.bugs.early_ack && !config.bugs.split_brain;
    let mut core = Core {
        id: config.id.clone(),
        bugs: config.bugs,
        raft,
        ledger,
        applied: snapshot_meta.map_or(0, |m| m.index),
        snapshot_every: if compacts { config.snapshot_every } else { 0 },
        storage,
        pending: BTreeMap::new(),
        peer_tx,
        last_role: (Role::Follower, 0),
    };
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            input = in_rx.recv() => {
                let Some(input) = input else { break };
                let now = start.elapsed().as_millis() as u64;
                core.input(input, now);
                for _ in 0..INPUT_BATCH_MAX {
                    match in_rx.try_recv() {
                        Ok(input) => core.input(input, now),
                        Err(_) => break,
                    }
                }
            }
            _ = ticker.tick() => {}
        }
        let now = start.elapsed().as_millis() as u64;
        core.raft.tick(now);
        core.flush()?;
    }
    log!(config.id, "stopping");
    tasks.shutdown().await;
    Ok(())
}

/// The ledger a snapshot holds.
fn restore(node: &NodeId, snapshot: &Snapshot) -> Result<Ledger, NodeError> {
    Ledger::from_snapshot(snapshot.data.as_bytes()).map_err(|why| NodeError::Snapshot {
        node: node.clone(),
        index: snapshot.meta.index,
        why,
    })
}

struct Core {
    id: NodeId,
    bugs: Bugs,
    raft: Raft,
    ledger: Ledger,
    applied: u64,
    /// See [`NodeConfig::snapshot_every`]; 0 under the knobs that break commitment.
    snapshot_every: u64,
    storage: Storage,
    /// Client requests waiting for their log entry to be applied, by log index.
    pending: BTreeMap<u64, Pending>,
    peer_tx: BTreeMap<NodeId, mpsc::Sender<String>>,
    last_role: (Role, u64),
}

fn respond(reply: &mpsc::Sender<Response>, id: u64, outcome: Outcome) {
    // A full or closed connection means the client is gone or stuck: it will time out and decide.
    let _ = reply.try_send(Response { id, outcome });
}

impl Core {
    fn input(&mut self, input: Input, now_ms: u64) {
        match input {
            Input::Peer { from, msg } => self.raft.step(&from, msg, now_ms),
            Input::Client { req, reply } => self.request(req, reply),
        }
    }

    fn request(&mut self, req: Request, reply: mpsc::Sender<Response>) {
        let cmd = match req.op {
            ClientOp::LocalState => {
                let state = Some(self.ledger.state(true));
                return respond(&reply, req.id, Outcome::Ok { state });
            }
            ClientOp::Status => {
                let status = self.raft.status(self.applied);
                return respond(&reply, req.id, Outcome::Status(status));
            }
            ClientOp::Read if self.bugs.stale_read => {
                // The bug: whatever this replica has applied, leader or not, current or not.
                let state = Some(self.ledger.state(false));
                return respond(&reply, req.id, Outcome::Ok { state });
            }
            ClientOp::Txn { txn } if self.bugs.stale_read && txn.read_only() => {
                return respond(&reply, req.id, self.ledger.read_only(&txn));
            }
            ClientOp::Txn { txn } => Command::Txn(txn),
            ClientOp::Read => Command::Read,
            ClientOp::FinalRead => Command::FinalRead,
            ClientOp::Setup { balances } => Command::Setup { balances },
            ClientOp::Transfer { transfer } => Command::Transfer(transfer),
        };
        if self.pending.len() >= PENDING_MAX {
            let error = "overloaded".to_string();
            return respond(&reply, req.id, Outcome::Fail { error });
        }
        match self.raft.propose(cmd) {
            Some(index) => {
                let pending = Pending {
                    term: self.raft.term(),
                    req_id: req.id,
                    reply,
                };
                self.pending.insert(index, pending);
            }
            None => {
                let leader = self.raft.leader().cloned();
                respond(&reply, req.id, Outcome::NotLeader { leader });
            }
        }
    }

    /// Persists, sends, applies, answers — in that order.
    fn flush(&mut self) -> Result<(), NodeError> {
        let Ready {
            hard,
            snapshot,
            append,
            messages,
        } = self.raft.ready();
        if hard.is_some() || snapshot.is_some() || append.is_some() {
            let storage = &mut self.storage;
            let raft = &self.raft;
            tokio::task::block_in_place(|| -> Result<(), StorageError> {
                if let Some(s) = &snapshot {
                    storage.compact(s, raft.log_after_snapshot())?;
                }
                if let Some((from, entries)) = &append {
                    storage.append(*from, entries)?;
                    storage.sync()?;
                }
                if let Some(h) = &hard {
                    storage.save_hard_state(h)?;
                }
                Ok(())
            })?;
        }
        if let Some(s) = snapshot {
            self.install(&s)?;
        }
        for (to, msg) in messages {
            let frame = Frame::Peer {
                from: self.id.clone(),
                msg,
            };
            let line = serde_json::to_string(&frame).expect("frames always serialize");
            if let Some(tx) = self.peer_tx.get(&to) {
                // A full queue means the link is stuck; Raft resends what matters.
                let _ = tx.try_send(line);
            }
        }
        self.drop_overwritten();
        self.apply();
        self.compact()?;
        self.log_transitions();
        Ok(())
    }

    /// The state machine becomes the leader's snapshot. Requests waiting for an entry the snapshot
    /// covers get no answer: whether their entry or another leader's is in it cannot be told, so
    /// their clients time out and record them as indeterminate.
    fn install(&mut self, snapshot: &Snapshot) -> Result<(), NodeError> {
        self.ledger = restore(&self.id, snapshot)?;
        self.applied = snapshot.meta.index;
        self.pending = self.pending.split_off(&(snapshot.meta.index + 1));
        log!(
            self.id,
            "installed the leader's snapshot at {} (term {})",
            snapshot.meta.index,
            snapshot.meta.term
        );
        Ok(())
    }

    /// Snapshots the ledger and compacts the log once `snapshot_every` entries were applied since
    /// the last snapshot (only committed ones: `applied` never passes `commit` without the knobs).
    fn compact(&mut self) -> Result<(), NodeError> {
        let since = self.applied - self.raft.snapshot_meta().index;
        if self.snapshot_every == 0 || since < self.snapshot_every {
            return Ok(());
        }
        let data = String::from_utf8(self.ledger.to_snapshot()).expect("JSON is UTF-8");
        self.raft.compact(self.applied, data);
        let (storage, raft) = (&mut self.storage, &self.raft);
        tokio::task::block_in_place(|| {
            storage.compact(raft.snapshot(), raft.log_after_snapshot())
        })?;
        Ok(())
    }

    /// Answers `Dropped` to requests whose log entry a new leader overwrote.
    fn drop_overwritten(&mut self) {
        let gone: Vec<u64> = self
            .pending
            .iter()
            .filter(|(&i, p)| self.raft.entry(i).is_none_or(|e| e.term != p.term))
            .map(|(&i, _)| i)
            .collect();
        for i in gone {
            if let Some(p) = self.pending.remove(&i) {
                respond(&p.reply, p.req_id, Outcome::Dropped);
            }
        }
    }

    fn apply(&mut self) {
        let upto = if self.bugs.early_ack && self.raft.role() == Role::Leader {
            // The bug: what is in the leader's own log counts as done.
            self.raft.last_index()
        } else {
            self.raft.commit()
        };
        // Applied never passes committed: what a replica answers from is what a majority holds.
        // `early-ack` applies the leader's own log on purpose; `split-brain` lets commit move back.
        verity_history::invariant!(
            self.bugs.early_ack || self.bugs.split_brain || upto >= self.applied,
            "{}: applied {} beyond commit {}",
            self.id,
            self.applied,
            upto
        );
        while self.applied < upto {
            let index = self.applied + 1;
            let Some(entry) = self.raft.entry(index) else {
                break;
            };
            let (term, outcome) = (entry.term, self.ledger.apply(&entry.cmd));
            self.applied = index;
            if let Some(p) = self.pending.remove(&index) {
                let outcome = if p.term == term {
                    outcome
                } else {
                    Outcome::Dropped
                };
                respond(&p.reply, p.req_id, outcome);
            }
        }
    }

    fn log_transitions(&mut self) {
        let now = (self.raft.role(), self.raft.term());
        if now != self.last_role {
            log!(
                self.id,
                "{:?} in term {} (leader {:?}, commit {}, last {}, applied {})",
                now.0,
                now.1,
                self.raft.leader(),
                self.raft.commit(),
                self.raft.last_index(),
                self.applied
            );
            self.last_role = now;
        }
        if self.raft.overwritten_committed > 0 {
            log!(
                self.id,
                "SAFETY: {} committed entries overwritten (expected only with bug knobs)",
                self.raft.overwritten_committed
            );
            self.raft.overwritten_committed = 0;
        }
    }
}

async fn accept_loop(listener: TcpListener, inbox: mpsc::Sender<Input>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_conn(stream, inbox.clone()));
                }
            }
            // Reap finished connections so the set stays bounded by live ones.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Reads one line of at most [`LINE_MAX_BYTES`]; `Ok(None)` at a clean end of stream.
pub async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<()>> {
    buf.clear();
    let n = reader.take(LINE_MAX_BYTES).read_until(b'\n', buf).await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line too long or torn",
        ));
    }
    Ok(Some(()))
}

async fn serve_conn(stream: TcpStream, inbox: mpsc::Sender<Input>) {
    let (r, w) = stream.into_split();
    let (reply_tx, mut reply_rx) = mpsc::channel::<Response>(CONN_QUEUE_MAX);
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::new(w);
        while let Some(resp) = reply_rx.recv().await {
            let mut line = serde_json::to_vec(&resp).expect("responses always serialize");
            line.push(b'\n');
            if w.write_all(&line).await.is_err() || w.flush().await.is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::new(r);
    let mut buf = Vec::new();
    while let Ok(Some(())) = read_line(&mut reader, &mut buf).await {
        let input = match serde_json::from_slice::<Frame>(&buf) {
            Ok(Frame::Peer { from, msg }) => Input::Peer { from, msg },
            Ok(Frame::Request(req)) => Input::Client {
                req,
                reply: reply_tx.clone(),
            },
            // A line that is not a frame: the peer speaks something else; hang up.
            Err(_) => break,
        };
        if inbox.send(input).await.is_err() {
            break;
        }
    }
    drop(reply_tx);
    // The writer ends when the last pending reply sender is gone or the socket fails.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

async fn peer_sender(me: NodeId, addr: SocketAddr, mut queue: mpsc::Receiver<String>) {
    let mut connected_once = false;
    loop {
        let stream = match tokio::time::timeout(
            Duration::from_millis(500),
            TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(s)) => s,
            _ => {
                // Unreachable: drop what is queued (it would be stale) and try again shortly.
                while queue.try_recv().is_ok() {}
                tokio::time::sleep(Duration::from_millis(50)).await;
                if queue.is_closed() {
                    return;
                }
                continue;
            }
        };
        if !connected_once {
            log!(me, "connected to peer at {addr}");
            connected_once = true;
        }
        let _ = stream.set_nodelay(true);
        let mut w = BufWriter::new(stream);
        'conn: loop {
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < 256 {
                match queue.try_recv() {
                    Ok(line) => batch.push(line),
                    Err(_) => break,
                }
            }
            for line in batch {
                if w.write_all(line.as_bytes()).await.is_err() || w.write_all(b"\n").await.is_err()
                {
                    break 'conn;
                }
            }
            if w.flush().await.is_err() {
                break 'conn;
            }
        }
    }
}
