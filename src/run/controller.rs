//! `verity run`: drive a workload against a target and record every operation.
//!
//! Phases, as in Jepsen: setup (the workload's initial state, recorded as a `setup` op), main (N
//! concurrent workers, each with its own client, generator and seeded RNG, paced by `--rate`, until
//! `--time-limit` or Ctrl-C), final reads, teardown. A client call that outlives `--op-timeout` is
//! recorded as `info` and its process retires: the worker continues under a new process id
//! (old + concurrency), because a crashed process never issues again. The history is fsynced at every
//! phase boundary; the verdict is then computed from the file on disk by the same code as
//! `verity check`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;
use verity_history::jsonl::{HistoryWriter, Recorder, WriterOptions};
use verity_history::{Completion, Event, EventType, Invocation, Process};
use verity_nemesis::{FaultKind, Nodes, ProxyMesh};
use verity_targets::registry::{TargetEntry, TargetOptions};
use verity_targets::{Client, Target, TargetError};
use verity_workloads::registry::WorkloadOptions;
use verity_workloads::{bank::BankConfig, Generator, Workload};

use super::RunArgs;
use crate::clock::Clock;
use crate::exit::{Failure, Outcome};
use crate::progress::{Counters, Progress};
use crate::store::{self, RunMeta};
use crate::{check, plan};

use super::faults;

/// How long the target may take to set up, and a final read to answer.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
const FINAL_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Final reads are retried this many times (a fresh process after an `info`) before giving up.
const FINAL_READ_ATTEMPTS: usize = 5;

pub fn run(args: RunArgs) -> Result<Outcome, Failure> {
    let (args, original) = match &args.replay {
        Some(dir) => {
            let (replay, original) = super::replay::prepare(&args, dir)?;
            (replay, Some(original))
        }
        None => (args, None),
    };
    let executed = execute(&args)?;
    crate::failpoint::reached("check");
    let results = check::judge_run_dir(&executed.dir, &args.check_settings())?;
    store::mark_done(&executed.dir);
    store::update_latest(&args.store, &executed.dir)?;
    tracing::info!(valid = ?results.valid, anomalies = ?results.anomaly_types, "checked");
    let mut lines = Vec::new();
    if executed.report.interrupted {
        lines.push("(interrupted: the main phase was cut short)".to_string());
    }
    lines.push(format!("run directory: {}", executed.dir.display()));
    lines.push(format!(
        "report:        {}",
        executed.dir.join(store::REPORT_FILE).display()
    ));
    lines.push(format!("reproduce:     {}", executed.meta.command));
    if let Some(original) = &original {
        lines.push(super::replay::compare(
            original,
            results.valid,
            &results.anomaly_types,
        ));
    }
    args.output.emit(&results, &lines)?;
    Ok(Outcome::Verdict(results.valid))
}

/// A run that has happened: where it is stored, what it was asked, and what the main phase did.
pub struct Executed {
    pub dir: PathBuf,
    pub meta: RunMeta,
    pub report: DriveReport,
    /// Kept alive while the history is checked, so that its signal handler can still abort.
    _runtime: tokio::runtime::Runtime,
}

