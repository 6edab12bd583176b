//! The programs: loading them through the verifier, pinning them, and attaching them to the
//! cgroup with pinned links.

use super::maps::MAPS;
use super::{Pinned, kernel_err, not_found, remove_pin};
use crate::EbpfError;
use crate::kernel::{Attachment, SocketHook};
use crate::sys;
use aya::programs::CgroupSockAddr;
use aya::programs::links::FdLink;
use aya::{Ebpf, EbpfLoader};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The object clang built from `bpf/zt.bpf.c`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/zt.bpf.o"));

impl Pinned {
    /// The id of the cgroup the programs attach to; 0 (no cgroup's id) when it is gone, so
    /// links pinned for it show as attached elsewhere.
    fn attach_id(&self) -> Result<u64, EbpfError> {
        match std::fs::metadata(&self.attach_cgroup) {
            Ok(m) => Ok(m.ino()),
            Err(e) if not_found(&e) => Ok(0),
            Err(e) => Err(EbpfError::kernel(
                format!("reading the attach cgroup {}", self.attach_cgroup.display()),
                e,
            )),
        }
    }

    fn attachment(&self, hook: SocketHook, cgroup: u64) -> Result<Attachment, EbpfError> {
        let path = self.link_path(hook);
        let link = match sys::obj_get(&path) {
            Ok(fd) => fd,
            Err(e) if not_found(&e) => return Ok(Attachment::Missing),
            Err(e) => return Err(EbpfError::kernel(format!("opening {}", path.display()), e)),
        };
        let attached = sys::link_cgroup(&link)
            .map_err(kernel_err(format!("reading link {}", path.display())))?;
        Ok(if attached == Some(cgroup) {
            Attachment::Attached
        } else {
            Attachment::Elsewhere
        })
    }

    pub(super) fn hooks(&self) -> Result<Vec<(SocketHook, Attachment)>, EbpfError> {
        let any_link = SocketHook::ALL.iter().any(|h| self.link_path(*h).exists());
        // Without links there is nothing to compare, and the attach cgroup may not exist yet.
        let cgroup = if any_link { self.attach_id()? } else { 0 };
        SocketHook::ALL
            .iter()
            .map(|&h| Ok((h, self.attachment(h, cgroup)?)))
            .collect()
    }

    /// Load the object, creating (and pinning) missing maps and reusing pinned ones.
    pub(super) fn load_object(&self) -> Result<Ebpf, EbpfError> {
        // Check the layout of what is pinned before aya reuses it unchecked.
        for spec in &MAPS {
            self.open_map(spec)?;
        }
        let paths: Vec<(&'static str, PathBuf)> = MAPS
            .iter()
            .map(|s| (s.name, self.map_path(s.name)))
            .collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        loader
            .load(OBJECT)
            .map_err(kernel_err("loading zt's eBPF object (creating its maps)"))
    }

    /// Load (through the verifier) and pin the programs of `hooks`.
    pub(super) fn load_programs(
        &self,
        ebpf: &mut Ebpf,
        hooks: &[SocketHook],
    ) -> Result<(), EbpfError> {
        for &hook in hooks {
            let program = program(ebpf, hook)?;
            program
                .load()
                .map_err(kernel_err(format!("loading program {hook} (verifier)")))?;
            let pin = self.program_path(hook);
            remove_pin(&pin)?;
            program
                .pin(&pin)
                .map_err(kernel_err(format!("pinning {}", pin.display())))?;
        }
        Ok(())
    }

    /// Attach the (loaded) programs of `hooks` to the configured cgroup and pin their links.
    pub(super) fn link(&self, ebpf: &mut Ebpf, hooks: &[SocketHook]) -> Result<(), EbpfError> {
        let cgroup = std::fs::File::open(&self.attach_cgroup).map_err(kernel_err(format!(
            "opening the attach cgroup {}",
            self.attach_cgroup.display()
        )))?;
        for &hook in hooks {
            let program = program(ebpf, hook)?;
            // A cgroup bpf_link always coexists with other programs on the cgroup (the kernel
            // runs them all; any refusal refuses), so zt never displaces another tool's.
            let id = program
                .attach(&cgroup, aya::programs::CgroupAttachMode::Single)
                .map_err(kernel_err(format!(
                    "attaching {hook} to {}",
                    self.attach_cgroup.display()
                )))?;
            let link: FdLink = program
                .take_link(id)
                .map_err(kernel_err(format!("taking the link of {hook}")))?
                .try_into()
                .map_err(kernel_err(format!("the link of {hook}")))?;
            // Pin beside the old link, then rename over it: the old attachment (if any) goes
            // away only once the new one is in place.
            let path = self.link_path(hook);
            let fresh = self.fresh_link_path(hook);
            remove_pin(&fresh)?;
            let pinned = link
                .pin(&fresh)
                .map_err(kernel_err(format!("pinning {}", fresh.display())))?;
            std::fs::rename(&fresh, &path).map_err(kernel_err(format!(
                "moving {} to {}",
                fresh.display(),
                path.display()
            )))?;
            drop(pinned);
        }
        Ok(())
    }
}

/// The socket-address program of `hook` in the loaded object.
fn program(ebpf: &mut Ebpf, hook: SocketHook) -> Result<&mut CgroupSockAddr, EbpfError> {
    ebpf.program_mut(hook.name())
        .ok_or_else(|| EbpfError::Incompatible {
            detail: format!("the object has no program {hook}"),
        })?
        .try_into()
        .map_err(kernel_err(format!("program {hook}")))
}
