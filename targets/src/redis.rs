//! The `redis` target: Redis (7.0, from Debian's `redis-server`) as a ledger, through the `redis`
//! crate on tokio.
//!
//! Started by verity (no `--url`): the server on a free loopback port in a private temporary
//! directory (append-only file on, flushed every second: a killed process loses nothing the kernel
//! has), as an unprivileged user; with `--replicas N`, replicas fed by `REPLICAOF` through the proxy
//! mesh, so that the nemesis can cut, pause and kill primary and replicas, and `--read-from replica`
//! sends reads to a replica as a reader endpoint would. With `--url redis://host:port` verity uses a
//! server it did not start and touches only its own keys (`verity:*`).
//!
//! `--style` is how a transfer (or a transaction) is written:
//! - `plain`: read both balances, write both back — no isolation at all, the race on purpose;
//! - `watch-multi`: optimistic — `WATCH` the keys, read, `MULTI` … `EXEC`; an `EXEC` answered nil
//!   (a watched key changed) is `fail`;
//! - `lua` (default): one server-side script, atomic; a transfer id already applied is not applied
//!   again.
//!
//! Keys: `verity:balance:<account>`, `verity:applied` (the journal of applied transfer ids, in
//! order) and `verity:applied-ids` (a set, for idempotence), `verity:journal:<key>` (lists) and
//! `verity:register:<key>` for the transactional workloads. A command that fails before anything
//! was written is `fail`; a connection lost after a write was sent is `info`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use verity_history::{Completion, Invocation, MicroOp, MopF, MopValue, Transfer, Value, F};
use verity_nemesis::nodes::{Endpoint, Nodes};
use verity_nemesis::process::{ProcessSpec, Supervisor};

use crate::registry::{OptionSpec, TargetOptions};
use crate::servers::package::{find_program, missing, wait_for_port};
use crate::servers::{NodeStateReader, ServerSet, StartPlan, STARTUP_TIMEOUT};
use crate::{Client, Target, TargetError};

pub const STYLE: OptionSpec = OptionSpec {
    name: "style",
    about: "how a transfer or transaction is written",
    values: &["plain", "watch-multi", "lua"],
    required: false,
    default: Some("lua"),
};
pub const URL: OptionSpec = OptionSpec {
    name: "url",
    about: "a running server to use instead of starting one (redis://host:port; no nodes to fault)",
    values: &[],
    required: false,
    default: None,
};
pub const OPTIONS: &[OptionSpec] = &[
    STYLE,
    crate::servers::REPLICAS,
    crate::servers::READ_FROM,
    URL,
];

const BALANCE: &str = "verity:balance:";
const APPLIED: &str = "verity:applied";
const APPLIED_IDS: &str = "verity:applied-ids";
const JOURNAL: &str = "verity:journal:";
const REGISTER: &str = "verity:register:";
const MARK: &str = "verity:mark";
const ACCOUNTS: &str = "verity:accounts";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    WatchMulti,
    Lua,
}

#[derive(Debug, Clone)]
struct Config {
    style: Style,
    replicas: usize,
    read_from_replica: bool,
    url: Option<String>,
    op_timeout: Duration,
    registers: bool,
    seed: u64,
}

