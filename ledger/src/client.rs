//! The cluster's client: one worker's connections to the nodes, leader discovery by redirect,
//! retries with the same transfer (or transaction) id, and an honest completion.
//!
//! Like the clients of etcd or CockroachDB, it keeps a guess of the leader, follows `not-leader`
//! redirects, and spreads reads over every node (a read that lands on a follower is redirected by
//! a correct node and answered locally by a `stale-read` one). An attempt that certainly did not
//! reach the ledger (no connection, `not-leader`, an overwritten entry) is retried freely. An attempt
//! that may have reached it (sent, but no answer in time) makes the operation indeterminate: later
//! attempts reuse the transfer id, so a deduplicating ledger applies it once, and unless one of them
//! answers `ok` the operation ends `info` — a `fail` is returned only when it is certain. A node that
//! left a request unanswered is avoided for a while, even when its peers still name it as leader, so
//! that the retry reaches whichever node takes over. Read-only transactions travel like reads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use verity_history::{Completion, Invocation, MicroOp, MopF, MopValue, Value, F};

use crate::node::read_line;
use crate::wire::{
    ClientOp, Frame, LedgerState, Mop, NodeId, Outcome, Request, Response, Stored, Txn, Xfer,
};

/// How long one attempt waits for its answer before the client tries elsewhere.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(300);
/// Attempts per operation, whatever the deadline. Generous: while a cluster starts or elects, many
/// attempts end at once (a proxy closes the connection when its node is not up yet) and each is
/// followed by a short back-off, so the deadline, not this count, should end the wait.
const ATTEMPTS_MAX: usize = 1024;
/// Pause before retrying when no leader is known (an election is likely under way).
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(25);
/// How long a node that left a sent request unanswered is not taken as the leader on someone else's
/// word: its peers keep naming it until their election timeout, and a client that believed them would
/// spend its whole deadline on a paused or cut-off node (etcd's and gRPC's balancers likewise mark an
/// unresponsive endpoint unhealthy for a while).
const SUSPECT_FOR: Duration = Duration::from_millis(1000);

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// Why an attempt got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The request never left: no connection, or the write failed before the whole line went out.
    NotSent,
    /// The request was sent; the answer did not come back in time or the connection broke.
    NoAnswer,
}

pub struct ClusterClient {
    nodes: Vec<NodeId>,
    /// The address a client dials for each node (the node itself, or the proxy in front of it).
    addrs: BTreeMap<NodeId, SocketAddr>,
    conns: BTreeMap<NodeId, Conn>,
    leader: Option<NodeId>,
    /// Round-robin position for reads and for guessing when no leader is known.
    cursor: usize,
    /// The last node that left a sent request unanswered, and until when it is avoided.
    suspect: Option<(NodeId, Instant)>,
    next_request: u64,
    op_timeout: Duration,
    /// Transaction ids are `worker << TXN_ID_WORKER_SHIFT | n`: unique across workers, kept by
    /// every retry of one transaction.
    worker: u64,
    next_txn: u64,
    /// The store holds registers (rw-register): a key never written reads as `null`, not `[]`.
    registers: bool,
}

/// Transactions a worker may run before its ids would reach the next worker's.
const TXN_ID_WORKER_SHIFT: u32 = 40;

impl ClusterClient {
    /// A client of the nodes of `addrs` (dialled at those addresses) that starts at node
    /// `worker % nodes`.
    pub fn new(addrs: BTreeMap<NodeId, SocketAddr>, worker: usize, op_timeout: Duration) -> Self {
        assert!(!addrs.is_empty(), "a cluster has nodes");
        let nodes: Vec<NodeId> = addrs.keys().cloned().collect();
        let cursor = worker % nodes.len();
        ClusterClient {
            nodes,
            addrs,
            conns: BTreeMap::new(),
            leader: None,
            cursor,
            suspect: None,
            next_request: 1,
            op_timeout,
            worker: worker as u64,
            next_txn: 0,
            registers: false,
        }
    }

    /// A client of a store of registers (rw-register) rather than journals (ledger-append).
    pub fn with_registers(mut self, registers: bool) -> Self {
        self.registers = registers;
        self
    }

    fn txn_id(&mut self) -> u64 {
        self.next_txn += 1;
        (self.worker << TXN_ID_WORKER_SHIFT) | self.next_txn
    }

    fn is_suspect(&self, node: &str) -> bool {
        matches!(&self.suspect, Some((n, until)) if n == node && Instant::now() < *until)
    }

    /// The next node round-robin, passing over the suspect one when there is another.
    fn rotate(&mut self) -> NodeId {
        for _ in 0..self.nodes.len() {
            self.cursor = (self.cursor + 1) % self.nodes.len();
            if !self.is_suspect(&self.nodes[self.cursor]) {
                break;
            }
        }
        self.nodes[self.cursor].clone()
    }

