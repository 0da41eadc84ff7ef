//! The store as the server sees it: which run directories exist, and what each one concluded.
//!
//! Nothing is cached. A store changes while it is served — a run starts, its results appear — and
//! re-reading a few small JSON files per request is cheaper than deciding when a cache is stale.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};
use verity_checkers::Validity;

use super::safe_path::{self, PathError};
use super::url::encode_path;
use crate::store::{self, RunMeta};

/// At most this many run directories are read for one listing (the newest by directory name).
pub const RUNS_MAX: usize = 10_000;

/// A run's name: its directory relative to the store, `<target>-<workload>/<stamp>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId {
    group: String,
    name: String,
}

impl RunId {
    /// Builds an id from two already-decoded segments, checking both.
    pub fn from_segments(group: &str, name: &str) -> Result<RunId, PathError> {
        Ok(RunId {
            group: safe_path::checked(group.to_string())?,
            name: safe_path::checked(name.to_string())?,
        })
    }

    /// Parses decoded text such as a query parameter: exactly `group/name`.
    pub fn parse(text: &str) -> Result<RunId, PathError> {
        match text.split_once('/') {
            Some((group, name)) => RunId::from_segments(group, name),
            None => Err(PathError::Forbidden(text.to_string())),
        }
    }

    /// The id as it goes into a URL path.
    pub fn href(&self) -> String {
        encode_path(&self.to_string())
    }

    /// The file name of the run's archive.
    pub fn archive_name(&self) -> String {
        format!("{}-{}.tar.zst", self.group, self.name)
    }

    /// The id as a relative path (the archive's top directories, too).
    pub fn rel_path(&self) -> PathBuf {
        Path::new(&self.group).join(&self.name)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.group, self.name)
    }
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What the index says about a run: the checkers' verdict, or why there is none yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Valid,
    Invalid,
    Unknown,
    /// No results yet, and the `verity run` that writes it is alive.
    Running,
    /// No results, and nothing is writing them: the run was killed or crashed.
    Incomplete,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Valid,
        Status::Invalid,
        Status::Unknown,
        Status::Running,
        Status::Incomplete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Unknown => "unknown",
            Status::Running => "running",
            Status::Incomplete => "incomplete",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    fn of(validity: Validity) -> Status {
        match validity {
            Validity::Valid => Status::Valid,
            Validity::Invalid => Status::Invalid,
            Validity::Unknown => Status::Unknown,
        }
    }
}

/// One row of the index and of `/api/runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: RunId,
    pub started_at: String,
    pub target: String,
    pub workload: String,
    pub nemesis: Vec<String>,
    pub seed: u64,
    pub bugs: Vec<String>,
    pub verdict: Status,
    pub anomaly_types: Vec<String>,
    pub ops: Option<u64>,
    pub ops_per_s: Option<f64>,
    /// `report.html` exists (it is written after the results).
    pub has_report: bool,
}

/// A summary with the operation counts and every checker's anomaly counts: `/api/runs/<id>`.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub stats: Option<Stats>,
    pub checkers: BTreeMap<String, CheckerCounts>,
}

/// The operation counts of results.json's `stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub ops: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub ops_per_s: f64,
}

/// One checker of results.json, without its examples and details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckerCounts {
    pub valid: Validity,
    #[serde(default)]
    pub anomaly_counts: BTreeMap<String, u64>,
}

/// The part of results.json the server shows; everything else is skipped unparsed.
#[derive(Debug, Deserialize)]
struct ResultsFile {
    valid: Validity,
    #[serde(default)]
    anomaly_types: Vec<String>,
    #[serde(default)]
    stats: Option<Stats>,
    #[serde(default)]
    checkers: BTreeMap<String, CheckerCounts>,
}

/// Which runs a listing keeps. Empty fields keep everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub verdict: Option<Status>,
    pub target: Option<String>,
}

impl Filter {
    pub fn matches(&self, run: &RunSummary) -> bool {
        self.verdict.is_none_or(|v| v == run.verdict)
            && self.target.as_ref().is_none_or(|t| *t == run.target)
    }
}

/// A directory that looks like a run but cannot be shown, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub id: String,
    pub reason: String,
}

/// Every run of the store, newest first, and the directories that could not be read.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub runs: Vec<RunSummary>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no run {0} in this store")]
    NotFound(String),
    #[error("{0}")]
    Unreadable(String),
}

/// The store, canonicalized once at start: every path served is checked against this root.
#[derive(Debug, Clone)]
pub struct Catalog {
    root: PathBuf,
}