pub fn create(options: &TargetOptions) -> Result<Arc<dyn Target>, TargetError> {
    let style = match options.param(&STYLE) {
        Some("plain") => Style::Plain,
        Some("watch-multi") => Style::WatchMulti,
        _ => Style::Lua,
    };
    let replicas: usize = options
        .param(&crate::servers::REPLICAS)
        .unwrap_or("0")
        .parse()
        .map_err(|_| TargetError::BadOptions("--replicas takes a number".into()))?;
    let read_from_replica = options.param(&crate::servers::READ_FROM) == Some("replica");
    let url = options.param(&URL).map(str::to_string);
    if read_from_replica && replicas == 0 {
        return Err(TargetError::BadOptions(
            "--read-from replica needs a replica: add --replicas 1 (or more)".into(),
        ));
    }
    if url.is_some() && replicas > 0 {
        return Err(TargetError::BadOptions(
            "--replicas starts servers of verity's own, --url uses one that runs already: pick one"
                .into(),
        ));
    }
    let config = Config {
        style,
        replicas,
        read_from_replica,
        url,
        op_timeout: options.op_timeout.unwrap_or(Duration::from_secs(2)),
        registers: options.workload == "rw-register",
        seed: options.seed,
    };
    let server = if config.url.is_none() {
        Some(
            find_program(
                "VERITY_REDIS_BINDIR",
                &["redis-server"],
                &[PathBuf::from("/usr/bin")],
            )
            .ok_or_else(|| missing("Redis (redis-server)", "redis-server"))?,
        )
    } else {
        None
    };
    let servers = match (&config.url, server) {
        (None, Some(binary)) => {
            let set = Arc::new(ServerSet::new("redis", 1 + config.replicas, true, options)?);
            set.read_states_with(Arc::new(StateReader {
                registers: config.registers,
            }));
            Some((set, binary))
        }
        _ => None,
    };
    Ok(Arc::new(RedisTarget { config, servers }))
}

pub struct RedisTarget {
    config: Config,
    servers: Option<(Arc<ServerSet>, PathBuf)>,
}

impl RedisTarget {
    fn url_for(&self, node: Option<&str>) -> String {
        match (&self.config.url, &self.servers) {
            (Some(u), _) => u.clone(),
            (None, Some((s, _))) => format!("redis://{}/", s.client_addr(node.unwrap_or("n1"))),
            (None, None) => unreachable!("a target without --url runs its servers"),
        }
    }
}

async fn connect(url: &str, timeout: Duration) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(|e| format!("bad redis URL {url:?}: {e}"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))
}

/// Starts the primary and its replicas (each replicating from the primary through the mesh).
async fn start_servers(binary: PathBuf, plan: StartPlan) -> Result<Arc<Supervisor>, TargetError> {
    let mut specs = Vec::new();
    for (node, addr) in &plan.listen {
        let mut args = vec![
            "--port".to_string(),
            addr.port().to_string(),
            "--bind".into(),
            addr.ip().to_string(),
            "--dir".into(),
            plan.data_dir.display().to_string(),
            "--dbfilename".into(),
            format!("{node}.rdb"),
            "--appendonly".into(),
            "yes".into(),
            "--appendfilename".into(),
            format!("{node}.aof"),
            "--appenddirname".into(),
            format!("{node}-aof"),
            "--appendfsync".into(),
            "everysec".into(),
            "--save".into(),
            String::new(),
            "--protected-mode".into(),
            "no".into(),
            "--daemonize".into(),
            "no".into(),
            "--logfile".into(),
            String::new(),
            "--repl-timeout".into(),
            "5".into(),
        ];
        if node != "n1" {
            let via = plan.links.dial(&Endpoint::Node(node.clone()), "n1");
            args.extend([
                "--replicaof".to_string(),
                via.ip().to_string(),
                via.port().to_string(),
                "--replica-read-only".into(),
                "yes".into(),
            ]);
        }
        let mut spec = ProcessSpec::new(
            node.clone(),
            binary.clone(),
            plan.log_dir.join(format!("{node}.log")),
        )
        .args(args);
        spec.user = plan.user;
        spec.cwd = Some(plan.data_dir.clone());
        specs.push(spec);
    }
    let supervisor = Arc::new(Supervisor::new(specs, plan.registry.clone()));
    for (node, addr) in &plan.listen {
        supervisor
            .start(node)
            .map_err(|e| TargetError::Setup(e.to_string()))?;
        let log = plan.log_dir.join(format!("{node}.log"));
        let exited = || supervisor.exited(node).map(|s| s.to_string());
        wait_for_port(*addr, Duration::from_secs(30), &log, exited).await?;
    }
    Ok(supervisor)
}

