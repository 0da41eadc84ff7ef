//! The workloads' operations over SQL: schema, bank transfers in three styles, balance reads, the
//! final read with its journal, transactions of micro-ops over journals and registers, and each
//! node's own state for the convergence checker — with every database error mapped to the
//! completion it honestly is (see the module above for the rules).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use verity_history::{Completion, Invocation, MicroOp, MopF, MopValue, Transfer, Value, F};

use super::{
    Cell, ConnectTo, Dialect, Driver, ErrorClass, Isolation, Kind, Param, SqlConfig, SqlConn,
    SqlError, Style,
};
use crate::Client;

/// The mark written at setup whose arrival on a replica shows it has caught up.
const SETUP_MARK: &str = "setup";

/// Creates the schema (dropping verity's tables of an earlier run), the accounts of a bank setup,
/// and a mark; returns the mark's value.
pub async fn create_schema(
    c: &mut dyn SqlConn,
    d: &Dialect,
    init: &Value,
    seed: u64,
) -> Result<i64, SqlError> {
    for stmt in d.create_schema {
        c.simple(stmt).await?;
    }
    let balances = init
        .get("balances")
        .and_then(Value::as_i64_list)
        .unwrap_or_default();
    // The bank's accounts; other workloads keep theirs in journals and registers.
    let is_bank = init.get("max_transfer").is_none() && init.get("key_stride").is_none();
    if is_bank {
        for (id, b) in balances.iter().enumerate() {
            c.execute(d.insert_account, &[Param::Int(id as i64), Param::Int(*b)])
                .await?;
        }
    }
    let mark = (seed & 0x3fff_ffff_ffff) as i64 + 1;
    c.execute(
        d.insert_mark,
        &[Param::Text(SETUP_MARK.into()), Param::Int(mark)],
    )
    .await?;
    Ok(mark)
}

/// Waits until a replica shows the setup mark.
pub async fn wait_for_mark(
    c: &mut dyn SqlConn,
    d: &Dialect,
    mark: i64,
    timeout: Duration,
) -> Result<(), SqlError> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    while Instant::now() < deadline {
        match c
            .query(d.read_mark, &[Param::Text(SETUP_MARK.into())])
            .await
        {
            Ok(rows)
                if rows.first().and_then(|r| r.first()).and_then(Cell::as_i64) == Some(mark) =>
            {
                return Ok(())
            }
            Ok(_) => last = None,
            // The table itself may not have arrived yet.
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last.unwrap_or_else(|| SqlError::connection(format!("no setup mark after {timeout:?}"))))
}

/// Whether the server can list applied transfers in commit order.
pub async fn commit_order(c: &mut dyn SqlConn, d: &Dialect) -> bool {
    let (Some(probe), Some(_)) = (d.commit_order_probe, d.final_journal_commit_order) else {
        return false;
    };
    match c.query(probe, &[]).await {
        Ok(rows) => rows.first().and_then(|r| r.first()).and_then(Cell::as_text) == Some("on"),
        Err(_) => false,
    }
}

/// A connection that reconnects lazily after it broke.
pub struct Session {
    driver: Arc<dyn Driver>,
    to: ConnectTo,
    conn: Option<Box<dyn SqlConn>>,
}

impl Session {
    pub fn new(driver: Arc<dyn Driver>, to: ConnectTo) -> Session {
        Session {
            driver,
            to,
            conn: None,
        }
    }

    async fn conn(&mut self, timeout: Duration) -> Result<&mut dyn SqlConn, SqlError> {
        if self.conn.is_none() {
            let c = self.driver.connect(&self.to, timeout).await?;
            self.conn = Some(c);
        }
        Ok(self.conn.as_deref_mut().expect("just connected"))
    }

    /// Forgets the connection (after an error or a deadline, its state is unknown).
    fn reset(&mut self) {
        self.conn = None;
    }
}

/// Where an attempt stopped.
#[derive(Debug)]
enum Stop {
    /// Before `COMMIT` was sent: nothing committed.
    Before(SqlError),
    /// While `COMMIT` was in flight: committed or not, unknown.
    AtCommit(SqlError),
}

impl Stop {
    fn error(&self) -> &SqlError {
        match self {
            Stop::Before(e) | Stop::AtCommit(e) => e,
        }
    }
}

