//! Suite files (`verity.toml`): a list of scenarios — target, options, workload, faults, bug knobs,
//! time limit, seeds — each with the outcome it is *expected* to have, so a suite can assert that a
//! known-bad configuration is caught as firmly as that a good one stays valid.
//!
//! The format is TOML, one `[[scenario]]` table per scenario and an optional `[defaults]` table whose
//! keys every scenario inherits (a scenario's own key replaces the default, lists included). Keys are
//! `verity run`'s long options (`time-limit`, `nemesis-interval`, `read-from`, …), so a command line
//! moves into a suite by deleting dashes; `bugs`, `checkers`, `nemesis`, `expect` and `forbid` take a
//! name or a list. Jepsen keeps its test matrix in code (`lein run test-all` over a map of options);
//! a file keeps it reviewable beside the code it gates.
//!
//! This module is self-contained — serde, toml, humantime and std, nothing of the binary — so a
//! `cargo fuzz` target can include it with `#[path]`. [`parse`] never panics: whatever the bytes, the
//! answer is a [`Suite`] or a [`SuiteError`] with a line and column (1-based, columns in characters).
//! Names that only the registries know (targets, knobs, anomalies) are checked by [`validate`]
//! against a [`Catalog`] the caller builds, with the same locations.

mod check;
mod values;

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use check::{validate, Catalog, TargetInfo};
pub use values::{parse_duration, Dur, Names, Seeds};

/// A suite file larger than this is refused (a suite is a page of text, not data).
pub const TEXT_BYTES_MAX: usize = 1 << 20;
/// At most this many scenarios in one suite.
pub const SCENARIOS_MAX: usize = 1000;
/// A scenario name is at most this long: it becomes a JUnit class name and a table cell.
pub const NAME_CHARS_MAX: usize = 100;

/// A position in the suite file: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    pub const START: Location = Location { line: 1, column: 1 };

    /// The location of byte `offset` of `text` (clamped into the text, and back to a character
    /// boundary, so that any span a parser reports gives a location).
    pub fn of(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location { line, column }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What is wrong with a suite file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct SuiteError {
    pub at: Location,
    pub message: String,
}

impl SuiteError {
    pub fn new(at: Location, message: impl Into<String>) -> SuiteError {
        SuiteError {
            at,
            message: message.into(),
        }
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub at: Location,
}

/// The verdicts a run can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "valid" => Some(Verdict::Valid),
            "invalid" => Some(Verdict::Invalid),
            "unknown" => Some(Verdict::Unknown),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

/// What a scenario must come out as.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// This verdict, whatever the anomalies.
    Verdict(Verdict),
    /// Invalid, with at least one of these anomalies.
    AnyOf(Vec<Located<String>>),
}

impl Expectation {
    /// As the table and the JSON show it: `valid`, or `G2-item`, or `wrong-total|balance-mismatch`.
    pub fn describe(&self) -> String {
        match self {
            Expectation::Verdict(v) => v.as_str().to_string(),
            Expectation::AnyOf(names) => names
                .iter()
                .map(|n| n.value.as_str())
                .collect::<Vec<_>>()
                .join("|"),
        }
    }
}

/// One option of `verity run`, as the scenario gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// The long option without dashes (`time-limit`).
    pub name: &'static str,
    /// Its value as one command-line word.
    pub value: String,
    pub at: Location,
    /// A target option (`isolation`, `nodes`, …): only some targets take it.
    pub target_option: bool,
}

/// One scenario, with its defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: Located<String>,
    pub target: Located<String>,
    pub workload: Option<Located<String>>,
    pub bugs: Vec<Located<String>>,
    pub seeds: Vec<u64>,
    pub expect: Expectation,
    /// Anomalies that must not appear, whatever the verdict.
    pub forbid: Vec<Located<String>>,
    /// A command that starts the server the target talks to and prints its URL (the `http` target
    /// against `verity serve-ledger`, say); its URL is passed as `--url`.
    pub server: Option<Located<String>>,
    pub time_limit: Option<Duration>,
    pub recovery: Option<Duration>,
    /// Every other option of `verity run`, in a fixed order.
    pub flags: Vec<Flag>,
}

