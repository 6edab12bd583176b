//! The specification's scenario, end to end, in a throwaway network namespace.
//!
//! Run by `examples/demo.sh` (as root), which builds the `zt` binary, gives `web-user` and
//! `postgres` passwd entries in a private mount namespace and starts this program there.
//! It then:
//! 1. creates a network namespace on its main thread (the `zt` commands it runs and every
//!    connection it makes live there) with a veth peer standing in for another host;
//! 2. starts listeners: redis (6379) and postgres (5432) on loopback, DNS (UDP 53), and SSH
//!    (22) and HTTPS (443) on the veth address;
//! 3. runs `zt apply -c examples/rules.yaml`;
//! 4. makes real connections as `web-user`, `postgres` and `nobody`, and from the peer, and
//!    prints which got through and which were refused, next to the rule that decided (the
//!    reference evaluator's answer) — every row must agree;
//! 5. prints `zt status` (counters per rule) and `zt audit` (refusals from the kernel log);
//! 6. flushes zt's table. The namespace disappears with the process.
//!
//! `ZT_BIN` names the `zt` binary (default `target/debug/zt`), `ZT_POLICY` the policy.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;
use zt::{Policy, Probe, ProbeProtocol, SystemResolver, Verdict};
use zt_testkit::{Identity, Listeners, Netns, Outcome, Peer, Proto, connect_as, expected_outcomes};

const TIMEOUT: Duration = Duration::from_millis(700);

/// One connection the demo makes.
struct Attempt {
    who: String,
    id: Option<Identity>,
    proto: Proto,
    dst: SocketAddr,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(3)
        }
    }
}

