//! The suite parser: what it reads, where it locates what it refuses, and that no input makes it
//! panic or give an error without a place.

use proptest::prelude::*;

use super::*;

fn catalog() -> Catalog {
    let memory = TargetInfo {
        name: "memory".into(),
        workloads: vec!["bank".into(), "ledger-append".into()],
        bugs: vec![
            ("bank".into(), vec!["lost-update".into()]),
            ("ledger-append".into(), vec!["snapshot-isolation".into()]),
        ],
        options: vec![],
        required: vec![],
    };
    let postgres = TargetInfo {
        name: "postgres".into(),
        workloads: vec!["bank".into()],
        bugs: vec![],
        options: vec![(
            "isolation".into(),
            vec!["read-committed".into(), "serializable".into()],
        )],
        required: vec![],
    };
    let http = TargetInfo {
        name: "http".into(),
        workloads: vec!["bank".into()],
        bugs: vec![],
        options: vec![("url".into(), vec![])],
        required: vec!["url".into()],
    };
    Catalog {
        targets: vec![memory, postgres, http],
        default_workload: "bank".into(),
        faults: vec!["partition".into(), "kill".into()],
        checkers: vec!["conservation".into()],
        anomalies: vec!["wrong-total".into(), "G2-item".into()],
    }
}

fn error(text: &str) -> SuiteError {
    match parse(text) {
        Ok(suite) => validate(&suite, &catalog()).expect_err("the suite is refused"),
        Err(e) => e,
    }
}

const GOOD: &str = r#"
[defaults]
target = "memory"
time-limit = "2s"
seeds = 3
seed = 10

[[scenario]]
name = "bank"

[[scenario]]
name = "lost-update"
bugs = ["lost-update"]
expect = ["wrong-total"]
seeds = [7, 9]
time-limit = 1

[[scenario]]
name = "pg"
target = "postgres"
isolation = "serializable"
nemesis = ["partition", "kill"]
expect = "unknown"
"#;

#[test]
fn scenarios_inherit_the_defaults_and_override_them() {
    let suite = parse(GOOD).expect("the suite parses");
    validate(&suite, &catalog()).expect("every name is known");
    let [bank, lost, pg] = suite.scenarios.as_slice() else {
        panic!("three scenarios, not {}", suite.scenarios.len());
    };
    assert_eq!(bank.target.value, "memory");
    assert_eq!(bank.seeds, vec![10, 11, 12]);
    assert_eq!(bank.expect, Expectation::Verdict(Verdict::Valid));
    assert_eq!(bank.time_limit, Some(Duration::from_secs(2)));
    assert_eq!(lost.seeds, vec![7, 9], "a list replaces the count");
    assert_eq!(lost.time_limit, Some(Duration::from_secs(1)));
    assert_eq!(lost.expect.describe(), "wrong-total");
    assert_eq!(pg.target.value, "postgres");
    assert_eq!(pg.expect, Expectation::Verdict(Verdict::Unknown));
    assert_eq!(
        pg.run_args(10),
        [
            "--target",
            "postgres",
            "--time-limit",
            "2s",
            "--nemesis",
            "partition,kill",
            "--isolation",
            "serializable",
            "--seed",
            "10"
        ]
    );
    assert_eq!(
        lost.run_args(7),
        [
            "--target",
            "memory",
            "--bug",
            "lost-update",
            "--time-limit",
            "1",
            "--seed",
            "7"
        ]
    );
}

#[test]
fn an_unknown_key_is_located_and_the_valid_keys_are_named() {
    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\ntime_limit = \"1s\"\n");
    assert_eq!(e.at, Location { line: 4, column: 1 }, "{e}");
    assert!(
        e.message.contains("time_limit") && e.message.contains("time-limit"),
        "{e}"
    );
    let e = error("[scenarios]\n");
    assert_eq!(e.at.line, 1, "{e}");
    assert!(e.message.contains("scenarios"), "{e}");
}

