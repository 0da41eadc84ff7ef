//! The JSON-lines protocol of the cluster: what a client says to a node, what a node answers, and what
//! nodes say to each other.
//!
//! Every line on a connection is one [`Frame`]. A node listens on one port for both kinds of peer; a
//! connection carries either client requests (answered on the same connection, matched by request id)
//! or one-way Raft messages from one peer. Raft messages are never answered on the connection they came
//! on: the reply travels on the replier's own connection to the sender. So each directed link
//! (a -> b) carries only a's messages, which is exactly what a per-directed-link proxy can cut, delay or
//! thin out. The messages are those of the Raft paper (Ongaro & Ousterhout, 2014, figure 2), with the
//! conflict hint of its section 5.3 so a lagging follower catches up in a few round trips.

use serde::{Deserialize, Serialize};

/// A node's name, e.g. `n1`.
pub type NodeId = String;

/// One line on any connection to a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "kebab-case")]
pub enum Frame {
    /// A Raft message from peer `from`.
    Peer { from: NodeId, msg: PeerMsg },
    /// A client request; answered with a [`Response`] line on the same connection.
    Request(Request),
}

/// A money transfer as it travels on the wire and sits in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xfer {
    pub id: u64,
    pub from: u32,
    pub to: u32,
    pub amount: i64,
}

/// One micro-op of a transaction (Elle's list-append and rw-register vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Mop {
    /// Read a key: a journal (list) or a register.
    R { key: i64 },
    /// Append `value` to the journal at `key`.
    Append { key: i64, value: i64 },
    /// Set the register at `key` to `value`.
    W { key: i64, value: i64 },
}

/// A transaction as it travels on the wire and sits in the log. `id` is chosen by the client and kept
/// across retries, so a deduplicating store applies a retried transaction once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub id: u64,
    pub mops: Vec<Mop>,
}

impl Txn {
    /// Whether the transaction only reads.
    pub fn read_only(&self) -> bool {
        self.mops.iter().all(|m| matches!(m, Mop::R { .. }))
    }
}

