//! Properties of the EDN codec: the reader never panics and locates every error it returns, whatever
//! the bytes (arbitrary ones, and garbage shaped like a history: truncated maps, wrong types, huge
//! numbers, deep nesting, odd unicode); and export then import gives back the history it started from.

use proptest::prelude::*;
use verity_history::edn::write::{write_edn, WriteOptions};
use verity_history::edn::{parse_edn, EdnError};
use verity_history::{Event, EventType, History, Process, Transfer, Value, F};

/// An error is located: a line within the input (or just past its end) and a word on what was
/// expected.
fn assert_located(input: &[u8], err: &EdnError) {
    let lines = 1 + input.iter().filter(|&&b| b == b'\n').count();
    let line = err.line().expect("parse errors carry a line");
    let text = err.to_string();
    assert!(
        (1..=lines + 1).contains(&line),
        "line {line} outside 1..={lines}: {text}"
    );
    assert!(text.contains("expected"), "says what was expected: {text}");
    assert!(!text.contains('\n'), "one line: {text}");
}

fn check(input: &[u8]) {
    match parse_edn(input) {
        // What the reader accepts, the pairing of operations takes without panicking either.
        Ok(h) => drop(h.ops()),
        Err(e) => assert_located(input, &e),
    }
}

/// Pieces of EDN, good and bad, for a field of an op map.
fn snippet() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("nil".to_string()),
        Just(":invoke".to_string()),
        Just(":ok".to_string()),
        Just(":nemesis".to_string()),
        Just(":txn".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999999999".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("9223372036854775807".to_string()),
        Just("1.5e308".to_string()),
        Just("1/0".to_string()),
        Just("##NaN".to_string()),
        Just("#inst \"2020\"".to_string()),
        Just("#{1 1}".to_string()),
        Just("{:a 1 :a 2}".to_string()),
        Just("\\u00e9".to_string()),
        Just("\"\u{202e}\u{0301}\u{feff}\u{1F4A5}\0\"".to_string()),
        Just("\"\\q\"".to_string()),
        Just("[[:append 1 2] [:r 1 [1 2]]]".to_string()),
        Just("{:balances {0 10, 1 20} :transfers #{1 2 5}}".to_string()),
        Just("{0 10, 1 -5}".to_string()),
        Just("{:balances {0 10} :transfers #{\"x\"}}".to_string()),
        (1usize..200).prop_map(|n| "[".repeat(n) + &"]".repeat(n)),
        (1usize..200).prop_map(|n| "{:a ".repeat(n)),
        "[a-z:\\-?!]{1,12}",
        any::<i64>().prop_map(|i| i.to_string()),
        "\\PC{0,8}".prop_map(|s| format!("{s:?}")),
        "\\PC{0,8}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(":type".to_string()),
        Just(":f".to_string()),
        Just(":value".to_string()),
        Just(":process".to_string()),
        Just(":time".to_string()),
        Just(":index".to_string()),
        Just(":final?".to_string()),
        Just(":error".to_string()),
        snippet(),
    ]
}

/// A field of an op map: mostly a plausible value, sometimes garbage, sometimes left out.
fn field(
    key: &'static str,
    good: &'static [&'static str],
) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        40 => prop::sample::select(good).prop_map(move |v| Some(format!("{key} {v}"))),
        1 => snippet().prop_map(move |v| Some(format!("{key} {v}"))),
        2 => Just(None),
    ]
}

fn op_map() -> impl Strategy<Value = String> {
    (
        field(":type", &[":invoke", ":ok", ":fail", ":info"]),
        field(
            ":f",
            &[":read", ":transfer", ":txn", ":write", ":cas", ":start"],
        ),
        field(":process", &["0", "1", "2", ":nemesis"]),
        field(
            ":value",
            &[
                "nil",
                "3",
                "[1 2]",
                "{0 10, 1 20}",
                "{:from 0, :to 1, :amount 5}",
                "{:id 4, :from 1, :to 0, :amount 2}",
                "{:balances {0 10, 1 20} :transfers #{1 2}}",
                "[[:append 1 2] [:r 1 nil]]",
                "[[:append 1 2] [:r 1 [1 2]]]",
                "[[:w 1 2] [:r 2 3]]",
            ],
        ),
        field(":time", &["0", "17", "123456789"]),
        field(":index", &["0", "5", "9"]),
        field(":final?", &["true", "false"]),
        prop::option::weighted(0.05, (key(), snippet())),
    )
        .prop_map(|(t, f, p, v, time, index, fin, extra)| {
            let mut fields: Vec<String> = [t, f, p, v, time, index, fin]
                .into_iter()
                .flatten()
                .collect();
            if let Some((k, v)) = extra {
                fields.push(format!("{k} {v}"));
            }
            format!("{{{}}}", fields.join(", "))
        })
}