    /// One request to one node, waiting at most `timeout` for the answer.
    pub async fn call(
        &mut self,
        node: &str,
        op: ClientOp,
        timeout: Duration,
    ) -> Result<Outcome, CallError> {
        let deadline = Instant::now() + timeout;
        if !self.conns.contains_key(node) {
            let addr = *self
                .addrs
                .get(node)
                .expect("the client is only asked for its own nodes");
            let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                _ => return Err(CallError::NotSent),
            };
            let _ = stream.set_nodelay(true);
            let (r, w) = stream.into_split();
            let conn = Conn {
                reader: BufReader::new(r),
                writer: w,
            };
            self.conns.insert(node.to_string(), conn);
        }
        let id = self.next_request;
        self.next_request += 1;
        let mut line = serde_json::to_vec(&Frame::Request(Request { id, op }))
            .expect("requests always serialize");
        line.push(b'\n');
        let conn = self.conns.get_mut(node).expect("inserted above");
        // The node acts only on a whole line; a failed write never completed the line.
        match tokio::time::timeout_at(deadline, conn.writer.write_all(&line)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                self.conns.remove(node);
                return Err(CallError::NotSent);
            }
            Err(_) => {
                self.conns.remove(node);
                return Err(CallError::NoAnswer);
            }
        }
        let answer = tokio::time::timeout_at(deadline, async {
            let mut buf = Vec::new();
            // Skip answers to earlier requests whose caller gave up on them.
            loop {
                match read_line(&mut conn.reader, &mut buf).await {
                    Ok(Some(())) => match serde_json::from_slice::<Response>(&buf) {
                        Ok(r) if r.id == id => return Some(r.outcome),
                        Ok(_) => continue,
                        Err(_) => return None,
                    },
                    _ => return None,
                }
            }
        })
        .await;
        match answer {
            Ok(Some(outcome)) => Ok(outcome),
            _ => {
                self.conns.remove(node);
                Err(CallError::NoAnswer)
            }
        }
    }

    /// Runs one operation to a definite or an honestly indeterminate end.
    pub async fn run(&mut self, op: &ClientOp, op_timeout: Duration) -> Result<Outcome, String> {
        let deadline = Instant::now() + op_timeout;
        let is_read = match op {
            ClientOp::Read => true,
            ClientOp::Txn { txn } => txn.read_only(),
            _ => false,
        };
        let mut target = match (&self.leader, is_read) {
            (Some(l), false) => l.clone(),
            _ => self.rotate(),
        };
        let mut maybe_applied = false;
        for _ in 0..ATTEMPTS_MAX {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let timeout = (deadline - now).min(ATTEMPT_TIMEOUT);
            let attempt_started = Instant::now();
            match self.call(&target, op.clone(), timeout).await {
                Ok(Outcome::Fail { error }) if maybe_applied => {
                    return Err(format!(
                        "indeterminate: an earlier attempt may still apply ({error})"
                    ));
                }
                Ok(Outcome::NotLeader { leader }) => {
                    let known = leader.filter(|l| self.nodes.contains(l) && !self.is_suspect(l));
                    self.leader = known.clone();
                    target = match known {
                        Some(l) => l,
                        None => {
                            tokio::time::sleep(NO_LEADER_BACKOFF).await;
                            self.rotate()
                        }
                    };
                }
                Ok(Outcome::Dropped) => {
                    self.leader = None;
                    tokio::time::sleep(NO_LEADER_BACKOFF).await;
                    target = self.rotate();
                }
                Ok(outcome) => {
                    if !is_read {
                        self.leader = Some(target.clone());
                    }
                    if self.suspect.as_ref().is_some_and(|(n, _)| *n == target) {
                        self.suspect = None;
                    }
                    return Ok(outcome);
                }
                Err(CallError::NotSent) => {
                    self.leader = None;
                    tokio::time::sleep(NO_LEADER_BACKOFF).await;
                    target = self.rotate();
                }
                Err(CallError::NoAnswer) => {
                    maybe_applied = true;
                    self.leader = None;
                    self.suspect = Some((target.clone(), Instant::now() + SUSPECT_FOR));
                    // A connection that closed at once (a node still starting, or just killed) is
                    // not worth retrying in a tight loop.
                    if attempt_started.elapsed() < timeout {
                        tokio::time::sleep(NO_LEADER_BACKOFF).await;
                    }
                    target = self.rotate();
                }
            }
        }
        if maybe_applied {
            Err("timeout".into())
        } else {
            Ok(Outcome::Fail {
                error: "unavailable".into(),
            })
        }
    }
}

fn state_value(state: Option<LedgerState>) -> Value {
    let state = state.unwrap_or(LedgerState {
        balances: Vec::new(),
        applied: None,
        store: None,
    });
    let mut entries = vec![("balances", Value::int_list(state.balances))];
    if let Some(applied) = state.applied {
        entries.push((
            "applied",
            Value::int_list(applied.into_iter().map(|i| i as i64)),
        ));
    }
    Value::map(entries)
}

