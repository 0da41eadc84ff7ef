//! The HTML pages, as askama templates (`templates/serve/`) and the view models they render.
//!
//! Everything a template shows is formatted here, as strings, so the templates hold markup only and
//! the formatting is tested in Rust. askama escapes every value for HTML.

use std::collections::BTreeSet;
use std::path::Path;

use askama::Template;

use super::catalog::{Filter, Listing, RunSummary, Skipped, Status};
use super::compare::Comparison;
use super::files::{human_bytes, Entry};
use super::url::encode_segment;

#[derive(Template)]
#[template(path = "serve/index.html")]
pub struct IndexPage {
    store: String,
    runs: Vec<IndexRow>,
    total: usize,
    verdicts: Vec<Choice>,
    targets: Vec<Choice>,
    filtered: bool,
    skipped: Vec<Skipped>,
}

/// One option of a filter's select.
struct Choice {
    value: String,
    selected: bool,
}

struct IndexRow {
    id: String,
    href: String,
    started_at: String,
    started: String,
    target: String,
    workload: String,
    nemesis: String,
    bugs: String,
    seed: u64,
    verdict: &'static str,
    anomalies: String,
    ops_per_s: String,
    has_report: bool,
}

impl IndexPage {
    /// The index of `listing` (every run), showing the runs `filter` keeps.
    pub fn new(store: &Path, listing: Listing, filter: &Filter) -> IndexPage {
        let targets: BTreeSet<&str> = listing.runs.iter().map(|r| r.target.as_str()).collect();
        let selected_target = filter.target.as_deref();
        IndexPage {
            store: store.display().to_string(),
            total: listing.runs.len(),
            verdicts: Status::ALL
                .iter()
                .map(|s| Choice {
                    value: s.as_str().to_string(),
                    selected: filter.verdict == Some(*s),
                })
                .collect(),
            targets: targets
                .iter()
                .map(|t| Choice {
                    value: t.to_string(),
                    selected: selected_target == Some(*t),
                })
                .collect(),
            filtered: *filter != Filter::default(),
            runs: listing
                .runs
                .iter()
                .filter(|r| filter.matches(r))
                .map(index_row)
                .collect(),
            skipped: listing.skipped,
        }
    }
}

fn index_row(r: &RunSummary) -> IndexRow {
    IndexRow {
        id: r.id.to_string(),
        href: r.id.href(),
        started_at: r.started_at.clone(),
        started: short_time(&r.started_at),
        target: r.target.clone(),
        workload: r.workload.clone(),
        nemesis: list_or(&r.nemesis, "none"),
        bugs: list_or(&r.bugs, "none"),
        seed: r.seed,
        verdict: r.verdict.as_str(),
        anomalies: list_or(&r.anomaly_types, "—"),
        ops_per_s: r.ops_per_s.map_or("—".into(), |x| format!("{x:.1}")),
        has_report: r.has_report,
    }
}

#[derive(Template)]
#[template(path = "serve/compare.html")]
pub struct ComparePage {
    a_id: String,
    b_id: String,
    a_href: String,
    b_href: String,
    a_query: String,
    b_query: String,
    sections: Vec<Section>,
    notes: Vec<String>,
}

/// A group of rows of the comparison table.
struct Section {
    title: &'static str,
    /// What an empty section says instead.
    empty: &'static str,
    numeric: bool,
    rows: Vec<Cells>,
}

struct Cells {
    label: String,
    a: String,
    b: String,
    diff: String,
    /// `worse`, `better` or empty: how the difference reads for the system under test.
    class: &'static str,
    /// Show `a` and `b` as verdict badges.
    badge: bool,
}

impl ComparePage {
    pub fn new(c: &Comparison) -> ComparePage {
        ComparePage {
            a_id: c.a.id.to_string(),
            b_id: c.b.id.to_string(),
            a_href: c.a.id.href(),
            b_href: c.b.id.href(),
            a_query: encode_segment(&c.a.id.to_string()),
            b_query: encode_segment(&c.b.id.to_string()),
            sections: vec![
                Section {
                    title: "Runs",
                    empty: "",
                    numeric: false,
                    rows: run_rows(&c.a, &c.b),
                },
                Section {
                    title: "Anomalies (checker: anomaly)",
                    empty: "No checker found an anomaly in either run.",
                    numeric: true,
                    rows: anomaly_rows(c),
                },
                Section {
                    title: "Operations",
                    empty: "",
                    numeric: true,
                    rows: stat_rows(c),
                },
                Section {
                    title: "Latency (ms)",
                    empty: "No completed client operations in either history.",
                    numeric: true,
                    rows: latency_rows(c),
                },
            ],
            notes: c.notes.clone(),
        }
    }
}

fn run_rows(a: &RunSummary, b: &RunSummary) -> Vec<Cells> {
    let text = |label: &str, f: &dyn Fn(&RunSummary) -> String| {
        let (va, vb) = (f(a), f(b));
        Cells {
            label: label.to_string(),
            diff: if va == vb { "" } else { "≠" }.to_string(),
            a: va,
            b: vb,
            class: "",
            badge: false,
        }
    };
    let mut verdict = text("verdict", &|r| r.verdict.as_str().to_string());
    verdict.badge = true;
    vec![
        verdict,
        text("started (UTC)", &|r| short_time(&r.started_at)),
        text("target", &|r| r.target.clone()),
        text("workload", &|r| r.workload.clone()),
        text("bugs", &|r| list_or(&r.bugs, "none")),
        text("nemesis", &|r| list_or(&r.nemesis, "none")),
        text("seed", &|r| r.seed.to_string()),
        text("anomaly types", &|r| list_or(&r.anomaly_types, "—")),
    ]
}

