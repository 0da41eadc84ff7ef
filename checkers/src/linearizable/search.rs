//! The search for a linearization of one partition: Wing & Gong's algorithm with Lowe's just-in-time
//! linearization and memoization (WGL).
//!
//! Operations become call and return entries in one list, in real-time order. The search walks the
//! list from its head: at a call entry it tries to linearize that operation now (the model must accept
//! it from the current state); if it can, and the resulting configuration was not explored before, it
//! lifts the operation's entries out of the list, pushes the old state, and starts again from the
//! head. Reaching a return entry means that operation had to be linearized before this point and no
//! choice made so far allows it: the search backtracks, undoing the most recent linearization and
//! trying the next candidate after it. Only operations whose call precedes every pending return are
//! ever candidates — Lowe's "just in time" — so the branching is bounded by the concurrency, not the
//! history length. Lifting and undoing are O(1) (dancing links, Knuth), and the memo stores 128-bit
//! fingerprints (see `memo.rs`), so one step costs O(1) whatever the history length.
//!
//! `info` and pending operations have no return entry: the search may linearize them at any point
//! after their call, or leave them out; it succeeds once every operation *with* a return entry is
//! linearized. They live in a second list and are tried only when the walk is stuck.
//!
//! Three reductions keep the explored configurations few, each exact (the cross-check against the
//! brute-force oracle exercises them):
//! - *Eager reads*: a read-only operation that can be linearized now is, and is never tried later
//!   (any linearization placing it later can place it here); if nothing works after it, the
//!   configuration before it is a dead end too. This is what makes 20 concurrent clients cheap.
//! - *Partial-order reduction after `info` operations*: right after one, only an operation that
//!   depends on it may follow; one that commutes with it is explored with the `info` operation moved
//!   after it.
//! - *Iterative deepening on `info` runs*: at most k `info` operations in a row, k = 1, 2, …; a round
//!   is rerun with k + 1 only if its failure depended on the bound, and configurations whose failure
//!   did not are skipped in later rounds.
//!
//! Budget: the deadline and the cancellation flag are read every [`CHECK_INTERVAL`] steps; memory (memo
//! and stack) is accounted before every allocation that could grow it, against a pool shared by the
//! partitions searched in parallel. Running out of either ends the search with a cause, never a kill.

use std::time::Instant;

use crate::linearizable::entries::Entries;
pub use crate::linearizable::limits::{Limits, MemoryPool};
use crate::linearizable::memo::{state_fingerprint, zobrist_keys, Memo};
use crate::linearizable::model::Model;
use crate::linearizable::partition::OpRecord;

/// How many steps run between two reads of the clock.
pub const CHECK_INTERVAL: u64 = 4096;
/// How many operations of the longest linearizable prefix a failure keeps (its tail).
pub const PREFIX_TAIL: usize = 24;
/// How many distinct final states of the longest prefixes a failure keeps.
pub const STATES_MAX: usize = 8;

/// Search statistics, reported in `details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Entries of the list visited.
    pub steps: u64,
    /// Configurations explored (linearizations tried and new).
    pub states_explored: u64,
    /// Linearizations that led to a configuration explored before (memo hits).
    pub cache_hits: u64,
    /// Linearizations the model refused.
    pub rejected: u64,
    /// Undone linearizations.
    pub backtracks: u64,
    /// Extra rounds with a looser bound on `info` operations in a row (see [`search`]).
    pub rounds: u64,
    /// Linearizations skipped because the same order with an `info` operation moved later is explored.
    pub reordered: u64,
    /// The most operations linearized at once.
    pub max_depth: u64,
    /// The most memory held at once (memo and stack), in bytes.
    pub peak_bytes: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.states_explored += o.states_explored;
        self.cache_hits += o.cache_hits;
        self.rejected += o.rejected;
        self.backtracks += o.backtracks;
        self.reordered += o.reordered;
        self.rounds += o.rounds;
        self.max_depth = self.max_depth.max(o.max_depth);
        self.peak_bytes += o.peak_bytes;
    }
}

