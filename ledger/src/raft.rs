//! A compact Raft consensus core, written sans-I/O: it never touches a socket, a file or a clock.
//!
//! It follows the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
//! Algorithm", 2014, figure 2): randomized election timeouts, log replication with the consistency
//! check on `prev_index`/`prev_term`, commitment only of entries of the leader's own term counted on a
//! majority, and a no-op appended by every new leader. Like etcd's raft library, the core is driven
//! from outside: [`Raft::tick`], [`Raft::step`] and [`Raft::propose`] change its state, and
//! [`Raft::ready`] hands back what must be made durable (term, vote, new log entries) and the messages
//! to send — in that order, so nothing leaves a node before the state it reflects is on disk. Because
//! time is a number passed in and every random choice comes from a seeded ChaCha8 stream, a whole
//! cluster of cores can be simulated deterministically (see `targets/tests/raft_sim.rs`).
//!
//! Log compaction (§7): the driver hands the core a snapshot of its state machine at an applied
//! index ([`Raft::compact`]) and the core drops the entries it covers; a follower whose next entry
//! is no longer in the leader's log is sent the snapshot whole (`PeerMsg::Snapshot`, the paper's
//! InstallSnapshot in one message), which [`Raft::ready`] hands to that follower's driver to persist
//! and restore before the reply leaves. Indexes stay absolute: the log holds the entries from the
//! snapshot's index + 1 on.
//!
//! Leader stickiness (the thesis' §4.2.3): a node that heard from a live leader within the minimum
//! election timeout ignores vote requests, so a node coming back from a partition with a high term
//! does not depose a healthy leader.
//!
//! The `split-brain` knob is a genuinely wrong quorum rule: a leader counts only the peers it heard
//! from recently, so a leader cut off from everyone becomes a quorum of one and keeps committing and
//! acknowledging writes while the other side elects a new leader; and it holds a leader lease
//! counted in heartbeats it sent rather than in time, during which it ignores higher terms — so a
//! leader that was paused (SIGSTOP) wakes up believing its lease is fresh and keeps leading alongside
//! the leader elected in its absence.

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::storage::{HardState, Recovered, Snapshot, SnapshotMeta};
use crate::wire::{Command, Entry, NodeId, NodeStatus, PeerMsg, Role};

/// Entries per append message: keeps a catching-up follower's messages bounded.
const APPEND_ENTRIES_MAX: usize = 256;
/// `split-brain`: heartbeats a leader's lease lasts after it last heard from a peer.
const LEASE_HEARTBEATS: u64 = 10;
/// How long a leader waits for a follower to take a snapshot it sent before it sends it again: a
/// snapshot is large, and a paused follower must not have one queued for it every heartbeat.
const SNAPSHOT_RESEND_MS: u64 = 1_000;

#[derive(Debug, Clone)]
pub struct RaftConfig {
    pub id: NodeId,
    /// Every other member of the cluster.
    pub peers: Vec<NodeId>,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_ms: u64,
    pub seed: u64,
    /// The `split-brain` knob (see the module documentation).
    pub split_brain: bool,
    /// The `early-ack` knob's replication: new entries wait for the next heartbeat instead of
    /// being sent at once (asynchronous replication, as in primary-backup systems that acknowledge
    /// before the backups have the write).
    pub async_replication: bool,
}

impl RaftConfig {
    pub fn new(id: impl Into<NodeId>, peers: Vec<NodeId>, seed: u64) -> Self {
        RaftConfig {
            id: id.into(),
            peers,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            heartbeat_ms: 50,
            seed,
            split_brain: false,
            async_replication: false,
        }
    }
}

/// What [`Raft::check`] compares across one call of `tick`, `step` or `propose`.
struct Before {
    term: u64,
    role: Role,
    leader: Option<NodeId>,
    commit: u64,
    last_index: u64,
    snapshot_index: u64,
}

/// What the driver must do next, in order: persist `hard`, `snapshot` and `append`, restore the
/// state machine from `snapshot`, then send `messages`.
#[derive(Debug, Default)]
pub struct Ready {
    pub hard: Option<HardState>,
    /// A snapshot the leader sent, which replaces the state machine and the log up to its index;
    /// persisted with the log after it ([`Raft::log_after_snapshot`]).
    pub snapshot: Option<Snapshot>,
    /// The log from this index on is replaced by these entries.
    pub append: Option<(u64, Vec<Entry>)>,
    pub messages: Vec<(NodeId, PeerMsg)>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.hard.is_none()
            && self.snapshot.is_none()
            && self.append.is_none()
            && self.messages.is_empty()
    }
}

