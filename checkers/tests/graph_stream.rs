//! The streaming reader of the graph checker (`graph::stream`) against the general path
//! (`jsonl::read_history`, then `GraphChecker::check`): the same verdict, the same transactions,
//! the same events (without the values of transaction events), the same torn tail and the same
//! errors — on seeded random histories, valid and broken, plain and compressed, with lines the
//! hand-written parser does not take and must leave to serde_json.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_checkers::graph::{stream, txn, GraphChecker};
use verity_checkers::{Budget, Checker};
use verity_history::jsonl::{self, HistoryWriter, WriterOptions};
use verity_history::{Event, EventType, History, Process, Value, F};
use verity_testkit::txn::{mops_value, parse_m, simulate_correct, M};

/// A correct history with some reads made stale and odd lines mixed in.
fn history(seed: u64) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let register = seed.is_multiple_of(3);
    let txns = rng.gen_range(1..60);
    let h = simulate_correct(&mut rng, txns, 4, 3, register);
    let mut events = h.events;
    for e in &mut events {
        if e.kind == EventType::Ok && rng.gen_bool(0.1) {
            // A stale read: drop the last element of a list read (an anomaly, or an odd read).
            let ops = parse_m(&e.value, register, true);
            let stale: Vec<M> = ops
                .into_iter()
                .map(|m| match m {
                    M::R(k, Some(mut l)) if !l.is_empty() => {
                        l.pop();
                        M::R(k, Some(l))
                    }
                    other => other,
                })
                .collect();
            e.value = mops_value(&stale);
        }
        if rng.gen_bool(0.05) {
            e.error = Some(if rng.gen_bool(0.5) {
                "timeout".into()
            } else {
                "quote \" and \\ backslash".into()
            });
        }
    }
    let at = rng.gen_range(0..=events.len());
    events.insert(
        at,
        Event {
            index: 0,
            time_ns: 5,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: F::Other("partition".into()),
            value: Value::map([("cut", Value::from("n1"))]),
            error: None,
        },
    );
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    events
}

fn text_of(events: &[Event], seed: u64) -> Vec<u8> {
    let mut text = Vec::new();
    jsonl::write_jsonl(&mut text, events).unwrap();
    // Lines the fast parser leaves to serde_json: reordered fields, spaces, a blank line.
    let mut out = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut line = line.to_vec();
        if (i as u64 + seed).is_multiple_of(7) {
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            line = serde_json::to_vec_pretty(&v).unwrap();
            line.retain(|&b| b != b'\n');
        }
        if (i as u64 + seed).is_multiple_of(11) {
            out.extend_from_slice(b"  \n");
        }
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    out
}

fn thin(h: &History) -> Vec<Event> {
    let ops = h.ops().unwrap();
    let mut events = h.events.clone();
    for op in ops {
        if h.events[op.invoke].f == F::Txn {
            events[op.invoke].value = Value::Null;
            if let Some(c) = op.completion {
                events[c].value = Value::Null;
            }
        }
    }
    events
}

fn compare(path: &Path, what: &str) {
    let general = jsonl::read_history(path);
    let streamed = stream::read_file(path);
    let (general, streamed) = match (general, streamed) {
        (Ok(g), Ok(s)) => (g, s),
        (Err(g), Err(s)) => {
            assert_eq!(g.to_string(), s.to_string(), "{what}");
            return;
        }
        (g, s) => panic!(
            "{what}: {:?} vs {:?}",
            g.err(),
            s.err().map(|e| e.to_string())
        ),
    };
    assert_eq!(general.torn_tail, streamed.history.torn_tail, "{what}");
    assert_eq!(thin(&general), streamed.history.events, "{what}");
    let (store, decoded) = match (streamed.store, txn::decode(&general)) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(s), Err(d)) => {
            assert_eq!(s.to_string(), d.to_string(), "{what}");
            return;
        }
        (s, d) => panic!("{what}: {:?} vs {:?}", s.err(), d.err()),
    };
    assert_eq!(store.len(), decoded.len(), "{what}");
    for t in 0..store.len() as u32 {
        let (a, b) = (&store.txns[t as usize], &decoded.txns[t as usize]);
        assert_eq!(
            (
                a.invoke,
                a.completion(),
                a.invoke_index,
                a.process,
                a.outcome
            ),
            (
                b.invoke,
                b.completion(),
                b.invoke_index,
                b.process,
                b.outcome
            ),
            "{what}: txn {t}"
        );
        assert!(store.mops(t).eq(decoded.mops(t)), "{what}: mops of txn {t}");
    }
    let checker = GraphChecker::default();
    let v1 = checker.check(&general, &Budget::unlimited());
    let v2 = checker.check_store(&store, &Budget::unlimited());
    assert_eq!(
        serde_json::to_value(&v1).unwrap(),
        serde_json::to_value(&v2).unwrap(),
        "{what}"
    );
}

