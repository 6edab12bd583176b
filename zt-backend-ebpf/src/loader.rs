//! [`Pinned`]: the [`Kernel`] seam implemented with aya and bpffs pins.
//!
//! Everything zt creates lives under one pin directory (default `/sys/fs/bpf/zt`), so it
//! outlives the process that applied it and `flush` knows exactly what is zt's:
//!
//! ```text
//! <pin dir>/maps/zt_active zt_header zt_groups zt_members zt_prefixes zt_rules
//!                zt_counters zt_audit zt_audit_lost
//! <pin dir>/programs/connect4 connect6 sendmsg4 sendmsg6
//! <pin dir>/links/connect4 connect6 sendmsg4 sendmsg6     (bpf_link to the cgroup)
//! ```
//!
//! A policy change opens the pinned maps and writes them; the programs are loaded only when a
//! link is missing (first apply, or repair after someone removed one). The maps (`maps`) and
//! the programs (`programs`) each have a module; this one holds the pin paths and the
//! [`Kernel`] seam.

mod maps;
mod programs;

use crate::EbpfError;
use crate::audit::AuditRecord;
use crate::kernel::{Attachment, Kernel, SocketHook, State};
use crate::layout::{self, MAX_RULES, RawAudit, RawRuleKey};
use crate::render::{CgroupIds, Rendered};
use crate::sys;
use aya::maps::{MapData, RingBuf};
use maps::MAPS;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use zt_core::CgroupPath;

/// zt's programs and maps pinned under one bpffs directory, attached to one cgroup.
#[derive(Clone, Debug)]
pub struct Pinned {
    pin_dir: PathBuf,
    cgroup_root: PathBuf,
    attach_cgroup: PathBuf,
}

fn kernel_err<E>(action: impl Into<String>) -> impl FnOnce(E) -> EbpfError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let action = action.into();
    move |e| EbpfError::kernel(action, e)
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

impl Pinned {
    /// Objects pinned under `pin_dir`, programs attached to `attach_cgroup`; cgroup rules are
    /// resolved under `cgroup_root` (the cgroup v2 mount).
    pub fn new(pin_dir: PathBuf, cgroup_root: PathBuf, attach_cgroup: PathBuf) -> Self {
        Self {
            pin_dir,
            cgroup_root,
            attach_cgroup,
        }
    }

    fn map_path(&self, name: &str) -> PathBuf {
        self.pin_dir.join("maps").join(name)
    }

    fn program_path(&self, hook: SocketHook) -> PathBuf {
        self.pin_dir.join("programs").join(hook.name())
    }

    fn link_path(&self, hook: SocketHook) -> PathBuf {
        self.pin_dir.join("links").join(hook.name())
    }

    /// Where a new link is pinned before it replaces the old one (bpffs refuses '.' in names).
    fn fresh_link_path(&self, hook: SocketHook) -> PathBuf {
        self.pin_dir
            .join("links")
            .join(format!("{}_next", hook.name()))
    }

    /// Make sure the pin directory (and its subdirectories) exist on a bpffs.
    fn prepare_dirs(&self) -> Result<(), EbpfError> {
        let mut existing = self.pin_dir.as_path();
        while !existing.exists() {
            existing = existing.parent().unwrap_or(Path::new("/"));
        }
        let fs = sys::fs_type(existing)
            .map_err(kernel_err(format!("checking {}", existing.display())))?;
        if fs != sys::BPF_FS_MAGIC {
            return Err(EbpfError::NotBpfFs {
                path: self.pin_dir.clone(),
            });
        }
        for sub in ["maps", "programs", "links"] {
            let dir = self.pin_dir.join(sub);
            std::fs::create_dir_all(&dir)
                .map_err(kernel_err(format!("creating {}", dir.display())))?;
        }
        Ok(())
    }
}

