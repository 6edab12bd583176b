//! The agent against an etcd that requires TLS client certificates and authentication, with
//! the role docs/FLEET.md gives an agent: read `/zt/v1/policies/`, read and write its own
//! `/zt/v1/hosts/<host>` and `/zt/v1/status/<host>`, nothing else. The agent runs and reports
//! with those credentials alone; the same credentials cannot write a policy or another host's
//! keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;
use zt_testkit::fleet::{Fleet, HostOptions};
use zt_testkit::{Identity, Outcome, Prerequisite, Proto, require};

const AGENT: &str = env!("CARGO_BIN_EXE_zt-agent");
const CONVERGE: Duration = Duration::from_secs(10);

const BASE: &str = r#"version: "1.0"
settings:
  default_policy: deny
rules:
  - name: a-7001
    from: {uid: 20001}
    to: {hosts: [127.0.0.1, "::1"], port: 7001, protocol: tcp}
    action: allow
"#;

fn row<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["hosts"]
        .as_array()?
        .iter()
        .find(|h| h["host"].as_str() == Some(name))
}

fn converged_on(status: &Value, name: &str, policy: Option<&str>) -> bool {
    row(status, name).is_some_and(|r| {
        let names: Vec<&str> = r["policies"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        r["live"] == true
            && r["converged"] == true
            && matches!(r["result"].as_str(), Some("applied" | "unchanged"))
            && names == policy.into_iter().collect::<Vec<_>>()
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_agents_credentials_read_policies_and_write_only_its_own_keys() {
    if !require(&[
        Prerequisite::Root,
        Prerequisite::Binary("ip"),
        Prerequisite::Binary("etcd"),
        Prerequisite::Binary("etcdctl"),
        Prerequisite::Binary("nft"),
        Prerequisite::Binary("openssl"),
    ]) {
        return;
    }
    let fleet = Fleet::new_secure("auth", AGENT);
    let h1 = fleet.add_host("h1", HostOptions::nft());
    let h2 = fleet.add_host("h2", HostOptions::nft());
    let creds = h1.credentials().cloned().unwrap();
    let args = h1.agent_args().join(" ");
    for flag in [
        "https://",
        "--cacert",
        "--cert",
        "--key",
        "--user agent-h1",
        "--password-file",
    ] {
        assert!(
            args.contains(flag),
            "the agent runs with its own credentials: {args}"
        );
    }
    let _l = h1.listen(&[
        (Proto::Tcp, "127.0.0.1:7001".parse().unwrap()),
        (Proto::Tcp, "127.0.0.1:7002".parse().unwrap()),
    ]);
    h1.start_agent();
    h2.start_agent();
    fleet.wait_until("both agents report over TLS with auth", CONVERGE, |s| {
        converged_on(s, "h1", None) && converged_on(s, "h2", None)
    });

    // The agent reads policies, enforces them (default deny does not cut it off from the
    // store) and reports.
    fleet.push_ok("base", BASE);
    fleet.wait_until("both agents applied base", CONVERGE, |s| {
        converged_on(s, "h1", Some("base")) && converged_on(s, "h2", Some("base"))
    });
    let probe = |id, port: u16| {
        let dst: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        h1.connect_as(id, Proto::Tcp, dst, Duration::from_millis(400))
    };
    assert_eq!(probe(Identity::new(20001, 20001), 7001), Outcome::Connected);
    assert_eq!(probe(Identity::new(20001, 20001), 7002), Outcome::TimedOut);
    let h2_status = fleet.get("/zt/v1/status/h2").unwrap();
    let h1_status = fleet.get("/zt/v1/status/h1").unwrap();

    // What the agent's credentials may not do.
    let denied = |args: &[&str]| {
        let out = fleet.etcdctl_as(&creds, args);
        assert!(
            !out.status.success()
                && String::from_utf8_lossy(&out.stderr).contains("permission denied"),
            "agent-h1 must not `etcdctl {}`: {}",
            args.join(" "),
            text(&out)
        );
    };
    denied(&["put", "/zt/v1/policies/x", "version: \"1.0\"\nrules: []\n"]);
    denied(&[
        "put",
        "/zt/v1/policies/base",
        "version: \"1.0\"\nrules: []\n",
    ]);
    denied(&["del", "/zt/v1/policies/base"]);
    denied(&["put", "/zt/v1/status/h2", "{}"]);
    denied(&["del", "/zt/v1/status/h2"]);
    denied(&["put", "/zt/v1/hosts/h2", "{}"]);
    denied(&["get", "/zt/v1/status/h2"]);
    assert_eq!(fleet.get("/zt/v1/policies/x"), None);
    assert_eq!(
        fleet.get("/zt/v1/status/h2").as_deref(),
        Some(h2_status.as_str())
    );
    let file = fleet.policy_file("x", BASE).to_string_lossy().into_owned();
    let push = fleet.agent_command_as(&creds, &["push", "x", &file]);
    assert!(
        !push.status.success(),
        "zt-agent push as agent-h1 must fail: {}",
        text(&push)
    );
    assert_eq!(fleet.get("/zt/v1/policies/x"), None, "nothing was written");

    // What they may: read the policies, write its own status (the same value back).
    let read = fleet.etcdctl_as(
        &creds,
        &["get", "/zt/v1/policies/", "--prefix", "--keys-only"],
    );
    assert!(
        read.status.success()
            && String::from_utf8_lossy(&read.stdout).contains("/zt/v1/policies/base"),
        "agent-h1 reads the policies: {}",
        text(&read)
    );
    let mine = fleet.etcdctl_as(&creds, &["put", "/zt/v1/status/h1", &h1_status]);
    assert!(
        mine.status.success(),
        "agent-h1 writes its own status: {}",
        text(&mine)
    );

    // Without a client certificate the server refuses the connection.
    let ca = fleet.ca_cert().unwrap().display().to_string();
    let anonymous = std::process::Command::new("ip")
        .args(["netns", "exec", fleet.hub_namespace(), "etcdctl"])
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints={}", fleet.endpoint()),
            &format!("--cacert={ca}"),
            "--dial-timeout=1s",
            "--command-timeout=2s",
            "get",
            "/zt/v1/policies/base",
        ])
        .output()
        .unwrap();
    assert!(
        !anonymous.status.success(),
        "etcdctl without a client certificate: {}",
        text(&anonymous)
    );
}
