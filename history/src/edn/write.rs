//! Export of a history as Jepsen's `history.edn`: one op map per line, in the shape Knossos, Elle and
//! Jepsen's own checkers read.
//!
//! Each event becomes `{:type :invoke, :f :transfer, :value …, :time 123456789, :process 3, :index
//! 7}` (`:error` and `:final?` when they apply); the nemesis is `:process :nemesis`. Values map one to
//! one: `null` → `nil`, lists → vectors, maps → maps whose keys are keywords where the name allows it
//! (integers where it is one, strings otherwise), strings → strings, and a transaction's micro-ops →
//! `[:append k v]`, `[:r k [1 2]]`, `[:w k v]` as Elle writes them. Bank reads take Jepsen's shape: a
//! plain read is a map account → balance, and a read that also returns the journal of applied
//! transfer ids is `{:balances {0 10, 1 20} :transfers #{1 2 5}}` (a vector instead of a set when the
//! journal holds an id twice, so a duplicated transfer survives the trip). The reader in
//! [`super`] maps all of it back, so export then import judges the same (docs/formats.md has the
//! whole mapping).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::event::{Event, EventType, Process, F};
use crate::history::History;
use crate::value::{MicroOp, MopValue, Value};

/// Choices of the export.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Write every bank read as a plain map account → balance, dropping the journal of applied ids
    /// from final reads (for Jepsen's bank checker, which knows no journal).
    pub plain_bank_reads: bool,
}

