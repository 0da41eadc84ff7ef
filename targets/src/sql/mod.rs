//! What PostgreSQL and MariaDB have in common as ledger targets: the options (isolation level,
//! transfer style, replicas and where reads go), the schema and the operations over it, the honest
//! mapping of database errors to `ok` / `fail` / `info`, and the target that starts the servers,
//! routes their replication through the proxy mesh and lets the nemesis fault them as nodes.
//!
//! A server is one of two things behind the [`Driver`] seam: connections (with statements in its
//! own dialect, [`Dialect`]) and — when verity starts it rather than connecting to `--url` — its
//! processes: `n1` is the primary, `n2…` are streaming replicas whose replication connection to the
//! primary goes through the proxy mesh, so a partition between them is a real replication lag. Jepsen
//! tests these stores the same way (jepsen.postgres, the Galera and MySQL suites), and so do
//! application teams behind a reader endpoint: writes to the primary, reads from a replica.
//!
//! The operations ([`ops`]) are the ones ledgers are built with:
//! - bank: an accounts table and a transfers table whose unique transfer id makes a retried transfer
//!   idempotent and gives the final read its journal. `--style atomic` debits with
//!   `balance = balance - x WHERE balance >= x`; `read-modify-write` reads both balances and writes
//!   back what the client computed (the classic application bug, safe only under serializable);
//!   `select-for-update` reads with row locks first.
//! - ledger-append: one row per journal, its elements a comma-separated text appended in place
//!   (Elle's list-append over SQL); read-modify-write reads the text and writes back the longer one.
//! - rw-register: one row per register.
//!
//! Errors are data, as in Jepsen: a serialization failure or deadlock is `fail` (the database
//! aborted it); a connection lost before `COMMIT` was sent is `fail` (nothing can commit it); lost
//! during `COMMIT`, or a deadline passed there, is `info`. A transfer whose commit is unknown is
//! retried under the same id until the deadline: the retry inserts the id first, so it waits for an
//! in-flight original and learns whether it committed, and the answer becomes certain.

pub mod ops;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use verity_history::{Completion, Invocation, Value};
use verity_nemesis::nodes::Nodes;
use verity_nemesis::process::Supervisor;

use crate::registry::{OptionSpec, TargetOptions};
use crate::servers::{NodeStateReader, ServerSet, StartPlan, READ_FROM, REPLICAS, STARTUP_TIMEOUT};
use crate::{Client, Target, TargetError};

/// Transaction isolation levels, as both servers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    pub fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }
}

/// How a transfer (or an append) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The database computes: `balance = balance - x WHERE balance >= x`; appends in place.
    Atomic,
    /// The client reads, computes and writes back absolute values.
    ReadModifyWrite,
    /// Reads take row locks (`SELECT … FOR UPDATE`), then the client writes absolute values.
    SelectForUpdate,
}

/// Which rows the workload uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bank,
    Journals,
    Registers,
}

pub const ISOLATION: OptionSpec = OptionSpec {
    name: "isolation",
    about: "transaction isolation level",
    values: &["read-committed", "repeatable-read", "serializable"],
    required: false,
    default: None,
};
pub const STYLE: OptionSpec = OptionSpec {
    name: "style",
    about: "how a transfer is written",
    values: &["atomic", "read-modify-write", "select-for-update"],
    required: false,
    default: Some("atomic"),
};
pub const URL: OptionSpec = OptionSpec {
    name: "url",
    about: "a running server to use instead of starting one (no nodes to fault then)",
    values: &[],
    required: false,
    default: None,
};
/// The options both SQL targets take.
pub const OPTIONS: &[OptionSpec] = &[ISOLATION, STYLE, REPLICAS, READ_FROM, URL];

/// A target's options, parsed.
#[derive(Debug, Clone)]
pub struct SqlConfig {
    pub isolation: Isolation,
    pub style: Style,
    pub kind: Kind,
    pub replicas: usize,
    pub read_from_replica: bool,
    pub url: Option<String>,
    pub op_timeout: Duration,
    pub seed: u64,
    /// The server can list applied transfers in commit order (learnt at setup).
    pub commit_order: bool,
}

