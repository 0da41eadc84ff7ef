//! The hash chain of a history: tamper evidence that names the first line that changed.
//!
//! Every line of a history is chained: `h_0` is 32 zero bytes and `h_i = SHA-256(h_{i-1} ‖ line_i)`,
//! where `line_i` is the exact bytes of line `i` *including* its newline, as the writer wrote them
//! (so `printf '%s\n' "$line"` and `sha256sum` reproduce it by hand). The chain is over the
//! uncompressed text, so `history.jsonl` and `history.jsonl.zst` of the same events have one chain.
//! The lines themselves are untouched: checkers keep reading plain JSON.
//!
//! The chain lives in a sidecar, `history.chain`, written by the history writer at each of its flush
//! points: a magic line, then one block per flush,
//!
//! ```text
//! block := count: u32 LE · count × prefix (the first 4 bytes of h_i, one per new line) · head: 32 bytes
//! ```
//!
//! where `head` is the full `h` after the block's last line. Full hashes do not compress and the
//! compact history's goal is ≤ 100 bytes per operation, so only a 4-byte prefix is kept per line
//! (8 bytes per operation): enough to *locate* the first changed line (a changed line keeps the
//! same prefix with probability 2⁻³², and then the next one shows it), while the full hash at every
//! checkpoint and in results.json is what *detects* a change. A block cut short by a crash is
//! reported, not fatal: the lines after the last whole block are simply not covered.
//!
//! Like TigerBeetle's hash-chained replica log (`state_checker.zig`), the chain proves that a file
//! is the one that was written only together with a head kept elsewhere: whoever rewrites history,
//! sidecar and results.json consistently can only be caught by a head published at run time (the
//! run summary prints it).

use std::io::{self, Write};

use sha2::{Digest, Sha256};
use thiserror::Error;

/// The chain's value before the first line.
pub const GENESIS: [u8; 32] = [0; 32];
/// The first bytes of a sidecar file.
pub const MAGIC: &[u8] = b"verity history chain v1\n";
/// Bytes of each line's hash kept in the sidecar.
pub const PREFIX_BYTES: usize = 4;
/// A block never holds more lines than this (the writer checkpoints at least this often), so a
/// corrupt count cannot make a reader allocate without bound.
pub const BLOCK_LINES_MAX: u32 = 1 << 24;

/// A running chain: the head and how many lines it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    pub head: [u8; 32],
    pub lines: u64,
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            head: GENESIS,
            lines: 0,
        }
    }
}

impl Chain {
    /// Extends the chain by one line (its bytes including the newline) and returns the new head.
    pub fn push(&mut self, line: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.head);
        h.update(line);
        self.head = h.finalize().into();
        self.lines += 1;
        self.head
    }

    /// The head in lowercase hex, as results.json and the run summary show it.
    pub fn head_hex(&self) -> String {
        hex(&self.head)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The writer's side: collects prefixes between checkpoints and writes one block per checkpoint.
#[derive(Debug, Default)]
pub struct SidecarWriter {
    chain: Chain,
    pending: Vec<u8>,
    pending_lines: u32,
}

impl SidecarWriter {
    /// Chains one line; its prefix waits for the next checkpoint.
    pub fn push(&mut self, line: &[u8]) {
        let h = self.chain.push(line);
        self.pending.extend_from_slice(&h[..PREFIX_BYTES]);
        self.pending_lines += 1;
    }

    /// Whether the pending block has reached [`BLOCK_LINES_MAX`] and must be written now.
    pub fn full(&self) -> bool {
        self.pending_lines >= BLOCK_LINES_MAX
    }

    pub fn chain(&self) -> Chain {
        self.chain
    }

    /// Writes the pending lines as one block (nothing when there are none), in one `write_all`.
    pub fn checkpoint<W: Write>(&mut self, out: &mut W) -> io::Result<()> {
        if self.pending_lines == 0 {
            return Ok(());
        }
        let mut block = Vec::with_capacity(4 + self.pending.len() + 32);
        block.extend_from_slice(&self.pending_lines.to_le_bytes());
        block.extend_from_slice(&self.pending);
        block.extend_from_slice(&self.chain.head);
        out.write_all(&block)?;
        self.pending.clear();
        self.pending_lines = 0;
        Ok(())
    }
}

/// A sidecar as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sidecar {
    /// One prefix per chained line, in order.
    pub prefixes: Vec<[u8; PREFIX_BYTES]>,
    /// After how many lines each block ended, and the full head there.
    pub checkpoints: Vec<(u64, [u8; 32])>,
    /// Bytes at the end that do not make a whole block (a writer killed mid-block).
    pub torn_bytes: usize,
}