pub struct Raft {
    cfg: RaftConfig,
    rng: ChaCha8Rng,
    hard: HardState,
    /// The latest snapshot: it covers the log up to its index (index 0 and term 0 before any).
    snapshot: Snapshot,
    /// The entries after the snapshot: `log[k]` is the entry at index `snapshot.meta.index + 1 + k`.
    log: Vec<Entry>,
    commit: u64,
    role: Role,
    leader: Option<NodeId>,
    votes: BTreeSet<NodeId>,
    next: BTreeMap<NodeId, u64>,
    matched: BTreeMap<NodeId, u64>,
    /// When the leader last heard from each peer (ms).
    heard: BTreeMap<NodeId, u64>,
    /// When a follower last heard from a live leader (ms).
    leader_contact: Option<u64>,
    election_due: u64,
    heartbeat_due: u64,
    /// First log index not yet handed to the driver for persistence.
    unstable_from: u64,
    hard_dirty: bool,
    broadcast_due: bool,
    outbox: Vec<(NodeId, PeerMsg)>,
    /// A snapshot taken from the leader that the driver has not been handed yet.
    snapshot_installed: bool,
    /// When the leader last sent each follower its snapshot (ms).
    snapshot_sent: BTreeMap<NodeId, u64>,
    /// The time of the latest `tick` or `step` (ms).
    now_ms: u64,
    /// `split-brain`: the leader's lease, counted in heartbeats it sent — a count that stands still
    /// while the process is paused, which is the bug.
    lease_heartbeats: u64,
    /// Committed entries this node saw overwritten: zero unless a bug knob broke safety.
    pub overwritten_committed: u64,
}