impl Scenario {
    /// The arguments of `verity run` for one seed (without `--store`, `--json` or `--url` from a
    /// server).
    pub fn run_args(&self, seed: u64) -> Vec<String> {
        let mut args = vec!["--target".to_string(), self.target.value.clone()];
        if let Some(w) = &self.workload {
            args.extend(["--workload".to_string(), w.value.clone()]);
        }
        for b in &self.bugs {
            args.extend(["--bug".to_string(), b.value.clone()]);
        }
        for f in &self.flags {
            args.extend([format!("--{}", f.name), f.value.clone()]);
        }
        args.extend(["--seed".to_string(), seed.to_string()]);
        args
    }
}

/// A parsed suite: its scenarios in file order, names unique.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub scenarios: Vec<Scenario>,
}

/// The keys of `[defaults]` and of each `[[scenario]]` (the same set; `name` only in a scenario).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawSettings {
    name: Option<Spanned<String>>,
    target: Option<Spanned<String>>,
    workload: Option<Spanned<String>>,
    bugs: Option<Spanned<Names>>,
    seeds: Option<Spanned<Seeds>>,
    seed: Option<Spanned<u64>>,
    expect: Option<Spanned<Names>>,
    forbid: Option<Spanned<Names>>,
    server: Option<Spanned<String>>,
    time_limit: Option<Spanned<Dur>>,
    concurrency: Option<Spanned<u32>>,
    rate: Option<Spanned<u64>>,
    ops: Option<Spanned<u64>>,
    op_timeout: Option<Spanned<Dur>>,
    nemesis: Option<Spanned<Names>>,
    nemesis_interval: Option<Spanned<Dur>>,
    recovery: Option<Spanned<Dur>>,
    accounts: Option<Spanned<u32>>,
    hot: Option<Spanned<f64>>,
    checkers: Option<Spanned<Names>>,
    check_time_limit: Option<Spanned<Dur>>,
    check_memory_mib: Option<Spanned<u64>>,
    compress: Option<Spanned<bool>>,
    nodes: Option<Spanned<u32>>,
    url: Option<Spanned<String>>,
    isolation: Option<Spanned<String>>,
    style: Option<Spanned<String>>,
    replicas: Option<Spanned<u32>>,
    cmd: Option<Spanned<String>>,
    read: Option<Spanned<String>>,
    read_from: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    defaults: Option<Spanned<RawSettings>>,
    #[serde(default)]
    scenario: Vec<Spanned<RawSettings>>,
}

/// The scenario's value of every key, or the default's.
macro_rules! merge {
    ($scenario:expr, $defaults:expr; $($field:ident),* $(,)?) => {
        RawSettings { $($field: $scenario.$field.clone().or_else(|| $defaults.$field.clone()),)* }
    };
}

fn merged(s: &RawSettings, d: &RawSettings) -> RawSettings {
    merge!(s, d; name, target, workload, bugs, seeds, seed, expect, forbid, server, time_limit,
        concurrency, rate, ops, op_timeout, nemesis, nemesis_interval, recovery, accounts, hot,
        checkers, check_time_limit, check_memory_mib, compress, nodes, url, isolation, style, replicas, cmd,
        read, read_from)
}