impl Sidecar {
    /// The chain at the last whole block.
    pub fn last(&self) -> Chain {
        self.checkpoints
            .last()
            .map_or(Chain::default(), |&(lines, head)| Chain { head, lines })
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SidecarError {
    #[error("not a history chain (it does not begin with {:?})", String::from_utf8_lossy(MAGIC).trim_end())]
    Magic,
    #[error(
        "block at byte {offset} claims {count} lines, more than a writer ever puts in one block"
    )]
    Count { offset: usize, count: u32 },
}

/// Parses a sidecar file.
pub fn parse_sidecar(bytes: &[u8]) -> Result<Sidecar, SidecarError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(SidecarError::Magic)?;
    let mut s = Sidecar::default();
    let mut at = 0;
    while at < rest.len() {
        let Some(count) = rest.get(at..at + 4) else {
            break;
        };
        let count = u32::from_le_bytes(count.try_into().expect("four bytes"));
        if count == 0 || count > BLOCK_LINES_MAX {
            return Err(SidecarError::Count {
                offset: MAGIC.len() + at,
                count,
            });
        }
        let end = at + 4 + count as usize * PREFIX_BYTES + 32;
        let Some(block) = rest.get(at + 4..end) else {
            break;
        };
        let (prefixes, head) = block.split_at(count as usize * PREFIX_BYTES);
        s.prefixes.extend(
            prefixes
                .chunks_exact(PREFIX_BYTES)
                .map(|p| <[u8; PREFIX_BYTES]>::try_from(p).expect("chunks of the prefix size")),
        );
        let head: [u8; 32] = head.try_into().expect("32 bytes");
        s.checkpoints.push((s.prefixes.len() as u64, head));
        at = end;
    }
    s.torn_bytes = rest.len() - at;
    Ok(s)
}

/// How a history compares with its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    /// Every line is chained and matches; `lines` lines, ending at `head`.
    Intact(Chain),
    /// Line `line` (1-based) is not the line that was chained: it was edited, or lines were deleted,
    /// moved or inserted there. Every line before it matches.
    Differs { line: u64 },
    /// A checkpoint's full head differs although every prefix up to it matched (a change whose prefix
    /// collided): the change is among lines `from..=to`.
    DiffersWithin { from: u64, to: u64 },
    /// The history ends after `lines` whole lines, but the chain covers `chained` lines: line
    /// `lines + 1` and those after it were deleted (or the last one was cut short).
    Missing { lines: u64, chained: u64 },
    /// The history matches its chain up to the chain's end, `chain.lines`, and then goes on for
    /// `extra` whole lines that no checkpoint covers: appended after the fact, or written after
    /// the last checkpoint by a run that was cut short.
    Unchained { chain: Chain, extra: u64 },
}

/// Recomputes the chain of `text` (the uncompressed history) and compares it with `sidecar`.
/// A last line without its newline (a torn tail) is not a line of the chain.
pub fn check(text: &[u8], sidecar: &Sidecar) -> ChainCheck {
    let mut chain = Chain::default();
    let mut checkpoints = sidecar.checkpoints.iter().peekable();
    let mut block_start = 1;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text) {
        let line = &text[start..=end];
        start = end + 1;
        let n = chain.lines as usize;
        let Some(expected) = sidecar.prefixes.get(n) else {
            let whole = memchr::memchr_iter(b'\n', &text[end + 1..]).count() as u64;
            return ChainCheck::Unchained {
                chain,
                extra: whole + 1,
            };
        };
        let h = chain.push(line);
        if h[..PREFIX_BYTES] != expected[..] {
            return ChainCheck::Differs { line: chain.lines };
        }
        if let Some(&&(at, head)) = checkpoints.peek() {
            if at == chain.lines {
                checkpoints.next();
                if head != chain.head {
                    return ChainCheck::DiffersWithin {
                        from: block_start,
                        to: at,
                    };
                }
                block_start = at + 1;
            }
        }
    }
    let chained = sidecar.prefixes.len() as u64;
    if chain.lines < chained {
        return ChainCheck::Missing {
            lines: chain.lines,
            chained,
        };
    }
    ChainCheck::Intact(chain)
}

