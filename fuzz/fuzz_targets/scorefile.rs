//! Any byte string as a score file: parsed or refused, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = thresher_core::scorefile::ScoreFile::from_bytes(std::path::Path::new("fuzz"), data);
});
