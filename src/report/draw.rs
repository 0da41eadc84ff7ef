//! Drawings made on the server side, as inline SVG: the operation a linearizability search could
//! not place, with the operations concurrent with it as bars on a time axis.

use std::fmt::Write;

use serde_json::Value as Json;

use super::Input;

/// How many concurrent operations are drawn (the rest are counted in the caption).
const BARS_MAX: usize = 40;
const ROW: f64 = 22.0;
const LEFT: f64 = 430.0;
const WIDTH: f64 = 1000.0;
/// How many operations of the end of the longest linearizable prefix are drawn, with the model
/// state after each.
const PREFIX_DRAWN: usize = 6;

/// Escapes text for SVG and HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A checker's SVG as it may be inlined: it must be one `<svg>` element without scripts or event
/// handlers (the graph checker writes none; a results.json edited by hand might).
pub fn sanitize_svg(svg: &str) -> String {
    let t = svg.trim();
    let lower = t.to_ascii_lowercase();
    let unsafe_markup = lower.contains("<script")
        || lower.contains("javascript:")
        || lower.contains("<foreignobject")
        || lower
            .split_whitespace()
            .any(|w| w.starts_with("on") && w.contains('='));
    if !t.starts_with("<svg") || !t.ends_with("</svg>") || unsafe_markup {
        return format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"30\"><text x=\"4\" y=\"20\">{}</text></svg>",
            esc("(drawing withheld: it is not a plain SVG)")
        );
    }
    t.to_string()
}

struct Bar {
    label: String,
    /// The model state after it (operations of the linearizable prefix).
    state: Option<String>,
    start: u64,
    end: Option<u64>,
    outcome: String,
    failing: bool,
}

/// The failing operation (red) and its concurrent operations on one time axis.
pub fn concurrency(cx: &Json, input: &Input) -> Option<String> {
    let bar = |op: &Json, failing: bool, state: Option<String>| -> Option<Bar> {
        let start = input.time_of(op["invoke_index"].as_u64()?)?;
        let end = op["completion_index"]
            .as_u64()
            .and_then(|c| input.time_of(c));
        Some(Bar {
            label: format!(
                "p{} {}",
                op["process"],
                super::model::short(op["op"].as_str().unwrap_or(""), 34)
            ),
            state,
            start,
            end,
            outcome: op["outcome"].as_str().unwrap_or("").to_string(),
            failing,
        })
    };
    let prefix = cx["prefix_tail"].as_array().cloned().unwrap_or_default();
    let mut bars: Vec<Bar> = prefix
        .iter()
        .skip(prefix.len().saturating_sub(PREFIX_DRAWN))
        .filter_map(|p| {
            bar(
                &p["op"],
                false,
                Some(p["state_after"].as_str().unwrap_or("").to_string()),
            )
        })
        .collect();
    bars.push(bar(&cx["op"], true, None)?);
    let concurrent = cx["concurrent"].as_array().cloned().unwrap_or_default();
    bars.extend(
        concurrent
            .iter()
            .take(BARS_MAX)
            .filter_map(|op| bar(op, false, None)),
    );
    let t0 = bars.iter().map(|b| b.start).min()?;
    let t_end = bars
        .iter()
        .map(|b| b.end.unwrap_or(b.start))
        .max()?
        .max(t0 + 1);
    let span = (t_end - t0) as f64;
    let when = |t: u64| {
        if input.logical_clock {
            format!("event {}", t / 1_000_000)
        } else {
            format!("{:.3} s", t as f64 / 1e9)
        }
    };
    let x = |t: u64| LEFT + (t.saturating_sub(t0) as f64 / span) * (WIDTH - LEFT - 20.0);
    let height = ROW * (bars.len() as f64 + 2.0) + 10.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"concurrency\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"monospace\" font-size=\"11\">"
    );
    for (row, b) in bars.iter().enumerate() {
        let y = 10.0 + row as f64 * ROW;
        let x0 = x(b.start);
        let x1 = b.end.map_or(WIDTH - 20.0, x).max(x0 + 2.0);
        let class = if b.failing {
            "bar failing"
        } else if b.state.is_some() {
            "bar prefix"
        } else {
            match b.outcome.as_str() {
                "ok" => "bar ok",
                "fail" => "bar fail",
                _ => "bar info",
            }
        };
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">{}</text><rect class=\"{class}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{} ({}), {} µs</title></rect>",
            y + 13.0,
            esc(&match &b.state {
                Some(st) => format!("{} ⇒ {}", b.label, super::model::short(st, 40)),
                None if b.failing => format!("{}  ✗ cannot be placed", b.label),
                None => b.label.clone(),
            }),
            y + 3.0,
            x1 - x0,
            ROW - 6.0,
            esc(&b.label),
            esc(&b.outcome),
            b.end.map_or("never completed".to_string(), |e| format!("{}", (e - b.start) / 1000)),
        );
    }
    let axis_y = 10.0 + bars.len() as f64 * ROW + 8.0;
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{axis_y}\" x2=\"{:.1}\" y2=\"{axis_y}\" stroke=\"#888\"/><text x=\"{LEFT}\" y=\"{:.1}\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        WIDTH - 20.0,
        axis_y + 14.0,
        when(t0),
        WIDTH - 20.0,
        axis_y + 14.0,
        when(t_end),
    );
    let more = concurrent.len().saturating_sub(BARS_MAX);
    if more > 0 {
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">… and {more} more concurrent operations</text>",
            axis_y + 14.0
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}
