//! The fast EDN reader against the generic one: on random Jepsen op-map histories printed in every
//! legal layout (one per line, one vector or list, commas or none, comments between and inside
//! maps, maps over several lines, CRLF, keys in any order) the fast reader reads every file, and
//! gives exactly the generic reader's history; on random corruptions of those files it gives the
//! generic reader's history or steps aside, never a different history and never a panic. Files are
//! also read in pieces of a few bytes, so the parallel split meets line starts inside strings, maps
//! and comments.
//!
//! Fixed seed, as the project's other property tests: a failure reproduces.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner};
use verity_history::edn::{parse_edn, parse_edn_fast, parse_edn_fast_in_pieces, parse_edn_generic};
use verity_history::History;

/// An EDN value as the tests print it.
#[derive(Debug, Clone)]
enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Key(String),
    Sym(String),
    Vector(Vec<Edn>),
    List(Vec<Edn>),
    /// Distinct elements, printed in the order given (the reader sorts them).
    Set(Vec<Edn>),
    /// Keys distinct once stringified.
    Map(Vec<(Edn, Edn)>),
    /// Text printed as it is (a whole op map, a transaction).
    Raw(String),
}

/// How blanks are printed: between entries, between elements, after `{`.
#[derive(Debug, Clone)]
struct Style {
    entry: &'static str,
    element: &'static str,
    pair: &'static str,
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop::sample::select(vec![
            ", ",
            " ",
            ",",
            ",\n  ",
            "\n",
            " ; why\n ",
            "\t",
            ",\r\n ",
        ]),
        prop::sample::select(vec![" ", ", ", "  ", "\n", ","]),
        prop::sample::select(vec![" ", "  ", "\t", "\n", ", "]),
    )
        .prop_map(|(entry, element, pair)| Style {
            entry,
            element,
            pair,
        })
}

fn print(e: &Edn, s: &Style, out: &mut String) {
    match e {
        Edn::Nil => out.push_str("nil"),
        Edn::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Edn::Int(i) => out.push_str(&i.to_string()),
        Edn::Float(x) => out.push_str(&format!("{x:?}")),
        Edn::Str(text) => {
            out.push('"');
            for c in text.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    // A newline either way: raw, or escaped.
                    '\n' if text.len() % 2 == 0 => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Edn::Key(k) => {
            out.push(':');
            out.push_str(k);
        }
        Edn::Sym(k) | Edn::Raw(k) => out.push_str(k),
        Edn::Vector(items) => seq(items, "[", "]", s, out),
        Edn::List(items) => seq(items, "(", ")", s, out),
        Edn::Set(items) => seq(items, "#{", "}", s, out),
        Edn::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(s.entry);
                }
                print(k, s, out);
                out.push_str(s.pair);
                print(v, s, out);
            }
            out.push('}');
        }
    }
}

fn seq(items: &[Edn], open: &str, close: &str, s: &Style, out: &mut String) {
    out.push_str(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(s.element);
        }
        print(item, s, out);
    }
    out.push_str(close);
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9*+!_?<>=.-]{0,7}",
        "[a-z]{1,4}/[a-z][a-z0-9-]{0,5}",
        Just("final?".to_string()),
        Just("a.b/c".to_string()),
    ]
}