impl SqlConfig {
    /// Parses generic target options; `default_isolation` is the server's own default level.
    pub fn from_options(
        options: &TargetOptions,
        default_isolation: Isolation,
    ) -> Result<SqlConfig, TargetError> {
        let bad = |what: String| TargetError::Setup(what);
        let isolation = match options.param(&ISOLATION) {
            None => default_isolation,
            Some("read-committed") => Isolation::ReadCommitted,
            Some("repeatable-read") => Isolation::RepeatableRead,
            Some("serializable") => Isolation::Serializable,
            Some(other) => return Err(bad(format!("unknown isolation level {other:?}"))),
        };
        let style = match options.param(&STYLE) {
            None | Some("atomic") => Style::Atomic,
            Some("read-modify-write") => Style::ReadModifyWrite,
            Some("select-for-update") => Style::SelectForUpdate,
            Some(other) => return Err(bad(format!("unknown style {other:?}"))),
        };
        let kind = match options.workload.as_str() {
            "ledger-append" => Kind::Journals,
            "rw-register" => Kind::Registers,
            _ => Kind::Bank,
        };
        let replicas: usize = options
            .param(&REPLICAS)
            .unwrap_or("0")
            .parse()
            .map_err(|_| bad("--replicas takes a number".into()))?;
        let read_from_replica = options.param(&READ_FROM) == Some("replica");
        let url = options.param(&URL).map(str::to_string);
        if read_from_replica && replicas == 0 {
            return Err(TargetError::BadOptions(
                "--read-from replica needs a replica: add --replicas 1 (or more)".into(),
            ));
        }
        if url.is_some() && replicas > 0 {
            return Err(TargetError::BadOptions(
                "--replicas starts servers of verity's own, --url uses one that runs already: pick one".into(),
            ));
        }
        Ok(SqlConfig {
            isolation,
            style,
            kind,
            replicas,
            read_from_replica,
            url,
            op_timeout: options.op_timeout.unwrap_or(Duration::from_secs(1)),
            seed: options.seed,
            commit_order: false,
        })
    }
}

/// A value bound to a statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

impl Cell {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            Cell::Text(t) => t.trim().parse().ok(),
            Cell::Null => None,
        }
    }
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Cell::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// What kind of failure a database error is, for the completion it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The database aborted the transaction (serialization failure, deadlock, lock wait timeout).
    Conflict,
    /// A unique key already exists (a retried transfer id).
    Duplicate,
    /// The connection is gone or never came up: what the server did is unknown.
    Connection,
    /// Anything else the server refused.
    Other,
}

/// A database error with its class and the server's own code (SQLSTATE or error number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SqlError {
    pub class: ErrorClass,
    pub code: String,
    pub message: String,
}

impl SqlError {
    pub fn connection(message: impl Into<String>) -> SqlError {
        SqlError {
            class: ErrorClass::Connection,
            code: "connection".into(),
            message: message.into(),
        }
    }
    /// The short reason recorded as a completion's `error`.
    pub fn reason(&self) -> String {
        let class = match self.class {
            ErrorClass::Conflict => "conflict",
            ErrorClass::Duplicate => "duplicate",
            ErrorClass::Connection => "connection-lost",
            ErrorClass::Other => "error",
        };
        let message: String = self.message.chars().take(160).collect();
        format!("{class} {}: {message}", self.code)
    }
}

