//! The backend `zt-agent run` enforces with, chosen at run time as `Box<dyn Backend>`.

use crate::cli::{BackendName, IptablesVariant, RunArgs};
use std::path::PathBuf;
use zt_backend_ebpf::EbpfBackend;
use zt_backend_iptables::{IptablesBackend, Variant};
use zt_backend_nft::NftBackend;
use zt_core::Backend;

/// What it takes to make the backend (on the engine thread: backends need not be `Send`).
#[derive(Clone, Debug)]
pub struct Choice {
    backend: BackendName,
    iptables_variant: Option<IptablesVariant>,
    ebpf_cgroup: Option<PathBuf>,
    ebpf_pin_dir: PathBuf,
}

impl Choice {
    /// The choice the command line made.
    pub fn of(args: &RunArgs) -> Choice {
        Choice {
            backend: args.backend,
            iptables_variant: args.iptables_variant,
            ebpf_cgroup: args.ebpf_cgroup.clone(),
            ebpf_pin_dir: args.ebpf_pin_dir.clone(),
        }
    }

    /// Make the backend.
    pub fn open(self) -> Result<Box<dyn Backend>, String> {
        Ok(match self.backend {
            BackendName::Nft => Box::new(NftBackend::new()),
            BackendName::Iptables => Box::new(
                IptablesBackend::new(zt_backend_iptables::Options {
                    variant: self.iptables_variant.map(|v| match v {
                        IptablesVariant::Legacy => Variant::Legacy,
                        IptablesVariant::Nft => Variant::Nft,
                    }),
                    ..zt_backend_iptables::Options::default()
                })
                .map_err(|e| e.to_string())?,
            ),
            BackendName::Ebpf => {
                let mut options = zt_backend_ebpf::Options::detect()
                    .map_err(|e| e.to_string())?
                    .pin_dir(&self.ebpf_pin_dir);
                if let Some(cgroup) = &self.ebpf_cgroup {
                    options = options.attach_to(cgroup);
                }
                Box::new(EbpfBackend::new(options))
            }
        })
    }
}
