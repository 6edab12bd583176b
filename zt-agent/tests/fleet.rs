//! The agent against a real etcd and real kernels: a fleet of network namespaces (zt-testkit's
//! `fleet` harness), each host running `zt-agent run`, each behaviour proven by connections
//! made as real uids inside the hosts, and by the status the agents write.
//!
//! Every host serves TCP on 127.0.0.1 and [::1], ports 7001 and 7002; the policies speak of two
//! numeric users, A (uid 20001) and B (uid 20002), both gid 20001 (no passwd entries needed).
//! Each test has its own fleet (its own etcd), so the tests run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use zt_testkit::fleet::{Fleet, Host, HostOptions};
use zt_testkit::{Identity, Listeners, Outcome, Prerequisite, Proto, connect_as, require};

const AGENT: &str = env!("CARGO_BIN_EXE_zt-agent");
/// How long a change may take to reach every agent (a loaded two-core CI machine included).
const CONVERGE: Duration = Duration::from_secs(10);
/// After an outage the agent reconnects with backoff: more time.
const RECONNECT: Duration = Duration::from_secs(20);
/// How long a probe waits for a handshake (loopback answers in microseconds).
const PROBE: Duration = Duration::from_millis(400);
/// User A.
const A: Identity = Identity::new(20001, 20001);
/// User B.
const B: Identity = Identity::new(20002, 20001);

fn prerequisites(extra: &[Prerequisite]) -> bool {
    let mut all = vec![
        Prerequisite::Root,
        Prerequisite::Binary("ip"),
        Prerequisite::Binary("etcd"),
        Prerequisite::Binary("etcdctl"),
        Prerequisite::Binary("nft"),
    ];
    all.extend_from_slice(extra);
    require(&all)
}

// ----- policies -----

/// Default deny; A may reach port 7001. No selector: every host.
const BASE: &str = r#"version: "1.0"
settings:
  default_policy: deny
rules:
  - name: a-7001
    from: {uid: 20001}
    to: {hosts: [127.0.0.1, "::1"], port: 7001, protocol: tcp}
    action: allow
"#;

/// BASE, and B may reach 7001 too.
const BASE_B: &str = r#"version: "1.0"
settings:
  default_policy: deny
rules:
  - name: a-7001
    from: {uid: 20001}
    to: {hosts: [127.0.0.1, "::1"], port: 7001, protocol: tcp}
    action: allow
  - name: b-7001
    from: {uid: 20002}
    to: {hosts: [127.0.0.1, "::1"], port: 7001, protocol: tcp}
    action: allow
"#;

/// Default deny; A may reach `port`; for hosts labelled role=`role`.
fn role_policy(role: &str, port: u16) -> String {
    format!(
        r#"version: "1.0"
selector:
  role: {role}
settings:
  default_policy: deny
rules:
  - name: a-{port}
    from: {{uid: 20001}}
    to: {{hosts: [127.0.0.1, "::1"], port: {port}, protocol: tcp}}
    action: allow
"#
    )
}

/// One rule about B and port 7002 (`action`), at `order`; no settings.
fn b_7002(action: &str, order: i32) -> String {
    format!(
        r#"version: "1.0"
order: {order}
rules:
  - name: b-7002
    from: {{uid: 20002}}
    to: {{hosts: [127.0.0.1, "::1"], port: 7002, protocol: tcp}}
    action: {action}
"#
    )
}

/// Invalid: `permit` is no action (line 6, column 13), in rule `bad`.
const BROKEN: &str = r#"version: "1.0"
rules:
  - name: bad
    from: {uid: 20002}
    to: {port: 7001}
    action: permit
"#;

// ----- connections -----

/// What a connection attempt experienced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Connected.
    Open,
    /// Dropped (a SYN dropped on output times out).
    Blocked,
    /// Refused (a reject rule's reset).
    Refused,
}

fn reach(outcome: Outcome) -> Option<Reach> {
    match outcome {
        Outcome::Connected => Some(Reach::Open),
        Outcome::TimedOut | Outcome::NotPermitted => Some(Reach::Blocked),
        Outcome::Refused => Some(Reach::Refused),
        Outcome::Error(_) => None,
    }
}