/// One connection to a server.
#[async_trait]
pub trait SqlConn: Send {
    /// Runs a statement that returns no rows; answers the rows it affected.
    async fn execute(&mut self, sql: &'static str, params: &[Param]) -> Result<u64, SqlError>;
    /// Runs a query; every row as cells.
    async fn query(
        &mut self,
        sql: &'static str,
        params: &[Param],
    ) -> Result<Vec<Vec<Cell>>, SqlError>;
    /// Runs statements without parameters (transaction control, DDL).
    async fn simple(&mut self, sql: &str) -> Result<(), SqlError>;
}

/// The statements of one server's dialect. Parameters are positional and in the same order for
/// both servers (PostgreSQL's `$n`, MariaDB's `?`).
#[derive(Debug)]
pub struct Dialect {
    /// Statements that start a transaction at a level (`{iso}` is replaced), read-only or not.
    pub begin: fn(Isolation, bool) -> Vec<String>,
    pub create_schema: &'static [&'static str],
    /// (amount, id, amount): debit when funds suffice.
    pub debit_if_funds: &'static str,
    /// (amount, id)
    pub credit: &'static str,
    /// (from, to): the two balances, ordered by id.
    pub select_pair: &'static str,
    pub select_pair_for_update: &'static str,
    /// (balance, id)
    pub set_balance: &'static str,
    /// (id, balance)
    pub insert_account: &'static str,
    /// (id, from, to, amount)
    pub insert_transfer: &'static str,
    pub read_balances: &'static str,
    /// The applied transfer ids in the order they were recorded (close to commit order: a first
    /// attempt records its id as its last statement).
    pub final_journal: &'static str,
    /// The applied transfer ids in commit order, where the server can tell it.
    pub final_journal_commit_order: Option<&'static str>,
    /// A query answering `on` when [`Dialect::final_journal_commit_order`] works on this server.
    pub commit_order_probe: Option<&'static str>,
    /// (k)
    pub read_journal: &'static str,
    pub read_journal_for_update: &'static str,
    /// (k, element): append in place.
    pub append_journal: &'static str,
    /// (k, text)
    pub insert_journal: &'static str,
    /// (text, k)
    pub update_journal: &'static str,
    pub read_journals: &'static str,
    /// (k)
    pub read_register: &'static str,
    pub read_register_for_update: &'static str,
    /// (k, v)
    pub write_register: &'static str,
    pub read_registers: &'static str,
    /// (k, v)
    pub insert_mark: &'static str,
    /// (k)
    pub read_mark: &'static str,
}

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectTo {
    /// A server verity started, at this address (the node itself, or the proxy in front of it).
    Node(SocketAddr),
    /// `--url`.
    Url(String),
}

/// One kind of SQL server.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// The target's name.
    fn name(&self) -> &'static str;
    fn dialect(&self) -> &'static Dialect;
    /// Opens a connection.
    async fn connect(
        &self,
        to: &ConnectTo,
        timeout: Duration,
    ) -> Result<Box<dyn SqlConn>, SqlError>;
    /// Initialises and starts the primary and its replicas; returns their supervisor. A replica
    /// must be replicating from the primary (through `plan.links`) when this returns.
    async fn start(&self, plan: &StartPlan) -> Result<Arc<Supervisor>, TargetError>;
}

/// Builds an SQL target from its options: `driver` is told whether verity will start the servers
/// (it then needs their binaries) or use `--url`.
pub fn create<D: Driver>(
    options: &TargetOptions,
    default_isolation: Isolation,
    driver: impl FnOnce(bool) -> Result<D, TargetError>,
) -> Result<Arc<dyn Target>, TargetError> {
    let config = SqlConfig::from_options(options, default_isolation)?;
    let driver = Arc::new(driver(config.url.is_none())?);
    Ok(Arc::new(SqlTarget::new(driver, config, options)?))
}

/// A PostgreSQL or MariaDB target.
pub struct SqlTarget {
    driver: Arc<dyn Driver>,
    config: SqlConfig,
    /// Learnt at setup: the final read can list transfers in commit order.
    commit_order: std::sync::atomic::AtomicBool,
    /// The servers verity runs: `None` with `--url`.
    servers: Option<Arc<ServerSet>>,
}

impl SqlTarget {
    /// Picks the servers' addresses (nothing runs yet). With `--url`, nothing will run.
    pub fn new(
        driver: Arc<dyn Driver>,
        config: SqlConfig,
        options: &TargetOptions,
    ) -> Result<SqlTarget, TargetError> {
        let servers = match config.url {
            Some(_) => None,
            None => {
                let set = Arc::new(ServerSet::new(
                    driver.name(),
                    1 + config.replicas,
                    true,
                    options,
                )?);
                set.read_states_with(Arc::new(StateReader {
                    driver: driver.clone(),
                    kind: config.kind,
                }));
                Some(set)
            }
        };
        Ok(SqlTarget {
            driver,
            config,
            commit_order: Default::default(),
            servers,
        })
    }

