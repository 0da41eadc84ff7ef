//! The `etcd` target: an etcd cluster (3.4, from Debian's `etcd-server`) as a ledger, through its v3
//! JSON gateway over HTTP (`reqwest`; no protoc, no gRPC toolchain).
//!
//! verity starts `--nodes` members (3 by default) on free loopback ports in a private temporary
//! directory. Every link goes through the proxy mesh: clients dial a member through it, and so do
//! the members each other. etcd members all dial a peer at the one peer URL the cluster agreed on,
//! so those URLs name hosts (`http://n2.verity:PORT`) and every member resolves them through an
//! `/etc/hosts` of its own (a mount namespace per member, which needs root): `n2.verity` is, for
//! member n1, the proxy's listener for the link n1→n2, and for n3 the one for n3→n2 — one port,
//! one loopback address per source — so partitions, delay and loss act on each directed link of a
//! real Raft store, as Jepsen's iptables rules do.
//!
//! The bank: one key per account (`verity/account/<n>`) and one per applied transfer
//! (`verity/transfer/<id>`). A transfer reads both balances and commits one `txn` that compares the
//! accounts' mod revisions and that the transfer's key does not exist yet; a lost race is retried
//! under the same id, and a retry after an unknown outcome first looks for its key, so a transfer is
//! applied at most once. The final read lists the transfer keys by mod revision: the journal in the
//! order Raft committed them. Reads are `--read linearizable` (through the leader's read index) or
//! `serializable` (any member answers from its own state — stale behind a partition). ledger-append
//! and rw-register run as multi-key `txn`s guarded by the mod revisions of every key they touch. A
//! timeout or a reset connection is `info` for anything that writes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value as Json};
use tokio::time::Instant;
use verity_history::{Completion, Invocation, MicroOp, MopF, MopValue, Transfer, Value, F};
use verity_nemesis::nodes::{Endpoint, Nodes};
use verity_nemesis::process::{ProcessSpec, Supervisor};

use crate::registry::{OptionSpec, TargetOptions};
use crate::servers::package::{find_program, missing_without_url, wait_for_port};
use crate::servers::{NodeStateReader, ServerSet, StartPlan};
use crate::{Client, Target, TargetError};

pub const READ: OptionSpec = OptionSpec {
    name: "read",
    about: "how reads are served: linearizable (the leader's read index) or serializable (any member's own state)",
    values: &["linearizable", "serializable"],
    required: false,
    default: Some("linearizable"),
};
pub const NODES: OptionSpec = OptionSpec {
    name: "nodes",
    about: "cluster members",
    values: &[],
    required: false,
    default: Some("3"),
};
pub const OPTIONS: &[OptionSpec] = &[NODES, READ];

const ACCOUNT: &str = "verity/account/";
const TRANSFER: &str = "verity/transfer/";
const JOURNAL: &str = "verity/journal/";
const REGISTER: &str = "verity/register/";
const PREFIX: &str = "verity/";
/// How long a member may take to join and the cluster to elect its first leader.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// One attempt of a request to one member.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

