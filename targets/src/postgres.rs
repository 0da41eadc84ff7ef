//! The `postgres` target: PostgreSQL (15, from Debian's `postgresql`) as a ledger, through
//! `tokio-postgres`.
//!
//! Started by verity (no `--url`): `initdb` in a private temporary directory owned by an unprivileged
//! user (PostgreSQL refuses to run as root), the server on a free loopback port, and with
//! `--replicas N` streaming replicas made by `pg_basebackup` whose `primary_conninfo` dials the
//! primary through the proxy mesh, so that partitions delay replication for real and reads from a
//! replica (`--read-from replica`) can be stale. Every node is a process group the nemesis pauses and
//! kills whole (postmaster and backends). `fsync` is off: a killed process loses nothing the kernel
//! has, which is what a process crash is; a machine crash is not simulated. `track_commit_timestamp`
//! is on, so the final read lists applied transfers in commit order. Everything is removed at the
//! end; the servers' logs stay in the run directory (`postgres/n1.log`, …).
//!
//! With `--url postgresql://user@host:port/db` verity uses a server it did not start: it creates
//! (and drops first) its own tables `verity_*` there, and has no nodes to fault.
//!
//! SQLSTATEs: 40001 (serialization failure, also a standby's conflict with recovery) and 40P01
//! (deadlock) and 55P03 (lock not available) abort a transaction: `fail`. 23505 is a duplicate
//! transfer id. A closed connection, and 57P01–57P03 (the server is shutting down or starting), mean
//! the connection is gone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Statement};
use verity_nemesis::nodes::Endpoint;
use verity_nemesis::process::{ProcessSpec, Supervisor};

use crate::registry::TargetOptions;
use crate::servers::package::{find_binary, missing, run_to_completion, wait_for_port};
use crate::servers::StartPlan;
use crate::sql::{
    Cell, ConnectTo, Dialect, Driver, ErrorClass, Isolation, Param, SqlConn, SqlError,
};
use crate::{Target, TargetError};

/// The user and database of a server verity starts.
const USER: &str = "verity";
const DATABASE: &str = "postgres";

pub fn create(options: &TargetOptions) -> Result<Arc<dyn Target>, TargetError> {
    crate::sql::create(options, Isolation::ReadCommitted, |starts_servers| {
        let binaries = starts_servers.then(Binaries::find).transpose()?;
        Ok(Postgres { binaries })
    })
}

/// The PostgreSQL programs verity runs.
#[derive(Debug, Clone)]
struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
    basebackup: PathBuf,
}

impl Binaries {
    /// Debian keeps each major version's programs in `/usr/lib/postgresql/<version>/bin`; the newest
    /// installed wins, then `PATH`. `$VERITY_POSTGRES_BINDIR`, when set, is the only place looked.
    fn find() -> Result<Binaries, TargetError> {
        if let Some(dir) = std::env::var_os("VERITY_POSTGRES_BINDIR") {
            let dir = PathBuf::from(dir);
            let at = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
            return match (at("initdb"), at("postgres"), at("pg_basebackup")) {
                (Some(initdb), Some(postgres), Some(basebackup)) => Ok(Binaries {
                    initdb,
                    postgres,
                    basebackup,
                }),
                _ => Err(missing(
                    &format!(
                        "PostgreSQL (initdb, postgres, pg_basebackup in $VERITY_POSTGRES_BINDIR={})",
                        dir.display()
                    ),
                    "postgresql",
                )),
            };
        }
        let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                        Some((v, e.path().join("bin")))
                    })
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        let dirs: Vec<PathBuf> = dirs.into_iter().rev().map(|(_, d)| d).collect();
        let find = |name: &str| find_binary(&[name], &dirs);
        match (find("initdb"), find("postgres"), find("pg_basebackup")) {
            (Some(initdb), Some(postgres), Some(basebackup)) => Ok(Binaries {
                initdb,
                postgres,
                basebackup,
            }),
            _ => Err(missing(
                "PostgreSQL (initdb, postgres, pg_basebackup)",
                "postgresql",
            )),
        }
    }
}

struct Postgres {
    binaries: Option<Binaries>,
}