fn run() -> Result<bool, String> {
    let zt_bin = std::env::var("ZT_BIN").unwrap_or_else(|_| "target/debug/zt".into());
    let policy_path = std::env::var("ZT_POLICY").unwrap_or_else(|_| "examples/rules.yaml".into());
    let state = tempdir()?;
    // The audit covers this run only (the kernel log may hold earlier refusals).
    let started = zt::kernel_log::jiff::Timestamp::now().to_string();
    let zt = |args: &[&str]| -> Result<(), String> {
        println!("\n$ zt {}", args.join(" "));
        let status = Command::new(&zt_bin)
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run {zt_bin}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("zt {} failed ({status})", args.join(" ")))
        }
    };

    let netns = Netns::new();
    let peer = netns.add_peer();
    let local_v4 = IpAddr::V4(Peer::LOCAL_V4);
    let local_v6 = IpAddr::V6(Peer::LOCAL_V6);
    let tcp = |ip: IpAddr, port| (Proto::Tcp, SocketAddr::new(ip, port));
    let udp = |ip: IpAddr, port| (Proto::Udp, SocketAddr::new(ip, port));
    let v4: IpAddr = [127, 0, 0, 1].into();
    let v6: IpAddr = std::net::Ipv6Addr::LOCALHOST.into();
    let _listeners = Listeners::start(&[
        tcp(v4, 6379),
        tcp(v6, 6379),
        tcp(v4, 5432),
        udp(v4, 53),
        udp(v6, 53),
        tcp(local_v4, 22),
        tcp(local_v6, 22),
        tcp(local_v4, 443),
    ]);
    println!("A throwaway network namespace with redis (6379), postgres (5432) and DNS (53) on");
    println!("loopback, and SSH (22) and HTTPS (443) on {local_v4} / {local_v6}, reachable from a");
    println!("second namespace standing in for another host.");

    zt(&["apply", "-c", &policy_path])?;

    let loaded = Policy::from_file(std::path::Path::new(&policy_path), &SystemResolver::new())
        .map_err(|e| e.to_string())?;
    let ruleset = loaded.policy.ruleset();
    let user = |name: &str| -> Result<Identity, String> {
        let u = uzers::get_user_by_name(name)
            .ok_or_else(|| format!("no user {name}: run the demo through examples/demo.sh"))?;
        Ok(Identity::new(u.uid(), u.primary_group_id()))
    };
    let (web, db, nobody) = (user("web-user")?, user("postgres")?, user("nobody")?);
    let out = |who: &str, id: Identity, (proto, dst): (Proto, SocketAddr)| Attempt {
        who: who.into(),
        id: Some(id),
        proto,
        dst,
    };
    let inbound = |(proto, dst): (Proto, SocketAddr)| Attempt {
        who: "another host".into(),
        id: None,
        proto,
        dst,
    };
    let attempts = [
        out("web-user", web, tcp(v4, 6379)),
        out("web-user", web, tcp(v6, 6379)),
        out("web-user", web, tcp(v4, 5432)),
        out("web-user", web, udp(v4, 53)),
        out("postgres", db, tcp(v4, 6379)),
        out("postgres", db, udp(v4, 53)),
        out("postgres", db, udp(v6, 53)),
        out("nobody", nobody, tcp(v4, 6379)),
        out("nobody", nobody, tcp(v6, 6379)),
        out("nobody", nobody, tcp(v4, 5432)),
        inbound(tcp(local_v4, 22)),
        inbound(tcp(local_v6, 22)),
        inbound(tcp(local_v4, 443)),
    ];

    println!("\nWho tries what, what the policy says (the deciding rule), what the kernel did:\n");
    let mut rows = vec![[
        "from".to_owned(),
        "to".into(),
        "rule".into(),
        "verdict".into(),
        "kernel".into(),
        String::new(),
    ]];
    let mut all_agree = true;
    for a in &attempts {
        let (probe, observed) = realize(a, &peer);
        let decision = ruleset.evaluate(&probe);
        let agrees =
            expected_outcomes(decision.verdict, probe.direction, a.proto).contains(&observed);
        all_agree &= agrees;
        rows.push([
            a.who.clone(),
            format!("{} {}", a.proto, a.dst),
            decision.name.to_string(),
            verdict_word(decision.verdict).into(),
            describe(observed),
            if agrees { "ok" } else { "MISMATCH" }.into(),
        ]);
    }
    print_table(&rows);

    zt(&["status"])?;
    zt(&["audit", "--since", &started])?;
    zt(&["flush"])?;
    println!(
        "\n{}",
        if all_agree {
            "Every connection was decided as the policy says. zt's table is flushed; the namespace ends with this program."
        } else {
            "Some connections were not decided as the policy says (MISMATCH above)."
        }
    );
    let _ = std::fs::remove_dir_all(&state);
    Ok(all_agree)
}

/// Make the connection; the probe the evaluator judges and what happened.
fn realize(a: &Attempt, peer: &Peer) -> (Probe, Outcome) {
    let protocol = match a.proto {
        Proto::Tcp => ProbeProtocol::Tcp,
        Proto::Udp => ProbeProtocol::Udp,
    };
    match a.id {
        Some(id) => (
            Probe::connect(protocol, id.uid, id.gid, a.dst),
            connect_as(id, a.proto, a.dst, TIMEOUT),
        ),
        None => {
            let src = match a.dst.ip() {
                IpAddr::V4(_) => IpAddr::V4(Peer::PEER_V4),
                IpAddr::V6(_) => IpAddr::V6(Peer::PEER_V6),
            };
            (
                Probe::inbound(protocol, src, a.dst),
                peer.connect(a.proto, a.dst, TIMEOUT),
            )
        }
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Accept => "allow",
        Verdict::Drop => "deny",
        Verdict::Reject => "reject",
    }
}

fn describe(o: Outcome) -> String {
    match o {
        Outcome::Connected => "connected".into(),
        Outcome::Refused => "refused (reset)".into(),
        Outcome::TimedOut => "dropped (timed out)".into(),
        Outcome::NotPermitted => "dropped (EPERM)".into(),
        Outcome::Error(e) => format!("error {e}"),
    }
}

fn print_table(rows: &[[String; 6]]) {
    let mut width = [0usize; 6];
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(width)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("  {}", line.join("  ").trim_end());
    }
}

fn tempdir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("zt-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}
