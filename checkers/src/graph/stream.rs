//! Reading a JSONL or EDN history straight into the graph checker's [`Store`], for histories of
//! tens of millions of transactions.
//!
//! The general path reads the whole file, parses every line into an [`Event`] with its value tree,
//! and only then decodes the transactions: at 10 million transactions the parsed history alone
//! needs more than 12 GB (Elle, in the same place, needs ~60 GB of heap for 22 million). Here the
//! file is streamed in blocks ([`jsonl::stream_lines`]), never held whole; each line of verity's
//! own shape is decoded by a small hand-written parser straight into the store's micro-ops; and the
//! [`History`] kept beside the store is *thin*: every event, as the results need them (counts,
//! errors, nemesis events), but without the values of transaction events, which the store holds.
//!
//! The hand-written parser accepts only the exact shape verity writes — fields in order, integers
//! without sign tricks, strings without escapes, micro-ops `["r"|"append"|"w", k, …]` that the
//! graph checker accepts — and hands any other line to serde_json, so every line reads exactly as
//! [`jsonl::parse_jsonl`] would read it, or the same error is reported. Operations are paired as
//! [`History::ops`] pairs them; a history that breaks the process discipline is reported by
//! `History::ops` on the thin history, as before.
//!
//! An EDN history ([`read_edn_file`]) is streamed the same way by the EDN reader's own fast path,
//! one event at a time with its value, which is decoded into the store and dropped.

use std::path::Path;

use rustc_hash::FxHashMap;
use verity_history::jsonl::{self, ReadError};
use verity_history::{Event, EventType, History, OpOutcome, Process, TornTail, Value, F};

use super::txn::{self, Decoded, RawMop, Store, StoreBuilder, TxnError, TxnHead};

/// What [`read_file`] returns.
pub struct Streamed {
    /// Every event; those of `txn` operations without their values.
    pub history: History,
    /// The transactions, or why they could not be decoded (the verdict is then `unknown`).
    pub store: Result<Store, TxnError>,
}

/// Reads a JSONL history file, plain or zstd-compressed, into a thin history and the graph
/// checker's store. Errors are those of [`jsonl::read_history`].
pub fn read_file(path: &Path) -> Result<Streamed, ReadError> {
    let mut reader = Reader::default();
    let mut line = 0usize;
    let (end, tail) = jsonl::stream_lines(path, |chunk| {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            line += 1;
            reader.line(line, &chunk[start..nl])?;
            start = nl + 1;
        }
        Ok::<(), ReadError>(())
    })??;
    let tail_line = line + 1;
    let mut torn_tail = None;
    if reader.line(tail_line, &tail).is_err() {
        torn_tail = Some(TornTail {
            line: tail_line,
            bytes: tail.len(),
        });
    }
    if end.cut_short && torn_tail.is_none() {
        torn_tail = Some(TornTail {
            line: tail_line,
            bytes: 0,
        });
    }
    let (events, store) = reader.finish();
    Ok(Streamed {
        history: History { events, torn_tail },
        store,
    })
}

/// Reads an EDN history file ([`verity_history::edn::stream_edn`]: op map by op map, in blocks, never
/// the whole file nor the whole parsed history) into a thin history and the graph checker's store,
/// exactly as [`verity_history::edn::read_edn`] then the graph checker would read it. `None` where
/// the EDN stream steps aside (an odd file, an unreadable one, ops without a `:process`): the general
/// path then reads the file, and reports its error if it has one.
pub fn read_edn_file(path: &Path) -> Option<Streamed> {
    let mut reader = Reader::default();
    let end = verity_history::edn::stream_edn(path, |e| {
        // The value is decoded from the event itself, and dropped once thinned.
        reader.event(e, false);
    })?;
    let (mut events, store) = reader.finish();
    if end.times_are_indices {
        for e in &mut events {
            e.time_ns = e.index;
        }
    }
    Some(Streamed {
        history: History::new(events),
        store,
    })
}

/// One micro-op held between its line and the transaction's completion; lists index the ints.
#[derive(Debug, Clone, Copy)]
enum Tmp {
    Append(i64, i64),
    Write(i64, i64),
    ReadNil(i64),
    ReadInt(i64, i64),
    ReadList(i64, u32, u32),
}

/// An open transaction: its place, where it was invoked, and what its invocation says.
struct Open {
    slot: u32,
    pos: usize,
    index: u64,
    mops: Result<(Vec<Tmp>, Vec<i64>), TxnError>,
}

/// Events are gathered in chunks and moved into one vector at the end, so that the vector's
/// doublings never hold two copies of gigabytes of events.
const EVENTS_CHUNK: usize = 1 << 20;