/// Runs every phase and writes the history and run.json; checking is the caller's.
pub fn execute(args: &RunArgs) -> Result<Executed, Failure> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let entry = args.target_entry()?;
    let workload = build_workload(args)?;
    let params = args.target_options.params();
    let faults = validate_target(args, entry, &params)?;
    // Replicas must converge once faults heal: judged where each node's own state can be read.
    let extra: &[&str] = if entry.node_states && runs_nodes(entry, &params) {
        &["convergence"]
    } else {
        &[]
    };
    let checkers = plan::checker_names(&args.check_settings(), Some(&args.workload), extra)?;

    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S").to_string();
    let dir = store::create_run_dir(&args.store, &args.target, &args.workload, &stamp)?;
    init_logging(&dir.join(store::LOG_FILE))?;
    let run_args = reproduce_args(args, seed);
    let meta = RunMeta {
        verity_version: env!("CARGO_PKG_VERSION").to_string(),
        target: args.target.clone(),
        workload: args.workload.clone(),
        bugs: args.bugs.clone(),
        seed,
        command: reproduce_command(&run_args),
        args: run_args,
        host: Some(store::Host::this()),
        target_options: params.clone(),
        started_at: chrono::Local::now().to_rfc3339(),
        time_limit_s: args.time_limit.as_secs_f64(),
        concurrency: args.concurrency,
        rate: args.rate,
        op_timeout_s: args.op_timeout().as_secs_f64(),
        accounts: args.accounts,
        hot: args.hot,
        nodes: params
            .get("nodes")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        nemesis: faults.iter().map(|f| f.as_str().to_string()).collect(),
        nemesis_interval_s: args.nemesis_interval.as_secs_f64(),
        checkers,
    };
    store::write_json(&dir.join(store::META_FILE), &meta)?;
    store::mark_running(&dir)?;
    // From here on the run exists, crashed or not: `latest` finds it, even while its servers start.
    let previous = std::fs::read_link(args.store.join("latest")).ok();
    store::update_latest(&args.store, &dir)?;
    crate::failpoint::arm(&dir);
    let system = match build_target(args, entry, params, seed, &dir) {
        Ok(s) => s,
        Err(e @ Failure::BadInput(_)) => {
            // Bad input leaves no run behind (a server binary that is not installed, say), and
            // `latest` where it was.
            let _ = std::fs::remove_dir_all(&dir);
            store::restore_latest(&args.store, previous.as_deref());
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    crate::failpoint::reached("start");
    tracing::info!(dir = %dir.display(), seed, command = %meta.command, "run starting");
    if !args.quiet {
        eprintln!("verity: run {} (seed {seed})", dir.display());
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let drive = runtime.block_on(drive(
        args,
        entry,
        seed,
        system,
        &faults,
        workload.as_ref(),
        &dir,
    ));
    DRIVE_DONE.store(true, Ordering::Relaxed);
    let report = drive.map_err(|e| {
        tracing::error!("run failed: {e:#}");
        // A target that finds, once started, that it was asked the impossible (an adapter that
        // does not serve the workload, a program that is not there) is bad input, not a crash.
        let bad_input = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<TargetError>(),
                Some(TargetError::BadOptions(_) | TargetError::Unavailable { .. })
            )
        });
        let e = e.context(format!("the run in {} failed", dir.display()));
        if bad_input {
            Failure::bad_input(format!("{e:#}"))
        } else {
            Failure::Harness(e)
        }
    })?;
    tracing::info!(
        events = report.events,
        interrupted = report.interrupted,
        "history complete"
    );
    store::write_json(&dir.join(store::PERF_FILE), &report.main.to_json())?;
    Ok(Executed {
        dir,
        meta,
        report,
        _runtime: runtime,
    })
}

fn build_workload(args: &RunArgs) -> Result<Box<dyn Workload>, Failure> {
    let options = WorkloadOptions {
        bank: BankConfig {
            accounts: args.accounts,
            hot: args.hot,
            ..BankConfig::default()
        },
        ..WorkloadOptions::default()
    };
    verity_workloads::registry::create(&args.workload, &options).ok_or_else(|| {
        Failure::bad_input(format!(
            "unknown workload {:?}: valid choices are {}",
            args.workload,
            verity_workloads::registry::names().join(", ")
        ))
    })
}

/// Whether a run of `entry` with these options starts nodes that the nemesis can fault (not when it
/// connects to a server it did not start).
fn runs_nodes(entry: &TargetEntry, params: &std::collections::BTreeMap<String, String>) -> bool {
    entry.nodes && !params.contains_key("url")
}

