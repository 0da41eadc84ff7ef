//! The suite file (verity.toml): any text gives a suite or an error located inside the text, and a
//! suite that parses is checked against a small fixed catalog without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/suite/mod.rs"]
mod suite;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let lines = text.lines().count().max(1) + 1;
    match suite::parse(text) {
        Err(e) => assert!(
            (1..=lines).contains(&e.at.line) && e.at.column >= 1,
            "error outside the text: {}:{}",
            e.at.line,
            e.at.column
        ),
        Ok(parsed) => {
            let catalog = suite::Catalog {
                targets: vec![suite::TargetInfo {
                    name: "memory".into(),
                    workloads: vec!["bank".into(), "ledger-append".into()],
                    bugs: vec![("bank".into(), vec!["lost-update".into()])],
                    options: vec![("style".into(), vec!["atomic".into()])],
                    required: vec![],
                }],
                default_workload: "bank".into(),
                faults: vec!["partition".into()],
                checkers: vec!["conservation".into()],
                anomalies: vec!["wrong-total".into()],
            };
            let _ = suite::validate(&parsed, &catalog);
        }
    }
});