    /// Where a client connects for node `node` (`None`: the primary, or the `--url` server).
    fn connect_to(&self, node: Option<&str>) -> ConnectTo {
        match (&self.config.url, &self.servers) {
            (Some(url), _) => ConnectTo::Url(url.clone()),
            (None, Some(servers)) => ConnectTo::Node(servers.client_addr(node.unwrap_or("n1"))),
            (None, None) => unreachable!("a target without --url runs its servers"),
        }
    }

    /// The replica worker `worker` reads from.
    fn replica_for(&self, worker: usize) -> Option<String> {
        (self.config.read_from_replica && self.config.replicas > 0)
            .then(|| format!("n{}", 2 + worker % self.config.replicas))
    }

    async fn connect_setup(&self, node: Option<&str>) -> Result<Box<dyn SqlConn>, TargetError> {
        let to = self.connect_to(node);
        self.driver
            .connect(&to, Duration::from_secs(10))
            .await
            .map_err(|e| {
                let at = match to {
                    ConnectTo::Url(u) => u,
                    ConnectTo::Node(a) => a.to_string(),
                };
                TargetError::Connect(format!(
                    "cannot connect to {} at {at}: {}",
                    self.driver.name(),
                    e.message
                ))
            })
    }
}

/// Reads one node's tables directly, for the convergence checker.
struct StateReader {
    driver: Arc<dyn Driver>,
    kind: Kind,
}

#[async_trait]
impl NodeStateReader for StateReader {
    async fn read(&self, _node: &str, addr: SocketAddr) -> Result<Value, String> {
        let mut c = self
            .driver
            .connect(&ConnectTo::Node(addr), Duration::from_secs(2))
            .await
            .map_err(|e| e.to_string())?;
        ops::node_state(c.as_mut(), self.driver.dialect(), self.kind)
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Target for SqlTarget {
    fn name(&self) -> &'static str {
        self.driver.name()
    }

    async fn setup(&self, init: &Invocation) -> Result<Completion, TargetError> {
        if let Some(servers) = &self.servers {
            let driver = self.driver.clone();
            servers
                .start(|plan| async move { driver.start(&plan).await })
                .await?;
        }
        let mut conn = self.connect_setup(None).await?;
        let dialect = self.driver.dialect();
        let mark = ops::create_schema(conn.as_mut(), dialect, &init.value, self.config.seed)
            .await
            .map_err(|e| TargetError::Setup(format!("cannot create the schema: {e}")))?;
        let commit_order = ops::commit_order(conn.as_mut(), dialect).await;
        self.commit_order
            .store(commit_order, std::sync::atomic::Ordering::SeqCst);
        // Reads from a replica must start from the accounts the primary has.
        let replicas: Vec<String> = self
            .servers
            .as_ref()
            .map(|s| s.names().into_iter().skip(1).collect())
            .unwrap_or_default();
        for node in &replicas {
            let mut replica = self.connect_setup(Some(node)).await?;
            ops::wait_for_mark(replica.as_mut(), dialect, mark, STARTUP_TIMEOUT)
                .await
                .map_err(|e| {
                    let logs = self
                        .servers
                        .as_ref()
                        .map(|s| s.log_dir().display().to_string())
                        .unwrap_or_default();
                    TargetError::Setup(format!(
                        "replica {node} did not catch up with the primary: {e}; its log is in {logs}"
                    ))
                })?;
        }
        Ok(Completion::ok(init.value.clone()))
    }

    async fn client(&self, worker: usize) -> Result<Box<dyn Client>, TargetError> {
        let primary = ops::Session::new(self.driver.clone(), self.connect_to(None));
        let replica = self
            .replica_for(worker)
            .map(|n| ops::Session::new(self.driver.clone(), self.connect_to(Some(&n))));
        let mut config = self.config.clone();
        config.commit_order = self.commit_order.load(std::sync::atomic::Ordering::SeqCst);
        Ok(Box::new(ops::SqlClient::new(
            primary,
            replica,
            config,
            self.driver.dialect(),
        )))
    }

    async fn teardown(&self) -> Result<(), TargetError> {
        match &self.servers {
            Some(s) => s.stop().await,
            None => Ok(()),
        }
    }

    fn nodes(self: Arc<Self>) -> Option<Arc<dyn Nodes>> {
        self.servers.clone().map(|s| s as Arc<dyn Nodes>)
    }
}
