//! Import of Jepsen/Knossos/Elle histories written in EDN (`history.edn`, Knossos's `data/`), and
//! export back to it ([`write`]).
//!
//! Reading uses the `clojure-reader` crate (a port of Clojure's `tools.reader` EDN reader: comments,
//! keywords, sets, maps with any keys, lists, tagged values). A file is either one vector or list of op
//! maps (Knossos's test data) or one op map per line (Jepsen's `history.edn`); either way each op is
//! located by its line ([`forms`]), and every error names the line and what was expected there. Each
//! op map becomes an [`Event`]: keywords become strings without the colon, vectors and lists become
//! lists, sets become sorted lists, `nil` becomes null, and map keys are stringified (keywords
//! without the colon, integers in decimal). `:process :nemesis` is the nemesis, whose `:type`, `:f`
//! and `:value` may be anything; a numeric process is a client; ops without a `:process` are paired
//! invocation to completion as Elle's readers do ([`pairing`]). A missing `:index` is the op's
//! position in the file; a missing `:time` is the time of the event before (or the index, when no
//! op of the file carries a time); times are kept as written, in or out of order.
//!
//! Jepsen's bank format is normalized to verity's vocabulary (see `verity_workloads::bank`): a transfer
//! `{:from :to :amount}` without an id gets a synthetic unique id, the same on the invoke and the
//! completion of one op; a read value `{0 14, 1 11, …}` keyed by 0..n-1 becomes `{"balances":[…]}`,
//! and `{:balances {0 14, 1 11} :transfers #{1 2 5}}` (what `verity export` writes for a read that
//! returns the journal) becomes `{"applied":[1,2,5],"balances":[…]}`; a read marked `:final? true`
//! is invoked as `{"final": true}`. A read in any other shape is kept as written, for the checker to
//! report as uninterpretable.
//!
//! [`parse_edn`] first tries a fast reader written for exactly these op maps ([`fast`]); where it
//! cannot be sure to read a file as [`parse_edn_generic`] does, it steps aside and the generic reader
//! reads the file, so the two never give different answers.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use clojure_reader::edn::Edn;
use thiserror::Error;

use crate::event::{Event, EventType, Process, F};
use crate::history::History;
use crate::value::{Transfer, Value};

pub mod write;

mod fast;
mod forms;
mod pairing;

pub use forms::DEPTH_MAX;

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
    #[error("line {line}: {problem}")]
    Op { line: usize, problem: String },
}

impl EdnError {
    /// The line the error is on (every error but an I/O one has one).
    pub fn line(&self) -> Option<usize> {
        match self {
            EdnError::Io { .. } => None,
            EdnError::Syntax { line, .. } | EdnError::Op { line, .. } => Some(*line),
        }
    }
}

/// Reads an EDN history file.
pub fn read_edn(path: impl AsRef<Path>) -> Result<History, EdnError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| EdnError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_edn(&bytes)
}

/// Parses an EDN history from text or raw bytes (which must be UTF-8). Every error names its line and
/// what was expected there; no input makes it panic.
pub fn parse_edn<T: AsRef<[u8]> + ?Sized>(input: &T) -> Result<History, EdnError> {
    match parse_edn_fast(input) {
        Some(history) => Ok(history),
        None => parse_edn_generic(input),
    }
}

/// The fast reader alone: the history [`parse_edn_generic`] would give, or `None` where it steps
/// aside (any file it cannot be sure to read exactly as the generic reader does, every malformed
/// one among them). For tests, fuzzing and benchmarks; [`parse_edn`] is the reader to use.
pub fn parse_edn_fast<T: AsRef<[u8]> + ?Sized>(input: &T) -> Option<History> {
    parse_edn_fast_in_pieces(input, fast::PIECE_BYTES)
}

/// [`parse_edn_fast`] with the file split for parallel reading into pieces of about `piece_bytes`
/// (rather than a megabyte), so that tests meet every kind of line start on small files.
#[doc(hidden)]
pub fn parse_edn_fast_in_pieces<T: AsRef<[u8]> + ?Sized>(
    input: &T,
    piece_bytes: usize,
) -> Option<History> {
    fast::parse(
        std::str::from_utf8(input.as_ref()).ok()?,
        piece_bytes.max(1),
    )
}

