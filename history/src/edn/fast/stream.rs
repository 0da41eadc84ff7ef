//! The fast reader on a file streamed in blocks, its events handed out one by one in file order,
//! never the whole file nor the whole history in memory (see [`super::super::stream_edn`]).
//!
//! A reader thread reads the file in blocks of about [`BLOCK_BYTES`]; each block, cut after its last
//! newline, is read in pieces in parallel exactly as [`super::parse`] reads a whole file (pieces at
//! line starts, kept only where each began where the one before it ended, else the block is read in
//! one piece), and the op cut by the block's end is read again at the start of the next block. The
//! calling thread fills in, in file order, what the events lack — an index, a time, a transfer's
//! synthetic id — as [`super::finish`] does, and hands each event out. An op without a `:process`
//! needs the pairing of the whole file ([`super::super::pairing`]): the stream steps aside there, as
//! it does wherever the fast reader steps aside.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc;

use rayon::prelude::*;

use super::scan::Parser;
use super::{lacks, piece_starts, Clock, TransferIds};
use crate::event::Event;
use crate::value::Value;

/// About how much text is read and parsed at a time.
pub const BLOCK_BYTES: usize = 4 << 20;

/// Parsed blocks waiting for the calling thread, at most.
const BLOCKS_AHEAD: usize = 2;

/// An op map that does not read with this much text after its start (or a whole block, if more)
/// is not one cut by a block's end: the fast reader steps aside at it. So does a line longer than
/// four times this (or four blocks).
const OP_BYTES_MIN: usize = 64 << 10;

/// How a streamed file ended, when the fast reader read all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    /// Events handed out.
    pub events: usize,
    /// No op of the file carries a time: every event's time is its index (the events handed out
    /// carry 0, since that could only be known at the end).
    pub times_are_indices: bool,
}

/// Streams the file's events to `each`; `None` where the fast reader steps aside or the file cannot
/// be read (what `each` was handed is then not the file's history).
pub fn stream(
    path: &Path,
    block_bytes: usize,
    piece_bytes: usize,
    mut each: impl FnMut(Event),
) -> Option<End> {
    let file = std::fs::File::open(path).ok()?;
    let (tx, rx) = mpsc::sync_channel::<Vec<(Event, u8)>>(BLOCKS_AHEAD);
    let block_bytes = block_bytes.max(1);
    let piece_bytes = piece_bytes.max(1);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("edn-stream".into())
            .spawn_scoped(scope, move || produce(file, block_bytes, piece_bytes, tx))
            .ok()?;
        let mut position = 0usize;
        let mut timed = false;
        let mut clock = Clock::new(true);
        let mut ids = TransferIds::default();
        let mut aside = false;
        'blocks: for batch in rx.iter() {
            for (mut e, l) in batch {
                if l & lacks::PROCESS != 0 {
                    aside = true;
                    break 'blocks;
                }
                if l & lacks::INDEX != 0 {
                    e.index = position as u64;
                }
                let written = (l & lacks::TIME == 0).then_some(e.time_ns);
                timed |= written.is_some();
                e.time_ns = clock.time(written, e.index);
                if l & lacks::ID != 0 {
                    if let Value::Transfer(t) = &mut e.value {
                        t.id = ids.id(e.kind, e.process);
                    }
                }
                each(e);
                position += 1;
            }
        }
        // Dropping the receiver stops the reader thread at its next block.
        drop(rx);
        let read = reader.join().ok().flatten();
        (!aside && read.is_some()).then_some(End {
            events: position,
            times_are_indices: !timed,
        })
    })
}

/// Where a block's parse stands between blocks.
struct State {
    /// The closing delimiter of the top-level collection, if the ops are inside one.
    close: Option<u8>,
    /// Whether the text began (its top-level opening delimiter, if any, is behind).
    begun: bool,
    /// Whether the top-level collection is closed (only blanks may follow).
    closed: bool,
}