/// Why a partition is not linearizable, as the search saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure<S> {
    /// The operation (position in the partition) that could not be linearized: at the deepest point
    /// the search reached, its return came before any order of the remaining operations allowed it.
    pub blocked: usize,
    /// How many operations the longest linearizable prefix holds.
    pub prefix_len: usize,
    /// The tail of that prefix: each operation with the state after it.
    pub prefix_tail: Vec<(usize, S)>,
    /// Distinct states in which `blocked` was due and could not be linearized: first the one at the
    /// end of the longest prefix, then others the search met (at most [`STATES_MAX`]).
    pub states: Vec<S>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<S> {
    Linearizable,
    Nonlinearizable(Failure<S>),
    /// The search stopped before deciding: the cause, in words.
    Unknown(String),
    Cancelled,
}

struct Frame<S> {
    op: u32,
    state: S,
    linearized: u128,
    /// `info_run` before this linearization.
    info_run: u32,
    /// The fingerprint of the configuration this linearization reached.
    fingerprint: u128,
    /// Whether exploring that configuration was cut short by the round's `info_run_max`, directly or
    /// through a configuration that was: then its failure is not final.
    bound_hit: bool,
    /// A read-only operation, linearized as soon as it could be: if nothing works after it, nothing
    /// works from the configuration before it either.
    forced: bool,
}

/// Where the walk is: at an entry of the main chain, or — once it reached the return entry `deadline`
/// of the main chain — at an `info` call that may still be linearized before that return.
#[derive(Debug, Clone, Copy)]
enum Cursor {
    Main(u32),
    Info { entry: u32, deadline: u32 },
}

/// Searches for a linearization of `ops` (in call order) from `initial`.
pub fn search<M: Model>(
    model: &M,
    initial: &M::State,
    ops: &[OpRecord<M::Op>],
    limits: &Limits<'_>,
) -> (Outcome<M::State>, Stats) {
    // An operation that must take effect and that no reachable state accepts decides the partition
    // at once (a bank read showing another total): no search can place it, however long it runs.
    if limits.reductions {
        let doomed = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.required() && model.unreachable(initial, &o.op))
            .min_by_key(|(_, o)| o.ret);
        if let Some((blocked, _)) = doomed {
            let failure = Failure {
                blocked,
                prefix_len: 0,
                prefix_tail: Vec::new(),
                states: Vec::new(),
            };
            return (Outcome::Nonlinearizable(failure), Stats::default());
        }
    }
    let mut s = Search::new(model, initial.clone(), ops, limits);
    let info_ops = ops.iter().filter(|o| !o.required()).count() as u32;
    // Iterative deepening on how many `info` operations may be linearized in a row (see `info_run`):
    // a valid history almost always needs one or two at a time, and a bound keeps one ordinary wrong
    // guess among the ops that must take effect from setting off every subset of the timed-out ones.
    // A failure that never hit the bound is final; otherwise the bound grows (1, 2, 3, 4, 8, 16, …)
    // and the search reruns, skipping the configurations whose failure did not depend on the bound.
    // With fewer than two `info` operations there is no run to bound (and no failure to keep).
    s.info_run_max = if info_ops < 2 || !limits.reductions {
        u32::MAX
    } else {
        1
    };
    let outcome = loop {
        let outcome = s.run();
        if !matches!(outcome, Outcome::Nonlinearizable(_))
            || !s.bounded
            || s.info_run_max >= info_ops
        {
            break outcome;
        }
        // One at a time while runs are short (where valid histories need them), then doubling, so a
        // history with thousands of `info` operations needs a handful of rounds, not thousands.
        let k = s.info_run_max;
        s.info_run_max = if k < 4 { k + 1 } else { k.saturating_mul(2) }.min(info_ops);
        s.stats.rounds += 1;
        s.restart();
    };
    let held = s.held_bytes;
    // Give the memory back to the pool: this search's memo and stack are dropped with it.
    limits.memory.resize(held, 0);
    (outcome, s.stats)
}

struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [OpRecord<M::Op>],
    limits: &'a Limits<'a>,
    entries: Entries,
    keys: Vec<u128>,
    /// Configurations explored in this round.
    memo: Memo,
    /// Configurations whose failure did not depend on any round's bound: kept across rounds.
    definitive: Memo,
    stack: Vec<Frame<M::State>>,
    state: M::State,
    linearized: u128,
    remaining_required: usize,
    stack_heap_bytes: u64,
    held_bytes: u64,
    stats: Stats,
    best: Option<Failure<M::State>>,
    /// How many `info` operations the top of the stack linearized in a row.
    info_run: u32,
    /// The most `info` operations this round may linearize in a row.
    info_run_max: u32,
    /// Whether this round skipped a candidate because of `info_run_max`.
    bounded: bool,
    run_keys: Vec<u128>,
    /// For each `info` operation, the next `info` operation (by call) with the very same model
    /// operation, if any.
    twin: Vec<Option<u32>>,
    /// Which operations are linearized now.
    placed: Vec<bool>,
    /// Bumped at every linearization and undo: names the configuration, for `stuck`.
    epoch: u64,
    /// What the walk learned about the configuration `epoch` once it got stuck.
    stuck: Option<Stuck<M::Op, M::Pool>>,
    /// Steps between two [`Search::check_path`]s: at least the operation count, so that the check
    /// costs O(1) per step.
    path_check_every: u64,
}