pub fn create(options: &TargetOptions) -> Result<Arc<dyn Target>, TargetError> {
    let nodes: usize = options
        .param(&NODES)
        .unwrap_or("3")
        .parse()
        .map_err(|_| TargetError::BadOptions("--nodes takes a number".into()))?;
    if nodes > 1 && !nix::unistd::Uid::effective().is_root() {
        return Err(TargetError::BadOptions(
            "an etcd cluster needs root: each member resolves its peers through an /etc/hosts of \
             its own, in a mount namespace (or pass --nodes 1)"
                .into(),
        ));
    }
    let binary = find_program(
        "VERITY_ETCD_BINDIR",
        &["etcd"],
        &[PathBuf::from("/usr/bin")],
    )
    .ok_or_else(|| missing_without_url("etcd (etcd)", "etcd-server"))?;
    let servers = Arc::new(ServerSet::new("etcd", nodes, false, options)?.with_peer_ports()?);
    let kind = match options.workload.as_str() {
        "ledger-append" => Kind::Journals,
        "rw-register" => Kind::Registers,
        _ => Kind::Bank,
    };
    servers.read_states_with(Arc::new(StateReader { kind }));
    Ok(Arc::new(EtcdTarget {
        binary,
        servers,
        serializable: options.param(&READ) == Some("serializable"),
        op_timeout: options.op_timeout.unwrap_or(Duration::from_secs(3)),
        seed: options.seed,
        kind,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bank,
    Journals,
    Registers,
}

pub struct EtcdTarget {
    binary: PathBuf,
    servers: Arc<ServerSet>,
    serializable: bool,
    op_timeout: Duration,
    seed: u64,
    kind: Kind,
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// The end of the key range of every key starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    let last = bytes.last_mut().expect("a prefix is not empty");
    *last += 1;
    B64.encode(bytes)
}

fn unb64(v: &Json) -> Option<String> {
    B64.decode(v.as_str()?)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// An int64 of the gateway (encoded as a JSON string), absent meaning 0.
fn int(v: &Json) -> i64 {
    match v {
        Json::String(s) => s.parse().unwrap_or(0),
        Json::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn account_key(a: u32) -> String {
    format!("{ACCOUNT}{a:06}")
}

impl EtcdTarget {
    /// Members' arguments: every peer named by host, the cluster token from the seed.
    fn specs(&self, plan: &StartPlan) -> Result<Vec<ProcessSpec>, TargetError> {
        let peers = self.servers.peer_listen_addrs();
        let names: Vec<String> = plan.listen.keys().cloned().collect();
        // The port every member dials for each peer: the same from every source.
        let port_of = |dst: &str| {
            let from = names.iter().find(|n| *n != dst).unwrap_or(&names[0]);
            plan.links.dial(&Endpoint::Node(from.clone()), dst).port()
        };
        let cluster: Vec<String> = names
            .iter()
            .map(|n| format!("{n}=http://{n}.verity:{}", port_of(n)))
            .collect();
        let mut specs = Vec::new();
        for (node, client) in &plan.listen {
            let hosts_path = plan.data_dir.join(format!("{node}.hosts"));
            let mut hosts = format!("127.0.0.1 localhost\n127.0.0.1 {node}.verity\n");
            for peer in names.iter().filter(|p| *p != node) {
                let at = plan.links.dial(&Endpoint::Node(node.clone()), peer);
                hosts += &format!("{} {peer}.verity\n", at.ip());
            }
            std::fs::write(&hosts_path, hosts).map_err(|e| {
                TargetError::Setup(format!("cannot write {}: {e}", hosts_path.display()))
            })?;
            let peer_listen = peers[node];
            let args = vec![
                "--name".to_string(),
                node.clone(),
                "--data-dir".into(),
                plan.data_dir.join(node).display().to_string(),
                "--listen-client-urls".into(),
                format!("http://{client}"),
                "--advertise-client-urls".into(),
                format!("http://{client}"),
                "--listen-peer-urls".into(),
                format!("http://{peer_listen}"),
                "--initial-advertise-peer-urls".into(),
                format!("http://{node}.verity:{}", port_of(node)),
                "--initial-cluster".into(),
                cluster.join(","),
                "--initial-cluster-state".into(),
                "new".into(),
                "--initial-cluster-token".into(),
                format!("verity-{}", self.seed),
                "--heartbeat-interval".into(),
                "50".into(),
                "--election-timeout".into(),
                "500".into(),
                "--logger".into(),
                "zap".into(),
                "--log-outputs".into(),
                "stderr".into(),
                "--log-level".into(),
                "warn".into(),
            ];
            let mut spec = ProcessSpec::new(
                node.clone(),
                self.binary.clone(),
                plan.log_dir.join(format!("{node}.log")),
            )
            .args(args);
            spec.cwd = Some(plan.data_dir.clone());
            spec.hosts = Some(hosts_path);
            specs.push(spec);
        }
        Ok(specs)
    }

    async fn start(&self, plan: StartPlan) -> Result<Arc<Supervisor>, TargetError> {
        let specs = self.specs(&plan)?;
        let supervisor = Arc::new(Supervisor::new(specs, plan.registry.clone()));
        for node in plan.listen.keys() {
            supervisor
                .start(node)
                .map_err(|e| TargetError::Setup(e.to_string()))?;
        }
        for (node, addr) in &plan.listen {
            let log = plan.log_dir.join(format!("{node}.log"));
            let exited = || supervisor.exited(node).map(|s| s.to_string());
            wait_for_port(*addr, STARTUP_TIMEOUT, &log, exited).await?;
        }
        Ok(supervisor)
    }

    fn gateway(&self) -> Gateway {
        Gateway::new(
            self.servers
                .names()
                .iter()
                .map(|n| self.servers.client_addr(n))
                .collect(),
            0,
        )
    }
}

#[async_trait]
impl Target for EtcdTarget {
    fn name(&self) -> &'static str {
        "etcd"
    }

    async fn setup(&self, init: &Invocation) -> Result<Completion, TargetError> {
        self.servers.start(|plan| self.start(plan)).await?;
        let mut g = self.gateway();
        let balances = init
            .value
            .get("balances")
            .and_then(Value::as_i64_list)
            .unwrap_or_default();
        let puts: Vec<Json> = balances
            .iter()
            .enumerate()
            .map(|(i, b)| put(&account_key(i as u32), &b.to_string()))
            .collect();
        // The first leader may take a while: retry until the cluster answers. verity's keys of an
        // earlier run go first (a txn may not delete and put one key).
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let clear = json!({"key": b64(PREFIX), "range_end": prefix_end(PREFIX)});
        let body = json!({"compare": [], "success": puts});
        loop {
            let done = match g.call("/v3/kv/deleterange", &clear, deadline).await {
                Ok(_) => g.call("/v3/kv/txn", &body, deadline).await,
                Err(e) => Err(e),
            };
            match done {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    return Err(TargetError::Setup(format!(
                    "the etcd cluster did not accept the accounts within {STARTUP_TIMEOUT:?}: {}; \
                         its logs are in {}",
                    e.why,
                    self.servers.log_dir().display()
                )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(Completion::ok(init.value.clone()))
    }

    async fn client(&self, worker: usize) -> Result<Box<dyn Client>, TargetError> {
        let mut g = self.gateway();
        g.cursor = worker % g.members.len().max(1);
        Ok(Box::new(EtcdClient {
            gateway: g,
            serializable: self.serializable,
            op_timeout: self.op_timeout,
            kind: self.kind,
            accounts: None,
        }))
    }

    async fn teardown(&self) -> Result<(), TargetError> {
        self.servers.stop().await
    }

    fn nodes(self: Arc<Self>) -> Option<Arc<dyn Nodes>> {
        Some(self.servers.clone() as Arc<dyn Nodes>)
    }
}

fn put(key: &str, value: &str) -> Json {
    json!({"request_put": {"key": b64(key), "value": b64(value)}})
}

fn range(prefix: &str, serializable: bool, revision: Option<i64>) -> Json {
    let mut r =
        json!({"key": b64(prefix), "range_end": prefix_end(prefix), "serializable": serializable});
    if let Some(rev) = revision {
        r["revision"] = json!(rev.to_string());
    }
    r
}

/// Why a gateway call failed, and whether the request may have reached a member.
#[derive(Debug)]
struct CallError {
    why: String,
    /// Sent to a member that may have acted on it.
    sent: bool,
}

/// The members' client addresses, and which one is tried first.
struct Gateway {
    members: Vec<SocketAddr>,
    cursor: usize,
    http: reqwest::Client,
}

impl Gateway {
    fn new(members: Vec<SocketAddr>, cursor: usize) -> Gateway {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            .pool_max_idle_per_host(1)
            .build()
            .expect("a plain HTTP client builds");
        Gateway {
            members,
            cursor,
            http,
        }
    }

    /// Posts to the current member, moving on to the next after a failure, until `deadline`. A
    /// read may be sent again; a write (`once`) is sent to at most one member: after a send whose
    /// answer was lost, trying again could see the first attempt's own effect as a conflict.
    async fn call(
        &mut self,
        path: &str,
        body: &Json,
        deadline: Instant,
    ) -> Result<Json, CallError> {
        self.call_with(path, body, deadline, false).await
    }

    async fn call_once(
        &mut self,
        path: &str,
        body: &Json,
        deadline: Instant,
    ) -> Result<Json, CallError> {
        self.call_with(path, body, deadline, true).await
    }

    async fn call_with(
        &mut self,
        path: &str,
        body: &Json,
        deadline: Instant,
        once: bool,
    ) -> Result<Json, CallError> {
        let mut sent = false;
        let mut last = String::from("no member answered");
        for _ in 0..1024 {
            if Instant::now() >= deadline {
                break;
            }
            let member = self.members[self.cursor % self.members.len()];
            let url = format!("http://{member}{path}");
            match self.http.post(&url).json(body).send().await {
                Ok(r) if r.status().is_success() => match r.json::<Json>().await {
                    Ok(j) => return Ok(j),
                    Err(e) => {
                        sent = true;
                        last = format!("{url}: an answer that is not JSON ({e})");
                    }
                },
                Ok(r) => {
                    // The gateway's gRPC errors: unavailable, no leader, timed out.
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    sent = true;
                    last = format!(
                        "{url}: HTTP {status}: {}",
                        text.chars().take(160).collect::<String>()
                    );
                }
                Err(e) => {
                    sent |= !e.is_connect();
                    last = format!("{url}: {}", crate::error_chain(&e));
                }
            }
            self.cursor += 1;
            if once && sent {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(CallError { why: last, sent })
    }
}

/// A worker's client.
struct EtcdClient {
    gateway: Gateway,
    serializable: bool,
    op_timeout: Duration,
    kind: Kind,
    /// The number of accounts, learnt at the first read.
    accounts: Option<usize>,
}

/// The key-values of a range response.
fn kvs(range: &Json) -> Vec<(String, String, i64)> {
    range["kvs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|kv| {
                    Some((
                        unb64(&kv["key"])?,
                        unb64(&kv["value"]).unwrap_or_default(),
                        int(&kv["mod_revision"]),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn txn_ranges(answer: &Json) -> Vec<&Json> {
    answer["responses"]
        .as_array()
        .map(|a| a.iter().map(|r| &r["response_range"]).collect())
        .unwrap_or_default()
}

impl EtcdClient {
    async fn transfer(&mut self, t: &Transfer) -> Completion {
        let op_value = Value::Transfer(*t);
        let deadline = Instant::now() + self.op_timeout;
        let (from, to, id_key) = (
            account_key(t.from),
            account_key(t.to),
            format!("{TRANSFER}{}", t.id),
        );
        let mut unknown: Option<String> = None;
        for _ in 0..256 {
            // Read both balances and whether this transfer was applied already, at one revision.
            let read = json!({"compare": [], "success": [
                {"request_range": {"key": b64(&from)}},
                {"request_range": {"key": b64(&to)}},
                {"request_range": {"key": b64(&id_key)}},
            ]});
            let seen = match self.gateway.call("/v3/kv/txn", &read, deadline).await {
                Ok(a) => a,
                Err(e) => return give_up(op_value, unknown, e),
            };
            let ranges = txn_ranges(&seen);
            let get = |i: usize| ranges.get(i).map(|r| kvs(r)).unwrap_or_default();
            if !get(2).is_empty() {
                // Applied before: by an attempt whose answer was lost.
                return Completion::ok(op_value);
            }
            let (Some(bf), Some(bt)) = (get(0).into_iter().next(), get(1).into_iter().next())
            else {
                return Completion::fail(op_value, "no-such-account");
            };
            let (Ok(balance_from), Ok(balance_to)) = (bf.1.parse::<i64>(), bt.1.parse::<i64>())
            else {
                return Completion::fail(op_value, "a balance that is not a number");
            };
            if balance_from < t.amount {
                return Completion::fail(op_value, "insufficient-funds");
            }
            let write = json!({
                "compare": [
                    {"key": b64(&from), "target": "MOD", "result": "EQUAL", "mod_revision": bf.2.to_string()},
                    {"key": b64(&to), "target": "MOD", "result": "EQUAL", "mod_revision": bt.2.to_string()},
                    {"key": b64(&id_key), "target": "VERSION", "result": "EQUAL", "version": "0"},
                ],
                "success": [
                    put(&from, &(balance_from - t.amount).to_string()),
                    put(&to, &(balance_to + t.amount).to_string()),
                    put(&id_key, "1"),
                ],
            });
            match self.gateway.call_once("/v3/kv/txn", &write, deadline).await {
                Ok(a) if a["succeeded"].as_bool() == Some(true) => return Completion::ok(op_value),
                // A lost race (or our own earlier attempt): read again and decide again.
                Ok(_) => {}
                Err(e) if e.sent => unknown = Some(e.why),
                Err(e) => return give_up(op_value, unknown, e),
            }
        }
        match unknown {
            Some(why) => Completion::info(op_value, format!("commit unknown: {why}")),
            None => Completion::fail(op_value, "gave up after 256 lost races"),
        }
    }

    async fn read(&mut self, final_read: bool) -> Completion {
        let op = if final_read {
            Value::map([("final", Value::Bool(true))])
        } else {
            Value::Null
        };
        let deadline = Instant::now() + self.op_timeout;
        let answer = if final_read {
            // Balances and the journal at one revision, through the log.
            let body = json!({"compare": [], "success": [
                {"request_range": range(ACCOUNT, false, None)},
                {"request_range": {"key": b64(TRANSFER), "range_end": prefix_end(TRANSFER), "keys_only": true}},
            ]});
            self.gateway.call("/v3/kv/txn", &body, deadline).await
        } else {
            self.gateway
                .call(
                    "/v3/kv/range",
                    &range(ACCOUNT, self.serializable, None),
                    deadline,
                )
                .await
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return Completion::fail(op, e.why),
        };
        let (accounts, journal) = if final_read {
            let r = txn_ranges(&answer);
            (
                r.first().map(|a| kvs(a)).unwrap_or_default(),
                r.get(1).map(|j| kvs(j)),
            )
        } else {
            (kvs(&answer), None)
        };
        let balances: Vec<i64> = accounts
            .iter()
            .filter_map(|(_, v, _)| v.parse().ok())
            .collect();
        if balances.len() != accounts.len() || balances.is_empty() {
            return Completion::fail(op, "balances that are not numbers, or none");
        }
        if let Some(n) = self.accounts {
            if n != balances.len() {
                return Completion::fail(
                    op,
                    format!("{} accounts where there were {n}", balances.len()),
                );
            }
        }
        self.accounts = Some(balances.len());
        let mut entries = vec![("balances", Value::int_list(balances))];
        if let Some(mut journal) = journal {
            journal.sort_by_key(|(k, _, rev)| (*rev, k.clone()));
            let ids: Vec<i64> = journal
                .iter()
                .filter_map(|(k, _, _)| k.strip_prefix(TRANSFER)?.parse().ok())
                .collect();
            entries.push(("applied", Value::int_list(ids)));
        }
        Completion::ok(Value::map(entries))
    }

    fn key_of(&self, m: &MicroOp) -> String {
        match (self.kind, m.f) {
            (Kind::Registers, _) | (_, MopF::Write) => format!("{REGISTER}{}", m.key),
            _ => format!("{JOURNAL}{}", m.key),
        }
    }

    async fn txn(&mut self, op: &Invocation) -> Completion {
        let Some(mops) = op.value.micro_ops() else {
            return Completion::fail(op.value.clone(), "malformed-txn");
        };
        let mops = mops.into_owned();
        let read_only = mops.iter().all(|m| m.f == MopF::Read);
        let deadline = Instant::now() + self.op_timeout;
        let mut keys: Vec<String> = mops.iter().map(|m| self.key_of(m)).collect();
        keys.sort();
        keys.dedup();
        // Read every key at one revision: serializable reads from this member alone when so asked.
        let serializable = self.serializable && read_only;
        let mut seen: BTreeMap<String, (Option<String>, i64)> = BTreeMap::new();
        let mut revision = None;
        for k in &keys {
            let mut body = json!({"key": b64(k), "serializable": serializable});
            if let Some(rev) = revision {
                body["revision"] = json!(format!("{rev}"));
            }
            let answer = match self.gateway.call("/v3/kv/range", &body, deadline).await {
                Ok(a) => a,
                Err(e) => return Completion::fail(op.value.clone(), e.why),
            };
            revision.get_or_insert(int(&answer["header"]["revision"]));
            let kv = kvs(&answer).into_iter().next();
            seen.insert(
                k.clone(),
                (
                    kv.as_ref().map(|(_, v, _)| v.clone()),
                    kv.map_or(0, |(_, _, r)| r),
                ),
            );
        }
        let mut state: BTreeMap<String, Option<String>> = seen
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect();
        let mut reads = Vec::new();
        let mut puts = Vec::new();
        for m in &mops {
            let k = self.key_of(m);
            let current = state.get(&k).cloned().flatten();
            match (m.f, &m.value) {
                (MopF::Read, _) if self.kind == Kind::Registers => reads.push(
                    current
                        .and_then(|v| v.parse().ok())
                        .map_or(Value::Null, Value::Int),
                ),
                (MopF::Read, _) => reads.push(Value::int_list(journal_of(current.as_deref()))),
                (MopF::Append, MopValue::Int(v)) => {
                    let mut j = journal_of(current.as_deref());
                    j.push(*v);
                    let text = serde_json::to_string(&j).unwrap_or_default();
                    state.insert(k.clone(), Some(text.clone()));
                    puts.push((k, text));
                }
                (MopF::Write, MopValue::Int(v)) => {
                    state.insert(k.clone(), Some(v.to_string()));
                    puts.push((k, v.to_string()));
                }
                _ => return Completion::fail(op.value.clone(), "unsupported micro-op"),
            }
        }
        if !read_only {
            let compare: Vec<Json> = seen
                .iter()
                .map(|(k, (_, rev))| json!({"key": b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string()}))
                .collect();
            let mut last_put: BTreeMap<String, String> = BTreeMap::new();
            for (k, v) in puts {
                last_put.insert(k, v);
            }
            let success: Vec<Json> = last_put.iter().map(|(k, v)| put(k, v)).collect();
            let body = json!({"compare": compare, "success": success});
            match self.gateway.call_once("/v3/kv/txn", &body, deadline).await {
                Ok(a) if a["succeeded"].as_bool() == Some(true) => {}
                Ok(_) => {
                    return Completion::fail(
                        op.value.clone(),
                        "conflict: a key changed since it was read",
                    )
                }
                Err(e) if e.sent => {
                    return Completion::info(op.value.clone(), format!("commit unknown: {}", e.why))
                }
                Err(e) => return Completion::fail(op.value.clone(), e.why),
            }
        }
        Completion::ok(MicroOp::completed(&mops, reads))
    }
}

/// The end of an attempt that could not go on: `info` if an earlier attempt may have committed.
fn give_up(value: Value, unknown: Option<String>, e: CallError) -> Completion {
    match unknown {
        Some(why) => Completion::info(value, format!("commit unknown: {why}")),
        None => Completion::fail(value, e.why),
    }
}

fn journal_of(text: Option<&str>) -> Vec<i64> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

#[async_trait]
impl Client for EtcdClient {
    async fn invoke(&mut self, op: &Invocation) -> Completion {
        match (&op.f, &op.value) {
            (F::Transfer, Value::Transfer(t)) => {
                let t = *t;
                self.transfer(&t).await
            }
            (F::Read, v) => {
                let final_read = matches!(v.get("final"), Some(Value::Bool(true)));
                self.read(final_read).await
            }
            (F::Txn, _) => self.txn(op).await,
            _ => Completion::fail(op.value.clone(), "unsupported-operation"),
        }
    }
}

/// Reads one member's own state (a serializable read: that member alone answers).
struct StateReader {
    kind: Kind,
}

#[async_trait]
impl NodeStateReader for StateReader {
    async fn read(&self, _node: &str, addr: SocketAddr) -> Result<Value, String> {
        let mut g = Gateway::new(vec![addr], 0);
        g.http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(2);
        let first = g
            .call("/v3/kv/range", &range(ACCOUNT, true, None), deadline)
            .await
            .map_err(|e| e.why)?;
        let rev = int(&first["header"]["revision"]);
        let mut journal = g
            .call("/v3/kv/range", &range(TRANSFER, true, Some(rev)), deadline)
            .await
            .map(|a| kvs(&a))
            .map_err(|e| e.why)?;
        journal.sort_by_key(|(k, _, r)| (*r, k.clone()));
        let balances: Vec<i64> = kvs(&first)
            .iter()
            .filter_map(|(_, v, _)| v.parse().ok())
            .collect();
        let applied: Vec<i64> = journal
            .iter()
            .filter_map(|(k, _, _)| k.strip_prefix(TRANSFER)?.parse().ok())
            .collect();
        let mut entries = vec![
            ("balances", Value::int_list(balances)),
            ("applied", Value::int_list(applied)),
        ];
        if self.kind != Kind::Bank {
            let prefix = if self.kind == Kind::Registers {
                REGISTER
            } else {
                JOURNAL
            };
            let store = g
                .call("/v3/kv/range", &range(prefix, true, Some(rev)), deadline)
                .await
                .map_err(|e| e.why)?;
            let map: BTreeMap<String, Value> = kvs(&store)
                .into_iter()
                .filter_map(|(k, v, _)| {
                    let key = k.strip_prefix(prefix)?.to_string();
                    let value = if self.kind == Kind::Registers {
                        v.parse().map_or(Value::Null, Value::Int)
                    } else {
                        Value::int_list(journal_of(Some(&v)))
                    };
                    Some((key, value))
                })
                .collect();
            entries.push(("store", Value::map(map)));
        }
        Ok(Value::map(entries))
    }

    /// Every member says who it is and whom it follows; the member that has seen the latest term
    /// knows the current leader.
    async fn primary(&self, nodes: &[(String, SocketAddr)]) -> Option<String> {
        let mut ids = BTreeMap::new();
        let mut best: Option<(i64, String)> = None;
        for (node, addr) in nodes {
            let mut g = Gateway::new(vec![*addr], 0);
            let deadline = Instant::now() + Duration::from_millis(500);
            let Ok(status) = g
                .call("/v3/maintenance/status", &serde_json::json!({}), deadline)
                .await
            else {
                continue;
            };
            let id = status["header"]["member_id"].as_str().unwrap_or_default();
            ids.insert(id.to_string(), node.clone());
            let term = int(&status["raftTerm"]);
            let leader = status["leader"].as_str().unwrap_or_default().to_string();
            if !leader.is_empty() && leader != "0" && best.as_ref().is_none_or(|(t, _)| term > *t) {
                best = Some((term, leader));
            }
        }
        let (_, leader) = best?;
        ids.get(&leader).cloned()
    }
}