impl Raft {
    pub fn new(cfg: RaftConfig, recovered: Recovered, now_ms: u64) -> Raft {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ name_hash(&cfg.id));
        let election_due =
            now_ms + rng.gen_range(cfg.election_timeout_min_ms..=cfg.election_timeout_max_ms);
        let snapshot = recovered.snapshot.unwrap_or_default();
        let offset = snapshot.meta.index;
        let unstable_from = offset + recovered.entries.len() as u64 + 1;
        Raft {
            cfg,
            rng,
            hard: recovered.hard,
            snapshot,
            log: recovered.entries,
            // What a snapshot covers was committed.
            commit: offset,
            role: Role::Follower,
            leader: None,
            votes: BTreeSet::new(),
            next: BTreeMap::new(),
            matched: BTreeMap::new(),
            heard: BTreeMap::new(),
            leader_contact: None,
            election_due,
            heartbeat_due: 0,
            unstable_from,
            hard_dirty: false,
            broadcast_due: false,
            outbox: Vec::new(),
            snapshot_installed: false,
            snapshot_sent: BTreeMap::new(),
            now_ms,
            lease_heartbeats: 0,
            overwritten_committed: 0,
        }
    }

    pub fn id(&self) -> &NodeId {
        &self.cfg.id
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> u64 {
        self.hard.term
    }
    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }
    pub fn commit(&self) -> u64 {
        self.commit
    }
    pub fn last_index(&self) -> u64 {
        self.offset() + self.log.len() as u64
    }
    /// The entry at a 1-based index; `None` past the end and at or before the snapshot's index.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        index
            .checked_sub(self.offset() + 1)
            .and_then(|i| self.log.get(i as usize))
    }
    /// The index and term of the last entry the latest snapshot covers (zeros before any).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot.meta
    }
    /// The latest snapshot (empty, at index 0, before any).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
    /// The log after the snapshot: what storage keeps beside it.
    pub fn log_after_snapshot(&self) -> &[Entry] {
        &self.log
    }

    fn offset(&self) -> u64 {
        self.snapshot.meta.index
    }

    /// The position in `log` of the entry at `index` (which must be past the snapshot).
    fn pos(&self, index: u64) -> usize {
        verity_history::invariant!(index > self.offset(), "index {index} is compacted");
        (index - self.offset() - 1) as usize
    }

    /// Drops the log up to `index`, whose state the driver serialized as `data` after applying
    /// every entry up to it. Only committed entries can be compacted, and only once every entry is
    /// persisted (call it after the driver handled [`Raft::ready`]); the driver then persists
    /// [`Raft::snapshot`] with [`Raft::log_after_snapshot`].
    pub fn compact(&mut self, index: u64, data: String) {
        assert!(
            index > self.offset() && index <= self.commit,
            "{}: compaction to {index} outside the snapshot {} .. commit {}",
            self.cfg.id,
            self.offset(),
            self.commit
        );
        assert!(
            self.unstable_from > self.last_index(),
            "{}: compaction with entries not yet persisted",
            self.cfg.id
        );
        let term = self
            .term_at(index)
            .expect("a committed entry is in the log");
        self.log.drain(..self.pos(index) + 1);
        self.snapshot = Snapshot {
            meta: SnapshotMeta { index, term },
            data,
        };
    }

    pub fn status(&self, applied: u64) -> NodeStatus {
        NodeStatus {
            node: self.cfg.id.clone(),
            role: self.role,
            term: self.hard.term,
            leader: self.leader.clone(),
            commit: self.commit,
            last_index: self.last_index(),
            applied,
        }
    }

    /// The term of the entry at `index`: known for the snapshot's last entry and the log after it.
    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.offset() {
            Some(self.snapshot.meta.term)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    fn last_term(&self) -> u64 {
        self.log.last().map_or(self.snapshot.meta.term, |e| e.term)
    }

    fn cluster_size(&self) -> usize {
        self.cfg.peers.len() + 1
    }

    fn send(&mut self, to: &NodeId, msg: PeerMsg) {
        self.outbox.push((to.clone(), msg));
    }

    fn reset_election(&mut self, now_ms: u64) {
        let (lo, hi) = (
            self.cfg.election_timeout_min_ms,
            self.cfg.election_timeout_max_ms,
        );
        self.election_due = now_ms + self.rng.gen_range(lo..=hi);
    }

    /// The state [`Raft::check`] compares with afterwards, when invariants are checked.
    fn before(&self) -> Option<Before> {
        verity_history::INVARIANTS.then(|| Before {
            term: self.hard.term,
            role: self.role,
            leader: self.leader.clone(),
            commit: self.commit,
            last_index: self.last_index(),
            snapshot_index: self.offset(),
        })
    }

    /// The invariants of one call of `tick`, `step` or `propose` (Raft's figure 3), as this node
    /// sees them: the term never decreases; within one term the node never records two different
    /// leaders, and a leader neither steps down nor truncates its own log; the commit index never
    /// moves back (except under `split-brain`, whose quorum of one commits entries a real majority
    /// later overwrites) and never passes the end of the log; the snapshot only moves forward and
    /// covers only committed entries.
    fn check(&self, before: Option<Before>) {
        let Some(b) = before else { return };
        let id = &self.cfg.id;
        assert!(
            self.hard.term >= b.term,
            "{id}: term went back from {} to {}",
            b.term,
            self.hard.term
        );
        if self.hard.term == b.term {
            if let Some(l) = &b.leader {
                assert_eq!(
                    self.leader.as_ref(),
                    Some(l),
                    "{id}: two leaders recorded for term {}",
                    b.term
                );
            }
            if b.role == Role::Leader {
                assert_eq!(
                    self.role,
                    Role::Leader,
                    "{id}: the leader of term {} stepped down within it",
                    b.term
                );
                assert!(
                    self.last_index() >= b.last_index,
                    "{id}: the leader of term {} truncated its own log",
                    b.term
                );
            }
        }
        assert!(
            self.cfg.split_brain || self.commit >= b.commit,
            "{id}: commit index moved back from {} to {}",
            b.commit,
            self.commit
        );
        assert!(
            self.commit <= self.last_index(),
            "{id}: commit index {} beyond the log's end {}",
            self.commit,
            self.last_index()
        );
        assert!(
            self.offset() >= b.snapshot_index,
            "{id}: snapshot moved back from {} to {}",
            b.snapshot_index,
            self.offset()
        );
        assert!(
            self.offset() <= self.commit,
            "{id}: snapshot {} beyond the commit index {}",
            self.offset(),
            self.commit
        );
    }

    fn set_term(&mut self, term: u64) {
        verity_history::invariant!(term > self.hard.term, "terms only grow");
        self.hard.term = term;
        self.hard.vote = None;
        self.hard_dirty = true;
    }

    fn become_follower(&mut self, leader: Option<NodeId>) {
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
    }

    /// Advances timers: a follower or candidate whose election timeout passed campaigns; a leader
    /// sends heartbeats.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        let before = self.before();
        self.tick_inner(now_ms);
        self.check(before);
    }

    fn tick_inner(&mut self, now_ms: u64) {
        match self.role {
            Role::Leader => {
                if now_ms >= self.heartbeat_due {
                    self.heartbeat(now_ms);
                }
                // Under `split-brain` the quorum shrinks as peers fall silent, so commitment can
                // advance with time alone.
                self.advance_commit(now_ms);
            }
            Role::Follower | Role::Candidate => {
                if now_ms >= self.election_due {
                    self.campaign(now_ms);
                }
            }
        }
    }

    fn campaign(&mut self, now_ms: u64) {
        let term = self.hard.term + 1;
        self.set_term(term);
        self.hard.vote = Some(self.cfg.id.clone());
        self.role = Role::Candidate;
        self.leader = None;
        self.leader_contact = None;
        self.votes = BTreeSet::from([self.cfg.id.clone()]);
        self.reset_election(now_ms);
        if self.votes.len() > self.cluster_size() / 2 {
            self.become_leader(now_ms);
            return;
        }
        let (last_index, last_term) = (self.last_index(), self.last_term());
        for p in self.cfg.peers.clone() {
            self.send(
                &p,
                PeerMsg::Vote {
                    term,
                    last_index,
                    last_term,
                },
            );
        }
    }

    fn become_leader(&mut self, now_ms: u64) {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.votes.clear();
        let next = self.last_index() + 1;
        for p in &self.cfg.peers {
            self.next.insert(p.clone(), next);
            self.matched.insert(p.clone(), 0);
            self.heard.insert(p.clone(), now_ms);
        }
        // A no-op of the new term: committing it commits every earlier entry (§5.4.2) and makes
        // reads through the log linearizable from the first one on.
        self.log.push(Entry {
            term: self.hard.term,
            cmd: Command::Noop,
        });
        self.heartbeat_due = now_ms + self.cfg.heartbeat_ms;
        self.lease_heartbeats = LEASE_HEARTBEATS;
        for p in self.cfg.peers.clone() {
            self.send_append(&p);
        }
        self.advance_commit(now_ms);
    }

    /// Appends a client command if this node is the leader; returns its log index.
    pub fn propose(&mut self, cmd: Command) -> Option<u64> {
        if self.role != Role::Leader {
            return None;
        }
        let before = self.before();
        self.log.push(Entry {
            term: self.hard.term,
            cmd,
        });
        self.broadcast_due = !self.cfg.async_replication;
        self.check(before);
        Some(self.last_index())
    }

    fn heartbeat(&mut self, now_ms: u64) {
        self.heartbeat_due = now_ms + self.cfg.heartbeat_ms;
        self.lease_heartbeats = self.lease_heartbeats.saturating_sub(1);
        for p in self.cfg.peers.clone() {
            // Silence for two heartbeats suggests messages were lost: resend from what is known to
            // be replicated, not from the optimistic `next`.
            let quiet = self
                .heard
                .get(&p)
                .is_none_or(|&h| h + 2 * self.cfg.heartbeat_ms < now_ms);
            if quiet {
                let m = self.matched.get(&p).copied().unwrap_or(0);
                self.next.insert(p.clone(), m + 1);
            }
            self.send_append(&p);
        }
    }

    fn send_append(&mut self, peer: &NodeId) {
        let last = self.last_index();
        let next = self
            .next
            .get(peer)
            .copied()
            .unwrap_or(last + 1)
            .clamp(1, last + 1);
        // The follower's next entry is compacted away: probe from the snapshot's last entry; the
        // follower's answer says whether it needs the snapshot (see `on_append_reply`).
        let next = next.max(self.offset() + 1);
        let prev_index = next - 1;
        let prev_term = self
            .term_at(prev_index)
            .expect("prev_index is within the log");
        let start = (prev_index - self.offset()) as usize;
        let end = (start + APPEND_ENTRIES_MAX).min(self.log.len());
        let entries = self.log[start..end].to_vec();
        self.next
            .insert(peer.clone(), prev_index + entries.len() as u64 + 1);
        let msg = PeerMsg::Append {
            term: self.hard.term,
            prev_index,
            prev_term,
            entries,
            commit: self.commit,
        };
        self.send(peer, msg);
    }

    /// The follower's next entry is compacted away: it gets the snapshot instead, at most once per
    /// [`SNAPSHOT_RESEND_MS`] until it answers. Sent only in answer to a follower, so a node that
    /// is down is not sent a large message it cannot take; heartbeats meanwhile keep probing it
    /// (and keep it from campaigning).
    fn send_snapshot(&mut self, peer: &NodeId) {
        let recent = self
            .snapshot_sent
            .get(peer)
            .is_some_and(|&t| self.now_ms < t + SNAPSHOT_RESEND_MS);
        if recent {
            return;
        }
        self.snapshot_sent.insert(peer.clone(), self.now_ms);
        self.next.insert(peer.clone(), self.offset() + 1);
        let msg = PeerMsg::Snapshot {
            term: self.hard.term,
            index: self.snapshot.meta.index,
            snapshot_term: self.snapshot.meta.term,
            data: self.snapshot.data.clone(),
        };
        self.send(peer, msg);
    }

    /// Handles one message from a peer.
    pub fn step(&mut self, from: &NodeId, msg: PeerMsg, now_ms: u64) {
        self.now_ms = now_ms;
        let before = self.before();
        self.step_inner(from, msg, now_ms);
        self.check(before);
    }

    fn step_inner(&mut self, from: &NodeId, msg: PeerMsg, now_ms: u64) {
        if !self.cfg.peers.contains(from) {
            return;
        }
        let term = msg.term();
        if term > self.hard.term
            && self.cfg.split_brain
            && self.role == Role::Leader
            && self.lease_heartbeats > 0
        {
            // The bug: "my lease is still valid", by a clock that did not run while paused.
            return;
        }
        if term > self.hard.term {
            if matches!(msg, PeerMsg::Vote { .. }) && self.believes_in_leader(now_ms) {
                return;
            }
            self.set_term(term);
            let from_leader = matches!(msg, PeerMsg::Append { .. } | PeerMsg::Snapshot { .. });
            let leader = from_leader.then(|| from.clone());
            self.become_follower(leader);
        }
        match msg {
            PeerMsg::Vote {
                term,
                last_index,
                last_term,
            } => self.on_vote(from, term, last_index, last_term, now_ms),
            PeerMsg::VoteReply { term, granted } => {
                if self.role == Role::Candidate && term == self.hard.term && granted {
                    self.votes.insert(from.clone());
                    if self.votes.len() > self.cluster_size() / 2 {
                        self.become_leader(now_ms);
                    }
                }
            }
            PeerMsg::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                if self.accept_leader(from, term, now_ms) {
                    self.on_append(from, prev_index, prev_term, entries, commit);
                }
            }
            PeerMsg::Snapshot {
                term,
                index,
                snapshot_term,
                data,
            } => {
                if self.accept_leader(from, term, now_ms) {
                    let meta = SnapshotMeta {
                        index,
                        term: snapshot_term,
                    };
                    self.on_snapshot(from, Snapshot { meta, data });
                }
            }
            PeerMsg::AppendReply {
                term,
                success,
                index,
            } => {
                if self.role == Role::Leader && term == self.hard.term {
                    self.on_append_reply(from, success, index, now_ms);
                }
            }
        }
    }

    /// Whether a message of `term` from `from` comes from this term's leader, which this node then
    /// follows; a stale one is answered with this node's term.
    fn accept_leader(&mut self, from: &NodeId, term: u64, now_ms: u64) -> bool {
        if term < self.hard.term {
            let reply = PeerMsg::AppendReply {
                term: self.hard.term,
                success: false,
                index: 0,
            };
            self.send(from, reply);
            return false;
        }
        if self.role == Role::Leader {
            // Two leaders of one term cannot exist; a message claiming so is ignored.
            return false;
        }
        self.become_follower(Some(from.clone()));
        self.leader_contact = Some(now_ms);
        self.reset_election(now_ms);
        true
    }

    /// InstallSnapshot (§7): a snapshot past what this node has committed replaces its state; the
    /// log after it is kept if it agrees with the snapshot's last entry, and dropped otherwise.
    fn on_snapshot(&mut self, from: &NodeId, snapshot: Snapshot) {
        let SnapshotMeta { index, term } = snapshot.meta;
        if index > self.commit {
            if self.term_at(index) == Some(term) {
                let keep_from = self.pos(index) + 1;
                self.log.drain(..keep_from);
            } else {
                self.log.clear();
            }
            self.snapshot = snapshot;
            self.commit = index;
            self.unstable_from = self.unstable_from.max(index + 1);
            self.snapshot_installed = true;
        }
        // Either way this node now holds the leader's log up to `index`: committed entries agree.
        let reply = PeerMsg::AppendReply {
            term: self.hard.term,
            success: true,
            index,
        };
        self.send(from, reply);
    }

    /// Whether a live leader is known (followers: heard from it lately; leaders: heard from a
    /// majority lately), in which case vote requests are ignored.
    fn believes_in_leader(&self, now_ms: u64) -> bool {
        let window = self.cfg.election_timeout_min_ms;
        match self.role {
            Role::Follower => self.leader_contact.is_some_and(|t| now_ms < t + window),
            Role::Candidate => false,
            Role::Leader => {
                let recent = self
                    .heard
                    .values()
                    .filter(|&&h| now_ms < h + window)
                    .count();
                recent + 1 > self.cluster_size() / 2
            }
        }
    }

    fn on_vote(&mut self, from: &NodeId, term: u64, last_index: u64, last_term: u64, now_ms: u64) {
        let up_to_date = (last_term, last_index) >= (self.last_term(), self.last_index());
        let free = self.hard.vote.as_ref().is_none_or(|v| v == from);
        let granted = term == self.hard.term && up_to_date && free && self.role == Role::Follower;
        if granted && self.hard.vote.is_none() {
            self.hard.vote = Some(from.clone());
            self.hard_dirty = true;
        }
        if granted {
            self.reset_election(now_ms);
        }
        let reply = PeerMsg::VoteReply {
            term: self.hard.term,
            granted,
        };
        self.send(from, reply);
    }

    fn on_append(
        &mut self,
        from: &NodeId,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    ) {
        let reject = |raft: &mut Raft, index: u64| {
            let reply = PeerMsg::AppendReply {
                term: raft.hard.term,
                success: false,
                index,
            };
            raft.send(from, reply);
        };
        if prev_index > self.last_index() {
            let hint = self.last_index() + 1;
            return reject(self, hint);
        }
        let (mut prev_index, mut prev_term, mut entries) = (prev_index, prev_term, entries);
        if prev_index < self.offset() {
            // The entries up to the snapshot's index are committed, so the leader's agree with
            // them: skip those and go on from the snapshot's last entry.
            let skip = (self.offset() - prev_index) as usize;
            if skip > entries.len() {
                // Nothing new: all of it is in the snapshot.
                let reply = PeerMsg::AppendReply {
                    term: self.hard.term,
                    success: true,
                    index: self.offset(),
                };
                return self.send(from, reply);
            }
            entries.drain(..skip);
            prev_index = self.offset();
            prev_term = self.snapshot.meta.term;
        }
        let mine = self
            .term_at(prev_index)
            .expect("prev_index is within the log");
        if mine != prev_term {
            // Skip back over the whole conflicting term at once (§5.3's optimisation).
            let mut hint = prev_index;
            while hint > self.offset() + 1 && self.term_at(hint - 1) == Some(mine) {
                hint -= 1;
            }
            return reject(self, hint);
        }
        let count = entries.len() as u64;
        // Log matching (§5.3), checked below: afterwards the entry at `prev_index` still has
        // `prev_term` and the log holds exactly the sent entries' terms after it.
        let sent_terms: Option<Vec<u64>> =
            verity_history::INVARIANTS.then(|| entries.iter().map(|e| e.term).collect());
        for (k, e) in entries.into_iter().enumerate() {
            let index = prev_index + 1 + k as u64;
            match self.term_at(index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    if index <= self.commit {
                        // Only a bug knob can make a leader send a conflicting entry at an
                        // index this node knows to be committed.
                        assert!(
                            self.cfg.split_brain,
                            "{}: committed entry {index} (commit {}) overwritten",
                            self.cfg.id, self.commit
                        );
                        self.overwritten_committed += 1;
                    }
                    self.log.truncate(self.pos(index));
                    self.unstable_from = self.unstable_from.min(index);
                    self.commit = self.commit.min(self.last_index());
                    self.log.push(e);
                }
                None => self.log.push(e),
            }
        }
        let last_new = prev_index + count;
        if let Some(terms) = sent_terms {
            assert_eq!(self.term_at(prev_index), Some(prev_term), "log matching");
            for (k, t) in terms.iter().enumerate() {
                assert_eq!(
                    self.term_at(prev_index + 1 + k as u64),
                    Some(*t),
                    "log matching: the entry after prev_index {prev_index} at offset {k}"
                );
            }
        }
        self.commit = self.commit.max(commit.min(last_new));
        let reply = PeerMsg::AppendReply {
            term: self.hard.term,
            success: true,
            index: last_new,
        };
        self.send(from, reply);
    }

    fn on_append_reply(&mut self, from: &NodeId, success: bool, index: u64, now_ms: u64) {
        self.heard.insert(from.clone(), now_ms);
        self.lease_heartbeats = LEASE_HEARTBEATS;
        let matched = self.matched.get(from).copied().unwrap_or(0);
        let next = self.next.get(from).copied().unwrap_or(1);
        if success {
            self.snapshot_sent.remove(from);
            let matched = matched.max(index);
            self.matched.insert(from.clone(), matched);
            self.next.insert(from.clone(), next.max(matched + 1));
            self.advance_commit(now_ms);
            let more = self.next.get(from).copied().unwrap_or(1) <= self.last_index();
            // Asynchronous replication still streams to a follower that is far behind (a restarted
            // one); only the newest entries wait for the next heartbeat.
            let far_behind = self.last_index() - matched > APPEND_ENTRIES_MAX as u64;
            if more && (!self.cfg.async_replication || far_behind) {
                self.send_append(from);
            }
        } else {
            let retry = index.clamp(matched + 1, self.last_index() + 1);
            self.next.insert(from.clone(), retry);
            if retry <= self.offset() {
                self.send_snapshot(from);
            } else {
                self.send_append(from);
            }
        }
    }

    /// Commits the highest index of the current term held by a quorum.
    fn advance_commit(&mut self, now_ms: u64) {
        if self.role != Role::Leader {
            return;
        }
        let mut held: Vec<u64> = vec![self.last_index()];
        let mut members = 1usize;
        for p in &self.cfg.peers {
            let silent = self
                .heard
                .get(p)
                .is_none_or(|&h| now_ms >= h + self.cfg.election_timeout_min_ms);
            if self.cfg.split_brain && silent {
                // The bug: a silent peer is presumed dead and leaves the quorum.
                continue;
            }
            members += 1;
            held.push(self.matched.get(p).copied().unwrap_or(0));
        }
        if !self.cfg.split_brain {
            verity_history::invariant!(members == self.cluster_size());
        }
        held.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = members / 2 + 1;
        let candidate = held[quorum - 1];
        if candidate > self.commit && self.term_at(candidate) == Some(self.hard.term) {
            self.commit = candidate;
        }
    }

    /// What to persist and send now. Sends pending appends for proposals first.
    pub fn ready(&mut self) -> Ready {
        if self.broadcast_due && self.role == Role::Leader {
            for p in self.cfg.peers.clone() {
                if self.next.get(&p).copied().unwrap_or(1) <= self.last_index() {
                    self.send_append(&p);
                }
            }
        }
        self.broadcast_due = false;
        let hard = std::mem::take(&mut self.hard_dirty).then(|| self.hard.clone());
        let snapshot = std::mem::take(&mut self.snapshot_installed).then(|| self.snapshot.clone());
        let append = (self.unstable_from <= self.last_index()).then(|| {
            let from = self.unstable_from;
            (from, self.log[self.pos(from)..].to_vec())
        });
        self.unstable_from = self.last_index() + 1;
        Ready {
            hard,
            snapshot,
            append,
            messages: std::mem::take(&mut self.outbox),
        }
    }
}

