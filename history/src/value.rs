//! The payload of an event: a small JSON-like tree with one typed fast path.
//!
//! Histories are dominated by transfers, so a map with exactly the keys `id`, `from`, `to` and `amount`
//! (all integers) is decoded straight into a [`Transfer`] without allocating; everything else keeps its
//! generic shape. Maps are kept sorted by key (a compact [`Map`]: one small vector rather than a tree
//! node per map, which matters when a history holds millions of reads) so that writing a value is
//! deterministic.
//!
//! Transactional histories (Elle's list-append and rw-register) are the other large case: a list of
//! micro-ops `[["r",k,[v…]],["append",k,v],["w",k,v]]` is decoded into [`Value::Txn`], whose read
//! lists are plain `Vec<i64>` — a quarter of the memory and a fraction of the allocations of the
//! generic tree, which is what lets a million-transaction history load in a second. It writes back
//! exactly as the generic list it came from, and compares equal to it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A money transfer between two accounts. `id` is unique within a run, so that lost, duplicated and
/// phantom transfers can be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Transfer {
    pub id: u64,
    pub from: u32,
    pub to: u32,
    pub amount: i64,
}

/// What a micro-op does: `"r"`, `"append"` or `"w"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MopF {
    Read,
    Append,
    Write,
}

impl MopF {
    pub fn as_str(self) -> &'static str {
        match self {
            MopF::Read => "r",
            MopF::Append => "append",
            MopF::Write => "w",
        }
    }

    fn from_name(s: &str) -> Option<MopF> {
        match s {
            "r" => Some(MopF::Read),
            "append" => Some(MopF::Append),
            "w" => Some(MopF::Write),
            _ => None,
        }
    }
}

/// The third element of a micro-op.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MopValue {
    Null,
    Int(i64),
    List(Vec<i64>),
}

/// One micro-op of a transaction, `[f, key, value]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MicroOp {
    pub f: MopF,
    pub key: i64,
    pub value: MopValue,
}

impl MicroOp {
    /// A micro-op from its generic form `[f, key, value]`, where `value` is null, an integer or a
    /// list of integers; `None` for anything else.
    pub fn from_generic(v: &Value) -> Option<MicroOp> {
        let [f, key, value] = v.as_list()? else {
            return None;
        };
        let value = match value {
            Value::Null => MopValue::Null,
            Value::Int(i) => MopValue::Int(*i),
            other => MopValue::List(other.as_i64_list()?),
        };
        Some(MicroOp {
            f: MopF::from_name(f.as_str()?)?,
            key: key.as_i64()?,
            value,
        })
    }

    /// A completed transaction's value: its micro-ops in generic form, each read's value taken in
    /// order from `reads` (`nil` once they run out).
    pub fn completed(mops: &[MicroOp], reads: Vec<Value>) -> Value {
        let mut reads = reads.into_iter();
        Value::List(
            mops.iter()
                .map(|m| {
                    let v = if m.f == MopF::Read {
                        reads.next().unwrap_or(Value::Null)
                    } else {
                        m.value_generic()
                    };
                    Value::List(vec![
                        Value::Str(m.f.as_str().to_string()),
                        Value::Int(m.key),
                        v,
                    ])
                })
                .collect(),
        )
    }

    /// Whether `got` answers the transaction `asked`: the same micro-ops on the same keys with the
    /// same written values, only the reads' values filled in.
    pub fn answers(asked: &[MicroOp], got: &[MicroOp]) -> bool {
        asked.len() == got.len()
            && asked.iter().zip(got).all(|(a, g)| {
                a.f == g.f && a.key == g.key && (a.f == MopF::Read || a.value == g.value)
            })
    }

    fn value_generic(&self) -> Value {
        match &self.value {
            MopValue::Null => Value::Null,
            MopValue::Int(i) => Value::Int(*i),
            MopValue::List(l) => Value::int_list(l.iter().copied()),
        }
    }

