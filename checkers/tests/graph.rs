//! Hand-written micro-histories for the graph checker: one per anomaly it claims, and valid ones
//! that must stay valid (Elle's test style: tiny histories whose verdict a person can check).

use verity_checkers::graph::{write_artifacts, GraphChecker};
use verity_checkers::{Budget, Checker, Validity, Verdict};
use verity_history::EventType;
use verity_testkit::txn::{Builder, M::*};

fn check(b: &Builder) -> Verdict {
    GraphChecker::default().check(&b.history(), &Budget::unlimited())
}

fn names(v: &Verdict) -> Vec<String> {
    v.anomaly_types()
}

#[test]
fn serial_list_append_is_valid_and_strict_serializable() {
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1), A(2, 1)])
        .ok(2, &[R(1, Some(vec![1])), A(1, 2)])
        .ok(1, &[R(1, Some(vec![1, 2])), R(2, Some(vec![1]))]);
    let v = check(&b);
    assert_eq!(v.valid, Validity::Valid, "{v:#?}");
    assert_eq!(
        v.details["satisfied"],
        serde_json::json!(["strict-serializable"])
    );
}

#[test]
fn g0_write_cycle() {
    let mut b = Builder::new();
    b.invoke(1, &[A(1, 1), A(2, 1)])
        .invoke(2, &[A(1, 2), A(2, 2)]);
    b.complete(1, EventType::Ok, &[A(1, 1), A(2, 1)]).complete(
        2,
        EventType::Ok,
        &[A(1, 2), A(2, 2)],
    );
    b.ok(3, &[R(1, Some(vec![1, 2])), R(2, Some(vec![2, 1]))]);
    let v = check(&b);
    assert!(names(&v).contains(&"G0".to_string()), "{:?}", names(&v));
    assert_eq!(v.details["not"], serde_json::json!(["read-uncommitted"]));
}

#[test]
fn g1c_circular_information_flow() {
    let mut b = Builder::new();
    let t1 = [A(1, 1), R(2, Some(vec![1]))];
    let t2 = [A(2, 1), R(1, Some(vec![1]))];
    b.invoke(1, &t1)
        .invoke(2, &t2)
        .complete(1, EventType::Ok, &t1)
        .complete(2, EventType::Ok, &t2);
    let v = check(&b);
    assert_eq!(names(&v), vec!["G1c"], "{v:#?}");
}

/// Read skew: T0 the audit (read 1 empty, read 2 = [7]) overlaps T1 the transfer (append 7 to 1
/// and 2); T2 reads 1 after both.
fn read_skew() -> Builder {
    let mut b = Builder::new();
    let audit = [R(1, Some(vec![])), R(2, Some(vec![7]))];
    let transfer = [A(1, 7), A(2, 7)];
    b.invoke(1, &audit)
        .ok(2, &transfer)
        .complete(1, EventType::Ok, &audit);
    b.ok(3, &[R(1, Some(vec![7]))]);
    b
}

#[test]
fn g_single_read_skew() {
    let v = check(&read_skew());
    assert_eq!(names(&v), vec!["G-single"], "{v:#?}");
    let not = v.details["not"].as_array().unwrap();
    assert!(not.contains(&serde_json::json!("snapshot-isolation")));
    let cycle = &v.details["cycles"][0];
    let text = cycle["explanation"].as_str().unwrap();
    assert!(text.contains("without") && text.contains("saw"), "{text}");
    assert!(cycle["dot"].as_str().unwrap().starts_with("digraph"));
    assert!(cycle["svg"].as_str().unwrap().starts_with("<svg"));
}

#[test]
fn g2_item_write_skew() {
    let mut b = Builder::new();
    let t1 = [R(1, Some(vec![])), R(2, Some(vec![])), A(1, 1)];
    let t2 = [R(1, Some(vec![])), R(2, Some(vec![])), A(2, 2)];
    b.invoke(1, &t1)
        .invoke(2, &t2)
        .complete(1, EventType::Ok, &t1)
        .complete(2, EventType::Ok, &t2);
    b.ok(3, &[R(1, Some(vec![1])), R(2, Some(vec![2]))]);
    let v = check(&b);
    assert_eq!(names(&v), vec!["G2-item"], "{v:#?}");
    assert_eq!(v.details["not"], serde_json::json!(["repeatable-read"]));
    assert!(v.details["satisfied"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("strong-snapshot-isolation")));
}

