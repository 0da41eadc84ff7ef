//! The durable history file: one JSON event per line, plain (`history.jsonl`) or zstd-compressed
//! (`history.jsonl.zst`), and the hash chain beside it.
//!
//! Writing happens off the hot path: client workers hand events to a [`Recorder`] (a bounded channel)
//! and a dedicated thread numbers and serializes them; a second one chains each line (see
//! [`crate::chain`]), compresses it if asked and writes it. The history is flushed at least every
//! [`FLUSH_INTERVAL`] and fsynced when asked (at phase boundaries) and at the end. The event index is the order in which events reach the channel, which is sound for real-time
//! order: if the history shows a completion before an invocation, the operation really had returned
//! before the other began.
//!
//! A compressed history is one streaming zstd frame whose every flush ends a block, so a reader of a
//! file cut by a crash decodes everything up to the last flushed block, exactly as a plain file
//! holds everything up to its last write. A fast run writes hundreds of bytes of JSON per operation
//! and zstd at level [`ZSTD_LEVEL`] keeps a few tens of them; the level is zstd's fastest that still
//! compresses these repetitive lines well (measured in docs/benchmarks.md).
//!
//! Reading maps a plain file (or decompresses a compressed one, recognised by zstd's magic number,
//! whatever its name), splits it into lines and parses them in parallel. A last line without its
//! newline that does not parse is a torn tail — the writer was killed mid-write — and is reported,
//! not fatal; so is a compressed stream that ends inside its frame.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use thiserror::Error;

use crate::chain::{Chain, SidecarWriter, MAGIC};
use crate::event::Event;
use crate::history::{History, TornTail};

/// The longest time an event may sit in the writer's buffer before it reaches the file.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How many events may wait in the channel before workers are slowed down (back-pressure, never loss).
pub const CHANNEL_CAPACITY: usize = 65_536;
/// The zstd level of compressed histories: level 1 both compresses verity's lines best among the
/// fast levels and costs the least CPU (docs/benchmarks.md).
pub const ZSTD_LEVEL: i32 = 1;
/// Under a steady stream of events the writer looks at the clock once per this many events.
const CLOCK_EVERY_EVENTS: u64 = 1024;
/// The writer hands lines to the output thread in chunks of about this many bytes...
const CHUNK_BYTES: usize = 256 << 10;
/// ...and at most this many chunks wait between the two (back-pressure again, bounded memory).
const STAGES_MAX: usize = 16;

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
    /// Bytes of JSON text (before compression).
    pub bytes: u64,
    /// The hash chain's final head, when the history is chained.
    pub chain: Option<Chain>,
}

/// How the history is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterOptions {
    /// Compress with streaming zstd at [`ZSTD_LEVEL`].
    pub compress: bool,
    /// Where the hash chain's sidecar goes; `None` writes no chain.
    pub chain: Option<PathBuf>,
}

/// Owns the writer thread. Drop every [`Recorder`] and call [`HistoryWriter::finish`] to end it.
pub struct HistoryWriter {
    recorder: Option<Recorder>,
    handle: JoinHandle<io::Result<WriterStats>>,
}

impl HistoryWriter {
    /// Creates (truncates) `path` and starts the writer thread: plain JSONL, no chain.
    pub fn create(path: &Path) -> io::Result<HistoryWriter> {
        HistoryWriter::create_with(path, &WriterOptions::default())
    }

    /// Creates (truncates) `path`, and the chain's sidecar if asked, and starts the writer thread.
    pub fn create_with(path: &Path, options: &WriterOptions) -> io::Result<HistoryWriter> {
        let file = File::create(path)?;
        let sink = if options.compress {
            // No buffer in front of the encoder: the lines come in chunks of whole lines already, and
            // the encoder keeps its own window.
            Sink::Zstd(zstd::stream::write::Encoder::new(file, ZSTD_LEVEL)?)
        } else {
            Sink::Plain(BufWriter::with_capacity(1 << 20, file))
        };
        let sidecar = match &options.chain {
            Some(p) => {
                let mut f = File::create(p)?;
                f.write_all(MAGIC)?;
                Some((f, SidecarWriter::default()))
            }
            None => None,
        };
        let (tx, rx) = mpsc::sync_channel::<Msg>(CHANNEL_CAPACITY);
        let (out, stages) = mpsc::sync_channel::<Stage>(STAGES_MAX);
        // Written chunks come back to be filled again: fresh 256 KiB buffers at a million lines a
        // second would mean the kernel zeroing new pages for every one of them.
        let (recycle, spare) = mpsc::sync_channel::<Vec<u8>>(STAGES_MAX + 1);
        let output = std::thread::Builder::new()
            .name("history-output".into())
            .spawn(move || {
                Output {
                    sink,
                    sidecar,
                    recycle,
                }
                .run(stages)
            })?;
        let handle = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || {
                Writer {
                    out,
                    spare,
                    chunk: Vec::with_capacity(CHUNK_BYTES + 4096),
                    stats: WriterStats::default(),
                }
                .run(rx, output)
            })?;
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

/// Where the lines go: the file, through zstd or not.
enum Sink {
    Plain(BufWriter<File>),
    Zstd(zstd::stream::write::Encoder<'static, File>),
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Zstd(w) => w.write_all(bytes),
        }
    }

