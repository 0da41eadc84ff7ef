//! Durable Raft state of one replica: the current term and vote (`hard-state.json`) and the log
//! (`log.jsonl`), fsynced before any message or reply that depends on them leaves the node.
//!
//! Raft's safety argument (figure 2, "persistent state on all servers") needs term, vote and log on
//! stable storage before a node answers an RPC; that is what makes a SIGKILL + restart lose nothing
//! that was acknowledged. The log is append-only JSON lines, one `{"i":index,"e":entry}` per entry. A
//! line whose index is not past the end means "the log was cut back here, then this entry appended"
//! — exactly the one way a Raft follower rewrites its log — so no separate truncation record is
//! needed. A torn last line (a crash mid-write, never acknowledged because the fsync had not returned)
//! is cut off on open.

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

/// What a node finds on disk when it starts.
#[derive(Debug, Default)]
pub struct Recovered {
    pub hard: HardState,
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
        let (entries, good_len) = read_log(&log_path, &file)?;
        let file_len = file.metadata().map_err(io(&log_path))?.len();
        if good_len < file_len {
            // A torn tail: it was never fsynced as a whole, so never acknowledged. Cut it off so new
            // lines start on a clean line.
            file.set_len(good_len).map_err(io(&log_path))?;
            file.sync_all().map_err(io(&log_path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io(&log_path))?;
        let storage = Storage {
            dir: dir.to_path_buf(),
            log_path,
            log: BufWriter::new(file),
        };
        Ok((storage, Recovered { hard, entries }))
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

/// Replays the log file; returns the entries and the byte length of the well-formed prefix.
fn read_log(path: &Path, file: &File) -> Result<(Vec<Entry>, u64), StorageError> {
    let mut reader = BufReader::new(file.try_clone().map_err(io(path))?);
    reader.seek(SeekFrom::Start(0)).map_err(io(path))?;
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
        if line.i == 0 || line.i > entries.len() as u64 + 1 {
            return Err(StorageError::Corrupt {
                path: path.to_path_buf(),
                line: line_no,
                why: format!("index {} after {} entries", line.i, entries.len()),
            });
        }
        entries.truncate(line.i as usize - 1);
        entries.push(line.e);
        good_len += n as u64;
    }
    Ok((entries, good_len))
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
}