#[async_trait]
impl Target for RedisTarget {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn setup(&self, init: &Invocation) -> Result<Completion, TargetError> {
        if let Some((servers, binary)) = &self.servers {
            let binary = binary.clone();
            servers.start(|plan| start_servers(binary, plan)).await?;
        }
        let url = self.url_for(None);
        let mut c = connect(&url, Duration::from_secs(10))
            .await
            .map_err(TargetError::Connect)?;
        let balances = init
            .value
            .get("balances")
            .and_then(Value::as_i64_list)
            .unwrap_or_default();
        let mark = (self.config.seed & 0x3fff_ffff) as i64 + 1;
        let setup = async {
            // Only verity's own keys: a server given by --url keeps everything else.
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg("verity:*")
                .query_async(&mut c)
                .await?;
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<()>(&mut c)
                    .await?;
            }
            let mut pipe = redis::pipe();
            pipe.atomic();
            for (i, b) in balances.iter().enumerate() {
                pipe.cmd("SET")
                    .arg(format!("{BALANCE}{i}"))
                    .arg(*b)
                    .ignore();
            }
            pipe.cmd("SET").arg(ACCOUNTS).arg(balances.len()).ignore();
            pipe.cmd("SET").arg(MARK).arg(mark).ignore();
            pipe.query_async::<()>(&mut c).await
        };
        setup
            .await
            .map_err(|e| TargetError::Setup(format!("cannot set up the ledger at {url}: {e}")))?;
        // Reads from a replica must start from the accounts the primary has.
        if let Some((servers, _)) = &self.servers {
            for node in servers.names().into_iter().skip(1) {
                wait_for_mark(&self.url_for(Some(&node)), mark)
                    .await
                    .map_err(|e| {
                        TargetError::Setup(format!(
                            "replica {node} did not catch up with the primary: {e}; its log is in {}",
                            servers.log_dir().display()
                        ))
                    })?;
            }
        }
        Ok(Completion::ok(init.value.clone()))
    }

    async fn client(&self, worker: usize) -> Result<Box<dyn Client>, TargetError> {
        let replica = (self.config.read_from_replica && self.config.replicas > 0)
            .then(|| self.url_for(Some(&format!("n{}", 2 + worker % self.config.replicas))));
        Ok(Box::new(RedisClient {
            config: self.config.clone(),
            primary: Session::new(self.url_for(None)),
            replica: replica.map(Session::new),
            accounts: None,
        }))
    }

    async fn teardown(&self) -> Result<(), TargetError> {
        match &self.servers {
            Some((s, _)) => s.stop().await,
            None => Ok(()),
        }
    }

    fn nodes(self: Arc<Self>) -> Option<Arc<dyn Nodes>> {
        self.servers
            .as_ref()
            .map(|(s, _)| s.clone() as Arc<dyn Nodes>)
    }
}

async fn wait_for_mark(url: &str, mark: i64) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    let mut last = String::from("no answer");
    while tokio::time::Instant::now() < deadline {
        match connect(url, Duration::from_secs(2)).await {
            Ok(mut c) => match redis::cmd("GET")
                .arg(MARK)
                .query_async::<Option<i64>>(&mut c)
                .await
            {
                Ok(Some(m)) if m == mark => return Ok(()),
                Ok(other) => last = format!("its mark is {other:?}"),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}

/// A connection that reconnects after it broke.
struct Session {
    url: String,
    conn: Option<MultiplexedConnection>,
}

impl Session {
    fn new(url: String) -> Session {
        Session { url, conn: None }
    }
    async fn conn(&mut self, timeout: Duration) -> Result<&mut MultiplexedConnection, String> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.url, timeout).await?);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }
}

/// A worker's client.
struct RedisClient {
    config: Config,
    primary: Session,
    replica: Option<Session>,
    /// The number of accounts, learnt on first use.
    accounts: Option<usize>,
}

/// How far an attempt got before it failed: whether a write may have reached the server.
struct Failed {
    wrote: bool,
    why: String,
}

fn failed(wrote: bool) -> impl Fn(redis::RedisError) -> Failed {
    move |e| Failed {
        wrote,
        why: e.to_string(),
    }
}