fn symbol() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,6}".prop_filter("not a reserved word", |s| {
            !matches!(s.as_str(), "nil" | "true" | "false")
        }),
        Just("-".to_string()),
        Just("+".to_string()),
        Just(".5".to_string()),
        Just("-x".to_string()),
        Just("a'b".to_string()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{0,8}",
        "\\PC{0,6}",
        Just("a\"b\\c\nd\te\r".to_string()),
        Just("{:not \"a map\"} [;".to_string()),
        Just("\n{:type :ok, :f :read, :process 9}\n".to_string()),
        Just("é ☃ \u{1F4A5}".to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = Edn> {
    prop_oneof![
        Just(Edn::Nil),
        any::<bool>().prop_map(Edn::Bool),
        any::<i64>().prop_map(Edn::Int),
        (-1000i64..1000).prop_map(Edn::Int),
        prop_oneof![
            (-1e6f64..1e6),
            Just(1e300),
            Just(-2.5e-300),
            Just(-0.0),
            Just(0.5)
        ]
        .prop_map(Edn::Float),
        text().prop_map(Edn::Str),
        name().prop_map(Edn::Key),
        symbol().prop_map(Edn::Sym),
    ]
}

/// The string a map key becomes, to keep keys distinct.
fn key_string(e: &Edn) -> String {
    match e {
        Edn::Int(i) => i.to_string(),
        Edn::Str(s) | Edn::Key(s) | Edn::Sym(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn map_key() -> impl Strategy<Value = Edn> {
    prop_oneof![
        name().prop_map(Edn::Key),
        text().prop_map(Edn::Str),
        (-5i64..50).prop_map(Edn::Int),
        symbol().prop_map(Edn::Sym),
    ]
}

fn distinct_map(entries: Vec<(Edn, Edn)>) -> Edn {
    let mut seen = std::collections::BTreeSet::new();
    Edn::Map(
        entries
            .into_iter()
            .filter(|(k, _)| seen.insert(key_string(k)))
            .collect(),
    )
}

/// A set element: scalars of the kinds sets hold in histories, distinct.
fn distinct_set(items: Vec<Edn>) -> Edn {
    let mut seen = std::collections::BTreeSet::new();
    Edn::Set(
        items
            .into_iter()
            .filter(|e| !matches!(e, Edn::Float(_)))
            .filter(|e| seen.insert(format!("{e:?}")))
            .collect(),
    )
}

fn value() -> impl Strategy<Value = Edn> {
    scalar().prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Edn::Vector),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Edn::List),
            prop::collection::vec(scalar(), 0..5).prop_map(distinct_set),
            prop::collection::vec((map_key(), inner), 0..5).prop_map(distinct_map),
        ]
    })
}

/// What the op's `:value` holds: the shapes Jepsen, Knossos and Elle write, and anything else.
fn op_value() -> impl Strategy<Value = Edn> {
    let int = |i: i64| Edn::Int(i);
    let key = |k: &str| Edn::Key(k.to_string());
    let transfer = (0i64..8, 0i64..8, -3i64..10, prop::option::of(-2i64..100)).prop_map(
        move |(from, to, amount, id)| {
            let mut m = vec![
                (key("from"), int(from)),
                (key("to"), int(to)),
                (key("amount"), int(amount)),
            ];
            if let Some(id) = id {
                m.push((key("id"), int(id)));
            }
            Edn::Map(m)
        },
    );
    let balances = prop::collection::vec(-5i64..50, 1..9).prop_map(|b| {
        Edn::Map(
            b.iter()
                .enumerate()
                .map(|(i, v)| (Edn::Int(i as i64), Edn::Int(*v)))
                .collect(),
        )
    });
    let journal = (
        balances.clone(),
        prop::collection::vec(0i64..30, 0..6),
        any::<bool>(),
    )
        .prop_map(move |(b, ids, as_set)| {
            let ids: Vec<Edn> = ids.into_iter().map(Edn::Int).collect();
            Edn::Map(vec![
                (key("balances"), b),
                (
                    key("transfers"),
                    if as_set {
                        distinct_set(ids)
                    } else {
                        Edn::Vector(ids)
                    },
                ),
            ])
        });
    let mop = prop_oneof![
        (0i64..5, any::<i64>()).prop_map(|(k, v)| format!("[:append {k} {v}]")),
        (0i64..5).prop_map(|k| format!("[:r {k} nil]")),
        (0i64..5, prop::collection::vec(0i64..9, 0..4)).prop_map(|(k, l)| {
            let l: Vec<String> = l.iter().map(i64::to_string).collect();
            format!("[:r {k} [{}]]", l.join(" "))
        }),
        (0i64..5, 0i64..9).prop_map(|(k, v)| format!("[:w {k} {v}]")),
    ];
    prop_oneof![
        3 => Just(Edn::Nil),
        2 => (0i64..5).prop_map(Edn::Int),
        2 => (0i64..5, 0i64..5).prop_map(|(a, b)| Edn::Vector(vec![Edn::Int(a), Edn::Int(b)])),
        3 => transfer,
        2 => balances,
        2 => journal,
        2 => prop::collection::vec(mop, 1..4).prop_map(|m| Edn::Raw(format!("[{}]", m.join(" ")))),
        2 => value(),
    ]
}