fn anomaly_rows(c: &Comparison) -> Vec<Cells> {
    c.anomalies
        .iter()
        .map(|r| Cells {
            label: format!("{}: {}", r.checker, r.anomaly),
            a: r.a.to_string(),
            b: r.b.to_string(),
            diff: signed(r.diff as f64),
            class: trend(r.diff as f64, false),
            badge: false,
        })
        .collect()
}

fn stat_rows(c: &Comparison) -> Vec<Cells> {
    c.stats
        .iter()
        .map(|r| Cells {
            label: match r.name {
                "ops_per_s" => "ops/s".to_string(),
                name => name.to_string(),
            },
            a: number(r.a),
            b: number(r.b),
            diff: r.diff.map_or(String::new(), signed),
            class: match r.name {
                "ops_per_s" => r.diff.map_or("", |d| trend(d, true)),
                _ => "",
            },
            badge: false,
        })
        .collect()
}

fn latency_rows(c: &Comparison) -> Vec<Cells> {
    c.latency
        .iter()
        .map(|r| Cells {
            label: format!("{} {}", r.f, r.quantile),
            a: number(r.a_ms),
            b: number(r.b_ms),
            diff: r.diff_ms.map_or(String::new(), signed),
            class: r.diff_ms.map_or("", |d| trend(d, false)),
            badge: false,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "serve/dir.html")]
pub struct DirPage {
    id: String,
    path: String,
    run_href: String,
    crumbs: Vec<Crumb>,
    parent: Option<String>,
    entries: Vec<EntryView>,
    truncated: bool,
    has_report: bool,
}

struct Crumb {
    name: String,
    href: String,
}

struct EntryView {
    name: String,
    href: String,
    is_dir: bool,
    size: String,
}

impl DirPage {
    /// The listing of directory `rel` (segments below the run directory) of run `id`.
    pub fn new(
        id: &super::catalog::RunId,
        rel: &[String],
        entries: Vec<Entry>,
        truncated: bool,
        has_report: bool,
    ) -> DirPage {
        let run_href = id.href();
        let base = |depth: usize| {
            let below: Vec<String> = rel[..depth].iter().map(|s| encode_segment(s)).collect();
            let mut href = format!("/runs/{run_href}/");
            for s in below {
                href.push_str(&s);
                href.push('/');
            }
            href
        };
        let mut crumbs = vec![Crumb {
            name: id.to_string(),
            href: base(0),
        }];
        crumbs.extend(rel.iter().enumerate().map(|(i, s)| Crumb {
            name: s.clone(),
            href: base(i + 1),
        }));
        let here = base(rel.len());
        DirPage {
            id: id.to_string(),
            path: rel.join("/"),
            parent: (!rel.is_empty()).then(|| base(rel.len() - 1)),
            entries: entries
                .into_iter()
                .map(|e| EntryView {
                    href: format!(
                        "{here}{}{}",
                        encode_segment(&e.name),
                        if e.is_dir { "/" } else { "" }
                    ),
                    size: if e.is_dir {
                        String::new()
                    } else {
                        human_bytes(e.bytes)
                    },
                    name: e.name,
                    is_dir: e.is_dir,
                })
                .collect(),
            run_href,
            crumbs,
            truncated,
            has_report,
        }
    }
}

#[derive(Template)]
#[template(path = "serve/error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub reason: String,
    pub message: String,
}

/// `2026-12-01T17:49:38.878+00:00` → `2026-12-01 17:49:38` (in UTC); unparsable text as it is.
fn short_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

fn list_or(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        items.join(", ")
    }
}

/// `1001`, `997.903`, or a dash for a run without the figure.
fn number(x: Option<f64>) -> String {
    x.map_or("—".to_string(), |x| format!("{x}"))
}

/// A difference with its sign: `+18`, `-2.5`, `0`.
fn signed(x: f64) -> String {
    if x > 0.0 {
        format!("+{x}")
    } else if x < 0.0 {
        format!("{x}")
    } else {
        "0".to_string()
    }
}

/// How a difference reads: more anomalies or latency is worse, more throughput is better.
fn trend(diff: f64, more_is_better: bool) -> &'static str {
    match (diff > 0.0, diff < 0.0, more_is_better) {
        (true, _, true) | (_, true, false) => "better",
        (true, _, false) | (_, true, true) => "worse",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_well() {
        assert_eq!(
            short_time("2026-12-01T17:49:38.878370137+00:00"),
            "2026-12-01 17:49:38"
        );
        assert_eq!(
            short_time("2026-12-01T18:49:38+01:00"),
            "2026-12-01 17:49:38"
        );
        assert_eq!(short_time("yesterday"), "yesterday");
        assert_eq!(number(Some(1001.0)), "1001");
        assert_eq!(number(Some(997.903)), "997.903");
        assert_eq!(number(None), "—");
        assert_eq!(
            (signed(18.0), signed(-2.5), signed(0.0)),
            ("+18".into(), "-2.5".into(), "0".into())
        );
        assert_eq!(trend(1.0, false), "worse");
        assert_eq!(trend(1.0, true), "better");
        assert_eq!(trend(-1.0, false), "better");
        assert_eq!(trend(0.0, true), "");
    }
}
