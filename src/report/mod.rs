//! `report.html`: one self-contained file per run (inline CSS, JS and SVG, no fetches, works from
//! `file://`) with the verdict, one section per checker with each anomaly in words and drawn, and
//! charts over the whole history — timeline per worker, latency, throughput, info rate, balances,
//! node availability — sharing one zoomable time axis with the nemesis intervals shaded.
//!
//! `verity run` and `verity check <run-dir>` write it; `verity report` writes it again, also for a
//! history file that was never a run (an imported Knossos or Elle history).

mod charts;
mod draw;
mod model;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use askama::Template;
use clap::Args;
use serde_json::Value as Json;
use verity_history::{History, Op};

use crate::exit::{Failure, Outcome};
use crate::store::{self, RunMeta};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory (its results.json is used as it is), or a history file (.jsonl or .edn),
    /// which is checked first, as `verity check` would.
    pub path: PathBuf,
    /// Where to write the report. Default: report.html in the run directory, or
    /// <history>.report.html beside a history file.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub check: crate::check::CheckOptions,
}

pub fn run(args: ReportArgs) -> Result<Outcome, Failure> {
    let (out, validity) = if args.path.is_dir() {
        let dir = &args.path;
        let results_path = dir.join(store::RESULTS_FILE);
        if !results_path.is_file() {
            // A run cut short before its check: judge it now, as `verity check` would, which
            // writes results.json and the report.
            let r = crate::check::judge_run_dir(dir, &args.check.settings()?)?;
            if args.out.is_none() {
                println!("report: {}", dir.join(store::REPORT_FILE).display());
                return Ok(Outcome::Verdict(r.valid));
            }
        }
        let history_path = crate::check::history_of_run_dir(dir)?;
        let history = crate::check::load(&history_path, Some("jsonl"))?;
        let bytes = std::fs::read(&results_path).map_err(|e| {
            Failure::bad_input(format!("cannot read {}: {e}", results_path.display()))
        })?;
        let results: Json = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::bad_input(format!("{}: {e}", results_path.display())))?;
        let meta = store::read_meta(dir).map_err(|e| Failure::bad_input(format!("{e:#}")))?;
        let out = args.out.unwrap_or_else(|| dir.join(store::REPORT_FILE));
        let seconds = std::fs::read(dir.join(store::CHECK_TIMES_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let input = Input::new(
            &history,
            &results,
            meta.as_ref(),
            None,
            run_files(dir),
            seconds,
        );
        write(&out, &input)?;
        (out, model::validity(&results["valid"]))
    } else {
        let settings = args.check.settings()?;
        let history = crate::check::load(&args.path, args.check.format.as_deref())?;
        let r = crate::check::judge(&history, None, &settings)?;
        let results = serde_json::to_value(&r).map_err(|e| Failure::Harness(e.into()))?;
        let out = args.out.unwrap_or_else(|| {
            let mut name = args.path.file_name().unwrap_or_default().to_os_string();
            name.push(".report.html");
            args.path.with_file_name(name)
        });
        let source = args.path.display().to_string();
        let input = Input::new(
            &history,
            &results,
            None,
            Some(source),
            Vec::new(),
            r.check_seconds.clone(),
        );
        write(&out, &input)?;
        (out, r.valid)
    };
    println!("report: {}", out.display());
    Ok(Outcome::Verdict(validity))
}

/// Everything a report is made from, with the lookups its parts share.
pub struct Input<'a> {
    pub history: &'a History,
    pub results: &'a Json,
    pub meta: Option<&'a RunMeta>,
    /// Where the history came from, when it is not a run.
    pub source: Option<String>,
    /// The run's files, relative to the report (links).
    pub files: Vec<String>,
    /// How long each checker took, when known.
    pub check_seconds: BTreeMap<String, f64>,
    pub ops: Vec<Op>,
    /// Event index → position in `history.events`, for histories whose indices are not their
    /// positions (verity's own are, and need no map).
    by_index: Option<HashMap<u64, usize>>,
    /// Position in `history.events` → operation number (`u32::MAX`: not an operation).
    op_at: Vec<u32>,
    /// The history carries no times (Knossos's and Elle's often do not): event positions stand in
    /// for them, one millisecond each, so the charts still show the order of things.
    pub logical_clock: bool,
}