/// One op map, as entries in a shuffled order.
fn op_map() -> impl Strategy<Value = Edn> {
    let key = |k: &str| Edn::Key(k.to_string());
    let process = prop_oneof![
        8 => (0i64..6).prop_map(Edn::Int),
        2 => Just(Edn::Key("nemesis".into())),
        1 => Just(Edn::Str("nemesis".into())),
        1 => Just(Edn::Nil),
    ];
    let kind =
        prop::sample::select(vec!["invoke", "ok", "fail", "info"]).prop_map(|t| Edn::Key(t.into()));
    let kind = prop_oneof![8 => kind, 1 => Just(Edn::Str("ok".into()))];
    let f = prop_oneof![
        6 => prop::sample::select(vec!["read", "write", "cas", "txn", "transfer", "start", "kill"])
            .prop_map(|f| Edn::Key(f.into())),
        1 => Just(Edn::Sym("read".into())),
        1 => Just(Edn::Str("transfer".into())),
        1 => Just(Edn::Vector(vec![Edn::Key("kill".into()), Edn::Key("n2".into())])),
    ];
    let time = prop_oneof![
        6 => (0i64..1_000_000_000).prop_map(Edn::Int),
        1 => Just(Edn::Int(-3)),
        1 => Just(Edn::Float(1.5)),
        1 => Just(Edn::Nil),
    ];
    let error = prop_oneof![
        Just(Edn::Key("timeout".into())),
        Just(Edn::Str("connection refused".into())),
        Just(Edn::Vector(vec![
            Edn::Key("negative".into()),
            Edn::Int(3),
            Edn::Int(-1)
        ])),
        Just(Edn::Nil),
        Just(Edn::Int(5)),
    ];
    let extra = prop_oneof![
        (Just(key("node")), text().prop_map(Edn::Str)),
        (Just(Edn::Str("custom".into())), value()),
        (Just(key("jepsen/op")), value()),
        (Just(Edn::Int(7)), value()),
    ];
    (
        prop::option::weighted(0.995, kind),
        prop::option::weighted(0.995, f),
        prop::option::weighted(0.99, process),
        prop::option::weighted(0.9, op_value()),
        prop::option::weighted(0.8, time),
        prop::option::weighted(0.7, 0i64..100_000),
        prop::option::weighted(0.15, error),
        prop::option::weighted(0.1, any::<bool>()),
        prop::collection::vec(extra, 0..2),
    )
        .prop_flat_map(move |(t, f, p, v, time, index, error, fin, extra)| {
            // Only the nemesis names its action with something other than a keyword.
            let p = match f {
                Some(Edn::Vector(_)) => Some(Edn::Key("nemesis".into())),
                _ => p,
            };
            let mut entries: Vec<(Edn, Edn)> = Vec::new();
            let mut push = |k: &str, v: Option<Edn>| {
                if let Some(v) = v {
                    entries.push((Edn::Key(k.into()), v));
                }
            };
            push("type", t);
            push("f", f);
            push("process", p);
            push("value", v);
            push("time", time);
            push("index", index.map(Edn::Int));
            push("error", error);
            push("final?", fin.map(Edn::Bool));
            let mut seen = std::collections::BTreeSet::new();
            for (k, v) in extra {
                if seen.insert(format!("{k:?}")) {
                    entries.push((k, v));
                }
            }
            Just(entries).prop_shuffle().prop_map(Edn::Map)
        })
}

/// A whole file: op maps in one of Jepsen's and Knossos's layouts.
fn history_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((op_map(), style()), 0..25),
        prop::sample::select(vec!["lines", "vector", "list"]),
        prop::sample::select(vec![
            "\n",
            "\n\n",
            "\n; a comment, {:type :bogus}\n",
            ",\n",
            " ",
            "\r\n",
            "\n ;; x\r\n",
        ]),
        prop::sample::select(vec!["", "; history.edn\n", "\n\n", "  ,"]),
        prop::sample::select(vec!["", "\n", "\n; end", "  \n\n"]),
    )
        .prop_map(|(ops, layout, between, head, tail)| {
            let mut out = String::from(head);
            let (open, close) = match layout {
                "vector" => ("[", "]"),
                "list" => ("(", ")"),
                _ => ("", ""),
            };
            out.push_str(open);
            for (i, (op, style)) in ops.iter().enumerate() {
                if i > 0 {
                    out.push_str(between);
                }
                print(op, style, &mut out);
            }
            out.push_str(close);
            out.push_str(tail);
            out
        })
}