/// A configuration where the walk is stuck: the required operations it may still linearize before
/// the due return (the candidates of the main chain), and whether the due operation can recover.
struct Stuck<O, P> {
    epoch: u64,
    followers: Vec<u32>,
    may_recover: bool,
    /// The followers' operations and the model's summary of the pool, made when first needed
    /// (inside a run that may go on).
    guide: Option<(Vec<O>, P)>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(
        model: &'a M,
        initial: M::State,
        ops: &'a [OpRecord<M::Op>],
        limits: &'a Limits<'a>,
    ) -> Self {
        Search {
            model,
            ops,
            limits,
            entries: Entries::new(ops),
            keys: zobrist_keys(ops.len()),
            memo: Memo::default(),
            definitive: Memo::default(),
            stack: Vec::new(),
            state: initial,
            linearized: 0,
            remaining_required: ops.iter().filter(|o| o.required()).count(),
            stack_heap_bytes: 0,
            held_bytes: 0,
            stats: Stats::default(),
            best: None,
            info_run: 0,
            info_run_max: u32::MAX,
            bounded: false,
            run_keys: zobrist_keys(ops.len() + 2).split_off(ops.len()),
            twin: twins(ops),
            placed: vec![false; ops.len()],
            epoch: 0,
            stuck: None,
            path_check_every: (ops.len() as u64).next_power_of_two().max(CHECK_INTERVAL),
        }
    }

    /// Prepares another round after a failed one (which undid every linearization).
    fn restart(&mut self) {
        assert!(self.stack.is_empty(), "a failed round undid everything");
        self.memo = Memo::default();
        if self.info_run_max == u32::MAX {
            self.definitive = Memo::default();
        }
        // `best` stays: a prefix linearized in any round is linearizable, and the operation blocked
        // after it is the first return pending there, whatever the bound. Later rounds may not get
        // as deep again, since configurations that failed for good are skipped.
        self.bounded = false;
        self.info_run = 0;
    }

    /// The walk. At a configuration the candidates are, in order: the calls of the main chain before
    /// its first return entry, then the `info` calls made before that return. Trying operations that
    /// must take effect first, and `info` ones only when the walk is stuck, finds a linearization of a
    /// valid history without guessing which timed-out operations happened until a result demands it.
    fn run(&mut self) -> Outcome<M::State> {
        let mut cursor = Cursor::Main(self.entries.next[self.entries.main_head as usize]);
        loop {
            if self.remaining_required == 0 {
                return Outcome::Linearizable;
            }
            self.stats.steps += 1;
            // The O(operations) path check at most once per that many steps: O(1) amortized.
            if verity_history::INVARIANTS && self.stats.steps % self.path_check_every == 1 {
                self.check_path();
            }
            if self.stats.steps % CHECK_INTERVAL == 1 {
                if let Some(stop) = self.check_limits() {
                    return stop;
                }
            }
            cursor = match cursor {
                Cursor::Main(entry) => {
                    assert!(
                        entry != self.entries.main_tail,
                        "a required operation's return is still listed"
                    );
                    if entry % 2 == 1 {
                        let first_info = self.entries.next[self.entries.info_head as usize];
                        Cursor::Info {
                            entry: first_info,
                            deadline: entry,
                        }
                    } else {
                        match self.try_linearize(entry / 2) {
                            Ok(true) => {
                                Cursor::Main(self.entries.next[self.entries.main_head as usize])
                            }
                            Ok(false) => Cursor::Main(self.entries.next[entry as usize]),
                            Err(stop) => return stop,
                        }
                    }
                }
                Cursor::Info { entry, deadline } => {
                    let due = self.ops[(deadline / 2) as usize]
                        .ret
                        .expect("a return entry has a return");
                    if entry == self.entries.info_tail
                        || self.ops[(entry / 2) as usize].call > due
                        || (self.limits.reductions && !self.stuck_op_may_recover(deadline, due))
                    {
                        self.note_blocked((deadline / 2) as usize);
                        match self.backtrack() {
                            Some(cursor) => cursor,
                            None => {
                                let failure = self
                                    .best
                                    .clone()
                                    .expect("a blocked return was noted before failing");
                                return Outcome::Nonlinearizable(failure);
                            }
                        }
                    } else if self.later_twin_available(entry / 2, due)
                        || (self.limits.reductions && self.ends_run_enabling_nothing(entry / 2))
                    {
                        Cursor::Info {
                            entry: self.entries.next[entry as usize],
                            deadline,
                        }
                    } else {
                        match self.try_linearize(entry / 2) {
                            Ok(true) => {
                                Cursor::Main(self.entries.next[self.entries.main_head as usize])
                            }
                            Ok(false) => Cursor::Info {
                                entry: self.entries.next[entry as usize],
                                deadline,
                            },
                            Err(stop) => return stop,
                        }
                    }
                }
            };
        }
    }