impl Catalog {
    /// Opens an existing store directory; the message reads well after "error:".
    pub fn open(store: &Path) -> Result<Catalog, String> {
        let root = store.canonicalize().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!(
                "the store {} does not exist (`verity run --store {}` writes runs there)",
                store.display(),
                store.display()
            ),
            _ => format!("cannot open the store {}: {e}", store.display()),
        })?;
        if !root.is_dir() {
            return Err(format!("the store {} is not a directory", store.display()));
        }
        Ok(Catalog { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The canonical directory of a run, if the id names one: a real directory (no symlink on the
    /// way) exactly two levels below the root, holding a run.json.
    pub fn dir_of(&self, id: &RunId) -> Option<PathBuf> {
        let expected = self.root.join(id.rel_path());
        let canonical = safe_path::resolve_inside(&self.root, &expected)?;
        (canonical == expected && canonical.join(store::META_FILE).is_file()).then_some(canonical)
    }

    /// Every run of the store, newest first.
    pub fn list(&self) -> io::Result<Listing> {
        let mut ids = self.run_ids()?;
        // Stamps sort chronologically across groups; keep the newest when there are too many.
        ids.sort_by(|a, b| b.name.cmp(&a.name).then_with(|| b.group.cmp(&a.group)));
        let mut listing = Listing::default();
        if ids.len() > RUNS_MAX {
            listing.skipped.push(Skipped {
                id: format!("{} older runs", ids.len() - RUNS_MAX),
                reason: format!("only the newest {RUNS_MAX} runs are listed"),
            });
            ids.truncate(RUNS_MAX);
        }
        for id in ids {
            match self.load(&id) {
                Ok(detail) => listing.runs.push(detail.summary),
                Err(e) => listing.skipped.push(Skipped {
                    id: id.to_string(),
                    reason: e.to_string(),
                }),
            }
        }
        listing.runs.sort_by(newest_first);
        Ok(listing)
    }

    /// Candidate run directories: `<group>/<name>/run.json`, symlinks (such as `latest`) and
    /// hidden directories (such as `.nemesis`) left out.
    fn run_ids(&self) -> io::Result<Vec<RunId>> {
        let mut ids = Vec::new();
        for group in real_subdirs(&self.root)? {
            let Ok(names) = real_subdirs(&self.root.join(&group)) else {
                continue;
            };
            for name in names {
                let has_meta = self.root.join(&group).join(&name).join(store::META_FILE);
                if let (true, Ok(id)) = (has_meta.is_file(), RunId::from_segments(&group, &name)) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// Reads one run: its metadata, its results if there are any, and whether it is still running.
    pub fn load(&self, id: &RunId) -> Result<RunDetail, LoadError> {
        let dir = self
            .dir_of(id)
            .ok_or_else(|| LoadError::NotFound(id.to_string()))?;
        let meta = store::read_meta(&dir)
            .map_err(|e| LoadError::Unreadable(format!("{e:#}")))?
            .ok_or_else(|| LoadError::NotFound(id.to_string()))?;
        let results = read_results(&dir)?;
        let verdict = match &results {
            Some(r) => Status::of(r.valid),
            None if writer_alive(&dir) => Status::Running,
            None => Status::Incomplete,
        };
        Ok(detail(id.clone(), &dir, meta, verdict, results))
    }
}

fn detail(
    id: RunId,
    dir: &Path,
    meta: RunMeta,
    verdict: Status,
    results: Option<ResultsFile>,
) -> RunDetail {
    let (anomaly_types, stats, checkers) = match results {
        Some(r) => (r.anomaly_types, r.stats, r.checkers),
        None => (Vec::new(), None, BTreeMap::new()),
    };
    RunDetail {
        summary: RunSummary {
            id,
            started_at: meta.started_at,
            target: meta.target,
            workload: meta.workload,
            nemesis: meta.nemesis,
            seed: meta.seed,
            bugs: meta.bugs,
            verdict,
            anomaly_types,
            ops: stats.as_ref().map(|s| s.ops),
            ops_per_s: stats.as_ref().map(|s| s.ops_per_s),
            has_report: dir.join(store::REPORT_FILE).is_file(),
        },
        stats,
        checkers,
    }
}

/// results.json, `None` while there is none. A file that does not parse while its run's writer is
/// alive is being written right now (the write is not atomic): that is "no results yet" too.
fn read_results(dir: &Path) -> Result<Option<ResultsFile>, LoadError> {
    let path = dir.join(store::RESULTS_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LoadError::Unreadable(format!(
                "cannot read results.json: {e}"
            )))
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(results) => Ok(Some(results)),
        Err(_) if writer_alive(dir) => Ok(None),
        Err(e) => Err(LoadError::Unreadable(format!(
            "malformed results.json: {e}"
        ))),
    }
}

/// Whether the process named by the run's `running.pid` exists. A pid that was reused by another
/// process since reads as alive; the marker is removed when a run ends normally, so only a crashed
/// run can be mistaken this way.
fn writer_alive(dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string(dir.join(store::RUNNING_FILE)) else {
        return false;
    };
    // Zero and negative pids address process groups, not one process: never ask about those.
    let Some(pid) = text.trim().parse::<i32>().ok().filter(|p| *p > 0) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        // It exists, but belongs to someone else.
        Err(e) => e == nix::errno::Errno::EPERM,
    }
}

/// The names of the real (not symlinked), visible subdirectories of `dir`.
fn real_subdirs(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let name = entry.file_name().into_string().ok();
        if let (true, Some(name)) = (is_dir, name) {
            if !name.starts_with('.') {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// Newest first by start time; runs that started in the same instant by id, newest first.
fn newest_first(a: &RunSummary, b: &RunSummary) -> std::cmp::Ordering {
    let time = |r: &RunSummary| chrono::DateTime::parse_from_rfc3339(&r.started_at).ok();
    time(b).cmp(&time(a)).then_with(|| b.id.cmp(&a.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_two_checked_segments() {
        let id = RunId::parse("memory-bank/20261201T101010-1").unwrap();
        assert_eq!(id.to_string(), "memory-bank/20261201T101010-1");
        assert_eq!(id.archive_name(), "memory-bank-20261201T101010-1.tar.zst");
        for bad in ["latest", "a/b/c", "../x", "a/..", "a/", "/a", "a/%2e%2e"] {
            assert!(RunId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("broken"), None);
    }

    fn meta_json(started_at: &str, seed: u64) -> String {
        serde_json::json!({
            "verity_version": "0.1.0", "target": "memory", "workload": "bank", "bugs": [],
            "seed": seed, "command": "verity run", "started_at": started_at, "time_limit_s": 1.0,
            "concurrency": 1, "rate": 1, "op_timeout_s": 1.0, "accounts": 2, "hot": 0.0,
            "checkers": ["conservation"]
        })
        .to_string()
    }

    #[test]
    fn listings_hold_runs_newest_first_and_name_what_they_skip() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path();
        for (name, started_at, seed) in [
            ("20261201T101010", "2026-12-01T10:10:10+00:00", 1),
            ("20261201T111111", "2026-12-01T13:11:11+02:00", 2),
        ] {
            let run = store.join("memory-bank").join(name);
            fs::create_dir_all(&run).unwrap();
            fs::write(run.join(store::META_FILE), meta_json(started_at, seed)).unwrap();
        }
        let valid = store.join("memory-bank/20261201T101010");
        fs::write(
            valid.join(store::RESULTS_FILE),
            r#"{"valid": true, "stats": {"ops": 7}}"#,
        )
        .unwrap();
        let broken = store.join("memory-bank/20261201T121212");
        fs::create_dir_all(&broken).unwrap();
        fs::write(broken.join(store::META_FILE), "{").unwrap();
        fs::create_dir_all(store.join(".nemesis/x")).unwrap();
        fs::write(
            store.join(".nemesis/x").join(store::META_FILE),
            meta_json("x", 9),
        )
        .unwrap();
        std::os::unix::fs::symlink("memory-bank/20261201T101010", store.join("latest")).unwrap();
        fs::create_dir_all(store.join("memory-bank/not-a-run")).unwrap();

        let listing = Catalog::open(store).unwrap().list().unwrap();
        let runs: Vec<(String, Status, Option<u64>)> = listing
            .runs
            .iter()
            .map(|r| (r.id.to_string(), r.verdict, r.ops))
            .collect();
        assert_eq!(
            runs,
            [
                (
                    "memory-bank/20261201T111111".to_string(),
                    Status::Incomplete,
                    None
                ),
                (
                    "memory-bank/20261201T101010".to_string(),
                    Status::Valid,
                    Some(7)
                ),
            ],
            "newest first by start time, offsets included (13:11+02:00 is 11:11 UTC)"
        );
        assert_eq!(listing.skipped.len(), 1);
        assert_eq!(listing.skipped[0].id, "memory-bank/20261201T121212");
        assert!(
            listing.skipped[0].reason.contains("malformed"),
            "{:?}",
            listing.skipped
        );
    }

    #[test]
    fn a_live_pid_is_running_and_a_dead_or_bogus_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join(store::RUNNING_FILE);
        assert!(!writer_alive(dir.path()), "no marker");
        fs::write(&marker, format!("{}\n", std::process::id())).unwrap();
        assert!(writer_alive(dir.path()));
        for bogus in ["999999999", "0", "-1", "x", ""] {
            fs::write(&marker, bogus).unwrap();
            assert!(!writer_alive(dir.path()), "{bogus:?}");
        }
    }
}