#[test]
fn g_nonadjacent() {
    // T1 -rw-> T2 -wr-> T3 -rw-> T4 -wr-> T1, all concurrent.
    let mut b = Builder::new();
    let t1 = [R(1, Some(vec![])), R(4, Some(vec![4]))];
    let t2 = [A(1, 2), A(2, 2)];
    let t3 = [R(2, Some(vec![2])), R(3, Some(vec![]))];
    let t4 = [A(3, 4), A(4, 4)];
    for (p, t) in [(1, &t1[..]), (2, &t2[..]), (3, &t3[..]), (4, &t4[..])] {
        b.invoke(p, t);
    }
    for (p, t) in [(1, &t1[..]), (2, &t2[..]), (3, &t3[..]), (4, &t4[..])] {
        b.complete(p, EventType::Ok, t);
    }
    b.ok(5, &[R(1, Some(vec![2])), R(3, Some(vec![4]))]);
    let v = check(&b);
    assert_eq!(names(&v), vec!["G-nonadjacent"], "{v:#?}");
    assert!(v.details["not"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("snapshot-isolation")));
}

#[test]
fn g1a_aborted_read() {
    let mut b = Builder::new();
    b.fail(1, &[A(1, 1)]).ok(2, &[R(1, Some(vec![1]))]);
    let v = check(&b);
    assert_eq!(names(&v), vec!["G1a"], "{v:#?}");
}

#[test]
fn g1b_intermediate_read() {
    let mut b = Builder::new();
    let t1 = [A(1, 1), A(1, 2)];
    b.invoke(1, &t1)
        .ok(2, &[R(1, Some(vec![1]))])
        .complete(1, EventType::Ok, &t1);
    b.ok(3, &[R(1, Some(vec![1, 2]))]);
    let v = check(&b);
    assert!(names(&v).contains(&"G1b".to_string()), "{v:#?}");
}

#[test]
fn lost_update() {
    let mut b = Builder::new();
    let t1 = [R(1, Some(vec![])), A(1, 1)];
    let t2 = [R(1, Some(vec![])), A(1, 2)];
    b.invoke(1, &t1)
        .invoke(2, &t2)
        .complete(1, EventType::Ok, &t1)
        .complete(2, EventType::Ok, &t2);
    b.ok(3, &[R(1, Some(vec![1, 2]))]);
    let v = check(&b);
    let n = names(&v);
    assert!(
        n.contains(&"lost-update".to_string()) && n.contains(&"G-single".to_string()),
        "{n:?}"
    );
}

#[test]
fn internal_inconsistency() {
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1), R(1, Some(vec![]))]);
    assert_eq!(names(&check(&b)), vec!["internal"]);
    let mut b = Builder::new();
    b.ok(1, &[W(1, 1), Rr(1, Some(Some(5)))]);
    assert_eq!(names(&check(&b)), vec!["internal"]);
}

#[test]
fn incompatible_order_and_duplicates() {
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1)])
        .ok(2, &[A(1, 2)])
        .ok(3, &[R(1, Some(vec![1, 2]))])
        .ok(4, &[R(1, Some(vec![2, 1]))]);
    assert!(names(&check(&b)).contains(&"incompatible-order".to_string()));
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1)]).ok(3, &[R(1, Some(vec![1, 1]))]);
    assert!(names(&check(&b)).contains(&"duplicate-elements".to_string()));
}

#[test]
fn realtime_and_process_variants() {
    // T1 commits an append; T2, invoked after T1 completed, does not see it.
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1)])
        .ok(2, &[R(1, Some(vec![]))])
        .ok(3, &[R(1, Some(vec![1]))]);
    let v = check(&b);
    assert_eq!(names(&v), vec!["G-single-realtime"], "{v:#?}");
    assert_eq!(
        v.details["not"],
        serde_json::json!(["strong-snapshot-isolation"])
    );
    assert_eq!(
        v.details["also-not"],
        serde_json::json!(["strict-serializable"])
    );
    // The same by one process: a session anomaly.
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1)])
        .ok(1, &[R(1, Some(vec![]))])
        .ok(3, &[R(1, Some(vec![1]))]);
    let v = check(&b);
    assert_eq!(names(&v), vec!["G-single-process"], "{v:#?}");
    // Without the realtime search it is valid.
    let c = GraphChecker {
        realtime: false,
        process: false,
        ..GraphChecker::default()
    };
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1)])
        .ok(2, &[R(1, Some(vec![]))])
        .ok(3, &[R(1, Some(vec![1]))]);
    assert_eq!(
        c.check(&b.history(), &Budget::unlimited()).valid,
        Validity::Valid
    );
}