/// How a transfer attempt ended without an error.
#[derive(Debug, PartialEq, Eq)]
enum Transferred {
    Applied,
    /// The id was already applied (a retry whose original committed).
    AlreadyApplied,
    InsufficientFunds,
}

/// A worker's client of an SQL target.
pub struct SqlClient {
    primary: Session,
    /// Where read-only operations go with `--read-from replica`.
    replica: Option<Session>,
    config: SqlConfig,
    dialect: &'static Dialect,
}

impl SqlClient {
    pub fn new(
        primary: Session,
        replica: Option<Session>,
        config: SqlConfig,
        dialect: &'static Dialect,
    ) -> SqlClient {
        SqlClient {
            primary,
            replica,
            config,
            dialect,
        }
    }

    /// Isolation of a read-only transaction on `replica`: PostgreSQL's hot standby has no
    /// serializable snapshots, so a replica reads at repeatable read (one snapshot) instead.
    fn read_isolation(&self, on_replica: bool) -> Isolation {
        match self.config.isolation {
            Isolation::Serializable if on_replica => Isolation::RepeatableRead,
            level => level,
        }
    }

    async fn transfer(&mut self, op: &Invocation, t: &Transfer) -> Completion {
        let deadline = Instant::now() + self.config.op_timeout;
        // Whether an earlier attempt may have committed: then only a certain answer will do.
        let mut unknown: Option<SqlError> = None;
        for attempt in 0..64u32 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let d = self.dialect;
            let (iso, style) = (self.config.isolation, self.config.style);
            let retry = unknown.is_some();
            let committing = AtomicBool::new(false);
            let result = tokio::time::timeout(left, async {
                let c = self.primary.conn(left).await.map_err(Stop::Before)?;
                transfer_once(c, d, iso, style, t, retry, &committing).await
            })
            .await;
            let stop = match result {
                Ok(Ok(Transferred::Applied)) => return Completion::ok(op.value.clone()),
                Ok(Ok(Transferred::AlreadyApplied)) => {
                    return Completion::ok(op.value.clone());
                }
                Ok(Ok(Transferred::InsufficientFunds)) => {
                    return Completion::fail(op.value.clone(), "insufficient-funds")
                }
                Ok(Err(stop)) => stop,
                Err(_) => {
                    // The deadline passed mid-attempt: the connection's state is unknown.
                    self.primary.reset();
                    if unknown.is_none() && !committing.load(Ordering::SeqCst) {
                        // COMMIT was never sent: nothing can commit this attempt.
                        return Completion::fail(op.value.clone(), "timeout before commit");
                    }
                    break;
                }
            };
            if stop.error().class == ErrorClass::Connection {
                self.primary.reset();
            }
            match stop {
                Stop::AtCommit(e) if e.class == ErrorClass::Connection => {
                    unknown = Some(e);
                }
                Stop::AtCommit(e) | Stop::Before(e) if unknown.is_none() => {
                    return Completion::fail(op.value.clone(), e.reason());
                }
                _ => {}
            }
            // Retrying to learn a commit's fate: a short pause, growing, lets a restart finish.
            tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(10) + 1))).await;
        }
        match unknown {
            Some(e) => {
                Completion::info(op.value.clone(), format!("commit unknown: {}", e.reason()))
            }
            None => Completion::info(op.value.clone(), "timeout"),
        }
    }

    /// A bank read (or the final read, with the journal), from the replica when so configured.
    async fn read(&mut self, op: &Invocation, final_read: bool) -> Completion {
        let on_replica = !final_read && self.replica.is_some();
        let iso = self.read_isolation(on_replica);
        let d = self.dialect;
        let timeout = self.config.op_timeout;
        let journal = match d.final_journal_commit_order {
            Some(sql) if self.config.commit_order => sql,
            _ => d.final_journal,
        };
        let session = match &mut self.replica {
            Some(r) if on_replica => r,
            _ => &mut self.primary,
        };
        let result = tokio::time::timeout(timeout, async {
            let c = session.conn(timeout).await?;
            read_balances(c, d, iso, final_read.then_some(journal)).await
        })
        .await;
        match result {
            Ok(Ok(v)) => Completion::ok(v),
            Ok(Err(e)) => {
                if e.class == ErrorClass::Connection {
                    session.reset();
                }
                Completion::fail(op.value.clone(), e.reason())
            }
            Err(_) => {
                session.reset();
                Completion::fail(op.value.clone(), "timeout")
            }
        }
    }

    async fn txn(&mut self, op: &Invocation) -> Completion {
        let Some(mops) = op.value.micro_ops() else {
            return Completion::fail(op.value.clone(), "malformed-txn");
        };
        let mops = mops.into_owned();
        let read_only = mops.iter().all(|m| m.f == MopF::Read);
        let on_replica = read_only && self.replica.is_some();
        let iso = self.read_isolation(on_replica);
        let (d, style, kind) = (self.dialect, self.config.style, self.config.kind);
        let timeout = self.config.op_timeout;
        let session = match &mut self.replica {
            Some(r) if on_replica => r,
            _ => &mut self.primary,
        };
        let committing = AtomicBool::new(false);
        let result = tokio::time::timeout(timeout, async {
            let c = session.conn(timeout).await.map_err(Stop::Before)?;
            run_txn(c, d, (iso, style, kind), &mops, read_only, &committing).await
        })
        .await;
        match result {
            Ok(Ok(reads)) => Completion::ok(MicroOp::completed(&mops, reads)),
            Ok(Err(stop)) => {
                if stop.error().class == ErrorClass::Connection {
                    session.reset();
                }
                match stop {
                    Stop::AtCommit(e) if e.class == ErrorClass::Connection && !read_only => {
                        Completion::info(
                            op.value.clone(),
                            format!("commit unknown: {}", e.reason()),
                        )
                    }
                    Stop::AtCommit(e) | Stop::Before(e) => {
                        Completion::fail(op.value.clone(), e.reason())
                    }
                }
            }
            Err(_) => {
                session.reset();
                if read_only || !committing.load(Ordering::SeqCst) {
                    // Nothing was written, or COMMIT was never sent: certainly not applied.
                    Completion::fail(op.value.clone(), "timeout before commit")
                } else {
                    Completion::info(op.value.clone(), "timeout during commit")
                }
            }
        }
    }
}

