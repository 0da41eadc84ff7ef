//! The files of a run directory: what each one is served as, and what a directory lists.

use std::fs;
use std::io;
use std::path::Path;

use super::safe_path::resolve_inside;

/// Files larger than this are not served whole (the body is held in memory); the download of the
/// run directory still holds them, compressed.
pub const FILE_BYTES_MAX: u64 = 512 << 20;
/// A directory listing shows at most this many entries.
pub const LISTING_ENTRIES_MAX: usize = 10_000;

/// The content type of a run file, by extension. Histories, logs and graph sources are text, so a
/// browser shows them instead of downloading them.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some(
            "jsonl" | "ndjson" | "log" | "txt" | "dot" | "edn" | "csv" | "conf" | "md" | "pid",
        ) => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub bytes: u64,
}

/// The entries of `dir`, directories first, then by name. Entries that resolve outside `root`
/// (symlinks out of the run), dangling symlinks and names that are not UTF-8 are left out: what is
/// listed is exactly what can be fetched.
pub fn list_dir(dir: &Path, root: &Path) -> io::Result<(Vec<Entry>, bool)> {
    let mut entries = Vec::new();
    let mut truncated = false;
    for entry in fs::read_dir(dir)? {
        if entries.len() >= LISTING_ENTRIES_MAX {
            truncated = true;
            break;
        }
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(target) = resolve_inside(root, &entry.path()) else {
            continue;
        };
        let Ok(meta) = fs::metadata(&target) else {
            continue;
        };
        entries.push(Entry {
            name,
            is_dir: meta.is_dir(),
            bytes: meta.len(),
        });
    }
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    Ok((entries, truncated))
}

/// A byte count for people: `532 B`, `1.2 KiB`, `3.4 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_files_get_sensible_types() {
        assert_eq!(
            content_type(Path::new("report.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("results.json")), "application/json");
        assert_eq!(
            content_type(Path::new("history.jsonl")),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("cluster/n1.log")),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("graph/g.SVG")), "image/svg+xml");
        assert_eq!(
            content_type(Path::new("data/000001")),
            "application/octet-stream"
        );
    }

    #[test]
    fn listings_hide_what_points_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::write(root.join("b.log"), "12345").unwrap();
        fs::create_dir(root.join("z")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("b.log", root.join("alias")).unwrap();
        std::os::unix::fs::symlink("missing", root.join("dangling")).unwrap();
        let (entries, truncated) = list_dir(&root, &root).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["z", "alias", "b.log"]);
        assert_eq!(entries[2].bytes, 5);
        assert!(!truncated);
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(human_bytes(532), "532 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