#[test]
fn info_transactions_may_have_committed() {
    let mut b = Builder::new();
    b.info(1, &[A(1, 1)])
        .ok(2, &[R(1, Some(vec![1]))])
        .info(3, &[A(1, 2)])
        .ok(4, &[R(1, Some(vec![1]))]);
    let v = check(&b);
    assert_eq!(v.valid, Validity::Valid, "{v:#?}");
}

#[test]
fn rw_register_write_skew_and_lost_update() {
    let mut b = Builder::new();
    let t1 = [Rr(1, Some(None)), Rr(2, Some(None)), W(1, 1)];
    let t2 = [Rr(1, Some(None)), Rr(2, Some(None)), W(2, 2)];
    b.invoke(1, &t1)
        .invoke(2, &t2)
        .complete(1, EventType::Ok, &t1)
        .complete(2, EventType::Ok, &t2);
    assert_eq!(names(&check(&b)), vec!["G2-item"]);
    let mut b = Builder::new();
    let t1 = [Rr(1, Some(None)), W(1, 1)];
    let t2 = [Rr(1, Some(None)), W(1, 2)];
    b.invoke(1, &t1)
        .invoke(2, &t2)
        .complete(1, EventType::Ok, &t1)
        .complete(2, EventType::Ok, &t2);
    assert!(names(&check(&b)).contains(&"lost-update".to_string()));
    let mut b = Builder::new();
    b.fail(1, &[W(1, 1)]).ok(2, &[Rr(1, Some(Some(1)))]);
    assert_eq!(names(&check(&b)), vec!["G1a"]);
}

#[test]
fn malformed_txns_give_unknown_not_a_panic() {
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1)]);
    let mut h = b.history();
    h.events[1].value = serde_json::from_str(r#"[["append", "x", 1]]"#).unwrap();
    let v = GraphChecker::default().check(&h, &Budget::unlimited());
    assert_eq!(v.valid, Validity::Unknown);
    assert!(v.cause.unwrap().contains("malformed"));
}

