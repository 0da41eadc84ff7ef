//! Every target by name, and what each one can do: one [`TargetEntry`] each, in the one registry
//! shape of [`verity_history::registry`].
//!
//! The binary asks an entry everything that differs between targets — which workloads it serves,
//! whether it runs nodes the nemesis can fault, its default nemesis and `--op-timeout`, its bug
//! knobs, which target options (`--isolation`, `--replicas`, …) it takes — and never spells a target's
//! name. A new target is one new file plus one entry here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use verity_history::registry::{Entry, Registry};

use crate::cluster::{ClusterOptions, ClusterTarget};
use crate::memory::MemoryTarget;
use crate::memory_txn::MemoryTxnTarget;
use crate::{Target, TargetError};

/// A bug knob: (name, what it makes wrong).
pub type Knob = (&'static str, &'static str);

/// A target-specific option of the command line (`--isolation serializable`).
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// The option's name without dashes, as on the command line.
    pub name: &'static str,
    pub about: &'static str,
    /// The values it accepts; empty means any value.
    pub values: &'static [&'static str],
    /// The target cannot run without it (`--cmd` of exec, `--url` of http).
    pub required: bool,
    /// Its value when not given; `None`: absent unless given.
    pub default: Option<&'static str>,
}

/// A target as the binary sees it.
pub struct TargetEntry {
    pub name: &'static str,
    pub about: &'static str,
    /// The workloads it serves.
    pub workloads: &'static [&'static str],
    /// It runs processes (nodes) that the nemesis can fault, unless told to connect to a server it
    /// did not start (`--url`).
    pub nodes: bool,
    /// After the final heal, each node's own state can be read, so the convergence checker judges
    /// whether the replicas agree.
    pub node_states: bool,
    /// `--nemesis` when not given.
    pub default_nemesis: &'static str,
    /// `--op-timeout` when not given.
    pub op_timeout: Duration,
    /// Its clients end an operation at `--op-timeout` themselves (answering `info` or, when certain,
    /// `fail`); the controller's own timeout is then only a backstop.
    pub own_timeout: bool,
    /// Its bug knobs when serving a workload.
    pub bugs: fn(workload: &str) -> &'static [Knob],
    /// The target options it takes.
    pub options: &'static [OptionSpec],
    pub create: fn(&TargetOptions) -> Result<Arc<dyn Target>, TargetError>,
}

impl Entry for TargetEntry {
    fn name(&self) -> &'static str {
        self.name
    }
    fn about(&self) -> &'static str {
        self.about
    }
}

impl TargetEntry {
    /// Every bug knob of the target over all its workloads, each once, with the workloads it
    /// applies to (for `verity list`).
    pub fn all_bugs(&self) -> Vec<(Knob, Vec<&'static str>)> {
        let mut out: Vec<(Knob, Vec<&'static str>)> = Vec::new();
        for w in self.workloads {
            for knob in (self.bugs)(w) {
                match out.iter_mut().find(|(k, _)| k.0 == knob.0) {
                    Some((_, ws)) => ws.push(w),
                    None => out.push((*knob, vec![w])),
                }
            }
        }
        out
    }

    pub fn option(&self, name: &str) -> Option<&'static OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }

    pub fn serves(&self, workload: &str) -> bool {
        self.workloads.contains(&workload)
    }
}

/// What a target is created with.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    pub bugs: Vec<String>,
    pub seed: u64,
    /// The workload the target will serve: some targets pick their implementation by it (the
    /// memory target is transactional for `ledger-append` and `rw-register`).
    pub workload: String,
    /// Where a target keeps data and node logs (`None`: a fresh directory under the system temp dir).
    pub dir: Option<PathBuf>,
    /// Where a target that starts processes records them for `verity heal` (`None`: nowhere).
    pub state_dir: Option<PathBuf>,
    /// How long a client may take over one operation (`None`: the entry's default).
    pub op_timeout: Option<Duration>,
    /// Target options given on the command line, by name (`isolation` → `serializable`), already
    /// checked against the entry's [`OptionSpec`]s.
    pub params: BTreeMap<String, String>,
}