/// Parses a suite file. Every error carries the line and column of what is wrong.
pub fn parse(text: &str) -> Result<Suite, SuiteError> {
    if text.len() > TEXT_BYTES_MAX {
        return Err(SuiteError::new(
            Location::START,
            format!(
                "the suite file is {} bytes; at most {TEXT_BYTES_MAX} are read",
                text.len()
            ),
        ));
    }
    let raw: RawSuite = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map_or(Location::START, |s| Location::of(text, s.start));
        SuiteError::new(at, one_line(e.message()))
    })?;
    let defaults = raw.defaults.map(Spanned::into_inner).unwrap_or_default();
    if let Some(name) = &defaults.name {
        return Err(SuiteError::new(
            Location::of(text, name.span().start),
            "[defaults] cannot have a name: each [[scenario]] names itself",
        ));
    }
    if raw.scenario.is_empty() {
        return Err(SuiteError::new(
            Location::of(text, text.len()),
            "the suite has no scenario: add a [[scenario]] table with a name and a target",
        ));
    }
    if raw.scenario.len() > SCENARIOS_MAX {
        return Err(SuiteError::new(
            Location::of(text, raw.scenario[SCENARIOS_MAX].span().start),
            format!("more than {SCENARIOS_MAX} scenarios in one suite"),
        ));
    }
    let mut scenarios: Vec<Scenario> = Vec::with_capacity(raw.scenario.len());
    for table in &raw.scenario {
        let at = Location::of(text, table.span().start);
        let own = table.get_ref();
        // A seed beside a list of seeds is a mistake in one table; across tables, the list wins.
        for t in [own, &defaults] {
            if let (Some(seed), Some(Seeds::List(_))) =
                (&t.seed, t.seeds.as_ref().map(Spanned::get_ref))
            {
                return Err(SuiteError::new(
                    Location::of(text, seed.span().start),
                    "seed is the first of a count of seeds; with a list of seeds, leave it out",
                ));
            }
        }
        let scenario = resolve(text, at, &merged(own, &defaults))?;
        if let Some(first) = scenarios
            .iter()
            .find(|s| s.name.value == scenario.name.value)
        {
            return Err(SuiteError::new(
                scenario.name.at,
                format!(
                    "a second scenario named {:?} (the first is at line {}): names must be unique",
                    scenario.name.value, first.name.at.line
                ),
            ));
        }
        scenarios.push(scenario);
    }
    Ok(Suite { scenarios })
}

/// TOML's messages may span lines; the error is one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn located<T: Clone>(text: &str, s: &Spanned<T>) -> Located<T> {
    Located {
        value: s.get_ref().clone(),
        at: Location::of(text, s.span().start),
    }
}

/// The names of a list, each located at the list (TOML reports spans per value, not per element).
fn located_names(text: &str, s: &Option<Spanned<Names>>) -> Vec<Located<String>> {
    s.as_ref().map_or_else(Vec::new, |names| {
        let at = Location::of(text, names.span().start);
        names
            .get_ref()
            .0
            .iter()
            .map(|n| Located {
                value: n.clone(),
                at,
            })
            .collect()
    })
}

fn resolve(text: &str, table_at: Location, s: &RawSettings) -> Result<Scenario, SuiteError> {
    let name = s.name.as_ref().map(|n| located(text, n)).ok_or_else(|| {
        SuiteError::new(table_at, "this [[scenario]] has no name: add name = \"…\"")
    })?;
    check_name(&name)?;
    let target = s.target.as_ref().map(|t| located(text, t)).ok_or_else(|| {
        SuiteError::new(
            name.at,
            format!(
                "scenario {:?} names no target: add target = \"…\" to it or to [defaults]",
                name.value
            ),
        )
    })?;
    let seeds = seeds(text, s)?;
    let expect = expectation(text, s)?;
    if let (Some(server), Some(_)) = (&s.server, &s.url) {
        return Err(SuiteError::new(
            Location::of(text, server.span().start),
            "give either server (a command that starts one and prints its URL) or url, not both",
        ));
    }
    Ok(Scenario {
        target,
        workload: s.workload.as_ref().map(|w| located(text, w)),
        bugs: located_names(text, &s.bugs),
        seeds,
        expect,
        forbid: located_names(text, &s.forbid),
        server: s.server.as_ref().map(|c| located(text, c)),
        time_limit: s.time_limit.as_ref().map(|d| d.get_ref().duration),
        recovery: s.recovery.as_ref().map(|d| d.get_ref().duration),
        flags: flags(text, s),
        name,
    })
}

fn check_name(name: &Located<String>) -> Result<(), SuiteError> {
    let n = &name.value;
    let fine = !n.is_empty()
        && n.chars().count() <= NAME_CHARS_MAX
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(SuiteError::new(
            name.at,
            format!(
                "scenario name {n:?}: use 1 to {NAME_CHARS_MAX} letters, digits, '-', '_' or '.'"
            ),
        ))
    }
}