#[test]
fn artifacts_are_written() {
    let mut b = Builder::new();
    let t1 = [R(1, Some(vec![])), R(2, Some(vec![])), A(1, 1)];
    let t2 = [R(1, Some(vec![])), R(2, Some(vec![])), A(2, 2)];
    b.invoke(1, &t1)
        .invoke(2, &t2)
        .complete(1, EventType::Ok, &t1)
        .complete(2, EventType::Ok, &t2);
    b.ok(3, &[R(1, Some(vec![1])), R(2, Some(vec![2]))]);
    let v = check(&b);
    let dir = std::env::temp_dir().join(format!("verity-graph-artifacts-{}", std::process::id()));
    let paths = write_artifacts(&v, &dir).unwrap();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["00-G2-item.dot", "00-G2-item.svg", "explanations.txt"]
    );
    let text = std::fs::read_to_string(dir.join("graph/explanations.txt")).unwrap();
    assert!(
        text.contains("[G2-item]") && text.contains("not: [\"repeatable-read\"]"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_exhausted_cycle_search_gives_unknown_never_a_hang() {
    let mut b = Builder::new();
    let t1 = [R(1, Some(vec![])), R(2, Some(vec![])), A(1, 1)];
    let t2 = [R(1, Some(vec![])), R(2, Some(vec![])), A(2, 2)];
    b.invoke(1, &t1)
        .invoke(2, &t2)
        .complete(1, EventType::Ok, &t1)
        .complete(2, EventType::Ok, &t2);
    b.ok(3, &[R(1, Some(vec![1])), R(2, Some(vec![2]))]);
    let c = GraphChecker {
        cycle_search_timeout: std::time::Duration::ZERO,
        ..GraphChecker::default()
    };
    let v = c.check(&b.history(), &Budget::unlimited());
    assert_eq!(v.valid, Validity::Unknown, "{v:#?}");
    assert!(v
        .cause
        .as_deref()
        .unwrap()
        .starts_with("cycle-search-timeout"));
}

#[test]
fn jsonl_text_in_elle_shape_is_checked_through_the_fast_path() {
    // Read skew as Elle's list-append writes it, in our JSONL: the audit (process 1) reads key 1
    // before and key 2 after the transfer (process 2) appended 7 to both.
    let text = r#"{"index":0,"time_ns":0,"process":1,"type":"invoke","f":"txn","value":[["r",1,null],["r",2,null]]}
{"index":1,"time_ns":1,"process":2,"type":"invoke","f":"txn","value":[["append",1,7],["append",2,7]]}
{"index":2,"time_ns":2,"process":2,"type":"ok","f":"txn","value":[["append",1,7],["append",2,7]]}
{"index":3,"time_ns":3,"process":1,"type":"ok","f":"txn","value":[["r",1,[]],["r",2,[7]]]}
{"index":4,"time_ns":4,"process":3,"type":"invoke","f":"txn","value":[["r",1,null]]}
{"index":5,"time_ns":5,"process":3,"type":"ok","f":"txn","value":[["r",1,[7]]]}
"#;
    let h = verity_history::jsonl::parse_jsonl(text.as_bytes()).unwrap();
    assert!(matches!(h.events[3].value, verity_history::Value::Txn(_)));
    let v = GraphChecker::default().check(&h, &Budget::unlimited());
    assert_eq!(names(&v), vec!["G-single"], "{v:#?}");
    let text = v.anomalies[0].message.as_str();
    assert!(
        text.contains("T0 < T1") && text.contains("T1 < T0"),
        "{text}"
    );
}

#[test]
fn histories_without_transactions_are_valid_and_say_so() {
    let v =
        GraphChecker::default().check(&verity_history::History::default(), &Budget::unlimited());
    assert_eq!(v.valid, Validity::Valid);
    assert_eq!(v.details["txns"], 0);
}

#[test]
fn a_history_without_process_says_process_order_was_unavailable() {
    // The session anomaly above, as an Elle history that names no process: the reader pairs each
    // invocation with its completion, one process each, so no -process anomaly can be claimed;
    // the real-time order still shows the stale read.
    let text = "{:type :invoke, :f :txn, :value [[:append 1 1]]}\n{:type :ok, :f :txn, :value [[:append 1 1]]}\n\
                {:type :invoke, :f :txn, :value [[:r 1 nil]]}\n{:type :ok, :f :txn, :value [[:r 1 []]]}\n\
                {:type :invoke, :f :txn, :value [[:r 1 nil]]}\n{:type :ok, :f :txn, :value [[:r 1 [1]]]}\n";
    let h = verity_history::edn::parse_edn(text).unwrap();
    let v = GraphChecker::default().check(&h, &Budget::unlimited());
    assert_eq!(names(&v), vec!["G-single-realtime"], "{v:#?}");
    let note = v.details["process-order"].as_str().unwrap();
    assert!(note.starts_with("unavailable"), "{note}");
    let lines = verity_checkers::registry::explain("graph", &v);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("process order: unavailable")),
        "{lines:?}"
    );
    // With processes named, nothing is said.
    let named = text.replace("{:type", "{:process 1, :type");
    let v = GraphChecker::default().check(
        &verity_history::edn::parse_edn(&named).unwrap(),
        &Budget::unlimited(),
    );
    assert_eq!(names(&v), vec!["G-single-process"], "{v:#?}");
    assert!(v.details.get("process-order").is_none());
}

#[test]
fn an_edge_that_is_both_write_write_and_anti_dependency_counts_as_the_stronger_claim() {
    // T reads key 1, appends to it and to key 2; U reads key 2 before T's append and appends to key
    // 1 after T. T → U is ww (and rw: what T read of key 1 was next overwritten by U as well as by
    // T); U → T is rw on key 2. One anti-dependency: G-single, which snapshot isolation forbids.
    // The same with T reading key 1 after its own append: then T → U is rw in the strict sense
    // too (the version T read, its own, was next overwritten by U).
    let read_first = [R(1, Some(vec![])), A(1, 1), A(2, 1)];
    let read_after = [A(1, 1), R(1, Some(vec![1])), A(2, 1)];
    for t in [read_first, read_after] {
        let mut b = Builder::new();
        let u = [R(2, Some(vec![])), A(1, 2)];
        b.invoke(1, &t)
            .invoke(2, &u)
            .complete(1, EventType::Ok, &t)
            .complete(2, EventType::Ok, &u);
        b.ok(3, &[R(1, Some(vec![1, 2])), R(2, Some(vec![1]))]);
        let v = check(&b);
        assert_eq!(names(&v), vec!["G-single"], "{t:?}: {v:#?}");
        let not = v.details["not"].as_array().unwrap();
        assert!(
            not.contains(&serde_json::json!("snapshot-isolation")),
            "{t:?}: {not:?}"
        );
    }
}