#[async_trait]
impl Client for SqlClient {
    async fn invoke(&mut self, op: &Invocation) -> Completion {
        match (&op.f, &op.value) {
            (F::Transfer, Value::Transfer(t)) => {
                let t = *t;
                self.transfer(op, &t).await
            }
            (F::Read, v) => {
                let final_read = matches!(v.get("final"), Some(Value::Bool(true)));
                self.read(op, final_read).await
            }
            (F::Txn, _) => self.txn(op).await,
            _ => Completion::fail(op.value.clone(), "unsupported-operation"),
        }
    }
}

async fn begin(
    c: &mut dyn SqlConn,
    d: &Dialect,
    iso: Isolation,
    read_only: bool,
) -> Result<(), SqlError> {
    for stmt in (d.begin)(iso, read_only) {
        c.simple(&stmt).await?;
    }
    Ok(())
}

/// Sends `COMMIT`, first marking that from here on the outcome may be unknown.
async fn commit(c: &mut dyn SqlConn, committing: &AtomicBool) -> Result<(), SqlError> {
    committing.store(true, Ordering::SeqCst);
    c.simple("COMMIT").await
}

/// Ends a transaction that will not commit; a failed rollback only means the connection is gone.
async fn rollback(c: &mut dyn SqlConn) {
    let _ = c.simple("ROLLBACK").await;
}

/// Runs `body` in a transaction, then commits, telling where it stopped; `$committing` is set just
/// before `COMMIT` is sent, so that a caller whose deadline cut the attempt short knows whether the
/// outcome is unknown.
macro_rules! in_txn {
    ($c:expr, $d:expr, $iso:expr, $ro:expr, $committing:expr, $body:expr) => {{
        match begin($c, $d, $iso, $ro).await {
            Err(e) => Err(Stop::Before(e)),
            Ok(()) => match $body {
                Ok(v) => match commit($c, &$committing).await {
                    Ok(()) => Ok(v),
                    Err(e) => Err(Stop::AtCommit(e)),
                },
                Err(e) => {
                    rollback($c).await;
                    Err(Stop::Before(e))
                }
            },
        }
    }};
}