/// Both accounts' balances (a missing key is 0), read in one `MGET`.
async fn two_balances(
    c: &mut MultiplexedConnection,
    from: &str,
    to: &str,
) -> Result<(i64, i64), Failed> {
    let (bf, bt): (Option<i64>, Option<i64>) = redis::cmd("MGET")
        .arg(from)
        .arg(to)
        .query_async(c)
        .await
        .map_err(failed(false))?;
    Ok((bf.unwrap_or(0), bt.unwrap_or(0)))
}

const TRANSFER_LUA: &str = r#"
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then return 'applied' end
local from = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[2])
if from < amount then return 'insufficient-funds' end
redis.call('DECRBY', KEYS[1], amount)
redis.call('INCRBY', KEYS[2], amount)
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return 'ok'
"#;

/// Runs micro-ops atomically: ARGV[1] is `[[f, key, value], …]` as JSON, ARGV[2] `1` for registers.
/// Answers one JSON text per read, in order (`[3,-7]` for a journal, `12` or `null` for a register),
/// built by hand: cjson cannot tell an empty list from an empty object.
const TXN_LUA: &str = r#"
local ops = cjson.decode(ARGV[1])
local registers = ARGV[2] == '1'
local reads = {}
for _, op in ipairs(ops) do
  local f, k, v = op[1], op[2], op[3]
  if f == 'r' and registers then
    local x = redis.call('GET', 'verity:register:' .. k)
    reads[#reads + 1] = x or 'null'
  elseif f == 'r' then
    reads[#reads + 1] = '[' .. table.concat(redis.call('LRANGE', 'verity:journal:' .. k, 0, -1), ',') .. ']'
  elseif f == 'append' then
    redis.call('RPUSH', 'verity:journal:' .. k, v)
  elseif f == 'w' then
    redis.call('SET', 'verity:register:' .. k, v)
  end
end
return reads
"#;

impl RedisClient {
    async fn transfer(&mut self, t: &Transfer) -> Result<Result<(), String>, Failed> {
        let timeout = self.config.op_timeout;
        let style = self.config.style;
        let c = self
            .primary
            .conn(timeout)
            .await
            .map_err(|why| Failed { wrote: false, why })?;
        let (from, to) = (format!("{BALANCE}{}", t.from), format!("{BALANCE}{}", t.to));
        match style {
            Style::Lua => {
                let answer: String = redis::Script::new(TRANSFER_LUA)
                    .key(&from)
                    .key(&to)
                    .key(APPLIED)
                    .key(APPLIED_IDS)
                    .arg(t.id)
                    .arg(t.amount)
                    .invoke_async(c)
                    .await
                    .map_err(failed(true))?;
                Ok(match answer.as_str() {
                    "ok" | "applied" => Ok(()),
                    other => Err(other.to_string()),
                })
            }
            Style::Plain => {
                let (bf, bt) = two_balances(c, &from, &to).await?;
                if bf < t.amount {
                    return Ok(Err("insufficient-funds".into()));
                }
                redis::cmd("SET")
                    .arg(&from)
                    .arg(bf - t.amount)
                    .query_async::<()>(c)
                    .await
                    .map_err(failed(true))?;
                redis::cmd("SET")
                    .arg(&to)
                    .arg(bt + t.amount)
                    .query_async::<()>(c)
                    .await
                    .map_err(failed(true))?;
                redis::cmd("RPUSH")
                    .arg(APPLIED)
                    .arg(t.id)
                    .query_async::<()>(c)
                    .await
                    .map_err(failed(true))?;
                Ok(Ok(()))
            }
            Style::WatchMulti => {
                redis::cmd("WATCH")
                    .arg(&from)
                    .arg(&to)
                    .query_async::<()>(c)
                    .await
                    .map_err(failed(false))?;
                let (bf, bt) = two_balances(c, &from, &to).await?;
                if bf < t.amount {
                    redis::cmd("UNWATCH")
                        .query_async::<()>(c)
                        .await
                        .map_err(failed(false))?;
                    return Ok(Err("insufficient-funds".into()));
                }
                let done: Option<redis::Value> = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&from)
                    .arg(bf - t.amount)
                    .ignore()
                    .cmd("SET")
                    .arg(&to)
                    .arg(bt + t.amount)
                    .ignore()
                    .cmd("RPUSH")
                    .arg(APPLIED)
                    .arg(t.id)
                    .query_async(c)
                    .await
                    .map_err(failed(true))?;
                Ok(match done {
                    Some(_) => Ok(()),
                    None => Err("watch-aborted".into()),
                })
            }
        }
    }

    async fn read(&mut self, final_read: bool) -> Result<Value, String> {
        let timeout = self.config.op_timeout;
        let session = match &mut self.replica {
            Some(r) if !final_read => r,
            _ => &mut self.primary,
        };
        let c = session.conn(timeout).await?;
        let n = match self.accounts {
            Some(n) => n,
            None => {
                let n: usize = redis::cmd("GET")
                    .arg(ACCOUNTS)
                    .query_async(c)
                    .await
                    .map_err(|e| e.to_string())?;
                self.accounts = Some(n);
                n
            }
        };
        let keys: Vec<String> = (0..n).map(|i| format!("{BALANCE}{i}")).collect();
        let (balances, applied): (Vec<Option<i64>>, Vec<i64>) = redis::pipe()
            .atomic()
            .cmd("MGET")
            .arg(&keys)
            .cmd("LRANGE")
            .arg(APPLIED)
            .arg(0)
            .arg(if final_read { -1 } else { 0 })
            .query_async(c)
            .await
            .map_err(|e| e.to_string())?;
        let mut entries = vec![(
            "balances",
            Value::int_list(balances.into_iter().map(|b| b.unwrap_or(0))),
        )];
        if final_read {
            entries.push(("applied", Value::int_list(applied)));
        }
        Ok(Value::map(entries))
    }

    async fn txn(&mut self, mops: &[MicroOp]) -> Result<Result<Vec<Value>, String>, Failed> {
        let timeout = self.config.op_timeout;
        let (style, registers) = (self.config.style, self.config.registers);
        let read_only = mops.iter().all(|m| m.f == MopF::Read);
        let session = match &mut self.replica {
            Some(r) if read_only => r,
            _ => &mut self.primary,
        };
        let c = session
            .conn(timeout)
            .await
            .map_err(|why| Failed { wrote: false, why })?;
        match style {
            Style::Lua => {
                let ops: Vec<serde_json::Value> = mops
                    .iter()
                    .map(|m| serde_json::to_value(m.to_generic()).unwrap_or_default())
                    .collect();
                let answer: Vec<String> = redis::Script::new(TXN_LUA)
                    .arg(serde_json::Value::Array(ops).to_string())
                    .arg(if registers { "1" } else { "0" })
                    .invoke_async(c)
                    .await
                    .map_err(failed(!read_only))?;
                let reads = answer
                    .iter()
                    .map(|r| serde_json::from_str::<Value>(r))
                    .collect::<Result<Vec<Value>, _>>()
                    .map_err(|e| Failed {
                        wrote: !read_only,
                        why: format!("the script answered a read that is not JSON: {e}"),
                    })?;
                Ok(Ok(reads))
            }
            Style::Plain => {
                let mut reads = Vec::new();
                let mut wrote = false;
                for m in mops {
                    match (m.f, &m.value) {
                        (MopF::Read, _) => {
                            reads.push(read_key(c, registers, m.key).await.map_err(failed(wrote))?)
                        }
                        (MopF::Append, MopValue::Int(v)) => {
                            wrote = true;
                            redis::cmd("RPUSH")
                                .arg(format!("{JOURNAL}{}", m.key))
                                .arg(*v)
                                .query_async::<()>(c)
                                .await
                                .map_err(failed(true))?;
                        }
                        (MopF::Write, MopValue::Int(v)) => {
                            wrote = true;
                            redis::cmd("SET")
                                .arg(format!("{REGISTER}{}", m.key))
                                .arg(*v)
                                .query_async::<()>(c)
                                .await
                                .map_err(failed(true))?;
                        }
                        _ => return Ok(Err("unsupported micro-op".into())),
                    }
                }
                Ok(Ok(reads))
            }
            Style::WatchMulti => {
                let keys: Vec<String> = mops.iter().map(|m| key_of(registers, m)).collect();
                redis::cmd("WATCH")
                    .arg(&keys)
                    .query_async::<()>(c)
                    .await
                    .map_err(failed(false))?;
                // Writes are queued for EXEC, so a read after the transaction's own write to the
                // same key sees that write, as in any transaction.
                let mut reads = Vec::new();
                for (i, m) in mops.iter().enumerate().filter(|(_, m)| m.f == MopF::Read) {
                    let seen = read_key(c, registers, m.key).await.map_err(failed(false))?;
                    reads.push(with_own_writes(seen, &mops[..i], m.key));
                }
                // EXEC validates the reads even of a read-only transaction: nil if a key moved.
                let mut pipe = redis::pipe();
                pipe.atomic();
                for m in mops {
                    match (m.f, &m.value) {
                        (MopF::Append, MopValue::Int(v)) => {
                            pipe.cmd("RPUSH")
                                .arg(format!("{JOURNAL}{}", m.key))
                                .arg(*v)
                                .ignore();
                        }
                        (MopF::Write, MopValue::Int(v)) => {
                            pipe.cmd("SET")
                                .arg(format!("{REGISTER}{}", m.key))
                                .arg(*v)
                                .ignore();
                        }
                        _ => {}
                    }
                }
                pipe.cmd("PING");
                let done: Option<redis::Value> =
                    pipe.query_async(c).await.map_err(failed(!read_only))?;
                Ok(match done {
                    Some(_) => Ok(reads),
                    None => Err("watch-aborted".into()),
                })
            }
        }
    }
}

fn key_of(registers: bool, m: &MicroOp) -> String {
    if registers || m.f == MopF::Write {
        format!("{REGISTER}{}", m.key)
    } else {
        format!("{JOURNAL}{}", m.key)
    }
}

async fn read_key(
    c: &mut MultiplexedConnection,
    registers: bool,
    key: i64,
) -> Result<Value, redis::RedisError> {
    if registers {
        let v: Option<i64> = redis::cmd("GET")
            .arg(format!("{REGISTER}{key}"))
            .query_async(c)
            .await?;
        return Ok(v.map_or(Value::Null, Value::Int));
    }
    let l: Vec<i64> = redis::cmd("LRANGE")
        .arg(format!("{JOURNAL}{key}"))
        .arg(0)
        .arg(-1)
        .query_async(c)
        .await?;
    Ok(Value::int_list(l))
}

/// A read of `key` merged with the writes to it queued earlier in the same transaction.
fn with_own_writes(seen: Value, earlier: &[MicroOp], key: i64) -> Value {
    let mut v = seen;
    for m in earlier.iter().filter(|m| m.key == key) {
        match (m.f, &m.value, &mut v) {
            (MopF::Append, MopValue::Int(x), Value::List(l)) => l.push(Value::Int(*x)),
            (MopF::Append, MopValue::Int(x), Value::Null) => v = Value::int_list([*x]),
            (MopF::Write, MopValue::Int(x), _) => v = Value::Int(*x),
            _ => {}
        }
    }
    v
}

#[async_trait]
impl Client for RedisClient {
    async fn invoke(&mut self, op: &Invocation) -> Completion {
        let timeout = self.config.op_timeout;
        match (&op.f, &op.value) {
            (F::Transfer, Value::Transfer(t)) => {
                let t = *t;
                match tokio::time::timeout(timeout, self.transfer(&t)).await {
                    Ok(Ok(Ok(()))) => Completion::ok(op.value.clone()),
                    Ok(Ok(Err(why))) => Completion::fail(op.value.clone(), why),
                    Ok(Err(f)) => {
                        self.primary.conn = None;
                        if f.wrote {
                            Completion::info(op.value.clone(), f.why)
                        } else {
                            Completion::fail(op.value.clone(), f.why)
                        }
                    }
                    Err(_) => {
                        self.primary.conn = None;
                        Completion::info(op.value.clone(), "timeout")
                    }
                }
            }
            (F::Read, v) => {
                let final_read = matches!(v.get("final"), Some(Value::Bool(true)));
                match tokio::time::timeout(timeout, self.read(final_read)).await {
                    Ok(Ok(value)) => Completion::ok(value),
                    Ok(Err(why)) => {
                        self.reset_read_session(final_read);
                        Completion::fail(op.value.clone(), why)
                    }
                    Err(_) => {
                        self.reset_read_session(final_read);
                        Completion::fail(op.value.clone(), "timeout")
                    }
                }
            }
            (F::Txn, v) => {
                let Some(mops) = v.micro_ops() else {
                    return Completion::fail(op.value.clone(), "malformed-txn");
                };
                let mops = mops.into_owned();
                let read_only = mops.iter().all(|m| m.f == MopF::Read);
                match tokio::time::timeout(timeout, self.txn(&mops)).await {
                    Ok(Ok(Ok(reads))) => Completion::ok(MicroOp::completed(&mops, reads)),
                    Ok(Ok(Err(why))) => Completion::fail(op.value.clone(), why),
                    Ok(Err(f)) => {
                        self.reset_read_session(!read_only);
                        if f.wrote {
                            Completion::info(op.value.clone(), f.why)
                        } else {
                            Completion::fail(op.value.clone(), f.why)
                        }
                    }
                    Err(_) => {
                        self.reset_read_session(!read_only);
                        if read_only {
                            Completion::fail(op.value.clone(), "timeout")
                        } else {
                            Completion::info(op.value.clone(), "timeout")
                        }
                    }
                }
            }
            _ => Completion::fail(op.value.clone(), "unsupported-operation"),
        }
    }
}

impl RedisClient {
    /// Forgets the connection an operation used (`on_primary`: the primary's).
    fn reset_read_session(&mut self, on_primary: bool) {
        match &mut self.replica {
            Some(r) if !on_primary => r.conn = None,
            _ => self.primary.conn = None,
        }
    }
}

/// Reads one node's own keys for the convergence checker.
struct StateReader {
    registers: bool,
}

#[async_trait]
impl NodeStateReader for StateReader {
    async fn read(&self, _node: &str, addr: SocketAddr) -> Result<Value, String> {
        let mut c = connect(&format!("redis://{addr}/"), Duration::from_secs(2)).await?;
        let n: Option<usize> = redis::cmd("GET")
            .arg(ACCOUNTS)
            .query_async(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        let keys: Vec<String> = (0..n.unwrap_or(0))
            .map(|i| format!("{BALANCE}{i}"))
            .collect();
        let balances: Vec<Option<i64>> = if keys.is_empty() {
            Vec::new()
        } else {
            redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?
        };
        let applied: Vec<i64> = redis::cmd("LRANGE")
            .arg(APPLIED)
            .arg(0)
            .arg(-1)
            .query_async(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        let mut entries = vec![
            (
                "balances",
                Value::int_list(balances.into_iter().map(|b| b.unwrap_or(0))),
            ),
            ("applied", Value::int_list(applied)),
        ];
        let prefix = if self.registers { REGISTER } else { JOURNAL };
        let store_keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        if !store_keys.is_empty() {
            let mut store = BTreeMap::new();
            for k in store_keys {
                let v = match k.strip_prefix(prefix).and_then(|n| n.parse::<i64>().ok()) {
                    Some(key) => read_key(&mut c, self.registers, key)
                        .await
                        .map_err(|e| e.to_string())?,
                    None => continue,
                };
                store.insert(k[prefix.len()..].to_string(), v);
            }
            entries.push(("store", Value::map(store)));
        }
        Ok(Value::map(entries))
    }
}
