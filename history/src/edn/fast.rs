//! The fast path of the EDN reader: Jepsen's op maps read straight into events, in parallel.
//!
//! Nearly every EDN history is the same few shapes — `{:type :invoke, :f :read, :value nil,
//! :process 3, :time 123, :index 7}`, one per line or inside one vector — and the generic reader
//! spends most of its time on what they never use: a tree of `Edn` values with ordered maps, a
//! column count kept for every character, values built once as `Edn` and again as [`Value`]. This
//! reader parses the text once, byte by byte, into the same [`Value`]s and events, and splits a large
//! file at line starts so both cores read it (the way the JSONL reader does).
//!
//! It is an optimisation, never a second opinion: it accepts only what it can read exactly as the
//! generic reader ([`super::parse_edn_generic`]) does, and *steps aside* (returns `None`) at anything
//! else — a syntax error, a tag, a character literal, a rational or a radix number, a non-ASCII byte
//! outside a string, a map whose keys would collide once stringified, a set of collections, an op the
//! generic reader would refuse. The generic reader then reads the file, so the history, or the error
//! and its line, are the generic reader's own. `history/tests/edn_fast.rs` holds the two to that,
//! on random histories in many layouts and on corruptions of them, and so does the `edn` fuzz target.
//!
//! What it shares with the generic reader is the meaning of an op map: the same checks of
//! `:process`, `:type`, `:f`, `:index`, `:time`, `:error` and `:final?`, the bank normalization of
//! `:value` ([`super`] explains it), the pairing of ops without a process ([`super::pairing`]) and
//! the clock and the synthetic transfer ids ([`super::Clock`], [`super::TransferIds`]).

use std::borrow::Cow;
use std::cmp::Ordering;

use rayon::prelude::*;

use super::{pairing, Clock, TransferIds, DEPTH_MAX};
use crate::event::{Event, EventType, Process, F};
use crate::history::History;
use crate::value::{Map, Transfer, Value};

/// Files whose ops take fewer bytes than twice this are read in one piece; larger ones in pieces of
/// about this size, in parallel.
pub const PIECE_BYTES: usize = 1 << 20;

/// Maps with at most this many keys are checked for colliding keys pairwise, without allocating.
const PAIRWISE_KEYS_MAX: usize = 8;

/// Reads a history, or returns `None` where the generic reader must (see the module's comment).
pub fn parse(text: &str, piece_bytes: usize) -> Option<History> {
    let mut top = Parser::new(text, 0, 0);
    top.blank()?;
    let close = match top.peek() {
        Some(b'[') => Some(b']'),
        Some(b'(') => Some(b')'),
        _ => None,
    };
    let depth = usize::from(close.is_some());
    let read = read_body(text, top.pos + depth, close, depth, piece_bytes)?;
    finish(read)
}

/// What an event read from an op map still lacks, to be filled in file order by [`finish`].
mod lacks {
    /// No `:index`: the event's position in the file.
    pub const INDEX: u8 = 1;
    /// No usable `:time`: the time of the event before (or the index).
    pub const TIME: u8 = 2;
    /// No `:process`: one from the pairing of invocations and completions.
    pub const PROCESS: u8 = 4;
    /// A transfer without an `:id`: a synthetic one.
    pub const ID: u8 = 8;
}

/// The events of the file in order, each with what it [`lacks`].
struct Read {
    events: Vec<Event>,
    lacks: Vec<u8>,
}

