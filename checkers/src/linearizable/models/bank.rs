//! A bank: a vector of account balances, transfers between accounts, and reads of every balance.
//!
//! This is the model Porcupine's and Knossos's users wrote for TiDB's and others' bank tests (the
//! histories that ran those checkers out of memory; see docs/benchmarks.md). A correct
//! bank applies a transfer atomically and only when the source holds at least the amount, so balances
//! never go negative; it rejects (`fail`, error `insufficient-funds`) a transfer when the source is
//! short. Such a rejection is an observation too: the source balance was below the amount at some
//! instant of the transfer's interval, so it is kept as a read-like operation. Other failures did not
//! happen and are dropped. A read returns `{"balances": [...]}` (final reads also carry `applied`,
//! which this model ignores: the conservation checker judges it).
//!
//! The initial balances come from the `setup` operation, or — for Jepsen histories, which have none —
//! from the first read, when it completed before any other operation began.

use verity_history::{OpOutcome, Value, F};

use crate::linearizable::model::{Interner, Model, OpContext, ParseError, Parsed};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BankOp {
    Transfer {
        from: u32,
        to: u32,
        amount: i64,
    },
    /// A rejected transfer: the source held less than `amount`.
    Short {
        from: u32,
        amount: i64,
    },
    Read(Box<[i64]>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bank;

/// What the search's stuck configurations hold, for [`Model::info_may_help`]: how much the
/// required candidates and the `info` transfers could take out of each account, and how many
/// `info` transfers of each (from, to, amount) there are.
#[derive(Debug, Default)]
pub struct BankPool {
    /// Per account, the amounts of the `info` transfers out of it, largest first.
    pool_out: Vec<Vec<i64>>,
    /// Per account, the largest amount of a required candidate transfer out of it.
    follower_out_max: Vec<i64>,
    /// Every `info` transfer as (from, to, amount), sorted.
    types: Vec<(u32, u32, i64)>,
    amount_max: i64,
    /// A negative amount somewhere: the reasoning does not hold, every operation may help.
    negative: bool,
}

type TransferType = (u32, u32, i64);

impl BankPool {
    /// The most that one follower and `room` `info` transfers could take out of `account`.
    fn could_take_out(&self, account: usize, room: u32) -> i64 {
        let pool: i64 = self
            .pool_out
            .get(account)
            .map_or(0, |v| v.iter().take(room as usize).sum());
        pool + self.follower_out_max.get(account).copied().unwrap_or(0)
    }

    fn count(&self, key: TransferType) -> usize {
        let lo = self.types.partition_point(|k| *k < key);
        let hi = self.types.partition_point(|k| *k <= key);
        hi - lo
    }

    /// Whether the difference `differ` (account, amount) is exactly one `info` transfer of the pool,
    /// other than the instances `used` stands for.
    fn single(&self, differ: &[(usize, i64)], used: &[TransferType]) -> bool {
        let [(a, da), (b, db)] = differ else {
            return false;
        };
        if da + db != 0 {
            return false;
        }
        let (src, dst, x) = if *da < 0 {
            (*a, *b, *db)
        } else {
            (*b, *a, *da)
        };
        let key = (src as u32, dst as u32, x);
        self.count(key) > used.iter().filter(|u| **u == key).count()
    }
}

fn grow<T: Default>(v: &mut Vec<T>, a: usize) {
    if v.len() <= a {
        v.resize_with(a + 1, T::default);
    }
}

/// `differ` less the effect of the transfer `j`.
fn minus(differ: &[(usize, i64)], (from, to, amount): TransferType) -> Vec<(usize, i64)> {
    let mut out: Vec<(usize, i64)> = differ.to_vec();
    for (a, d) in [(from as usize, -amount), (to as usize, amount)] {
        match out.iter_mut().find(|(b, _)| *b == a) {
            Some((_, v)) => *v -= d,
            None => out.push((a, -d)),
        }
    }
    out.retain(|(_, d)| *d != 0);
    out.sort_unstable();
    out
}

/// The error a correct bank gives when the source account is short.
pub const INSUFFICIENT_FUNDS: &str = "insufficient-funds";

fn balances(v: &Value) -> Option<Box<[i64]>> {
    v.get("balances")?.as_i64_list().map(Vec::into_boxed_slice)
}

fn transfer_of(v: &Value) -> Option<(u32, u32, i64)> {
    if let Some(t) = v.as_transfer() {
        return Some((t.from, t.to, t.amount));
    }
    let field = |k: &str| v.get(k).and_then(Value::as_i64);
    let from = u32::try_from(field("from")?).ok()?;
    let to = u32::try_from(field("to")?).ok()?;
    Some((from, to, field("amount")?))
}

impl Model for Bank {
    type State = Box<[i64]>;
    type Op = BankOp;
    type Pool = BankPool;

    fn name(&self) -> &'static str {
        "bank"
    }

    fn parse(
        &self,
        op: OpContext<'_>,
        _: &mut Interner,
    ) -> Result<Parsed<BankOp, Self::State>, ParseError> {
        match op.invoke.f {
            F::Setup => {
                let v = op.completion.map_or(&op.invoke.value, |c| &c.value);
                let v = if balances(v).is_some() {
                    v
                } else {
                    &op.invoke.value
                };
                let b = balances(v).ok_or_else(|| {
                    op.error(format!("a setup gives {{\"balances\": [..]}}, not {v}"))
                })?;
                Ok(Parsed::Setup(b))
            }
            F::Transfer => {
                let (from, to, amount) = transfer_of(&op.invoke.value).ok_or_else(|| {
                    op.error(format!(
                        "a transfer is {{from, to, amount}}, not {}",
                        op.invoke.value
                    ))
                })?;
                let parsed = match op.outcome {
                    OpOutcome::Fail => {
                        let short = op.completion.and_then(|c| c.error.as_deref())
                            == Some(INSUFFICIENT_FUNDS);
                        if !short {
                            return Ok(Parsed::Skip);
                        }
                        BankOp::Short { from, amount }
                    }
                    _ => BankOp::Transfer { from, to, amount },
                };
                Ok(Parsed::Op {
                    key: None,
                    op: parsed,
                })
            }
            F::Read => match op.result() {
                None | Some(Value::Null) => Ok(Parsed::Skip),
                Some(v) => {
                    let b = balances(v).ok_or_else(|| {
                        op.error(format!("a read returns {{\"balances\": [..]}}, not {v}"))
                    })?;
                    Ok(Parsed::Op {
                        key: None,
                        op: BankOp::Read(b),
                    })
                }
            },
            ref other => Err(op.error(format!(
                "the bank model knows setup, transfer and read, not {:?}",
                other.as_str()
            ))),
        }
    }

    fn init(&self, _: &mut Interner) -> Option<Self::State> {
        None
    }

    fn init_from_first(&self, op: &BankOp) -> Option<Self::State> {
        match op {
            BankOp::Read(b) => Some(b.clone()),
            _ => None,
        }
    }

    fn step(&self, state: &Self::State, op: &BankOp) -> Option<Self::State> {
        match op {
            BankOp::Transfer { from, to, amount } => {
                let (from, to) = (*from as usize, *to as usize);
                if from >= state.len() || to >= state.len() || state[from] < *amount {
                    return None;
                }
                let mut next = state.clone();
                next[from] -= amount;
                next[to] += amount;
                Some(next)
            }
            BankOp::Short { from, amount } => {
                let balance = *state.get(*from as usize)?;
                (balance < *amount).then(|| state.clone())
            }
            BankOp::Read(seen) => (**seen == **state).then(|| state.clone()),
        }
    }

    fn is_read_only(&self, op: &BankOp) -> bool {
        matches!(op, BankOp::Read(_) | BankOp::Short { .. })
    }

    /// A timed-out transfer `I` (from f to t, amount a) moves money between two accounts, so it
    /// matters to a follower only in three ways: a read that sees exactly the balances after `I`
    /// (and not before), a transfer out of t that only `I`'s money makes possible, a rejection of a
    /// transfer out of f that only holds once `I` took money out of f. Transfers commute in their
    /// effect, and `I` stays possible after any follower it was possible before (a follower out of f
    /// that was possible after `I` left at least a in f), so in every other case the two commute.
    fn enables(&self, state: &Self::State, optional: &BankOp, follower: &BankOp) -> Option<bool> {
        let BankOp::Transfer { from, to, amount } = *optional else {
            return None;
        };
        // The reasoning below needs amounts of at least zero: a negative amount moves money back.
        if amount < 0 || negative_amount(follower) {
            return None;
        }
        let (f, t) = (from as usize, to as usize);
        if f >= state.len() || t >= state.len() || state[f] < amount {
            return Some(false); // not possible now: the search will not linearize it
        }
        let after =
            |a: usize| state[a] - if a == f { amount } else { 0 } + if a == t { amount } else { 0 };
        Some(match follower {
            BankOp::Read(seen) => {
                seen.len() == state.len()
                    && (0..state.len()).all(|a| seen[a] == after(a))
                    && (0..state.len()).any(|a| seen[a] != state[a])
            }
            BankOp::Transfer {
                from: yf,
                to: yt,
                amount: ya,
            } => {
                let (yf, yt) = (*yf as usize, *yt as usize);
                yf < state.len() && yt < state.len() && state[yf] < *ya && after(yf) >= *ya
            }
            BankOp::Short {
                from: yf,
                amount: m,
            } => {
                let yf = *yf as usize;
                yf < state.len() && state[yf] >= *m && after(yf) < *m
            }
        })
    }

    fn pool_summary(&self, followers: &[&BankOp], pool: &[&BankOp]) -> BankPool {
        let mut summary = BankPool::default();
        for (k, op) in followers.iter().chain(pool).enumerate() {
            match **op {
                BankOp::Transfer { amount, .. } | BankOp::Short { amount, .. } if amount < 0 => {
                    summary.negative = true;
                }
                BankOp::Transfer { from, to, amount } => {
                    let f = from as usize;
                    if k < followers.len() {
                        grow(&mut summary.follower_out_max, f);
                        summary.follower_out_max[f] = summary.follower_out_max[f].max(amount);
                    } else {
                        grow(&mut summary.pool_out, f);
                        summary.pool_out[f].push(amount);
                        summary.types.push((from, to, amount));
                        summary.amount_max = summary.amount_max.max(amount);
                    }
                }
                _ => {}
            }
        }
        for amounts in &mut summary.pool_out {
            amounts.sort_unstable_by(|a, b| b.cmp(a));
        }
        summary.types.sort_unstable();
        summary
    }

    /// A timed-out transfer I (from f to t, amount a) placed now, with at most `room` more timed-out
    /// transfers after it and then a required follower Y, cannot be moved after Y only if Y or one of
    /// those transfers does not commute with it:
    /// - Y is a read, and the rest of the run can still make up the difference between what Y shows
    ///   and the balances after I: with room 1, one transfer of the pool is exactly the difference;
    ///   with room 2, one or two are; with more, at most 2·room accounts differ, by at most
    ///   room·(largest amount) in all;
    /// - or a transfer out of t among those could need I's money: the most that Y and `room` transfers
    ///   of the pool can take out of t is more than t holds;
    /// - or Y is a rejection of a transfer out of f (I lowers f).
    fn info_may_help(
        &self,
        state: &Self::State,
        optional: &BankOp,
        followers: &[BankOp],
        pool: &BankPool,
        room: u32,
    ) -> bool {
        let BankOp::Transfer { from, to, amount } = *optional else {
            return true;
        };
        let (f, t, n) = (from as usize, to as usize, state.len());
        if pool.negative || amount < 0 || f >= n || t >= n || state[f] < amount {
            return true;
        }
        if pool.could_take_out(t, room) > state[t] {
            return true;
        }
        let me = (from, to, amount);
        followers.iter().any(|y| match y {
            BankOp::Short { from: yf, .. } => *yf == from,
            BankOp::Read(seen) if seen.len() == n => {
                let after = |a: usize| {
                    state[a] - if a == f { amount } else { 0 } + if a == t { amount } else { 0 }
                };
                let differ: Vec<(usize, i64)> = (0..n)
                    .filter_map(|a| Some((a, seen[a] - after(a))).filter(|(_, d)| *d != 0))
                    .collect();
                let l1: i64 = differ.iter().map(|(_, d)| d.abs()).sum();
                let room = i64::from(room);
                if differ.is_empty() {
                    true
                } else if differ.len() as i64 > 2 * room || l1 > 2 * room * pool.amount_max {
                    false
                } else if room == 1 {
                    pool.single(&differ, &[me])
                } else if room == 2 {
                    pool.single(&differ, &[me])
                        || pool.types.iter().enumerate().any(|(k, &j)| {
                            // Each type once, I's own instance aside.
                            (k == 0 || pool.types[k - 1] != j)
                                && (j != me || pool.count(j) > 1)
                                && pool.single(&minus(&differ, j), &[me, j])
                        })
                } else {
                    true
                }
            }
            _ => false,
        })
    }

    /// Transfers conserve the total, and take no account below zero (or lower, when it already is):
    /// a read showing another total, or an account below both zero and its initial balance, is
    /// never reachable; nor is a transfer naming an account the bank does not have.
    fn unreachable(&self, initial: &Self::State, op: &BankOp) -> bool {
        let n = initial.len();
        match op {
            BankOp::Read(seen) => {
                let total = |v: &[i64]| v.iter().fold(0i128, |s, b| s + i128::from(*b));
                seen.len() != n
                    || total(seen) != total(initial)
                    || (0..n).any(|a| seen[a] < 0 && seen[a] < initial[a])
            }
            BankOp::Transfer { from, to, .. } => *from as usize >= n || *to as usize >= n,
            BankOp::Short { from, .. } => *from as usize >= n,
        }
    }

    /// Transfers conserve the total and never take an account below zero; from `state`, a read can
    /// only be reached if it shows the same total, no negative balance, and every account it shows
    /// higher (lower) can receive (send) at least the difference through the movers. A transfer short
    /// of funds needs inflow to its source; a rejection needs outflow from an account holding enough.
    fn may_become_legal(&self, state: &Self::State, due: &BankOp, movers: &[&BankOp]) -> bool {
        let n = state.len();
        let (mut inflow, mut outflow) = (vec![0i64; n], vec![0i64; n]);
        if negative_amount(due) || movers.iter().any(|m| negative_amount(m)) {
            return true; // the flow bounds below need amounts of at least zero
        }
        for m in movers {
            if let BankOp::Transfer { from, to, amount } = **m {
                let (f, t) = (from as usize, to as usize);
                if f < n && t < n && f != t && amount > 0 {
                    outflow[f] = outflow[f].saturating_add(amount);
                    inflow[t] = inflow[t].saturating_add(amount);
                }
            }
        }
        match due {
            BankOp::Read(seen) => {
                // A transfer leaves its source at zero or more, so an account only goes below zero (or
                // lower, when it already is) by a read that no state shows.
                if seen.len() != n || (0..n).any(|a| seen[a] < 0 && seen[a] < state[a]) {
                    return false;
                }
                let total = |v: &[i64]| v.iter().fold(0i128, |s, b| s + i128::from(*b));
                if total(seen) != total(state) {
                    return false;
                }
                (0..n).all(|a| {
                    let d = seen[a] - state[a];
                    (d <= 0 || inflow[a] >= d) && (d >= 0 || outflow[a] >= -d)
                })
            }
            BankOp::Transfer { from, to, amount } => {
                let (f, t) = (*from as usize, *to as usize);
                f < n && t < n && (state[f] >= *amount || inflow[f] >= amount - state[f])
            }
            BankOp::Short { from, amount } => {
                let f = *from as usize;
                f < n && (state[f] < *amount || outflow[f] > state[f] - amount)
            }
        }
    }

    fn describe_op(&self, op: &BankOp, _: &Interner) -> String {
        match op {
            BankOp::Transfer { from, to, amount } => {
                format!("transfer {amount} from {from} to {to}")
            }
            BankOp::Short { from, amount } => {
                format!("transfer {amount} from {from} rejected (insufficient funds)")
            }
            BankOp::Read(b) => format!("read → {b:?}"),
        }
    }

    fn describe_state(&self, state: &Self::State, _: &Interner) -> String {
        format!("{state:?}")
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.len() * 8
    }
}

fn negative_amount(op: &BankOp) -> bool {
    matches!(op, BankOp::Transfer { amount, .. } | BankOp::Short { amount, .. } if *amount < 0)
}