    /// The generic form: a 3-list.
    pub fn to_generic(&self) -> Value {
        Value::List(vec![
            Value::Str(self.f.as_str().to_string()),
            Value::Int(self.key),
            self.value_generic(),
        ])
    }
}

#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(Map),
    Transfer(Transfer),
    /// A non-empty list of micro-ops, decoded by the fast path; equal to its generic list.
    Txn(Vec<MicroOp>),
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Transfer(a), Value::Transfer(b)) => a == b,
            (Value::Txn(a), Value::Txn(b)) => a == b,
            (Value::Txn(t), Value::List(l)) | (Value::List(l), Value::Txn(t)) => {
                t.len() == l.len() && t.iter().zip(l).all(|(m, v)| m.to_generic() == *v)
            }
            _ => false,
        }
    }
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items of a list. A [`Value::Txn`] is not a generic list: use [`Value::to_generic`] or
    /// [`Value::as_txn`].
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_txn(&self) -> Option<&[MicroOp]> {
        match self {
            Value::Txn(t) => Some(t),
            _ => None,
        }
    }

    /// The micro-ops of a transaction, whether it is the fast path [`Value::Txn`] or a generic list
    /// of `[f, key, value]` lists; `None` if it is neither.
    pub fn micro_ops(&self) -> Option<Cow<'_, [MicroOp]>> {
        match self {
            Value::Txn(t) => Some(Cow::Borrowed(t)),
            Value::List(l) => l
                .iter()
                .map(MicroOp::from_generic)
                .collect::<Option<Vec<_>>>()
                .map(Cow::Owned),
            _ => None,
        }
    }

    /// This value with every fast-path [`Value::Txn`] turned into its generic list.
    pub fn to_generic(&self) -> Value {
        match self {
            Value::Txn(t) => Value::List(t.iter().map(MicroOp::to_generic).collect()),
            other => other.clone(),
        }
    }

    pub fn as_transfer(&self) -> Option<&Transfer> {
        match self {
            Value::Transfer(t) => Some(t),
            _ => None,
        }
    }

    /// The value under `key` when this is a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.get(key),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A list of integers, or `None` if this is not one.
    pub fn as_i64_list(&self) -> Option<Vec<i64>> {
        self.as_list()?.iter().map(Value::as_i64).collect()
    }

    pub fn map<I, K>(entries: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn int_list<I: IntoIterator<Item = i64>>(items: I) -> Value {
        Value::List(items.into_iter().map(Value::Int).collect())
    }
}

/// A map from string keys to values, sorted by key; a drop-in for the parts of `BTreeMap`'s API that
/// histories use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map(Vec<(String, Value)>);

impl Map {
    pub fn new() -> Self {
        Map(Vec::new())
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).ok().map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).ok().map(|i| self.0.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl<K: Into<String>> FromIterator<(K, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut m = Map::new();
        for (k, v) in iter {
            m.insert(k.into(), v);
        }
        m
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}

impl From<Transfer> for Value {
    fn from(t: Transfer) -> Self {
        Value::Transfer(t)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(s) => f.write_str(&s),
            Err(_) => f.write_str("<unprintable>"),
        }
    }
}

impl Serialize for Transfer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("from", &self.from)?;
        m.serialize_entry("to", &self.to)?;
        m.serialize_entry("amount", &self.amount)?;
        m.end()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) => s.serialize_f64(*x),
            Value::Str(v) => s.serialize_str(v),
            Value::List(l) => s.collect_seq(l),
            Value::Map(m) => s.collect_map(m.iter()),
            Value::Transfer(t) => t.serialize(s),
            Value::Txn(t) => s.collect_seq(t),
        }
    }
}