impl<'a> Input<'a> {
    pub fn new(
        history: &'a History,
        results: &'a Json,
        meta: Option<&'a RunMeta>,
        source: Option<String>,
        files: Vec<String>,
        check_seconds: BTreeMap<String, f64>,
    ) -> Input<'a> {
        // A malformed history still gets a report (its results say why); it just has no ops.
        let ops = history.ops().unwrap_or_default();
        let mut op_at = vec![u32::MAX; history.events.len()];
        for (n, op) in ops.iter().enumerate() {
            op_at[op.invoke] = n as u32;
            if let Some(c) = op.completion {
                op_at[c] = n as u32;
            }
        }
        let identity = history
            .events
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == i as u64);
        let by_index = (!identity).then(|| {
            history
                .events
                .iter()
                .enumerate()
                .map(|(i, e)| (e.index, i))
                .collect()
        });
        // No times: all equal, or the EDN reader's stand-in (the index) for a missing :time.
        let logical_clock = history.events.len() > 1
            && (history.events.iter().all(|e| e.time_ns == e.index)
                || history
                    .events
                    .iter()
                    .all(|e| e.time_ns == history.events[0].time_ns));
        Input {
            logical_clock,
            history,
            results,
            meta,
            source,
            files,
            check_seconds,
            ops,
            by_index,
            op_at,
        }
    }

    /// Where event `index` is in `history.events`.
    fn position(&self, index: u64) -> Option<usize> {
        match &self.by_index {
            Some(map) => map.get(&index).copied(),
            None => ((index as usize) < self.history.events.len()).then_some(index as usize),
        }
    }

    /// The operation that event `index` belongs to.
    pub fn op_number(&self, index: u64) -> Option<usize> {
        let pos = self.position(index)?;
        let n = self.op_at[pos];
        (n != u32::MAX).then_some(n as usize)
    }

    /// The time of the event at position `pos`, in ns from the first event.
    pub fn time_ns_at(&self, pos: usize) -> u64 {
        if self.logical_clock {
            return pos as u64 * 1_000_000;
        }
        let first = self.history.events.first().map_or(0, |e| e.time_ns);
        self.history.events[pos].time_ns.saturating_sub(first)
    }

    /// The time of event `index`, in ns from the first event.
    pub fn time_of(&self, index: u64) -> Option<u64> {
        Some(self.time_ns_at(self.position(index)?))
    }

    /// The operations (or nemesis events) that `events` name, each once, at most `max`.
    pub fn ops_of(&self, events: &[u64], max: usize) -> Vec<model::OpRef> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for &e in events {
            if out.len() >= max {
                break;
            }
            let Some(pos) = self.position(e) else {
                continue;
            };
            let (key, text) = match self.op_at[pos] {
                u32::MAX => {
                    let ev = &self.history.events[pos];
                    (
                        u64::MAX - e,
                        format!(
                            "{} {} {}",
                            ev.process,
                            ev.f.as_str(),
                            model::short(&ev.value.to_string(), 80)
                        ),
                    )
                }
                n => {
                    let op = &self.ops[n as usize];
                    let inv = &self.history.events[op.invoke];
                    let comp = op.completion.map(|c| &self.history.events[c]);
                    let value = comp
                        .filter(|c| !c.value.is_null())
                        .map_or(&inv.value, |c| &c.value);
                    let outcome = comp.map_or("pending", |c| c.kind.as_str());
                    (
                        n as u64,
                        format!(
                            "p{} {} {} → {outcome}",
                            inv.process,
                            inv.f.as_str(),
                            model::short(&value.to_string(), 80)
                        ),
                    )
                }
            };
            if seen.insert(key) {
                let index = match self.op_at[pos] {
                    u32::MAX => e,
                    n => self.history.events[self.ops[n as usize].invoke].index,
                };
                out.push(model::OpRef { index, text });
            }
        }
        out
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    m: &'a model::Model,
    data: String,
    css: &'static str,
    js: &'static str,
}

/// The operation numbers each anomaly names, for the charts to highlight.
fn anomaly_events(m: &model::Model, results: &Json) -> BTreeMap<String, Vec<u64>> {
    let mut out = BTreeMap::new();
    for section in &m.sections {
        let all = results["checkers"][&section.checker]["anomalies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for a in &section.anomalies {
            let i: usize =
                a.id.rsplit('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
            let events = all
                .get(i)
                .and_then(|x| x["events"].as_array())
                .map(|e| e.iter().filter_map(Json::as_u64).collect())
                .unwrap_or_default();
            out.insert(a.id.clone(), events);
        }
    }
    out
}

/// The report's HTML.
pub fn render(input: &Input) -> Result<String, askama::Error> {
    let m = model::build(input);
    let charts = charts::build(input, &anomaly_events(&m, input.results));
    // Inside <script>, "</" would end the element: JSON allows "<" to be written as \u003c.
    let data = serde_json::to_string(&charts)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c");
    Page {
        m: &m,
        data,
        css: include_str!("report.css"),
        js: include_str!("report.js"),
    }
    .render()
}

/// The files of a run directory a report links to (relative paths), logs included.
fn run_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for name in [
        store::HISTORY_FILE,
        store::HISTORY_ZST_FILE,
        store::CHAIN_FILE,
        store::RESULTS_FILE,
        store::META_FILE,
        store::PERF_FILE,
        store::JUNIT_FILE,
        store::LOG_FILE,
    ] {
        if dir.join(name).is_file() {
            out.push(name.to_string());
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut sub: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        sub.sort();
        for d in sub {
            let Ok(files) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut names: Vec<String> = files
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.extension().is_some_and(|x| {
                            matches!(x.to_str(), Some("log" | "svg" | "dot" | "txt"))
                        })
                })
                .filter_map(|p| Some(p.strip_prefix(dir).ok()?.display().to_string()))
                .collect();
            names.sort();
            out.extend(names);
        }
    }
    out
}

