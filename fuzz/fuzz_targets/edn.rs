//! The EDN history reader (Knossos, Elle and Jepsen histories): any bytes give a history or a
//! located error, never a panic; and the fast reader, whole or read in small pieces, gives exactly
//! the generic reader's history or steps aside — never a history the generic reader refuses, never a
//! different one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verity_history::edn::{parse_edn_fast, parse_edn_fast_in_pieces, parse_edn_generic};

fuzz_target!(|bytes: &[u8]| {
    let generic = parse_edn_generic(bytes);
    if let Err(e) = &generic {
        assert!(e.to_string().starts_with("line "), "unlocated error: {e}");
    }
    // The piece size comes from the input too, so the split lands anywhere.
    let piece_bytes = 1 + bytes.first().map_or(0, |&b| usize::from(b) % 64);
    for fast in [
        parse_edn_fast(bytes),
        parse_edn_fast_in_pieces(bytes, piece_bytes),
    ]
    .into_iter()
    .flatten()
    {
        match &generic {
            Ok(g) => assert!(
                fast == *g && format!("{fast:?}") == format!("{g:?}"),
                "the fast reader read another history: {fast:?} / {g:?}"
            ),
            Err(e) => panic!("the fast reader read a history the generic reader refuses: {e}"),
        }
    }
});