    /// The linearized set is exactly the operations of the path (the stack), each once: its
    /// fingerprint is the XOR of theirs, `placed` marks them and nothing else, and the required
    /// operations left are the others. O(operations): run every `path_check_every` steps when
    /// invariants are checked, beside the O(1) checks of every push and undo.
    fn check_path(&self) {
        let mut on_path = vec![false; self.ops.len()];
        let mut fingerprint = 0u128;
        let mut required = 0;
        for f in &self.stack {
            let i = f.op as usize;
            assert!(!on_path[i], "operation {i} is twice on the search path");
            on_path[i] = true;
            fingerprint ^= self.keys[i];
            required += usize::from(self.ops[i].required());
        }
        assert!(
            on_path == self.placed,
            "the placed operations are not the search path's"
        );
        assert_eq!(
            fingerprint, self.linearized,
            "the linearized set's fingerprint is not the path's"
        );
        let total = self.ops.iter().filter(|o| o.required()).count();
        assert_eq!(
            self.remaining_required + required,
            total,
            "required operations left + on the path != all required operations"
        );
    }

    /// Tries to linearize operation `i` now. `Ok(true)` if it did.
    fn try_linearize(&mut self, i: u32) -> Result<bool, Outcome<M::State>> {
        // The set grows by exactly one operation not in it yet.
        verity_history::invariant!(
            !self.placed[i as usize],
            "operation {i} linearized twice on one search path"
        );
        let op = &self.ops[i as usize];
        let info_run = if op.required() { 0 } else { self.info_run + 1 };
        if info_run > self.info_run_max {
            self.note_bound_hit();
            return Ok(false);
        }
        let Some(next) = self.model.step(&self.state, &op.op) else {
            self.stats.rejected += 1;
            return Ok(false);
        };
        // Partial-order reduction (Godefroid 1996): right after an `info` operation X, only an
        // operation that depends on X may follow. One that commutes with X (same state either way,
        // enabled either way) can go first and X after it, and that order is explored from the
        // configuration before X — `info` operations have no return, so moving one later never
        // breaks real-time order. Without this, one wrong guess that a timed-out transfer happened
        // re-explores every order of the transfers around it.
        if self.limits.reductions
            && op.required()
            && self.info_run > 0
            && self.commutes_with_top(&op.op, &next)
        {
            self.stats.reordered += 1;
            return Ok(false);
        }
        let linearized = self.linearized ^ self.keys[i as usize];
        let want = self.footprint(&next);
        if !self.claim(want) {
            return Err(Outcome::Unknown(self.memory_cause()));
        }
        // After an `info` operation the configuration also holds what limits its successors: how many
        // `info` operations ran in a row, which one is on top, and the state before it.
        let run_key = if info_run > 0 {
            self.run_keys[0].rotate_left(info_run)
                ^ self.run_keys[1]
                ^ self.keys[i as usize].rotate_left(64)
                ^ state_fingerprint(&self.state).rotate_left(32)
        } else {
            0
        };
        let fingerprint = linearized ^ state_fingerprint(&next) ^ run_key;
        if self.definitive.contains(fingerprint) {
            self.stats.cache_hits += 1;
            return Ok(false);
        }
        if !self.memo.insert(fingerprint) {
            // Explored in this round and not definitively failed: its failure may be the bound's.
            self.stats.cache_hits += 1;
            self.note_bound_hit_if_bounded();
            return Ok(false);
        }
        self.stats.states_explored += 1;
        self.stack_heap_bytes += self.model.state_heap_bytes(&self.state) as u64;
        let previous = std::mem::replace(&mut self.state, next);
        self.stack.push(Frame {
            op: i,
            state: previous,
            linearized: self.linearized,
            info_run: self.info_run,
            fingerprint,
            bound_hit: false,
            // Eager reads (Lowe 2017, §5; Horn & Kroening's "read-only" optimization): a read-only op
            // that can go now changes nothing, so any linearization that places it later can place
            // it here instead — it is a candidate, so nothing must precede it, and every op after
            // sees the same state. If the configuration after it fails, so does this one.
            forced: self.limits.reductions && op.required() && self.model.is_read_only(&op.op),
        });
        self.linearized = linearized;
        self.info_run = info_run;
        self.placed[i as usize] = true;
        self.epoch += 1;
        self.stats.max_depth = self.stats.max_depth.max(self.stack.len() as u64);
        self.entries.lift(2 * i);
        if op.required() {
            self.entries.lift(2 * i + 1);
            self.remaining_required -= 1;
        }
        Ok(true)
    }