/// Echo listeners on 127.0.0.1 and [::1], ports 7001 and 7002, inside `host`.
fn listen(host: &Host) -> Listeners {
    let mut endpoints = Vec::new();
    for port in [7001, 7002] {
        for ip in ["127.0.0.1", "[::1]"] {
            endpoints.push((Proto::Tcp, format!("{ip}:{port}").parse().unwrap()));
        }
    }
    host.listen(&endpoints)
}

/// Probe every (user, port) over IPv4 and IPv6 loopback inside `host`, all at once, and
/// panic listing every one that did not do what was expected (with the host's ruleset and log).
fn check(host: &Host, what: &str, expected: &[(Identity, u16, Reach)]) {
    let mut probes = Vec::new();
    for &(id, port, want) in expected {
        for ip in ["127.0.0.1", "[::1]"] {
            let dst: SocketAddr = format!("{ip}:{port}").parse().unwrap();
            probes.push((id, dst, want));
        }
    }
    let outcomes: Vec<Outcome> = host.run(|| {
        std::thread::scope(|s| {
            let handles: Vec<_> = probes
                .iter()
                .map(|&(id, dst, _)| s.spawn(move || connect_as(id, Proto::Tcp, dst, PROBE)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    });
    let wrong: Vec<String> = probes
        .iter()
        .zip(&outcomes)
        .filter(|((_, _, want), got)| reach(**got) != Some(*want))
        .map(|((id, dst, want), got)| format!("  {id} to {dst}: expected {want:?}, got {got}"))
        .collect();
    if !wrong.is_empty() {
        let ruleset = host.run_cmd("nft", &["list", "ruleset"]);
        panic!(
            "{what}: on {}:\n{}\n--- nft list ruleset on {} ---\n{}\n--- agent log of {} ---\n{}",
            host.name(),
            wrong.join("\n"),
            host.name(),
            String::from_utf8_lossy(&ruleset.stdout),
            host.name(),
            host.agent_log()
        );
    }
}

/// The rules of BASE: A reaches 7001; B does not; A reaches nothing else.
fn base_enforced(host: &Host, what: &str) {
    check(
        host,
        what,
        &[
            (A, 7001, Reach::Open),
            (B, 7001, Reach::Blocked),
            (A, 7002, Reach::Blocked),
        ],
    );
}

/// Nothing enforced: everyone reaches everything.
fn nothing_enforced(host: &Host, what: &str) {
    check(
        host,
        what,
        &[
            (A, 7001, Reach::Open),
            (B, 7001, Reach::Open),
            (A, 7002, Reach::Open),
        ],
    );
}

// ----- status -----

/// Host `name`'s row in `zt-agent status --json`.
fn row<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["hosts"]
        .as_array()?
        .iter()
        .find(|h| h["host"].as_str() == Some(name))
}

/// The policy names a status (fleet row or host status) lists, sorted.
fn policy_names(status: &Value) -> Vec<String> {
    let mut names: Vec<String> = status["policies"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether host `name` is live and has converged on exactly `policies`.
fn converged_on(status: &Value, name: &str, policies: &[&str]) -> bool {
    row(status, name).is_some_and(|r| {
        r["live"] == true
            && r["converged"] == true
            && matches!(r["result"].as_str(), Some("applied" | "unchanged"))
            && policy_names(r) == policies
    })
}

/// A row's field as text (`null` and absent fields as "").
fn field<'a>(status: &'a Value, name: &str, key: &str) -> &'a str {
    row(status, name)
        .and_then(|r| r[key].as_str())
        .unwrap_or("")
}

/// The mod_revision of `key` in the store.
fn mod_revision(fleet: &Fleet, key: &str) -> i64 {
    let text = fleet.etcdctl_ok(&["get", key, "-w", "json"]);
    let v: Value = serde_json::from_str(&text).unwrap();
    v["kvs"][0]["mod_revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} has no mod_revision: {text}"))
}

/// Start every host's agent and wait until all are live and converged on no policy.
fn start_all(fleet: &Fleet, hosts: &[&Host]) {
    for h in hosts {
        h.start_agent();
    }
    fleet.wait_until("every agent live, nothing to enforce", CONVERGE, |s| {
        hosts.iter().all(|h| converged_on(s, h.name(), &[]))
    });
}

/// Push `yaml` as `name` and wait until every host in `hosts` has converged on `policies`.
fn push_and_converge(fleet: &Fleet, name: &str, yaml: &str, hosts: &[(&Host, &[&str])]) -> Value {
    fleet.push_ok(name, yaml);
    fleet.wait_until(
        &format!("every agent converged after pushing {name}"),
        CONVERGE,
        |s| hosts.iter().all(|(h, p)| converged_on(s, h.name(), p)),
    )
}

// ----- the scenarios -----

/// (1) A push: both matching hosts (one nft, one iptables) enforce the policy and report
/// `applied` at the policy's revision; the non-matching host is unchanged (no rules, every
/// connection still goes through).
#[test]
fn a_push_is_enforced_by_every_matching_host_and_only_there() {
    if !prerequisites(&[
        Prerequisite::Binary("iptables-nft-save"),
        Prerequisite::Binary("iptables-nft-restore"),
        Prerequisite::Binary("ip6tables-nft-save"),
        Prerequisite::Binary("ip6tables-nft-restore"),
    ]) {
        return;
    }
    let fleet = Fleet::new("push", AGENT);
    let web1 = fleet.add_host("web1", HostOptions::nft().label("role", "web"));
    let web2 = fleet.add_host(
        "web2",
        HostOptions::iptables()
            .label("role", "web")
            .arg("--iptables-variant")
            .arg("nft"),
    );
    let db = fleet.add_host("db", HostOptions::nft().label("role", "db"));
    let _l = [listen(&web1), listen(&web2), listen(&db)];
    start_all(&fleet, &[&web1, &web2, &db]);
    nothing_enforced(&web2, "before the push");

    let status = push_and_converge(
        &fleet,
        "web",
        &role_policy("web", 7001),
        &[(&web1, &["web"]), (&web2, &["web"]), (&db, &[])],
    );
    let revision = mod_revision(&fleet, "/zt/v1/policies/web");
    for (host, backend) in [(&web1, "nft"), (&web2, "iptables")] {
        let name = host.name();
        let r = row(&status, name).unwrap();
        assert_eq!(r["result"], "applied", "{name}: {r}");
        assert_eq!(r["backend"], backend, "{name}: {r}");
        assert_eq!(r["labels"]["role"], "web", "{name}: {r}");
        assert!(
            r["sha256"].as_str().is_some_and(|s| s.len() == 64),
            "{name}: {r}"
        );
        let own = fleet.host_status(name).unwrap();
        assert_eq!(own["policies"][0]["name"], "web", "{name}: {own}");
        assert_eq!(
            own["policies"][0]["mod_revision"], revision,
            "{name}: {own}"
        );
        assert_eq!(own["result"], "applied", "{name}: {own}");
        assert!(
            own["store_revision"].as_i64().unwrap_or(0) >= revision,
            "{name}: {own}"
        );
        base_enforced(host, "the web policy");
    }
    assert!(web1.has_nft_table(), "web1 (nft) has table inet zt");
    assert!(
        !web2.has_nft_table(),
        "web2 (iptables) has no table inet zt"
    );
    for tool in ["iptables-nft-save", "ip6tables-nft-save"] {
        let saved = web2.run_cmd_ok(tool, &[]);
        assert!(
            saved.contains(":ZT-OUTPUT"),
            "web2's {tool} shows zt's chains:\n{saved}"
        );
    }

    let r = row(&status, "db").unwrap();
    assert!(r["sha256"].is_null(), "db enforces nothing: {r}");
    assert!(!db.has_nft_table(), "db has no zt table");
    nothing_enforced(&db, "db, which the policy does not select");
}

/// (2) A host moves between policies when its labels change (agent restarted with other
/// labels) and when a policy's selector changes.
#[test]
fn labels_and_selectors_move_hosts_between_policies() {
    if !prerequisites(&[]) {
        return;
    }
    let fleet = Fleet::new("label", AGENT);
    let h1 = fleet.add_host("h1", HostOptions::nft().label("role", "web"));
    let h2 = fleet.add_host("h2", HostOptions::nft().label("role", "db"));
    let _l = [listen(&h1), listen(&h2)];
    start_all(&fleet, &[&h1, &h2]);
    fleet.push_ok("web", &role_policy("web", 7001));
    push_and_converge(
        &fleet,
        "db",
        &role_policy("db", 7002),
        &[(&h1, &["web"]), (&h2, &["db"])],
    );
    let web_rules = [(A, 7001, Reach::Open), (A, 7002, Reach::Blocked)];
    let db_rules = [(A, 7001, Reach::Blocked), (A, 7002, Reach::Open)];
    check(&h1, "h1 (role=web)", &web_rules);
    check(&h2, "h2 (role=db)", &db_rules);

    // h1 relabelled role=db.
    h1.set_options(HostOptions::nft().label("role", "db"));
    h1.restart_agent();
    let status = fleet.wait_until("h1 relabelled role=db enforces db", CONVERGE, |s| {
        converged_on(s, "h1", &["db"])
    });
    assert_eq!(row(&status, "h1").unwrap()["labels"]["role"], "db");
    check(&h1, "h1 relabelled role=db", &db_rules);

    // The web policy's selector now names role=db: both hosts take both policies.
    push_and_converge(
        &fleet,
        "web",
        &role_policy("db", 7001),
        &[(&h1, &["db", "web"]), (&h2, &["db", "web"])],
    );
    let both = [
        (A, 7001, Reach::Open),
        (A, 7002, Reach::Open),
        (B, 7001, Reach::Blocked),
    ];
    check(&h1, "web's selector moved to role=db", &both);
    check(&h2, "web's selector moved to role=db", &both);
}

/// (3) Composition by `order`: two policies decide B's connection to 7002 differently; the one
/// with the lower order comes first and decides. Swapping the orders swaps the decision. Rules
/// carry `<policy>/<rule>` names in the kernel.
#[test]
fn the_lower_order_decides() {
    if !prerequisites(&[]) {
        return;
    }
    let fleet = Fleet::new("order", AGENT);
    let h1 = fleet.add_host("h1", HostOptions::nft());
    let _l = listen(&h1);
    start_all(&fleet, &[&h1]);
    fleet.push_ok("base", BASE);
    fleet.push_ok("rejects", &b_7002("reject", 10));
    push_and_converge(
        &fleet,
        "allows",
        &b_7002("allow", 20),
        &[(&h1, &["allows", "base", "rejects"])],
    );
    check(
        &h1,
        "rejects (order 10) before allows (order 20)",
        &[(B, 7002, Reach::Refused), (A, 7001, Reach::Open)],
    );
    let table = h1.run_cmd_ok("nft", &["list", "table", "inet", "zt"]);
    for name in ["base/a-7001", "rejects/b-7002", "allows/b-7002"] {
        assert!(table.contains(name), "rule {name} in the kernel:\n{table}");
    }

    push_and_converge(
        &fleet,
        "rejects",
        &b_7002("reject", 30),
        &[(&h1, &["allows", "base", "rejects"])],
    );
    check(
        &h1,
        "allows (order 20) before rejects (order 30)",
        &[(B, 7002, Reach::Open), (A, 7001, Reach::Open)],
    );
}

/// (4) Two policies setting default_policy differently: `conflict`, naming both; the host
/// keeps enforcing what it enforced. Removing one resolves it.
#[test]
fn a_conflict_is_reported_and_never_applied() {
    if !prerequisites(&[]) {
        return;
    }
    let fleet = Fleet::new("confl", AGENT);
    let h1 = fleet.add_host("h1", HostOptions::nft());
    let _l = listen(&h1);
    start_all(&fleet, &[&h1]);
    let before = push_and_converge(&fleet, "base", BASE, &[(&h1, &["base"])]);
    let sha = field(&before, "h1", "sha256").to_owned();
    let mark = h1.log_mark();

    fleet.push_ok(
        "open",
        "version: \"1.0\"\nsettings:\n  default_policy: allow\nrules: []\n",
    );
    let status = fleet.wait_until("h1 reports a conflict", CONVERGE, |s| {
        field(s, "h1", "result") == "conflict"
    });
    let r = row(&status, "h1").unwrap();
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("base") && error.contains("open"),
        "the conflict names both policies: {r}"
    );
    assert_eq!(
        r["sha256"].as_str(),
        Some(sha.as_str()),
        "still enforcing: {r}"
    );
    assert_eq!(r["converged"], false, "{r}");
    h1.wait_for_log(mark, "zt-agent: conflict:", CONVERGE);
    base_enforced(&h1, "after the conflicting push");

    let out = fleet.remove("open");
    assert!(out.status.success(), "zt-agent remove open: {out:?}");
    fleet.wait_until("h1 back on base alone", CONVERGE, |s| {
        converged_on(s, "h1", &["base"])
    });
    base_enforced(&h1, "after the conflict was removed");
}

/// (5) An invalid policy written straight into etcd: every host keeps its last good policy
/// and reports `invalid`, naming the policy, the rule, the line and the column.
/// (`zt-agent push` refuses the same file.)
#[test]
fn an_invalid_policy_keeps_the_last_good_one() {
    if !prerequisites(&[]) {
        return;
    }
    let fleet = Fleet::new("inval", AGENT);
    let h1 = fleet.add_host("h1", HostOptions::nft());
    let h2 = fleet.add_host("h2", HostOptions::nft().label("role", "db"));
    let _l = [listen(&h1), listen(&h2)];
    start_all(&fleet, &[&h1, &h2]);
    let before = push_and_converge(&fleet, "base", BASE, &[(&h1, &["base"]), (&h2, &["base"])]);

    let refused = fleet.push("broken", BROKEN);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "push refuses it: {refused:?}"
    );
    assert_eq!(
        fleet.get("/zt/v1/policies/broken"),
        None,
        "push wrote nothing"
    );

    fleet.put_policy("broken", BROKEN);
    let status = fleet.wait_until("both hosts report invalid", CONVERGE, |s| {
        ["h1", "h2"]
            .iter()
            .all(|h| field(s, h, "result") == "invalid")
    });
    for h in ["h1", "h2"] {
        let r = row(&status, h).unwrap();
        let error = r["error"].as_str().unwrap_or_default();
        for part in ["broken", "bad", "6:13"] {
            assert!(error.contains(part), "{h}'s error names {part:?}: {error}");
        }
        assert_eq!(r["sha256"], row(&before, h).unwrap()["sha256"], "{h}: {r}");
    }
    base_enforced(&h1, "after the invalid policy");
    base_enforced(&h2, "after the invalid policy");

    assert!(fleet.del_policy("broken"));
    fleet.wait_until("both hosts back on base", CONVERGE, |s| {
        converged_on(s, "h1", &["base"]) && converged_on(s, "h2", &["base"])
    });
}