pub use fast::stream::End as StreamEnd;

/// Reads an EDN history file op by op, handing each event to `each` in file order, exactly as
/// [`read_edn`] would read it — never holding the whole file or the whole history, for a consumer
/// that keeps less of each event (the graph checker's compact store). The file is read in blocks by
/// the fast reader ([`fast`]), in parallel within a block. `None` where the fast reader steps aside
/// (see [`parse_edn_fast`]; also at an op without a `:process`, whose pairing needs the whole file)
/// or the file cannot be read: what `each` was handed is then not the file's history, and
/// [`read_edn`] reads it (or reports why it cannot).
///
/// One thing is known only at the end: whether any op carries a time. When none does, every
/// event's time is its index ([`StreamEnd::times_are_indices`]), which the events handed out do
/// not carry yet.
pub fn stream_edn(path: impl AsRef<Path>, each: impl FnMut(Event)) -> Option<StreamEnd> {
    stream_edn_in_blocks(path, fast::stream::BLOCK_BYTES, fast::PIECE_BYTES, each)
}

/// [`stream_edn`] in blocks of about `block_bytes`, each read in pieces of about `piece_bytes`, so
/// that tests meet ops cut by a block's end and pieces of every kind on small files.
#[doc(hidden)]
pub fn stream_edn_in_blocks(
    path: impl AsRef<Path>,
    block_bytes: usize,
    piece_bytes: usize,
    each: impl FnMut(Event),
) -> Option<StreamEnd> {
    fast::stream::stream(path.as_ref(), block_bytes, piece_bytes, each)
}

/// The first op maps of an EDN file, from its first [`HEAD_BYTES`] as the fast reader reads
/// them, up to the first it does not read: for guessing what a history is from its head (the first
/// client operation's `:f`). Their processes, indices and times are as written, not filled in (an
/// op without a `:process` reads as client 0, which pairing would make some client too). Empty where
/// the file cannot be read or the fast reader steps aside at once.
pub fn read_edn_head(path: impl AsRef<Path>) -> Vec<Event> {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(path.as_ref()) else {
        return Vec::new();
    };
    let mut bytes = Vec::with_capacity(HEAD_BYTES);
    if file
        .take(HEAD_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return Vec::new();
    }
    if bytes.len() > HEAD_BYTES {
        // Whole lines only: an op cut short is not read.
        let cut = memchr::memrchr(b'\n', &bytes).map_or(0, |nl| nl + 1);
        bytes.truncate(cut);
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    };
    fast::stream::head(text)
}

/// How much of a file [`read_edn_head`] reads.
pub const HEAD_BYTES: usize = 256 << 10;

/// The generic reader alone (built on `clojure-reader`): any EDN, every error located. For tests,
/// fuzzing and benchmarks; [`parse_edn`] is the reader to use.
pub fn parse_edn_generic<T: AsRef<[u8]> + ?Sized>(input: &T) -> Result<History, EdnError> {
    let bytes = input.as_ref();
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        EdnError::Syntax {
            line,
            column: 1 + String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count(),
            problem: "invalid UTF-8: expected EDN text in UTF-8".into(),
        }
    })?;
    let forms = forms::read(text)?;
    let mut ops = Vec::with_capacity(forms.len());
    for (line, form) in &forms {
        ops.push(OpMap::new(*line, form).map_err(|problem| EdnError::Op {
            line: *line,
            problem,
        })?);
    }
    let headers: Vec<pairing::Header<'_>> = ops
        .iter()
        .map(|op| pairing::Header {
            line: op.line,
            kind: op.kind,
            process: op.process,
            f: &op.f,
            value: op
                .process
                .is_none()
                .then(|| std::borrow::Cow::Owned(to_value(op.value))),
        })
        .collect();
    let processes =
        pairing::assign(&headers).map_err(|(line, problem)| EdnError::Op { line, problem })?;
    drop(headers);
    let mut normalizer = Normalizer {
        ids: TransferIds::default(),
        clock: Clock::new(ops.iter().any(|op| op.time_ns.is_some())),
    };
    let mut events = Vec::with_capacity(ops.len());
    for (position, (op, process)) in ops.into_iter().zip(processes).enumerate() {
        events.push(normalizer.event(op, process, position));
    }
    Ok(History::new(events))
}

