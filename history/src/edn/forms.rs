//! The top level of an EDN history file: its forms, each with the line it starts on.
//!
//! Jepsen writes `history.edn` as one op map per line; Knossos's `data/` holds one vector (or list)
//! of op maps. Either way every op is located by its line, so an error can say where it is: the
//! elements of a top-level collection are read one at a time here rather than as one value.
//!
//! The `clojure-reader` crate's parser is iterative, but dropping and comparing the values it builds
//! recurses, so the text is scanned for its nesting depth first: anything nested deeper than
//! [`DEPTH_MAX`] (real histories nest four or five levels) is refused with its location rather than
//! risking the stack.

use clojure_reader::edn::{self, Edn};

use super::EdnError;

/// How deeply collections may nest in a history file.
pub const DEPTH_MAX: usize = 64;

/// Every op form of the file, with the line it starts on.
pub fn read(text: &str) -> Result<Vec<(usize, Edn<'_>)>, EdnError> {
    check_depth(text)?;
    let mut cursor = Cursor {
        rest: text,
        line: 1,
    };
    cursor.skip_blank();
    let mut forms = Vec::new();
    let close = match cursor.rest.as_bytes().first() {
        Some(b'[') => Some(']'),
        Some(b'(') => Some(')'),
        _ => None,
    };
    let Some(close) = close else {
        while !cursor.rest.is_empty() {
            forms.push(cursor.form()?);
            cursor.skip_blank();
        }
        return Ok(forms);
    };
    cursor.advance(1);
    loop {
        cursor.skip_blank();
        match cursor.rest.chars().next() {
            None => {
                return Err(cursor.error(format!(
                    "the file ends inside the top-level collection: expected an op map or `{close}`"
                )))
            }
            Some(c) if c == close => break,
            Some(_) => forms.push(cursor.form()?),
        }
    }
    cursor.advance(1);
    cursor.skip_blank();
    if !cursor.rest.is_empty() {
        return Err(cursor.error(
            "text after the top-level collection of ops: expected the end of the file".into(),
        ));
    }
    Ok(forms)
}

struct Cursor<'t> {
    rest: &'t str,
    line: usize,
}

impl<'t> Cursor<'t> {
    fn advance(&mut self, bytes: usize) {
        self.line += self.rest[..bytes].matches('\n').count();
        self.rest = &self.rest[bytes..];
    }

    fn skip_blank(&mut self) {
        let n = skip_blank(self.rest);
        self.advance(n);
    }

    fn error(&self, problem: String) -> EdnError {
        EdnError::Syntax {
            line: self.line,
            column: 1,
            problem,
        }
    }

    /// Reads one form at the cursor.
    fn form(&mut self) -> Result<(usize, Edn<'t>), EdnError> {
        let line = self.line;
        let (form, after) = edn::read(self.rest).map_err(|e| {
            let at = line + e.line.unwrap_or(1).saturating_sub(1);
            let mut problem = describe(&e.code);
            if at != line {
                problem.push_str(&format!("; the value begins on line {line}"));
            }
            EdnError::Syntax {
                line: at,
                column: e.column.unwrap_or(0),
                problem,
            }
        })?;
        let consumed = self.rest.len() - after.len();
        if consumed == 0 {
            return Err(self.error("expected an EDN value".into()));
        }
        self.advance(consumed);
        Ok((line, form))
    }
}

/// A syntax error in words: what was wrong and what was expected instead.
fn describe(code: &clojure_reader::error::Code) -> String {
    use clojure_reader::error::Code;
    match code {
        Code::UnexpectedEOF => {
            "unexpected end of input: expected a collection or string to be closed".into()
        }
        Code::UnmatchedDelimiter(c) => {
            format!("unmatched `{c}`: expected a value or the matching closing delimiter")
        }
        Code::InvalidNumber => {
            "not a valid number: expected an integer that fits in 64 bits or a decimal".into()
        }
        Code::InvalidRadix(_) => "not a valid number in that radix: expected digits of it".into(),
        Code::InvalidKeyword => "not a valid keyword: expected `:name`".into(),
        Code::InvalidEscape => {
            "invalid escape in a string: expected \\t, \\r, \\n, \\\\ or \\\"".into()
        }
        Code::InvalidChar => "not a valid character literal: expected `\\c` or `\\newline`".into(),
        Code::InvalidTag => "not a valid tag: expected `#name value`".into(),
        Code::HashMapDuplicateKey => {
            "a map holds the same key twice: expected distinct keys".into()
        }
        Code::SetDuplicateKey => {
            "a set holds the same element twice: expected distinct elements".into()
        }
        other => format!("{other:?}: expected valid EDN"),
    }
}

/// Bytes of whitespace, commas and `;` comments at the start of `s`.
pub fn skip_blank(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b',' => i += 1,
            b';' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => break,
        }
    }
    i
}

/// Refuses text whose collections nest deeper than [`DEPTH_MAX`], naming where the limit was passed.
/// Strings, comments and character literals are skipped, so brackets inside them do not count.
fn check_depth(text: &str) -> Result<(), EdnError> {
    let bytes = text.as_bytes();
    let (mut depth, mut line, mut line_start, mut i) = (0usize, 1usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            b';' => {
                while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                    i += 1;
                }
            }
            b'\\' => i += 1, // a character literal such as \( or \]
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    } else if bytes[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
            }
            b'[' | b'(' | b'{' => {
                depth += 1;
                if depth > DEPTH_MAX {
                    return Err(EdnError::Syntax {
                        line,
                        column: text[line_start..i].chars().count() + 1,
                        problem: format!(
                            "collections nest more than {DEPTH_MAX} levels deep: expected op maps of plain values"
                        ),
                    });
                }
            }
            b']' | b')' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}
