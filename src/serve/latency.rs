//! Latency quantiles per operation type, straight from a history file.
//!
//! The history is read line by line rather than through `verity_history::jsonl::read_jsonl`, which
//! maps and parses the whole file into events: here only four fields of each line matter, and a
//! run that is still being written (or was killed) may end in a torn line, which is skipped. A
//! compressed history (`history.jsonl.zst`, told by zstd's magic number) is decoded as it is read; a
//! stream cut by a crash ends where its last complete block does, like a torn line.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// At most this many latencies are held in memory (8 bytes each) for one history.
pub const SAMPLES_MAX: usize = 20_000_000;

/// Latency of one operation type: nearest-rank quantiles of its definite completions (`ok` and
/// `fail`). `info` completions are left out: they are mostly timeouts, so their latency measures the
/// client's timeout, not the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quantiles {
    pub count: u64,
    pub p50_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl Quantiles {
    /// The quantiles of `samples` (sorted in place); `None` if there are none.
    pub fn of(samples: &mut [u64]) -> Option<Quantiles> {
        samples.sort_unstable();
        let max_ns = *samples.last()?;
        Some(Quantiles {
            count: samples.len() as u64,
            p50_ns: nearest_rank(samples, 0.50),
            p95_ns: nearest_rank(samples, 0.95),
            p99_ns: nearest_rank(samples, 0.99),
            max_ns,
        })
    }

    /// The quantiles shown side by side, by name.
    pub fn named(&self) -> [(&'static str, u64); 3] {
        [
            ("p50", self.p50_ns),
            ("p95", self.p95_ns),
            ("p99", self.p99_ns),
        ]
    }
}

/// The smallest sample with at least `q` of all samples at or below it.
fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    debug_assert!(!sorted.is_empty() && (0.0..=1.0).contains(&q));
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The fields of a history line that latency needs; the value is skipped unparsed.
#[derive(Deserialize)]
struct Line<'a> {
    time_ns: u64,
    process: serde_json::Value,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    f: Cow<'a, str>,
}

