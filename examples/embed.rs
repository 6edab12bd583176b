//! Embedding zt: build a policy in code (no YAML), print its ruleset, ask the reference
//! evaluator what it decides, and write the policy out as a configuration file.
//!
//! `cargo run --example embed`

use zt::{Policy, Probe, ProbeProtocol, Protocol, RuleBuilder, StaticResolver};

fn main() -> Result<(), zt::Error> {
    // An orchestration agent knows its workloads' uids; it need not ask /etc/passwd.
    let resolver = StaticResolver::new()
        .user("web-user", 1001)
        .user("postgres", 1002);

    let loaded = Policy::builder()
        .log_prefix("ZT-BLOCKED: ")
        .rule(
            RuleBuilder::egress("web-to-redis")
                .description("Allow web app to connect to cache")
                .user("web-user")
                .to_host("127.0.0.1")
                .to_host("::1")
                .port(6379)
                .protocol(Protocol::Tcp)
                .allow(),
        )
        .rule(
            RuleBuilder::egress("db-no-egress")
                .user("postgres")
                .deny()
                .log(true),
        )
        .rule(
            RuleBuilder::egress("allow-dns")
                .any_user()
                .port(53)
                .protocol(Protocol::Udp)
                .allow(),
        )
        .rule(
            RuleBuilder::ingress("https")
                .from_host("192.0.2.0/24")
                .port(443)
                .allow(),
        )
        .build(&resolver)?;
    for warning in loaded.warnings.warnings() {
        eprintln!("{warning}");
    }

    let ruleset = loaded.policy.ruleset();
    println!("{ruleset}");

    let redis = std::net::SocketAddr::from(([127, 0, 0, 1], 6379));
    for (who, uid) in [("web-user", 1001), ("postgres", 1002), ("root", 0)] {
        let decision = ruleset.evaluate(&Probe::connect(ProbeProtocol::Tcp, uid, uid, redis));
        println!(
            "{who:>8} -> {redis}: {} by {}",
            decision.verdict, decision.name
        );
    }

    println!(
        "\n# the same policy as a configuration file\n{}",
        loaded.policy.to_yaml()?
    );
    Ok(())
}