/// The op maps of the file, from `start` (just inside the top-level collection, if there is one).
fn read_body(
    text: &str,
    start: usize,
    close: Option<u8>,
    depth: usize,
    piece_bytes: usize,
) -> Option<Read> {
    let starts = piece_starts(text.as_bytes(), start, piece_bytes);
    if starts.len() > 1 {
        let ends: Vec<usize> = starts[1..].iter().copied().chain([text.len()]).collect();
        let pieces: Vec<Option<Piece>> = starts
            .par_iter()
            .zip(ends.par_iter())
            .map(|(&from, &to)| read_piece(text, from, to, close, depth))
            .collect();
        // A piece was read from a true boundary between two ops only if the piece before it ended
        // exactly where it began; otherwise its line start lay inside an op (a string or a map over
        // several lines), or a piece stepped aside: read the whole file in one piece instead.
        let aligned = pieces.iter().all(Option::is_some)
            && pieces
                .windows(2)
                .all(|w| matches!(w, [Some(a), Some(b)] if a.end == b.first));
        if aligned {
            let pieces: Vec<Piece> = pieces.into_iter().flatten().collect();
            if close.is_some() && !pieces.iter().any(|p| p.closed) {
                return None;
            }
            let total = pieces.iter().map(|p| p.read.events.len()).sum();
            let mut read = Read {
                events: Vec::with_capacity(total),
                lacks: Vec::with_capacity(total),
            };
            for p in pieces {
                read.events.extend(p.read.events);
                read.lacks.extend(p.read.lacks);
            }
            return Some(read);
        }
    }
    let piece = read_piece(text, start, text.len(), close, depth)?;
    (close.is_none() || piece.closed).then_some(piece.read)
}

/// Where the pieces of a large file begin: line starts about `piece_bytes` apart.
fn piece_starts(bytes: &[u8], start: usize, piece_bytes: usize) -> Vec<usize> {
    let mut starts = vec![start];
    if bytes.len().saturating_sub(start) < 2 * piece_bytes {
        return starts;
    }
    let mut target = start + piece_bytes;
    while target < bytes.len() {
        let Some(newline) = memchr::memchr(b'\n', &bytes[target..]) else {
            break;
        };
        let at = target + newline + 1;
        if at >= bytes.len() {
            break;
        }
        starts.push(at);
        target = at + piece_bytes;
    }
    starts
}

/// The events read from one piece of the file.
struct Piece {
    read: Read,
    /// Where its first op begins (past blanks and comments)...
    first: usize,
    /// ...and where reading stopped: at or past the piece's end, past blanks and comments.
    end: usize,
    /// Whether it read the top-level collection's closing delimiter (and only blanks after it).
    closed: bool,
}

fn read_piece(
    text: &str,
    from: usize,
    to: usize,
    close: Option<u8>,
    depth: usize,
) -> Option<Piece> {
    let mut p = Parser::new(text, from, depth);
    // Jepsen's lines are about a hundred bytes long; a guess that saves most regrowth.
    let guess = (to - from) / 80;
    let mut read = Read {
        events: Vec::with_capacity(guess),
        lacks: Vec::with_capacity(guess),
    };
    p.blank()?;
    let first = p.pos;
    let mut closed = false;
    while p.pos < to {
        match p.peek() {
            Some(b'{') => {
                let (event, lacks) = p.op()?;
                read.events.push(event);
                read.lacks.push(lacks);
            }
            Some(c) if Some(c) == close => {
                p.pos += 1;
                p.blank()?;
                if p.pos != text.len() {
                    return None; // text after the top-level collection
                }
                closed = true;
                break;
            }
            _ => return None,
        }
        p.blank()?;
    }
    Some(Piece {
        read,
        first,
        end: p.pos,
        closed,
    })
}

/// Fills in, in file order, what the events lack: processes for ops without one, indices, times
/// and synthetic transfer ids, exactly as the generic reader assigns them.
fn finish(read: Read) -> Option<History> {
    let Read { mut events, lacks } = read;
    if lacks.iter().any(|&l| l & lacks::PROCESS != 0) {
        let headers: Vec<pairing::Header<'_>> = events
            .iter()
            .zip(&lacks)
            .map(|(e, &l)| {
                let given = l & lacks::PROCESS == 0;
                pairing::Header {
                    line: 0,
                    kind: e.kind,
                    process: given.then_some(e.process),
                    f: &e.f,
                    // Pairing reads only a transaction's micro-ops, which a transfer does not have
                    // whatever its id.
                    value: (!given).then_some(Cow::Borrowed(&e.value)),
                }
            })
            .collect();
        let processes = pairing::assign(&headers).ok()?;
        for (e, p) in events.iter_mut().zip(processes) {
            e.process = p;
        }
    }
    if lacks.iter().any(|&l| l != 0) {
        let mut clock = Clock::new(lacks.iter().any(|&l| l & lacks::TIME == 0));
        let mut ids = TransferIds::default();
        for (position, (e, &l)) in events.iter_mut().zip(&lacks).enumerate() {
            if l & lacks::INDEX != 0 {
                e.index = position as u64;
            }
            let written = (l & lacks::TIME == 0).then_some(e.time_ns);
            e.time_ns = clock.time(written, e.index);
            if l & lacks::ID != 0 {
                if let Value::Transfer(t) = &mut e.value {
                    t.id = ids.id(e.kind, e.process);
                }
            }
        }
    }
    Some(History::new(events))
}

