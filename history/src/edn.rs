//! Import of Jepsen/Knossos histories written in EDN (`history.edn`, Knossos's `data/`).
//!
//! Reading uses the `clojure-reader` crate (a port of Clojure's `tools.reader` EDN reader: comments,
//! keywords, sets, maps with any keys, lists, tagged values). A file is either one vector or list of op
//! maps (Knossos's test data) or one op map per line (Jepsen's `history.edn`). Each op map becomes an
//! [`Event`]: keywords become strings without the colon, vectors and lists become lists, sets become
//! sorted lists, `nil` becomes null, and map keys are stringified (keywords without the colon, integers
//! in decimal). `:process :nemesis` is the nemesis; a numeric process is a client.
//!
//! Jepsen's bank format is normalized to verity's vocabulary (see `verity_workloads::bank`): a transfer
//! `{:from :to :amount}` without an id gets a synthetic unique id, the same on the invoke and the
//! completion of one op; a read value `{0 14, 1 11, …}` keyed by 0..n-1 becomes `{"balances":[…]}`; a
//! read marked `:final? true` is invoked as `{"final": true}`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use clojure_reader::edn::{self, Edn};
use thiserror::Error;

use crate::event::{Event, EventType, Process, F};
use crate::history::History;
use crate::value::{Transfer, Value};

#[derive(Debug, Error)]
pub enum EdnError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}, column {column}: not valid EDN ({problem})")]
    Syntax {
        line: usize,
        column: usize,
        problem: String,
    },
    #[error("{place}: {problem}")]
    Op { place: String, problem: String },
}

/// Reads an EDN history file.
pub fn read_edn(path: impl AsRef<Path>) -> Result<History, EdnError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| EdnError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_edn(&text)
}

/// Parses an EDN history.
pub fn parse_edn(text: &str) -> Result<History, EdnError> {
    let forms = read_forms(text)?;
    let mut normalizer = Normalizer::default();
    let mut events = Vec::new();
    match forms.as_slice() {
        [(_, Edn::Vector(ops) | Edn::List(ops))] => {
            for (n, op) in ops.iter().enumerate() {
                let place = || format!("op {} of the top-level collection", n + 1);
                events.push(normalizer.event(op, events.len()).map_err(|problem| {
                    EdnError::Op {
                        place: place(),
                        problem,
                    }
                })?);
            }
        }
        _ => {
            for (line, form) in &forms {
                events.push(normalizer.event(form, events.len()).map_err(|problem| {
                    EdnError::Op {
                        place: format!("line {line}"),
                        problem,
                    }
                })?);
            }
        }
    }
    Ok(History::new(events))
}

/// Every top-level form, with the line it starts on.
fn read_forms(text: &str) -> Result<Vec<(usize, Edn<'_>)>, EdnError> {
    let mut forms = Vec::new();
    let mut rest = text;
    let mut line = 1usize;
    loop {
        let skipped = skip_blank(rest);
        line += rest[..skipped].matches('\n').count();
        rest = &rest[skipped..];
        if rest.is_empty() {
            return Ok(forms);
        }
        let (form, after) = edn::read(rest).map_err(|e| EdnError::Syntax {
            line: line + e.line.unwrap_or(1) - 1,
            column: e.column.unwrap_or(0),
            problem: format!("{:?}", e.code),
        })?;
        forms.push((line, form));
        let consumed = rest.len() - after.len();
        line += rest[..consumed].matches('\n').count();
        rest = after;
    }
}

/// Bytes of whitespace, commas and `;` comments at the start of `s`.
fn skip_blank(s: &str) -> usize {
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b',' => i += 1,
            b';' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => break,
        }
    }
    i
}