impl TargetOptions {
    /// A target option's value: as given, or the default of `spec`.
    pub fn param<'a>(&'a self, spec: &'a OptionSpec) -> Option<&'a str> {
        self.params
            .get(spec.name)
            .map(String::as_str)
            .or(spec.default)
    }
}

/// Why target options were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("--{option} is not an option of target {target} (its options: {valid})")]
    NotAnOption {
        target: &'static str,
        option: String,
        valid: String,
    },
    #[error("--{option} {value:?} is not valid for target {target}: valid choices are {valid}")]
    BadValue {
        target: &'static str,
        option: String,
        value: String,
        valid: String,
    },
}

/// Checks target options against what the entry takes.
pub fn check_params(
    entry: &TargetEntry,
    params: &BTreeMap<String, String>,
) -> Result<(), OptionError> {
    for (name, value) in params {
        let Some(spec) = entry.option(name) else {
            let valid: Vec<String> = entry
                .options
                .iter()
                .map(|o| format!("--{}", o.name))
                .collect();
            return Err(OptionError::NotAnOption {
                target: entry.name,
                option: name.clone(),
                valid: if valid.is_empty() {
                    "none".into()
                } else {
                    valid.join(", ")
                },
            });
        };
        if !spec.values.is_empty() && !spec.values.contains(&value.as_str()) {
            return Err(OptionError::BadValue {
                target: entry.name,
                option: name.clone(),
                value: value.clone(),
                valid: spec.values.join(", "),
            });
        }
    }
    Ok(())
}

/// The transactional workloads (served by the transactional memory target).
const TXN_WORKLOADS: &[&str] = &["ledger-append", "rw-register"];
const ALL_WORKLOADS: &[&str] = &["bank", "ledger-append", "rw-register"];

const NODES: OptionSpec = OptionSpec {
    name: "nodes",
    about: "number of replicas",
    values: &[],
    required: false,
    default: Some("3"),
};

pub static TARGETS: Registry<TargetEntry> = Registry::new(
    "target",
    &[
        TargetEntry {
            name: "memory",
            about: "in-process ledger with bug knobs; nothing to install",
            workloads: ALL_WORKLOADS,
            nodes: false,
            node_states: false,
            default_nemesis: "none",
            op_timeout: Duration::from_secs(1),
            own_timeout: false,
            bugs: |w| {
                if TXN_WORKLOADS.contains(&w) {
                    crate::memory_txn::TXN_BUGS
                } else {
                    crate::memory::BUGS
                }
            },
            options: &[],
            create: create_memory,
        },
        TargetEntry {
            name: "cluster",
            about: "built-in replicated ledger: `verity node` processes agreeing by Raft over TCP",
            workloads: ALL_WORKLOADS,
            nodes: true,
            node_states: true,
            default_nemesis: "partition,pause,kill",
            // Long enough for a client to find the new leader after a leader fails (an election
            // takes 0.3–1.5 s), which is when retried requests happen.
            op_timeout: Duration::from_secs(3),
            own_timeout: true,
            bugs: |_| crate::cluster::BUGS,
            options: &[NODES],
            create: |o| Ok(Arc::new(ClusterTarget::new(cluster_options(o))?)),
        },
        TargetEntry {
            name: "exec",
            about: "any program speaking JSON lines on stdin/stdout, one per worker (--cmd; docs/protocols/exec.md)",
            workloads: ALL_WORKLOADS,
            nodes: false,
            node_states: false,
            default_nemesis: "none",
            op_timeout: Duration::from_secs(2),
            own_timeout: true,
            bugs: |_| &[],
            options: &[crate::exec::CMD],
            create: crate::exec::create,
        },
        #[cfg(feature = "http")]
        TargetEntry {
            name: "http",
            about: "any ledger speaking verity's JSON-over-HTTP protocol at --url (docs/protocols/http.md)",
            workloads: ALL_WORKLOADS,
            nodes: false,
            node_states: false,
            default_nemesis: "none",
            op_timeout: Duration::from_secs(2),
            own_timeout: true,
            bugs: |_| &[],
            options: &[crate::http::URL],
            create: crate::http::create,
        },
        #[cfg(feature = "postgres")]
        sql_entry(
            "postgres",
            "PostgreSQL: started from Debian's package (primary and --replicas) or at --url",
            crate::postgres::create,
        ),
        #[cfg(feature = "mariadb")]
        sql_entry(
            "mariadb",
            "MariaDB: started from Debian's package (primary and --replicas) or at --url",
            crate::mariadb::create,
        ),
        #[cfg(feature = "etcd")]
        TargetEntry {
            name: "etcd",
            about: "etcd: a cluster of --nodes members from Debian's package, every link through the proxy mesh; --read linearizable|serializable",
            workloads: ALL_WORKLOADS,
            nodes: true,
            node_states: true,
            default_nemesis: "partition,pause,kill",
            op_timeout: Duration::from_secs(3),
            own_timeout: true,
            bugs: no_bugs,
            options: crate::etcd::OPTIONS,
            create: crate::etcd::create,
        },
        #[cfg(feature = "redis")]
        TargetEntry {
            name: "redis",
            about: "Redis: started from Debian's package (primary and --replicas) or at --url; --style plain|watch-multi|lua",
            workloads: ALL_WORKLOADS,
            nodes: true,
            node_states: true,
            default_nemesis: "partition,pause,kill",
            op_timeout: Duration::from_secs(2),
            own_timeout: true,
            bugs: no_bugs,
            options: crate::redis::OPTIONS,
            create: crate::redis::create,
        },
    ],
);