fn remove_pin(path: &Path) -> Result<(), EbpfError> {
    match std::fs::remove_file(path) {
        Err(e) if !not_found(&e) => {
            Err(EbpfError::kernel(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

fn remove_dir(path: &Path) -> Result<(), EbpfError> {
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if not_found(&e) || e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(()),
        Err(e) => Err(EbpfError::kernel(format!("removing {}", path.display()), e)),
    }
}

impl CgroupIds for Pinned {
    fn cgroup_id(&self, path: &CgroupPath) -> Option<u64> {
        let dir = self.cgroup_root.join(path.as_str());
        std::fs::metadata(dir)
            .ok()
            .filter(|m| m.is_dir())
            .map(|m| m.ino())
    }
}

impl Kernel for Pinned {
    fn read(&mut self) -> Result<State, EbpfError> {
        let hooks = self.hooks()?;
        let maps = match self.open_maps()? {
            None => None,
            Some(maps) => {
                let active = maps.active_generation()?;
                layout::decode(&maps.read_generation(active)?)?
            }
        };
        Ok(State { maps, hooks })
    }

    fn install(&mut self, rendered: &Rendered) -> Result<(), EbpfError> {
        self.prepare_dirs()?;
        let hooks = self.hooks()?;
        let maps_pinned = MAPS.iter().all(|s| self.map_path(s.name).exists());
        let stale: Vec<SocketHook> = hooks
            .iter()
            .filter(|(_, a)| !maps_pinned || *a != Attachment::Attached)
            .map(|(h, _)| *h)
            .collect();
        if stale.is_empty()
            && let Some(mut maps) = self.open_maps()?
        {
            return maps.write(rendered);
        }
        // First apply, or repair: load the object (creating missing maps), verify the
        // programs, fill the maps, and only then attach — a program never runs on empty maps.
        // Programs attached to maps that are no longer pinned are replaced with ones that use
        // the pinned maps.
        let mut ebpf = self.load_object()?;
        self.load_programs(&mut ebpf, &stale)?;
        let mut maps = self.open_maps()?.ok_or_else(|| EbpfError::Incompatible {
            detail: "the object's maps were not pinned where zt expects them".to_owned(),
        })?;
        maps.write(rendered)?;
        self.link(&mut ebpf, &stale)
    }

    fn counters(&mut self, indexes: &[u32]) -> Result<Vec<u64>, EbpfError> {
        let Some(maps) = self.open_maps()? else {
            return Ok(vec![0; indexes.len()]);
        };
        let active = maps.active_generation()?;
        indexes
            .iter()
            .map(|&i| {
                maps.counters
                    .get(&(active * MAX_RULES + i), 0)
                    .map(|values| values.iter().copied().fold(0u64, u64::wrapping_add))
                    .map_err(kernel_err("reading zt_counters"))
            })
            .collect()
    }

    fn drain_audit(&mut self) -> Result<Vec<AuditRecord>, EbpfError> {
        let Some(map) = self.open_required("zt_audit")? else {
            return Ok(Vec::new());
        };
        let mut ring: RingBuf<MapData> = map
            .try_into()
            .map_err(kernel_err("opening the zt_audit ring buffer"))?;
        let mut raw = Vec::new();
        while let Some(item) = ring.next() {
            if let Some(record) = RawAudit::from_bytes(&item) {
                raw.push(record);
            }
        }
        let maps = self.open_maps()?;
        let name = |generation: u32, index: u32| {
            let maps = maps.as_ref()?;
            let rule = maps.rules.get(&RawRuleKey { generation, index }, 0).ok()?;
            let end = rule.name.iter().position(|&b| b == 0).unwrap_or(64);
            Some(String::from_utf8_lossy(&rule.name[..end]).into_owned())
        };
        let booted = crate::audit::boot_epoch();
        Ok(raw
            .iter()
            .map(|r| AuditRecord::from_raw(r, name, booted))
            .collect())
    }

    fn remove(&mut self) -> Result<(), EbpfError> {
        for hook in SocketHook::ALL {
            for path in [self.link_path(hook), self.fresh_link_path(hook)] {
                match sys::obj_get(&path) {
                    Ok(link) => {
                        // Detach now: unpinning alone releases the link only after an RCU
                        // grace period and a work item. A link that cannot be detached (its
                        // cgroup is gone) is released by the unpin all the same.
                        let _detached = sys::link_detach(&link);
                        remove_pin(&path)?;
                    }
                    Err(e) if not_found(&e) => {}
                    Err(e) => {
                        return Err(EbpfError::kernel(format!("opening {}", path.display()), e));
                    }
                }
            }
            remove_pin(&self.program_path(hook))?;
        }
        for spec in &MAPS {
            remove_pin(&self.map_path(spec.name))?;
        }
        for sub in ["links", "programs", "maps"] {
            remove_dir(&self.pin_dir.join(sub))?;
        }
        remove_dir(&self.pin_dir)
    }
}
