//! `verity check` on the histories of tests/data with known verdicts, one file at a time and as a corpus.

use crate::support::verity;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn check(args: &[&str]) -> (i32, String) {
    let out = verity()
        .arg("check")
        .args(args)
        .output()
        .expect("verity runs");
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn knossos_histories_get_their_manifest_verdicts() {
    let manifest = std::fs::read_to_string(format!("{DATA}/knossos/manifest.tsv")).unwrap();
    let mut checked = 0;
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (path, model, expected) = (cols[0], cols[1], cols[2]);
        let (code, out) = check(&[&format!("{DATA}/knossos/{path}"), "--model", model]);
        let want = if expected == "valid" { 0 } else { 1 };
        assert_eq!(code, want, "{path}: expected {expected}\n{out}");
        checked += 1;
    }
    assert_eq!(checked, 33);
}

#[test]
fn a_nil_initial_register_is_still_violated_by_rethink_fail_minimal() {
    let path = format!("{DATA}/knossos/cas-register/bad/rethink-fail-minimal.edn");
    let (code, out) = check(&[&path, "--model", "cas-register", "--initial", "null"]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn bank_histories_get_their_manifest_verdicts() {
    let manifest = std::fs::read_to_string(format!("{DATA}/bank/manifest.tsv")).unwrap();
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, conservation, linearizable) = (cols[0], cols[3], cols[4]);
        let path = format!("{DATA}/bank/{file}");
        for (checker, expected) in [
            ("conservation", conservation),
            ("linearizable", linearizable),
        ] {
            let (code, out) = check(&[&path, "--checker", checker]);
            let want = if expected == "valid" { 0 } else { 1 };
            assert_eq!(code, want, "{file} {checker}: expected {expected}\n{out}");
        }
    }
}

#[test]
fn a_folder_is_checked_as_a_corpus_in_one_call() {
    let (code, out) = check(&[&format!("{DATA}/knossos"), "--model", "cas-register"]);
    assert_eq!(code, 1, "three histories are invalid:\n{out}");
    assert!(
        out.contains("33 histories: 30 valid, 3 invalid, 0 unknown, 0 unreadable"),
        "{out}"
    );
    assert!(
        out.contains("cas-register/bad/cas-failure.edn\tinvalid\tnonlinearizable"),
        "{out}"
    );
}

#[test]
fn a_counterexample_names_the_operation_and_its_concurrent_ones() {
    let path = format!("{DATA}/knossos/cas-register/bad/cas-failure.edn");
    let (code, out) = check(&[&path, "--model", "cas-register"]);
    assert_eq!(code, 1);
    assert!(out.contains("cannot linearize: process 70 read"), "{out}");
    assert!(out.contains("concurrent with it"), "{out}");
    assert!(out.contains("longest linearizable prefix"), "{out}");
}