/// Checks the target, its workload, options and bug knobs and the nemesis before anything is
/// created, so bad input leaves no run directory behind. Returns the fault kinds of the run.
fn validate_target(
    args: &RunArgs,
    entry: &TargetEntry,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<FaultKind>, Failure> {
    if !entry.serves(&args.workload) {
        return Err(Failure::bad_input(format!(
            "target {} does not serve workload {}: it serves {}",
            entry.name,
            args.workload,
            entry.workloads.join(", ")
        )));
    }
    verity_targets::registry::check_params(entry, params)
        .map_err(|e| Failure::bad_input(e.to_string()))?;
    let knobs = (entry.bugs)(&args.workload);
    for b in &args.bugs {
        if !knobs.iter().any(|(n, _)| n == b) {
            let names: Vec<&str> = knobs.iter().map(|(n, _)| *n).collect();
            if names.is_empty() {
                return Err(Failure::bad_input(format!(
                    "target {} has no bug knobs (a real server is made unsafe by its options: see `verity list`)",
                    entry.name
                )));
            }
            return Err(Failure::bad_input(format!(
                "unknown bug knob {b:?} for target {} with workload {}: valid choices are {}",
                entry.name,
                args.workload,
                names.join(", ")
            )));
        }
    }
    let nodes = runs_nodes(entry, params);
    let requested = args.nemesis.clone().unwrap_or_else(|| {
        if nodes {
            entry.default_nemesis.to_string()
        } else {
            "none".to_string()
        }
    });
    if requested == "none" || requested.is_empty() {
        return Ok(Vec::new());
    }
    if !nodes {
        let why = if entry.nodes {
            "it connects to a server verity did not start (--url)".to_string()
        } else {
            let with_nodes: Vec<&str> = verity_targets::registry::TARGETS
                .iter()
                .filter(|t| t.nodes)
                .map(|t| t.name)
                .collect();
            format!(
                "it runs no nodes (targets with nodes: {})",
                with_nodes.join(", ")
            )
        };
        return Err(Failure::bad_input(format!(
            "--nemesis needs nodes to fault, and target {} has none: {why}; pass --nemesis none",
            entry.name
        )));
    }
    FaultKind::parse_list(&requested).map_err(|e| Failure::bad_input(e.to_string()))
}

/// The system under test as the controller drives it: the target, and the nodes the nemesis and the
/// convergence reads act on when it runs any.
struct System {
    target: Arc<dyn Target>,
    nodes: Option<Arc<dyn Nodes>>,
}

fn build_target(
    args: &RunArgs,
    entry: &TargetEntry,
    params: std::collections::BTreeMap<String, String>,
    seed: u64,
    dir: &Path,
) -> Result<System, Failure> {
    let options = TargetOptions {
        bugs: args.bugs.clone(),
        seed: seed ^ 0x7461_7267_6574,
        workload: args.workload.clone(),
        dir: Some(dir.join(entry.name)),
        state_dir: Some(faults::state_dir(&args.store)),
        op_timeout: Some(args.op_timeout()),
        params,
    };
    match (entry.create)(&options) {
        Err(
            e @ (TargetError::UnknownBug { .. }
            | TargetError::Unavailable { .. }
            | TargetError::BadOptions(_)),
        ) => Err(Failure::bad_input(e.to_string())),
        Err(e) => Err(Failure::Harness(anyhow::anyhow!(
            "cannot create target {}: {e}",
            entry.name
        ))),
        Ok(target) => Ok(System {
            nodes: target.clone().nodes(),
            target,
        }),
    }
}

/// The arguments of `verity run` that reproduce a run: every option that shapes it, and the seed.
pub fn reproduce_args(args: &RunArgs, seed: u64) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut opt = |name: &str, value: String| {
        a.push(format!("--{name}"));
        a.push(value);
    };
    opt("target", args.target.clone());
    opt("workload", args.workload.clone());
    for b in &args.bugs {
        opt("bug", b.clone());
    }
    opt("time-limit", crate::args::format_duration(args.time_limit));
    opt("concurrency", args.concurrency.to_string());
    opt("rate", args.rate.to_string());
    opt(
        "op-timeout",
        crate::args::format_duration(args.op_timeout()),
    );
    opt("accounts", args.accounts.to_string());
    let params = args.target_options.params();
    for (k, v) in &params {
        opt(k, v.clone());
    }
    if let Ok(entry) = args.target_entry() {
        if runs_nodes(entry, &params) {
            let nemesis = args.nemesis.as_deref().unwrap_or(entry.default_nemesis);
            opt("nemesis", nemesis.to_string());
            opt(
                "nemesis-interval",
                crate::args::format_duration(args.nemesis_interval),
            );
            opt("recovery", crate::args::format_duration(args.recovery));
        }
    }
    if args.ops > 0 {
        opt("ops", args.ops.to_string());
    }
    if args.hot > 0.0 {
        opt("hot", args.hot.to_string());
    }
    if !args.checker.is_empty() {
        opt("checker", args.checker.join(","));
    }
    if let Some(compress) = args.compress {
        opt("compress", compress.to_string());
    }
    if args.store != Path::new("results") {
        opt("store", args.store.display().to_string());
    }
    opt("seed", seed.to_string());
    a
}