#[test]
fn streaming_reads_plain_histories_as_the_general_reader_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut invalid = 0;
    for seed in 0..300 {
        let events = history(seed);
        let path = dir.path().join(format!("h{seed}.jsonl"));
        let text = text_of(&events, seed);
        std::fs::write(&path, &text).unwrap();
        compare(&path, &format!("seed {seed}"));
        let h = jsonl::read_history(&path).unwrap();
        if GraphChecker::default()
            .check(&h, &Budget::unlimited())
            .valid
            != verity_checkers::Validity::Valid
        {
            invalid += 1;
        }
        // Cut inside the last line (a torn tail), and a malformed middle line.
        let cut = dir.path().join(format!("c{seed}.jsonl"));
        std::fs::write(&cut, &text[..text.len() - 1 - (seed as usize % 9)]).unwrap();
        compare(&cut, &format!("seed {seed}, cut"));
        let mut bad = text.clone();
        let mid = bad.len() / 2;
        bad.insert(mid, b'#');
        std::fs::write(&cut, &bad).unwrap();
        compare(&cut, &format!("seed {seed}, malformed"));
    }
    // The stale reads make anomalies: both paths were compared on broken histories too.
    assert!(invalid > 20, "only {invalid} of 300 histories were invalid");
}

#[test]
fn streaming_reads_compressed_histories_and_their_cuts() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 0..40 {
        let path = dir.path().join(format!("h{seed}.jsonl.zst"));
        let options = WriterOptions {
            compress: true,
            chain: None,
        };
        let w = HistoryWriter::create_with(&path, &options).unwrap();
        let r = w.recorder();
        for e in history(seed) {
            r.record(e).unwrap();
        }
        drop(r);
        w.finish().unwrap();
        compare(&path, &format!("seed {seed}"));
        let whole = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.zst");
        std::fs::write(&cut, &whole[..whole.len() * 2 / 3]).unwrap();
        compare(&cut, &format!("seed {seed}, cut"));
    }
}

#[test]
fn a_malformed_micro_op_is_unknown_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    let lines = [
        r#"{"index":0,"time_ns":1,"process":1,"type":"invoke","f":"txn","value":[["append",1,1]]}"#,
        r#"{"index":1,"time_ns":2,"process":1,"type":"ok","f":"txn","value":[["append",1,1]]}"#,
        r#"{"index":2,"time_ns":3,"process":2,"type":"invoke","f":"txn","value":[["r",1,null]]}"#,
        r#"{"index":3,"time_ns":4,"process":2,"type":"ok","f":"txn","value":[["r",1,[1,2.5]]]}"#,
        r#"{"index":4,"time_ns":5,"process":3,"type":"invoke","f":"txn","value":[["r",1,-0]]}"#,
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    let general = jsonl::read_history(&path).unwrap();
    let v1 = GraphChecker::default().check(&general, &Budget::unlimited());
    let streamed = stream::read_file(&path).unwrap();
    let e = streamed
        .store
        .expect_err("a read list holding a float is malformed");
    assert_eq!(
        v1.cause.as_deref(),
        Some(format!("malformed history: {e}").as_str())
    );
}