impl Serialize for MicroOp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(self.f.as_str())?;
        t.serialize_element(&self.key)?;
        match &self.value {
            MopValue::Null => t.serialize_element(&())?,
            MopValue::Int(i) => t.serialize_element(i)?,
            MopValue::List(l) => t.serialize_element(l)?,
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    #[expect(
        clippy::drain_collect,
        reason = "moves the micro-ops into an exact-size vector; the scratch buffer keeps its capacity"
    )]
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Elements are decoded as micro-ops where they have the shape; the list is a Txn only if
        // all of them do.
        // A reused scratch buffer, so the result is allocated once at its exact size.
        let mut mops: Vec<MicroOp> = MOPS_SCRATCH.take();
        mops.clear();
        let mut items: Vec<Value> = Vec::new();
        while let Some(item) = seq.next_element_seed(ElemSeed)? {
            match item {
                Elem::Mop(m) if items.is_empty() => mops.push(m),
                Elem::Mop(m) => items.push(m.to_generic()),
                Elem::Value(v) => {
                    if !mops.is_empty() {
                        items.extend(mops.drain(..).map(|m| m.to_generic()));
                    }
                    items.push(v);
                }
            }
        }
        let out = if items.is_empty() && !mops.is_empty() {
            Value::Txn(mops.drain(..).collect())
        } else {
            Value::List(items)
        };
        MOPS_SCRATCH.set(mops);
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // Transfer fields seen so far, and everything else.
        let mut slots: [Option<i64>; 4] = [None; 4];
        let mut rest = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: Value = map.next_value()?;
            let slot = match key.as_ref() {
                "id" => Some(0),
                "from" => Some(1),
                "to" => Some(2),
                "amount" => Some(3),
                _ => None,
            };
            match (slot, &value) {
                (Some(i), Value::Int(v)) if slots[i].is_none() => slots[i] = Some(*v),
                _ => {
                    rest.insert(key.into_owned(), value);
                }
            }
        }
        if let (true, [Some(id), Some(from), Some(to), Some(amount)]) = (rest.is_empty(), slots) {
            if let (Ok(id), Ok(from), Ok(to)) =
                (u64::try_from(id), u32::try_from(from), u32::try_from(to))
            {
                return Ok(Value::Transfer(Transfer {
                    id,
                    from,
                    to,
                    amount,
                }));
            }
        }
        for (name, v) in ["id", "from", "to", "amount"].into_iter().zip(slots) {
            if let Some(v) = v {
                rest.insert(name.to_string(), Value::Int(v));
            }
        }
        Ok(Value::Map(rest))
    }
}

