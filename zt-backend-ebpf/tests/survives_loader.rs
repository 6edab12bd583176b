//! The attachment outlives the process that applied it: a child process (this test binary run
//! again, as the "loader") applies the policy and exits; the programs still refuse afterwards,
//! because their links, programs and maps are pinned. A custom `main` (harness = false) lets
//! the same binary play both parts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, prerequisites, ruleset};
use std::net::SocketAddr;
use std::process::Command;
use zt_backend_ebpf::EbpfBackend;
use zt_core::Backend;
use zt_testkit::{Identity, Listeners, Outcome, Proto};

const POLICY: &str = r#"
version: "1.0"
rules:
  - name: web-only
    from: { user: web }
    to: { port: 7001 }
    action: allow
"#;

/// Set in the loader's environment: `<pin dir>\n<cgroup path>`.
const LOADER: &str = "ZT_EBPF_TEST_LOADER";

fn main() {
    if let Ok(spec) = std::env::var(LOADER) {
        load(&spec);
        return;
    }
    if !prerequisites() {
        return;
    }
    the_attachment_survives_the_loader_exiting();
    println!("test the_attachment_survives_the_loader_exiting ... ok");
}

/// The loader's part: apply and exit, holding nothing.
fn load(spec: &str) {
    let (pin_dir, cgroup) = spec.split_once('\n').expect("pin dir and cgroup");
    let root = zt_backend_ebpf::cgroup_v2_root().expect("cgroup v2");
    let mut backend = EbpfBackend::new(
        zt_backend_ebpf::Options::new(root)
            .pin_dir(pin_dir)
            .attach_to(cgroup),
    );
    let plan = backend.plan(&ruleset(POLICY)).expect("plan");
    backend.apply(&plan).expect("apply");
}

fn the_attachment_survives_the_loader_exiting() {
    let mut f = Fixture::new("survive");
    let dst: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let _listeners = Listeners::start(&[(Proto::Tcp, dst)]);
    let other = Identity::new(4003, 4003);
    assert_eq!(f.connect(other, Proto::Tcp, dst), Outcome::Connected);

    let status = Command::new(std::env::current_exe().unwrap())
        .env(
            LOADER,
            format!("{}\n{}", f.pin_dir.display(), f.cgroup.path().display()),
        )
        .status()
        .expect("run the loader");
    assert!(status.success(), "the loader failed: {status}");

    assert_eq!(f.connect(other, Proto::Tcp, dst), Outcome::NotPermitted);
    assert_eq!(
        f.connect(Identity::new(4001, 4001), Proto::Tcp, dst),
        Outcome::Connected
    );
    // This process never loaded anything, yet sees the loader's policy as installed.
    assert!(f.backend.verify(&ruleset(POLICY)).unwrap().is_empty());
    assert!(f.backend.status().unwrap().installed);
}