/// The shell command that reproduces a run (values quoted where the shell needs it).
pub fn reproduce_command(args: &[String]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| shlex::try_quote(a).map_or_else(|_| a.clone(), |q| q.into_owned()))
        .collect();
    format!("verity run {}", quoted.join(" "))
}

fn init_logging(path: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("VERITY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second run in the same process (tests) keeps the first subscriber; that is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

/// What the drive did, for the log and for `verity bench`.
pub struct DriveReport {
    pub events: u64,
    pub interrupted: bool,
    pub main: MainStats,
}

/// The main phase alone: its operations, duration, and the controller's resident memory around it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MainStats {
    pub ops: u64,
    pub duration: Duration,
    pub rss_before_bytes: u64,
    /// CPU time (user + system) the controller spent during the main phase.
    pub cpu: Duration,
    /// CPU time the whole machine spent busy during the main phase (every process).
    pub machine_cpu: Duration,
    pub rss_after_bytes: u64,
}

impl MainStats {
    /// The harness's own throughput and memory, for perf.json.
    pub fn to_json(self) -> serde_json::Value {
        let secs = self.duration.as_secs_f64().max(1e-9);
        let grown = self.rss_after_bytes.saturating_sub(self.rss_before_bytes);
        serde_json::json!({
            "main_ops": self.ops,
            "main_duration_s": secs,
            "ops_per_s": self.ops as f64 / secs,
            "rss_before_main_bytes": self.rss_before_bytes,
            "rss_after_main_bytes": self.rss_after_bytes,
            "rss_growth_bytes_per_op": grown as f64 / self.ops.max(1) as f64,
            "harness_cpu_s": self.cpu.as_secs_f64(),
            // Cores of CPU the harness itself used while driving the target (1.0 = one core busy).
            "harness_cores": self.cpu.as_secs_f64() / secs,
            // Cores the whole machine kept busy meanwhile (harness, servers, anything else).
            "machine_cores_busy": self.machine_cpu.as_secs_f64() / secs,
            "harness_share_of_busy_cpu": self.cpu.as_secs_f64() / self.machine_cpu.as_secs_f64().max(1e-9),
        })
    }
}

/// CPU time (user + system) this process has used, from /proc (zero where unavailable).
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15, the 12th and 13th after the command name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / clock_ticks_per_s())
}

/// CPU time the machine has spent busy (every mode but idle and iowait), from /proc/stat.
pub fn machine_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return Duration::ZERO;
    };
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: busy is all but idle (3) and iowait (4).
    let busy: u64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, v)| v)
        .sum();
    Duration::from_nanos(busy.saturating_mul(1_000_000_000) / clock_ticks_per_s())
}

