//! The EDN history reader (Knossos, Elle and Jepsen histories): any bytes give a history or a
//! located error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Err(e) = verity_history::edn::parse_edn(bytes) {
        assert!(e.to_string().starts_with("line "), "unlocated error: {e}");
    }
});
