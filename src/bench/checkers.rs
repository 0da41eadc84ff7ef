//! `verity bench --checkers`: the checkers at their limits, on issue #14's histories, with adya
//! beside verity on the transaction histories.
//!
//! Each history ([`super::kinds`]) is generated once and then checked `--repeat` times per format,
//! each check a fresh `verity check` child process timed from spawn to exit — reading the file
//! included, as a user waits for it — with its peak resident memory from the kernel
//! ([`super::measure`]). On transaction histories adya checks the same file in the same round,
//! alternated with verity (verity JSONL, adya JSONL, verity EDN, adya EDN, then again), so a burst
//! of load on this shared machine falls on both and the ratio stays honest. A check that runs into
//! its time limit is not repeated: its time is the limit, and the row says "unknown after N s".
//!
//! The output is a Markdown section for docs/benchmarks.md; progress goes to standard error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use super::kinds::{self, Expected, Files, Kind};
use super::measure::{measure, Measured};
use super::{median, CheckersArgs};
use crate::exit::{Failure, Outcome};

/// A verdict as either tool gave it.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Valid,
    Invalid(Vec<String>),
    Unknown(String),
    /// The tool failed (bad input, a crash): never a verdict.
    Error(String),
}

impl Verdict {
    fn class(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid(_) => "invalid",
            Verdict::Unknown(_) => "unknown",
            Verdict::Error(_) => "error",
        }
    }

    fn text(&self) -> String {
        match self {
            Verdict::Valid => "valid".into(),
            Verdict::Invalid(types) if types.is_empty() => "invalid".into(),
            Verdict::Invalid(types) => format!("invalid: {}", types.join(", ")),
            Verdict::Unknown(cause) => format!("unknown ({cause})"),
            Verdict::Error(why) => format!("error ({why})"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Verity,
    Adya,
}

/// Every run of one tool on one format of one history.
struct Series {
    tool: Tool,
    format: String,
    input: PathBuf,
    samples: Vec<(Measured, Verdict)>,
    /// Why it was not repeated, when it was not.
    stopped: Option<String>,
}

struct Row {
    kind: Kind,
    events: usize,
    series: Vec<Series>,
}

/// What the whole run needs besides the kinds.
struct Setup<'a> {
    args: &'a CheckersArgs,
    exe: PathBuf,
    adya: Option<PathBuf>,
    scratch: PathBuf,
}

pub fn run(args: &CheckersArgs, repeat: u32) -> Result<Outcome, Failure> {
    let kinds = select(kinds::all(args.scale, args.seed), &args.only)?;
    let exe = std::env::current_exe().context("cannot find the verity binary")?;
    let adya = if args.no_adya || !kinds.iter().any(|k| k.adya) {
        None
    } else {
        find_adya(args.adya.as_deref())?
    };
    // The temporary folder lives until the end of the run; --keep names a lasting one instead.
    let temp = tempfile::tempdir().context("cannot create a scratch directory")?;
    let scratch = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::bad_input(format!("cannot create {}: {e}", dir.display())))?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let setup = Setup {
        args,
        exe,
        adya,
        scratch,
    };
    let mut rows = Vec::new();
    for kind in kinds {
        rows.push(bench_kind(&setup, kind, repeat)?);
    }
    print!("{}", render(&setup, &rows, repeat));
    Ok(Outcome::Done)
}

/// The kinds `only` names (all when empty), in the table's order; an unknown name is bad input.
fn select(all: Vec<Kind>, only: &[String]) -> Result<Vec<Kind>, Failure> {
    for name in only {
        if !all.iter().any(|k| &k.name == name || k.group == name) {
            let mut names: Vec<&str> = all.iter().map(|k| k.group).collect();
            names.dedup();
            names.extend(all.iter().map(|k| k.name.as_str()));
            return Err(Failure::bad_input(format!(
                "--only: no kind or family {name:?} (valid: {})",
                names.join(", ")
            )));
        }
    }
    Ok(all
        .into_iter()
        .filter(|k| only.is_empty() || only.iter().any(|n| &k.name == n || k.group == n))
        .collect())
}

