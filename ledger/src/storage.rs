//! Durable Raft state of one replica: the current term and vote (`hard-state.json`), the latest
//! snapshot of the state machine (`snapshot-INDEX.json`) and the log after it (`log.jsonl`), fsynced
//! before any message or reply that depends on them leaves the node.
//!
//! Raft's safety argument (figure 2, "persistent state on all servers") needs term, vote and log on
//! stable storage before a node answers an RPC; that is what makes a SIGKILL + restart lose nothing
//! that was acknowledged. The log is append-only JSON lines, one `{"i":index,"e":entry}` per entry. A
//! line whose index is not past the end means "the log was cut back here, then this entry appended"
//! — exactly the one way a Raft follower rewrites its log — so no separate truncation record is
//! needed. A torn last line (a crash mid-write, never acknowledged because the fsync had not returned)
//! is cut off on open.
//!
//! Compaction (Raft §7) rewrites the log instead of growing it forever: the snapshot is written to a
//! file of its own (temporary name, fsync, rename, fsync the directory), then a new log whose first
//! line names that snapshot — `{"snapshot":{"index":N,"term":T}}` — and holds only the entries after
//! N replaces the old one the same way. The log's rename is the commit point: a crash before it
//! leaves the old log naming the old snapshot (whose file is only removed after the rename), a crash
//! after it the new pair. Snapshot files no log names are removed on open.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::wire::{Entry, NodeId};

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("failed to use {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt raft log {path} at line {line}: {why}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        why: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: u64,
    pub vote: Option<NodeId>,
}

#[derive(Serialize, Deserialize)]
struct LogLine {
    i: u64,
    e: Entry,
}

/// Where a snapshot ends: the index and term of the last entry it covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub index: u64,
    pub term: u64,
}

/// The first line of a compacted log.
#[derive(Serialize, Deserialize)]
struct LogHeader {
    snapshot: SnapshotMeta,
}

/// The state machine after the entries up to `meta.index`, as the state machine serialized it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: String,
}

/// What a node finds on disk when it starts: `entries` are the log after the snapshot (from index
/// `snapshot.meta.index + 1` on; from 1 without a snapshot).
#[derive(Debug, Default)]
pub struct Recovered {
    pub hard: HardState,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

pub struct Storage {
    dir: PathBuf,
    log_path: PathBuf,
    log: BufWriter<File>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Storage {
    /// Opens (creating if needed) the state in `dir` and reads back what a previous run left.
    pub fn open(dir: &Path) -> Result<(Storage, Recovered), StorageError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let hard_path = dir.join("hard-state.json");
        let hard = match fs::read(&hard_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
                path: hard_path.clone(),
                line: 1,
                why: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HardState::default(),
            Err(e) => return Err(io(&hard_path)(e)),
        };
        let log_path = dir.join("log.jsonl");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let (meta, entries, good_len) = read_log(&log_path, &file)?;
        let file_len = file.metadata().map_err(io(&log_path))?.len();
        if good_len < file_len {
            // A torn tail: it was never fsynced as a whole, so never acknowledged. Cut it off so new
            // lines start on a clean line.
            file.set_len(good_len).map_err(io(&log_path))?;
            file.sync_all().map_err(io(&log_path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io(&log_path))?;
        let snapshot = match meta {
            None => None,
            Some(meta) => {
                let path = snapshot_path(dir, meta.index);
                let data = fs::read_to_string(&path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => StorageError::Corrupt {
                        path: log_path.clone(),
                        line: 1,
                        why: format!("it names a snapshot {} that is missing", path.display()),
                    },
                    _ => io(&path)(e),
                })?;
                Some(Snapshot { meta, data })
            }
        };
        remove_other_snapshots(dir, meta.map(|m| m.index))?;
        let storage = Storage {
            dir: dir.to_path_buf(),
            log_path,
            log: BufWriter::new(file),
        };
        Ok((
            storage,
            Recovered {
                hard,
                snapshot,
                entries,
            },
        ))
    }

    /// Replaces the log with `snapshot` and the entries after it (`tail`, from index
    /// `snapshot.meta.index + 1` on), durably: see the module documentation for the order that
    /// makes a crash at any point leave one consistent pair.
    pub fn compact(&mut self, snapshot: &Snapshot, tail: &[Entry]) -> Result<(), StorageError> {
        self.sync()?;
        let index = snapshot.meta.index;
        let snap_path = snapshot_path(&self.dir, index);
        write_durably(&self.dir, &snap_path, |w| {
            w.write_all(snapshot.data.as_bytes())
        })?;
        write_durably(&self.dir, &self.log_path, |w| {
            let header = LogHeader {
                snapshot: snapshot.meta,
            };
            serde_json::to_writer(&mut *w, &header)?;
            w.write_all(b"\n")?;
            for (k, e) in tail.iter().enumerate() {
                let line = LogLine {
                    i: index + 1 + k as u64,
                    e: e.clone(),
                };
                serde_json::to_writer(&mut *w, &line)?;
                w.write_all(b"\n")?;
            }
            Ok(())
        })?;
        let file = OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .map_err(io(&self.log_path))?;
        self.log = BufWriter::new(file);
        remove_other_snapshots(&self.dir, Some(index))
    }

    /// Writes term and vote durably (write a temporary file, fsync, rename, fsync the directory).
    pub fn save_hard_state(&mut self, hard: &HardState) -> Result<(), StorageError> {
        let tmp = self.dir.join("hard-state.json.tmp");
        let path = self.dir.join("hard-state.json");
        let bytes = serde_json::to_vec(hard).expect("a hard state always serializes");
        {
            let mut f = File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&bytes).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))
    }