/// A real SQL server: faults on its nodes (primary and replicas), no knobs of verity's own — its
/// isolation level and the transfer style are what make it unsafe.
#[cfg(any(feature = "postgres", feature = "mariadb"))]
const fn sql_entry(
    name: &'static str,
    about: &'static str,
    create: fn(&TargetOptions) -> Result<Arc<dyn Target>, TargetError>,
) -> TargetEntry {
    TargetEntry {
        name,
        about,
        workloads: ALL_WORKLOADS,
        nodes: true,
        node_states: true,
        default_nemesis: "partition,pause,kill",
        op_timeout: Duration::from_secs(2),
        own_timeout: true,
        bugs: no_bugs,
        options: crate::sql::OPTIONS,
        create,
    }
}

#[cfg(any(
    feature = "postgres",
    feature = "mariadb",
    feature = "redis",
    feature = "etcd"
))]
fn no_bugs(_workload: &str) -> &'static [Knob] {
    &[]
}

fn create_memory(options: &TargetOptions) -> Result<Arc<dyn Target>, TargetError> {
    if TXN_WORKLOADS.contains(&options.workload.as_str()) {
        let registers = options.workload == "rw-register";
        return Ok(Arc::new(MemoryTxnTarget::new(
            &options.bugs,
            options.seed,
            registers,
        )?));
    }
    Ok(Arc::new(MemoryTarget::new(&options.bugs, options.seed)?))
}

/// Builds target `name` for `options`; `None` if there is no such target.
pub fn create(name: &str, options: &TargetOptions) -> Option<Result<Arc<dyn Target>, TargetError>> {
    let entry = TARGETS.get(name).ok()?;
    if !entry.serves(&options.workload) && !options.workload.is_empty() {
        return Some(Err(TargetError::UnsupportedWorkload {
            target: name.into(),
            workload: options.workload.clone(),
        }));
    }
    Some((entry.create)(options))
}

pub fn names() -> Vec<&'static str> {
    TARGETS.names()
}

/// The cluster target's options from generic ones: 3 nodes unless told otherwise.
pub fn cluster_options(options: &TargetOptions) -> ClusterOptions {
    let nodes = options
        .param(&NODES)
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let dir = options.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "verity-cluster-{}-{}",
            std::process::id(),
            options.seed
        ))
    });
    let mut o = ClusterOptions::new(nodes, dir, options.seed);
    o.bugs = options.bugs.clone();
    o.registers = options.workload == "rw-register";
    o.state_dir = options.state_dir.clone();
    if let Some(t) = options.op_timeout {
        o.op_timeout = t;
    }
    // A loaded machine (CI, 2 cores) can take a while to elect the first leader.
    o.startup_timeout = CLUSTER_STARTUP_TIMEOUT;
    o
}

/// How long the cluster may take to elect a leader and create the accounts.
const CLUSTER_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