/// (6) etcd stopped: enforcement holds; etcd restarted: a change made then is applied.
#[test]
fn an_etcd_outage_changes_nothing_and_a_later_change_applies() {
    if !prerequisites(&[]) {
        return;
    }
    let fleet = Fleet::new("outage", AGENT);
    let h1 = fleet.add_host("h1", HostOptions::nft().arg("--heartbeat").arg("1s"));
    let _l = listen(&h1);
    start_all(&fleet, &[&h1]);
    push_and_converge(&fleet, "base", BASE, &[(&h1, &["base"])]);
    let mark = h1.log_mark();

    fleet.stop_etcd();
    h1.note("etcd stopped");
    h1.wait_for_log(mark, "zt-agent: disconnected:", CONVERGE);
    base_enforced(&h1, "etcd stopped");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        h1.agent_running(),
        Ok(true),
        "the agent survives the outage"
    );
    base_enforced(&h1, "etcd still stopped");

    fleet.start_etcd();
    h1.note("etcd started");
    fleet.push_ok("base", BASE_B);
    fleet.wait_until(
        "h1 applied the change made after etcd came back",
        RECONNECT,
        |s| converged_on(s, "h1", &["base"]),
    );
    check(
        &h1,
        "the change after the outage",
        &[(B, 7001, Reach::Open)],
    );
}

