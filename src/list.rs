//! `verity list`: every target, workload, bug knob and checker, one line each.

use verity_checkers::registry::CHECKERS;
use verity_targets::registry::{bugs, bugs_for, TARGETS, TXN_WORKLOADS};
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
        let mut txn: Vec<(&str, &str)> = Vec::new();
        for workload in TXN_WORKLOADS {
            for &(name, about) in bugs_for(target, workload) {
                if !bugs(target).iter().any(|(n, _)| *n == name)
                    && !txn.iter().any(|(n, _)| *n == name)
                {
                    txn.push((name, about));
                }
            }
        }
        for (name, about) in txn {
            let workloads = TXN_WORKLOADS.join(", ");
            out.push(format!(
                "bug       {name:<20} ({target}; {workloads}) {about}"
            ));
        }
    }
    for (name, about) in verity_targets::cluster::faults::FAULT_KINDS {
        out.push(format!("fault     {name:<20} {about}"));
    }
    for (name, about) in CHECKERS {
        out.push(format!("checker   {name:<20} {about}"));
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
