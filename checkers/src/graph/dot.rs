//! A cycle as a Graphviz DOT digraph, for `dot -Tsvg` or any DOT viewer.
//!
//! Elle writes its cycles as DOT files under `elle/` in the store; we do the same, with the edge
//! labels of the proof (`ww 3`, `rw 3`, `realtime`) so the drawing and the words match. The pure-Rust
//! SVG in [`super::svg`] is what the report embeds; DOT is for people with Graphviz at hand.

use super::explain::Step;

/// Escapes a string for a double-quoted DOT id or label.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Colour per edge kind, as Elle's plots use them.
pub fn colour(kind: &str) -> &'static str {
    match kind {
        "ww" => "#1f77b4",
        "wr" => "#2ca02c",
        "rw" => "#d62728",
        "process" => "#9467bd",
        "realtime" => "#7f7f7f",
        _ => "#000000",
    }
}

/// The DOT text of one cycle.
pub fn render(title: &str, steps: &[Step]) -> String {
    let mut s = format!("digraph {} {{\n", quote(title));
    s.push_str("  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
    s.push_str(&format!("  label={};\n", quote(title)));
    for st in steps {
        s.push_str(&format!(
            "  {} -> {} [label={}, color=\"{}\", fontcolor=\"{}\"];\n",
            quote(&st.from),
            quote(&st.to),
            quote(&st.label),
            colour(st.kind),
            colour(st.kind)
        ));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_two_cycle() {
        let steps = vec![
            Step {
                from: "T1".into(),
                to: "T2".into(),
                kind: "rw",
                label: "rw 3".into(),
                because: String::new(),
            },
            Step {
                from: "T2".into(),
                to: "T1".into(),
                kind: "wr",
                label: "wr \"x\"".into(),
                because: String::new(),
            },
        ];
        let d = render("G-single", &steps);
        assert!(d.starts_with("digraph \"G-single\" {"));
        assert!(d.contains("\"T1\" -> \"T2\" [label=\"rw 3\""));
        assert!(d.contains("label=\"wr \\\"x\\\"\""), "{d}");
        assert!(d.trim_end().ends_with('}'));
    }
}