/// One attempt at a transfer. A first attempt records its id last (close to its commit, so that
/// the journal is in commit order); a retry records it first, so that it waits for an original
/// still in flight and learns from a duplicate key that the original committed.
async fn transfer_once(
    c: &mut dyn SqlConn,
    d: &Dialect,
    iso: Isolation,
    style: Style,
    t: &Transfer,
    retry: bool,
    committing: &AtomicBool,
) -> Result<Transferred, Stop> {
    begin(c, d, iso, false).await.map_err(Stop::Before)?;
    let record = [
        Param::Int(t.id as i64),
        Param::Int(i64::from(t.from)),
        Param::Int(i64::from(t.to)),
        Param::Int(t.amount),
    ];
    let body = async {
        if retry {
            if let Err(e) = c.execute(d.insert_transfer, &record).await {
                return match e.class {
                    ErrorClass::Duplicate => Ok(Transferred::AlreadyApplied),
                    _ => Err(e),
                };
            }
        }
        let moved = move_money(c, d, style, t).await?;
        if !moved {
            return Ok(Transferred::InsufficientFunds);
        }
        if !retry {
            if let Err(e) = c.execute(d.insert_transfer, &record).await {
                return match e.class {
                    ErrorClass::Duplicate => Ok(Transferred::AlreadyApplied),
                    _ => Err(e),
                };
            }
        }
        Ok(Transferred::Applied)
    };
    match body.await {
        Ok(Transferred::Applied) => match commit(c, committing).await {
            Ok(()) => Ok(Transferred::Applied),
            Err(e) => Err(Stop::AtCommit(e)),
        },
        Ok(other) => {
            rollback(c).await;
            Ok(other)
        }
        Err(e) => {
            rollback(c).await;
            Err(Stop::Before(e))
        }
    }
}

/// Debits and credits in the configured style; `false` when the source is short. Rows are written
/// in account-id order, as a careful application writes them, so that two transfers between the
/// same accounts never deadlock each other.
async fn move_money(
    c: &mut dyn SqlConn,
    d: &Dialect,
    style: Style,
    t: &Transfer,
) -> Result<bool, SqlError> {
    let (from, to, amount) = (i64::from(t.from), i64::from(t.to), t.amount);
    if style == Style::Atomic {
        let credit = [Param::Int(amount), Param::Int(to)];
        if to < from {
            c.execute(d.credit, &credit).await?;
        }
        let debited = c
            .execute(
                d.debit_if_funds,
                &[Param::Int(amount), Param::Int(from), Param::Int(amount)],
            )
            .await?;
        if debited == 0 {
            // The caller rolls back, the credit included.
            return Ok(false);
        }
        if to > from {
            c.execute(d.credit, &credit).await?;
        }
        return Ok(true);
    }
    let select = if style == Style::SelectForUpdate {
        d.select_pair_for_update
    } else {
        d.select_pair
    };
    let rows = c.query(select, &[Param::Int(from), Param::Int(to)]).await?;
    let balance_of = |id: i64| {
        rows.iter()
            .find(|r| r.first().and_then(Cell::as_i64) == Some(id))
            .and_then(|r| r.get(1).and_then(Cell::as_i64))
    };
    let (Some(bf), Some(bt)) = (balance_of(from), balance_of(to)) else {
        return Err(SqlError {
            class: ErrorClass::Other,
            code: "missing-account".into(),
            message: format!("accounts {from} and {to} are not both in the table"),
        });
    };
    if bf < amount {
        return Ok(false);
    }
    let mut writes = [(from, bf - amount), (to, bt + amount)];
    writes.sort_unstable();
    for (id, balance) in writes {
        c.execute(d.set_balance, &[Param::Int(balance), Param::Int(id)])
            .await?;
    }
    Ok(true)
}