/// Converts a generic EDN value.
pub fn to_value(e: &Edn<'_>) -> Value {
    match e {
        Edn::Nil => Value::Null,
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Int(i) => Value::Int(*i),
        Edn::Double(x) => Value::Float(x.into_inner()),
        Edn::Rational((n, d)) => Value::Float(*n as f64 / *d as f64),
        Edn::Key(s) | Edn::Symbol(s) | Edn::Str(s) => Value::Str(s.to_string()),
        Edn::Char(c) => Value::Str(c.to_string()),
        Edn::Vector(items) | Edn::List(items) => Value::List(items.iter().map(to_value).collect()),
        // A BTreeSet iterates in Edn's total order, so the list is sorted and deterministic.
        Edn::Set(items) => Value::List(items.iter().map(to_value).collect()),
        Edn::Map(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (key_string(k), to_value(v)))
                .collect(),
        ),
        Edn::Tagged(_, inner) => to_value(inner),
        other => Value::Str(other.to_string()),
    }
}

fn key_string(k: &Edn<'_>) -> String {
    match k {
        Edn::Key(s) | Edn::Symbol(s) | Edn::Str(s) => s.to_string(),
        Edn::Int(i) => i.to_string(),
        other => other.to_string(),
    }
}

/// Per-file state of the bank normalization: synthetic transfer ids, paired by process.
#[derive(Default)]
struct Normalizer {
    next_id: u64,
    open: HashMap<Process, u64>,
}

impl Normalizer {
    fn event(&mut self, form: &Edn<'_>, position: usize) -> Result<Event, String> {
        let Edn::Map(m) = form else {
            return Err(format!("expected an op map, found {form}"));
        };
        let get = |k: &'static str| m.get(&Edn::Key(k.into()));
        let kind = match get("type") {
            Some(Edn::Key(t)) => match t.as_ref() {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                "info" => EventType::Info,
                other => {
                    return Err(format!(
                        ":type must be :invoke, :ok, :fail or :info, not :{other}"
                    ))
                }
            },
            other => return Err(format!("missing or malformed :type ({other:?})")),
        };
        let process = match get("process") {
            Some(Edn::Int(p)) if *p >= 0 => Process::Client(*p as u64),
            Some(Edn::Key(k)) if k == "nemesis" => Process::Nemesis,
            other => {
                return Err(format!(
                    "malformed :process {other:?}: expected a number or :nemesis"
                ))
            }
        };
        let f = match get("f") {
            Some(Edn::Key(s) | Edn::Symbol(s) | Edn::Str(s)) => F::from_name(s),
            other => return Err(format!("missing or malformed :f ({other:?})")),
        };
        let index = match get("index") {
            Some(Edn::Int(i)) if *i >= 0 => *i as u64,
            None => position as u64,
            Some(other) => return Err(format!("malformed :index {other}")),
        };
        let time_ns = match get("time") {
            Some(Edn::Int(t)) if *t >= 0 => *t as u64,
            None => index,
            Some(other) => return Err(format!("malformed :time {other}")),
        };
        let error = get("error").map(|e| match e {
            Edn::Key(s) | Edn::Str(s) | Edn::Symbol(s) => s.to_string(),
            other => to_value(other).to_string(),
        });
        let is_final = matches!(get("final?"), Some(Edn::Bool(true)));
        let nil = Edn::Nil;
        let raw = get("value").unwrap_or(&nil);
        let value = self.value(&f, kind, process, raw, is_final);
        Ok(Event {
            index,
            time_ns,
            process,
            kind,
            f,
            value,
            error,
        })
    }

    /// The op's value, normalized to verity's bank vocabulary where it is a bank op.
    fn value(
        &mut self,
        f: &F,
        kind: EventType,
        process: Process,
        raw: &Edn<'_>,
        is_final: bool,
    ) -> Value {
        match (f, raw) {
            (F::Transfer, Edn::Map(m)) => self
                .transfer(kind, process, m)
                .unwrap_or_else(|| to_value(raw)),
            (F::Read, Edn::Map(m)) => balances(m).unwrap_or_else(|| to_value(raw)),
            (F::Read, Edn::Nil) if is_final && kind == EventType::Invoke => {
                Value::map([("final", Value::Bool(true))])
            }
            _ => to_value(raw),
        }
    }

