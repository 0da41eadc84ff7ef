//! A compressed history: any bytes decode to what they hold before a cut or corrupt data, and
//! that text reads as a history or a located error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(decoded) = verity_history::jsonl::decompress(bytes) {
        if let Err(e) = verity_history::jsonl::parse_jsonl(&decoded.text) {
            assert!(e.to_string().starts_with("line "), "unlocated error: {e}");
        }
    }
});