    /// Symmetry: two `info` operations with the very same model operation are interchangeable, except
    /// that the one called earlier may be placed anywhere the later one may. So when both are
    /// candidates, only the later is tried; the earlier stays available for later use, which is at
    /// least as good. Without this, k identical timed-out transfers multiply every guess by k.
    fn later_twin_available(&self, i: u32, due: u64) -> bool {
        self.twin[i as usize]
            .is_some_and(|t| !self.placed[t as usize] && self.ops[t as usize].call < due)
    }

    /// What the walk knows of the configuration it is stuck in (computed once per configuration):
    /// the required candidates, and whether any choice of them and of the `info` operations called
    /// before the due return `due` could make the due operation acceptable
    /// ([`Model::may_become_legal`]).
    fn stuck(&mut self, deadline: u32, due: u64) -> &Stuck<M::Op, M::Pool> {
        if self.stuck.as_ref().is_none_or(|s| s.epoch != self.epoch) {
            let mut followers = Vec::new();
            let mut e = self.entries.next[self.entries.main_head as usize];
            while e.is_multiple_of(2) {
                followers.push(e / 2);
                e = self.entries.next[e as usize];
            }
            assert_eq!(e, deadline, "the walk is stuck at the first return");
            let mut movers: Vec<&M::Op> = followers
                .iter()
                .map(|&i| &self.ops[i as usize].op)
                .collect();
            let mut e = self.entries.next[self.entries.info_head as usize];
            while e != self.entries.info_tail && self.ops[(e / 2) as usize].call < due {
                movers.push(&self.ops[(e / 2) as usize].op);
                e = self.entries.next[e as usize];
            }
            let due_op = &self.ops[(deadline / 2) as usize].op;
            let may_recover = self.model.may_become_legal(&self.state, due_op, &movers);
            self.stuck = Some(Stuck {
                epoch: self.epoch,
                followers,
                may_recover,
                guide: None,
            });
        }
        self.stuck.as_ref().expect("just computed")
    }

    /// Whether the operation due at `deadline` may still be linearized from here. When it cannot —
    /// whatever the candidates and the `info` operations called before `due` do, in any order — this
    /// configuration is a dead end, whatever the round's bound: the walk backtracks at once instead
    /// of trying every `info` operation (a read showing another total, or a negative balance, is
    /// never reachable by transfers).
    fn stuck_op_may_recover(&mut self, deadline: u32, due: u64) -> bool {
        self.stuck(deadline, due).may_recover
    }