    fn transfer(
        &mut self,
        kind: EventType,
        process: Process,
        m: &BTreeMap<Edn<'_>, Edn<'_>>,
    ) -> Option<Value> {
        let int = |k: &str| match m.get(&Edn::Key(k.into())) {
            Some(Edn::Int(i)) => Some(*i),
            _ => None,
        };
        let (from, to, amount) = (
            u32::try_from(int("from")?).ok()?,
            u32::try_from(int("to")?).ok()?,
            int("amount")?,
        );
        let id = match int("id") {
            Some(id) => u64::try_from(id).ok()?,
            None if kind == EventType::Invoke => {
                self.next_id += 1;
                self.open.insert(process, self.next_id);
                self.next_id
            }
            None => match self.open.remove(&process) {
                Some(id) => id,
                None => {
                    self.next_id += 1;
                    self.next_id
                }
            },
        };
        Some(Value::Transfer(Transfer {
            id,
            from,
            to,
            amount,
        }))
    }
}

/// `{0 14, 1 11, …}` keyed exactly by 0..n-1 with integer balances.
fn balances(m: &BTreeMap<Edn<'_>, Edn<'_>>) -> Option<Value> {
    let mut out = vec![0i64; m.len()];
    let mut seen = 0;
    for (k, v) in m {
        let (Edn::Int(k), Edn::Int(v)) = (k, v) else {
            return None;
        };
        let slot = out.get_mut(usize::try_from(*k).ok()?)?;
        *slot = *v;
        seen += 1;
    }
    (seen == m.len() && !m.is_empty()).then(|| Value::map([("balances", Value::int_list(out))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_vector_of_op_maps_with_comments_and_sets() {
        let h = parse_edn(
            "; a comment\n[{:process 0, :type :invoke, :f :txn, :value [[:append 1 2] [:r 1 [1 2]]]}\n \
             ; between ops\n {:process :nemesis, :type :info, :f :start, :value #{:n2 :n1}}]",
        )
        .unwrap();
        assert_eq!(h.events.len(), 2);
        let e = &h.events[0];
        assert_eq!(
            (e.process, e.kind, e.f.clone()),
            (Process::Client(0), EventType::Invoke, F::Txn)
        );
        let s = |x: &str| Value::Str(x.into());
        assert_eq!(
            e.value,
            Value::List(vec![
                Value::List(vec![s("append"), Value::Int(1), Value::Int(2)]),
                Value::List(vec![s("r"), Value::Int(1), Value::int_list([1, 2])]),
            ])
        );
        assert_eq!(h.events[1].process, Process::Nemesis);
        assert_eq!(h.events[1].value, Value::List(vec![s("n1"), s("n2")]));
        assert_eq!(h.events[1].index, 1);
    }

    #[test]
    fn normalizes_the_bank_format_one_map_per_line() {
        let text = "{:type :invoke, :f :transfer, :value {:from 5, :to 0, :amount 3}, :process 2, :time 10, :index 2}\n\
                    {:type :invoke, :f :read, :value nil, :final? true, :process 3, :index 3}\n\
                    {:type :fail, :f :transfer, :value {:from 5, :to 0, :amount 3}, :error :insufficient-funds, :process 2, :index 5}\n\
                    {:type :ok, :f :read, :value {0 14, 1 11}, :final? true, :process 3, :index 6}\n";
        let h = parse_edn(text).unwrap();
        let t = |e: &Event| *e.value.as_transfer().unwrap();
        assert_eq!(t(&h.events[0]), t(&h.events[2]));
        assert_eq!(t(&h.events[0]).amount, 3);
        assert_eq!(h.events[2].error.as_deref(), Some("insufficient-funds"));
        assert_eq!(h.events[1].value.get("final"), Some(&Value::Bool(true)));
        assert_eq!(
            h.events[3]
                .value
                .get("balances")
                .unwrap()
                .as_i64_list()
                .unwrap(),
            vec![14, 11]
        );
        assert_eq!(h.events[0].time_ns, 10);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let err = parse_edn(
            "{:type :invoke, :f :read, :process 0}\n{:type :bogus, :f :read, :process 0}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 2") && err.contains(":bogus"), "{err}");
        let err = parse_edn("{:type :invoke,\n :f :read, :process 0}\n{:type :ok :f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        let err = parse_edn("{:type :invoke, :f :read, :process \"x\"}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains(":process"), "{err}");
    }
}
