//! The durable history file: one JSON event per line.
//!
//! Writing happens off the hot path: client workers hand events to a [`Recorder`] (a bounded channel)
//! and a dedicated thread numbers them, serializes them, flushes at least every
//! [`FLUSH_INTERVAL`] and fsyncs when asked (at phase boundaries) and at the end. The event index is
//! the order in which events reach the channel, which is sound for real-time order: if the history
//! shows a completion before an invocation, the operation really had returned before the other began.
//!
//! Reading splits the file into lines and parses them in parallel. A last line without its newline that
//! does not parse is a torn tail — the writer was killed mid-write — and is reported, not fatal.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use thiserror::Error;

use crate::event::Event;
use crate::history::{History, TornTail};

/// The longest time an event may sit in the writer's buffer before it reaches the file.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How many events may wait in the channel before workers are slowed down (back-pressure, never loss).
pub const CHANNEL_CAPACITY: usize = 65_536;

enum Msg {
    Event(Event),
    Sync(SyncSender<io::Result<()>>),
}

/// A cheap, cloneable handle that records events into the history file.
#[derive(Clone)]
pub struct Recorder {
    tx: SyncSender<Msg>,
}

#[derive(Debug, Error)]
#[error("the history writer has stopped (an earlier write failed)")]
pub struct WriterGone;

impl Recorder {
    /// Queues an event; its `index` is assigned by the writer.
    pub fn record(&self, event: Event) -> Result<(), WriterGone> {
        self.tx.send(Msg::Event(event)).map_err(|_| WriterGone)
    }

    /// Waits until everything recorded so far is on disk (flushed and fsynced).
    pub fn sync(&self) -> io::Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        let gone = || io::Error::other("the history writer has stopped");
        self.tx.send(Msg::Sync(tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

/// What the writer did, returned when it is finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub events: u64,
    pub bytes: u64,
}

/// Owns the writer thread. Drop every [`Recorder`] and call [`HistoryWriter::finish`] to end it.
pub struct HistoryWriter {
    recorder: Option<Recorder>,
    handle: JoinHandle<io::Result<WriterStats>>,
}

impl HistoryWriter {
    /// Creates (truncates) `path` and starts the writer thread.
    pub fn create(path: &Path) -> io::Result<HistoryWriter> {
        let file = File::create(path)?;
        let (tx, rx) = mpsc::sync_channel::<Msg>(CHANNEL_CAPACITY);
        let handle = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || write_loop(file, rx))?;
        Ok(HistoryWriter {
            recorder: Some(Recorder { tx }),
            handle,
        })
    }

    pub fn recorder(&self) -> Recorder {
        self.recorder
            .clone()
            .expect("the writer's own recorder lives until finish")
    }

    /// Waits for every recorder to be dropped, then flushes, fsyncs and returns the totals.
    pub fn finish(mut self) -> io::Result<WriterStats> {
        self.recorder = None;
        match self.handle.join() {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("the history writer thread panicked")),
        }
    }
}

fn write_loop(file: File, rx: mpsc::Receiver<Msg>) -> io::Result<WriterStats> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut stats = WriterStats::default();
    let mut dirty_since: Option<Instant> = None;
    loop {
        let msg = match dirty_since {
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
            Some(t) => {
                let left = FLUSH_INTERVAL.saturating_sub(t.elapsed());
                match rx.recv_timeout(left) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        out.flush()?;
                        dirty_since = None;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        match msg {
            Msg::Event(mut e) => {
                e.index = stats.events;
                let before = out.buffer().len();
                serde_json::to_writer(&mut out, &e).map_err(io::Error::other)?;
                out.write_all(b"\n")?;
                stats.events += 1;
                stats.bytes += (out.buffer().len().saturating_sub(before)) as u64;
                if dirty_since.is_none() {
                    dirty_since = Some(Instant::now());
                }
            }
            Msg::Sync(reply) => {
                let r = out.flush().and_then(|_| out.get_ref().sync_data());
                dirty_since = None;
                let failed = r.is_err();
                let _ = reply.send(r);
                if failed {
                    return Err(io::Error::other("fsync of the history failed"));
                }
            }
        }
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    Ok(stats)
}

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("line {line}: malformed event: {message}")]
    Malformed { line: usize, message: String },
}

/// Reads a JSONL history file.
pub fn read_jsonl(path: &Path) -> Result<History, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_jsonl(&bytes)
}