/// The server's settings, on its command line (which wins over its configuration files).
fn server_args(dir: &Path, port: u16, socket_dir: &Path) -> Vec<String> {
    let settings = [
        "listen_addresses=127.0.0.1".to_string(),
        format!("port={port}"),
        format!("unix_socket_directories={}", socket_dir.display()),
        "fsync=off".into(),
        "wal_level=replica".into(),
        "max_wal_senders=10".into(),
        "hot_standby=on".into(),
        "track_commit_timestamp=on".into(),
        "max_connections=200".into(),
        "shared_buffers=32MB".into(),
        // Lock-order deadlocks of the unsafe styles are found quickly (the default waits 1 s).
        "deadlock_timeout=100ms".into(),
        "wal_sender_timeout=5s".into(),
        "wal_receiver_timeout=5s".into(),
        "wal_retrieve_retry_interval=500ms".into(),
        "wal_receiver_status_interval=1s".into(),
        "logging_collector=off".into(),
        "log_min_messages=warning".into(),
        "log_line_prefix=%m [%p] ".into(),
    ];
    let mut args = vec!["-D".to_string(), dir.display().to_string()];
    for s in settings {
        args.push("-c".into());
        args.push(s);
    }
    args
}

#[async_trait]
impl Driver for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    async fn connect(
        &self,
        to: &ConnectTo,
        timeout: Duration,
    ) -> Result<Box<dyn SqlConn>, SqlError> {
        let mut config: tokio_postgres::Config = match to {
            ConnectTo::Url(url) => url
                .parse()
                .map_err(|e| SqlError::connection(format!("bad --url {url:?}: {e}")))?,
            ConnectTo::Node(addr) => {
                let mut c = tokio_postgres::Config::new();
                c.host(addr.ip().to_string())
                    .port(addr.port())
                    .user(USER)
                    .dbname(DATABASE);
                c
            }
        };
        config.connect_timeout(timeout).application_name("verity");
        let (client, connection) = tokio::time::timeout(timeout, config.connect(NoTls))
            .await
            .map_err(|_| SqlError::connection(format!("no connection within {timeout:?}")))?
            .map_err(error)?;
        // The connection task ends when the client is dropped or the server goes away.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Box::new(PgConn {
            client,
            statements: HashMap::new(),
        }))
    }

    async fn start(&self, plan: &StartPlan) -> Result<Arc<Supervisor>, TargetError> {
        let bins = self
            .binaries
            .clone()
            .ok_or_else(|| TargetError::Setup("no PostgreSQL binaries to start".into()))?;
        let primary = "n1";
        let primary_dir = plan.data_dir.join(primary);
        let setup_log = plan.log_dir.join("setup.log");
        let initdb_args = vec![
            "-D".to_string(),
            primary_dir.display().to_string(),
            "-U".into(),
            USER.into(),
            "-A".into(),
            "trust".into(),
            "-E".into(),
            "UTF8".into(),
            "--no-instructions".into(),
            "--no-sync".into(),
        ];
        let (initdb, user) = (bins.initdb.clone(), plan.user);
        let log = setup_log.clone();
        tokio::task::spawn_blocking(move || run_to_completion(&initdb, &initdb_args, user, &log))
            .await
            .map_err(|e| TargetError::Setup(format!("initdb panicked: {e}")))??;

        let mut specs = Vec::new();
        for (node, addr) in &plan.listen {
            let dir = plan.data_dir.join(node);
            let mut args = server_args(&dir, addr.port(), &plan.data_dir);
            if node != primary {
                let via = plan.links.dial(&Endpoint::Node(node.clone()), primary);
                args.push("-c".into());
                args.push(format!(
                    "primary_conninfo=host={} port={} user={USER} application_name={node}",
                    via.ip(),
                    via.port()
                ));
            }
            let mut spec = ProcessSpec::new(
                node.clone(),
                bins.postgres.clone(),
                plan.log_dir.join(format!("{node}.log")),
            )
            .args(args);
            spec.user = plan.user;
            spec.cwd = Some(plan.data_dir.clone());
            specs.push(spec);
        }
        let supervisor = Arc::new(Supervisor::new(specs, plan.registry.clone()));
        let primary_addr = plan.listen[primary];
        supervisor
            .start(primary)
            .map_err(|e| TargetError::Setup(e.to_string()))?;
        self.wait_ready(&supervisor, primary, primary_addr, plan)
            .await?;
        for (node, addr) in plan.listen.iter().filter(|(n, _)| *n != primary) {
            // A copy of the primary as it is now, taken directly (not through the proxy).
            let dir = plan.data_dir.join(node);
            let args = vec![
                "-h".to_string(),
                primary_addr.ip().to_string(),
                "-p".into(),
                primary_addr.port().to_string(),
                "-U".into(),
                USER.into(),
                "-D".into(),
                dir.display().to_string(),
                "-X".into(),
                "stream".into(),
                "-R".into(),
                "--no-sync".into(),
            ];
            let (bb, log) = (bins.basebackup.clone(), setup_log.clone());
            tokio::task::spawn_blocking(move || run_to_completion(&bb, &args, user, &log))
                .await
                .map_err(|e| TargetError::Setup(format!("pg_basebackup panicked: {e}")))??;
            supervisor
                .start(node)
                .map_err(|e| TargetError::Setup(e.to_string()))?;
            self.wait_ready(&supervisor, node, *addr, plan).await?;
        }
        Ok(supervisor)
    }
}