fn ruled_out(v: &Verdict) -> Vec<String> {
    ["not", "also-not"]
        .iter()
        .filter_map(|k| v.details.get(*k).and_then(|x| x.as_array()))
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_read_showing_the_readers_own_later_write_is_internal() {
    // Found by the model cross-check (graph_models.rs): T read key 1 as [1] and only then appended
    // 1; the checker skipped the element as its own and called the history strict serializable.
    let mut b = Builder::new();
    b.ok(1, &[R(1, Some(vec![1])), A(1, 1)]);
    let v = check(&b);
    assert_eq!(names(&v), vec!["internal"], "{v:#?}");
    assert!(ruled_out(&v).contains(&"serializable".to_string()));
    // The same with registers: T read 5 and then wrote 5.
    let mut b = Builder::new();
    b.ok(1, &[Rr(1, Some(Some(5))), W(1, 5)]);
    let v = check(&b);
    assert_eq!(names(&v), vec!["internal"], "{v:#?}");
    // A read after the transaction's own write stays as it was: no anomaly.
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1), R(1, Some(vec![1]))])
        .ok(2, &[W(2, 5), Rr(2, Some(Some(5)))]);
    assert_eq!(names(&check(&b)), Vec::<String>::new());
}

#[test]
fn a_read_holding_the_readers_own_earlier_append_twice_is_duplicate_elements() {
    // Found by the model cross-check: T appended 3 and read [2, 3, 3]. With its own append taken
    // off the end, the rest ([2, 3]) looked like a fine read of the version order.
    let mut b = Builder::new();
    b.ok(1, &[A(1, 2)])
        .ok(2, &[A(1, 3), R(1, Some(vec![2, 3, 3]))]);
    let v = check(&b);
    assert_eq!(names(&v), vec!["duplicate-elements"], "{v:#?}");
    assert_eq!(v.details["not"], serde_json::json!(["read-uncommitted"]));
}

#[test]
fn an_append_no_read_shows_follows_the_last_writer_of_the_known_order() {
    // Found by the model cross-check: T appended 1 on top of [] (its own read shows [1]) while U's
    // 3 came first (V read [3]). T read [] and U wrote what followed: T → U (rw); T's 1 is after
    // the whole known order [3]: U → T (ww). One anti-dependency: G-single (a lost update), which
    // snapshot isolation forbids; before, only the rw edge from V was drawn and the cycle was the
    // G2-item that SI allows (still reported: V's rw edge is real too).
    let t = [A(1, 1), R(1, Some(vec![1]))];
    let u = [A(1, 3)];
    let mut b = Builder::new();
    b.invoke(1, &t)
        .invoke(2, &u)
        .complete(1, EventType::Ok, &t)
        .complete(2, EventType::Ok, &u);
    b.ok(3, &[R(1, Some(vec![3]))]);
    let v = check(&b);
    assert!(names(&v).contains(&"G-single".to_string()), "{v:#?}");
    assert!(ruled_out(&v).contains(&"snapshot-isolation".to_string()));
}

#[test]
fn an_info_transaction_whose_write_was_seen_counts_for_its_unseen_appends() {
    // Found by the model cross-check: T saw the info transaction I's append to key 2 but not its
    // append to key 1 (a fractured read). Had I aborted, T's read of key 2 was dirty (G1a); had it
    // committed, T read key 1 before I wrote it (rw) and key 2 after (wr): G-single either way for
    // every model from repeatable read and snapshot isolation up. Before, I's unseen append drew no
    // edge, since I was not known to have committed, and the history was strict serializable.
    let i = [A(2, 2), A(1, 3)];
    let mut b = Builder::new();
    b.invoke(1, &i).complete(1, EventType::Info, &i);
    b.ok(2, &[R(2, Some(vec![2])), R(1, Some(vec![]))]);
    let v = check(&b);
    assert_eq!(names(&v), vec!["G-single"], "{v:#?}");
    let out = ruled_out(&v);
    assert!(out.contains(&"snapshot-isolation".to_string()), "{out:?}");
    assert!(!out.contains(&"read-committed".to_string()), "{out:?}");
    // And for the ww edge from the last writer of the known order: T saw I's append to key 2 and
    // appended to key 1, whose known order ends with T's append; I's unseen append to key 1 came
    // after it (T → I, ww) and T read I's (I → T, wr): G1c, which read committed forbids.
    let mut b = Builder::new();
    b.invoke(1, &i).complete(1, EventType::Info, &i);
    b.ok(2, &[R(2, Some(vec![2])), A(1, 5)])
        .ok(3, &[R(1, Some(vec![5]))]);
    let v = check(&b);
    assert!(names(&v).contains(&"G1c".to_string()), "{v:#?}");
    assert!(ruled_out(&v).contains(&"read-committed".to_string()));
}

