//! The reply decoders of the protocol adapters, in one place for the fuzz targets and the property
//! tests: whatever bytes an adapter or a server sends back, decoding gives a completion or a reason,
//! never a panic.

use verity_history::{Completion, Invocation, Value, F};

/// One request of every kind an adapter is sent: a transfer, a read, a final read, a transaction
/// and the setup. Fuzz inputs pick one with their first byte.
pub fn sample_invocations() -> Vec<Invocation> {
    let value = |json: serde_json::Value| -> Value {
        serde_json::from_value(json).expect("a well-formed sample value")
    };
    vec![
        Invocation {
            f: F::Transfer,
            value: value(serde_json::json!({"id": 7, "from": 0, "to": 1, "amount": 2})),
        },
        Invocation {
            f: F::Read,
            value: Value::Null,
        },
        Invocation {
            f: F::Read,
            value: value(serde_json::json!({"final": true})),
        },
        Invocation {
            f: F::Txn,
            value: value(serde_json::json!([["r", 1, null], ["append", 1, 3]])),
        },
        Invocation {
            f: F::Setup,
            value: value(serde_json::json!({"balances": [10, 10]})),
        },
    ]
}

/// Decodes `bytes` as the exec adapter's reply line to the request picked by `pick`.
pub fn exec_reply(pick: u8, bytes: &[u8]) -> Result<Completion, String> {
    let ops = sample_invocations();
    let op = &ops[usize::from(pick) % ops.len()];
    crate::exec::interpret(op, 7, &String::from_utf8_lossy(bytes))
}

/// Decodes `bytes` as an HTTP ledger's answer, with the status picked by `status`, to the request
/// picked by `pick`.
#[cfg(feature = "http")]
pub fn http_answer(pick: u8, status: u16, bytes: &[u8]) -> Completion {
    let ops = sample_invocations();
    let op = &ops[usize::from(pick) % ops.len()];
    crate::http::answer(op, status, &String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests {
    /// Found by the property below: a 400 whose body is `{"error":""}` was a `fail` with an empty
    /// reason.
    #[cfg(feature = "http")]
    #[test]
    fn an_empty_error_falls_back_to_the_status() {
        let c = super::http_answer(0, 400, br#"{"error":""}"#);
        assert_eq!(c.error.as_deref(), Some("HTTP 400"));
        let c = super::exec_reply(0, br#"{"id":7,"type":"fail","error":" "}"#).unwrap();
        assert_eq!(c.error.as_deref(), Some("failed"));
    }

    use super::*;
    use proptest::prelude::*;
    use verity_history::EventType;

    /// Replies shaped like the protocol's, with every field liable to be missing, mistyped or odd.
    fn reply() -> impl Strategy<Value = String> {
        let scalar = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| format!("{n:?}")),
            "[a-z\\-]{0,8}".prop_map(|s| format!("{s:?}")),
            Just("18446744073709551616".to_string()),
            Just("1e400".to_string()),
        ];
        let value = prop_oneof![
            scalar.clone(),
            prop::collection::vec(scalar.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            (scalar.clone(), scalar.clone())
                .prop_map(|(a, b)| format!(r#"{{"balances":[{a},{b}],"applied":[{a}]}}"#)),
            (scalar.clone(), scalar.clone())
                .prop_map(|(k, v)| format!(r#"[["r",{k},[{v}]],["append",{k},{v}]]"#)),
            Just(r#"{"ops":[["r",1,[3]],["append",1,3]]}"#.to_string()),
        ];
        let field = prop_oneof![
            scalar.clone().prop_map(|v| format!(r#""id":{v}"#)),
            Just(r#""id":7"#.to_string()),
            prop_oneof![Just("ok"), Just("fail"), Just("info"), Just("")]
                .prop_map(|t| format!(r#""type":"{t}""#)),
            value.clone().prop_map(|v| format!(r#""value":{v}"#)),
            value.prop_map(|v| format!(r#""ops":{v}"#)),
            scalar.prop_map(|v| format!(r#""error":{v}"#)),
        ];
        let object =
            prop::collection::vec(field, 0..6).prop_map(|f| format!("{{{}}}", f.join(",")));
        (object, any::<usize>(), any::<bool>()).prop_map(|(text, cut, truncate)| {
            if truncate && !text.is_empty() {
                let mut at = cut % text.len();
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text[..at].to_string()
            } else {
                text
            }
        })
    }

    proptest! {
        // A fixed seed: the same cases on every run (the project's tests are deterministic).
        #![proptest_config(ProptestConfig {
            cases: 2000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0xdec0_de75),
            ..ProptestConfig::default()
        })]

        #[test]
        fn exec_replies_never_panic(pick: u8, text in reply(), bytes: Vec<u8>) {
            for input in [text.as_bytes(), &bytes[..]] {
                if let Ok(c) = exec_reply(pick, input) {
                    if c.kind != EventType::Ok {
                        prop_assert!(c.error.as_deref().is_some_and(|e| !e.trim().is_empty()), "a reason is given");
                    }
                    // An ok answer to a read or transaction carries what the request must return.
                    let op = &sample_invocations()[usize::from(pick) % 5];
                    if c.kind == EventType::Ok && op.f == F::Read {
                        prop_assert!(c.value.get("balances").is_some());
                    }
                }
            }
        }

        #[cfg(feature = "http")]
        #[test]
        fn http_answers_never_panic(pick: u8, status in 100u16..600, text in reply(), bytes: Vec<u8>) {
            for input in [text.as_bytes(), &bytes[..]] {
                let c = http_answer(pick, status, input);
                if !(200..300).contains(&status) {
                    prop_assert_ne!(c.kind, EventType::Ok, "HTTP {} is never ok", status);
                }
                if c.kind != EventType::Ok {
                    prop_assert!(c.error.as_deref().is_some_and(|e| !e.trim().is_empty()), "a reason is given");
                }
            }
        }
    }
}
