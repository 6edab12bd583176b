//! Snapshots of the restore files for the specification's example policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use zt_backend_iptables::{ChainPrefix, IptablesBackend, IptablesError, Kernel, Variant};
use zt_core::{Backend, Family, Policy, StaticResolver};

/// Rendering needs no kernel; this one refuses every call.
struct Offline;

impl Kernel for Offline {
    fn save_both(&self) -> Result<[String; 2], IptablesError> {
        Err(IptablesError::Variant("offline".to_owned()))
    }
    fn restore(&self, _: Family, _: &str) -> Result<(), IptablesError> {
        Err(IptablesError::Variant("offline".to_owned()))
    }
}

#[test]
fn the_spec_example_renders_to_these_restore_files() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/rules.yaml");
    let resolver = StaticResolver::new()
        .user("web-user", 1001)
        .user("postgres", 1002);
    let policy = Policy::from_file(std::path::Path::new(path), &resolver)
        .unwrap()
        .policy;
    let backend =
        IptablesBackend::with_kernel(Variant::Nft, ChainPrefix::default(), Box::new(Offline));
    let artifact = backend.render(&policy.ruleset()).unwrap();
    let names: Vec<&str> = artifact.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["rules.v4", "rules.v6"]);
    insta::assert_snapshot!("rules.v4", artifact.files[0].contents);
    insta::assert_snapshot!("rules.v6", artifact.files[1].contents);
}
