//! Percent-encoding of URL path segments, by hand: two small functions are cheaper than a dependency,
//! and decoding is exactly once — a segment that still looks encoded afterwards is refused by
//! [`super::safe_path`], which is how double-encoded `..` (`%252e%252e`) is caught.

/// Decodes `%XX` escapes once. `None` if an escape is malformed (`%4`, `%zz`) or the bytes are not
/// UTF-8: a path we cannot read unambiguously is a path we refuse.
pub fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Encodes one path segment (or query value): everything but RFC 3986's unreserved characters.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes a relative path segment by segment, keeping its `/` separators readable.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_exactly_once() {
        assert_eq!(percent_decode("%2e%2E").as_deref(), Some(".."));
        assert_eq!(percent_decode("%252e").as_deref(), Some("%2e"));
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
    }

    #[test]
    fn malformed_escapes_and_invalid_utf8_are_refused() {
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff%fe"), None);
    }

    #[test]
    fn encoding_round_trips_and_keeps_separators() {
        let id = "memory-bank/20261201T101010-1";
        assert_eq!(encode_path(id), id);
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(
            percent_decode(&encode_segment("ä %/x")).as_deref(),
            Some("ä %/x")
        );
    }
}