/// Every balance (and, for the final read, the journal of applied ids) in one transaction.
async fn read_balances(
    c: &mut dyn SqlConn,
    d: &Dialect,
    iso: Isolation,
    journal: Option<&'static str>,
) -> Result<Value, SqlError> {
    let result = in_txn!(
        c,
        d,
        iso,
        true,
        AtomicBool::new(false),
        async {
            let balances = balances_of(c.query(d.read_balances, &[]).await?)?;
            let applied = match journal {
                Some(sql) => Some(ids_of(c.query(sql, &[]).await?)?),
                None => None,
            };
            Ok::<_, SqlError>((balances, applied))
        }
        .await
    );
    let (balances, applied) = result.map_err(|s: Stop| match s {
        Stop::Before(e) | Stop::AtCommit(e) => e,
    })?;
    let mut entries = vec![("balances", Value::int_list(balances))];
    if let Some(applied) = applied {
        entries.push(("applied", Value::int_list(applied)));
    }
    Ok(Value::map(entries))
}

fn balances_of(rows: Vec<Vec<Cell>>) -> Result<Vec<i64>, SqlError> {
    rows.iter()
        .map(|r| {
            r.get(1)
                .and_then(Cell::as_i64)
                .ok_or_else(|| unreadable("a balance"))
        })
        .collect()
}

fn ids_of(rows: Vec<Vec<Cell>>) -> Result<Vec<i64>, SqlError> {
    rows.iter()
        .map(|r| {
            r.first()
                .and_then(Cell::as_i64)
                .ok_or_else(|| unreadable("a transfer id"))
        })
        .collect()
}

fn unreadable(what: &str) -> SqlError {
    SqlError {
        class: ErrorClass::Other,
        code: "unreadable".into(),
        message: format!("the server returned {what} that is not an integer"),
    }
}

/// A journal's text (`"3,-7,12"`) as its elements.
fn parse_journal(text: Option<&str>) -> Result<Vec<i64>, SqlError> {
    match text {
        None => Ok(Vec::new()),
        Some("") => Ok(Vec::new()),
        Some(t) => t
            .split(',')
            .map(|e| {
                e.trim()
                    .parse::<i64>()
                    .map_err(|_| unreadable("a journal element"))
            })
            .collect(),
    }
}

/// One transaction of micro-ops; answers what each read saw.
async fn run_txn(
    c: &mut dyn SqlConn,
    d: &Dialect,
    (iso, style, kind): (Isolation, Style, Kind),
    mops: &[MicroOp],
    read_only: bool,
    committing: &AtomicBool,
) -> Result<Vec<Value>, Stop> {
    in_txn!(
        c,
        d,
        iso,
        read_only,
        committing,
        async {
            let mut reads = Vec::new();
            for m in mops {
                match (m.f, &m.value) {
                    (MopF::Read, _) => reads.push(read_key(c, d, style, kind, m.key).await?),
                    (MopF::Append, MopValue::Int(v)) => append(c, d, style, m.key, *v).await?,
                    (MopF::Write, MopValue::Int(v)) => {
                        c.execute(d.write_register, &[Param::Int(m.key), Param::Int(*v)])
                            .await?;
                    }
                    _ => {
                        return Err(SqlError {
                            class: ErrorClass::Other,
                            code: "unsupported-micro-op".into(),
                            message: format!("{:?} of {:?}", m.f, m.value),
                        })
                    }
                }
            }
            Ok(reads)
        }
        .await
    )
}

async fn read_key(
    c: &mut dyn SqlConn,
    d: &Dialect,
    style: Style,
    kind: Kind,
    key: i64,
) -> Result<Value, SqlError> {
    let lock = style == Style::SelectForUpdate;
    if kind == Kind::Registers {
        let sql = if lock {
            d.read_register_for_update
        } else {
            d.read_register
        };
        let rows = c.query(sql, &[Param::Int(key)]).await?;
        return Ok(rows
            .first()
            .and_then(|r| r.first())
            .and_then(Cell::as_i64)
            .map_or(Value::Null, Value::Int));
    }
    let sql = if lock {
        d.read_journal_for_update
    } else {
        d.read_journal
    };
    let rows = c.query(sql, &[Param::Int(key)]).await?;
    let text = rows.first().and_then(|r| r.first()).and_then(Cell::as_text);
    Ok(Value::int_list(parse_journal(text)?))
}