    /// Buffers `entries` as the log from `first_index` on (cutting back anything at or past it).
    /// Durable only after [`Storage::sync`].
    pub fn append(&mut self, first_index: u64, entries: &[Entry]) -> Result<(), StorageError> {
        for (k, e) in entries.iter().enumerate() {
            let line = LogLine {
                i: first_index + k as u64,
                e: e.clone(),
            };
            serde_json::to_writer(&mut self.log, &line).map_err(|e| StorageError::Io {
                path: self.log_path.clone(),
                source: e.into(),
            })?;
            self.log.write_all(b"\n").map_err(io(&self.log_path))?;
        }
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.log.flush().map_err(io(&self.log_path))?;
        self.log.get_ref().sync_data().map_err(io(&self.log_path))
    }
}

fn snapshot_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("snapshot-{index}.json"))
}

/// Writes `path` whole or not at all: a temporary file beside it, fsync, rename, fsync the directory.
fn write_durably(
    dir: &Path,
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), StorageError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = File::create(&tmp).map_err(io(&tmp))?;
    let mut w = BufWriter::new(file);
    write(&mut w).map_err(io(&tmp))?;
    let file = w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io(path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Removes every snapshot file but the one of `keep` (and any temporary file a crash left).
fn remove_other_snapshots(dir: &Path, keep: Option<u64>) -> Result<(), StorageError> {
    let kept = keep.map(|i| format!("snapshot-{i}.json"));
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = name.starts_with("snapshot-") && Some(name) != kept.as_deref();
        if stale || name == "log.jsonl.tmp" {
            let path = entry.path();
            fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Replays the log file; returns the snapshot its header names (if any), the entries after it and
/// the byte length of the well-formed prefix.
fn read_log(
    path: &Path,
    file: &File,
) -> Result<(Option<SnapshotMeta>, Vec<Entry>, u64), StorageError> {
    let mut reader = BufReader::new(file.try_clone().map_err(io(path))?);
    reader.seek(SeekFrom::Start(0)).map_err(io(path))?;
    let mut meta: Option<SnapshotMeta> = None;
    let mut entries: Vec<Entry> = Vec::new();
    let mut good_len = 0u64;
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let complete = buf.last() == Some(&b'\n');
        if line_no == 1 && complete {
            if let Ok(h) = serde_json::from_slice::<LogHeader>(&buf) {
                meta = Some(h.snapshot);
                good_len += n as u64;
                continue;
            }
        }
        let parsed = serde_json::from_slice::<LogLine>(&buf);
        let line = match (parsed, complete) {
            (Ok(l), true) => l,
            // Only the last line can be torn; anything after it would be a real corruption.
            (_, false) => break,
            (Err(e), true) => {
                return Err(StorageError::Corrupt {
                    path: path.to_path_buf(),
                    line: line_no,
                    why: e.to_string(),
                })
            }
        };
        // Entries are numbered on from the snapshot; none may reach back into it.
        let offset = meta.map_or(0, |m| m.index);
        if line.i <= offset || line.i > offset + entries.len() as u64 + 1 {
            return Err(StorageError::Corrupt {
                path: path.to_path_buf(),
                line: line_no,
                why: format!(
                    "index {} after {} entries from index {}",
                    line.i,
                    entries.len(),
                    offset + 1
                ),
            });
        }
        entries.truncate((line.i - offset) as usize - 1);
        entries.push(line.e);
        good_len += n as u64;
    }
    Ok((meta, entries, good_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Command;

    fn e(term: u64) -> Entry {
        Entry {
            term,
            cmd: Command::Noop,
        }
    }

    #[test]
    fn log_and_hard_state_survive_reopen_with_rewrites_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, r) = Storage::open(dir.path()).unwrap();
            assert!(r.entries.is_empty());
            s.append(1, &[e(1), e(1), e(1)]).unwrap();
            // A follower's rewrite: index 2 onward replaced by term 2.
            s.append(2, &[e(2)]).unwrap();
            s.sync().unwrap();
            s.save_hard_state(&HardState {
                term: 2,
                vote: Some("n2".into()),
            })
            .unwrap();
        }
        // A crash in the middle of writing the next line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("log.jsonl"))
            .unwrap();
        f.write_all(br#"{"i":3,"e":{"te"#).unwrap();
        drop(f);
        let (mut s, r) = Storage::open(dir.path()).unwrap();
        assert_eq!(r.entries, vec![e(1), e(2)]);
        assert_eq!(r.hard.term, 2);
        assert_eq!(r.hard.vote.as_deref(), Some("n2"));
        s.append(3, &[e(3)]).unwrap();
        s.sync().unwrap();
        drop(s);
        let (_, r) = Storage::open(dir.path()).unwrap();
        assert_eq!(r.entries, vec![e(1), e(2), e(3)]);
    }

    #[test]
    fn a_gap_in_the_log_is_corruption_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("log.jsonl"),
            "{\"i\":5,\"e\":{\"term\":1,\"cmd\":{\"c\":\"noop\"}}}\n",
        )
        .unwrap();
        assert!(matches!(
            Storage::open(dir.path()),
            Err(StorageError::Corrupt { .. })
        ));
    }

    fn snap(index: u64, term: u64, data: &str) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta { index, term },
            data: data.into(),
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_compacted_log_reopens_as_its_snapshot_and_the_entries_after_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Storage::open(dir.path()).unwrap();
            s.append(1, &[e(1), e(1), e(2), e(2)]).unwrap();
            s.sync().unwrap();
            s.compact(&snap(2, 1, "first"), &[e(2), e(2)]).unwrap();
            // Appends go on at absolute indexes, a rewrite included.
            s.append(4, &[e(3), e(3)]).unwrap();
            s.sync().unwrap();
            s.compact(&snap(4, 3, "second"), &[e(3)]).unwrap();
            s.append(6, &[e(4)]).unwrap();
            s.sync().unwrap();
        }
        let (_, r) = Storage::open(dir.path()).unwrap();
        assert_eq!(r.snapshot, Some(snap(4, 3, "second")));
        assert_eq!(r.entries, vec![e(3), e(4)]);
        // The first snapshot went with the log that named it.
        assert_eq!(files(dir.path()), ["log.jsonl", "snapshot-4.json"]);
    }

    /// A crash at each point of a compaction leaves one consistent pair: the log's rename decides.
    #[test]
    fn a_crash_anywhere_in_a_compaction_leaves_the_old_or_the_new_state() {
        let dir = tempfile::tempdir().unwrap();
        let old = || {
            let (mut s, _) = Storage::open(dir.path()).unwrap();
            s.append(1, &[e(1), e(1), e(1)]).unwrap();
            s.sync().unwrap();
            s.compact(&snap(1, 1, "old"), &[e(1), e(1)]).unwrap();
        };
        old();
        let log = dir.path().join("log.jsonl");
        let old_log = fs::read(&log).unwrap();
        // 1. The new snapshot's temporary file half written.
        fs::write(dir.path().join("snapshot-3.json.tmp"), "ne").unwrap();
        // 2. The new snapshot renamed into place, the new log half written.
        fs::write(dir.path().join("snapshot-3.json"), "new").unwrap();
        fs::write(dir.path().join("log.jsonl.tmp"), r#"{"snapshot":{"ind"#).unwrap();
        let (_, r) = Storage::open(dir.path()).unwrap();
        assert_eq!(r.snapshot, Some(snap(1, 1, "old")));
        assert_eq!(r.entries, vec![e(1), e(1)]);
        assert_eq!(files(dir.path()), ["log.jsonl", "snapshot-1.json"]);
        assert_eq!(fs::read(&log).unwrap(), old_log);
        // 3. After the log's rename, before the old snapshot is removed: the new pair.
        fs::write(dir.path().join("snapshot-3.json"), "new").unwrap();
        fs::write(&log, "{\"snapshot\":{\"index\":3,\"term\":1}}\n").unwrap();
        let (_, r) = Storage::open(dir.path()).unwrap();
        assert_eq!(r.snapshot, Some(snap(3, 1, "new")));
        assert!(r.entries.is_empty());
        assert_eq!(files(dir.path()), ["log.jsonl", "snapshot-3.json"]);
    }

    #[test]
    fn a_log_naming_a_missing_snapshot_or_reaching_into_it_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.jsonl");
        fs::write(&log, "{\"snapshot\":{\"index\":3,\"term\":1}}\n").unwrap();
        let missing = Storage::open(dir.path()).err().expect("no snapshot file");
        assert!(missing.to_string().contains("snapshot-3.json"), "{missing}");
        fs::write(dir.path().join("snapshot-3.json"), "x").unwrap();
        let entry = "{\"i\":3,\"e\":{\"term\":1,\"cmd\":{\"c\":\"noop\"}}}\n";
        fs::write(
            &log,
            format!("{{\"snapshot\":{{\"index\":3,\"term\":1}}}}\n{entry}"),
        )
        .unwrap();
        assert!(matches!(
            Storage::open(dir.path()),
            Err(StorageError::Corrupt { line: 2, .. })
        ));
    }
}