fn clock_ticks_per_s() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|h| *h > 0)
        .unwrap_or(100) as u64
}

/// The resident set size of this process, from /proc (0 where unavailable).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Everything a worker needs, shared.
struct Shared {
    recorder: Recorder,
    clock: Clock,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    op_timeout: Duration,
    concurrency: u64,
    /// `--ops`: main-phase operations to start in all (0 = no limit), and how many have started.
    ops_max: u64,
    started_ops: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn record(
        &self,
        process: u64,
        kind: EventType,
        inv: &Invocation,
        c: Option<&Completion>,
    ) -> anyhow::Result<()> {
        let (value, error) = match c {
            Some(c) => (c.value.clone(), c.error.clone()),
            None => (inv.value.clone(), None),
        };
        self.recorder
            .record(Event {
                index: 0,
                time_ns: self.clock.now_ns(),
                process: Process::Client(process),
                kind,
                f: inv.f.clone(),
                value,
                error,
            })
            .context("cannot record the history")
    }

    /// Invokes one operation and records both halves. Returns the completion's kind.
    async fn invoke(
        &self,
        client: &mut dyn Client,
        process: u64,
        inv: &Invocation,
        timeout: Duration,
    ) -> anyhow::Result<EventType> {
        self.record(process, EventType::Invoke, inv, None)?;
        let c = match tokio::time::timeout(timeout, client.invoke(inv)).await {
            Ok(c) => c,
            Err(_) => Completion::info(inv.value.clone(), "timeout"),
        };
        assert_ne!(
            c.kind,
            EventType::Invoke,
            "a client answered with an invocation"
        );
        self.record(process, c.kind, inv, Some(&c))?;
        let counter = match c.kind {
            EventType::Ok => &self.counters.ok,
            EventType::Fail => &self.counters.fail,
            _ => &self.counters.info,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(c.kind)
    }
}

async fn drive(
    args: &RunArgs,
    entry: &TargetEntry,
    seed: u64,
    system: System,
    faults: &[FaultKind],
    workload: &dyn Workload,
    dir: &Path,
) -> anyhow::Result<DriveReport> {
    // Links go through the proxy mesh only when there are faults to put on them.
    let proxy = match &system.nodes {
        Some(nodes) if !faults.is_empty() => {
            Some(faults::route_through_proxy(nodes.as_ref(), seed).await?)
        }
        _ => None,
    };
    let target = system.target.clone();
    let compress = args.compress();
    let options = WriterOptions {
        compress,
        chain: (!args.no_chain).then(|| dir.join(store::CHAIN_FILE)),
    };
    let name = if compress {
        store::HISTORY_ZST_FILE
    } else {
        store::HISTORY_FILE
    };
    let writer = HistoryWriter::create_with(&dir.join(name), &options)
        .context("cannot create the history file")?;
    let shared = Arc::new(Shared {
        recorder: writer.recorder(),
        clock: Clock::start(),
        counters: Arc::new(Counters::default()),
        stop: Arc::new(AtomicBool::new(false)),
        // A client of a target with its own timeout answers `info` itself; this is the
        // controller's backstop.
        op_timeout: if entry.own_timeout {
            args.op_timeout() + Duration::from_secs(1)
        } else {
            args.op_timeout()
        },
        concurrency: u64::from(args.concurrency),
        ops_max: args.ops,
        started_ops: Default::default(),
    });
    let interrupted = Arc::new(AtomicBool::new(false));
    spawn_signal_handler(shared.stop.clone(), interrupted.clone());
    let fault_plan = FaultPlan {
        kinds: faults,
        proxy,
        store: &args.store,
    };
    let result = phases(args, seed, &system, &fault_plan, workload, &shared).await;
    let main = result.as_ref().map(|m| *m).unwrap_or_default();
    let teardown = target.teardown().await;
    let sync = shared.recorder.sync();
    drop(shared);
    let stats = writer.finish().context("cannot finish the history file")?;
    result?;
    sync.context("cannot sync the history")?;
    teardown.context("teardown failed")?;
    Ok(DriveReport {
        events: stats.events,
        interrupted: interrupted.load(Ordering::Relaxed),
        main,
    })
}

/// What the nemesis of a run needs.
struct FaultPlan<'a> {
    kinds: &'a [FaultKind],
    proxy: Option<Arc<ProxyMesh>>,
    store: &'a Path,
}