async fn append(
    c: &mut dyn SqlConn,
    d: &Dialect,
    style: Style,
    key: i64,
    element: i64,
) -> Result<(), SqlError> {
    if style == Style::Atomic {
        c.execute(
            d.append_journal,
            &[Param::Int(key), Param::Text(element.to_string())],
        )
        .await?;
        return Ok(());
    }
    let sql = if style == Style::SelectForUpdate {
        d.read_journal_for_update
    } else {
        d.read_journal
    };
    let rows = c.query(sql, &[Param::Int(key)]).await?;
    match rows.first().and_then(|r| r.first()).and_then(Cell::as_text) {
        None => {
            c.execute(
                d.insert_journal,
                &[Param::Int(key), Param::Text(element.to_string())],
            )
            .await?;
        }
        Some(text) => {
            let longer = if text.is_empty() {
                element.to_string()
            } else {
                format!("{text},{element}")
            };
            c.execute(d.update_journal, &[Param::Text(longer), Param::Int(key)])
                .await?;
        }
    }
    Ok(())
}

/// Rows of (key, value) as a store map, each value read by `value`.
fn store_of(
    rows: Vec<Vec<Cell>>,
    value: impl Fn(Option<&Cell>) -> Result<Value, SqlError>,
) -> Result<Value, SqlError> {
    let mut entries = Vec::new();
    for r in &rows {
        let k = r
            .first()
            .and_then(Cell::as_i64)
            .ok_or_else(|| unreadable("a key"))?;
        entries.push((k.to_string(), value(r.get(1))?));
    }
    Ok(Value::map(entries))
}

/// A node's own state, read on that node alone: balances and applied ids, and every journal or
/// register for the transactional workloads.
pub async fn node_state(c: &mut dyn SqlConn, d: &Dialect, kind: Kind) -> Result<Value, SqlError> {
    let result = in_txn!(
        c,
        d,
        Isolation::RepeatableRead,
        true,
        AtomicBool::new(false),
        async {
            let balances = balances_of(c.query(d.read_balances, &[]).await?)?;
            let applied = ids_of(c.query(d.final_journal, &[]).await?)?;
            let store = match kind {
                Kind::Bank => None,
                Kind::Journals => Some(store_of(c.query(d.read_journals, &[]).await?, |cell| {
                    Ok(Value::int_list(parse_journal(
                        cell.and_then(Cell::as_text),
                    )?))
                })?),
                Kind::Registers => Some(store_of(c.query(d.read_registers, &[]).await?, |cell| {
                    Ok(cell.and_then(Cell::as_i64).map_or(Value::Null, Value::Int))
                })?),
            };
            Ok::<_, SqlError>((balances, applied, store))
        }
        .await
    );
    let (balances, applied, store) = result.map_err(|s: Stop| match s {
        Stop::Before(e) | Stop::AtCommit(e) => e,
    })?;
    let mut entries = vec![
        ("balances", Value::int_list(balances)),
        ("applied", Value::int_list(applied)),
    ];
    if let Some(store) = store {
        entries.push(("store", store));
    }
    Ok(Value::map(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_parse_from_text_and_garbage_is_an_error_not_a_panic() {
        assert_eq!(parse_journal(None).unwrap(), Vec::<i64>::new());
        assert_eq!(parse_journal(Some("")).unwrap(), Vec::<i64>::new());
        assert_eq!(parse_journal(Some("3,-7,12")).unwrap(), vec![3, -7, 12]);
        let e = parse_journal(Some("3,x")).unwrap_err();
        assert_eq!(e.class, ErrorClass::Other);
    }

    #[test]
    fn reads_are_filled_into_their_micro_ops_in_order() {
        let op = Value::List(vec![
            Value::List(vec![Value::from("r"), Value::Int(1), Value::Null]),
            Value::List(vec![Value::from("append"), Value::Int(1), Value::Int(5)]),
            Value::List(vec![Value::from("r"), Value::Int(2), Value::Null]),
        ]);
        let mops = op.micro_ops().unwrap().into_owned();
        let out = MicroOp::completed(&mops, vec![Value::int_list([4]), Value::int_list([])]);
        let parts = out.as_list().unwrap();
        assert_eq!(parts[0].as_list().unwrap()[2], Value::int_list([4]));
        assert_eq!(parts[1].as_list().unwrap()[2], Value::Int(5));
        assert_eq!(parts[2].as_list().unwrap()[2], Value::int_list([]));
    }
}
