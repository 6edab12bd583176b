//! Picking a backend at run time, as `Box<dyn Backend>` (netavark's pattern), and the engine
//! over it: commands are written once, against the trait and the engine.

use crate::args::{BackendName, IptablesVariant};
use crate::exit::Outcome;
use crate::watchdog::Detached;
use crate::{Context, output};
use zt_backend_ebpf::EbpfBackend;
use zt_backend_iptables::{IptablesBackend, Variant};
use zt_backend_nft::NftBackend;
use zt_core::Backend;
use zt_engine::{Engine, Event};

/// The backend the global options name.
pub fn open(ctx: &Context<'_>) -> Outcome<Box<dyn Backend>> {
    Ok(match ctx.global.backend {
        BackendName::Nft => Box::new(NftBackend::new()),
        BackendName::Iptables => Box::new(IptablesBackend::new(zt_backend_iptables::Options {
            variant: ctx.global.iptables_variant.map(|v| match v {
                IptablesVariant::Legacy => Variant::Legacy,
                IptablesVariant::Nft => Variant::Nft,
            }),
            ..zt_backend_iptables::Options::default()
        })?),
        BackendName::Ebpf => {
            // The host's cgroup v2 mount, attached to `--ebpf-cgroup` (default: its root),
            // pinned under `--ebpf-pin-dir`.
            let mut options = zt_backend_ebpf::Options::detect()
                .map_err(zt_core::Error::from)?
                .pin_dir(&ctx.global.ebpf_pin_dir);
            if let Some(cgroup) = &ctx.global.ebpf_cgroup {
                options = options.attach_to(cgroup);
            }
            Box::new(EbpfBackend::new(options))
        }
    })
}

/// The engine over the chosen backend and state directory, reporting progress as `-v` and
/// the output format ask. With `show_diff`, the plan is printed as soon as it is made, before
/// the kernel is touched. The observer runs inside the transaction, so it prints through
/// [`output`], whose failures return to the engine like successes.
pub fn engine(ctx: &Context<'_>, show_diff: bool) -> Outcome<Engine> {
    let backend = open(ctx)?;
    let (json, verbose, full) = (ctx.global.json, ctx.global.verbose, ctx.full_diff);
    let engine = Engine::open(&ctx.global.state_dir, backend)?
        .no_wait(ctx.global.no_wait)
        .with_watchdog(Box::new(Detached::new(ctx.global)))
        .observe(move |event| match event {
            Event::Planned { plan, took } => {
                if verbose {
                    output::err(format_args!("zt: planned in {took:.1?}"));
                }
                if show_diff && !json {
                    crate::say_diff(&plan.diff, full);
                }
            }
            Event::Applied { took } if verbose => {
                output::err(format_args!("zt: applied in {took:.1?}"))
            }
            Event::Verified { drift, took } => {
                if verbose {
                    output::err(format_args!("zt: verified in {took:.1?}"));
                }
                if !drift.is_empty() && !json {
                    output::out(drift.to_string().trim_end());
                }
            }
            Event::Armed { watchdog } if verbose => {
                output::err(format_args!("zt: watchdog: {watchdog}"))
            }
            Event::Expired { reason } => {
                output::err(format_args!("{} zt: {reason}", jiff::Timestamp::now()))
            }
            _ => {}
        });
    Ok(engine)
}
