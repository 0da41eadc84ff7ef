//! Which request paths may reach the file system at all.
//!
//! Two independent walls, so that a mistake in one is caught by the other. First, every segment of a
//! path is decoded exactly once and refused if it could climb or hide a separator: `.`, `..`, `/`,
//! `\`, NUL and control characters, and any `%` left after decoding (double encoding such as
//! `%252e%252e`). Second, whatever survives is canonicalized — symlinks resolved — and must still lie
//! inside the directory it was asked of, which also stops a symlink that points out of the store.
//!
//! The walls keep remote clients out. They do not defend against a local user racing the file system
//! between the check and the open: whoever can write the store can read it anyway.

use std::path::{Path, PathBuf};

use super::url::percent_decode;

/// Why a request path was refused. Every variant answers 400, never a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path has a malformed percent-escape or is not UTF-8")]
    BadEncoding,
    #[error("the path has an empty segment")]
    EmptySegment,
    #[error("the path segment {0:?} is not allowed")]
    Forbidden(String),
}

/// A request path split into checked, decoded segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments {
    pub segments: Vec<String>,
    /// The raw path ended in `/`: the client asked for a directory.
    pub trailing_slash: bool,
}

/// Splits a raw (still percent-encoded) relative path at `/`, decodes each segment once and checks
/// it. An empty path gives no segments.
pub fn split_raw(raw: &str) -> Result<Segments, PathError> {
    let (body, trailing_slash) = match raw.strip_suffix('/') {
        Some(body) => (body, true),
        None => (raw, false),
    };
    if body.is_empty() {
        return Ok(Segments {
            segments: Vec::new(),
            trailing_slash,
        });
    }
    let segments = body
        .split('/')
        .map(|s| {
            percent_decode(s)
                .ok_or(PathError::BadEncoding)
                .and_then(checked)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Segments {
        segments,
        trailing_slash,
    })
}

/// Returns the segment if it names a child of a directory and nothing else.
pub fn checked(segment: String) -> Result<String, PathError> {
    if segment.is_empty() {
        return Err(PathError::EmptySegment);
    }
    let climbs = segment == "." || segment == "..";
    let hides = segment
        .chars()
        .any(|c| matches!(c, '/' | '\\' | '%') || c.is_control());
    if climbs || hides {
        return Err(PathError::Forbidden(segment));
    }
    Ok(segment)
}

/// Canonicalizes `path` and returns it only if it lies inside `root`, which must itself be
/// canonical. `None` for paths that do not exist, too.
pub fn resolve_inside(root: &Path, path: &Path) -> Option<PathBuf> {
    debug_assert!(root.is_absolute(), "the root is canonical, hence absolute");
    let canonical = path.canonicalize().ok()?;
    canonical.starts_with(root).then_some(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> bool {
        split_raw(raw).is_err()
    }

    #[test]
    fn plain_paths_split_into_segments() {
        let s = split_raw("memory-bank/20261201T101010/cluster/n1.log").unwrap();
        assert_eq!(
            s.segments,
            ["memory-bank", "20261201T101010", "cluster", "n1.log"]
        );
        assert!(!s.trailing_slash);
        let dir = split_raw("memory-bank/20261201T101010/").unwrap();
        assert_eq!(dir.segments.len(), 2);
        assert!(dir.trailing_slash);
        assert_eq!(split_raw("").unwrap().segments.len(), 0);
        assert_eq!(split_raw("a%20b").unwrap().segments, ["a b"]);
    }

    #[test]
    fn every_encoding_of_dot_dot_is_refused() {
        for raw in [
            "..",
            "a/../b",
            "%2e%2e",
            "%2E%2e",
            ".%2e",
            "%2e.",
            "..%2f..%2fetc",
            "a%2f..",
            "%2f..",
            "..%5c..",
            "a\\..\\b",
            "%252e%252e",
            "%252e%252e%252f",
            "a%00b",
            "a/./b",
            "a//b",
            "%c0%ae%c0%ae",
            "%",
        ] {
            assert!(refused(raw), "{raw:?} must be refused");
        }
    }

    #[test]
    fn only_paths_inside_the_root_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let inside = root.join("f");
        std::fs::write(&inside, "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("out")).unwrap();
        assert_eq!(resolve_inside(&root, &inside), Some(inside.clone()));
        assert_eq!(resolve_inside(&root, &root.join("out")), None);
        assert_eq!(resolve_inside(&root, &root.join("missing")), None);
        assert_eq!(resolve_inside(&root, &root.join("..")), None);
    }
}