/// Parses JSONL history text. Blank lines are skipped; a torn last line is reported in
/// [`History::torn_tail`].
pub fn parse_jsonl(bytes: &[u8]) -> Result<History, ReadError> {
    let mut lines: Vec<(usize, &[u8])> = Vec::with_capacity(bytes.len() / 100 + 1);
    let mut start = 0;
    for (n, end) in memchr::memchr_iter(b'\n', bytes).enumerate() {
        lines.push((n + 1, &bytes[start..end]));
        start = end + 1;
    }
    let tail = &bytes[start..];
    let tail_line = lines.len() + 1;

    let parsed: Vec<Result<Option<Event>, ReadError>> = lines
        .par_iter()
        .with_min_len(4096)
        .map(|&(line, text)| parse_line(line, text))
        .collect();
    let mut events = Vec::with_capacity(parsed.len());
    for r in parsed {
        if let Some(e) = r? {
            events.push(e);
        }
    }
    let mut torn_tail = None;
    match parse_line(tail_line, tail) {
        Ok(Some(e)) => events.push(e),
        Ok(None) => {}
        Err(_) => {
            torn_tail = Some(TornTail {
                line: tail_line,
                bytes: tail.len(),
            })
        }
    }
    Ok(History { events, torn_tail })
}

fn parse_line(line: usize, text: &[u8]) -> Result<Option<Event>, ReadError> {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(text)
        .map(Some)
        .map_err(|e| ReadError::Malformed {
            line,
            message: e.to_string(),
        })
}

/// Writes a whole history at once (for tests, imports and exports).
pub fn write_jsonl<W: Write>(mut out: W, events: &[Event]) -> io::Result<()> {
    for e in events {
        serde_json::to_writer(&mut out, e).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventType, Process, Transfer, Value, F};

    fn transfer_event(p: u64, kind: EventType, id: u64) -> Event {
        Event {
            index: 0,
            time_ns: id * 7,
            process: Process::Client(p),
            kind,
            f: F::Transfer,
            value: Value::Transfer(Transfer {
                id,
                from: 1,
                to: 2,
                amount: 3,
            }),
            error: None,
        }
    }

    #[test]
    fn writer_numbers_events_and_reader_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let w = HistoryWriter::create(&path).unwrap();
        let r = w.recorder();
        for id in 0..1000 {
            r.record(transfer_event(id % 5, EventType::Invoke, id))
                .unwrap();
        }
        r.sync().unwrap();
        drop(r);
        let stats = w.finish().unwrap();
        assert_eq!(stats.events, 1000);
        let h = read_jsonl(&path).unwrap();
        assert_eq!(h.events.len(), 1000);
        assert!(h.torn_tail.is_none());
        for (i, e) in h.events.iter().enumerate() {
            assert_eq!(e.index, i as u64);
            assert_eq!(e.value.as_transfer().unwrap().id, i as u64);
        }
    }

    #[test]
    fn writer_flushes_without_being_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let w = HistoryWriter::create(&path).unwrap();
        let r = w.recorder();
        r.record(transfer_event(1, EventType::Invoke, 1)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&path).unwrap().len() == 0 {
            assert!(Instant::now() < deadline, "event never reached the file");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(r);
        w.finish().unwrap();
    }

    #[test]
    fn torn_last_line_is_reported_not_fatal() {
        let mut text = Vec::new();
        write_jsonl(&mut text, &[transfer_event(1, EventType::Invoke, 1)]).unwrap();
        let whole = text.clone();
        write_jsonl(&mut text, &[transfer_event(1, EventType::Ok, 1)]).unwrap();
        let cut = whole.len() + 20;
        let h = parse_jsonl(&text[..cut]).unwrap();
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.torn_tail, Some(TornTail { line: 2, bytes: 20 }));
    }

    #[test]
    fn malformed_line_names_its_number() {
        let text = b"\n{\"index\":0}\n";
        match parse_jsonl(text) {
            Err(ReadError::Malformed { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a malformed-line error, got {other:?}"),
        }
    }

    #[test]
    fn last_line_without_newline_is_accepted_when_whole() {
        let mut text = Vec::new();
        write_jsonl(&mut text, &[transfer_event(1, EventType::Invoke, 1)]).unwrap();
        text.pop();
        let h = parse_jsonl(&text).unwrap();
        assert_eq!(h.events.len(), 1);
        assert!(h.torn_tail.is_none());
    }
}