/// The adya binary to run: the one given, or adya on PATH, or in ~/.cargo/bin; `None` (with a
/// warning) when there is none, so the benchmark still measures verity.
fn find_adya(given: Option<&Path>) -> Result<Option<PathBuf>, Failure> {
    if let Some(p) = given {
        return match p.is_file() {
            true => Ok(Some(p.to_path_buf())),
            false => Err(Failure::bad_input(format!(
                "--adya: {} is not a file",
                p.display()
            ))),
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("adya"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let cargo_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/adya"));
    let found = on_path.into_iter().chain(cargo_bin).find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "adya not found (cargo install adya --no-default-features): the list-append histories \
             are checked by verity alone"
        );
    }
    Ok(found)
}

/// Generates one kind's history and measures every series on it.
fn bench_kind(setup: &Setup, kind: Kind, repeat: u32) -> Result<Row, Failure> {
    eprintln!("{}: generating {}", kind.name, kind.title);
    let t = Instant::now();
    let files = kinds::generate(&kind, &setup.scratch, &setup.exe)
        .with_context(|| format!("cannot generate {}", kind.name))?;
    eprintln!(
        "{}: {} events in {:.1} s",
        kind.name,
        kinds::count(files.events),
        t.elapsed().as_secs_f64()
    );
    let mut series = Vec::new();
    for format in &setup.args.formats {
        let verity_input = match format.as_str() {
            "edn" => files.edn.clone(),
            _ => files.jsonl.clone(),
        };
        series.push(Series::new(Tool::Verity, format, verity_input));
        if let (true, Some(_)) = (kind.adya, &setup.adya) {
            series.push(Series::new(Tool::Adya, format, adya_input(&files, format)));
        }
    }
    for round in 1..=repeat {
        for s in series.iter_mut().filter(|s| s.stopped.is_none()) {
            let out = setup.scratch.join(format!("{}.out.json", kind.name));
            let (m, verdict) = match s.tool {
                Tool::Verity => check_with_verity(setup, &kind, s, &out)?,
                Tool::Adya => check_with_adya(setup, s, &out)?,
            };
            let _ = std::fs::remove_file(&out);
            eprintln!(
                "{} {:?} {} run {round}/{repeat}: {:.2} s, {:.0} MiB, {}",
                kind.name,
                s.tool,
                s.format,
                m.seconds,
                mib(m.peak_rss_bytes),
                verdict.text()
            );
            s.stopped = why_not_again(setup, s.tool, &m, &verdict);
            s.samples.push((m, verdict));
        }
    }
    if setup.args.keep.is_none() {
        files.remove();
    }
    Ok(Row {
        kind,
        events: files.events,
        series,
    })
}

impl Series {
    fn new(tool: Tool, format: &str, input: PathBuf) -> Series {
        Series {
            tool,
            format: format.to_string(),
            input,
            samples: Vec::new(),
            stopped: None,
        }
    }
}

/// adya reads Jepsen EDN as verity exports it, and JSON lines as `verity export --format adya`
/// writes them.
fn adya_input(files: &Files, format: &str) -> PathBuf {
    match (format, &files.adya) {
        ("jsonl", Some(p)) => p.clone(),
        _ => files.edn.clone(),
    }
}

/// A run that ends at a limit is not repeated: its time is the limit. Nor is one that failed.
fn why_not_again(setup: &Setup, tool: Tool, m: &Measured, v: &Verdict) -> Option<String> {
    let limit = setup.args.check_time_limit.as_secs_f64();
    match (tool, v) {
        _ if m.killed => Some("killed at its deadline".into()),
        (_, Verdict::Error(_)) => Some("it failed".into()),
        (Tool::Verity, Verdict::Unknown(_)) if m.seconds >= limit => {
            Some("it ran into the time limit".into())
        }
        _ => None,
    }
}

fn check_with_verity(
    setup: &Setup,
    kind: &Kind,
    s: &Series,
    out: &Path,
) -> Result<(Measured, Verdict), Failure> {
    let args = setup.args;
    let mut cmd = Command::new(&setup.exe);
    cmd.arg("check")
        .arg(&s.input)
        .args(["--format", &s.format, "--json"])
        .args([
            "--check-time-limit",
            &crate::args::format_duration(args.check_time_limit),
            "--check-memory-mib",
            &args.check_memory_mib.to_string(),
        ])
        .args(kind.check_args);
    // Reading the file is not under the check's limit: allow it as long again, and a minute more.
    let deadline = args.check_time_limit * 2 + std::time::Duration::from_secs(60);
    let m = measure(&mut cmd, out, deadline).context("cannot run verity check")?;
    let verdict = match (m.killed, m.code) {
        (true, _) => Verdict::Unknown(format!("killed after {:.0} s", m.seconds)),
        (false, Some(0..=2)) => verity_verdict(out, args.check_time_limit.as_secs_f64()),
        (false, code) => Verdict::Error(exit_text(code)),
    };
    Ok((m, verdict))
}

/// The verdict in `verity check --json`'s results document.
fn verity_verdict(out: &Path, limit_s: f64) -> Verdict {
    let doc = match read_json(out) {
        Ok(doc) => doc,
        Err(e) => return Verdict::Error(e),
    };
    match &doc["valid"] {
        serde_json::Value::Bool(true) => Verdict::Valid,
        serde_json::Value::Bool(false) => Verdict::Invalid(strings(&doc["anomaly_types"])),
        _ => {
            let checkers = doc["checkers"].as_object().cloned().unwrap_or_default();
            let causes: Vec<String> = checkers
                .iter()
                .filter(|(_, v)| v["valid"] == "unknown")
                .map(|(name, v)| {
                    let cause = v["cause"].as_str().unwrap_or("no cause given");
                    format!("{name}: {}", shorten(cause, limit_s))
                })
                .collect();
            Verdict::Unknown(causes.join("; "))
        }
    }
}

/// A cause short enough for a table cell; a time limit reads "after N s".
fn shorten(cause: &str, limit_s: f64) -> String {
    if cause.contains("time limit") {
        return format!("time limit, after {limit_s:.0} s");
    }
    let mut s: String = cause.chars().take(90).collect();
    if s.len() < cause.len() {
        s.push('…');
    }
    s.replace('|', "/")
}

fn check_with_adya(setup: &Setup, s: &Series, out: &Path) -> Result<(Measured, Verdict), Failure> {
    let adya = setup
        .adya
        .as_ref()
        .expect("adya series exist only with adya");
    let mut cmd = Command::new(adya);
    cmd.arg("check").arg(&s.input).arg("--json");
    let m = measure(&mut cmd, out, setup.args.peer_time_limit).context("cannot run adya")?;
    let verdict = match (m.killed, m.code) {
        (true, _) => Verdict::Unknown(format!("killed after {:.0} s", m.seconds)),
        (false, Some(0..=2)) => match read_json(out) {
            Ok(doc) => match &doc["valid"] {
                serde_json::Value::Bool(true) => Verdict::Valid,
                serde_json::Value::Bool(false) => Verdict::Invalid(strings(&doc["anomaly_types"])),
                other => Verdict::Unknown(format!("adya: {other}")),
            },
            Err(e) => Verdict::Error(e),
        },
        (false, code) => Verdict::Error(exit_text(code)),
    };
    Ok((m, verdict))
}

fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit {c}"),
        None => "ended by a signal".into(),
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("no output: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("output is not JSON: {e}"))
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Median and range of a series: time and peak memory.
struct Summary {
    seconds: f64,
    seconds_range: (f64, f64),
    rss_mib: f64,
    rss_range: (f64, f64),
    runs: usize,
    verdict: String,
    class: &'static str,
}

impl Series {
    fn summary(&self) -> Option<Summary> {
        let secs: Vec<f64> = self.samples.iter().map(|(m, _)| m.seconds).collect();
        let rss: Vec<f64> = self
            .samples
            .iter()
            .map(|(m, _)| mib(m.peak_rss_bytes))
            .collect();
        let first = &self.samples.first()?.1;
        let same = self.samples.iter().all(|(_, v)| v == first);
        let verdict = if same {
            first.text()
        } else {
            let all: Vec<String> = self.samples.iter().map(|(_, v)| v.text()).collect();
            format!("varies: {}", all.join(" / "))
        };
        Some(Summary {
            seconds: median(&secs),
            seconds_range: range(&secs),
            rss_mib: median(&rss),
            rss_range: range(&rss),
            runs: self.samples.len(),
            verdict,
            class: if same { first.class() } else { "varies" },
        })
    }
}

fn range(xs: &[f64]) -> (f64, f64) {
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// Times in seconds, or in milliseconds when the median is under a tenth of a second (a tiny
/// history checks in a few milliseconds, which two decimals of a second would show as zero).
fn secs_cell(s: &Summary) -> String {
    let (scale, unit, decimals) = if s.seconds < 0.1 {
        (1000.0, "ms", 1)
    } else {
        (1.0, "s", 2)
    };
    let v = |x: f64| format!("{:.*}", decimals, x * scale);
    if s.runs == 1 {
        return format!("{} {unit}", v(s.seconds));
    }
    format!(
        "{} {unit} ({} – {})",
        v(s.seconds),
        v(s.seconds_range.0),
        v(s.seconds_range.1)
    )
}

fn rss_cell(s: &Summary) -> String {
    if s.runs == 1 {
        return format!("{:.0} MiB", s.rss_mib);
    }
    format!(
        "{:.0} MiB ({:.0} – {:.0})",
        s.rss_mib, s.rss_range.0, s.rss_range.1
    )
}

/// The verdict cell, flagged when it is not what the history is known to be.
fn verdict_cell(s: &Summary, expected: Expected) -> String {
    let want = match expected {
        Expected::Valid => "valid",
        Expected::Invalid => "invalid",
    };
    match s.class {
        c if c == want => s.verdict.clone(),
        "unknown" => s.verdict.clone(),
        _ => format!("**{}** (the history is {want})", s.verdict),
    }
}

fn render(setup: &Setup, rows: &[Row], repeat: u32) -> String {
    let args = setup.args;
    let mut md = String::new();
    let command: Vec<String> = std::iter::once("verity".to_string())
        .chain(std::env::args().skip(1))
        .collect();
    md.push_str("### Checkers at their limits: `verity bench --checkers`\n\n");
    md.push_str(&format!(
        "`{}` — {} cores; seed {}, scale {}, {} runs per measurement (a check that runs into its \
         limit is not repeated); `verity check --check-time-limit {} --check-memory-mib {}`; {}.\n\n",
        command.join(" "),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.seed,
        args.scale,
        repeat,
        crate::args::format_duration(args.check_time_limit),
        args.check_memory_mib,
        adya_version(setup),
    ));
    md.push_str(
        "End to end: each figure is one `verity check FILE --json` child process from spawn to \
         exit, reading the file included; memory is its peak resident set (the kernel's \
         `ru_maxrss`). Times are the median, with min – max over the runs. Porcupine's figures are \
         **quoted from issue #14** (Porcupine is not installable here and was not run by this \
         benchmark); its histories were generated like these, not these files. The goal column is \
         the issue's: 5× Porcupine's speed and 5× less memory, or the bank goal where Porcupine \
         cannot decide.\n\n",
    );
    md.push_str("| history | format | events | verdict | time | peak RSS | events/s | runs | Porcupine v1.3.0 (quoted) | goal |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for row in rows {
        for s in row.series.iter().filter(|s| s.tool == Tool::Verity) {
            let Some(sum) = s.summary() else { continue };
            let (porcupine, goal) = match row.kind.porcupine {
                Some(q) => (q.figures, q.goal),
                None => ("—", "—"),
            };
            md.push_str(&format!(
                "| {} `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                row.kind.title,
                row.kind.name,
                s.format.to_uppercase(),
                kinds::count(row.events),
                verdict_cell(&sum, row.kind.expected),
                secs_cell(&sum),
                rss_cell(&sum),
                events_per_s(row.events, &sum),
                runs_cell(s, &sum),
                porcupine,
                goal,
            ));
        }
    }
    let side_by_side: Vec<&Row> = rows
        .iter()
        .filter(|r| r.series.iter().any(|s| s.tool == Tool::Adya))
        .collect();
    if !side_by_side.is_empty() {
        md.push_str(&adya_table(&side_by_side));
    } else if rows.iter().any(|r| r.kind.adya) {
        md.push_str("\nadya was not run (not found, or `--no-adya`).\n");
    }
    md
}

/// Events per second end to end; none for a check that did not decide (its time is a limit).
fn events_per_s(events: usize, sum: &Summary) -> String {
    match sum.class {
        "valid" | "invalid" => kinds::count((events as f64 / sum.seconds) as usize),
        _ => "—".into(),
    }
}

fn runs_cell(s: &Series, sum: &Summary) -> String {
    match &s.stopped {
        Some(why) if sum.runs == 1 => format!("1 ({why})"),
        _ => sum.runs.to_string(),
    }
}

fn adya_version(setup: &Setup) -> String {
    let Some(adya) = &setup.adya else {
        return "adya not run".into();
    };
    let version = Command::new(adya)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{version} (`adya check FILE --json`, its defaults: list-append, strict-serializable)")
}

/// adya beside verity, on the same file in the same rounds.
fn adya_table(rows: &[&Row]) -> String {
    let mut md = String::from(
        "\nSide by side with adya on the same files, in the same rounds (verity, adya, verity, \
         adya, …). adya reads EDN as `verity export --format edn` writes it, and JSON lines as \
         `verity export --format adya` writes them. Ratios are of medians; above 1, verity is \
         faster or smaller.\n\n\
         | history | input | verity: verdict | verity: time, peak RSS | adya: verdict | adya: \
         time, peak RSS | adya ÷ verity: time | memory | verdicts agree |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        for v in row.series.iter().filter(|s| s.tool == Tool::Verity) {
            let Some(a) = row
                .series
                .iter()
                .find(|s| s.tool == Tool::Adya && s.format == v.format)
            else {
                continue;
            };
            let (Some(vs), Some(as_)) = (v.summary(), a.summary()) else {
                continue;
            };
            let agree = match (vs.class, as_.class) {
                (x, y) if x == y && x != "varies" && x != "error" => "yes",
                ("unknown", _) | (_, "unknown") => "— (one is unknown)",
                _ => "**no**",
            };
            md.push_str(&format!(
                "| {} `{}` | {} | {} | {}, {} | {} | {}, {} | {:.1}× | {:.1}× | {} |\n",
                row.kind.title,
                row.kind.name,
                v.format.to_uppercase(),
                verdict_cell(&vs, row.kind.expected),
                secs_cell(&vs),
                rss_cell(&vs),
                verdict_cell(&as_, row.kind.expected),
                secs_cell(&as_),
                rss_cell(&as_),
                as_.seconds / vs.seconds,
                as_.rss_mib / vs.rss_mib,
                agree,
            ));
        }
    }
    md
}
