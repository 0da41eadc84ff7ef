//! What an op map means: its fields checked as the generic reader's `OpMap::new` checks them, and
//! its `:value` normalized as `Normalizer::value` does (Jepsen's bank reads and transfers in
//! verity's vocabulary, see [`super::super`]), into one event and what it still [`lacks`].

use super::lacks;
use super::scan::{map_value, Item, Node, Parser};
use crate::event::{Event, EventType, Process, F};
use crate::value::{Map, Transfer, Value};

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

impl<'t> Parser<'t> {
    /// Reads one op map (the cursor is on its `{`).
    pub(super) fn op(&mut self) -> Option<(Event, u8)> {
        self.open(1)?;
        let mut fields = Fields::default();
        loop {
            if self.closes(b'}')? {
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
}