async fn phases(
    args: &RunArgs,
    seed: u64,
    system: &System,
    fault_plan: &FaultPlan<'_>,
    workload: &dyn Workload,
    shared: &Arc<Shared>,
) -> anyhow::Result<MainStats> {
    let target = &system.target;
    let progress = Progress::start(args.time_limit, args.quiet);

    // Setup.
    progress.phase("setup");
    let init = workload.setup();
    shared.record(0, EventType::Invoke, &init, None)?;
    let done = tokio::time::timeout(SETUP_TIMEOUT, target.setup(&init))
        .await
        .map_err(|_| anyhow::anyhow!("the target did not set up within {SETUP_TIMEOUT:?}"))?
        .context("target setup failed")?;
    shared.record(0, done.kind, &init, Some(&done))?;
    anyhow::ensure!(
        done.kind == EventType::Ok,
        "target setup answered {:?}: {:?}",
        done.kind,
        done.error
    );
    shared.recorder.sync().context("cannot sync the history")?;
    tracing::info!("setup done; main phase for {:?}", args.time_limit);
    crate::failpoint::reached("setup");

    // Main.
    let mut clients = Vec::with_capacity(args.concurrency as usize);
    for w in 0..args.concurrency as usize {
        clients.push(
            target
                .client(w)
                .await
                .with_context(|| format!("cannot open client {w}"))?,
        );
    }
    let deadline = Instant::now() + args.time_limit;
    let interval = (args.rate > 0)
        .then(|| Duration::from_secs_f64(f64::from(args.concurrency) / args.rate as f64));
    let mut tasks = tokio::task::JoinSet::new();
    for (w, client) in clients.into_iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(w as u64 + 1);
        let generator = workload.generator(w, args.concurrency as usize);
        let shared = shared.clone();
        tasks.spawn(
            async move { worker(w, client, generator, rng, shared, deadline, interval).await },
        );
    }
    let faults = match (&system.nodes, &fault_plan.proxy) {
        (Some(nodes), Some(proxy)) if !fault_plan.kinds.is_empty() => Some(faults::Faults::new(
            nodes.clone(),
            proxy.clone(),
            fault_plan.store,
            fault_plan.kinds,
            seed,
            args.nemesis_interval,
            args.time_limit,
        )?),
        _ => None,
    };
    let nemesis_task = faults
        .as_ref()
        .map(|f| f.spawn(Instant::now(), shared.recorder.clone(), shared.clock));
    let rss_before_bytes = rss_bytes();
    let cpu_before = cpu_time();
    let machine_before = machine_cpu_time();
    let started = std::time::Instant::now();
    let mut finals: Vec<(u64, Box<dyn Client>)> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next() => {
                if let Some(r) = joined {
                    finals.push(r.context("a worker panicked")??);
                }
            }
            _ = ticker.tick() => progress.update(started.elapsed(), &shared.counters),
        }
    }
    let main = MainStats {
        ops: shared.counters.total(),
        duration: started.elapsed(),
        rss_before_bytes,
        cpu: cpu_time().saturating_sub(cpu_before),
        machine_cpu: machine_cpu_time().saturating_sub(machine_before),
        rss_after_bytes: rss_bytes(),
    };
    tracing::info!(ops = main.ops, "main phase done");
    if let Some(task) = nemesis_task {
        task.abort();
        let _ = task.await;
    }
    if let Some(faults) = &faults {
        progress.phase("heal");
        faults.heal_all(&shared.recorder, &shared.clock).await?;
    }
    shared.recorder.sync().context("cannot sync the history")?;
    if faults.is_some() {
        // Give healed nodes time to elect a leader and catch up before judging them.
        progress.phase("recovery");
        tokio::time::sleep(args.recovery).await;
    }

    // Final reads, through the first worker's client under a fresh process id.
    progress.phase("final reads");
    crate::failpoint::reached("final-reads");
    finals.sort_by_key(|(p, _)| *p % shared.concurrency);
    let (last_process, mut client) = finals.into_iter().next().expect("at least one worker");
    let mut process = last_process + shared.concurrency;
    for inv in workload.final_reads() {
        for attempt in 1..=FINAL_READ_ATTEMPTS {
            let kind = shared
                .invoke(client.as_mut(), process, &inv, FINAL_READ_TIMEOUT)
                .await?;
            if kind == EventType::Ok {
                break;
            }
            tracing::warn!(attempt, ?kind, "final read did not succeed");
            if kind == EventType::Info {
                process += shared.concurrency;
            }
        }
    }
    if let Some(nodes) = &system.nodes {
        progress.phase("replica states");
        faults::read_node_states(nodes.as_ref(), &shared.recorder, &shared.clock).await?;
    }
    shared.recorder.sync().context("cannot sync the history")?;
    progress.finish();
    drop(faults);
    Ok(main)
}

