//! The payload of an event: a small JSON-like tree with one typed fast path.
//!
//! Histories are dominated by transfers, so a map with exactly the keys `id`, `from`, `to` and `amount`
//! (all integers) is decoded straight into a [`Transfer`] without allocating; everything else keeps its
//! generic shape. Maps are ordered (`BTreeMap`) so that writing a value is deterministic.

use std::borrow::Cow;
use std::collections::BTreeMap;
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

#[derive(Debug, Clone, Default, PartialEq)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Transfer(Transfer),
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

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
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
            Value::Map(m) => s.collect_map(m),
            Value::Transfer(t) => t.serialize(s),
        }
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
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // Transfer fields seen so far, and everything else.
        let mut slots: [Option<i64>; 4] = [None; 4];
        let mut rest: BTreeMap<String, Value> = BTreeMap::new();
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
    fn nested_values_round_trip() {
        let s = r#"{"applied":[1,2,3],"balances":[10,-3,0],"name":"a\"b","ok":true,"x":1.5}"#;
        let v: Value = serde_json::from_str(s).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), s);
        assert_eq!(
            v.get("balances").unwrap().as_i64_list().unwrap(),
            vec![10, -3, 0]
        );
    }
}
