//! The EDN history reader (Knossos, Elle and Jepsen histories): any text gives a history or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let _ = verity_history::edn::parse_edn(&text);
});
