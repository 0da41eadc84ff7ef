//! The scanner of the fast EDN reader: values as `clojure-reader` reads them, converted on the way
//! to what the generic reader's `to_value` makes of them, or kept as [`Node`]s where an op's `:f`
//! must say first what a map means. Every method returns `None` where the fast path steps aside.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::super::DEPTH_MAX;
use crate::value::{Map, Value};

/// Maps with at most this many keys are checked for colliding keys pairwise, without allocating.
const PAIRWISE_KEYS_MAX: usize = 8;

/// A scalar as the generic reader reads it, or a collection already converted to a [`Value`].
#[derive(Debug)]
pub(super) enum Item<'t> {
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
    pub(super) fn into_value(self) -> Value {
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
    pub(super) fn name(&self) -> Option<&str> {
        match self {
            Item::Key(s) | Item::Symbol(s) => Some(s),
            Item::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn keyword_or_string(&self) -> Option<&str> {
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
    pub(super) fn edn_cmp(&self, other: &Item<'_>) -> Ordering {
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

    pub(super) fn is_map_key(&self) -> bool {
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
pub(super) enum Node<'t> {
    Item(Item<'t>),
    /// A vector or a list.
    Seq(Vec<Node<'t>>),
    /// A set of scalars, in `Edn` order.
    Set(Vec<Item<'t>>),
    Map(Vec<(Item<'t>, Node<'t>)>),
}

impl Node<'_> {
    pub(super) fn into_value(self) -> Value {
        match self {
            Node::Item(i) => i.into_value(),
            Node::Seq(items) => Value::List(items.into_iter().map(Node::into_value).collect()),
            Node::Set(items) => Value::List(items.into_iter().map(Item::into_value).collect()),
            Node::Map(entries) => map_value(entries),
        }
    }

    pub(super) fn as_int(&self) -> Option<i64> {
        match self {
            Node::Item(Item::Int(i)) => Some(*i),
            _ => None,
        }
    }
}

/// A map with keys that are distinct once stringified, as a [`Value::Map`].
pub(super) fn map_value(entries: Vec<(Item<'_>, Node<'_>)>) -> Value {
    let mut out: Vec<(String, Value)> = entries
        .into_iter()
        .filter_map(|(k, v)| Some((k.key_string()?.into_owned(), v.into_value())))
        .collect();
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Value::Map(out.into_iter().collect::<Map>())
}

/// A cursor over the text; every method returns `None` where the fast path steps aside.
pub(super) struct Parser<'t> {
    text: &'t str,
    pub(super) bytes: &'t [u8],
    pub(super) pos: usize,
    /// How deeply collections are nested at the cursor, the top-level one included (the generic
    /// reader refuses more than [`DEPTH_MAX`]).
    pub(super) depth: usize,
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
    pub(super) fn new(text: &'t str, pos: usize, depth: usize) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos,
            depth,
        }
    }

    #[inline(always)]
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Walks the op maps from here (after blanks) up to `to`, or to the closing bracket `close` of
    /// the top-level collection, after which only blanks may follow before `len`. `op` reads the
    /// map at each `{`: `Some(true)` goes on, `Some(false)` stops before the next blank, `None`
    /// gives the walk up. Returns where the first map began and whether the collection closed.
    pub(super) fn walk_ops(
        &mut self,
        to: usize,
        close: Option<u8>,
        len: usize,
        mut op: impl FnMut(&mut Self) -> Option<bool>,
    ) -> Option<(usize, bool)> {
        self.blank()?;
        let first = self.pos;
        while self.pos < to {
            match self.peek() {
                Some(b'{') => {
                    if !op(self)? {
                        return Some((first, false));
                    }
                }
                Some(c) if Some(c) == close => {
                    self.pos += 1;
                    self.blank()?;
                    // Nothing but blanks after the top-level collection.
                    return (self.pos == len).then_some((first, true));
                }
                _ => return None,
            }
            self.blank()?;
        }
        Some((first, false))
    }

    /// Skips spaces, tabs, newlines, commas and `;` comments. A comment with a carriage return
    /// inside it is where the generic reader's top level and its nested forms disagree on where
    /// the comment ends: step aside. So are vertical tabs and form feeds.
    #[inline(always)]
    pub(super) fn blank(&mut self) -> Option<()> {
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

    pub(super) fn open(&mut self, width: usize) -> Option<()> {
        self.pos += width;
        self.depth += 1;
        (self.depth <= DEPTH_MAX).then_some(())
    }

    /// Skips blanks; at `close`, the end of the collection opened last, steps past it and says so.
    #[inline(always)]
    pub(super) fn closes(&mut self, close: u8) -> Option<bool> {
        self.blank()?;
        if self.peek()? != close {
            return Some(false);
        }
        self.pos += 1;
        self.depth -= 1;
        Some(true)
    }

    /// Any value, as an [`Item`]: scalars as they are, collections converted.
    #[inline(always)]
    pub(super) fn item(&mut self) -> Option<Item<'t>> {
        match self.peek()? {
            b'[' | b'(' | b'{' | b'#' => self.value().map(Item::Coll),
            b'"' => self.string().map(Item::Str),
            _ => self.token(),
        }
    }

    /// Any value, as the generic reader's `to_value` would make it.
    pub(super) fn value(&mut self) -> Option<Value> {
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
    pub(super) fn node(&mut self) -> Option<Node<'t>> {
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
            if self.closes(close)? {
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
            if self.closes(b'}')? {
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
            if self.closes(b'}')? {
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
    pub(super) fn token(&mut self) -> Option<Item<'t>> {
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