/// FNV-1a of a node name, to give each node its own random stream from one seed.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, peers: &[&str]) -> Raft {
        let cfg = RaftConfig::new(id, peers.iter().map(|p| p.to_string()).collect(), 7);
        Raft::new(cfg, Recovered::default(), 0)
    }

    fn entry(term: u64) -> Entry {
        Entry {
            term,
            cmd: Command::Noop,
        }
    }

    fn append(term: u64, prev: (u64, u64), terms: &[u64], commit: u64) -> PeerMsg {
        PeerMsg::Append {
            term,
            prev_index: prev.0,
            prev_term: prev.1,
            entries: terms.iter().map(|&t| entry(t)).collect(),
            commit,
        }
    }

    /// A follower told by n1 (term 1) that two entries are committed, then by n3 (term 2) to
    /// replace them: no correct leader sends that, so the core refuses to go on.
    fn committed_then_overwritten(split_brain: bool) -> Raft {
        let mut cfg = RaftConfig::new("n2", vec!["n1".into(), "n3".into()], 7);
        cfg.split_brain = split_brain;
        let mut r = Raft::new(cfg, Recovered::default(), 0);
        r.step(&"n1".to_string(), append(1, (0, 0), &[1, 1], 2), 10);
        assert_eq!((r.commit(), r.last_index()), (2, 2));
        r.step(&"n3".to_string(), append(2, (0, 0), &[2], 0), 20);
        r
    }

    #[test]
    #[should_panic(expected = "committed entry 1 (commit 2) overwritten")]
    fn overwriting_a_committed_entry_trips_the_log_invariant() {
        committed_then_overwritten(false);
    }

    #[test]
    fn under_split_brain_an_overwritten_commit_is_counted_not_fatal() {
        let r = committed_then_overwritten(true);
        assert_eq!(r.overwritten_committed, 1);
        // The conflicting entry and everything after it went, and the commit index with them.
        assert_eq!((r.last_index(), r.entry(1).unwrap().term), (1, 2));
        assert_eq!(r.commit(), 0);
    }

    #[test]
    #[should_panic(expected = "two leaders recorded for term 1")]
    fn two_leaders_of_one_term_trip_the_election_invariant() {
        let mut r = node("n2", &["n1", "n3"]);
        r.step(&"n1".to_string(), append(1, (0, 0), &[1], 0), 10);
        assert_eq!(r.leader().map(String::as_str), Some("n1"));
        // n3 claims term 1 too: two majorities voted in one term, which Raft rules out.
        r.step(&"n3".to_string(), append(1, (1, 1), &[], 0), 20);
    }

    #[test]
    fn a_leader_ignores_a_second_leader_of_its_own_term_and_stays_leader() {
        let mut r = node("n1", &["n2", "n3"]);
        r.tick(1000);
        assert_eq!((r.role(), r.term()), (Role::Candidate, 1));
        let granted = PeerMsg::VoteReply {
            term: 1,
            granted: true,
        };
        r.step(&"n2".to_string(), granted, 1001);
        assert_eq!(r.role(), Role::Leader);
        r.step(&"n3".to_string(), append(1, (0, 0), &[1], 0), 1002);
        assert_eq!((r.role(), r.term()), (Role::Leader, 1));
        assert_eq!(r.leader().map(String::as_str), Some("n1"));
    }

    #[test]
    fn a_single_node_elects_itself_and_commits() {
        let mut r = node("n1", &[]);
        r.tick(1000);
        assert_eq!(r.role(), Role::Leader);
        let i = r.propose(Command::Read).unwrap();
        r.tick(1001);
        assert_eq!(r.commit(), i);
        let ready = r.ready();
        assert_eq!(ready.hard.unwrap().term, 1);
        assert_eq!(ready.append.unwrap().1.len(), 2);
    }

    #[test]
    fn three_nodes_elect_one_leader_and_replicate() {
        let ids = ["n1", "n2", "n3"];
        let mut nodes: Vec<Raft> = ids
            .iter()
            .map(|id| {
                node(
                    id,
                    &ids.iter().filter(|p| *p != id).copied().collect::<Vec<_>>(),
                )
            })
            .collect();
        let mut now = 0;
        let mut proposed = None;
        for _ in 0..200 {
            now += 10;
            for n in nodes.iter_mut() {
                n.tick(now);
            }
            if let Some(l) = nodes.iter_mut().find(|n| n.role() == Role::Leader) {
                if proposed.is_none() {
                    proposed = l.propose(Command::Read);
                }
            }
            // Deliver everything, in order, until quiet.
            for _ in 0..10 {
                let mut msgs = Vec::new();
                for n in nodes.iter_mut() {
                    let from = n.id().clone();
                    msgs.extend(
                        n.ready()
                            .messages
                            .into_iter()
                            .map(|(to, m)| (from.clone(), to, m)),
                    );
                }
                if msgs.is_empty() {
                    break;
                }
                for (from, to, m) in msgs {
                    let n = nodes.iter_mut().find(|n| *n.id() == to).unwrap();
                    n.step(&from, m, now);
                }
            }
        }
        let leaders = nodes.iter().filter(|n| n.role() == Role::Leader).count();
        assert_eq!(leaders, 1);
        let p = proposed.expect("a leader was elected");
        assert!(
            nodes.iter().all(|n| n.commit() >= p),
            "every node learns the commit"
        );
    }

    fn snapshot_msg(term: u64, index: u64, snapshot_term: u64) -> PeerMsg {
        PeerMsg::Snapshot {
            term,
            index,
            snapshot_term,
            data: format!("state at {index}"),
        }
    }

    /// A single-node leader with `n` committed no-op reads and everything persisted.
    fn leader_with(n: u64, peers: &[&str]) -> Raft {
        let mut r = node("n1", peers);
        r.tick(1000);
        for p in peers {
            let granted = PeerMsg::VoteReply {
                term: 1,
                granted: true,
            };
            r.step(&p.to_string(), granted, 1001);
        }
        assert_eq!(r.role(), Role::Leader);
        for _ in 0..n {
            r.propose(Command::Read);
        }
        r
    }

    #[test]
    #[should_panic(expected = "compaction to 3 outside the snapshot 0 .. commit 0")]
    fn compacting_past_the_commit_index_trips_the_invariant() {
        let mut r = leader_with(4, &["n2", "n3"]);
        r.ready();
        r.compact(3, "x".into());
    }

    #[test]
    fn a_leader_compacts_then_answers_a_lagging_follower_with_its_snapshot_once_a_second() {
        let mut r = leader_with(5, &["n2", "n3"]);
        r.ready();
        // n3 acknowledges everything: the entries commit.
        let ok = |index| PeerMsg::AppendReply {
            term: 1,
            success: true,
            index,
        };
        r.step(&"n3".to_string(), ok(6), 1002);
        assert_eq!(r.commit(), 6);
        r.compact(4, "state at 4".into());
        assert_eq!(r.snapshot_meta(), SnapshotMeta { index: 4, term: 1 });
        assert_eq!(
            (r.entry(4), r.entry(5).is_some(), r.last_index()),
            (None, true, 6)
        );
        // n2 says it holds nothing: it needs entry 1, which is compacted away.
        let behind = PeerMsg::AppendReply {
            term: 1,
            success: false,
            index: 1,
        };
        r.step(&"n2".to_string(), behind.clone(), 1003);
        let sent = r.ready().messages;
        let snapshots: Vec<_> = sent
            .iter()
            .filter(|(to, m)| to == "n2" && matches!(m, PeerMsg::Snapshot { .. }))
            .collect();
        assert_eq!(snapshots.len(), 1, "{sent:?}");
        assert_eq!(snapshots[0].1, snapshot_msg(1, 4, 1));
        // Asked again at once: no second copy within the resend interval, one after it.
        r.step(&"n2".to_string(), behind.clone(), 1500);
        assert!(!r
            .ready()
            .messages
            .iter()
            .any(|(_, m)| matches!(m, PeerMsg::Snapshot { .. })));
        r.step(&"n2".to_string(), behind, 2100);
        assert!(r
            .ready()
            .messages
            .iter()
            .any(|(_, m)| matches!(m, PeerMsg::Snapshot { .. })));
        // Installed: n2 goes on from the entry after the snapshot.
        r.step(&"n2".to_string(), ok(4), 2101);
        let next: Vec<_> = r
            .ready()
            .messages
            .into_iter()
            .filter(|(to, _)| to == "n2")
            .collect();
        assert!(
            matches!(next[..], [(_, PeerMsg::Append { prev_index: 4, ref entries, .. })] if entries.len() == 2),
            "{next:?}"
        );
    }

    #[test]
    fn a_follower_installs_a_snapshot_keeping_only_a_log_that_agrees_with_it() {
        // Its log agrees at the snapshot's index: the entries after it stay.
        let mut r = node("n2", &["n1", "n3"]);
        r.step(&"n1".to_string(), append(1, (0, 0), &[1, 1, 1, 1], 1), 10);
        r.ready();
        r.step(&"n1".to_string(), snapshot_msg(1, 3, 1), 20);
        let ready = r.ready();
        assert_eq!(
            ready.snapshot.as_ref().map(|s| s.meta),
            Some(SnapshotMeta { index: 3, term: 1 })
        );
        assert!(ready.append.is_none(), "nothing new to persist");
        assert_eq!(
            (r.commit(), r.last_index(), r.log_after_snapshot().len()),
            (3, 4, 1)
        );
        assert!(matches!(
            ready.messages[..],
            [(
                _,
                PeerMsg::AppendReply {
                    success: true,
                    index: 3,
                    ..
                }
            )]
        ));
        // It does not: the log goes. An older snapshot than the commit changes nothing.
        let mut r = node("n2", &["n1", "n3"]);
        r.step(&"n1".to_string(), append(1, (0, 0), &[1, 1], 0), 10);
        r.step(&"n3".to_string(), snapshot_msg(2, 5, 2), 20);
        assert_eq!((r.commit(), r.last_index(), r.entry(5)), (5, 5, None));
        assert_eq!(r.leader().map(String::as_str), Some("n3"));
        r.ready();
        r.step(&"n3".to_string(), snapshot_msg(2, 4, 2), 30);
        let ready = r.ready();
        assert!(ready.snapshot.is_none());
        assert_eq!(r.snapshot_meta().index, 5);
        // An append reaching back into the snapshot is taken from the snapshot's end on.
        r.step(&"n3".to_string(), append(2, (3, 1), &[1, 2, 2], 6), 40);
        assert_eq!(
            (r.last_index(), r.commit(), r.entry(6).map(|e| e.term)),
            (6, 6, Some(2))
        );
    }
}
