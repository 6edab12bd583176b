//! Every fuzz seed, the minimized corpus of the long fuzz runs and every input a fuzzer ever
//! crashed on, replayed as ordinary tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on a broken fixture

use std::path::Path;
use zt_core::{Error, Policy, StaticResolver};

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "minimized", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let bytes = std::fs::read(entry.path()).expect("readable fuzz input");
            out.push((entry.path().display().to_string(), bytes));
        }
    }
    out
}

#[test]
fn config_fuzz_inputs_are_rejected_with_diagnostics_or_round_trip() {
    let resolver = StaticResolver::new()
        .user("web-user", 1001)
        .group("web", 1001);
    let inputs = inputs("config");
    assert!(!inputs.is_empty(), "no fuzz seeds found");
    for (name, bytes) in inputs {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        match Policy::from_yaml(text, &name, &resolver) {
            Ok(loaded) => {
                let yaml = loaded.policy.to_yaml().expect("serializes");
                let again = Policy::from_yaml(&yaml, "again", &resolver).expect("reads back");
                assert_eq!(again.policy, loaded.policy, "{name}");
            }
            Err(Error::Invalid(d)) => assert!(d.has_errors(), "{name}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn yaml_reader_fuzz_inputs_read_the_same_with_both_readers() {
    let inputs = inputs("yaml_readers");
    assert!(!inputs.is_empty(), "no fuzz seeds found");
    for (name, bytes) in inputs {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        assert!(zt_core::yaml::fast_reader_agrees(text).is_ok(), "{name}");
    }
}