    /// Whether the `info` operation `i` would have to end its run (the round's bound) and enables no
    /// required candidate ([`Model::enables`]) — then it is not tried.
    ///
    /// Why that is exact: take any linearization from here and move each `info` operation later, past
    /// the operation after it, whenever that leaves a legal history with the same states where
    /// required operations see them (an `info` operation has no return, so real time never stops
    /// it; the sum of their positions grows, so this ends). In the result, each `info` operation
    /// that ends a run is followed by a required candidate it does not commute with: exactly what
    /// `enables` says. The partial-order reduction in `try_linearize` is the same argument seen from
    /// the follower's side. The skip depends on the bound (a longer run could follow `i` with
    /// another `info` operation), so it is noted as such, as any candidate the bound cuts is.
    ///
    /// When the run may go on (`room` more `info` operations), the same argument gives a weaker
    /// condition: `i` must be needed by the rest of the run or by the follower
    /// ([`Model::info_may_help`]), or it could be moved after the follower.
    fn ends_run_enabling_nothing(&mut self, i: u32) -> bool {
        if self.info_run_max == u32::MAX {
            return false;
        }
        let room = self.info_run_max.saturating_sub(self.info_run + 1);
        let (ops, model, state, epoch) = (self.ops, self.model, &self.state, self.epoch);
        let Some(stuck) = self.stuck.as_mut().filter(|s| s.epoch == epoch) else {
            return false;
        };
        let optional = &ops[i as usize].op;
        let useful = if room == 0 {
            stuck.followers.iter().any(|&y| {
                model
                    .enables(state, optional, &ops[y as usize].op)
                    .unwrap_or(true)
            })
        } else {
            let (followers, pool) = stuck.guide.get_or_insert_with(|| {
                let required: Vec<&M::Op> = stuck
                    .followers
                    .iter()
                    .map(|&y| &ops[y as usize].op)
                    .collect();
                let pool = info_pool(ops, &self.entries, self.entries.first_return());
                let pool: Vec<&M::Op> = pool.iter().map(|&j| &ops[j as usize].op).collect();
                let summary = model.pool_summary(&required, &pool);
                (required.into_iter().cloned().collect(), summary)
            });
            model.info_may_help(state, optional, followers, pool, room)
        };
        if useful {
            return false;
        }
        self.note_bound_hit();
        true
    }

    /// A candidate was skipped because of the round's bound: the failure of the configuration on top
    /// of the stack (and of every one below it) is not final.
    fn note_bound_hit(&mut self) {
        self.bounded = true;
        if let Some(top) = self.stack.last_mut() {
            top.bound_hit = true;
        }
    }

    fn note_bound_hit_if_bounded(&mut self) {
        if self.bounded {
            self.note_bound_hit();
        }
    }

    /// Whether `op` (giving `next` after the `info` operation on top of the stack) commutes with it:
    /// from the state before that operation, `op` then it also leads to `next`.
    fn commutes_with_top(&self, op: &M::Op, next: &M::State) -> bool {
        let top = self
            .stack
            .last()
            .expect("an info run has an info operation on top");
        let info = &self.ops[top.op as usize].op;
        self.model
            .step(&top.state, op)
            .and_then(|t| self.model.step(&t, info))
            .is_some_and(|u| u == *next)
    }

    /// Undoes the most recent linearization; returns where the walk continues: at the candidate after
    /// the undone one, in the same order the walk tried them.
    fn undo(&mut self, frame: Frame<M::State>) -> Cursor {
        // Backtracking restores the set before the push: the current set is that one plus `i`.
        verity_history::invariant!(
            self.placed[frame.op as usize]
                && self.linearized == frame.linearized ^ self.keys[frame.op as usize],
            "undoing operation {} does not give back the linearized set before it",
            frame.op
        );
        self.stats.backtracks += 1;
        if frame.bound_hit {
            if let Some(parent) = self.stack.last_mut() {
                parent.bound_hit = true;
            }
        } else if self.info_run_max != u32::MAX && self.room_for_definitive() {
            // Only worth keeping when another round may follow.
            self.definitive.insert(frame.fingerprint);
        }
        let i = frame.op;
        self.placed[i as usize] = false;
        self.epoch += 1;
        let required = self.ops[i as usize].required();
        if required {
            self.entries.unlift(2 * i + 1);
            self.remaining_required += 1;
        }
        self.entries.unlift(2 * i);
        self.stack_heap_bytes -= self.model.state_heap_bytes(&frame.state) as u64;
        self.state = frame.state;
        self.linearized = frame.linearized;
        self.info_run = frame.info_run;
        let after = self.entries.next[2 * i as usize];
        if required {
            Cursor::Main(after)
        } else {
            Cursor::Info {
                entry: after,
                deadline: self.entries.first_return(),
            }
        }
    }

