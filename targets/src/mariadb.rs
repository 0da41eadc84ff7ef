//! The `mariadb` target: MariaDB (10.11, from Debian's `mariadb-server`) as a ledger, through
//! `mysql_async` (pure Rust, no TLS).
//!
//! Started by verity (no `--url`): `mariadb-install-db` and the server in a private temporary
//! directory, as an unprivileged user, on free loopback ports, with the binary log on; with
//! `--replicas N`, asynchronous replicas (GTID, `CHANGE MASTER TO` the proxy mesh's address for
//! that replica→primary link) that the nemesis partitions, pauses and kills like any node. InnoDB
//! writes its log at every commit and flushes it once a second: a killed process loses nothing the
//! kernel has (a process crash); a machine crash is not simulated. Everything is removed at the end;
//! the servers' logs stay in the run directory.
//!
//! With `--url mysql://user:password@host:port/db` verity uses a server it did not start: it creates
//! (and drops first) its own tables `verity_*` there, and has no nodes to fault.
//!
//! MariaDB's default level is REPEATABLE READ, which is not snapshot isolation: a write reads the
//! latest committed row, so lost updates go unnoticed (unless `innodb_snapshot_isolation` is on).
//! Error numbers: 1213 (deadlock), 1205 (lock wait timeout) and 1020 (record changed since read, with
//! snapshot isolation) abort: `fail`. 1062 is a duplicate transfer id. I/O errors and a closed
//! connection mean the connection is gone.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params};
use verity_nemesis::nodes::Endpoint;
use verity_nemesis::process::{ProcessSpec, Supervisor};

use crate::registry::TargetOptions;
use crate::servers::package::{find_binary, log_tail, missing, run_to_completion, wait_for_port};
use crate::servers::StartPlan;
use crate::sql::{
    Cell, ConnectTo, Dialect, Driver, ErrorClass, Isolation, Param, SqlConn, SqlError,
};
use crate::{Target, TargetError};

/// The user and database verity creates on a server it starts.
const USER: &str = "verity";
const DATABASE: &str = "verity";

pub fn create(options: &TargetOptions) -> Result<Arc<dyn Target>, TargetError> {
    crate::sql::create(options, Isolation::RepeatableRead, |starts_servers| {
        let binaries = starts_servers.then(Binaries::find).transpose()?;
        Ok(Mariadb { binaries })
    })
}

#[derive(Debug, Clone)]
struct Binaries {
    server: PathBuf,
    install_db: PathBuf,
}

impl Binaries {
    /// Debian's `/usr/sbin` and `/usr/bin`, then `PATH`; `$VERITY_MARIADB_BINDIR`, when set, is the
    /// only place looked.
    fn find() -> Result<Binaries, TargetError> {
        let only = std::env::var_os("VERITY_MARIADB_BINDIR").map(PathBuf::from);
        let dirs = match &only {
            Some(d) => vec![d.clone()],
            None => vec![PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")],
        };
        let find = |names: &[&str]| match &only {
            Some(d) => names.iter().map(|n| d.join(n)).find(|p| p.is_file()),
            None => find_binary(names, &dirs),
        };
        let server = find(&["mariadbd", "mysqld"]);
        let install_db = find(&["mariadb-install-db", "mysql_install_db"]);
        match (server, install_db) {
            (Some(server), Some(install_db)) => Ok(Binaries { server, install_db }),
            _ => Err(missing(
                "MariaDB (mariadbd, mariadb-install-db)",
                "mariadb-server",
            )),
        }
    }
}

struct Mariadb {
    binaries: Option<Binaries>,
}

#[async_trait]
impl Driver for Mariadb {
    fn name(&self) -> &'static str {
        "mariadb"
    }

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    async fn connect(
        &self,
        to: &ConnectTo,
        timeout: Duration,
    ) -> Result<Box<dyn SqlConn>, SqlError> {
        let opts: Opts = match to {
            ConnectTo::Url(url) => Opts::from_url(url)
                .map_err(|e| SqlError::connection(format!("bad --url {url:?}: {e}")))?,
            ConnectTo::Node(addr) => OptsBuilder::default()
                .ip_or_hostname(addr.ip().to_string())
                .tcp_port(addr.port())
                .user(Some(USER))
                .db_name(Some(DATABASE))
                .prefer_socket(false)
                .into(),
        };
        let conn = tokio::time::timeout(timeout, Conn::new(opts))
            .await
            .map_err(|_| SqlError::connection(format!("no connection within {timeout:?}")))?
            .map_err(error)?;
        Ok(Box::new(MyConn { conn }))
    }

