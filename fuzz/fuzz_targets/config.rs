//! The configuration parser on arbitrary bytes: never a panic, a hang or unbounded memory;
//! every rejection is a list of diagnostics; every acceptance round-trips through YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zt_core::{Error, Policy, StaticResolver};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let resolver = StaticResolver::new().user("web-user", 1001).group("web", 1001);
    match Policy::from_yaml(text, "fuzz.yaml", &resolver) {
        Ok(loaded) => {
            let ruleset = loaded.policy.ruleset();
            assert!(!ruleset.entries().is_empty());
            let yaml = loaded.policy.to_yaml().expect("a valid policy serializes");
            let again = Policy::from_yaml(&yaml, "again.yaml", &resolver).expect("and reads back");
            assert_eq!(again.policy, loaded.policy);
        }
        Err(Error::Invalid(d)) => assert!(d.has_errors()),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
});