/// Writes the whole history, one op map per line.
pub fn write_edn<W: Write>(
    history: &History,
    options: WriteOptions,
    out: &mut W,
) -> io::Result<()> {
    let mut writer = EdnWriter::new(options);
    let mut line = String::new();
    for e in &history.events {
        line.clear();
        writer.event(e, &mut line);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Writes events one by one, remembering which processes have a final read open.
pub struct EdnWriter {
    options: WriteOptions,
    final_reads: HashSet<Process>,
}

impl EdnWriter {
    pub fn new(options: WriteOptions) -> Self {
        EdnWriter {
            options,
            final_reads: HashSet::new(),
        }
    }

    /// Appends one event's op map (without a newline) to `out`.
    pub fn event(&mut self, e: &Event, out: &mut String) {
        out.push_str("{:type :");
        out.push_str(e.kind.as_str());
        out.push_str(", :f ");
        name(e.f.as_str(), out);
        out.push_str(", :value ");
        let client_read = e.f == F::Read && e.process != Process::Nemesis;
        let mut is_final = false;
        if client_read && e.kind == EventType::Invoke && is_final_marker(&e.value) {
            self.final_reads.insert(e.process);
            is_final = true;
            out.push_str("nil");
        } else if client_read {
            if e.kind != EventType::Invoke {
                is_final = self.final_reads.remove(&e.process);
            }
            if !self.bank_read(&e.value, out) {
                value(&e.value, out);
            }
        } else if e.f == F::Txn {
            txn(&e.value, out);
        } else {
            value(&e.value, out);
        }
        let _ = write!(out, ", :time {}, :process ", e.time_ns);
        match e.process {
            Process::Client(p) => {
                let _ = write!(out, "{p}");
            }
            Process::Nemesis => out.push_str(":nemesis"),
        }
        let _ = write!(out, ", :index {}", e.index);
        if let Some(error) = &e.error {
            out.push_str(", :error ");
            name(error, out);
        }
        if is_final {
            out.push_str(", :final? true");
        }
        out.push('}');
    }

    /// A bank read in Jepsen's shape; false (nothing written) when the value is not one.
    fn bank_read(&self, v: &Value, out: &mut String) -> bool {
        let Value::Map(m) = v else { return false };
        let Some(balances) = m.get("balances").and_then(Value::as_i64_list) else {
            return false;
        };
        if balances.is_empty() {
            return false;
        }
        let applied = m.get("applied").map(Value::as_i64_list);
        match (m.len(), applied) {
            (1, None) => {}
            (2, Some(Some(_))) if self.options.plain_bank_reads => {}
            (2, Some(Some(applied))) => {
                out.push_str("{:balances ");
                account_map(&balances, out);
                let unique = applied.iter().collect::<HashSet<_>>().len() == applied.len();
                out.push_str(if unique {
                    " :transfers #{"
                } else {
                    " :transfers ["
                });
                join(applied.iter(), out, |id, out| {
                    let _ = write!(out, "{id}");
                });
                out.push_str(if unique { "}}" } else { "]}" });
                return true;
            }
            _ => return false,
        }
        account_map(&balances, out);
        true
    }
}

fn is_final_marker(v: &Value) -> bool {
    matches!(v, Value::Map(m) if m.len() == 1 && m.get("final") == Some(&Value::Bool(true)))
}

fn account_map(balances: &[i64], out: &mut String) {
    out.push('{');
    for (account, b) in balances.iter().enumerate() {
        let sep = if account > 0 { ", " } else { "" };
        let _ = write!(out, "{sep}{account} {b}");
    }
    out.push('}');
}

/// A transaction's value with keyword micro-op names; any other value as it is.
fn txn(v: &Value, out: &mut String) {
    match v.micro_ops() {
        Some(mops) if !mops.is_empty() => {
            out.push('[');
            join(mops.iter(), out, micro_op);
            out.push(']');
        }
        _ => value(v, out),
    }
}

fn micro_op(m: &MicroOp, out: &mut String) {
    let _ = write!(out, "[:{} {} ", m.f.as_str(), m.key);
    match &m.value {
        MopValue::Null => out.push_str("nil"),
        MopValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        MopValue::List(l) => {
            out.push('[');
            join(l.iter(), out, |i, out| {
                let _ = write!(out, "{i}");
            });
            out.push(']');
        }
    }
    out.push(']');
}

/// Any value, mapped one to one.
pub fn value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(x) => float(*x, out),
        Value::Str(s) => string(s, out),
        Value::List(items) => {
            out.push('[');
            join(items.iter(), out, value);
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            join(m.iter(), out, |(k, v), out| {
                key(k, out);
                out.push(' ');
                value(v, out);
            });
            out.push('}');
        }
        Value::Transfer(t) => {
            let _ = write!(
                out,
                "{{:id {}, :from {}, :to {}, :amount {}}}",
                t.id, t.from, t.to, t.amount
            );
        }
        Value::Txn(mops) => {
            out.push('[');
            join(mops.iter(), out, micro_op);
            out.push(']');
        }
    }
}

fn join<T>(items: impl Iterator<Item = T>, out: &mut String, mut each: impl FnMut(T, &mut String)) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(' ');
        }
        each(item, out);
    }
}

fn float(x: f64, out: &mut String) {
    if x.is_nan() {
        out.push_str("##NaN");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "##Inf" } else { "##-Inf" });
    } else {
        // Debug prints the shortest text that reads back to the same double, always with a `.` or
        // an exponent, so EDN reads it as a double.
        let _ = write!(out, "{x:?}");
    }
}

/// A map key: a keyword where the name allows it, an integer where it is one, a string otherwise.
fn key(k: &str, out: &mut String) {
    if is_keyword_name(k) {
        out.push(':');
        out.push_str(k);
    } else if k.parse::<i64>().is_ok_and(|i| i.to_string() == k) {
        out.push_str(k);
    } else {
        string(k, out);
    }
}

/// An op's `:f` or `:error`: a keyword where the name allows it, a string otherwise.
fn name(s: &str, out: &mut String) {
    if is_keyword_name(s) {
        out.push(':');
        out.push_str(s);
    } else {
        string(s, out);
    }
}

/// Names that read back as the same keyword in EDN and Clojure.
pub fn is_keyword_name(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || "*!_?<>=".contains(first))
        && chars.all(|c| c.is_ascii_alphanumeric() || "*+!-_?<>=.".contains(c))
}

fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
}