/// The micro-ops of a `txn` value (fast path or generic lists), or `None` if it is malformed.
fn decode_mops(value: &Value) -> Option<Vec<Mop>> {
    value
        .micro_ops()?
        .iter()
        .map(|m| match (m.f, &m.value) {
            (MopF::Read, _) => Some(Mop::R { key: m.key }),
            (MopF::Append, MopValue::Int(v)) => Some(Mop::Append {
                key: m.key,
                value: *v,
            }),
            (MopF::Write, MopValue::Int(v)) => Some(Mop::W {
                key: m.key,
                value: *v,
            }),
            _ => None,
        })
        .collect()
}

/// The completed `txn` value: the micro-ops with every read's value filled in.
fn encode_mops(mops: &[Mop], reads: Vec<Option<Stored>>, registers: bool) -> Value {
    let mut reads = reads.into_iter();
    Value::Txn(
        mops.iter()
            .map(|m| match *m {
                Mop::R { key } => MicroOp {
                    f: MopF::Read,
                    key,
                    value: match reads.next().flatten() {
                        Some(Stored::Journal(j)) => MopValue::List(j),
                        Some(Stored::Register(v)) => MopValue::Int(v),
                        None if registers => MopValue::Null,
                        None => MopValue::List(Vec::new()),
                    },
                },
                Mop::Append { key, value } => MicroOp {
                    f: MopF::Append,
                    key,
                    value: MopValue::Int(value),
                },
                Mop::W { key, value } => MicroOp {
                    f: MopF::Write,
                    key,
                    value: MopValue::Int(value),
                },
            })
            .collect(),
    )
}

/// The wire request for an invocation of the bank or transactional vocabulary, or why there is none.
fn to_wire(op: &Invocation) -> Result<ClientOp, &'static str> {
    match (&op.f, &op.value) {
        (F::Transfer, Value::Transfer(t)) => Ok(ClientOp::Transfer {
            transfer: Xfer {
                id: t.id,
                from: t.from,
                to: t.to,
                amount: t.amount,
            },
        }),
        (F::Read, v) if matches!(v.get("final"), Some(Value::Bool(true))) => {
            Ok(ClientOp::FinalRead)
        }
        (F::Read, _) => Ok(ClientOp::Read),
        (F::Txn, v) => decode_mops(v)
            .map(|mops| ClientOp::Txn {
                txn: Txn { id: 0, mops },
            })
            .ok_or("malformed-txn"),
        (F::Setup, v) if v.get("balances").is_none() => Ok(ClientOp::Setup {
            balances: Vec::new(),
        }),
        (F::Setup, v) => v
            .get("balances")
            .and_then(Value::as_i64_list)
            .map(|balances| ClientOp::Setup { balances })
            .ok_or("setup needs {\"balances\":[…]}"),
        _ => Err("unsupported-operation"),
    }
}

/// Turns the end of an operation into a completion. Reads that never got an answer are `fail`
/// (a read has no effect, so "it did not happen" is always true of it). `registers`: how a `txn`'s
/// read of a key never written is written down (see [`ClusterClient::with_registers`]).
pub fn completion(op: &Invocation, result: Result<Outcome, String>, registers: bool) -> Completion {
    let is_read = op.f == F::Read;
    match result {
        Ok(Outcome::Committed { reads }) if op.f == F::Txn => match decode_mops(&op.value) {
            Some(mops) => Completion::ok(encode_mops(&mops, reads, registers)),
            None => Completion::fail(op.value.clone(), "malformed-txn"),
        },
        Ok(Outcome::Ok { state }) => match op.f {
            F::Transfer => Completion::ok(op.value.clone()),
            _ => Completion::ok(state_value(state)),
        },
        Ok(Outcome::Fail { error }) => Completion::fail(op.value.clone(), error),
        Ok(other) if is_read => {
            Completion::fail(op.value.clone(), format!("unexpected answer {other:?}"))
        }
        Ok(other) => Completion::info(op.value.clone(), format!("unexpected answer {other:?}")),
        Err(e) if is_read => Completion::fail(op.value.clone(), e),
        Err(e) => Completion::info(op.value.clone(), e),
    }
}

impl ClusterClient {
    /// Runs one operation of the harness to its honest completion: `ok`, `fail` only when it
    /// certainly did not happen, `info` otherwise.
    pub async fn invoke(&mut self, op: &Invocation) -> Completion {
        let wire = match to_wire(op) {
            Ok(ClientOp::Txn { txn }) => ClientOp::Txn {
                txn: Txn {
                    id: self.txn_id(),
                    ..txn
                },
            },
            Ok(w) => w,
            Err(e) => return Completion::fail(op.value.clone(), e),
        };
        let result = self.run(&wire, self.op_timeout).await;
        completion(op, result, self.registers)
    }
}