/// (7) An agent stopped (SIGTERM), a change made, the agent restarted: the kernel kept the
/// policy while the agent was down, and the agent catches up.
#[test]
fn a_restarted_agent_catches_up() {
    if !prerequisites(&[]) {
        return;
    }
    let fleet = Fleet::new("resta", AGENT);
    let h1 = fleet.add_host("h1", HostOptions::nft());
    let _l = listen(&h1);
    start_all(&fleet, &[&h1]);
    push_and_converge(&fleet, "base", BASE, &[(&h1, &["base"])]);

    let exit = h1.stop_agent().unwrap();
    assert!(
        exit.success(),
        "the agent exits cleanly on SIGTERM: {exit}\n{}",
        h1.agent_log()
    );
    assert!(h1.has_nft_table(), "the kernel keeps the policy");
    fleet.push_ok("base", BASE_B);
    base_enforced(&h1, "agent stopped, change pending");

    let mark = h1.log_mark();
    h1.start_agent();
    fleet.wait_until("the restarted agent caught up", CONVERGE, |s| {
        converged_on(s, "h1", &["base"])
    });
    check(&h1, "after catching up", &[(B, 7001, Reach::Open)]);
    let log = h1.agent_log_since(mark);
    assert!(
        log.contains("zt-agent: restored:"),
        "the agent restored the last good policy first:\n{log}"
    );
}