#[test]
fn a_transactions_appends_out_of_the_order_it_made_them_are_incompatible_order() {
    // Found by the model cross-check: T appended 2 and then 3, and a read showed [1, 3, 2].
    // Neighbours written by one transaction draw no ww edge, so nothing was reported and the
    // history passed as strict serializable; no execution shows one transaction's appends reversed.
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1)])
        .ok(2, &[A(1, 2), A(1, 3)])
        .ok(3, &[R(1, Some(vec![1, 3, 2]))]);
    let v = check(&b);
    // (It also ends in 2, which T appended before its last append: G1b.)
    assert_eq!(names(&v), vec!["G1b", "incompatible-order"], "{v:#?}");
    assert!(ruled_out(&v).contains(&"read-committed".to_string()));
    // Its later append without the earlier one, and its appends split by another's.
    for read in [vec![1, 3], vec![2, 1, 3]] {
        let mut b = Builder::new();
        b.ok(1, &[A(1, 1)])
            .ok(2, &[A(1, 2), A(1, 3)])
            .ok(3, &[R(1, Some(read.clone()))]);
        let n = names(&check(&b));
        assert!(
            n.contains(&"incompatible-order".to_string()),
            "{read:?}: {n:?}"
        );
    }
    // In order, and a read of its first append alone (an intermediate read, G1b), are no torn run.
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1)])
        .ok(2, &[A(1, 2), A(1, 3)])
        .ok(3, &[R(1, Some(vec![1, 2, 3]))]);
    assert_eq!(names(&check(&b)), Vec::<String>::new());
    let mut b = Builder::new();
    b.ok(1, &[A(1, 1)])
        .ok(2, &[A(1, 2), A(1, 3)])
        .ok(3, &[R(1, Some(vec![1, 2]))]);
    let n = names(&check(&b));
    assert!(
        n.contains(&"G1b".to_string()) && !n.contains(&"incompatible-order".to_string()),
        "{n:?}"
    );
}

/// The [`read_skew`] history, decoded and inferred, for forging cycles over it.
fn with_read_skew_inference(f: impl FnOnce(&verity_checkers::graph::infer::Inference<'_>)) {
    use verity_checkers::graph::{infer, txn};
    let store = txn::decode(&read_skew().history()).unwrap();
    let inf = infer::infer(&store, txn::data_kind(&store).unwrap());
    f(&inf);
}

#[test]
fn a_reported_cycle_is_re_verified_edge_by_edge_and_forged_ones_are_refused() {
    use verity_checkers::graph::cycles::verify;
    use verity_checkers::graph::infer::{DATA, PROCESS, REALTIME, RW, WR, WW};
    let all = DATA | PROCESS | REALTIME;
    with_read_skew_inference(|inf| {
        let real = vec![(0, RW), (1, WR)];
        assert_eq!(verify(inf, "G-single", &real, all), Ok(()));
        let refused = |name: &str, cycle: Vec<(u32, u8)>, allowed: u8, why: &str| {
            let e = verify(inf, name, &cycle, allowed).expect_err(name);
            assert!(e.contains(why), "{name} {cycle:?}: {e}");
        };
        // An edge of another kind than the graph holds.
        refused(
            "G1c",
            vec![(0, WW), (1, WR)],
            all,
            "no ww edge from transaction 0 to transaction 1",
        );
        // The right edges under the wrong name.
        refused("G2-item", real.clone(), all, "make it G-single");
        refused("G-single-realtime", real.clone(), all, "make it G-single");
        // Every step real but the last: T2 has no edge back to T0, the walk does not close.
        let open = vec![(0, RW), (1, WR), (2, WR)];
        refused(
            "G-single",
            open,
            all,
            "step 2: no wr edge from transaction 2 to transaction 0",
        );
        // A real-time edge that real time does not give: the audit was still running.
        refused(
            "G-single-realtime",
            vec![(0, REALTIME), (1, WR)],
            all,
            "no realtime edge",
        );
        // Kinds the checker was not allowed to use, mixed masks, and strangers.
        refused("G-single", real.clone(), WW | WR, "not one allowed kind");
        refused(
            "G-single",
            vec![(0, RW | WW), (1, WR)],
            all,
            "not one allowed kind",
        );
        refused("G0", vec![(0, WW), (9, WW)], all, "not in the history");
        refused("G0", vec![], all, "empty");
    });
}