#[derive(Default)]
struct Reader {
    chunks: Vec<Vec<Event>>,
    current: Vec<Event>,
    events: usize,
    builder: StoreBuilder,
    /// Per process: its open operation, `None` when that is not a transaction.
    open: FxHashMap<u64, Option<Open>>,
    /// The first malformed transaction, by place in invocation order.
    error: Option<(u32, TxnError)>,
    tmp: Vec<Tmp>,
    ints: Vec<i64>,
}

impl Reader {
    fn line(&mut self, line: usize, text: &[u8]) -> Result<(), ReadError> {
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.tmp.clear();
        self.ints.clear();
        let (event, fast) = match fast_event(text, &mut self.tmp, &mut self.ints) {
            Some(e) => (e, true),
            None => {
                let e = jsonl::parse_event_line(line, text)?
                    .expect("a line that is not blank is an event or an error");
                (e, false)
            }
        };
        if let Some(kept) = self.event(event, fast) {
            // A fast-parsed line that is not part of a transaction (an invocation of another
            // function completed as a txn): its value is kept, read the general way.
            let full = jsonl::parse_event_line(line, text)?
                .expect("a line that is not blank is an event or an error");
            self.current[kept] = full;
        }
        Ok(())
    }

    /// The micro-ops of `e` in the scratch buffers (already there when the fast parser read it).
    fn scratch(&mut self, e: &Event, fast: bool) -> Result<(), TxnError> {
        if fast {
            return Ok(());
        }
        self.tmp.clear();
        self.ints.clear();
        let mut decoded: Vec<Decoded<'_>> = Vec::new();
        let mut copied: Vec<i64> = Vec::new();
        txn::decode_mops(e.index, &e.value, &mut decoded, &mut copied)?;
        for d in decoded {
            let m = match d {
                Decoded::Raw(RawMop::Append(k, v)) => Tmp::Append(k, v),
                Decoded::Raw(RawMop::Write(k, v)) => Tmp::Write(k, v),
                Decoded::Raw(RawMop::ReadNil(k)) => Tmp::ReadNil(k),
                Decoded::Raw(RawMop::ReadInt(k, v)) => Tmp::ReadInt(k, v),
                Decoded::Raw(RawMop::ReadUnknown(k)) => Tmp::ReadNil(k),
                Decoded::Raw(RawMop::ReadList(k, l)) => self.list(k, l)?,
                Decoded::Copied(k, r) => self.list(k, &copied[r])?,
            };
            self.tmp.push(m);
        }
        Ok(())
    }

    fn list(&mut self, key: i64, l: &[i64]) -> Result<Tmp, TxnError> {
        let start = self.ints.len();
        self.ints.extend_from_slice(l);
        let small = |x: usize| u32::try_from(x).map_err(|_| txn::TooLarge);
        Ok(Tmp::ReadList(key, small(start)?, small(self.ints.len())?))
    }

