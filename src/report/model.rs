//! What a report says, before it is HTML: the banner, one section per checker with its anomalies
//! (words, operations, drawings), and the tables. A pure function of the history, results.json and
//! run.json, so that a report is reproducible and its text parts can be snapshot-tested.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value as Json;
use verity_checkers::{Validity, Verdict};

use super::draw;
use super::Input;

/// How many examples of one anomaly name a section shows (results.json keeps up to 20).
const EXAMPLES_SHOWN: usize = 8;
/// How many operations an anomaly lists by name.
const OPS_LISTED: usize = 24;

#[derive(Debug, Serialize)]
pub struct Model {
    pub title: String,
    pub verdict: String,
    pub anomaly_types: Vec<String>,
    /// (label, value) pairs of the banner: target, workload, nemesis, seed, bugs, …
    pub facts: Vec<(String, String)>,
    pub command: Option<String>,
    pub sections: Vec<Section>,
    pub op_counts: Vec<OpCount>,
    pub faults: Vec<Fault>,
    pub errors: Vec<(String, String, u64)>,
    pub files: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Section {
    pub checker: String,
    pub verdict: String,
    pub cause: Option<String>,
    /// The checker's own summary lines (the ones the terminal prints).
    pub explanation: Vec<String>,
    pub counts: Vec<(String, u64)>,
    pub details: Vec<(String, String)>,
    pub anomalies: Vec<AnomalyView>,
    /// How long the checker took, when known ("0.042 s").
    #[serde(skip)]
    pub took: String,
    /// Anomalies found but not shown (beyond the examples kept).
    pub not_shown: u64,
}

#[derive(Debug, Serialize)]
pub struct AnomalyView {
    pub id: String,
    pub name: String,
    pub message: String,
    pub ops: Vec<OpRef>,
    /// Expected and observed, as (key, expected, observed) rows.
    pub evidence: Vec<(String, String, String)>,
    /// The evidence table's column names.
    pub evidence_head: (String, String, String),
    /// An inline SVG drawing (cycle, or concurrent operations on a time axis), when there is one.
    #[serde(skip)]
    pub svg: Option<String>,
    pub drawing: Option<String>,
    /// Model states reached (nonlinearizable): (operation, state after it).
    pub states: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpRef {
    /// The event index of the invocation (or the event itself when it is not an operation).
    pub index: u64,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct OpCount {
    pub f: String,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub pending: u64,
}

#[derive(Debug, Serialize)]
pub struct Fault {
    pub time_s: String,
    pub f: String,
    pub value: String,
    pub error: String,
}

fn s(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn verdict_word(v: &Json) -> String {
    match v {
        Json::Bool(true) => "valid".into(),
        Json::Bool(false) => "invalid".into(),
        Json::String(s) => s.clone(),
        _ => "unknown".into(),
    }
}

pub fn build(input: &Input) -> Model {
    let r = input.results;
    let meta = input.meta;
    let mut facts = Vec::new();
    let mut fact = |k: &str, v: String| {
        if !v.is_empty() {
            facts.push((k.to_string(), v));
        }
    };
    fact("target", s(&r["target"]));
    fact("workload", s(&r["workload"]));
    if let Some(m) = meta {
        let nemesis = if m.nemesis.is_empty() {
            "none".to_string()
        } else {
            format!(
                "{} every {}",
                m.nemesis.join(","),
                crate::args::format_duration(std::time::Duration::from_secs_f64(
                    m.nemesis_interval_s
                ))
            )
        };
        fact("nemesis", nemesis);
        for (k, v) in &m.target_options {
            fact(k, v.clone());
        }
        fact("concurrency", m.concurrency.to_string());
        fact("started", m.started_at.clone());
        fact("verity", m.verity_version.clone());
    }
    fact("seed", s(&r["seed"]));
    let bugs: Vec<String> = r["bugs"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    fact("bugs", bugs.join(", "));
    fact(
        "operations",
        format!(
            "{} ({} ok, {} fail, {} info) in {} s, {} ops/s",
            s(&r["stats"]["ops"]),
            s(&r["stats"]["ok"]),
            s(&r["stats"]["fail"]),
            s(&r["stats"]["info"]),
            s(&r["stats"]["duration_s"]),
            r["stats"]["ops_per_s"]
                .as_f64()
                .map_or(String::new(), |x| format!("{x:.0}"))
        ),
    );
    if let Some(source) = &input.source {
        fact("history", source.clone());
    }

    let mut sections = Vec::new();
    if let Some(checkers) = r["checkers"].as_object() {
        for (name, v) in checkers {
            sections.push(section(name, v, input));
        }
    }
    let op_counts = r["stats"]["by_f"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(f, c)| OpCount {
                    f: f.clone(),
                    ok: c["ok"].as_u64().unwrap_or(0),
                    fail: c["fail"].as_u64().unwrap_or(0),
                    info: c["info"].as_u64().unwrap_or(0),
                    pending: c["pending"].as_u64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    let faults = r["nemesis"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| Fault {
                    time_s: f["time_s"]
                        .as_f64()
                        .map_or(String::new(), |t| format!("{t:.3}")),
                    f: s(&f["f"]),
                    value: short(&s(&f["value"]), 160),
                    error: s(&f["error"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let errors = r["stats"]["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        s(&e["type"]),
                        s(&e["reason"]),
                        e["count"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut notes = Vec::new();
    if let Some(t) = r["history"]["torn_tail"].as_object() {
        notes.push(format!(
            "the history ends in a partial line (line {}, {} bytes dropped): the writer was stopped mid-line",
            s(&t["line"]),
            s(&t["bytes"])
        ));
    }
    Model {
        title: match (&input.source, r["target"].as_str()) {
            (Some(src), None) => format!(
                "verity: {}",
                std::path::Path::new(src)
                    .file_name()
                    .map_or(src.clone(), |f| f.to_string_lossy().into_owned())
            ),
            _ => format!("verity: {} {}", s(&r["target"]), s(&r["workload"]))
                .trim()
                .to_string(),
        },
        verdict: verdict_word(&r["valid"]),
        anomaly_types: r["anomaly_types"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default(),
        facts,
        command: r["command"].as_str().map(str::to_string),
        sections,
        op_counts,
        faults,
        errors,
        files: input.files.clone(),
        notes,
    }
}

pub fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn section(name: &str, v: &Json, input: &Input) -> Section {
    let verdict: Option<Verdict> = serde_json::from_value(v.clone()).ok();
    let explanation = verdict
        .as_ref()
        .and_then(|verdict| {
            let entry = verity_checkers::registry::CHECKERS.get(name).ok()?;
            Some((entry.explain)(verdict))
        })
        .unwrap_or_default();
    let counts: Vec<(String, u64)> = v["anomaly_counts"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, c)| (k.clone(), c.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let mut details = Vec::new();
    if let Some(d) = v["details"].as_object() {
        for (k, x) in d {
            // Scalars and small objects are figures; the bulky ones are drawn instead.
            let text = match x {
                Json::Object(_) | Json::Array(_) => {
                    let t = x.to_string();
                    if t.len() > 200 {
                        continue;
                    }
                    t
                }
                other => s(other),
            };
            details.push((k.clone(), text));
        }
    }
    let mut shown: BTreeMap<String, usize> = BTreeMap::new();
    let mut anomalies = Vec::new();
    let mut total_shown = 0u64;
    for (i, a) in v["anomalies"].as_array().into_iter().flatten().enumerate() {
        let aname = s(&a["name"]);
        let n = shown.entry(aname.clone()).or_default();
        if *n >= EXAMPLES_SHOWN {
            continue;
        }
        *n += 1;
        total_shown += 1;
        anomalies.push(anomaly(name, i, a, v, input));
    }
    let found: u64 = counts.iter().map(|(_, c)| c).sum();
    Section {
        checker: name.to_string(),
        verdict: verdict_word(&v["valid"]),
        cause: v["cause"].as_str().map(str::to_string),
        explanation,
        counts,
        details,
        anomalies,
        took: input
            .check_seconds
            .get(name)
            .map_or(String::new(), |t| format!("{t:.3} s")),
        not_shown: found.saturating_sub(total_shown),
    }
}

fn anomaly(checker: &str, i: usize, a: &Json, verdict: &Json, input: &Input) -> AnomalyView {
    let name = s(&a["name"]);
    let message = s(&a["message"]);
    let events: Vec<u64> = a["events"]
        .as_array()
        .map(|e| e.iter().filter_map(Json::as_u64).collect())
        .unwrap_or_default();
    let ops = input.ops_of(&events, OPS_LISTED);
    let mut view = AnomalyView {
        id: format!("{checker}-{i}"),
        name: name.clone(),
        message: message.clone(),
        ops,
        evidence: evidence(&a["expected"], &a["observed"]),
        evidence_head: (String::new(), "expected".into(), "observed".into()),
        svg: None,
        drawing: None,
        states: Vec::new(),
    };
    match checker {
        "graph" => {
            let cycle = verdict["details"]["cycles"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| {
                    c["anomaly"] == a["name"]
                        && c["explanation"]
                            .as_str()
                            .is_some_and(|e| message.starts_with(e.trim_end_matches('…')))
                });
            if let Some(svg) = cycle.and_then(|c| c["svg"].as_str()) {
                view.svg = Some(draw::sanitize_svg(svg));
                view.drawing = Some("dependency cycle".into());
            }
            // The cycle's steps are the evidence; the raw list adds nothing to the drawing.
            view.evidence.clear();
            view.evidence_head = ("edge".into(), "dependency".into(), "because".into());
            if let Some(steps) = a["observed"].as_array() {
                for st in steps {
                    view.evidence.push((
                        format!("{} → {}", s(&st["from"]), s(&st["to"])),
                        s(&st["label"]),
                        s(&st["because"]),
                    ));
                }
            }
        }
        "linearizable" if name == "nonlinearizable" => {
            let cx = &verdict["details"]["counterexample"];
            if cx.is_object() && is_this_counterexample(cx, &events) {
                view.svg = draw::concurrency(cx, input);
                view.drawing = view.svg.as_ref().map(|_| {
                    "the end of the longest linearizable prefix (grey, with the model state after \
                     each), the operation that cannot be placed (black) and what ran concurrently \
                     with it"
                        .into()
                });
                view.states = cx["prefix_tail"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| (s(&p["op"]["op"]), s(&p["state_after"])))
                    .collect();
            }
            if let Some(states) = a["expected"]["states"].as_array() {
                view.evidence = vec![(
                    "model state where the operation was due".into(),
                    states.iter().map(s).collect::<Vec<_>>().join(" or "),
                    s(&a["observed"]),
                )];
            }
        }
        _ => {}
    }
    view
}

/// Whether the verdict's one counterexample is about this anomaly (it names the same operation).
fn is_this_counterexample(cx: &Json, events: &[u64]) -> bool {
    let Some(inv) = cx["op"]["invoke_index"].as_u64() else {
        return false;
    };
    events.contains(&inv)
}

/// Expected and observed, key by key when both are objects.
fn evidence(expected: &Json, observed: &Json) -> Vec<(String, String, String)> {
    match (expected, observed) {
        (Json::Null, Json::Null) => Vec::new(),
        (Json::Object(e), Json::Object(o)) => {
            let mut keys: Vec<&String> = e.keys().chain(o.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .map(|k| {
                    (
                        k.clone(),
                        short(&e.get(k).map(s).unwrap_or_default(), 400),
                        short(&o.get(k).map(s).unwrap_or_default(), 400),
                    )
                })
                .collect()
        }
        (e, o) => vec![("value".into(), short(&s(e), 400), short(&s(o), 400))],
    }
}

/// The verdict of a results document.
pub fn validity(v: &Json) -> Validity {
    match v {
        Json::Bool(true) => Validity::Valid,
        Json::Bool(false) => Validity::Invalid,
        _ => Validity::Unknown,
    }
}