/// Text shaped like a history: lines of op maps with chosen fields, maybe inside one vector, maybe
/// cut short anywhere.
fn history_like() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(op_map(), 0..12),
        any::<bool>(),
        prop::option::weighted(0.2, any::<prop::sample::Index>()),
    )
        .prop_map(|(ops, vector, cut)| {
            let mut text = ops.join("\n");
            if vector {
                text = format!("[{text}]");
            }
            if let Some(cut) = cut {
                let mut at = cut.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_located(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check(&bytes);
    }

    #[test]
    fn history_shaped_garbage_never_panics_and_errors_are_located(text in history_like()) {
        check(text.as_bytes());
    }
}

// ---- Round trip -------------------------------------------------------------------------------

fn plain_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-1e12f64..1e12).prop_map(Value::Float),
        prop_oneof![Just(1e300), Just(-2.5e-300), Just(-0.0)].prop_map(Value::Float),
        "\\PC{0,10}".prop_map(Value::Str),
        "[ -~\n\t\r]{0,10}".prop_map(Value::Str),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::List),
            prop::collection::vec((map_key(), inner), 0..5).prop_map(Value::map),
        ]
    })
}

fn map_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_?!-]{0,6}",
        any::<i32>().prop_map(|i| i.to_string()),
        "\\PC{0,6}",
        Just("007".to_string()),
        Just("-0".to_string()),
        Just(String::new()),
    ]
}

fn txn_value() -> impl Strategy<Value = Value> {
    let mop =
        prop_oneof![
            (0i64..5, any::<i64>()).prop_map(|(k, v)| Value::List(vec![
                "append".into(),
                Value::Int(k),
                Value::Int(v)
            ])),
            (0i64..5, any::<i64>()).prop_map(|(k, v)| Value::List(vec![
                "w".into(),
                Value::Int(k),
                Value::Int(v)
            ])),
            (0i64..5).prop_map(|k| Value::List(vec!["r".into(), Value::Int(k), Value::Null])),
            (0i64..5, prop::collection::vec(any::<i64>(), 0..4)).prop_map(|(k, l)| Value::List(
                vec!["r".into(), Value::Int(k), Value::int_list(l)]
            )),
        ];
    prop::collection::vec(mop, 1..5).prop_map(Value::List)
}

fn bank_read_value() -> impl Strategy<Value = Value> {
    let balances = prop::collection::vec(any::<i64>(), 1..6);
    prop_oneof![
        balances
            .clone()
            .prop_map(|b| Value::map([("balances", Value::int_list(b))])),
        (balances, prop::collection::vec(0i64..20, 0..8)).prop_map(|(b, applied)| {
            Value::map([
                ("applied", Value::int_list(applied)),
                ("balances", Value::int_list(b)),
            ])
        }),
    ]
}

fn error() -> impl Strategy<Value = Option<String>> {
    prop::option::of(name())
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z][a-z-]{0,10}", "\\PC{1,8}"]
}

/// One event (without index and time, which the history assigns).
fn event() -> impl Strategy<Value = (Process, EventType, F, Value, Option<String>)> {
    let kind = prop_oneof![
        Just(EventType::Invoke),
        Just(EventType::Ok),
        Just(EventType::Fail),
        Just(EventType::Info)
    ];
    let client = (0u64..6).prop_map(Process::Client);
    prop_oneof![
        (client.clone(), kind.clone(), txn_value(), error()).prop_map(|(p, k, v, e)| (
            p,
            k,
            F::Txn,
            v,
            e
        )),
        (client.clone(), kind.clone(), bank_read_value()).prop_map(|(p, k, v)| (
            p,
            k,
            F::Read,
            v,
            None
        )),
        (
            client.clone(),
            (
                0..=i64::MAX as u64,
                any::<u32>(),
                any::<u32>(),
                any::<i64>()
            ),
            kind.clone(),
            error()
        )
            .prop_map(|(p, (id, from, to, amount), k, e)| {
                (
                    p,
                    k,
                    F::Transfer,
                    Value::Transfer(Transfer {
                        id,
                        from,
                        to,
                        amount,
                    }),
                    e,
                )
            }),
        (client, kind.clone(), name(), plain_value(), error()).prop_map(|(p, k, f, v, e)| (
            p,
            k,
            F::from_name(&f),
            v,
            e
        )),
        (name(), plain_value()).prop_map(|(f, v)| (
            Process::Nemesis,
            EventType::Info,
            F::from_name(&f),
            v,
            None
        )),
    ]
}

