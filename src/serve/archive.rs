//! A whole run directory as one `.tar.zst`, to take a run elsewhere (`tar --zstd -xf` inside another
//! store recreates it: the archive's paths are the run's id).
//!
//! The walk never follows a symlink. A link whose target stays inside the run is archived as a link;
//! one that leads out of the run, or nowhere, is left out, so no byte from outside the run reaches
//! the archive. Sockets, FIFOs and devices are left out as well (reading a FIFO would block).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context};

use super::safe_path::resolve_inside;

/// The archive is built in memory; a run with more file bytes than this is refused.
pub const INPUT_BYTES_MAX: u64 = 2 << 30;
/// At most this many entries are archived.
pub const ENTRIES_MAX: usize = 200_000;
/// Directories deeper than this below the run are not descended into.
const DEPTH_MAX: usize = 32;
/// zstd's default level: fast, and histories still shrink about tenfold.
const ZSTD_LEVEL: i32 = 3;

/// Archives `run_dir` (canonical) under the relative path `prefix`, compressed.
pub fn tar_zst(run_dir: &Path, prefix: &Path) -> anyhow::Result<Vec<u8>> {
    let encoder = zstd::Encoder::new(Vec::new(), ZSTD_LEVEL).context("cannot start zstd")?;
    let mut walk = Walk {
        root: run_dir,
        builder: tar::Builder::new(encoder),
        bytes: 0,
        entries: 0,
    };
    walk.builder.follow_symlinks(false);
    walk.builder
        .append_dir(prefix, run_dir)
        .context("cannot archive the run directory")?;
    walk.dir(run_dir, prefix, 0)?;
    let encoder = walk.builder.into_inner().context("cannot finish the tar")?;
    encoder.finish().context("cannot finish zstd")
}

struct Walk<'a, W: Write> {
    root: &'a Path,
    builder: tar::Builder<W>,
    bytes: u64,
    entries: usize,
}

impl<W: Write> Walk<'_, W> {
    fn dir(&mut self, dir: &Path, name: &Path, depth: usize) -> anyhow::Result<()> {
        let mut children: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .collect::<io::Result<_>>()
            .with_context(|| format!("cannot read {}", dir.display()))?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            self.entries += 1;
            if self.entries > ENTRIES_MAX {
                bail!("the run has more than {ENTRIES_MAX} files: too many to archive");
            }
            let path = child.path();
            let entry_name = name.join(child.file_name());
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let kind = meta.file_type();
            if kind.is_dir() && depth < DEPTH_MAX {
                self.builder
                    .append_dir(&entry_name, &path)
                    .with_context(|| format!("cannot archive {}", path.display()))?;
                self.dir(&path, &entry_name, depth + 1)?;
            } else if kind.is_file() {
                self.file(&path, &entry_name, &meta)?;
            } else if kind.is_symlink() {
                self.symlink(&path, &entry_name)?;
            }
        }
        Ok(())
    }

    /// A regular file, opened once and checked to be the file that was listed (not a symlink
    /// swapped in since). A file that grows while it is archived (a running run's history) is cut
    /// at the size it had when listed; one that shrinks is padded with zeros.
    fn file(&mut self, path: &Path, name: &Path, listed: &fs::Metadata) -> anyhow::Result<()> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let opened = file.metadata()?;
        if !opened.is_file() || (opened.dev(), opened.ino()) != (listed.dev(), listed.ino()) {
            return Ok(());
        }
        self.bytes += listed.len();
        if self.bytes > INPUT_BYTES_MAX {
            bail!(
                "the run holds more than {} GiB: too large to archive here; copy its directory instead",
                INPUT_BYTES_MAX >> 30
            );
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata(listed);
        header.set_size(listed.len());
        let body = file
            .take(listed.len())
            .chain(io::repeat(0))
            .take(listed.len());
        self.builder
            .append_data(&mut header, name, body)
            .with_context(|| format!("cannot archive {}", path.display()))
    }

    /// A symlink is archived as a link only if what it points at stays inside the run.
    fn symlink(&mut self, path: &Path, name: &Path) -> anyhow::Result<()> {
        if resolve_inside(self.root, path).is_none() {
            return Ok(());
        }
        let target = fs::read_link(path)?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        self.builder
            .append_link(&mut header, name, &target)
            .with_context(|| format!("cannot archive the link {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        let decoded = zstd::decode_all(archive).unwrap();
        let mut tar = tar::Archive::new(&decoded[..]);
        tar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                (name, body)
            })
            .collect()
    }

    #[test]
    fn archives_the_run_and_nothing_outside_it() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "SECRET").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().canonicalize().unwrap();
        fs::write(run.join("history.jsonl"), "{}\n").unwrap();
        fs::create_dir(run.join("cluster")).unwrap();
        fs::write(run.join("cluster/n1.log"), "log").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), run.join("leak")).unwrap();
        std::os::unix::fs::symlink(outside.path(), run.join("leakdir")).unwrap();
        std::os::unix::fs::symlink("cluster/n1.log", run.join("n1.log")).unwrap();
        let archive = tar_zst(&run, Path::new("memory-bank/20261201T101010")).unwrap();
        let found = entries(&archive);
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "memory-bank/20261201T101010",
                "memory-bank/20261201T101010/cluster",
                "memory-bank/20261201T101010/cluster/n1.log",
                "memory-bank/20261201T101010/history.jsonl",
                "memory-bank/20261201T101010/n1.log",
            ]
        );
        assert_eq!(found[3].1, b"{}\n");
        assert!(found.iter().all(|(_, body)| body != b"SECRET"));
    }
}