    /// Hands everything to the file; a compressed stream ends its current block, so that a reader
    /// decodes up to here.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }

    fn file(&self) -> &File {
        match self {
            Sink::Plain(w) => w.get_ref(),
            Sink::Zstd(w) => w.get_ref(),
        }
    }

    /// Flushes, ends the compressed frame, and fsyncs.
    fn finish(self) -> io::Result<()> {
        let file = match self {
            Sink::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
            Sink::Zstd(w) => w.finish()?,
        };
        file.sync_all()
    }
}

/// What the writer thread hands the output thread.
enum Stage {
    /// Whole lines, each ending in its newline.
    Lines(Vec<u8>),
    /// A flush point: the lines so far reach the file, then the chain's block that covers them.
    Flush,
    /// A flush point, then fsync of both files, then the answer.
    Sync(SyncSender<io::Result<()>>),
}

/// The writer thread: numbers and serializes events into chunks of whole lines. Hashing,
/// compressing and writing happen on the output thread, so that at `--rate 0` (where one thread
/// doing all of it is the harness's bottleneck) the two halves run on two cores.
struct Writer {
    out: SyncSender<Stage>,
    /// Emptied chunks returned by the output thread.
    spare: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    stats: WriterStats,
}

impl Writer {
    fn run(
        mut self,
        rx: mpsc::Receiver<Msg>,
        output: JoinHandle<io::Result<Option<Chain>>>,
    ) -> io::Result<WriterStats> {
        let serialized = self.serialize(rx);
        let Writer { out, mut stats, .. } = self;
        drop(out);
        // The output thread's own error, if it stopped, says more than "it stopped".
        let written = match output.join() {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("the history output thread panicked")),
        };
        match (serialized, written) {
            (_, Err(e)) | (Err(e), Ok(_)) => Err(e),
            (Ok(()), Ok(chain)) => {
                stats.chain = chain;
                Ok(stats)
            }
        }
    }

    fn serialize(&mut self, rx: mpsc::Receiver<Msg>) -> io::Result<()> {
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
                            self.stage_flush(Stage::Flush)?;
                            dirty_since = None;
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            match msg {
                Msg::Event(e) => {
                    self.write_event(e)?;
                    match dirty_since {
                        None => dirty_since = Some(Instant::now()),
                        // Under a steady stream the channel never times out: flush on the clock.
                        Some(t)
                            if self.stats.events.is_multiple_of(CLOCK_EVERY_EVENTS)
                                && t.elapsed() >= FLUSH_INTERVAL =>
                        {
                            self.stage_flush(Stage::Flush)?;
                            dirty_since = None;
                        }
                        Some(_) => {}
                    }
                }
                Msg::Sync(reply) => {
                    self.stage_flush(Stage::Sync(reply))?;
                    dirty_since = None;
                }
            }
        }
        self.stage_flush(Stage::Flush)
    }

    fn write_event(&mut self, mut e: Event) -> io::Result<()> {
        e.index = self.stats.events;
        let before = self.chunk.len();
        serde_json::to_writer(&mut self.chunk, &e).map_err(io::Error::other)?;
        self.chunk.push(b'\n');
        self.stats.events += 1;
        self.stats.bytes += (self.chunk.len() - before) as u64;
        if self.chunk.len() >= CHUNK_BYTES {
            self.send_chunk()?;
        }
        Ok(())
    }

    fn send_chunk(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK_BYTES + 4096));
        let full = std::mem::replace(&mut self.chunk, next);
        self.send(Stage::Lines(full))
    }

    /// The pending lines, then a flush point.
    fn stage_flush(&mut self, stage: Stage) -> io::Result<()> {
        self.send_chunk()?;
        self.send(stage)
    }

    fn send(&self, stage: Stage) -> io::Result<()> {
        self.out
            .send(stage)
            .map_err(|_| io::Error::other("the history output thread stopped"))
    }
}

