//! A cycle drawn as SVG in pure Rust: no Graphviz needed, so the report can embed it anywhere.
//!
//! A cycle has the simplest layout there is: its transactions evenly on a circle in cycle order, each
//! edge an arrow to the next, coloured and labelled by kind (the colours of [`super::dot::colour`]).
//! This is what layout engines such as layout-rs would produce for a ring, without the dependency.

use std::f64::consts::PI;
use std::fmt::Write;

use super::dot::colour;
use super::explain::Step;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG document of one cycle.
pub fn render(title: &str, steps: &[Step]) -> String {
    let n = steps.len().max(1);
    let radius = 60.0 + 22.0 * n as f64;
    let (box_w, box_h) = (84.0, 28.0);
    let size = 2.0 * radius + 2.0 * box_w;
    let (cx, cy) = (size / 2.0, size / 2.0 + 20.0);
    let at = |i: usize| {
        // Start at the top and go clockwise, so the cycle reads like a clock.
        let a = -PI / 2.0 + 2.0 * PI * i as f64 / n as f64;
        (cx + radius * a.cos(), cy + radius * a.sin())
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="monospace" font-size="12">"#,
        w = size,
        h = size + 20.0
    );
    s.push_str(r#"<defs>"#);
    for kind in ["ww", "wr", "rw", "process", "realtime"] {
        let _ = write!(
            s,
            r#"<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{c}"/></marker>"#,
            c = colour(kind)
        );
    }
    s.push_str("</defs>");
    let _ = write!(
        s,
        r#"<text x="{:.0}" y="18" text-anchor="middle" font-weight="bold">{}</text>"#,
        cx,
        escape(title)
    );
    for (i, st) in steps.iter().enumerate() {
        let (x1, y1) = at(i);
        let (x2, y2) = at((i + 1) % n);
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / len, dy / len);
        // Stop the arrow at the boxes' edges (approximately: the half-diagonal of the box).
        let pad = (box_w / 2.0).min(len / 3.0);
        let (sx, sy, ex, ey) = (x1 + ux * pad, y1 + uy * pad, x2 - ux * pad, y2 - uy * pad);
        // Bend outwards so that a 2-cycle draws two distinct arcs.
        let (mx, my) = ((sx + ex) / 2.0 - uy * 30.0, (sy + ey) / 2.0 + ux * 30.0);
        let c = colour(st.kind);
        let kind = if matches!(st.kind, "ww" | "wr" | "rw" | "process" | "realtime") {
            st.kind
        } else {
            "ww"
        };
        let _ = write!(
            s,
            r#"<path d="M {sx:.1} {sy:.1} Q {mx:.1} {my:.1} {ex:.1} {ey:.1}" fill="none" stroke="{c}" stroke-width="2" marker-end="url(#arrow-{kind})"/>"#
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="{c}" text-anchor="middle">{}</text>"#,
            mx,
            my,
            escape(&st.label)
        );
    }
    for (i, st) in steps.iter().enumerate() {
        let (x, y) = at(i);
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{box_w}" height="{box_h}" rx="4" fill="#ffffff" stroke="#333333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            x - box_w / 2.0,
            y - box_h / 2.0,
            y + 4.0,
            escape(&st.from)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_transaction_and_edge() {
        let steps: Vec<Step> = (0..3)
            .map(|i| Step {
                from: format!("T{i}"),
                to: format!("T{}", (i + 1) % 3),
                kind: if i == 0 { "rw" } else { "wr" },
                label: format!("k<{i}>"),
                because: String::new(),
            })
            .collect();
        let svg = render("G-single", &steps);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert_eq!(svg.matches("stroke-width=\"2\"").count(), 3);
        assert!(svg.contains("k&lt;0&gt;"), "labels are escaped");
    }
}