fn history() -> impl Strategy<Value = History> {
    prop::collection::vec((event(), 0u64..1_000_000_000), 0..30).prop_map(|events| {
        let events = events
            .into_iter()
            .enumerate()
            .map(|(i, ((process, kind, f, value, error), time_ns))| Event {
                index: i as u64 * 2,
                time_ns,
                process,
                kind,
                f,
                value,
                error,
            })
            .collect();
        History::new(events)
    })
}

/// What the round trip may change: a journal of distinct ids is written as a set, which is sorted.
fn normalized(mut h: History) -> History {
    for e in &mut h.events {
        if let Value::Map(m) = &mut e.value {
            if let Some(ids) = m.get("applied").and_then(Value::as_i64_list) {
                let mut sorted = ids.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() == ids.len() && m.len() == 2 && e.f == F::Read {
                    m.insert("applied".into(), Value::int_list(sorted));
                }
            }
        }
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn export_then_import_gives_back_the_history(h in history()) {
        let mut text = Vec::new();
        write_edn(&h, WriteOptions::default(), &mut text).expect("writing to memory");
        let back = parse_edn(&text).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&text)));
        let want = normalized(h);
        prop_assert_eq!(back.events.len(), want.events.len());
        for (b, w) in back.events.iter().zip(&want.events) {
            prop_assert_eq!(b, w, "{}", String::from_utf8_lossy(&text));
        }
    }
}

#[test]
fn a_final_read_is_marked_and_its_journal_is_a_set_unless_an_id_repeats() {
    let ev = |index, kind, value| Event {
        index,
        time_ns: index * 1000,
        process: Process::Client(3),
        kind,
        f: F::Read,
        value,
        error: None,
    };
    let read = |applied: &[i64]| {
        Value::map([
            ("applied", Value::int_list(applied.iter().copied())),
            ("balances", Value::int_list([10, 20])),
        ])
    };
    let h = History::new(vec![
        ev(
            0,
            EventType::Invoke,
            Value::map([("final", Value::Bool(true))]),
        ),
        ev(1, EventType::Ok, read(&[5, 1, 2])),
        ev(2, EventType::Invoke, Value::Null),
        ev(3, EventType::Ok, read(&[5, 1, 5])),
        ev(4, EventType::Invoke, Value::Null),
        ev(
            5,
            EventType::Ok,
            Value::map([("balances", Value::int_list([10, 20]))]),
        ),
    ]);
    let mut out = Vec::new();
    write_edn(&h, WriteOptions::default(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "{:type :invoke, :f :read, :value nil, :time 0, :process 3, :index 0, :final? true}"
    );
    assert_eq!(
        lines[1],
        "{:type :ok, :f :read, :value {:balances {0 10, 1 20} :transfers #{5 1 2}}, :time 1000, :process 3, :index 1, :final? true}"
    );
    assert!(lines[3].contains(":transfers [5 1 5]"), "{}", lines[3]);
    assert!(lines[5].contains(":value {0 10, 1 20},"), "{}", lines[5]);
    let mut plain = Vec::new();
    write_edn(
        &h,
        WriteOptions {
            plain_bank_reads: true,
        },
        &mut plain,
    )
    .unwrap();
    let plain = String::from_utf8(plain).unwrap();
    assert!(
        plain
            .lines()
            .nth(1)
            .unwrap()
            .contains(":value {0 10, 1 20},"),
        "{plain}"
    );
}

/// The garbage above is not all rejected at the first byte: a fair share of it parses, so the
/// property also reaches the op-map checks, the pairing and the normalization.
#[test]
fn history_shaped_garbage_reaches_past_the_syntax() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = history_like();
    let (mut parsed, mut syntax, mut op) = (0, 0, 0);
    for _ in 0..2000 {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        match parse_edn(&text) {
            Ok(h) => parsed += usize::from(!h.is_empty()),
            Err(EdnError::Syntax { .. }) => syntax += 1,
            Err(EdnError::Op { .. }) => op += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        parsed > 0 && syntax > 100 && op > 100,
        "parsed {parsed}, syntax {syntax}, op {op}"
    );
}
