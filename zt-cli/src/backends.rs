//! Picking a backend at run time, as `Box<dyn Backend>` (netavark's pattern): commands are
//! written once against the trait.

use crate::Context;
use crate::args::{BackendName, IptablesVariant};
use crate::exit::{Classify, Outcome};
use crate::policy_file::PolicyFile;
use zt_backend_ebpf::EbpfBackend;
use zt_backend_iptables::{IptablesBackend, Variant};
use zt_backend_nft::NftBackend;
use zt_core::{Backend, Persistence};

/// The backend the global options name.
pub fn open(ctx: &Context<'_>) -> Outcome<Box<dyn Backend>> {
    Ok(match ctx.global.backend {
        BackendName::Nft => Box::new(NftBackend::new()),
        BackendName::Iptables => Box::new(iptables(ctx)?),
        BackendName::Ebpf => Box::new(ebpf(ctx)?),
    })
}

fn iptables(ctx: &Context<'_>) -> Outcome<IptablesBackend> {
    Ok(IptablesBackend::new(zt_backend_iptables::Options {
        variant: ctx.global.iptables_variant.map(|v| match v {
            IptablesVariant::Legacy => Variant::Legacy,
            IptablesVariant::Nft => Variant::Nft,
        }),
        ..zt_backend_iptables::Options::default()
    })?)
}

/// The eBPF backend for the global options: the host's cgroup v2 mount, attached to
/// `--ebpf-cgroup` (default: its root), pinned under `--ebpf-pin-dir`.
pub fn ebpf(ctx: &Context<'_>) -> Outcome<EbpfBackend> {
    let mut options = zt_backend_ebpf::Options::detect()
        .map_err(zt_core::Error::from)?
        .pin_dir(&ctx.global.ebpf_pin_dir);
    if let Some(cgroup) = &ctx.global.ebpf_cgroup {
        options = options.attach_to(cgroup);
    }
    Ok(EbpfBackend::new(options))
}

/// What restores a policy at boot with the chosen backend: the rendered rules and a unit
/// that loads them, or for eBPF (nothing to load without zt) the policy and a unit that
/// applies it.
pub fn persistence(ctx: &Context<'_>, file: &PolicyFile) -> Outcome<Persistence> {
    let ruleset = file.policy.ruleset();
    Ok(match ctx.global.backend {
        BackendName::Nft => NftBackend::new().persistence(&ruleset),
        BackendName::Iptables => iptables_persistence(&iptables(ctx)?, &ruleset)?,
        BackendName::Ebpf => {
            // Refuse now what the backend would refuse at boot.
            ebpf(ctx)?.render(&ruleset)?;
            let zt = std::env::current_exe().or_system("cannot find the zt executable")?;
            let mut args = vec!["--backend".to_owned(), "ebpf".to_owned()];
            args.push("--ebpf-pin-dir".into());
            args.push(ctx.global.ebpf_pin_dir.display().to_string());
            if let Some(cgroup) = &ctx.global.ebpf_cgroup {
                args.push("--ebpf-cgroup".into());
                args.push(cgroup.display().to_string());
            }
            zt_core::persist::reapply_at_boot("ebpf", &zt, &args, &file.source)
        }
    })
}

/// The iptables rules as restore files under `/etc/zt` (IPv4 and IPv6, the output of
/// `render`: zt's chains, the jumps to them and the rules), and a unit that loads them with
/// the host's variant of `iptables-restore --noflush` (other tools' rules stay).
fn iptables_persistence(
    backend: &IptablesBackend,
    ruleset: &zt_core::Ruleset,
) -> Outcome<Persistence> {
    let artifact = backend.render(ruleset)?;
    let mut files = Vec::new();
    let mut commands = Vec::new();
    for (file, family) in artifact
        .files
        .iter()
        .zip([zt_core::Family::V4, zt_core::Family::V6])
    {
        let path = std::path::PathBuf::from(zt_core::persist::PERSIST_DIR)
            .join(format!("iptables-{}", file.name));
        commands.push(format!(
            "/usr/sbin/{} --noflush {}",
            backend.variant().restore(family),
            path.display()
        ));
        files.push(zt_core::PersistFile {
            path,
            mode: 0o600,
            contents: file.contents.clone(),
        });
    }
    let (unit, link) = zt_core::persist::systemd_unit(
        "zt-iptables.service",
        "zt: restore the iptables policy (zt's ZT-* chains)",
        &commands,
    );
    files.push(unit);
    Ok(Persistence {
        files,
        links: vec![link],
    })
}