/// (8) The store compacted past an agent's revision while it was cut off: it relists and
/// applies the latest policies.
#[test]
fn compaction_past_an_agents_revision_makes_it_relist() {
    if !prerequisites(&[]) {
        return;
    }
    let fleet = Fleet::new("compact", AGENT);
    let h1 = fleet.add_host("h1", HostOptions::nft().arg("--heartbeat").arg("500ms"));
    let _l = listen(&h1);
    start_all(&fleet, &[&h1]);
    push_and_converge(&fleet, "base", BASE, &[(&h1, &["base"])]);
    let mark = h1.log_mark();

    h1.ip(&["link", "set", "eth0", "down"]);
    h1.note("eth0 down");
    h1.wait_for_log(mark, "zt-agent: disconnected:", CONVERGE);
    fleet.push_ok("base", BASE_B);
    fleet.push_ok("extra", &b_7002("allow", 10));
    let compacted = fleet.compact_to_current();
    h1.ip(&["link", "set", "eth0", "up"]);
    h1.note(&format!("compacted to {compacted}; eth0 up"));

    fleet.wait_until(
        "h1 applied the latest after the compaction",
        RECONNECT,
        |s| converged_on(s, "h1", &["base", "extra"]),
    );
    let log = h1.agent_log_since(mark);
    assert!(log.contains("relisting"), "the agent relisted:\n{log}");
    check(
        &h1,
        "the latest policies after relisting",
        &[
            (B, 7001, Reach::Open),
            (B, 7002, Reach::Open),
            (A, 7002, Reach::Blocked),
        ],
    );
}