/// The output thread: chains each line, and writes it (through zstd or not) to the file.
struct Output {
    sink: Sink,
    sidecar: Option<(File, SidecarWriter)>,
    recycle: SyncSender<Vec<u8>>,
}

impl Output {
    fn run(mut self, stages: mpsc::Receiver<Stage>) -> io::Result<Option<Chain>> {
        for stage in stages {
            match stage {
                Stage::Lines(mut lines) => {
                    if let Some((_, chain)) = &mut self.sidecar {
                        let mut start = 0;
                        for end in memchr::memchr_iter(b'\n', &lines) {
                            chain.push(&lines[start..=end]);
                            start = end + 1;
                        }
                        debug_assert_eq!(start, lines.len(), "chunks hold whole lines");
                    }
                    self.sink.write_all(&lines)?;
                    lines.clear();
                    // A full pool means the writer has spares enough: this one is dropped.
                    let _ = self.recycle.try_send(lines);
                    if self.sidecar.as_ref().is_some_and(|(_, c)| c.full()) {
                        self.flush_point()?;
                    }
                }
                Stage::Flush => self.flush_point()?,
                Stage::Sync(reply) => {
                    let r = self.flush_point().and_then(|_| self.sync_data());
                    let failed = r.is_err();
                    let _ = reply.send(r);
                    if failed {
                        return Err(io::Error::other("fsync of the history failed"));
                    }
                }
            }
        }
        self.flush_point()?;
        self.sink.finish()?;
        match self.sidecar {
            Some((file, chain)) => {
                file.sync_all()?;
                Ok(Some(chain.chain()))
            }
            None => Ok(None),
        }
    }

    /// The history's bytes reach the file first, then the chain's block that covers them: a crash in
    /// between leaves lines the chain does not cover yet, never a chain ahead of its lines.
    fn flush_point(&mut self) -> io::Result<()> {
        self.sink.flush()?;
        if let Some((file, chain)) = &mut self.sidecar {
            chain.checkpoint(file)?;
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sink.file().sync_data()?;
        if let Some((file, _)) = &self.sidecar {
            file.sync_data()?;
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("line {line}: malformed event: {message}")]
    Malformed { line: usize, message: String },
}

/// zstd's frame magic number, as it begins a compressed file.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The uncompressed text of a history file: mapped for a plain file, decompressed for a zstd one.
pub struct HistoryText {
    bytes: TextBytes,
    /// The file was compressed.
    pub compressed: bool,
    /// A compressed file that ends inside its frame (the writer was killed): the text holds what its
    /// complete blocks decode to.
    pub cut_short: bool,
    /// A compressed file whose data stops decoding (it was edited or damaged): why, and the text holds
    /// what decoded before. Only [`read_text_lenient`] returns such a text.
    pub corrupt: Option<String>,
}

enum TextBytes {
    Empty,
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for HistoryText {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.bytes {
            TextBytes::Empty => &[],
            TextBytes::Mapped(m) => m,
            TextBytes::Owned(v) => v,
        }
    }
}

/// Reads the text of a history file, plain or compressed (told apart by zstd's magic number, not by
/// the name). A plain file is memory-mapped rather than copied: a history can be gigabytes, and the
/// page cache already holds it. Compressed data that does not decode is an error.
pub fn read_text(path: &Path) -> Result<HistoryText, ReadError> {
    let text = read_text_lenient(path)?;
    match &text.corrupt {
        Some(why) => Err(ReadError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidData, why.clone()),
        }),
        None => Ok(text),
    }
}

/// As [`read_text`], but compressed data that stops decoding gives the text decoded before it, with
/// [`HistoryText::corrupt`] saying why (for `verity verify`, which names the first line lost).
pub fn read_text_lenient(path: &Path) -> Result<HistoryText, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut text = HistoryText {
        bytes: TextBytes::Empty,
        compressed: false,
        cut_short: false,
        corrupt: None,
    };
    if file.metadata().map_err(io)?.len() == 0 {
        return Ok(text);
    }
    // SAFETY: the map is read-only; a history being appended to while it is read shows at worst a
    // torn last line, which the parser reports.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    if !map.starts_with(&ZSTD_MAGIC) {
        text.bytes = TextBytes::Mapped(map);
        return Ok(text);
    }
    let decoded = decompress(&map).map_err(io)?;
    text.bytes = TextBytes::Owned(decoded.text);
    text.compressed = true;
    text.cut_short = !decoded.complete;
    text.corrupt = decoded.corrupt;
    Ok(text)
}