/// What a key holds in the store of a transactional ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stored {
    Journal(Vec<i64>),
    Register(i64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client, echoed in the response.
    pub id: u64,
    pub op: ClientOp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum ClientOp {
    /// Create the accounts (idempotent: a second setup answers the state the first one created).
    Setup {
        balances: Vec<i64>,
    },
    Transfer {
        transfer: Xfer,
    },
    /// A transaction of reads, appends and register writes, applied atomically in log order.
    Txn {
        txn: Txn,
    },
    /// A linearizable read of every balance.
    Read,
    /// A linearizable read of every balance and of the applied transfer ids in application order.
    FinalRead,
    /// This node's own applied state, without consensus (for the convergence checker).
    LocalState,
    /// Role, term, leader, indexes: for tests, the harness and the nemesis.
    Status,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// It happened; `state` is what a read saw (or the state after a setup).
    Ok {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<LedgerState>,
    },
    /// It certainly did not happen (e.g. `insufficient-funds`).
    Fail {
        error: String,
    },
    /// This node is not the leader and did not take the request; try `leader` if known.
    NotLeader {
        leader: Option<NodeId>,
    },
    /// The request was appended at this node but its log entry was overwritten by a later leader:
    /// this attempt will never take effect.
    Dropped,
    /// The transaction committed; `reads` has one entry per read micro-op, in order (`null` for a key
    /// never written).
    Committed {
        reads: Vec<Option<Stored>>,
    },
    Status(NodeStatus),
}

/// Balances, and (final reads and local state) applied transfer and transaction ids in application
/// order and, once transactions ran, every key of the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    pub balances: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Vec<u64>>,
    /// (key, value) pairs sorted by key. A list rather than a map: integer map keys do not survive
    /// serde's internally tagged [`Outcome`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<Vec<(i64, Stored)>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit: u64,
    pub last_index: u64,
    pub applied: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// A command in the replicated log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "c", rename_all = "kebab-case")]
pub enum Command {
    /// Appended by every new leader, so that it commits an entry of its own term (Raft §5.4.2, §8).
    Noop,
    Setup {
        balances: Vec<i64>,
    },
    Transfer(Xfer),
    Txn(Txn),
    /// Reads go through the log: when the entry is applied, the read sees exactly the committed prefix.
    Read,
    FinalRead,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: u64,
    pub cmd: Command,
}

/// The four Raft messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "m", rename_all = "kebab-case")]
pub enum PeerMsg {
    Vote {
        term: u64,
        last_index: u64,
        last_term: u64,
    },
    VoteReply {
        term: u64,
        granted: bool,
    },
    Append {
        term: u64,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    AppendReply {
        term: u64,
        success: bool,
        /// On success: the last index the follower now holds from this message. On failure: the
        /// index the leader should try next.
        index: u64,
    },
    /// InstallSnapshot (§7), whole in one message: the leader's state machine after the entry at
    /// `index` (of term `snapshot_term`), for a follower whose next entry the leader compacted
    /// away. Answered with an `AppendReply` whose `index` is the snapshot's.
    Snapshot {
        term: u64,
        index: u64,
        snapshot_term: u64,
        data: String,
    },
}

impl PeerMsg {
    pub fn term(&self) -> u64 {
        match self {
            PeerMsg::Vote { term, .. }
            | PeerMsg::VoteReply { term, .. }
            | PeerMsg::Append { term, .. }
            | PeerMsg::AppendReply { term, .. }
            | PeerMsg::Snapshot { term, .. } => *term,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_as_single_lines() {
        let frames = [
            Frame::Request(Request {
                id: 7,
                op: ClientOp::Transfer {
                    transfer: Xfer {
                        id: 1,
                        from: 0,
                        to: 1,
                        amount: 3,
                    },
                },
            }),
            Frame::Peer {
                from: "n1".into(),
                msg: PeerMsg::Append {
                    term: 2,
                    prev_index: 0,
                    prev_term: 0,
                    entries: vec![Entry {
                        term: 2,
                        cmd: Command::Setup {
                            balances: vec![1, 2],
                        },
                    }],
                    commit: 0,
                },
            },
            Frame::Peer {
                from: "n2".into(),
                msg: PeerMsg::Snapshot {
                    term: 3,
                    index: 40,
                    snapshot_term: 2,
                    data: String::from_utf8(crate::ledger::Ledger::new(true).to_snapshot())
                        .unwrap(),
                },
            },
        ];
        for f in frames {
            let line = serde_json::to_string(&f).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Frame>(&line).unwrap(), f);
        }
        let r = Response {
            id: 1,
            outcome: Outcome::NotLeader { leader: None },
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), r);
    }

    #[test]
    fn transactions_and_stores_survive_the_tagged_outcome() {
        let outcomes = [
            Outcome::Ok {
                state: Some(LedgerState {
                    balances: vec![],
                    applied: Some(vec![1 << 40 | 3]),
                    store: Some(vec![
                        (-4, Stored::Journal(vec![1, -2])),
                        (7, Stored::Register(9)),
                    ]),
                }),
            },
            Outcome::Committed {
                reads: vec![
                    None,
                    Some(Stored::Journal(vec![])),
                    Some(Stored::Register(0)),
                ],
            },
        ];
        for o in outcomes {
            let r = Response { id: 3, outcome: o };
            let line = serde_json::to_string(&r).unwrap();
            assert_eq!(
                serde_json::from_str::<Response>(&line).unwrap(),
                r,
                "{line}"
            );
        }
        let req = Frame::Request(Request {
            id: 1,
            op: ClientOp::Txn {
                txn: Txn {
                    id: 5,
                    mops: vec![
                        Mop::R { key: 1 },
                        Mop::Append { key: 1, value: -3 },
                        Mop::W { key: 2, value: 4 },
                    ],
                },
            },
        });
        let line = serde_json::to_string(&req).unwrap();
        assert_eq!(serde_json::from_str::<Frame>(&line).unwrap(), req);
    }
}