    async fn start(&self, plan: &StartPlan) -> Result<Arc<Supervisor>, TargetError> {
        let bins = self
            .binaries
            .clone()
            .ok_or_else(|| TargetError::Setup("no MariaDB binaries to start".into()))?;
        let setup_log = plan.log_dir.join("setup.log");
        let mut specs = Vec::new();
        for (i, (node, addr)) in plan.listen.iter().enumerate() {
            let dir = plan.data_dir.join(node);
            // A temporary directory of the node's own: concurrent bootstraps sharing /tmp collide
            // on their temporary table names.
            let tmp = plan.data_dir.join(format!("{node}-tmp"));
            crate::servers::package::owned_dir(&tmp, plan.user)?;
            let args = vec![
                "--no-defaults".to_string(),
                format!("--datadir={}", dir.display()),
                format!("--tmpdir={}", tmp.display()),
                "--auth-root-authentication-method=normal".into(),
                "--skip-test-db".into(),
            ];
            let (install, user, log) = (bins.install_db.clone(), plan.user, setup_log.clone());
            tokio::task::spawn_blocking(move || run_to_completion(&install, &args, user, &log))
                .await
                .map_err(|e| TargetError::Setup(format!("mariadb-install-db panicked: {e}")))??;
            let d = plan.data_dir.display();
            let server_args = vec![
                "--no-defaults".to_string(),
                format!("--datadir={}", dir.display()),
                format!("--tmpdir={}", tmp.display()),
                format!("--port={}", addr.port()),
                "--bind-address=127.0.0.1".into(),
                format!("--socket={d}/{node}.sock"),
                format!("--pid-file={d}/{node}.pid"),
                format!("--server-id={}", i + 1),
                format!("--log-bin={}/binlog", dir.display()),
                "--binlog-format=ROW".into(),
                "--log-slave-updates".into(),
                "--innodb-flush-log-at-trx-commit=2".into(),
                "--sync-binlog=0".into(),
                "--innodb-buffer-pool-size=64M".into(),
                "--max-connections=300".into(),
                "--slave-net-timeout=5".into(),
                "--skip-name-resolve".into(),
            ];
            let mut spec = ProcessSpec::new(
                node.clone(),
                bins.server.clone(),
                plan.log_dir.join(format!("{node}.log")),
            )
            .args(server_args);
            spec.user = plan.user;
            spec.cwd = Some(plan.data_dir.clone());
            specs.push(spec);
        }
        let supervisor = Arc::new(Supervisor::new(specs, plan.registry.clone()));
        let primary = "n1";
        for (node, addr) in &plan.listen {
            supervisor
                .start(node)
                .map_err(|e| TargetError::Setup(e.to_string()))?;
            let log = plan.log_dir.join(format!("{node}.log"));
            let exited = || supervisor.exited(node).map(|s| s.to_string());
            wait_for_port(*addr, Duration::from_secs(30), &log, exited).await?;
            let mut root = root_conn(*addr, &log).await?;
            // Each node's own accounts, kept out of the binary log so replicas do not replay them.
            let bootstrap = format!(
                "SET sql_log_bin = 0; \
                 CREATE USER IF NOT EXISTS '{USER}'@'%'; \
                 GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%' WITH GRANT OPTION; \
                 CREATE DATABASE IF NOT EXISTS {DATABASE}; \
                 SET sql_log_bin = 1"
            );
            root.query_drop(bootstrap)
                .await
                .map_err(|e| TargetError::Setup(format!("cannot prepare MariaDB {node}: {e}")))?;
            if node != primary {
                let via = plan.links.dial(&Endpoint::Node(node.clone()), primary);
                let replicate = format!(
                    "CHANGE MASTER TO MASTER_HOST='{}', MASTER_PORT={}, MASTER_USER='{USER}', \
                     MASTER_PASSWORD='', MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1, \
                     MASTER_USE_GTID=slave_pos; START SLAVE",
                    via.ip(),
                    via.port()
                );
                root.query_drop(replicate).await.map_err(|e| {
                    TargetError::Setup(format!("cannot start replication on MariaDB {node}: {e}"))
                })?;
            }
            let _ = root.disconnect().await;
        }
        Ok(supervisor)
    }
}