/// Writes the report to `out`.
pub fn write(out: &Path, input: &Input) -> Result<(), Failure> {
    let html = render(input)
        .map_err(|e| Failure::Harness(anyhow::anyhow!("cannot render the report: {e}")))?;
    std::fs::write(out, html)
        .map_err(|e| Failure::Harness(anyhow::anyhow!("cannot write {}: {e}", out.display())))
}

/// Writes `report.html` into a run directory whose history was just judged.
pub fn write_for_run(
    dir: &Path,
    history: &History,
    results: &crate::results::Results,
    meta: Option<&RunMeta>,
) -> Result<PathBuf, Failure> {
    let json = serde_json::to_value(results).map_err(|e| Failure::Harness(e.into()))?;
    let out = dir.join(store::REPORT_FILE);
    let input = Input::new(
        history,
        &json,
        meta,
        None,
        run_files(dir),
        results.check_seconds.clone(),
    );
    write(&out, &input)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::CheckSettings;

    fn data(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(path)
    }

    /// The report's words and tables for a history file, as `verity report FILE` builds them.
    fn model_of(path: &str, model: Option<&str>) -> (model::Model, String) {
        let history = crate::check::load(&data(path), None).expect("the history reads");
        let mut settings = CheckSettings::default();
        settings.options.model = model.map(str::to_string);
        let r = crate::check::judge(&history, None, &settings).expect("the history is judged");
        let results = serde_json::to_value(&r).expect("results serialize");
        let input = Input::new(
            &history,
            &results,
            None,
            Some(path.into()),
            Vec::new(),
            BTreeMap::new(),
        );
        (
            model::build(&input),
            render(&input).expect("the report renders"),
        )
    }

    #[test]
    fn a_jepsen_bank_history_with_a_lost_update_is_explained_in_words() {
        let (m, html) = model_of("bank/lost-update-small.edn", None);
        assert_eq!(m.verdict, "invalid");
        assert!(m.anomaly_types.iter().any(|t| t == "wrong-total"));
        assert!(html.contains("id=\"checker-conservation\""));
        insta::assert_json_snapshot!(m);
    }

    #[test]
    fn a_knossos_history_shows_the_operation_that_cannot_be_placed() {
        let (m, html) = model_of(
            "knossos/cas-register/bad/cas-failure.edn",
            Some("cas-register"),
        );
        assert_eq!(m.verdict, "invalid");
        let lin = m
            .sections
            .iter()
            .find(|s| s.checker == "linearizable")
            .expect("a linearizable section");
        let a = &lin.anomalies[0];
        assert_eq!(a.name, "nonlinearizable");
        let svg = a
            .svg
            .as_deref()
            .expect("a drawing of the concurrent operations");
        assert!(svg.starts_with("<svg") && svg.contains("bar failing"));
        assert!(html.contains("class=\"concurrency\""));
        insta::assert_json_snapshot!(m);
    }

    #[test]
    fn a_valid_history_has_no_anomaly_sections_and_the_data_cannot_end_the_script() {
        let (m, html) = model_of("bank/valid-small.edn", None);
        assert_eq!(m.verdict, "valid");
        assert!(m.sections.iter().all(|s| s.anomalies.is_empty()));
        // The embedded JSON is one script element: "</" inside it would close the element early.
        let data = html
            .split("<script type=\"application/json\" id=\"report-data\">")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .expect("the data element");
        assert!(!data.contains('<'));
        let parsed: Json = serde_json::from_str(data).expect("the data is JSON");
        assert_eq!(
            parsed["ops"]["s"].as_array().map(Vec::len),
            parsed["ops"]["k"].as_array().map(Vec::len)
        );
        insta::assert_json_snapshot!(m);
    }

    #[test]
    fn markup_in_a_history_is_escaped_and_a_hostile_svg_is_withheld() {
        assert!(draw::sanitize_svg("<svg onload=alert(1)></svg>").contains("withheld"));
        assert!(draw::sanitize_svg("<svg><script>x</script></svg>").contains("withheld"));
        assert_eq!(draw::sanitize_svg("<svg><g/></svg>"), "<svg><g/></svg>");
        let line = r#"{"index":0,"time_ns":1,"process":0,"type":"invoke","f":"</script><b>x","value":"<img src=x>"}
{"index":1,"time_ns":2,"process":0,"type":"ok","f":"</script><b>x","value":"<img src=x>"}
"#;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("h.jsonl");
        std::fs::write(&path, line).expect("write");
        let history = crate::check::load(&path, None).expect("reads");
        let results = serde_json::json!({"valid": "unknown", "checkers": {}, "stats": {}});
        let input = Input::new(&history, &results, None, None, Vec::new(), BTreeMap::new());
        let html = render(&input).expect("renders");
        assert!(!html.contains("<img src=x>") && !html.contains("</script><b>"));
    }
}