    /// Records an event; returns its place in the current chunk when it was fast-parsed (so its
    /// value was not kept) but is not part of a transaction.
    fn event(&mut self, mut e: Event, fast: bool) -> Option<usize> {
        let pos = self.events;
        let mut thinned = false;
        if let Process::Client(p) = e.process {
            if e.kind == EventType::Invoke {
                if e.f == F::Txn {
                    let mops = self
                        .scratch(&e, fast)
                        .map(|()| (self.tmp.clone(), self.ints.clone()));
                    match self.builder.reserve() {
                        Ok(slot) => {
                            let open = Open {
                                slot,
                                pos,
                                index: e.index,
                                mops,
                            };
                            self.open.insert(p, Some(open));
                        }
                        Err(too) => self.fail(u32::MAX, too.into()),
                    }
                    e.value = Value::Null;
                    thinned = true;
                } else {
                    self.open.insert(p, None);
                }
            } else if let Some(Some(o)) = self.open.remove(&p) {
                let outcome = match e.kind {
                    EventType::Ok => OpOutcome::Ok,
                    EventType::Fail => OpOutcome::Fail,
                    _ => OpOutcome::Info,
                };
                let head = TxnHead {
                    invoke: o.pos,
                    completion: Some(pos),
                    invoke_index: o.index,
                    completion_index: e.index,
                    process: p,
                    outcome,
                };
                if outcome == OpOutcome::Ok {
                    match self.scratch(&e, fast) {
                        Ok(()) => {
                            let (tmp, ints) = (
                                std::mem::take(&mut self.tmp),
                                std::mem::take(&mut self.ints),
                            );
                            self.fill(o.slot, head, &tmp, &ints);
                            (self.tmp, self.ints) = (tmp, ints);
                        }
                        Err(err) => self.fail(o.slot, err),
                    }
                } else {
                    self.fill_open(o, head);
                }
                e.value = Value::Null;
                thinned = true;
            }
        }
        if self.current.len() == EVENTS_CHUNK {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(EVENTS_CHUNK));
            self.chunks.push(full);
        }
        self.current.push(e);
        self.events += 1;
        (fast && !thinned).then(|| self.current.len() - 1)
    }

    fn fill_open(&mut self, o: Open, head: TxnHead) {
        match o.mops {
            Ok((tmp, ints)) => self.fill(o.slot, head, &tmp, &ints),
            Err(err) => self.fail(o.slot, err),
        }
    }

    fn fill(&mut self, slot: u32, head: TxnHead, tmp: &[Tmp], ints: &[i64]) {
        let mops = tmp.iter().map(|m| match *m {
            Tmp::Append(k, v) => RawMop::Append(k, v),
            Tmp::Write(k, v) => RawMop::Write(k, v),
            Tmp::ReadNil(k) => RawMop::ReadNil(k),
            Tmp::ReadInt(k, v) => RawMop::ReadInt(k, v),
            Tmp::ReadList(k, a, b) => RawMop::ReadList(k, &ints[a as usize..b as usize]),
        });
        if let Err(too) = self.builder.fill(slot, head, mops) {
            self.fail(slot, too.into());
        }
    }

    fn fail(&mut self, slot: u32, err: TxnError) {
        if self.error.as_ref().is_none_or(|(s, _)| slot < *s) {
            self.error = Some((slot, err));
        }
    }

    /// Operations still open are pending; the events in one vector.
    fn finish(mut self) -> (Vec<Event>, Result<Store, TxnError>) {
        let mut open: Vec<(u64, Open)> = self
            .open
            .drain()
            .filter_map(|(p, o)| o.map(|o| (p, o)))
            .collect();
        open.sort_unstable_by_key(|(_, o)| o.slot);
        for (p, o) in open {
            let head = TxnHead {
                invoke: o.pos,
                completion: None,
                invoke_index: o.index,
                completion_index: 0,
                process: p,
                outcome: OpOutcome::Pending,
            };
            self.fill_open(o, head);
        }
        let mut events = Vec::with_capacity(self.events);
        for chunk in self.chunks.drain(..) {
            events.extend(chunk);
        }
        events.append(&mut self.current);
        let store = match self.error {
            Some((_, e)) => Err(e),
            None => Ok(self.builder.finish()),
        };
        (events, store)
    }
}

/// A cursor over one line for the hand-written parser. Every method returns `None` on anything
/// it does not accept, which sends the line to serde_json.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        self.b[self.i..].starts_with(s).then(|| self.i += s.len())
    }
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        self.i += hit as usize;
        hit
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    /// Digits of a JSON integer without sign, no leading zero, within u64.
    fn digits(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
            self.i += 1;
        }
        let n = self.i - start;
        (n > 0 && !(n > 1 && self.b[start] == b'0')).then_some(v)
    }
    fn u64(&mut self) -> Option<u64> {
        self.digits()
    }
    fn i64(&mut self) -> Option<i64> {
        if self.eat(b'-') {
            // "-0" is left to serde_json.
            if self.peek() == Some(b'0') {
                return None;
            }
            let v = self.digits()?;
            0i64.checked_sub_unsigned(v)
        } else {
            i64::try_from(self.digits()?).ok()
        }
    }
    /// A string without escapes or control characters, after its opening quote.
    fn plain_string(&mut self) -> Option<String> {
        let start = self.i;
        let len = memchr::memchr(b'"', &self.b[start..])?;
        let s = &self.b[start..start + len];
        if s.iter().any(|&c| c == b'\\' || c < 0x20) {
            return None;
        }
        self.i += len + 1;
        std::str::from_utf8(s).ok().map(str::to_string)
    }
}

/// A `txn` event line exactly as verity writes it, its micro-ops into `tmp` / `ints`; `None` for
/// anything else.
fn fast_event(b: &[u8], tmp: &mut Vec<Tmp>, ints: &mut Vec<i64>) -> Option<Event> {
    let mut c = Cursor { b, i: 0 };
    c.lit(b"{\"index\":")?;
    let index = c.u64()?;
    c.lit(b",\"time_ns\":")?;
    let time_ns = c.u64()?;
    c.lit(b",\"process\":")?;
    let process = Process::Client(c.u64()?);
    c.lit(b",\"type\":\"")?;
    let kind = if c.lit(b"invoke\"").is_some() {
        EventType::Invoke
    } else if c.lit(b"ok\"").is_some() {
        EventType::Ok
    } else if c.lit(b"fail\"").is_some() {
        EventType::Fail
    } else {
        c.lit(b"info\"")?;
        EventType::Info
    };
    c.lit(b",\"f\":\"txn\",\"value\":")?;
    mops(&mut c, tmp, ints)?;
    let error = if c.eat(b'}') {
        None
    } else {
        c.lit(b",\"error\":\"")?;
        let s = c.plain_string()?;
        c.lit(b"}")?;
        Some(s)
    };
    (c.i == b.len()).then_some(Event {
        index,
        time_ns,
        process,
        kind,
        f: F::Txn,
        value: Value::Null,
        error,
    })
}