/// (9) Drift: zt's table deleted behind the agent's back is back within the verify interval
/// (1 s), and the repair is reported.
#[test]
fn drift_is_repaired_and_reported() {
    if !prerequisites(&[]) {
        return;
    }
    let fleet = Fleet::new("drift", AGENT);
    let h1 = fleet.add_host(
        "h1",
        HostOptions::nft().verify_interval(Duration::from_secs(1)),
    );
    let _l = listen(&h1);
    start_all(&fleet, &[&h1]);
    push_and_converge(&fleet, "base", BASE, &[(&h1, &["base"])]);
    let own = fleet.host_status("h1").unwrap();
    assert_eq!(own["repairs"], 0, "{own}");
    // Idle: two verifications find nothing, and the status is not rewritten.
    let written = mod_revision(&fleet, "/zt/v1/status/h1");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        mod_revision(&fleet, "/zt/v1/status/h1"),
        written,
        "an idle agent rewrote its unchanged status:\n{}",
        h1.agent_log()
    );
    let mark = h1.log_mark();

    h1.run_cmd_ok("nft", &["delete", "table", "inet", "zt"]);
    let deleted = Instant::now();
    h1.note("table inet zt deleted");
    let back =
        zt_testkit::fleet::poll_for(CONVERGE, || h1.has_nft_table().then(|| deleted.elapsed()))
            .unwrap_or_else(|| {
                panic!(
                    "table inet zt not back within {CONVERGE:?}:\n{}",
                    h1.agent_log()
                )
            });
    assert!(
        back < Duration::from_secs(4),
        "repaired after {back:?} with a 1 s interval"
    );
    base_enforced(&h1, "after the repair");
    let own = fleet.wait_host_status("h1", "the repair is reported", CONVERGE, |s| {
        s["repairs"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(
        own["result"]
            .as_str()
            .map(|r| r == "applied" || r == "unchanged"),
        Some(true),
        "{own}"
    );
    let log = h1.agent_log_since(mark);
    assert!(
        log.contains("zt-agent: drift:"),
        "the agent logged the drift:\n{log}"
    );
}

/// (10) A killed agent's lease expires: its host is no longer live, and its kernel policy
/// stays. The other host stays live.
#[test]
fn a_killed_agents_host_expires_and_its_policy_stays() {
    if !prerequisites(&[]) {
        return;
    }
    let fleet = Fleet::new("lease", AGENT);
    let h1 = fleet.add_host("h1", HostOptions::nft().lease_ttl(2));
    let h2 = fleet.add_host("h2", HostOptions::nft());
    let _l = listen(&h1);
    start_all(&fleet, &[&h1, &h2]);
    push_and_converge(&fleet, "base", BASE, &[(&h1, &["base"]), (&h2, &["base"])]);
    assert!(fleet.get("/zt/v1/hosts/h1").is_some());

    h1.kill_agent();
    let status = fleet.wait_until("h1 no longer live", CONVERGE, |s| {
        row(s, "h1").is_some_and(|r| r["live"] == false)
    });
    assert_eq!(row(&status, "h2").unwrap()["live"], true, "{status}");
    assert_eq!(fleet.get("/zt/v1/hosts/h1"), None, "the lease took the key");
    assert!(h1.has_nft_table(), "the kernel keeps the policy");
    base_enforced(&h1, "agent killed, lease expired");
}

/// A host that starts while the store is down (a reboot during an etcd outage): the agent
/// enforces its last good policy at once from the state directory, without waiting for etcd.
#[test]
fn an_agent_started_without_the_store_enforces_its_last_good_policy() {
    if !prerequisites(&[]) {
        return;
    }
    let fleet = Fleet::new("boot", AGENT);
    let h1 = fleet.add_host("h1", HostOptions::nft());
    let _l = listen(&h1);
    start_all(&fleet, &[&h1]);
    push_and_converge(&fleet, "base", BASE, &[(&h1, &["base"])]);

    h1.stop_agent();
    fleet.stop_etcd();
    // What a reboot does to the kernel: zt's table is gone.
    h1.run_cmd_ok("nft", &["delete", "table", "inet", "zt"]);
    nothing_enforced(&h1, "kernel emptied, agent and etcd stopped");

    let mark = h1.log_mark();
    h1.start_agent();
    h1.wait_for_log(mark, "zt-agent: restored:", CONVERGE);
    assert!(
        h1.has_nft_table(),
        "the last good policy is back in the kernel"
    );
    base_enforced(&h1, "restored while etcd is down");
    let log = h1.agent_log_since(mark);
    assert!(
        log.contains("kernel updated") && !log.contains("zt-agent: listed:"),
        "restored before the store answered:\n{log}"
    );

    fleet.start_etcd();
    fleet.wait_until("the agent reports once etcd is back", RECONNECT, |s| {
        converged_on(s, "h1", &["base"])
    });
}