/// What a zstd stream decodes to.
pub struct Decoded {
    pub text: Vec<u8>,
    /// The stream ended at the end of a frame.
    pub complete: bool,
    /// The data stopped decoding: why (the text holds what decoded before).
    pub corrupt: Option<String>,
}

/// Decodes a zstd stream (one frame or several), tolerating a cut and keeping what decodes before
/// corrupt data.
pub fn decompress(src: &[u8]) -> io::Result<Decoded> {
    use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
    let mut decoder = Decoder::new()?;
    let mut input = InBuffer::around(src);
    let mut text = Vec::with_capacity(src.len().saturating_mul(6));
    let mut buf = vec![0u8; 1 << 20];
    let mut frame_left;
    loop {
        let before = input.pos();
        let mut out = OutBuffer::around(&mut buf[..]);
        let step = decoder.run(&mut input, &mut out);
        let written = out.pos();
        text.extend_from_slice(&buf[..written]);
        match step {
            Ok(left) => frame_left = left,
            Err(e) => {
                return Ok(Decoded {
                    text,
                    complete: false,
                    corrupt: Some(format!(
                        "corrupt zstd data near compressed byte {before}: {e}"
                    )),
                })
            }
        }
        // All input consumed and the output not filled: the decoder has given all it can.
        let drained = written < buf.len();
        if (input.pos() == src.len() && drained) || (input.pos() == before && written == 0) {
            break;
        }
    }
    Ok(Decoded {
        text,
        complete: frame_left == 0,
        corrupt: None,
    })
}

/// Parses the text of a history file; a compressed stream cut between lines is reported as a torn
/// tail of no bytes.
pub fn parse_text(text: &HistoryText) -> Result<History, ReadError> {
    let mut history = parse_jsonl(text)?;
    if text.cut_short && history.torn_tail.is_none() {
        // Nothing of a line is lost that the reader could see, but the stream was cut, and the
        // results say so.
        let line = memchr::memchr_iter(b'\n', text).count() + 1;
        history.torn_tail = Some(TornTail { line, bytes: 0 });
    }
    Ok(history)
}

/// Reads a history file, plain JSONL or zstd-compressed JSONL.
pub fn read_history(path: &Path) -> Result<History, ReadError> {
    parse_text(&read_text(path)?)
}

/// Reads a history file; the same as [`read_history`] (a compressed file is read too).
pub fn read_jsonl(path: &Path) -> Result<History, ReadError> {
    read_history(path)
}