/// A scalar as the generic reader reads it, or a collection already converted to a [`Value`].
#[derive(Debug)]
enum Item<'t> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Key(&'t str),
    Symbol(&'t str),
    Str(Cow<'t, str>),
    Coll(Value),
}

impl<'t> Item<'t> {
    fn into_value(self) -> Value {
        match self {
            Item::Nil => Value::Null,
            Item::Bool(b) => Value::Bool(b),
            Item::Int(i) => Value::Int(i),
            Item::Float(x) => Value::Float(x),
            Item::Key(s) | Item::Symbol(s) => Value::Str(s.to_string()),
            Item::Str(s) => Value::Str(s.into_owned()),
            Item::Coll(v) => v,
        }
    }

    /// The text of a keyword, symbol or string.
    fn name(&self) -> Option<&str> {
        match self {
            Item::Key(s) | Item::Symbol(s) => Some(s),
            Item::Str(s) => Some(s),
            _ => None,
        }
    }

    fn keyword_or_string(&self) -> Option<&str> {
        match self {
            Item::Key(s) => Some(s),
            Item::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Where the generic reader's `Edn` order puts this kind of scalar (keywords, symbols, strings,
    /// integers, booleans, nil); `None` for what sets and map keys here do not hold.
    fn rank(&self) -> Option<u8> {
        match self {
            Item::Key(_) => Some(4),
            Item::Symbol(_) => Some(5),
            Item::Str(_) => Some(6),
            Item::Int(_) => Some(7),
            Item::Bool(_) => Some(14),
            Item::Nil => Some(15),
            Item::Float(_) | Item::Coll(_) => None,
        }
    }

    /// The `Edn` order of two scalars that both have a [`Item::rank`].
    fn edn_cmp(&self, other: &Item<'_>) -> Ordering {
        match (self, other) {
            (Item::Int(a), Item::Int(b)) => a.cmp(b),
            (Item::Bool(a), Item::Bool(b)) => a.cmp(b),
            (a, b) => match (a.rank().cmp(&b.rank()), a.name(), b.name()) {
                (Ordering::Equal, Some(x), Some(y)) => x.cmp(y),
                (order, _, _) => order,
            },
        }
    }

    /// The string a map key becomes (keywords without the colon, integers in decimal), for keys of
    /// the kinds read here: keywords, symbols, strings and integers.
    fn key_string(&self) -> Option<Cow<'_, str>> {
        match self {
            Item::Int(i) => Some(Cow::Owned(i.to_string())),
            other => other.name().map(Cow::Borrowed),
        }
    }

    fn is_map_key(&self) -> bool {
        matches!(
            self,
            Item::Key(_) | Item::Symbol(_) | Item::Str(_) | Item::Int(_)
        )
    }
}

/// Whether two map keys would become the same string.
fn same_key_string(a: &Item<'_>, b: &Item<'_>) -> bool {
    match (a, b) {
        (Item::Int(x), Item::Int(y)) => x == y,
        (Item::Int(i), other) | (other, Item::Int(i)) => {
            other.name().is_some_and(|s| s == i.to_string())
        }
        (x, y) => x.name() == y.name(),
    }
}

/// Whether no two of the keys become the same string: the generic reader refuses a map that holds
/// one key twice, and quietly keeps one of two keys that only collide once stringified; either
/// way, the fast path steps aside.
fn distinct_key_strings<'a, 't: 'a>(
    keys: impl ExactSizeIterator<Item = &'a Item<'t>> + Clone,
) -> bool {
    if keys.len() <= PAIRWISE_KEYS_MAX {
        let all: Vec<&Item<'_>> = keys.collect();
        return all
            .iter()
            .enumerate()
            .all(|(i, a)| all[i + 1..].iter().all(|b| !same_key_string(a, b)));
    }
    let mut strings: Vec<Cow<'_, str>> = keys.filter_map(Item::key_string).collect();
    strings.sort_unstable();
    strings.windows(2).all(|w| w[0] != w[1])
}

/// An op's `:value` map before the op's `:f` is known to say what it means: a bank read and a
/// transfer are told by their keys' kinds (keywords or integers) and their values' kinds (sets,
/// maps or vectors), which a [`Value`] no longer shows.
#[derive(Debug)]
enum Node<'t> {
    Item(Item<'t>),
    /// A vector or a list.
    Seq(Vec<Node<'t>>),
    /// A set of scalars, in `Edn` order.
    Set(Vec<Item<'t>>),
    Map(Vec<(Item<'t>, Node<'t>)>),
}

impl Node<'_> {
    fn into_value(self) -> Value {
        match self {
            Node::Item(i) => i.into_value(),
            Node::Seq(items) => Value::List(items.into_iter().map(Node::into_value).collect()),
            Node::Set(items) => Value::List(items.into_iter().map(Item::into_value).collect()),
            Node::Map(entries) => map_value(entries),
        }
    }

    fn as_int(&self) -> Option<i64> {
        match self {
            Node::Item(Item::Int(i)) => Some(*i),
            _ => None,
        }
    }
}

/// A map with keys that are distinct once stringified, as a [`Value::Map`].
fn map_value(entries: Vec<(Item<'_>, Node<'_>)>) -> Value {
    let mut out: Vec<(String, Value)> = entries
        .into_iter()
        .filter_map(|(k, v)| Some((k.key_string()?.into_owned(), v.into_value())))
        .collect();
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Value::Map(out.into_iter().collect::<Map>())
}

/// The value of a keyword key in a `:value` map.
fn get<'n, 't>(m: &'n [(Item<'t>, Node<'t>)], key: &str) -> Option<&'n Node<'t>> {
    m.iter()
        .find(|(k, _)| matches!(k, Item::Key(name) if *name == key))
        .map(|(_, v)| v)
}

/// A transfer's fields, as the generic reader's `Normalizer::transfer` takes them: `None` when the
/// map is not a transfer, `Some(None)` for the id when it has none and gets a synthetic one.
fn transfer_fields(m: &[(Item<'_>, Node<'_>)]) -> Option<(u32, u32, i64, Option<u64>)> {
    let int = |k: &str| get(m, k).and_then(Node::as_int);
    let from = u32::try_from(int("from")?).ok()?;
    let to = u32::try_from(int("to")?).ok()?;
    let amount = int("amount")?;
    let id = match int("id") {
        Some(id) => Some(u64::try_from(id).ok()?),
        None => None,
    };
    Some((from, to, amount, id))
}

/// The generic reader's `bank_read`, on a `:value` map.
fn bank_read(m: &[(Item<'_>, Node<'_>)]) -> Option<Value> {
    if let Some(balances) = balances(m) {
        return Some(Value::map([("balances", balances)]));
    }
    let mut out = Map::new();
    for (k, v) in m {
        let Item::Key(k) = k else { return None };
        let value = match *k {
            "balances" => match v {
                Node::Map(b) => balances(b)?,
                Node::Seq(b) => ints(b.iter().map(Node::as_int))?,
                _ => return None,
            },
            "transfers" | "applied" => match v {
                Node::Set(ids) => ints(ids.iter().map(|i| match i {
                    Item::Int(i) => Some(*i),
                    _ => None,
                }))?,
                Node::Seq(ids) => ints(ids.iter().map(Node::as_int))?,
                _ => return None,
            },
            _ => return None,
        };
        let key = if *k == "balances" {
            "balances"
        } else {
            "applied"
        };
        if out.insert(key.to_string(), value).is_some() {
            return None;
        }
    }
    out.contains_key("balances").then_some(Value::Map(out))
}

/// The generic reader's `balances`: integer balances keyed exactly by accounts 0..n-1, as a list.
fn balances(m: &[(Item<'_>, Node<'_>)]) -> Option<Value> {
    let mut out = vec![0i64; m.len()];
    for (k, v) in m {
        let (Item::Int(k), Some(v)) = (k, v.as_int()) else {
            return None;
        };
        *out.get_mut(usize::try_from(*k).ok()?)? = v;
    }
    (!m.is_empty()).then(|| Value::int_list(out))
}

fn ints(items: impl Iterator<Item = Option<i64>>) -> Option<Value> {
    items
        .map(|i| i.map(Value::Int))
        .collect::<Option<Vec<_>>>()
        .map(Value::List)
}

/// The fields of one op map, each decoded as it is read and checked as the generic reader's
/// `OpMap::new` checks it; `None` until read (a field read twice is refused, as the generic reader
/// refuses a map holding a key twice).
#[derive(Default)]
struct Fields<'t> {
    kind: Option<EventType>,
    /// `Some(None)` when written as nil.
    process: Option<Option<Process>>,
    f: Option<Name>,
    index: Option<u64>,
    /// `Some(None)` when written as a time that is left out (negative, fractional, nil).
    time: Option<Option<u64>>,
    error: Option<String>,
    is_final: Option<bool>,
    value: Option<Raw<'t>>,
    /// Keys the op does not use, kept only to refuse one written twice.
    others: Vec<Item<'t>>,
}

/// An op's `:f`: a name, or any other value (which only the nemesis may use).
enum Name {
    Name(F),
    Other(Value),
}

/// An op's `:value`: read straight into a [`Value`], or a map kept as a [`Node`] until the op's
/// `:f` says whether it is a bank read or a transfer.
enum Raw<'t> {
    Value(Value),
    Map(Vec<(Item<'t>, Node<'t>)>),
}