/// The freshly installed server's root account, over TCP (no password: verity's own server).
async fn root_conn(addr: std::net::SocketAddr, log: &std::path::Path) -> Result<Conn, TargetError> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some("root"))
        .prefer_socket(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match Conn::new(opts.clone()).await {
            Ok(c) => return Ok(c),
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(TargetError::Setup(format!(
                    "MariaDB at {addr} refused its root account: {e}; the end of {}:\n{}",
                    log.display(),
                    log_tail(log)
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

struct MyConn {
    conn: Conn,
}

fn params(params: &[Param]) -> Params {
    if params.is_empty() {
        return Params::Empty;
    }
    Params::Positional(
        params
            .iter()
            .map(|p| match p {
                Param::Int(i) => mysql_async::Value::Int(*i),
                Param::Text(t) => mysql_async::Value::Bytes(t.clone().into_bytes()),
            })
            .collect(),
    )
}

fn cell(v: &mysql_async::Value) -> Cell {
    match v {
        mysql_async::Value::NULL => Cell::Null,
        mysql_async::Value::Int(i) => Cell::Int(*i),
        mysql_async::Value::UInt(u) => i64::try_from(*u).map_or(Cell::Null, Cell::Int),
        mysql_async::Value::Bytes(b) => Cell::Text(String::from_utf8_lossy(b).into_owned()),
        other => Cell::Text(format!("{other:?}")),
    }
}

#[async_trait]
impl SqlConn for MyConn {
    async fn execute(&mut self, sql: &'static str, p: &[Param]) -> Result<u64, SqlError> {
        self.conn.exec_drop(sql, params(p)).await.map_err(error)?;
        Ok(self.conn.affected_rows())
    }

    async fn query(&mut self, sql: &'static str, p: &[Param]) -> Result<Vec<Vec<Cell>>, SqlError> {
        let rows: Vec<mysql_async::Row> = self.conn.exec(sql, params(p)).await.map_err(error)?;
        Ok(rows
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.as_ref(i).map_or(Cell::Null, cell))
                    .collect()
            })
            .collect())
    }

    async fn simple(&mut self, sql: &str) -> Result<(), SqlError> {
        self.conn.query_drop(sql).await.map_err(error)
    }
}

/// A driver error as verity classes it.
fn error(e: mysql_async::Error) -> SqlError {
    match e {
        mysql_async::Error::Server(s) => {
            let class = match s.code {
                1213 | 1205 | 1020 => ErrorClass::Conflict,
                1062 => ErrorClass::Duplicate,
                // The server is shutting down or the connection was killed.
                1053 | 1927 | 2006 | 2013 => ErrorClass::Connection,
                _ => ErrorClass::Other,
            };
            SqlError {
                class,
                code: s.code.to_string(),
                message: s.message,
            }
        }
        mysql_async::Error::Io(e) => SqlError::connection(e.to_string()),
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => {
            SqlError::connection("the connection is closed")
        }
        other => SqlError {
            class: ErrorClass::Other,
            code: "driver".into(),
            message: other.to_string(),
        },
    }
}

fn begin(iso: Isolation, read_only: bool) -> Vec<String> {
    let mode = if read_only { " READ ONLY" } else { "" };
    // One round trip: the level applies to the next transaction only.
    vec![format!(
        "SET TRANSACTION ISOLATION LEVEL {}; START TRANSACTION{mode}",
        iso.sql()
    )]
}

static DIALECT: Dialect = Dialect {
    begin,
    create_schema: &[
        "DROP TABLE IF EXISTS verity_accounts, verity_transfers, verity_journals, verity_registers, verity_marks",
        "CREATE TABLE verity_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB",
        "CREATE TABLE verity_transfers (seq BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL UNIQUE, from_id BIGINT NOT NULL, to_id BIGINT NOT NULL, amount BIGINT NOT NULL) ENGINE=InnoDB",
        "CREATE TABLE verity_journals (k BIGINT PRIMARY KEY, v MEDIUMTEXT NOT NULL) ENGINE=InnoDB",
        "CREATE TABLE verity_registers (k BIGINT PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB",
        "CREATE TABLE verity_marks (k VARCHAR(64) PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB",
    ],
    debit_if_funds: "UPDATE verity_accounts SET balance = balance - ? WHERE id = ? AND balance >= ?",
    credit: "UPDATE verity_accounts SET balance = balance + ? WHERE id = ?",
    select_pair: "SELECT id, balance FROM verity_accounts WHERE id IN (?, ?) ORDER BY id",
    select_pair_for_update:
        "SELECT id, balance FROM verity_accounts WHERE id IN (?, ?) ORDER BY id FOR UPDATE",
    set_balance: "UPDATE verity_accounts SET balance = ? WHERE id = ?",
    insert_account: "INSERT INTO verity_accounts (id, balance) VALUES (?, ?)",
    insert_transfer: "INSERT INTO verity_transfers (id, from_id, to_id, amount) VALUES (?, ?, ?, ?)",
    read_balances: "SELECT id, balance FROM verity_accounts ORDER BY id",
    final_journal: "SELECT id FROM verity_transfers ORDER BY seq",
    final_journal_commit_order: None,
    commit_order_probe: None,
    read_journal: "SELECT v FROM verity_journals WHERE k = ?",
    read_journal_for_update: "SELECT v FROM verity_journals WHERE k = ? FOR UPDATE",
    append_journal: "INSERT INTO verity_journals (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = CONCAT(v, ',', VALUES(v))",
    insert_journal: "INSERT INTO verity_journals (k, v) VALUES (?, ?)",
    update_journal: "UPDATE verity_journals SET v = ? WHERE k = ?",
    read_journals: "SELECT k, v FROM verity_journals ORDER BY k",
    read_register: "SELECT v FROM verity_registers WHERE k = ?",
    read_register_for_update: "SELECT v FROM verity_registers WHERE k = ? FOR UPDATE",
    write_register: "INSERT INTO verity_registers (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)",
    read_registers: "SELECT k, v FROM verity_registers ORDER BY k",
    insert_mark: "INSERT INTO verity_marks (k, v) VALUES (?, ?)",
    read_mark: "SELECT v FROM verity_marks WHERE k = ?",
};
