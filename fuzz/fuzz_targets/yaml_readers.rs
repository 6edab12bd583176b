//! The fast YAML reader agrees with the full one on everything it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Err(disagreement) = zt_core::yaml::fast_reader_agrees(text)
    {
        panic!("{disagreement}");
    }
});