/// Stores a field read for the first time.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

impl Fields<'_> {
    /// The op, with what depends on whether it is the nemesis's checked as `OpMap::new` does, and
    /// its value normalized as `Normalizer::value` does; `None` where those refuse it.
    fn into_op(self) -> Option<(Event, u8)> {
        let process = self.process.flatten();
        let nemesis = process == Some(Process::Nemesis);
        let kind = match self.kind {
            Some(kind) => kind,
            None if nemesis => EventType::Info,
            None => return None,
        };
        let f = match self.f {
            Some(Name::Name(f)) => f,
            Some(Name::Other(v)) if nemesis => F::from_name(&v.to_string()),
            None if nemesis => F::from_name("nemesis"),
            _ => return None,
        };
        let is_final = self.is_final == Some(true);
        let mut missing = 0;
        let value = match (&f, self.value) {
            (F::Transfer, Some(Raw::Map(m))) => match transfer_fields(&m) {
                Some((from, to, amount, id)) => {
                    if id.is_none() {
                        missing |= lacks::ID;
                    }
                    Value::Transfer(Transfer {
                        id: id.unwrap_or(0),
                        from,
                        to,
                        amount,
                    })
                }
                None => map_value(m),
            },
            (F::Read, Some(Raw::Map(m))) if !nemesis => {
                bank_read(&m).unwrap_or_else(|| map_value(m))
            }
            (_, Some(Raw::Map(m))) => map_value(m),
            (F::Read, None | Some(Raw::Value(Value::Null)))
                if is_final && kind == EventType::Invoke =>
            {
                Value::map([("final", Value::Bool(true))])
            }
            (_, Some(Raw::Value(v))) => v,
            (_, None) => Value::Null,
        };
        let time_ns = self.time.flatten();
        for (absent, mark) in [
            (self.index.is_none(), lacks::INDEX),
            (time_ns.is_none(), lacks::TIME),
            (process.is_none(), lacks::PROCESS),
        ] {
            if absent {
                missing |= mark;
            }
        }
        let event = Event {
            index: self.index.unwrap_or(0),
            time_ns: time_ns.unwrap_or(0),
            process: process.unwrap_or(Process::Client(0)),
            kind,
            f,
            value,
            error: self.error,
        };
        Some((event, missing))
    }
}

