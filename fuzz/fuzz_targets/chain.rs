//! The hash chain's sidecar (history.chain) and its check against a history: any sidecar bytes and
//! any history text give a sidecar or an error, and a check names a line within the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], &[u8])| {
    let (sidecar, text) = input;
    // Most inputs would fail the magic; give the structure behind it a chance as well.
    let mut framed = verity_history::chain::MAGIC.to_vec();
    framed.extend_from_slice(sidecar);
    for bytes in [sidecar, &framed[..]] {
        if let Ok(sidecar) = verity_history::chain::parse_sidecar(bytes) {
            let _ = verity_history::chain::check(text, &sidecar);
        }
    }
});