/// The reader thread: the file's events, block by block; `None` where it steps aside.
fn produce(
    mut file: std::fs::File,
    block_bytes: usize,
    piece_bytes: usize,
    tx: mpsc::SyncSender<Vec<(Event, u8)>>,
) -> Option<()> {
    let mut state = State {
        close: None,
        begun: false,
        closed: false,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(block_bytes + (block_bytes >> 2));
    loop {
        let eof = fill(&mut file, &mut buf, block_bytes)?;
        let cut = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(nl) => nl + 1,
                // A line longer than several blocks: not an op map of a history.
                None if buf.len() > 4 * block_bytes.max(OP_BYTES_MIN) => return None,
                None => continue,
            }
        };
        let text = std::str::from_utf8(&buf[..cut]).ok()?;
        let (events, rest) = block(text, &mut state, eof, block_bytes, piece_bytes)?;
        if !events.is_empty() && tx.send(events).is_err() {
            return Some(()); // the calling thread stopped reading
        }
        if eof {
            return (state.close.is_none() || state.closed).then_some(());
        }
        buf.drain(..rest);
    }
}

/// Appends about `block_bytes` of the file to `buf`; whether the file ended.
fn fill(file: &mut std::fs::File, buf: &mut Vec<u8>, block_bytes: usize) -> Option<bool> {
    let target = buf.len() + block_bytes;
    while buf.len() < target {
        let at = buf.len();
        buf.resize(target, 0);
        match file.read(&mut buf[at..]) {
            Ok(0) => {
                buf.truncate(at);
                return Some(true);
            }
            Ok(n) => buf.truncate(at + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(at),
            Err(_) => return None,
        }
    }
    Some(false)
}

/// The events of one block of whole lines, and where the text left for the next block begins (the
/// op cut by the block's end); `None` where the fast reader steps aside.
fn block(
    text: &str,
    state: &mut State,
    eof: bool,
    block_bytes: usize,
    piece_bytes: usize,
) -> Option<(Vec<(Event, u8)>, usize)> {
    let mut start = 0;
    if state.closed {
        let mut p = Parser::new(text, 0, 0);
        p.blank()?;
        return (p.pos == text.len()).then(|| (Vec::new(), text.len()));
    }
    if !state.begun {
        let mut top = Parser::new(text, 0, 0);
        top.blank()?;
        if top.peek().is_none() && !eof {
            // Blanks and comments only, so far: the first op or delimiter is further on.
            return Some((Vec::new(), text.len()));
        }
        state.close = match top.peek() {
            Some(b'[') => Some(b']'),
            Some(b'(') => Some(b')'),
            _ => None,
        };
        start = top.pos + usize::from(state.close.is_some());
        state.begun = true;
    }
    let depth = usize::from(state.close.is_some());
    let starts = piece_starts(text.as_bytes(), start, piece_bytes);
    let mut read = None;
    if starts.len() > 1 {
        let ends: Vec<usize> = starts[1..].iter().copied().chain([text.len()]).collect();
        let last = starts.len() - 1;
        let pieces: Vec<Option<Ops>> = (0..starts.len())
            .into_par_iter()
            .map(|i| {
                let may_stop = i == last && !eof;
                ops(text, starts[i], ends[i], state.close, depth, may_stop)
            })
            .collect();
        // As in `read_body`: each piece must begin where the one before it ended, none stopping
        // early but the last (the op cut by the block's end) and none but the last closing.
        let aligned = pieces.iter().all(Option::is_some)
            && pieces.windows(2).all(|w| {
                matches!(w, [Some(a), Some(b)] if a.end == b.first && a.stop.is_none() && !a.closed)
            });
        if aligned {
            let pieces: Vec<Ops> = pieces.into_iter().flatten().collect();
            read = Some(Ops {
                first: pieces[0].first,
                end: pieces[last].end,
                stop: pieces[last].stop,
                closed: pieces[last].closed,
                events: pieces.into_iter().flat_map(|p| p.events).collect(),
            });
        }
    }
    let read = match read {
        Some(read) => read,
        None => ops(text, start, text.len(), state.close, depth, !eof)?,
    };
    state.closed = read.closed;
    let rest = match read.stop {
        // An op that does not read with a whole block of text after its start is not cut by the
        // block's end: the fast reader steps aside at it.
        Some(at) if text.len() - at >= block_bytes.max(OP_BYTES_MIN) => return None,
        Some(at) => at,
        None => text.len(),
    };
    Some((read.events, rest))
}

/// The ops read from a piece of a block.
struct Ops {
    events: Vec<(Event, u8)>,
    /// Where its first op begins (past blanks and comments)...
    first: usize,
    /// ...and where reading stopped: at or past the piece's end, past blanks and comments, or at
    /// the start of the op it stopped at.
    end: usize,
    /// The start of an op that did not read, when the piece may stop there (the op may go on in
    /// the next block).
    stop: Option<usize>,
    /// Whether it read the top-level collection's closing delimiter (and only blanks after it).
    closed: bool,
}

/// [`super::read_piece`] on a piece of a block, which may stop at an op that does not read when
/// `may_stop`.
fn ops(
    text: &str,
    from: usize,
    to: usize,
    close: Option<u8>,
    depth: usize,
    may_stop: bool,
) -> Option<Ops> {
    let mut p = Parser::new(text, from, depth);
    let mut events = Vec::with_capacity((to - from) / 80);
    let mut stop = None;
    // Blocks end after a newline, so no comment is cut by a block's end.
    let (first, closed) = p.walk_ops(to, close, text.len(), |p| {
        let at = p.pos;
        match p.op() {
            Some(op) => events.push(op),
            None if may_stop => {
                p.pos = at;
                stop = Some(at);
                return Some(false);
            }
            None => return None,
        }
        Some(true)
    })?;
    Some(Ops {
        events,
        first,
        end: p.pos,
        stop,
        closed,
    })
}

/// The first ops of a file's head, as the fast reader reads them, up to the first it does not
/// read (or the end of the text); what they lack is not filled in.
pub fn head(text: &str) -> Vec<Event> {
    let mut p = Parser::new(text, 0, 0);
    let mut out = Vec::new();
    if p.blank().is_none() {
        return out;
    }
    if matches!(p.peek(), Some(b'[' | b'(')) {
        p.pos += 1;
        p.depth = 1;
    }
    while p.blank().is_some() && p.peek() == Some(b'{') {
        match p.op() {
            Some((e, _)) => out.push(e),
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The stream against [`crate::edn::parse_edn`] on the whole file: random histories in several
    //! layouts, read in blocks and pieces of a few bytes so that ops are cut by blocks' ends and
    //! pieces begin inside strings, maps and comments; and random corruptions of them, where the
    //! stream gives the same history or steps aside. Fixed seeds.

    use std::io::Write as _;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use crate::edn::{parse_edn, parse_edn_fast, read_edn_head, stream_edn_in_blocks};
    use crate::event::Event;

    /// How a file is laid out.
    #[derive(Debug, Clone, Copy)]
    struct Layout {
        /// Ops inside one vector.
        vector: bool,
        /// Op maps over several lines, with comments inside.
        multiline: bool,
        /// Some ops without a `:time` (all of them when `timed` is false).
        timed: bool,
        /// Some ops without an `:index`.
        indices: bool,
        /// Some op without a `:process`.
        anonymous: bool,
    }

    fn mops(rng: &mut ChaCha8Rng, completed: bool) -> String {
        let n = rng.gen_range(0..4);
        let mut out = Vec::new();
        for _ in 0..n {
            let k = rng.gen_range(0..5);
            out.push(match rng.gen_range(0..3) {
                0 => format!("[:append {k} {}]", rng.gen_range(-3..40)),
                1 if completed => {
                    let l: Vec<String> = (0..rng.gen_range(0..4)).map(|i| i.to_string()).collect();
                    format!("[:r {k} [{}]]", l.join(" "))
                }
                1 => format!("[:r {k} nil]"),
                _ => format!("[:w {k} {}]", rng.gen_range(0..9)),
            });
        }
        format!("[{}]", out.join(" "))
    }

    /// One op map's fields, in a random order.
    fn op(rng: &mut ChaCha8Rng, i: usize, layout: Layout, open: &mut [bool]) -> String {
        let mut fields: Vec<String> = Vec::new();
        match rng.gen_range(0..10) {
            0 => {
                fields.push(":process :nemesis".into());
                fields.push(":type :info".into());
                fields.push(":f :partition".into());
                fields.push(":value {\"n1\" #{\"n2\" \"n3\"}, :kind [:halves 2]}".into());
            }
            1 => {
                let p = rng.gen_range(0..open.len());
                fields.push(format!(":process {p}"));
                fields.push(":type :invoke".into());
                fields.push(":f :transfer".into());
                let id = if rng.gen_bool(0.5) {
                    format!(", :id {i}")
                } else {
                    String::new()
                };
                fields.push(format!(":value {{:from 1, :to 2, :amount 3{id}}}"));
            }
            _ => {
                let p = rng.gen_range(0..open.len());
                let completing = open[p];
                open[p] = !completing;
                fields.push(format!(":process {p}"));
                let kind = if !completing {
                    ":invoke"
                } else {
                    [":ok", ":ok", ":fail", ":info"][rng.gen_range(0..4)]
                };
                fields.push(format!(":type {kind}"));
                fields.push(":f :txn".into());
                fields.push(format!(":value {}", mops(rng, completing)));
                if completing && rng.gen_bool(0.2) {
                    // A string over two lines, a line start inside it.
                    fields.push(":error \"lost\n{:type :ok} \\\"quoted\\\"\"".into());
                }
            }
        }
        if layout.timed && rng.gen_bool(0.9) {
            fields.push(format!(":time {}", 1000 + 7 * i));
        }
        if !layout.indices || rng.gen_bool(0.8) {
            fields.push(format!(":index {i}"));
        }
        for _ in 0..fields.len() {
            let (a, b) = (
                rng.gen_range(0..fields.len()),
                rng.gen_range(0..fields.len()),
            );
            fields.swap(a, b);
        }
        let sep = if layout.multiline {
            [",\n  ", "\n ; a comment {:type :ok}\n  ", ", ", "\r\n"][rng.gen_range(0..4)]
        } else {
            ", "
        };
        format!("{{{}}}", fields.join(sep))
    }

    fn history_text(seed: u64, ops: usize, layout: Layout) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut open = vec![false; 4];
        let mut out = String::from("; a history\n");
        if layout.vector {
            out.push('[');
        }
        for i in 0..ops {
            let mut op = op(&mut rng, i, layout, &mut open);
            if layout.anonymous && i == ops / 2 {
                op = op.replace(":process :nemesis", ":process nil");
                for p in 0..4 {
                    op = op.replace(&format!(":process {p}"), ":process nil");
                }
            }
            out.push_str(&op);
            out.push('\n');
        }
        if layout.vector {
            out.push_str("]\n");
        }
        out
    }

    fn file(text: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text).unwrap();
        f
    }

    /// The stream's history, its times filled in as the caller fills them.
    fn streamed(path: &std::path::Path, block: usize, piece: usize) -> Option<Vec<Event>> {
        let mut events = Vec::new();
        let end = stream_edn_in_blocks(path, block, piece, |e| events.push(e))?;
        assert_eq!(end.events, events.len());
        if end.times_are_indices {
            for e in &mut events {
                e.time_ns = e.index;
            }
        }
        Some(events)
    }

    /// The streamed history is the whole file's; the first difference when not.
    fn same(got: Option<&[Event]>, whole: &[Event], case: &str) {
        let got = got.unwrap_or_else(|| panic!("{case}: the stream stepped aside"));
        if let Some(i) = (0..got.len().min(whole.len())).find(|&i| got[i] != whole[i]) {
            panic!("{case}: event {i}: {:?} instead of {:?}", got[i], whole[i]);
        }
        assert_eq!(got.len(), whole.len(), "{case}: events");
    }

    const SIZES: [(usize, usize); 6] = [
        (1, 1),
        (13, 5),
        (200, 40),
        (1000, 64),
        (4096, 1 << 20),
        (super::BLOCK_BYTES, crate::edn::fast::PIECE_BYTES),
    ];

    #[test]
    fn streams_every_layout_as_the_whole_file_reads() {
        let mut case = 0;
        for vector in [false, true] {
            for multiline in [false, true] {
                for (timed, indices) in [(true, false), (false, true), (true, true)] {
                    case += 1;
                    let layout = Layout {
                        vector,
                        multiline,
                        timed,
                        indices,
                        anonymous: false,
                    };
                    let text = history_text(case, 300, layout);
                    let whole = parse_edn(&text).expect("the history reads").events;
                    assert!(
                        parse_edn_fast(&text).is_some(),
                        "{layout:?}: the fast reader reads it"
                    );
                    let f = file(text.as_bytes());
                    for (block, piece) in SIZES {
                        let got = streamed(f.path(), block, piece);
                        same(
                            got.as_deref(),
                            &whole,
                            &format!("{layout:?}, {block}, {piece}"),
                        );
                    }
                    let head = read_edn_head(f.path());
                    assert_eq!(
                        head.len(),
                        300,
                        "{layout:?}: the head of a small file is all of it"
                    );
                    assert_eq!(head[0].f, whole[0].f);
                }
            }
        }
    }

    #[test]
    fn steps_aside_at_an_op_without_a_process_and_at_odd_edn() {
        for vector in [false, true] {
            let layout = Layout {
                vector,
                multiline: false,
                timed: true,
                indices: false,
                anonymous: true,
            };
            let text = history_text(7, 100, layout);
            assert!(parse_edn(&text).is_ok());
            let f = file(text.as_bytes());
            for (block, piece) in SIZES {
                assert!(
                    streamed(f.path(), block, piece).is_none(),
                    "{block}, {piece}"
                );
            }
        }
        let plain = Layout {
            vector: false,
            multiline: false,
            timed: true,
            indices: false,
            anonymous: false,
        };
        let text = history_text(8, 100, plain);
        let odd = text.replacen(":index 50", ":index 50, :note \\x", 1);
        assert_ne!(odd, text);
        assert!(
            parse_edn(&odd).is_ok(),
            "a character literal reads generically"
        );
        let f = file(odd.as_bytes());
        for (block, piece) in SIZES {
            assert!(
                streamed(f.path(), block, piece).is_none(),
                "{block}, {piece}"
            );
        }
        let unclosed = format!("[{text}");
        let f = file(unclosed.as_bytes());
        assert!(parse_edn(&unclosed).is_err());
        for (block, piece) in SIZES {
            assert!(
                streamed(f.path(), block, piece).is_none(),
                "{block}, {piece}"
            );
        }
        assert!(streamed(std::path::Path::new("/nonexistent/h.edn"), 10, 10).is_none());
        let f = file(b"");
        assert_eq!(streamed(f.path(), 10, 10), Some(Vec::new()));
        assert_eq!(parse_edn("").unwrap().events, Vec::new());
    }

    #[test]
    fn a_corrupted_file_streams_as_the_whole_file_reads_or_steps_aside() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut read = 0;
        for case in 0..300 {
            let layout = Layout {
                vector: case % 2 == 0,
                multiline: case % 3 == 0,
                timed: case % 5 != 0,
                indices: case % 7 == 0,
                anonymous: false,
            };
            let mut bytes = history_text(100 + case, 40, layout).into_bytes();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..bytes.len());
                match rng.gen_range(0..3) {
                    0 => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, b" {}[]\"\n;:#\\0-x"[rng.gen_range(0..14)]),
                    _ => bytes[at] = b" {}[]\"\n;:#\\0-x"[rng.gen_range(0..14)],
                }
            }
            let whole = parse_edn(&bytes).ok().map(|h| h.events);
            let f = file(&bytes);
            for (block, piece) in [(29, 1), (301, 17), (1 << 20, 1 << 20)] {
                if let Some(got) = streamed(f.path(), block, piece) {
                    read += 1;
                    let whole = whole.as_ref().expect("a file that streams reads whole");
                    same(Some(&got), whole, &format!("case {case}, {block}, {piece}"));
                }
            }
        }
        assert!(read > 100, "most corruptions still read: {read}");
    }
}
