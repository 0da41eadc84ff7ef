//! The exec adapter's reply decoder: any reply line gives a completion or a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Some((pick, line)) = bytes.split_first() {
        let _ = verity_targets::decoders::exec_reply(*pick, line);
    }
});