/// `[]` or `[mop, …]` with every mop of a shape the graph checker accepts.
fn mops(c: &mut Cursor<'_>, tmp: &mut Vec<Tmp>, ints: &mut Vec<i64>) -> Option<()> {
    c.lit(b"[")?;
    if c.eat(b']') {
        return Some(());
    }
    loop {
        c.lit(b"[\"")?;
        let f = if c.lit(b"r\",").is_some() {
            b'r'
        } else if c.lit(b"append\",").is_some() {
            b'a'
        } else {
            c.lit(b"w\",")?;
            b'w'
        };
        let key = c.i64()?;
        c.lit(b",")?;
        let m = match (f, c.peek()?) {
            (b'r', b'n') => {
                c.lit(b"null")?;
                Tmp::ReadNil(key)
            }
            (b'r', b'[') => {
                c.i += 1;
                let start = u32::try_from(ints.len()).ok()?;
                if !c.eat(b']') {
                    loop {
                        ints.push(c.i64()?);
                        if c.eat(b']') {
                            break;
                        }
                        c.lit(b",")?;
                    }
                }
                Tmp::ReadList(key, start, u32::try_from(ints.len()).ok()?)
            }
            (b'r', _) => Tmp::ReadInt(key, c.i64()?),
            (b'a', _) => Tmp::Append(key, c.i64()?),
            (_, _) => Tmp::Write(key, c.i64()?),
        };
        tmp.push(m);
        c.lit(b"]")?;
        if c.eat(b']') {
            return Some(());
        }
        c.lit(b",")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(line: &str) -> Option<(Event, Vec<Tmp>, Vec<i64>)> {
        let (mut tmp, mut ints) = (Vec::new(), Vec::new());
        fast_event(line.as_bytes(), &mut tmp, &mut ints).map(|e| (e, tmp, ints))
    }

    #[test]
    fn verity_lines_take_the_fast_path_and_read_as_serde_reads_them() {
        let line = r#"{"index":7,"time_ns":12,"process":3,"type":"ok","f":"txn","value":[["r",1,[2,-3]],["r",2,null],["append",1,-4],["w",5,6],["r",5,6]],"error":"slow"}"#;
        let (e, tmp, ints) = fast(line).expect("the fast path takes verity's own line");
        let mut general: Event = serde_json::from_str(line).unwrap();
        general.value = Value::Null;
        assert_eq!(e, general);
        assert_eq!(ints, vec![2, -3]);
        assert!(matches!(tmp[0], Tmp::ReadList(1, 0, 2)));
        assert!(matches!(tmp[1], Tmp::ReadNil(2)));
        assert!(matches!(tmp[2], Tmp::Append(1, -4)));
        assert!(matches!(tmp[3], Tmp::Write(5, 6)));
        assert!(matches!(tmp[4], Tmp::ReadInt(5, 6)));
        assert!(fast(
            r#"{"index":0,"time_ns":0,"process":0,"type":"invoke","f":"txn","value":[]}"#
        )
        .is_some());
    }

    #[test]
    fn anything_unusual_is_left_to_serde_json() {
        let head = r#"{"index":1,"time_ns":2,"process":3,"type":"ok","f":"txn","value":"#;
        for tail in [
            r#"[["r",1,[1.5]]]}"#,
            r#"[["r",1,[01]]]}"#,
            r#"[["r",-0,null]]}"#,
            r#"[["append",1,null]]}"#,
            r#"[["x",1,2]]}"#,
            r#"[["r",1,[9223372036854775808]]]}"#,
            r#"[["r",1,null]],"error":"a\"b"}"#,
            r#"[["r",1,null]]} "#,
            r#"[["r",1,null]],"extra":1}"#,
            r#"null}"#,
        ] {
            assert!(fast(&format!("{head}{tail}")).is_none(), "{tail}");
        }
        assert!(fast(
            r#"{"index":1,"time_ns":2,"process":"nemesis","type":"info","f":"txn","value":[]}"#
        )
        .is_none());
        assert!(
            fast(r#"{"time_ns":2,"index":1,"process":3,"type":"ok","f":"txn","value":[]}"#)
                .is_none()
        );
    }
}