/// One client worker: invoke, record, repeat until the deadline or a stop.
async fn worker(
    w: usize,
    mut client: Box<dyn Client>,
    mut generator: Box<dyn Generator>,
    mut rng: ChaCha8Rng,
    shared: Arc<Shared>,
    deadline: Instant,
    interval: Option<Duration>,
) -> anyhow::Result<(u64, Box<dyn Client>)> {
    let mut process = w as u64;
    let mut next_at = Instant::now();
    loop {
        if let Some(iv) = interval {
            // Stagger the start of each worker over one interval, then keep a steady pace without bursts.
            if next_at <= Instant::now() {
                next_at = Instant::now() + iv.mul_f64((w as f64 + 1.0) / shared.concurrency as f64);
            }
            tokio::time::sleep_until(next_at.min(deadline)).await;
            next_at += iv;
        }
        if shared.stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            break;
        }
        if shared.ops_max > 0
            && shared.started_ops.fetch_add(1, Ordering::Relaxed) >= shared.ops_max
        {
            break;
        }
        let inv = generator.next(&mut rng);
        if shared
            .invoke(client.as_mut(), process, &inv, shared.op_timeout)
            .await?
            == EventType::Info
        {
            process += shared.concurrency;
        }
    }
    Ok((process, client))
}

/// Set once the run's processes are gone (after teardown): from then on an interrupt has nothing to
/// heal and ends the process at once; the history is on disk for `verity check`.
static DRIVE_DONE: AtomicBool = AtomicBool::new(false);

/// Ctrl-C or SIGTERM ends the main phase early; healing, final reads and checks still run. A second
/// interrupt — or any interrupt once the run's processes are gone — aborts.
fn spawn_signal_handler(stop: Arc<AtomicBool>, interrupted: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        let mut signals = 0;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            signals += 1;
            if signals > 1 || DRIVE_DONE.load(Ordering::Relaxed) {
                eprintln!(
                    "verity: aborted (the history on disk can be judged with `verity check`)"
                );
                std::process::exit(i32::from(crate::exit::EXIT_HARNESS));
            }
            tracing::warn!("interrupted: ending the main phase, then heal and final reads");
            eprintln!("verity: interrupted — healing and finishing with final reads (interrupt again to abort)");
            interrupted.store(true, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
        }
    });
}
