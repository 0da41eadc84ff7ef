//! Checking a parsed suite against what this build of verity knows: targets and the workloads they
//! serve, their bug knobs and options, fault kinds, checkers and anomaly names.
//!
//! The [`Catalog`] is plain data the caller fills from the registries, so this stays independent of
//! them (and fuzzable with a fixed catalog). A name that is not known is refused at its location
//! with the valid choices — before any scenario runs, so a typo in the last scenario does not
//! cost the twenty minutes of the ones before it.

use super::{Expectation, Located, Scenario, Suite, SuiteError};

/// What a target can do, as far as a suite file is concerned.
#[derive(Debug, Clone, Default)]
pub struct TargetInfo {
    pub name: String,
    pub workloads: Vec<String>,
    /// Bug knobs per workload.
    pub bugs: Vec<(String, Vec<String>)>,
    /// The target options it takes, with their valid values (empty: any value).
    pub options: Vec<(String, Vec<String>)>,
    /// The options it cannot run without.
    pub required: Vec<String>,
}

/// Every name a suite may use.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub targets: Vec<TargetInfo>,
    /// The workload of a scenario that names none (`verity run`'s default).
    pub default_workload: String,
    pub faults: Vec<String>,
    pub checkers: Vec<String>,
    pub anomalies: Vec<String>,
}

/// Checks every name in the suite; the first unknown one is the error.
pub fn validate(suite: &Suite, catalog: &Catalog) -> Result<(), SuiteError> {
    for s in &suite.scenarios {
        scenario(s, catalog)?;
    }
    Ok(())
}

fn known<'a>(
    what: &str,
    name: &Located<String>,
    choices: impl IntoIterator<Item = &'a String>,
    context: &str,
) -> Result<(), SuiteError> {
    let choices: Vec<&String> = choices.into_iter().collect();
    if choices.contains(&&name.value) {
        return Ok(());
    }
    let list: Vec<&str> = choices.iter().map(|c| c.as_str()).collect();
    Err(SuiteError::new(
        name.at,
        format!(
            "unknown {what} {:?}{context}: expected one of {}",
            name.value,
            if list.is_empty() {
                "(none)".to_string()
            } else {
                list.join(", ")
            }
        ),
    ))
}

fn scenario(s: &Scenario, catalog: &Catalog) -> Result<(), SuiteError> {
    let names: Vec<String> = catalog.targets.iter().map(|t| t.name.clone()).collect();
    known("target", &s.target, &names, "")?;
    let target = catalog
        .targets
        .iter()
        .find(|t| t.name == s.target.value)
        .expect("the target was just found by name");
    let workload = match &s.workload {
        Some(w) => {
            let context = format!(" for target {}", target.name);
            known("workload", w, &target.workloads, &context)?;
            w.value.clone()
        }
        None => catalog.default_workload.clone(),
    };
    let empty = Vec::new();
    let knobs = target
        .bugs
        .iter()
        .find(|(w, _)| *w == workload)
        .map_or(&empty, |(_, k)| k);
    for b in &s.bugs {
        let context = format!(" for target {} with workload {workload}", target.name);
        known("bug knob", b, knobs, &context)?;
    }
    for f in &s.flags {
        flag(f, target, catalog)?;
    }
    if let Expectation::AnyOf(anomalies) = &s.expect {
        for a in anomalies {
            known("anomaly", a, &catalog.anomalies, " in expect")?;
        }
    }
    for a in &s.forbid {
        known("anomaly", a, &catalog.anomalies, " in forbid")?;
    }
    for r in &target.required {
        let given = s.flags.iter().any(|f| f.target_option && f.name == r)
            || (r == "url" && s.server.is_some());
        if !given {
            let also = if r == "url" {
                " (or a server that prints it)"
            } else {
                ""
            };
            return Err(SuiteError::new(
                s.name.at,
                format!(
                    "scenario {:?}: target {} needs {r}{also}",
                    s.name.value, target.name
                ),
            ));
        }
    }
    if let Some(server) = &s.server {
        if !target.options.iter().any(|(o, _)| o == "url") {
            return Err(SuiteError::new(
                server.at,
                format!(
                    "target {} takes no url, so a server for it has no use",
                    target.name
                ),
            ));
        }
    }
    Ok(())
}

fn flag(f: &super::Flag, target: &TargetInfo, catalog: &Catalog) -> Result<(), SuiteError> {
    let value = |v: &str| Located {
        value: v.to_string(),
        at: f.at,
    };
    if f.target_option {
        let Some((_, values)) = target.options.iter().find(|(o, _)| o == f.name) else {
            let takes: Vec<&str> = target.options.iter().map(|(o, _)| o.as_str()).collect();
            return Err(SuiteError::new(
                f.at,
                format!(
                    "target {} takes no {} option: it takes {}",
                    target.name,
                    f.name,
                    if takes.is_empty() {
                        "none".to_string()
                    } else {
                        takes.join(", ")
                    }
                ),
            ));
        };
        if !values.is_empty() {
            let context = format!(" for {} of target {}", f.name, target.name);
            known("value", &value(&f.value), values, &context)?;
        }
        return Ok(());
    }
    match f.name {
        "nemesis" => {
            let none = vec!["none".to_string()];
            for k in f.value.split(',') {
                known(
                    "fault",
                    &value(k),
                    catalog.faults.iter().chain(&none),
                    " in nemesis",
                )?;
            }
        }
        "checker" => {
            for c in f.value.split(',') {
                known("checker", &value(c), &catalog.checkers, " in checkers")?;
            }
        }
        _ => {}
    }
    Ok(())
}