/// The fields of one op map, checked but not yet normalized.
struct OpMap<'f, 'e> {
    line: usize,
    kind: EventType,
    /// `None` when the op names no process (see [`pairing`]).
    process: Option<Process>,
    f: F,
    index: Option<u64>,
    time_ns: Option<u64>,
    error: Option<String>,
    is_final: bool,
    value: &'f Edn<'e>,
}

static NIL: Edn<'static> = Edn::Nil;

impl<'f, 'e> OpMap<'f, 'e> {
    fn new(line: usize, form: &'f Edn<'e>) -> Result<Self, String> {
        let Edn::Map(m) = form else {
            return Err(format!(
                "expected an op map {{:type … :f … :value …}}, found {}",
                shown(form)
            ));
        };
        let get = |k: &'static str| m.get(&Edn::Key(k.into()));
        let process = match get("process") {
            Some(Edn::Int(p)) if *p >= 0 => Some(Process::Client(*p as u64)),
            Some(Edn::Key(k) | Edn::Str(k)) if k == "nemesis" => Some(Process::Nemesis),
            None | Some(Edn::Nil) => None,
            Some(other) => {
                return Err(format!(
                    "expected :process to be a non-negative integer or :nemesis, found {}",
                    shown(other)
                ))
            }
        };
        let nemesis = process == Some(Process::Nemesis);
        let kind = match get("type") {
            Some(Edn::Key(t) | Edn::Str(t)) => match t.as_ref() {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                "info" => EventType::Info,
                other => {
                    return Err(format!(
                        "expected :type to be :invoke, :ok, :fail or :info, found :{other}"
                    ))
                }
            },
            // A nemesis op is not an operation: what it was is kept in :f and :value.
            None if nemesis => EventType::Info,
            None => {
                return Err("expected a :type (:invoke, :ok, :fail or :info), found none".into())
            }
            Some(other) => {
                return Err(format!(
                    "expected :type to be :invoke, :ok, :fail or :info, found {}",
                    shown(other)
                ))
            }
        };
        let f = match get("f") {
            Some(Edn::Key(s) | Edn::Symbol(s) | Edn::Str(s)) => F::from_name(s),
            // The nemesis may name its action any way it likes (Jepsen's composed nemeses use vectors).
            Some(other) if nemesis => F::from_name(&to_value(other).to_string()),
            None if nemesis => F::from_name("nemesis"),
            None => {
                return Err("expected an :f (a keyword such as :read or :txn), found none".into())
            }
            Some(other) => {
                return Err(format!(
                    "expected :f to be a keyword such as :read or :txn, found {}",
                    shown(other)
                ))
            }
        };
        let index = match get("index") {
            Some(Edn::Int(i)) if *i >= 0 => Some(*i as u64),
            None => None,
            Some(other) => {
                return Err(format!(
                    "expected :index to be a non-negative integer, found {}",
                    shown(other)
                ))
            }
        };
        let time_ns = match get("time") {
            Some(Edn::Int(t)) if *t >= 0 => Some(*t as u64),
            // Some tools write a negative or fractional time (a clock that went back, seconds); the
            // time is only drawn, never judged, so an unusable one is left out rather than refused.
            Some(Edn::Int(_) | Edn::Double(_) | Edn::Rational(_)) | Some(Edn::Nil) | None => None,
            Some(other) => {
                return Err(format!(
                    "expected :time to be an integer (nanoseconds), found {}",
                    shown(other)
                ))
            }
        };
        let error = get("error").map(|e| match e {
            Edn::Key(s) | Edn::Str(s) | Edn::Symbol(s) => s.to_string(),
            other => to_value(other).to_string(),
        });
        Ok(OpMap {
            line,
            kind,
            process,
            f,
            index,
            time_ns,
            error,
            is_final: matches!(get("final?"), Some(Edn::Bool(true))),
            value: get("value").unwrap_or(&NIL),
        })
    }
}