fn seeds(text: &str, s: &RawSettings) -> Result<Vec<u64>, SuiteError> {
    let base = s.seed.as_ref().map_or(1, |b| *b.get_ref());
    match s.seeds.as_ref().map(Spanned::get_ref) {
        None => Ok(vec![base]),
        Some(Seeds::List(list)) => Ok(list.clone()),
        Some(Seeds::Count(n)) => {
            let last = base.checked_add(n - 1).ok_or_else(|| {
                SuiteError::new(
                    Location::of(text, s.seed.as_ref().map_or(0, |b| b.span().start)),
                    format!("seeds {base} and the {n} after it do not fit in 64 bits"),
                )
            })?;
            Ok((base..=last).collect())
        }
    }
}

fn expectation(text: &str, s: &RawSettings) -> Result<Expectation, SuiteError> {
    let Some(expect) = &s.expect else {
        return Ok(Expectation::Verdict(Verdict::Valid));
    };
    let at = Location::of(text, expect.span().start);
    let names = &expect.get_ref().0;
    match names.as_slice() {
        [] => Err(SuiteError::new(
            at,
            "expect is empty: give a verdict (valid, invalid, unknown) or the anomalies of which one must appear",
        )),
        [one] if Verdict::parse(one).is_some() => Ok(Expectation::Verdict(
            Verdict::parse(one).expect("just matched"),
        )),
        many => match many.iter().find(|n| Verdict::parse(n).is_some()) {
            Some(v) => Err(SuiteError::new(
                at,
                format!(
                    "expect = {v:?} is a verdict: give it alone, or a list of anomaly names only"
                ),
            )),
            None => Ok(Expectation::AnyOf(located_names(text, &s.expect))),
        },
    }
}

/// Every other run option, in the order of `verity run --help`.
fn flags(text: &str, s: &RawSettings) -> Vec<Flag> {
    let mut out = Vec::new();
    let mut push = |name: &'static str, value: Option<(String, usize)>, target_option: bool| {
        if let Some((value, offset)) = value {
            out.push(Flag {
                name,
                value,
                at: Location::of(text, offset),
                target_option,
            });
        }
    };
    fn word<T: ToString>(s: &Option<Spanned<T>>) -> Option<(String, usize)> {
        s.as_ref()
            .map(|v| (v.get_ref().to_string(), v.span().start))
    }
    fn dur(s: &Option<Spanned<Dur>>) -> Option<(String, usize)> {
        s.as_ref()
            .map(|v| (v.get_ref().text.clone(), v.span().start))
    }
    fn list(s: &Option<Spanned<Names>>) -> Option<(String, usize)> {
        s.as_ref()
            .map(|v| (v.get_ref().0.join(","), v.span().start))
    }
    push("time-limit", dur(&s.time_limit), false);
    push("concurrency", word(&s.concurrency), false);
    push("rate", word(&s.rate), false);
    push("ops", word(&s.ops), false);
    push("op-timeout", dur(&s.op_timeout), false);
    push("checker", list(&s.checkers), false);
    push("nemesis", list(&s.nemesis), false);
    push("nemesis-interval", dur(&s.nemesis_interval), false);
    push("recovery", dur(&s.recovery), false);
    push("accounts", word(&s.accounts), false);
    push("hot", word(&s.hot), false);
    push("check-time-limit", dur(&s.check_time_limit), false);
    push("check-memory-mib", word(&s.check_memory_mib), false);
    push("compress", word(&s.compress), false);
    push("nodes", word(&s.nodes), true);
    push("url", word(&s.url), true);
    push("isolation", word(&s.isolation), true);
    push("style", word(&s.style), true);
    push("replicas", word(&s.replicas), true);
    push("cmd", word(&s.cmd), true);
    push("read", word(&s.read), true);
    push("read-from", word(&s.read_from), true);
    out
}

#[cfg(test)]
mod tests;