    /// Undoes linearizations until one leaves a configuration with candidates left to try; `None`
    /// when the stack is empty (the partition is not linearizable). A read-only operation that was
    /// linearized as soon as it could be leaves none: see `try_linearize`.
    fn backtrack(&mut self) -> Option<Cursor> {
        loop {
            let frame = self.stack.pop()?;
            let forced = frame.forced;
            let cursor = self.undo(frame);
            if !forced {
                return Some(cursor);
            }
        }
    }

    /// Bytes the memo, the kept failures and the stack will hold after one more push (each table
    /// counted at the size its next insert may double it to).
    fn footprint(&self, next: &M::State) -> u64 {
        let frame = std::mem::size_of::<Frame<M::State>>() as u64;
        let stack_capacity = if self.stack.len() == self.stack.capacity() {
            (self.stack.capacity().max(4) * 2) as u64
        } else {
            self.stack.capacity() as u64
        };
        self.memo.bytes_after_insert()
            + self.definitive.bytes_after_insert()
            + stack_capacity * frame
            + self.stack_heap_bytes
            + self.model.state_heap_bytes(next) as u64
    }

    /// Claims `want` bytes from the shared pool (a little more when it can, so the shared counter is
    /// touched rarely); false if the budget cannot cover them.
    fn claim(&mut self, want: u64) -> bool {
        if want <= self.held_bytes {
            return true;
        }
        let generous = want.max(self.held_bytes + self.held_bytes / 8);
        self.held_bytes = if self.limits.memory.resize(self.held_bytes, generous) {
            generous
        } else if self.limits.memory.resize(self.held_bytes, want) {
            want
        } else {
            return false;
        };
        self.stats.peak_bytes = self.stats.peak_bytes.max(want);
        true
    }

    /// Whether a failure may be kept across rounds without breaking the budget. Keeping it is only an
    /// optimization, so when memory is short it is simply not kept.
    fn room_for_definitive(&mut self) -> bool {
        let want = self.footprint(&self.state) + self.definitive.bytes_after_insert();
        self.claim(want)
    }

    fn memory_cause(&self) -> String {
        let max = self.limits.memory.max();
        let budget = if max >= 1 << 20 {
            format!("{} MiB", max >> 20)
        } else {
            format!("{} KiB", max >> 10)
        };
        format!(
            "memory budget of {budget} exhausted after exploring {} configurations",
            self.stats.states_explored
        )
    }

    fn check_limits(&self) -> Option<Outcome<M::State>> {
        if (self.limits.cancel)() {
            return Some(Outcome::Cancelled);
        }
        let late = self.limits.deadline.is_some_and(|d| Instant::now() >= d);
        late.then(|| {
            Outcome::Unknown(format!(
                "check time limit reached after exploring {} configurations",
                self.stats.states_explored
            ))
        })
    }

    /// The walk reached the return of operation `blocked` without linearizing it. Keeps the deepest
    /// such point as the counterexample.
    fn note_blocked(&mut self, blocked: usize) {
        let depth = self.stack.len();
        match &mut self.best {
            // Shallower: only its state is of interest, when the same operation was blocked there.
            Some(best) if best.prefix_len >= depth => {
                if best.blocked == blocked
                    && best.states.len() < STATES_MAX
                    && !best.states.contains(&self.state)
                {
                    best.states.push(self.state.clone());
                }
            }
            _ => {
                let from = depth.saturating_sub(PREFIX_TAIL);
                let prefix_tail = (from..depth)
                    .map(|k| {
                        let after = self.stack.get(k + 1).map_or(&self.state, |f| &f.state);
                        (self.stack[k].op as usize, after.clone())
                    })
                    .collect();
                // States in which the same operation was already blocked stay part of the story.
                let mut states = match self.best.take() {
                    Some(old) if old.blocked == blocked => old.states,
                    _ => Vec::new(),
                };
                states.retain(|s| *s != self.state);
                states.insert(0, self.state.clone());
                states.truncate(STATES_MAX);
                self.best = Some(Failure {
                    blocked,
                    prefix_len: depth,
                    prefix_tail,
                    states,
                });
            }
        }
    }
}

/// The `info` operations not linearized whose call precedes the return entry `deadline`.
fn info_pool<O>(ops: &[OpRecord<O>], entries: &Entries, deadline: u32) -> Vec<u32> {
    let due = ops[(deadline / 2) as usize]
        .ret
        .expect("a return entry has a return");
    let mut pool = Vec::new();
    let mut e = entries.next[entries.info_head as usize];
    while e != entries.info_tail && ops[(e / 2) as usize].call < due {
        pool.push(e / 2);
        e = entries.next[e as usize];
    }
    pool
}

