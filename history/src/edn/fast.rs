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

mod op;
mod scan;
pub(super) mod stream;

use std::borrow::Cow;

use rayon::prelude::*;

use super::{pairing, Clock, TransferIds};
use crate::event::Event;
use crate::history::History;
use crate::value::Value;
use scan::Parser;

/// Files whose ops take fewer bytes than twice this are read in one piece; larger ones in pieces of
/// about this size, in parallel.
pub const PIECE_BYTES: usize = 1 << 20;

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
    let (first, closed) = p.walk_ops(to, close, text.len(), |p| {
        let (event, lacks) = p.op()?;
        read.events.push(event);
        read.lacks.push(lacks);
        Some(true)
    })?;
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
