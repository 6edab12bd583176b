//! The fast YAML reader agrees with the full one on everything it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(disagreement) = zt_core::yaml::fast_reader_agrees(text) {
        panic!("{disagreement}");
    }
});