impl Postgres {
    /// Waits until a node accepts SQL connections (its port opens before it finishes recovery).
    async fn wait_ready(
        &self,
        supervisor: &Supervisor,
        node: &str,
        addr: std::net::SocketAddr,
        plan: &StartPlan,
    ) -> Result<(), TargetError> {
        let log = plan.log_dir.join(format!("{node}.log"));
        let exited = || supervisor.exited(node).map(|s| s.to_string());
        wait_for_port(addr, Duration::from_secs(30), &log, exited).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let attempt = self
                .connect(&ConnectTo::Node(addr), Duration::from_secs(2))
                .await;
            match attempt {
                Ok(mut c) => {
                    if c.simple("SELECT 1").await.is_ok() {
                        return Ok(());
                    }
                }
                Err(e) if tokio::time::Instant::now() > deadline => {
                    return Err(TargetError::Setup(format!(
                        "PostgreSQL node {node} did not accept connections: {e}; the end of {}:\n{}",
                        log.display(),
                        crate::servers::package::log_tail(&log)
                    )))
                }
                Err(_) => {}
            }
            if let Some(status) = supervisor.exited(node) {
                return Err(TargetError::Setup(format!(
                    "PostgreSQL node {node} exited ({status}); the end of {}:\n{}",
                    log.display(),
                    crate::servers::package::log_tail(&log)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct PgConn {
    client: tokio_postgres::Client,
    /// Statements prepared on this connection, by text.
    statements: HashMap<&'static str, Statement>,
}

impl PgConn {
    async fn statement(&mut self, sql: &'static str) -> Result<Statement, SqlError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await.map_err(error)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

fn bind(params: &[Param]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Int(i) => Box::new(*i),
                Param::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

#[async_trait]
impl SqlConn for PgConn {
    async fn execute(&mut self, sql: &'static str, params: &[Param]) -> Result<u64, SqlError> {
        let stmt = self.statement(sql).await?;
        let owned = bind(params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref() as _).collect();
        self.client.execute(&stmt, &refs).await.map_err(error)
    }

    async fn query(
        &mut self,
        sql: &'static str,
        params: &[Param],
    ) -> Result<Vec<Vec<Cell>>, SqlError> {
        let stmt = self.statement(sql).await?;
        let owned = bind(params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref() as _).collect();
        let rows = self.client.query(&stmt, &refs).await.map_err(error)?;
        Ok(rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        if let Ok(v) = row.try_get::<_, Option<i64>>(i) {
                            return v.map_or(Cell::Null, Cell::Int);
                        }
                        if let Ok(v) = row.try_get::<_, Option<i32>>(i) {
                            return v.map_or(Cell::Null, |v| Cell::Int(i64::from(v)));
                        }
                        match row.try_get::<_, Option<String>>(i) {
                            Ok(Some(t)) => Cell::Text(t),
                            _ => Cell::Null,
                        }
                    })
                    .collect()
            })
            .collect())
    }

    async fn simple(&mut self, sql: &str) -> Result<(), SqlError> {
        self.client.batch_execute(sql).await.map_err(error)
    }
}

/// A driver error as verity classes it.
fn error(e: tokio_postgres::Error) -> SqlError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection failed or closed; the cause is in the source chain.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text += &format!(": {s}");
            source = s.source();
        }
        return SqlError::connection(text);
    };
    let class = if code == &SqlState::T_R_SERIALIZATION_FAILURE
        || code == &SqlState::T_R_DEADLOCK_DETECTED
        || code == &SqlState::LOCK_NOT_AVAILABLE
    {
        ErrorClass::Conflict
    } else if code == &SqlState::UNIQUE_VIOLATION {
        ErrorClass::Duplicate
    } else if code == &SqlState::ADMIN_SHUTDOWN
        || code == &SqlState::CRASH_SHUTDOWN
        || code == &SqlState::CANNOT_CONNECT_NOW
    {
        ErrorClass::Connection
    } else {
        ErrorClass::Other
    };
    let message = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string());
    SqlError {
        class,
        code: code.code().to_string(),
        message,
    }
}

fn begin(iso: Isolation, read_only: bool) -> Vec<String> {
    let mode = if read_only { " READ ONLY" } else { "" };
    vec![format!("BEGIN ISOLATION LEVEL {}{mode}", iso.sql())]
}

static DIALECT: Dialect = Dialect {
    begin,
    create_schema: &[
        "DROP TABLE IF EXISTS verity_accounts, verity_transfers, verity_journals, verity_registers, verity_marks",
        "CREATE TABLE verity_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)",
        "CREATE TABLE verity_transfers (seq BIGSERIAL PRIMARY KEY, id BIGINT NOT NULL UNIQUE, from_id BIGINT NOT NULL, to_id BIGINT NOT NULL, amount BIGINT NOT NULL)",
        "CREATE TABLE verity_journals (k BIGINT PRIMARY KEY, v TEXT NOT NULL)",
        "CREATE TABLE verity_registers (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)",
        "CREATE TABLE verity_marks (k TEXT PRIMARY KEY, v BIGINT NOT NULL)",
    ],
    debit_if_funds:
        "UPDATE verity_accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $3",
    credit: "UPDATE verity_accounts SET balance = balance + $1 WHERE id = $2",
    select_pair: "SELECT id, balance FROM verity_accounts WHERE id IN ($1, $2) ORDER BY id",
    select_pair_for_update:
        "SELECT id, balance FROM verity_accounts WHERE id IN ($1, $2) ORDER BY id FOR UPDATE",
    set_balance: "UPDATE verity_accounts SET balance = $1 WHERE id = $2",
    insert_account: "INSERT INTO verity_accounts (id, balance) VALUES ($1, $2)",
    insert_transfer:
        "INSERT INTO verity_transfers (id, from_id, to_id, amount) VALUES ($1, $2, $3, $4)",
    read_balances: "SELECT id, balance FROM verity_accounts ORDER BY id",
    final_journal: "SELECT id FROM verity_transfers ORDER BY seq",
    // Commit order where the server records commit timestamps (a server verity starts does).
    final_journal_commit_order: Some(
        "SELECT id FROM verity_transfers ORDER BY pg_xact_commit_timestamp(xmin), seq",
    ),
    commit_order_probe: Some("SELECT current_setting('track_commit_timestamp')"),
    read_journal: "SELECT v FROM verity_journals WHERE k = $1",
    read_journal_for_update: "SELECT v FROM verity_journals WHERE k = $1 FOR UPDATE",
    append_journal: "INSERT INTO verity_journals AS j (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = j.v || ',' || EXCLUDED.v",
    insert_journal: "INSERT INTO verity_journals (k, v) VALUES ($1, $2)",
    update_journal: "UPDATE verity_journals SET v = $1 WHERE k = $2",
    read_journals: "SELECT k, v FROM verity_journals ORDER BY k",
    read_register: "SELECT v FROM verity_registers WHERE k = $1",
    read_register_for_update: "SELECT v FROM verity_registers WHERE k = $1 FOR UPDATE",
    write_register: "INSERT INTO verity_registers AS r (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
    read_registers: "SELECT k, v FROM verity_registers ORDER BY k",
    insert_mark: "INSERT INTO verity_marks (k, v) VALUES ($1, $2)",
    read_mark: "SELECT v FROM verity_marks WHERE k = $1",
};