/// A cursor over the text; every method returns `None` where the fast path steps aside.
struct Parser<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    /// How deeply collections are nested at the cursor, the top-level one included (the generic
    /// reader refuses more than [`DEPTH_MAX`]).
    depth: usize,
}

/// What a byte is to a token: part of it, its end, or where the fast path steps aside.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Token,
    End,
    Aside,
}

/// [`Class`] of every byte. A token ends where `clojure-reader` ends it, at whitespace or a
/// delimiter; its other boundaries, Unicode whitespace, are non-ASCII bytes, which (like control
/// bytes) are left to the generic reader. So is a backslash, which hides the next delimiter from the
/// generic reader's depth check.
static CLASS: [Class; 256] = {
    let mut table = [Class::Aside; 256];
    let mut b = 0x21;
    while b < 0x7f {
        table[b] = Class::Token;
        b += 1;
    }
    let ends = b" \t\n\r\x0b\x0c,]}();[{\"";
    let mut i = 0;
    while i < ends.len() {
        table[ends[i] as usize] = Class::End;
        i += 1;
    }
    table[b'\\' as usize] = Class::Aside;
    table
};

impl<'t> Parser<'t> {
    fn new(text: &'t str, pos: usize, depth: usize) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos,
            depth,
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips spaces, tabs, newlines, commas and `;` comments. A comment with a carriage return
    /// inside it is where the generic reader's top level and its nested forms disagree on where
    /// the comment ends: step aside. So are vertical tabs and form feeds.
    #[inline(always)]
    fn blank(&mut self) -> Option<()> {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.pos += 1,
                b';' => {
                    let rest = &self.bytes[self.pos..];
                    let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                    let comment = &rest[..len];
                    if let Some(cr) = memchr::memchr(b'\r', comment) {
                        if cr + 1 != len || len == rest.len() {
                            return None;
                        }
                    }
                    self.pos += len;
                }
                _ => break,
            }
        }
        Some(())
    }

    fn open(&mut self, width: usize) -> Option<()> {
        self.pos += width;
        self.depth += 1;
        (self.depth <= DEPTH_MAX).then_some(())
    }

    /// Reads one op map (the cursor is on its `{`).
    fn op(&mut self) -> Option<(Event, u8)> {
        self.open(1)?;
        let mut fields = Fields::default();
        loop {
            self.blank()?;
            if self.peek()? == b'}' {
                self.pos += 1;
                self.depth -= 1;
                break;
            }
            let key = self.item()?;
            self.blank()?;
            if self.peek()? == b'}' {
                return None; // a key without a value
            }
            match key {
                Item::Key("type") => {
                    let kind = match self.item()?.keyword_or_string()? {
                        "invoke" => EventType::Invoke,
                        "ok" => EventType::Ok,
                        "fail" => EventType::Fail,
                        "info" => EventType::Info,
                        _ => return None,
                    };
                    once(&mut fields.kind, kind)?;
                }
                Item::Key("process") => {
                    let process = match self.item()? {
                        Item::Int(p) if p >= 0 => Some(Process::Client(p as u64)),
                        Item::Nil => None,
                        k if k.keyword_or_string() == Some("nemesis") => Some(Process::Nemesis),
                        _ => return None,
                    };
                    once(&mut fields.process, process)?;
                }
                Item::Key("f") => {
                    let item = self.item()?;
                    let f = match item.name() {
                        Some(name) => Name::Name(F::from_name(name)),
                        None => Name::Other(item.into_value()),
                    };
                    once(&mut fields.f, f)?;
                }
                Item::Key("index") => match self.item()? {
                    Item::Int(i) if i >= 0 => once(&mut fields.index, i as u64)?,
                    _ => return None,
                },
                Item::Key("time") => {
                    let time = match self.item()? {
                        Item::Int(t) if t >= 0 => Some(t as u64),
                        // Left out, as the generic reader leaves it out.
                        Item::Int(_) | Item::Float(_) | Item::Nil => None,
                        _ => return None,
                    };
                    once(&mut fields.time, time)?;
                }
                Item::Key("error") => {
                    let item = self.item()?;
                    let error = match item.name() {
                        Some(name) => name.to_string(),
                        None => item.into_value().to_string(),
                    };
                    once(&mut fields.error, error)?;
                }
                Item::Key("final?") => {
                    let is_final = matches!(self.item()?, Item::Bool(true));
                    once(&mut fields.is_final, is_final)?;
                }
                Item::Key("value") => {
                    let value = self.op_value(fields.f.as_ref())?;
                    once(&mut fields.value, value)?;
                }
                other => {
                    // Any other key is read (its value must be valid EDN too) and left out.
                    if !other.is_map_key()
                        || fields.others.iter().any(|k| k.edn_cmp(&other).is_eq())
                    {
                        return None;
                    }
                    fields.others.push(other);
                    self.value()?;
                }
            }
        }
        fields.into_op()
    }

    /// An op's `:value`. A map is kept as a [`Node`] unless the op's `:f`, already read, says it is
    /// neither a bank read nor a transfer.
    fn op_value(&mut self, f: Option<&Name>) -> Option<Raw<'t>> {
        let plain = f.is_some_and(|f| !matches!(f, Name::Name(F::Read | F::Transfer)));
        if self.peek()? == b'{' && !plain {
            let Node::Map(m) = self.node()? else {
                unreachable!("a `{{` opens a map")
            };
            Some(Raw::Map(m))
        } else {
            Some(Raw::Value(self.value()?))
        }
    }

    /// Any value, as an [`Item`]: scalars as they are, collections converted.
    #[inline(always)]
    fn item(&mut self) -> Option<Item<'t>> {
        match self.peek()? {
            b'[' | b'(' | b'{' | b'#' => self.value().map(Item::Coll),
            b'"' => self.string().map(Item::Str),
            _ => self.token(),
        }
    }

    /// Any value, as the generic reader's `to_value` would make it.
    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'[' => self.seq(b']', Self::value).map(Value::List),
            b'(' => self.seq(b')', Self::value).map(Value::List),
            b'{' => {
                let entries = self.entries(Self::value)?;
                let mut out: Vec<(String, Value)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    out.push((k.key_string()?.into_owned(), v));
                }
                out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                if out.windows(2).any(|w| w[0].0 == w[1].0) {
                    return None;
                }
                Some(Value::Map(out.into_iter().collect::<Map>()))
            }
            b'#' => Some(Value::List(
                self.set()?.into_iter().map(Item::into_value).collect(),
            )),
            b'"' => Some(Value::Str(self.string()?.into_owned())),
            _ => self.token().map(Item::into_value),
        }
    }

    /// Any value, as a [`Node`].
    fn node(&mut self) -> Option<Node<'t>> {
        match self.peek()? {
            b'[' => self.seq(b']', Self::node).map(Node::Seq),
            b'(' => self.seq(b')', Self::node).map(Node::Seq),
            b'{' => {
                let entries = self.entries(Self::node)?;
                distinct_key_strings(entries.iter().map(|(k, _)| k)).then_some(Node::Map(entries))
            }
            b'#' => self.set().map(Node::Set),
            b'"' => self.string().map(|s| Node::Item(Item::Str(s))),
            _ => self.token().map(Node::Item),
        }
    }

    /// The elements of a vector or list (the cursor is on its opening delimiter).
    fn seq<T>(&mut self, close: u8, element: fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.open(1)?;
        let mut items = Vec::new();
        loop {
            self.blank()?;
            if self.peek()? == close {
                self.pos += 1;
                self.depth -= 1;
                return Some(items);
            }
            items.push(element(self)?);
        }
    }

    /// The entries of a map (the cursor is on its `{`), keys being keywords, symbols, strings or
    /// integers.
    fn entries<T>(&mut self, value: fn(&mut Self) -> Option<T>) -> Option<Vec<(Item<'t>, T)>> {
        self.open(1)?;
        let mut entries = Vec::new();
        loop {
            self.blank()?;
            if self.peek()? == b'}' {
                self.pos += 1;
                self.depth -= 1;
                return Some(entries);
            }
            let key = self.item()?;
            if !key.is_map_key() {
                return None;
            }
            self.blank()?;
            if self.peek()? == b'}' {
                return None;
            }
            entries.push((key, value(self)?));
        }
    }

    /// A set of scalars (the cursor is on its `#`), in `Edn` order, refusing duplicates as the
    /// generic reader does.
    fn set(&mut self) -> Option<Vec<Item<'t>>> {
        if self.bytes.get(self.pos + 1) != Some(&b'{') {
            return None; // a tag, a discard or a symbolic value
        }
        self.open(2)?;
        let mut items = Vec::new();
        loop {
            self.blank()?;
            if self.peek()? == b'}' {
                self.pos += 1;
                self.depth -= 1;
                break;
            }
            let item = match self.peek()? {
                b'"' => Item::Str(self.string()?),
                b'[' | b'(' | b'{' | b'#' => return None,
                _ => self.token()?,
            };
            item.rank()?;
            items.push(item);
        }
        items.sort_by(Item::edn_cmp);
        if items.windows(2).any(|w| w[0].edn_cmp(&w[1]).is_eq()) {
            return None;
        }
        Some(items)
    }

    /// A string (the cursor is on its opening quote), borrowed unless it holds escapes.
    fn string(&mut self) -> Option<Cow<'t, str>> {
        let start = self.pos + 1;
        let mut at = start;
        let mut owned: Option<String> = None;
        loop {
            let rest = self.bytes.get(at..)?;
            let stop = at + memchr::memchr2(b'"', b'\\', rest)?;
            if self.bytes[stop] == b'"' {
                self.pos = stop + 1;
                return Some(match owned {
                    None => Cow::Borrowed(&self.text[start..stop]),
                    Some(mut s) => {
                        s.push_str(&self.text[at..stop]);
                        Cow::Owned(s)
                    }
                });
            }
            let s = owned.get_or_insert_with(String::new);
            s.push_str(&self.text[at..stop]);
            s.push(match self.bytes.get(stop + 1)? {
                b't' => '\t',
                b'r' => '\r',
                b'n' => '\n',
                b'\\' => '\\',
                b'"' => '"',
                _ => return None,
            });
            at = stop + 2;
        }
    }

    /// A token: nil, a boolean, a keyword, an integer, a decimal or a symbol, read as
    /// `clojure-reader` reads it. Character literals, ratios, radix and hexadecimal numbers, and
    /// integers beyond 64 bits are left to the generic reader.
    #[inline(always)]
    fn token(&mut self) -> Option<Item<'t>> {
        let start = self.pos;
        let first = *self.bytes.get(start)?;
        let second_is_digit = || self.bytes.get(start + 1).is_some_and(u8::is_ascii_digit);
        match first {
            b':' => {
                let end = self.token_end(start + 1)?;
                if end == start + 1 {
                    return None; // a lone colon
                }
                self.pos = end;
                Some(Item::Key(&self.text[start + 1..end]))
            }
            b'0'..=b'9' => self.number(start, false),
            b'-' | b'+' if second_is_digit() => self.number(start + 1, first == b'-'),
            b'#' => None,
            _ => {
                let end = self.token_end(start)?;
                self.pos = end;
                Some(match &self.text[start..end] {
                    "" => return None, // a delimiter where a value belongs
                    "nil" => Item::Nil,
                    "true" => Item::Bool(true),
                    "false" => Item::Bool(false),
                    symbol => Item::Symbol(symbol),
                })
            }
        }
    }

    /// Where the token that goes on at `from` ends; `None` at a byte left to the generic reader.
    #[inline(always)]
    fn token_end(&self, from: usize) -> Option<usize> {
        let mut end = from;
        while let Some(&b) = self.bytes.get(end) {
            match CLASS[b as usize] {
                Class::Token => end += 1,
                Class::End => break,
                Class::Aside => return None,
            }
        }
        Some(end)
    }

    /// A number whose digits begin at `digits` (after its sign): a decimal integer that fits in 64
    /// bits, or a decimal with a point or an exponent, as `clojure-reader` reads them.
    #[inline(always)]
    fn number(&mut self, digits: usize, negative: bool) -> Option<Item<'t>> {
        let mut magnitude: u64 = 0;
        let mut end = digits;
        while let Some(&b) = self.bytes.get(end) {
            if !b.is_ascii_digit() {
                break;
            }
            magnitude = magnitude
                .checked_mul(10)?
                .checked_add(u64::from(b - b'0'))?;
            end += 1;
        }
        if self
            .bytes
            .get(end)
            .is_none_or(|&b| CLASS[b as usize] == Class::End)
        {
            self.pos = end;
            return Some(Item::Int(if !negative {
                i64::try_from(magnitude).ok()?
            } else if magnitude == i64::MIN.unsigned_abs() {
                i64::MIN
            } else {
                -i64::try_from(magnitude).ok()?
            }));
        }
        let end = self.token_end(end)?;
        let text = &self.text[digits..end];
        if text.contains(['/', 'x', 'X', 'r', 'R']) || !text.contains(['.', 'e', 'E']) {
            return None;
        }
        let x: f64 = text.parse().ok()?;
        self.pos = end;
        Some(Item::Float(if negative { -x } else { x }))
    }
}