/// The two histories are the same, down to the sign of a zero.
fn assert_identical(fast: &History, generic: &History, text: &[u8]) {
    assert!(
        fast == generic && format!("{fast:?}") == format!("{generic:?}"),
        "the fast reader read a different history from\n{}\nfast:    {fast:?}\ngeneric: {generic:?}",
        String::from_utf8_lossy(text)
    );
}

/// What every input must satisfy: the fast reader, whole or in pieces, gives the generic reader's
/// history or steps aside; and `parse_edn` answers as the generic reader does.
fn agree(text: &[u8], piece_bytes: usize) -> (Option<History>, Result<History, String>) {
    let generic = parse_edn_generic(text).map_err(|e| e.to_string());
    let fast = parse_edn_fast(text);
    let pieces = parse_edn_fast_in_pieces(text, piece_bytes);
    for read in [&fast, &pieces].into_iter().flatten() {
        match &generic {
            Ok(g) => assert_identical(read, g, text),
            Err(e) => panic!(
                "the fast reader read a history where the generic reader says {e}:\n{}",
                String::from_utf8_lossy(text)
            ),
        }
    }
    assert_eq!(
        fast.is_some(),
        pieces.is_some(),
        "reading in pieces changes whether the fast reader reads\n{}",
        String::from_utf8_lossy(text)
    );
    let shipped = parse_edn(text).map_err(|e| e.to_string());
    match (&shipped, &generic) {
        (Ok(s), Ok(g)) => assert_identical(s, g, text),
        (Err(s), Err(g)) => assert_eq!(s, g),
        _ => panic!("parse_edn and the generic reader disagree: {shipped:?} / {generic:?}"),
    }
    (fast, generic)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

#[test]
fn every_legal_layout_is_read_by_the_fast_reader_exactly_as_the_generic_one_reads_it() {
    let read = std::cell::Cell::new(0);
    runner(3000)
        .run(&(history_text(), 1usize..300), |(text, piece_bytes)| {
            let (fast, generic) = agree(text.as_bytes(), piece_bytes);
            match (&fast, &generic) {
                (Some(_), _) => read.set(read.get() + 1),
                // An op the generic reader refuses (no :type on a client op, a completion without a
                // process that pairs with nothing): refused by both.
                (None, Err(_)) => {}
                (None, _) => {
                    prop_assert!(
                        false,
                        "the fast reader stepped aside on a legal file ({generic:?}):\n{text}"
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    // About half the files hold an op without a process that pairs with nothing, refused by both.
    assert!(read.get() > 1200, "read {}", read.get());
}

/// A change that may break the file: bytes replaced, snippets inserted, ranges cut out.
#[derive(Debug, Clone)]
enum Corruption {
    Replace(prop::sample::Index, u8),
    Insert(prop::sample::Index, &'static str),
    Delete(prop::sample::Index, usize),
    Truncate(prop::sample::Index),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let bytes =
        prop::sample::select(b"{}[]()\"\\;#: \n\r\x0b,0-+./NMxre\xff\xc3\xa0Z'^@~`_".to_vec());
    let snippets = prop::sample::select(vec![
        "#_",
        "#_ :x ",
        "#inst \"2020\" ",
        "\\a",
        "\\newline",
        "1/2",
        "0x1F",
        "2r101",
        "1N",
        "1.5M",
        ":",
        "::k",
        "##NaN",
        "#{1 1}",
        "#{[1] 2}",
        "{:a 1 :a 2}",
        "{:a 1 \"a\" 2}",
        "{1 2 \"1\" 3}",
        ":type :ok",
        ":type :ok ",
        ":process 0 ",
        ":value ",
        ":value {:x 1} ",
        " :f :read",
        "\u{a0}",
        "é",
        "\"",
        "; c\r x",
        "; c\r\n",
        "99999999999999999999",
        "-9223372036854775808",
        "9223372036854775808",
        "1e999",
        "1.",
        "-0",
        "007",
        "+5",
        "]",
        "[",
        "}",
        "{",
        ")",
        "(",
        "#",
        "#{",
        "{:type :invoke :f :read :process 1}",
        "\n",
        "\r",
        ",,",
        " nil ",
        "true",
        "a\\b",
        "\t",
    ]);
    prop_oneof![
        (any::<prop::sample::Index>(), bytes).prop_map(|(i, b)| Corruption::Replace(i, b)),
        (any::<prop::sample::Index>(), snippets).prop_map(|(i, s)| Corruption::Insert(i, s)),
        (any::<prop::sample::Index>(), 1usize..12).prop_map(|(i, n)| Corruption::Delete(i, n)),
        any::<prop::sample::Index>().prop_map(Corruption::Truncate),
    ]
}

fn corrupt(text: &str, changes: &[Corruption]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for c in changes {
        let at = |i: &prop::sample::Index, len: usize| i.index(len + 1);
        match c {
            Corruption::Replace(i, b) if !bytes.is_empty() => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            Corruption::Replace(..) => {}
            Corruption::Insert(i, s) => {
                let at = at(i, bytes.len());
                bytes.splice(at..at, s.bytes());
            }
            Corruption::Delete(i, n) => {
                let at = at(i, bytes.len());
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Corruption::Truncate(i) => {
                let at = at(i, bytes.len());
                bytes.truncate(at);
            }
        }
    }
    bytes
}

#[test]
fn corruptions_give_the_generic_readers_answer_or_step_aside_never_another_history() {
    let (read, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner(4000)
        .run(
            &(
                history_text(),
                prop::collection::vec(corruption(), 1..3),
                1usize..200,
            ),
            |(text, changes, piece_bytes)| {
                let bytes = corrupt(&text, &changes);
                match agree(&bytes, piece_bytes) {
                    (Some(_), _) => read.set(read.get() + 1),
                    (None, Err(_)) => refused.set(refused.get() + 1),
                    (None, Ok(_)) => {}
                }
                Ok(())
            },
        )
        .unwrap();
    // The corruptions reach both sides: some files stay readable, many are refused.
    let (read, refused) = (read.get(), refused.get());
    assert!(
        read > 150 && refused > 1000,
        "read {read}, refused {refused}"
    );
}

proptest! {
    #![proptest_config(Config { cases: 3000, failure_persistence: Some(Box::new(FileFailurePersistence::Off)), ..Config::default() })]

    #[test]
    fn arbitrary_bytes_never_make_the_readers_disagree(bytes in prop::collection::vec(any::<u8>(), 0..300), piece_bytes in 1usize..64) {
        let _ = agree(&bytes, piece_bytes);
    }
}

#[test]
fn the_fast_reader_reads_what_jepsen_and_knossos_write() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data");
    let mut files = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "edn") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 30, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let (fast, generic) = agree(&bytes, 64);
        assert!(
            fast.is_some() && generic.is_ok(),
            "{} was not read by the fast reader",
            file.display()
        );
    }
}

#[test]
fn what_the_fast_reader_leaves_to_the_generic_one() {
    let op = |value: &str| format!("{{:type :ok, :f :read, :process 0, :value {value}}}\n");
    for (value, why) in [
        ("#inst \"2020-01-01\"", "a tag"),
        ("\\a", "a character"),
        ("1/2", "a ratio"),
        ("0x1F", "a hexadecimal number"),
        ("[1 #_2 3]", "a discarded form"),
        ("{:a 1 \"a\" 2}", "keys that collide once stringified"),
        ("#{[1] [2]}", "a set of collections"),
        (":é", "a non-ASCII keyword"),
        ("99999999999999999999.5", "an integer part beyond 64 bits"),
    ] {
        let text = op(value);
        assert!(parse_edn_fast(&text).is_none(), "{why}: {text}");
        let generic = parse_edn_generic(&text).unwrap_or_else(|e| panic!("{why}: {e}"));
        assert_eq!(parse_edn(&text).unwrap(), generic, "{why}");
    }
    for (text, why) in [
        (
            "{:type :ok, :type :ok, :f :read, :process 0}",
            "a key written twice",
        ),
        (
            "{:type :ok, :f :read, :process 0, :value #{1 1}}",
            "a set holding an element twice",
        ),
        (
            "[{:type :ok, :f :read, :process 0}",
            "an unclosed collection",
        ),
        ("{:type :ok, :f :read, :process -1}", "a negative process"),
    ] {
        assert!(parse_edn_fast(text).is_none(), "{why}");
        let err = parse_edn(text).unwrap_err();
        assert_eq!(err.line(), Some(1), "{why}: {err}");
    }
}