/// A value as it appears in a message: its EDN text, cut short.
fn shown(e: &Edn<'_>) -> String {
    let text = e.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
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

/// The time of each event: as written, or, without one, the time of the event before it (Jepsen's
/// nemesis ops sometimes carry none) — or its index when no op of the file carries a time.
struct Clock {
    /// Whether any op of the file carries a `:time`.
    timed: bool,
    last_time_ns: u64,
}

impl Clock {
    fn new(timed: bool) -> Self {
        Clock {
            timed,
            last_time_ns: 0,
        }
    }

    fn time(&mut self, written: Option<u64>, index: u64) -> u64 {
        let time_ns = match written {
            Some(t) => t,
            None if self.timed => self.last_time_ns,
            None => index,
        };
        self.last_time_ns = time_ns;
        time_ns
    }
}

/// Synthetic ids for transfers written without one: a fresh id at each invocation, the same one on
/// the completion from the same process.
#[derive(Default)]
struct TransferIds {
    next_id: u64,
    open: HashMap<Process, u64>,
}

impl TransferIds {
    fn id(&mut self, kind: EventType, process: Process) -> u64 {
        if kind == EventType::Invoke {
            self.next_id += 1;
            self.open.insert(process, self.next_id);
            return self.next_id;
        }
        self.open.remove(&process).unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id
        })
    }
}

/// Per-file state of the normalization: synthetic transfer ids, paired by process, and the clock.
struct Normalizer {
    ids: TransferIds,
    clock: Clock,
}

impl Normalizer {
    fn event(&mut self, op: OpMap<'_, '_>, process: Process, position: usize) -> Event {
        let index = op.index.unwrap_or(position as u64);
        let time_ns = self.clock.time(op.time_ns, index);
        let value = self.value(&op.f, op.kind, process, op.value, op.is_final);
        Event {
            index,
            time_ns,
            process,
            kind: op.kind,
            f: op.f,
            value,
            error: op.error,
        }
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
            (F::Read, Edn::Map(m)) if process != Process::Nemesis => {
                bank_read(m).unwrap_or_else(|| to_value(raw))
            }
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
            None => self.ids.id(kind, process),
        };
        Some(Value::Transfer(Transfer {
            id,
            from,
            to,
            amount,
        }))
    }
}

/// A bank read in one of the shapes Jepsen and `verity export` write, in verity's vocabulary:
/// `{0 14, 1 11, …}` (Jepsen's bank test: account → balance) becomes `{"balances": [14, 11, …]}`, and
/// `{:balances {0 14, 1 11} :transfers #{1 2 5}}` (a read that also returns the journal of applied
/// transfer ids; a vector when an id was applied twice) becomes `{"applied": [1, 2, 5], "balances":
/// […]}`. Anything else is `None` and stays as written, for the checker to call uninterpretable.
fn bank_read(m: &BTreeMap<Edn<'_>, Edn<'_>>) -> Option<Value> {
    if let Some(balances) = balances(m) {
        return Some(Value::map([("balances", balances)]));
    }
    let mut out = crate::value::Map::new();
    for (k, v) in m {
        let Edn::Key(k) = k else { return None };
        let value = match k.as_ref() {
            "balances" => match v {
                Edn::Map(b) => balances(b)?,
                Edn::Vector(b) | Edn::List(b) => ints(b.iter())?,
                _ => return None,
            },
            "transfers" | "applied" => match v {
                Edn::Set(ids) => ints(ids.iter())?,
                Edn::Vector(ids) | Edn::List(ids) => ints(ids.iter())?,
                _ => return None,
            },
            _ => return None,
        };
        let key = if k == "balances" {
            "balances"
        } else {
            "applied"
        };
        if out.insert(key.to_string(), value).is_some() {
            return None; // both :transfers and :applied
        }
    }
    out.contains_key("balances").then_some(Value::Map(out))
}

/// Balances keyed exactly by accounts 0..n-1, as a list.
fn balances(m: &BTreeMap<Edn<'_>, Edn<'_>>) -> Option<Value> {
    let mut out = vec![0i64; m.len()];
    for (k, v) in m {
        let (Edn::Int(k), Edn::Int(v)) = (k, v) else {
            return None;
        };
        *out.get_mut(usize::try_from(*k).ok()?)? = *v;
    }
    // Distinct keys, each below the length: exactly 0..n-1.
    (!m.is_empty()).then(|| Value::int_list(out))
}

