//! `verity list`: every target, workload, bug knob and checker, one line each.

use verity_checkers::registry::CHECKERS;
use verity_targets::registry::{bugs, TARGETS};
use verity_workloads::registry::WORKLOADS;

pub fn lines() -> Vec<String> {
    let mut out = Vec::new();
    for (name, about) in TARGETS {
        out.push(format!("target    {name:<20} {about}"));
    }
    for (name, about) in WORKLOADS {
        out.push(format!("workload  {name:<20} {about}"));
    }
    for (target, _) in TARGETS {
        for (name, about) in bugs(target) {
            out.push(format!("bug       {name:<20} ({target}) {about}"));
        }
    }
    for (name, about) in CHECKERS {
        out.push(format!("checker   {name:<20} {about}"));
    }
    out
}

pub fn print() {
    for l in lines() {
        println!("{l}");
    }
}