#[test]
fn a_bad_duration_is_located_at_its_value() {
    let e = error(
        "[defaults]\ntarget = \"memory\"\n\n[[scenario]]\nname = \"a\"\nrecovery = \"ten\"\n",
    );
    assert_eq!(
        e.at,
        Location {
            line: 6,
            column: 12
        },
        "{e}"
    );
    assert!(e.message.contains("malformed duration"), "{e}");
    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\ntime-limit = -3\n");
    assert_eq!(e.at.line, 4, "{e}");
    assert!(e.message.contains("negative"), "{e}");
}

#[test]
fn unknown_names_are_located_with_the_valid_choices() {
    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"memroy\"\n");
    assert_eq!(
        e.at,
        Location {
            line: 3,
            column: 10
        },
        "{e}"
    );
    assert!(
        e.message.contains("memroy") && e.message.contains("memory, postgres"),
        "{e}"
    );

    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nworkload = \"ledger-append\"\nbugs = \"lost-update\"\n");
    assert_eq!(e.at.line, 5, "{e}");
    assert!(e.message.contains("snapshot-isolation"), "{e}");

    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nexpect = [\"G2item\"]\n");
    assert_eq!(e.at.line, 4, "{e}");
    assert!(e.message.contains("anomaly \"G2item\""), "{e}");

    let e =
        error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nisolation = \"serializable\"\n");
    assert_eq!(e.at.line, 4, "{e}");
    assert!(e.message.contains("takes no isolation"), "{e}");

    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"postgres\"\nisolation = \"snapshot\"\n");
    assert!(e.message.contains("read-committed, serializable"), "{e}");

    let e =
        error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nnemesis = \"partition,pause\"\n");
    assert!(e.message.contains("fault \"pause\""), "{e}");
}

#[test]
fn scenarios_need_a_name_and_a_target_and_names_are_unique() {
    let e = error("[[scenario]]\ntarget = \"memory\"\n");
    assert_eq!(e.at.line, 1, "{e}");
    assert!(e.message.contains("no name"), "{e}");
    let e = error("[[scenario]]\nname = \"a\"\n");
    assert!(e.message.contains("no target"), "{e}");
    let e = error(
        "[defaults]\ntarget = \"memory\"\n[[scenario]]\nname = \"a\"\n[[scenario]]\nname = \"a\"\n",
    );
    assert_eq!(e.at.line, 6, "{e}");
    assert!(e.message.contains("line 4"), "{e}");
    let e = error("[[scenario]]\nname = \"a b\"\ntarget = \"memory\"\n");
    assert!(e.message.contains("letters, digits"), "{e}");
    let e = error("# nothing here\n");
    assert!(e.message.contains("no scenario"), "{e}");
}

#[test]
fn a_verdict_cannot_hide_in_a_list_of_anomalies() {
    let e = error(
        "[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nexpect = [\"invalid\", \"G2-item\"]\n",
    );
    assert_eq!(e.at.line, 4, "{e}");
    assert!(e.message.contains("is a verdict"), "{e}");
    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nexpect = []\n");
    assert!(e.message.contains("expect is empty"), "{e}");
}

#[test]
fn seeds_are_a_count_or_a_list() {
    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nseeds = 0\n");
    assert!(e.message.contains("between 1 and"), "{e}");
    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nseeds = [1, 1]\n");
    assert!(e.message.contains("twice"), "{e}");
    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nseeds = [1]\nseed = 4\n");
    assert_eq!(e.at.line, 5, "{e}");
    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nseeds = \"many\"\n");
    assert!(e.message.contains("list of seeds"), "{e}");
}

#[test]
fn a_server_needs_a_target_that_takes_a_url() {
    let e = error(
        "[[scenario]]\nname = \"a\"\ntarget = \"memory\"\nserver = \"verity serve-ledger\"\n",
    );
    assert!(e.message.contains("takes no url"), "{e}");
    let e = error(
        "[[scenario]]\nname = \"a\"\ntarget = \"http\"\nserver = \"x\"\nurl = \"http://h\"\n",
    );
    assert!(e.message.contains("not both"), "{e}");
    let ok =
        parse("[[scenario]]\nname = \"a\"\ntarget = \"http\"\nserver = \"verity serve-ledger\"\n")
            .expect("parses");
    validate(&ok, &catalog()).expect("valid");
}