thread_local! {
    // Scratch buffers of the micro-op fast path: each decoded list is copied out at its exact size,
    // which saves the grow-and-shrink reallocations of millions of short lists. Taken, not
    // borrowed, so that a nested list simply starts with an empty buffer of its own.
    static MOPS_SCRATCH: std::cell::Cell<Vec<MicroOp>> = const { std::cell::Cell::new(Vec::new()) };
    static INTS_SCRATCH: std::cell::Cell<Vec<i64>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A list element: a micro-op when it has the shape `[f, int, null | int | [int…]]`.
enum Elem {
    Mop(MicroOp),
    Value(Value),
}

struct ElemSeed;

impl<'de> DeserializeSeed<'de> for ElemSeed {
    type Value = Elem;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Elem, D::Error> {
        d.deserialize_any(ElemVisitor)
    }
}

/// Delegates every non-list input to [`ValueVisitor`].
struct ElemVisitor;

macro_rules! delegate {
    ($($name:ident($t:ty)),*) => {
        $(fn $name<E: de::Error>(self, v: $t) -> Result<Elem, E> {
            ValueVisitor.$name(v).map(Elem::Value)
        })*
    };
}

impl<'de> Visitor<'de> for ElemVisitor {
    type Value = Elem;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    delegate!(
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_f64(f64),
        visit_str(&str),
        visit_string(String)
    );
    fn visit_unit<E: de::Error>(self) -> Result<Elem, E> {
        Ok(Elem::Value(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Elem, E> {
        Ok(Elem::Value(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Elem, D::Error> {
        Value::deserialize(d).map(Elem::Value)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Elem, A::Error> {
        ValueVisitor.visit_map(map).map(Elem::Value)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Elem, A::Error> {
        // [f, key, value] with f a micro-op name; anything else falls back to the generic list,
        // keeping what was read so far.
        let mut prefix: Vec<Value> = Vec::new();
        let f = match seq.next_element_seed(KeySeedOrValue)? {
            None => return Ok(Elem::Value(Value::List(prefix))),
            Some(Ok(name)) => match MopF::from_name(&name) {
                Some(f) => f,
                None => {
                    prefix.push(Value::Str(name.into_owned()));
                    return rest(prefix, seq);
                }
            },
            Some(Err(v)) => {
                prefix.push(v);
                return rest(prefix, seq);
            }
        };
        prefix.push(Value::Str(f.as_str().to_string()));
        let key = match seq.next_element::<Value>()? {
            Some(Value::Int(k)) => k,
            Some(other) => {
                prefix.push(other);
                return rest(prefix, seq);
            }
            None => return Ok(Elem::Value(Value::List(prefix))),
        };
        prefix.push(Value::Int(key));
        let value = match seq.next_element_seed(MopValueSeed)? {
            Some(Ok(v)) => v,
            Some(Err(other)) => {
                prefix.push(other);
                return rest(prefix, seq);
            }
            None => return Ok(Elem::Value(Value::List(prefix))),
        };
        match seq.next_element::<Value>()? {
            None => Ok(Elem::Mop(MicroOp { f, key, value })),
            Some(extra) => {
                prefix.push(
                    MicroOp { f, key, value }
                        .to_generic()
                        .as_list()
                        .map_or(Value::Null, |l| l[2].clone()),
                );
                prefix.push(extra);
                rest(prefix, seq)
            }
        }
    }
}

/// The third element of a possible micro-op: `null`, an integer or a list of integers read straight
/// into a `Vec<i64>`; anything else as a generic value.
struct MopValueSeed;

impl<'de> DeserializeSeed<'de> for MopValueSeed {
    type Value = Result<MopValue, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Result<MopValue, Value>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ok(MopValue::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ok(MopValue::Null))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Ok(MopValue::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                ValueVisitor.visit_u64(v).map(|v| match v {
                    Value::Int(i) => Ok(MopValue::Int(i)),
                    other => Err(other),
                })
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Err(Value::Bool(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Err(Value::Float(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Err(Value::Str(v.to_string())))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Value::deserialize(d).map(Err)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ValueVisitor.visit_map(map).map(Err)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut ints: Vec<i64> = INTS_SCRATCH.take();
                ints.clear();
                while let Some(item) = seq.next_element::<Value>()? {
                    match item {
                        Value::Int(i) => ints.push(i),
                        other => {
                            let mut items: Vec<Value> = ints.into_iter().map(Value::Int).collect();
                            items.push(other);
                            while let Some(item) = seq.next_element::<Value>()? {
                                items.push(item);
                            }
                            return Ok(Err(Value::List(items)));
                        }
                    }
                }
                let out = ints.as_slice().to_vec();
                INTS_SCRATCH.set(ints);
                Ok(Ok(MopValue::List(out)))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads the remaining elements of a list generically.
fn rest<'de, A: SeqAccess<'de>>(mut items: Vec<Value>, mut seq: A) -> Result<Elem, A::Error> {
    while let Some(item) = seq.next_element::<Value>()? {
        items.push(item);
    }
    Ok(Elem::Value(Value::List(items)))
}

/// The first element of a possible micro-op: a borrowed string when it is one, else any value.
struct KeySeedOrValue;

impl<'de> DeserializeSeed<'de> for KeySeedOrValue {
    type Value = Result<Cow<'de, str>, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Result<Cow<'de, str>, Value>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Ok(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Ok(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Ok(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Err(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Err(Value::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                ValueVisitor.visit_u64(v).map(Err)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Err(Value::Float(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Err(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Err(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Value::deserialize(d).map(Err)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                ValueVisitor.visit_seq(seq).map(Err)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ValueVisitor.visit_map(map).map(Err)
            }
        }
        d.deserialize_any(V)
    }
}

/// Deserializes a map key without allocating when the input allows borrowing.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct K;
        impl<'de> Visitor<'de> for K {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(K)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_round_trips_through_the_fast_path() {
        let t = Value::Transfer(Transfer {
            id: 17,
            from: 1,
            to: 4,
            amount: 5,
        });
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, r#"{"id":17,"from":1,"to":4,"amount":5}"#);
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), t);
    }

    #[test]
    fn a_map_with_extra_keys_stays_generic() {
        let v: Value =
            serde_json::from_str(r#"{"id":1,"from":2,"to":3,"amount":4,"x":null}"#).unwrap();
        assert_eq!(v.get("x"), Some(&Value::Null));
        assert_eq!(v.get("amount"), Some(&Value::Int(4)));
        let v: Value = serde_json::from_str(r#"{"id":1,"from":-2,"to":3,"amount":4}"#).unwrap();
        assert_eq!(v.get("from"), Some(&Value::Int(-2)));
    }

    #[test]
    fn txn_fast_path_round_trips_and_equals_the_generic_list() {
        let s = r#"[["r",1,[1,2]],["append",1,3],["w",2,5],["r",3,null]]"#;
        let v: Value = serde_json::from_str(s).unwrap();
        let Value::Txn(mops) = &v else {
            panic!("expected the fast path, got {v:?}")
        };
        assert_eq!(
            mops[0],
            MicroOp {
                f: MopF::Read,
                key: 1,
                value: MopValue::List(vec![1, 2])
            }
        );
        assert_eq!(mops[3].value, MopValue::Null);
        assert_eq!(serde_json::to_string(&v).unwrap(), s);
        let generic = v.to_generic();
        assert!(matches!(generic, Value::List(_)));
        assert_eq!(v, generic);
        assert_eq!(generic, v);
        assert_eq!(serde_json::to_string(&generic).unwrap(), s);
    }

    #[test]
    fn near_misses_stay_generic() {
        for s in [
            r#"[["r",1,[1,"x"]]]"#,
            r#"[["r","k",null]]"#,
            r#"[["x",1,2]]"#,
            r#"[["r",1,2,3]]"#,
            r#"[["r",1]]"#,
            r#"[["append",1,2],5]"#,
            r#"[5,["append",1,2]]"#,
            r#"[["r",1,1.5]]"#,
            r#"[]"#,
            r#"[[]]"#,
        ] {
            let v: Value = serde_json::from_str(s).unwrap();
            assert!(matches!(v, Value::List(_)), "{s} -> {v:?}");
            assert_eq!(serde_json::to_string(&v).unwrap(), s);
        }
    }

    #[test]
    fn nested_values_round_trip() {
        let s = r#"{"applied":[1,2,3],"balances":[10,-3,0],"name":"a\"b","ok":true,"x":1.5}"#;
        let v: Value = serde_json::from_str(s).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), s);
        assert_eq!(
            v.get("balances").unwrap().as_i64_list().unwrap(),
            vec![10, -3, 0]
        );
    }

    #[test]
    fn micro_ops_read_the_fast_path_and_generic_lists_alike() {
        let text = r#"[["r",1,[2,3]],["append",1,4],["w",2,5],["r",3,null]]"#;
        let fast: Value = serde_json::from_str(text).unwrap();
        assert!(fast.as_txn().is_some(), "decoded into the fast path");
        let generic = fast.to_generic();
        assert_eq!(fast.micro_ops(), generic.micro_ops());
        assert_eq!(fast.micro_ops().unwrap().len(), 4);
        for bad in [r#"[["x",1,2]]"#, r#"[["r","k",2]]"#, r#"[["r",1]]"#, "7"] {
            let v: Value = serde_json::from_str(bad).unwrap();
            assert_eq!(v.to_generic().micro_ops(), None, "{bad}");
        }
    }
}