/// The chain of a whole text (its newline-terminated lines).
pub fn chain_of(text: &[u8]) -> Chain {
    let mut chain = Chain::default();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text) {
        chain.push(&text[start..=end]);
        start = end + 1;
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar_of(lines: &[&[u8]], block: usize) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let mut w = SidecarWriter::default();
        for (i, l) in lines.iter().enumerate() {
            w.push(l);
            if (i + 1) % block == 0 {
                w.checkpoint(&mut out).unwrap();
            }
        }
        w.checkpoint(&mut out).unwrap();
        out
    }

    #[test]
    fn the_chain_is_sha256_of_the_previous_head_and_the_line() {
        let mut c = Chain::default();
        let h1 = c.push(b"a\n");
        let mut d = Sha256::new();
        d.update([0u8; 32]);
        d.update(b"a\n");
        assert_eq!(h1, <[u8; 32]>::from(d.finalize()));
        let h2 = c.push(b"b\n");
        let mut d = Sha256::new();
        d.update(h1);
        d.update(b"b\n");
        assert_eq!(h2, <[u8; 32]>::from(d.finalize()));
        assert_eq!(c.lines, 2);
        assert_eq!(chain_of(b"a\nb\n"), c);
    }

    #[test]
    fn a_sidecar_reads_back_its_blocks_and_reports_a_torn_block() {
        let lines: Vec<Vec<u8>> = (0..10).map(|i| format!("{i}\n").into_bytes()).collect();
        let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let bytes = sidecar_of(&refs, 3);
        let s = parse_sidecar(&bytes).unwrap();
        assert_eq!(s.prefixes.len(), 10);
        let at: Vec<u64> = s.checkpoints.iter().map(|c| c.0).collect();
        assert_eq!(at, [3, 6, 9, 10]);
        assert_eq!(s.torn_bytes, 0);
        assert_eq!(s.last(), chain_of(&lines.concat()));
        let cut = parse_sidecar(&bytes[..bytes.len() - 5]).unwrap();
        assert_eq!(cut.prefixes.len(), 9);
        assert_eq!(cut.torn_bytes, 4 + 4 + 32 - 5);
        assert_eq!(parse_sidecar(b"nope"), Err(SidecarError::Magic));
    }

    #[test]
    fn an_intact_text_checks_and_an_unfinished_line_is_not_chained() {
        let text = b"x\ny\nz\n";
        let s = parse_sidecar(&sidecar_of(&[b"x\n", b"y\n", b"z\n"], 2)).unwrap();
        assert_eq!(check(text, &s), ChainCheck::Intact(chain_of(text)));
        let mut torn = text.to_vec();
        torn.extend_from_slice(b"{\"ind");
        assert_eq!(check(&torn, &s), ChainCheck::Intact(chain_of(text)));
        assert_eq!(
            check(b"x\ny\n", &s),
            ChainCheck::Missing {
                lines: 2,
                chained: 3
            }
        );
        assert!(matches!(
            check(b"x\ny\nz\nw\nv\n", &s),
            ChainCheck::Unchained { extra: 2, .. }
        ));
    }

    #[test]
    fn a_collided_prefix_is_caught_by_the_checkpoint() {
        let mut s = parse_sidecar(&sidecar_of(&[b"x\n", b"y\n", b"z\n"], 2)).unwrap();
        // Pretend the edited line's prefix collided: only the block's full head can tell.
        let edited = chain_of(b"x\nY\n");
        s.prefixes[1].copy_from_slice(&edited.head[..PREFIX_BYTES]);
        assert_eq!(
            check(b"x\nY\nz\n", &s),
            ChainCheck::DiffersWithin { from: 1, to: 2 }
        );
    }
}