#[test]
fn a_target_that_needs_an_option_is_refused_without_it_before_anything_runs() {
    let e = error("[[scenario]]\nname = \"a\"\ntarget = \"http\"\n");
    assert!(e.message.contains("needs url"), "{e}");
    assert_eq!(e.at.line, 2, "located at the scenario's name: {e}");
    let given = parse("[[scenario]]\nname = \"a\"\ntarget = \"http\"\nurl = \"http://h\"\n")
        .expect("parses");
    validate(&given, &catalog()).expect("a url given in the scenario is enough");
    let inherited =
        parse("[defaults]\nurl = \"http://h\"\n[[scenario]]\nname = \"a\"\ntarget = \"http\"\n")
            .expect("parses");
    validate(&inherited, &catalog()).expect("a url from [defaults] is enough");
}

#[test]
fn locations_count_characters_not_bytes_and_clamp_to_the_text() {
    let text = "é = 1\nñé x";
    assert_eq!(Location::of(text, 0), Location { line: 1, column: 1 });
    assert_eq!(Location::of(text, 2), Location { line: 1, column: 2 });
    assert_eq!(Location::of(text, 9), Location { line: 2, column: 2 });
    assert_eq!(Location::of(text, 8), Location { line: 2, column: 1 });
    // Inside a character, and past the end: still a place in the text.
    assert_eq!(Location::of(text, 1), Location { line: 1, column: 1 });
    assert_eq!(Location::of(text, 999), Location { line: 2, column: 5 });
}

/// Lines that are almost a suite: real keys and tables with values of every shape, right and wrong.
fn line() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "name",
        "target",
        "workload",
        "bugs",
        "seeds",
        "seed",
        "expect",
        "forbid",
        "server",
        "time-limit",
        "concurrency",
        "rate",
        "nemesis",
        "recovery",
        "hot",
        "checkers",
        "nodes",
        "url",
        "isolation",
        "read-from",
        "bogus",
        "time_limit",
    ]);
    let values = prop::sample::select(vec![
        "\"memory\"",
        "\"postgres\"",
        "\"x\"",
        "\"1s\"",
        "\"ten\"",
        "3",
        "-1",
        "0",
        "1.5",
        "[1, 2]",
        "[1, 1]",
        "[]",
        "[\"G2-item\"]",
        "[\"valid\", \"G2-item\"]",
        "\"valid\"",
        "true",
        "{ a = 1 }",
        "\"serializable\"",
        "18446744073709551615",
        "\"\"",
        "[\"partition\"]",
        "\"é\"",
        "\"a b\"",
    ]);
    prop_oneof![
        (keys, values).prop_map(|(k, v)| format!("{k} = {v}")),
        prop::sample::select(vec![
            "[[scenario]]",
            "[defaults]",
            "[scenario]",
            "[[defaults]]",
            "[x]",
            "# c",
            ""
        ])
        .prop_map(String::from),
        "[ -~]{0,20}",
    ]
}

fn assert_located(text: &str) {
    let lines = text.lines().count().max(1) + 1;
    let result = parse(text).and_then(|s| validate(&s, &catalog()).map(|()| s));
    if let Err(e) = result {
        assert!(
            (1..=lines).contains(&e.at.line) && e.at.column >= 1,
            "{e} is not a place in a text of {lines} lines"
        );
        assert!(!e.message.is_empty() && !e.message.contains('\n'), "{e:?}");
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_and_errors_are_located(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        assert_located(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn almost_suites_never_panic_and_errors_are_located(lines in prop::collection::vec(line(), 0..30)) {
        let mut text = String::from("[defaults]\ntarget = \"memory\"\n[[scenario]]\nname = \"a\"\n");
        text.push_str(&lines.join("\n"));
        assert_located(&text);
        assert_located(&lines.join("\n"));
    }

    #[test]
    fn a_good_suite_cut_anywhere_never_panics(cut in 0..GOOD.len()) {
        let mut end = cut;
        while !GOOD.is_char_boundary(end) {
            end -= 1;
        }
        assert_located(&GOOD[..end]);
    }
}