/// Parses JSONL history text. Blank lines are skipped; a torn last line is reported in
/// [`History::torn_tail`].
pub fn parse_jsonl(bytes: &[u8]) -> Result<History, ReadError> {
    let mut lines: Vec<(usize, &[u8])> = Vec::with_capacity(bytes.len() / 100 + 1);
    let mut start = 0;
    for (n, end) in memchr::memchr_iter(b'\n', bytes).enumerate() {
        let text = &bytes[start..end];
        if !text.iter().all(u8::is_ascii_whitespace) {
            lines.push((n + 1, text));
        }
        start = end + 1;
    }
    let tail = &bytes[start..];
    let tail_line = memchr::memchr_iter(b'\n', bytes).count() + 1;

    // Parse straight into the final vector (no intermediate lists): a failed line leaves a placeholder
    // and raises the flag, and the first bad line is then found and reported.
    let failed = std::sync::atomic::AtomicBool::new(false);
    let mut events: Vec<Event> = Vec::with_capacity(lines.len() + 1);
    lines
        .par_iter()
        .with_min_len(4096)
        .map(|&(line, text)| match parse_line(line, text) {
            Ok(Some(e)) => e,
            _ => {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                Event::placeholder()
            }
        })
        .collect_into_vec(&mut events);
    if failed.into_inner() {
        let first = lines
            .iter()
            .find_map(|&(line, text)| parse_line(line, text).err());
        return Err(first.expect("a line failed to parse in parallel, so it fails again"));
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

/// How a streamed history file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamEnd {
    /// The file was compressed.
    pub compressed: bool,
    /// A compressed file that ends inside its frame (the writer was killed).
    pub cut_short: bool,
}

/// Size of the blocks of text a streamed history is handed over in.
const STREAM_BLOCK_BYTES: usize = 4 << 20;
/// Blocks decoded ahead of the consumer (bounded memory: about 16 MiB in flight).
const STREAM_BLOCKS_AHEAD: usize = 4;

/// Streams the text of a history file, plain or compressed, without ever holding all of it: a
/// thread reads (and decompresses) blocks while `lines` is called, in order, with runs of whole
/// lines, each ending in its newline. Returns how the file ended and the text after its last
/// newline (a last line without one, possibly torn), which `lines` is not given. For a history of
/// gigabytes this keeps memory to a few blocks where [`read_text`] holds the whole text (and the
/// page cache is not counted against the process, as a mapped file's pages are).
pub fn stream_lines<E>(
    path: &Path,
    mut lines: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<Result<(StreamEnd, Vec<u8>), E>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(STREAM_BLOCKS_AHEAD);
    let reader = std::thread::Builder::new()
        .name("history-stream".into())
        .spawn(move || read_blocks(&mut file, tx))
        .map_err(io)?;
    let mut carry: Vec<u8> = Vec::new();
    let mut failed: Option<E> = None;
    for block in rx.iter() {
        if failed.is_some() {
            continue;
        }
        let Some(last) = memchr::memrchr(b'\n', &block) else {
            carry.extend_from_slice(&block);
            continue;
        };
        let result = if carry.is_empty() {
            lines(&block[..=last])
        } else {
            // The line cut by the block boundary, then the block's own whole lines.
            let cut = memchr::memchr(b'\n', &block).expect("the block holds a newline");
            carry.extend_from_slice(&block[..=cut]);
            let r = lines(&carry);
            carry.clear();
            r.and_then(|()| match cut < last {
                true => lines(&block[cut + 1..=last]),
                false => Ok(()),
            })
        };
        if let Err(e) = result {
            failed = Some(e);
        }
        carry.extend_from_slice(&block[last + 1..]);
    }
    let end = match reader.join() {
        Ok(r) => r.map_err(io)?,
        Err(_) => return Err(io(io::Error::other("the history reader thread panicked"))),
    };
    Ok(match failed {
        Some(e) => Err(e),
        None => Ok((end, carry)),
    })
}

/// The reader thread of [`stream_lines`]: blocks of text, decompressed when the file begins with
/// zstd's magic number. A compressed stream cut short ends quietly (the caller reports it, as
/// [`read_text`] does); data that does not decode is an error.
fn read_blocks(file: &mut File, tx: SyncSender<Vec<u8>>) -> io::Result<StreamEnd> {
    use std::io::Read;
    use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
    let mut input = vec![0u8; 1 << 20];
    let mut filled = 0;
    while filled < ZSTD_MAGIC.len() {
        let n = file.read(&mut input[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let send = |block: Vec<u8>| tx.send(block).map_err(|_| io::Error::other("stopped"));
    if !input[..filled].starts_with(&ZSTD_MAGIC) {
        // Plain text: the blocks as they are read.
        let mut block = Vec::with_capacity(STREAM_BLOCK_BYTES);
        block.extend_from_slice(&input[..filled]);
        loop {
            let at = block.len();
            block.resize(STREAM_BLOCK_BYTES.max(at + 1), 0);
            let n = file.read(&mut block[at..])?;
            block.truncate(at + n);
            if n == 0 || block.len() >= STREAM_BLOCK_BYTES {
                let done = n == 0;
                if !block.is_empty() {
                    let full =
                        std::mem::replace(&mut block, Vec::with_capacity(STREAM_BLOCK_BYTES));
                    if send(full).is_err() {
                        return Ok(StreamEnd::default());
                    }
                }
                if done {
                    return Ok(StreamEnd::default());
                }
            }
        }
    }
    let mut decoder = Decoder::new()?;
    let mut frame_left = 1;
    let mut compressed_at: u64 = 0;
    let mut out = vec![0u8; STREAM_BLOCK_BYTES];
    loop {
        if filled == 0 {
            break;
        }
        let mut src = InBuffer::around(&input[..filled]);
        while src.pos() < filled {
            let before = src.pos();
            let mut dst = OutBuffer::around(&mut out[..]);
            frame_left = decoder.run(&mut src, &mut dst).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "corrupt zstd data near compressed byte {}: {e}",
                        compressed_at + before as u64
                    ),
                )
            })?;
            let written = dst.pos();
            if written > 0 && send(out[..written].to_vec()).is_err() {
                return Ok(StreamEnd::default());
            }
            if src.pos() == before && written == 0 {
                break;
            }
        }
        // Flush what the decoder still holds for this input.
        loop {
            let mut dst = OutBuffer::around(&mut out[..]);
            let mut empty = InBuffer::around(&[]);
            // After a frame's end, a run without input answers for the next frame's header: the
            // state that counts is that of the last run that consumed input or produced output.
            let hint = decoder.run(&mut empty, &mut dst).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupt zstd data: {e}"),
                )
            })?;
            let written = dst.pos();
            if written == 0 {
                break;
            }
            frame_left = hint;
            if send(out[..written].to_vec()).is_err() {
                return Ok(StreamEnd::default());
            }
        }
        compressed_at += filled as u64;
        filled = file.read(&mut input)?;
    }
    Ok(StreamEnd {
        compressed: true,
        cut_short: frame_left != 0,
    })
}