/// Latency quantiles per operation type (`f`) of the client operations in a JSONL history: each
/// invocation is paired with the next completion of the same process. Nemesis and other
/// non-numeric processes are skipped. A malformed line is an error unless it is the last one (a
/// torn tail); so is a history with more than [`SAMPLES_MAX`] completions.
pub fn latency_quantiles(history: &Path) -> anyhow::Result<BTreeMap<String, Quantiles>> {
    let mut reader = open_lines(history)?;
    let mut pairing = Pairing::default();
    let mut line = Vec::new();
    let mut torn: Option<(u64, serde_json::Error)> = None;
    let mut number = 0u64;
    loop {
        line.clear();
        let read = match reader.read_until(b'\n', &mut line) {
            Ok(n) => n,
            // A compressed stream cut inside its frame: what came before it is all there is.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", history.display())),
        };
        if read == 0 {
            break;
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some((at, e)) = torn.take() {
            bail!("{}: malformed line {at}: {e}", history.display());
        }
        match serde_json::from_slice::<Line>(&line) {
            Ok(event) => pairing.push(&event)?,
            Err(e) => torn = Some((number, e)),
        }
    }
    Ok(pairing.finish())
}

/// The lines of a history file, decompressed as they are read when the file is zstd.
fn open_lines(history: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    let mut file =
        File::open(history).with_context(|| format!("cannot open {}", history.display()))?;
    let mut magic = [0u8; 4];
    let n = file
        .read(&mut magic)
        .with_context(|| format!("cannot read {}", history.display()))?;
    let file = std::io::Cursor::new(magic[..n].to_vec()).chain(file);
    if magic[..n] == verity_history::jsonl::ZSTD_MAGIC {
        let decoder = zstd::stream::read::Decoder::new(file)
            .with_context(|| format!("cannot decode {}", history.display()))?;
        Ok(Box::new(BufReader::with_capacity(1 << 16, decoder)))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

/// Open invocations per process and the latencies of finished ones per operation type.
#[derive(Default)]
struct Pairing {
    names: HashMap<String, usize>,
    samples: Vec<(String, Vec<u64>)>,
    open: HashMap<u64, (usize, u64)>,
    total: usize,
}

impl Pairing {
    fn push(&mut self, event: &Line) -> anyhow::Result<()> {
        let Some(process) = event.process.as_u64() else {
            return Ok(());
        };
        match event.kind.as_ref() {
            "invoke" => {
                let f = self.intern(&event.f);
                self.open.insert(process, (f, event.time_ns));
            }
            "ok" | "fail" => {
                if let Some((f, invoked_ns)) = self.open.remove(&process) {
                    if self.total >= SAMPLES_MAX {
                        bail!("more than {SAMPLES_MAX} completed operations: too many to rank");
                    }
                    self.total += 1;
                    self.samples[f]
                        .1
                        .push(event.time_ns.saturating_sub(invoked_ns));
                }
            }
            _ => {
                self.open.remove(&process);
            }
        }
        Ok(())
    }

    fn intern(&mut self, f: &str) -> usize {
        if let Some(&i) = self.names.get(f) {
            return i;
        }
        self.samples.push((f.to_string(), Vec::new()));
        self.names.insert(f.to_string(), self.samples.len() - 1);
        self.samples.len() - 1
    }

    fn finish(self) -> BTreeMap<String, Quantiles> {
        self.samples
            .into_iter()
            .filter_map(|(f, mut s)| Some((f, Quantiles::of(&mut s)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(lines: &[&str]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, lines.join("\n").as_bytes()).unwrap();
        file
    }

    #[test]
    fn nearest_rank_quantiles() {
        let mut s: Vec<u64> = (1..=100).rev().collect();
        let q = Quantiles::of(&mut s).unwrap();
        assert_eq!(
            (q.count, q.p50_ns, q.p95_ns, q.p99_ns, q.max_ns),
            (100, 50, 95, 99, 100)
        );
        let q = Quantiles::of(&mut [7]).unwrap();
        assert_eq!((q.p50_ns, q.p99_ns), (7, 7));
        assert_eq!(Quantiles::of(&mut []), None);
    }

    #[test]
    fn pairs_invocations_with_completions_per_process() {
        let h = history(&[
            r#"{"index":0,"time_ns":100,"process":0,"type":"invoke","f":"transfer","value":{"from":1}}"#,
            r#"{"index":1,"time_ns":150,"process":1,"type":"invoke","f":"read","value":null}"#,
            r#"{"index":2,"time_ns":300,"process":0,"type":"ok","f":"transfer","value":{"from":1}}"#,
            r#"{"index":3,"time_ns":160,"process":"nemesis","type":"info","f":"partition","value":"x"}"#,
            r#"{"index":4,"time_ns":400,"process":1,"type":"fail","f":"read","value":null}"#,
            r#"{"index":5,"time_ns":500,"process":0,"type":"invoke","f":"transfer","value":{}}"#,
            r#"{"index":6,"time_ns":9000,"process":0,"type":"info","f":"transfer","value":{}}"#,
            r#"{"index":7,"time_ns":9100,"process":2,"type":"invoke","f":"read","value":null}"#,
            "",
        ]);
        let q = latency_quantiles(h.path()).unwrap();
        assert_eq!(q.keys().collect::<Vec<_>>(), ["read", "transfer"]);
        assert_eq!((q["transfer"].count, q["transfer"].max_ns), (1, 200));
        assert_eq!((q["read"].count, q["read"].p50_ns), (1, 250));
    }

    #[test]
    fn a_compressed_history_gives_the_same_quantiles_even_when_cut() {
        let lines = [
            r#"{"index":0,"time_ns":100,"process":0,"type":"invoke","f":"read"}"#,
            r#"{"index":1,"time_ns":300,"process":0,"type":"ok","f":"read"}"#,
            "",
        ];
        let plain = history(&lines);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let text = lines.join("\n");
        let packed = zstd::encode_all(text.as_bytes(), 1).unwrap();
        std::io::Write::write_all(&mut file, &packed).unwrap();
        let q = latency_quantiles(file.path()).unwrap();
        assert_eq!(q, latency_quantiles(plain.path()).unwrap());
        assert_eq!(q["read"].p50_ns, 200);
        let mut cut = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut cut, &packed[..packed.len() - 3]).unwrap();
        assert!(latency_quantiles(cut.path()).is_ok());
    }

    #[test]
    fn a_torn_last_line_is_skipped_but_a_torn_middle_is_an_error() {
        let ok = r#"{"index":0,"time_ns":1,"process":0,"type":"invoke","f":"read"}"#;
        let done = r#"{"index":1,"time_ns":5,"process":0,"type":"ok","f":"read"}"#;
        let q = latency_quantiles(history(&[ok, done, r#"{"index":2,"ti"#]).path()).unwrap();
        assert_eq!(q["read"].count, 1);
        let e = latency_quantiles(history(&[ok, "{oops", done]).path()).unwrap_err();
        assert!(e.to_string().contains("malformed line 2"), "{e}");
        assert!(latency_quantiles(Path::new("/nonexistent/history.jsonl")).is_err());
    }
}