fn ints<'a, 'e: 'a>(items: impl Iterator<Item = &'a Edn<'e>>) -> Option<Value> {
    items
        .map(|e| match e {
            Edn::Int(i) => Some(Value::Int(*i)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .map(Value::List)
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

    #[test]
    fn ops_without_a_process_pair_each_invocation_with_the_completion_that_answers_it() {
        // Two transactions in flight at once, completing in the opposite order.
        let h = parse_edn(
            "{:type :invoke, :f :txn, :value [[:append 1 1] [:r 2 nil]]}\n\
             {:type :invoke, :f :txn, :value [[:r 1 nil]]}\n\
             {:type :ok, :f :txn, :value [[:r 1 [1]]]}\n\
             {:type :ok, :f :txn, :value [[:append 1 1] [:r 2 nil]]}\n\
             {:type :invoke, :f :txn, :value [[:r 1 nil]]}\n\
             {:type :info, :f :txn, :value [[:r 1 nil]]}\n",
        )
        .unwrap();
        let p: Vec<Process> = h.events.iter().map(|e| e.process).collect();
        assert_eq!(p[0], p[3], "the append is completed by the fourth line");
        assert_eq!(p[1], p[2], "the read by the third");
        assert_eq!(p[4], p[5]);
        let same = parse_edn(
            "{:type \"invoke\", :f :txn, :value [[:r 1 nil]], :process nil}\n{:type \"ok\", :f :txn, :value [[:r 1 [1]]]}\n",
        )
        .unwrap();
        assert_eq!(
            same.events[0].process, same.events[1].process,
            "nil is no process; a string type is read"
        );
        let distinct: std::collections::BTreeSet<_> = p.iter().collect();
        assert_eq!(distinct.len(), 3, "one process per operation: {p:?}");
        let ops = h.ops().unwrap();
        assert_eq!(ops.len(), 3);
    }

    #[test]
    fn ops_without_a_process_get_processes_after_every_named_one() {
        let h = parse_edn(
            "{:type :invoke, :f :read, :process 7}\n{:type :ok, :f :read, :value 1, :process 7}\n\
             {:type :invoke, :f :read}\n{:type :ok, :f :read, :value 1}\n",
        )
        .unwrap();
        assert_eq!(h.events[2].process, Process::Client(8));
        assert_eq!(h.events[3].process, Process::Client(8));
    }

    #[test]
    fn a_completion_without_a_process_or_an_open_invocation_is_a_located_error() {
        let err = parse_edn("{:type :invoke, :f :read}\n{:type :ok, :f :write, :value 3}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("line 2:") && err.contains("expected"),
            "{err}"
        );
    }

    #[test]
    fn a_final_read_with_its_journal_reads_as_balances_and_applied_ids() {
        let h = parse_edn(
            "{:type :invoke, :f :read, :value nil, :process 3, :final? true}\n\
             {:type :ok, :f :read, :value {:balances {0 10, 1 20} :transfers #{1 2 5}}, :process 3, :final? true}\n\
             {:type :invoke, :f :read, :value nil, :process 4}\n\
             {:type :ok, :f :read, :value {:balances {0 10, 1 20} :transfers [5 1 5]}, :process 4}\n",
        )
        .unwrap();
        assert_eq!(h.events[0].value.get("final"), Some(&Value::Bool(true)));
        let v = &h.events[1].value;
        assert_eq!(v.get("balances"), Some(&Value::int_list([10, 20])));
        assert_eq!(v.get("applied"), Some(&Value::int_list([1, 2, 5])));
        let v = &h.events[3].value;
        assert_eq!(
            v.get("applied"),
            Some(&Value::int_list([5, 1, 5])),
            "order and duplicates kept"
        );
    }

    #[test]
    fn reads_in_no_bank_shape_are_kept_as_written() {
        for (text, key) in [
            ("{:balances {0 10, 2 20} :transfers #{1}}", "balances"),
            ("{:balances {0 10} :transfers #{:a}}", "transfers"),
            ("{:balances {0 10} :extra 1}", "extra"),
            ("{:transfers #{1}}", "transfers"),
        ] {
            let h = parse_edn(&format!(
                "{{:type :ok, :f :read, :value {text}, :process 0}}"
            ))
            .unwrap();
            assert!(
                h.events[0].value.get(key).is_some(),
                "{text} -> {:?}",
                h.events[0].value
            );
            assert!(h.events[0].value.get("applied").is_none(), "{text}");
        }
    }

    #[test]
    fn nemesis_ops_may_carry_any_value_and_any_name() {
        let h = parse_edn(
            "{:type :info, :f :start, :value :n1, :process :nemesis}\n\
             {:type :info, :f :partition, :value {\"n1\" #{\"n2\"}, :kind [:halves 2]}, :process :nemesis}\n\
             {:type :info, :f [:kill :n2], :value [1 2.5 \"x\" nil true], :process :nemesis}\n\
             {:type :invoke, :f \"clock\", :value \"bump 3s\", :process :nemesis}\n\
             {:f :heal, :process :nemesis}\n\
             {:type :info, :f :stop, :value nil, :process :nemesis, :time 5}\n",
        )
        .unwrap();
        assert_eq!(h.len(), 6);
        assert!(h.events.iter().all(|e| e.process == Process::Nemesis));
        assert_eq!(h.events[0].value, Value::Str("n1".into()));
        assert_eq!(
            h.events[1].value.get("n1"),
            Some(&Value::List(vec![Value::Str("n2".into())]))
        );
        assert_eq!(h.events[2].f.as_str(), r#"["kill","n2"]"#);
        assert_eq!(h.events[4].kind, EventType::Info);
        assert_eq!(h.events[4].f.as_str(), "heal");
        assert_eq!(
            h.ops().unwrap().len(),
            0,
            "nemesis events are not operations"
        );
    }

    #[test]
    fn missing_and_out_of_order_times_and_indices() {
        let h = parse_edn(
            "{:type :invoke, :f :read, :process 0, :time 50}\n\
             {:type :ok, :f :read, :value 1, :process 0, :time 20}\n\
             {:type :info, :f :kill, :process :nemesis}\n\
             {:type :invoke, :f :read, :process 1, :time -3}\n\
             {:type :ok, :f :read, :value 1, :process 1, :time 1.5}\n",
        )
        .unwrap();
        let times: Vec<u64> = h.events.iter().map(|e| e.time_ns).collect();
        assert_eq!(
            times,
            [50, 20, 20, 20, 20],
            "kept as written; a missing or unusable time is the previous one"
        );
        let indices: Vec<u64> = h.events.iter().map(|e| e.index).collect();
        assert_eq!(indices, [0, 1, 2, 3, 4]);
        let h = parse_edn(
            "{:type :invoke, :f :read, :process 0, :index 9}\n{:type :ok, :f :read, :process 0}\n",
        )
        .unwrap();
        assert_eq!((h.events[0].index, h.events[1].index), (9, 1));
        assert_eq!(h.events[0].time_ns, 9, "no time anywhere: the index");
    }

    #[test]
    fn ops_inside_a_top_level_vector_are_located_by_line() {
        let err = parse_edn(
            "[{:type :invoke, :f :read, :process 0}\n\n {:type :ok, :f :read, :process x}]",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("line 3:") && err.contains(":process"),
            "{err}"
        );
        let err = parse_edn("[{:type :invoke, :f :read, :process 0}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("expected"), "{err}");
        let err = parse_edn("[{:type :invoke, :f :read, :process 0}] {}")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("end of the file"),
            "{err}"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_or_nest_too_deep_are_located_errors() {
        let err = parse_edn(b"{:type :invoke}\n{:f \"\xff\"}".as_slice()).unwrap_err();
        assert_eq!(err.line(), Some(2), "{err}");
        let deep = format!(
            "{{:type :ok, :f :read, :process 0, :value {}}}",
            "[".repeat(100_000)
        );
        let err = parse_edn(&deep).unwrap_err();
        assert!(err.to_string().contains("nest"), "{err}");
        assert_eq!(err.line(), Some(1));
        let err =
            parse_edn("{:type :ok, :f :read, :process 0, :value 123456789012345678901234567890}")
                .unwrap_err()
                .to_string();
        assert!(err.contains("line 1") && err.contains("64 bits"), "{err}");
    }
}