/// Parses one line of a history the way [`parse_jsonl`] does: `None` for a blank line.
pub fn parse_event_line(line: usize, text: &[u8]) -> Result<Option<Event>, ReadError> {
    parse_line(line, text)
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

    fn write_with(path: &Path, options: &WriterOptions, events: u64, sync_every: u64) -> Vec<u64> {
        let w = HistoryWriter::create_with(path, options).unwrap();
        let r = w.recorder();
        let mut synced_sizes = Vec::new();
        for id in 0..events {
            r.record(transfer_event(id % 5, EventType::Invoke, id))
                .unwrap();
            if (id + 1) % sync_every == 0 {
                r.sync().unwrap();
                synced_sizes.push(std::fs::metadata(path).unwrap().len());
            }
        }
        drop(r);
        let stats = w.finish().unwrap();
        assert_eq!(stats.events, events);
        synced_sizes
    }

    #[test]
    fn compressed_and_plain_histories_read_alike_and_share_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut chains = Vec::new();
        let mut histories = Vec::new();
        for compress in [false, true] {
            let path = dir.path().join(format!("h{compress}"));
            let chain = dir.path().join(format!("c{compress}"));
            let options = WriterOptions {
                compress,
                chain: Some(chain.clone()),
            };
            write_with(&path, &options, 5000, 700);
            let text = read_text(&path).unwrap();
            assert_eq!(text.compressed, compress);
            assert!(!text.cut_short);
            let sidecar = crate::chain::parse_sidecar(&std::fs::read(&chain).unwrap()).unwrap();
            assert_eq!(
                crate::chain::check(&text, &sidecar),
                crate::chain::ChainCheck::Intact(crate::chain::chain_of(&text))
            );
            assert_eq!(sidecar.last().lines, 5000);
            chains.push(sidecar.last());
            histories.push(read_history(&path).unwrap());
        }
        assert_eq!(chains[0], chains[1]);
        assert_eq!(histories[0], histories[1]);
        assert_eq!(histories[0].events.len(), 5000);
    }

    #[test]
    fn a_compressed_history_cut_anywhere_reads_up_to_its_last_flushed_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl.zst");
        let options = WriterOptions {
            compress: true,
            chain: None,
        };
        let sync_every = 250;
        let sizes = write_with(&path, &options, 2000, sync_every);
        let whole = std::fs::read(&path).unwrap();
        let all = read_history(&path).unwrap();
        // Every cut, at a seeded sample of bytes: a prefix of the events, at least those flushed
        // before the cut, and never an error.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let cut = (x % whole.len() as u64) as usize;
            let cut_path = dir.path().join("cut.jsonl.zst");
            std::fs::write(&cut_path, &whole[..cut]).unwrap();
            let h = read_history(&cut_path).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            let flushed = sizes.iter().filter(|&&s| s <= cut as u64).count() as u64 * sync_every;
            assert!(
                h.events.len() as u64 >= flushed,
                "cut at {cut}: {} events, {flushed} were flushed before it",
                h.events.len()
            );
            assert_eq!(h.events[..], all.events[..h.events.len()]);
            if cut >= 4 {
                assert!(h.torn_tail.is_some(), "cut at {cut} is reported");
            }
        }
    }

    #[test]
    fn corrupt_compressed_data_is_an_error_not_a_panic() {
        let mut bytes = ZSTD_MAGIC.to_vec();
        bytes.extend_from_slice(&[0xff; 64]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.zst");
        std::fs::write(&path, bytes).unwrap();
        let e = read_history(&path).unwrap_err();
        assert!(e.to_string().contains("corrupt zstd data"), "{e}");
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
