//! Applying 100, 1 000 and 10 000-rule policies with the nft backend, next to `nft -f` of the
//! same rendered script (targets: 100 rules < 5 ms, 10 000 < 100 ms, faster than `nft -f` at
//! every size). Runs in a network namespace it creates; each iteration starts from a host
//! without zt's table, so both sides build the whole table.

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use std::fmt::Write;
use std::process::Command;
use zt::nft::NftBackend;
use zt::{Backend, Driver, Policy, Ruleset, StaticResolver};
use zt_testkit::{Netns, Prerequisite, require};

/// `n` rules as an orchestrator would generate them: 50 service uids, each allowed to its own
/// destinations and ports, with a deny every 100 rules (so the table holds several runs).
fn policy(n: usize) -> Ruleset {
    let mut y = String::from("version: \"1.0\"\nrules:\n");
    for i in 0..n {
        let action = if i % 100 == 99 { "deny" } else { "allow" };
        let _ = write!(
            y,
            "  - name: r{i}\n    from: {{uid: {}}}\n    to: {{host: 10.{}.{}.1, port: {}}}\n    action: {action}\n",
            2000 + i % 50,
            i / 256 % 256,
            i % 256,
            1024 + i % 60000
        );
    }
    match Policy::from_yaml(&y, "bench.yaml", &StaticResolver::new()) {
        Ok(l) => l.policy.ruleset(),
        Err(e) => panic!("{e}"),
    }
}

fn bench(c: &mut Criterion) {
    if !require(&[Prerequisite::Root, Prerequisite::Binary("nft")]) {
        return;
    }
    let _netns = Netns::new();
    let mut group = c.benchmark_group("nft_apply");
    group.sample_size(20);
    for n in [100usize, 1_000, 10_000] {
        let ruleset = policy(n);
        let backend = std::cell::RefCell::new(NftBackend::new());
        let script = backend.borrow().script(&ruleset);
        let path = std::env::temp_dir().join(format!("zt-bench-{n}.nft"));
        if let Err(e) = std::fs::write(&path, &script) {
            panic!("{e}");
        }
        preflight(&backend, &ruleset, &path);
        group.bench_with_input(BenchmarkId::new("zt", n), &ruleset, |b, rs| {
            b.iter_batched(
                || start_empty(&backend),
                |()| {
                    let mut backend = backend.borrow_mut();
                    let plan = backend.plan(rs).map_err(|e| e.to_string())?;
                    backend.apply(&plan).map_err(|e| e.to_string())
                },
                BatchSize::PerIteration,
            );
        });
        group.bench_with_input(BenchmarkId::new("nft -f", n), &path, |b, path| {
            b.iter_batched(
                || start_empty(&backend),
                |()| {
                    Command::new("nft")
                        .arg("-f")
                        .arg(path)
                        .status()
                        .map(|s| s.success())
                },
                BatchSize::PerIteration,
            );
        });
        let _ = std::fs::remove_file(&path);
    }
    group.finish();
}

/// The untimed set-up of every iteration: remove zt's table, and wait until the kernel has
/// freed the removed objects. nf_tables frees them in a worker after an RCU grace period;
/// closing a netfilter netlink socket waits for that worker, so a short-lived backend's read
/// does it. Without the wait, the previous iteration's clean-up would run during the timed
/// apply, on the same two cores, and be counted against whichever side runs next.
fn start_empty(backend: &std::cell::RefCell<NftBackend>) {
    let _ = backend.borrow_mut().flush();
    let _ = NftBackend::new().read();
}

/// Both sides must succeed and build the same table before either is timed: a failing apply
/// would otherwise be measured as a fast one.
fn preflight(
    backend: &std::cell::RefCell<NftBackend>,
    ruleset: &Ruleset,
    script: &std::path::Path,
) {
    let mut backend = backend.borrow_mut();
    let applied = backend
        .plan(ruleset)
        .and_then(|plan| backend.apply(&plan))
        .and_then(|_| backend.verify(ruleset));
    match applied {
        Ok(drift) if drift.is_empty() => {}
        other => panic!("zt did not apply the policy cleanly: {other:?}"),
    }
    if let Err(e) = backend.flush() {
        panic!("{e}");
    }
    match Command::new("nft").arg("-f").arg(script).status() {
        Ok(s) if s.success() => {}
        other => panic!("nft -f {} failed: {other:?}", script.display()),
    }
    match backend.verify(ruleset) {
        Ok(drift) if drift.is_empty() => {}
        other => panic!("nft -f built a table zt does not recognise: {other:?}"),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