/// For each `info` operation, the next `info` operation (in call order) with an equal model operation.
fn twins<O: Eq + std::hash::Hash>(ops: &[OpRecord<O>]) -> Vec<Option<u32>> {
    let mut twin = vec![None; ops.len()];
    let mut last: std::collections::HashMap<&O, u32> = std::collections::HashMap::new();
    for (i, op) in ops.iter().enumerate().rev() {
        if op.required() {
            continue;
        }
        let i = i as u32;
        twin[i as usize] = last.insert(&op.op, i);
    }
    twin
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizable::model::{Interner, OpContext, ParseError, Parsed};
    use verity_history::OpOutcome;

    /// A counter whose every operation adds its value: each order is legal, so the tests choose
    /// what the search does.
    struct Adder;

    impl Model for Adder {
        type State = i64;
        type Op = i64;
        type Pool = ();
        fn name(&self) -> &'static str {
            "adder"
        }
        fn parse(
            &self,
            _: OpContext<'_>,
            _: &mut Interner,
        ) -> Result<Parsed<i64, i64>, ParseError> {
            unreachable!("the tests build operations directly")
        }
        fn init(&self, _: &mut Interner) -> Option<i64> {
            Some(0)
        }
        fn step(&self, state: &i64, op: &i64) -> Option<i64> {
            Some(state + op)
        }
        fn describe_op(&self, op: &i64, _: &Interner) -> String {
            format!("add {op}")
        }
        fn describe_state(&self, state: &i64, _: &Interner) -> String {
            state.to_string()
        }
    }

    /// Three concurrent additions, all `ok`.
    fn ops() -> Vec<OpRecord<i64>> {
        (0..3)
            .map(|i| OpRecord {
                op: 1 << i,
                call: i as u64,
                ret: Some(10 + i as u64),
                invoke_index: 2 * i as u64,
                completion_index: Some(2 * i as u64 + 1),
                process: i as u64,
                outcome: OpOutcome::Ok,
            })
            .collect()
    }

    /// Unbounded limits over a 1 GiB pool, with or without the reductions.
    fn with_limits<T>(reductions: bool, f: impl FnOnce(&Limits<'_>) -> T) -> T {
        let pool = MemoryPool::new(1 << 30);
        f(&Limits {
            deadline: None,
            memory: &pool,
            cancel: &|| false,
            reductions,
        })
    }

    fn with_search(f: impl FnOnce(&mut Search<'_, Adder>)) {
        let ops = ops();
        with_limits(false, |limits| f(&mut Search::new(&Adder, 0, &ops, limits)));
    }

    #[test]
    fn the_path_checks_hold_along_a_real_search() {
        with_search(|s| {
            assert_eq!(s.try_linearize(1), Ok(true));
            assert_eq!(s.try_linearize(0), Ok(true));
            s.check_path();
            let top = s.stack.pop().unwrap();
            s.undo(top);
            s.check_path();
            assert_eq!((s.linearized, s.state), (s.keys[1], 2));
        });
        let ops = ops();
        let (outcome, _) = with_limits(true, |limits| search(&Adder, &0, &ops, limits));
        assert_eq!(outcome, Outcome::Linearizable);
    }

    #[test]
    #[should_panic(expected = "operation 1 linearized twice on one search path")]
    fn linearizing_an_operation_already_on_the_path_trips_the_invariant() {
        with_search(|s| {
            assert_eq!(s.try_linearize(1), Ok(true));
            let _ = s.try_linearize(1);
        });
    }

    #[test]
    #[should_panic(expected = "undoing operation 0 does not give back the linearized set")]
    fn undoing_out_of_order_trips_the_invariant() {
        with_search(|s| {
            assert_eq!(s.try_linearize(0), Ok(true));
            assert_eq!(s.try_linearize(2), Ok(true));
            // The frame of operation 0 while operation 2 is still on top of it.
            let first = s.stack.remove(0);
            s.undo(first);
        });
    }

    #[test]
    #[should_panic(expected = "the placed operations are not the search path's")]
    fn a_placed_mark_without_its_frame_trips_the_path_check() {
        with_search(|s| {
            assert_eq!(s.try_linearize(0), Ok(true));
            s.placed[2] = true;
            s.check_path();
        });
    }
}
