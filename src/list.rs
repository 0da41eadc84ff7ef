//! `verity list`: every target, workload, bug knob, fault, checker and model, one line each, read from
//! the registries.

use verity_checkers::registry::CHECKERS;
use verity_history::registry::Entry;
use verity_targets::registry::TARGETS;
use verity_workloads::registry::WORKLOADS;

pub fn lines() -> Vec<String> {
    let mut out = Vec::new();
    for t in TARGETS.iter() {
        out.push(format!("target    {:<20} {}", t.name(), t.about()));
        out.push(format!(
            "          {:<20} workloads: {}; nemesis: {}; op timeout: {}",
            "",
            t.workloads.join(", "),
            if t.nodes {
                t.default_nemesis
            } else {
                "none (no nodes)"
            },
            crate::args::format_duration(t.op_timeout)
        ));
        for o in t.options {
            let values = if o.values.is_empty() {
                String::new()
            } else {
                format!(" ({})", o.values.join("|"))
            };
            let default = o
                .default
                .map(|d| format!(", default {d}"))
                .unwrap_or_default();
            out.push(format!(
                "          {:<20} --{}{values}: {}{default}",
                "", o.name, o.about
            ));
        }
    }
    for w in WORKLOADS.iter() {
        out.push(format!("workload  {:<20} {}", w.name(), w.about()));
    }
    for t in TARGETS.iter() {
        for ((name, about), workloads) in t.all_bugs() {
            let scope = if workloads.len() == t.workloads.len() {
                t.name.to_string()
            } else {
                format!("{}; {}", t.name, workloads.join(", "))
            };
            out.push(format!("bug       {name:<20} ({scope}) {about}"));
        }
    }
    for (name, about) in verity_nemesis::FAULT_KINDS {
        out.push(format!("fault     {name:<20} {about}"));
    }
    for c in CHECKERS.iter() {
        out.push(format!("checker   {:<20} {}", c.name(), c.about()));
    }
    for (name, about) in verity_checkers::linearizable::MODELS {
        out.push(format!("model     {name:<20} {about}"));
    }
    out
}

pub fn print() {
    for l in lines() {
        println!("{l}");
    }
}
