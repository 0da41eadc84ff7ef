//! The HTTP adapter's answer decoder: any status and body give a completion, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let [pick, hi, lo, body @ ..] = bytes {
        let status = u16::from_be_bytes([*hi, *lo]) % 1000;
        let _ = verity_targets::decoders::http_answer(*pick, status, body);
    }
});
