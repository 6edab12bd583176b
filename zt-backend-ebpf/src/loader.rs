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
//! link is missing (first apply, or repair after someone removed one).

use crate::EbpfError;
use crate::audit::AuditRecord;
use crate::kernel::{Attachment, Kernel, SocketHook, State};
use crate::layout::{
    self, Generation, MAX_GROUPS, MAX_RULES, RawActive, RawAudit, RawGroup, RawHeader, RawMember,
    RawMemberKey, RawPrefixData, RawRule, RawRuleKey,
};
use crate::render::{CgroupIds, Rendered};
use crate::sys;
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap, Map, MapData, MapType, PerCpuArray, PerCpuValues, RingBuf};
use aya::programs::CgroupSockAddr;
use aya::programs::links::FdLink;
use aya::{Ebpf, EbpfLoader};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use zt_core::CgroupPath;

/// The object clang built from `bpf/zt.bpf.c`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/zt.bpf.o"));

/// One map of the object, with the layout zt expects of its pin.
struct MapSpec {
    name: &'static str,
    kind: MapType,
    key: usize,
    value: usize,
    max_entries: u32,
}

const MAPS: [MapSpec; 9] = [
    MapSpec {
        name: "zt_active",
        kind: MapType::Array,
        key: 4,
        value: size_of::<RawActive>(),
        max_entries: 1,
    },
    MapSpec {
        name: "zt_header",
        kind: MapType::Array,
        key: 4,
        value: size_of::<RawHeader>(),
        max_entries: 2,
    },
    MapSpec {
        name: "zt_groups",
        kind: MapType::Array,
        key: 4,
        value: size_of::<RawGroup>(),
        max_entries: 2 * MAX_GROUPS,
    },
    MapSpec {
        name: "zt_members",
        kind: MapType::Hash,
        key: size_of::<RawMemberKey>(),
        value: size_of::<RawMember>(),
        max_entries: layout::MAX_MEMBERS,
    },
    MapSpec {
        name: "zt_prefixes",
        kind: MapType::LpmTrie,
        key: size_of::<Key<RawPrefixData>>(),
        value: 4,
        max_entries: layout::MAX_PREFIXES,
    },
    MapSpec {
        name: "zt_rules",
        kind: MapType::Hash,
        key: size_of::<RawRuleKey>(),
        value: size_of::<RawRule>(),
        max_entries: 2 * MAX_RULES,
    },
    MapSpec {
        name: "zt_counters",
        kind: MapType::PerCpuArray,
        key: 4,
        value: 8,
        max_entries: 2 * MAX_RULES,
    },
    MapSpec {
        name: "zt_audit",
        kind: MapType::RingBuf,
        key: 0,
        value: 0,
        max_entries: layout::AUDIT_BYTES,
    },
    MapSpec {
        name: "zt_audit_lost",
        kind: MapType::PerCpuArray,
        key: 4,
        value: 8,
        max_entries: 1,
    },
];

/// zt's programs and maps pinned under one bpffs directory, attached to one cgroup.
#[derive(Clone, Debug)]
pub struct Pinned {
    pin_dir: PathBuf,
    cgroup_root: PathBuf,
    attach_cgroup: PathBuf,
}

/// The pinned maps, opened.
struct Maps {
    active: Array<MapData, RawActive>,
    header: Array<MapData, RawHeader>,
    groups: Array<MapData, RawGroup>,
    members: HashMap<MapData, RawMemberKey, RawMember>,
    prefixes: LpmTrie<MapData, RawPrefixData, u32>,
    rules: HashMap<MapData, RawRuleKey, RawRule>,
    counters: PerCpuArray<MapData, u64>,
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

    /// Open one pinned map, checking it has the layout zt expects. `None` when not pinned.
    fn open_map(&self, spec: &MapSpec) -> Result<Option<Map>, EbpfError> {
        let path = self.map_path(spec.name);
        if !path.exists() {
            return Ok(None);
        }
        let data = MapData::from_pin(&path)
            .map_err(kernel_err(format!("opening pinned map {}", path.display())))?;
        let info = data
            .info()
            .map_err(kernel_err(format!("reading map {}", path.display())))?;
        let kind = info.map_type().ok();
        if kind != Some(spec.kind)
            || info.key_size() as usize != spec.key
            || info.value_size() as usize != spec.value
            || info.max_entries() != spec.max_entries
        {
            return Err(EbpfError::Incompatible {
                detail: format!(
                    "{} is a {:?} map with key {} B, value {} B, {} entries; zt expects {:?}, {} B, {} B, {}",
                    path.display(),
                    kind,
                    info.key_size(),
                    info.value_size(),
                    info.max_entries(),
                    spec.kind,
                    spec.key,
                    spec.value,
                    spec.max_entries
                ),
            });
        }
        Map::from_map_data(data)
            .map(Some)
            .map_err(kernel_err(format!("opening pinned map {}", path.display())))
    }

    fn open_required(&self, name: &str) -> Result<Option<Map>, EbpfError> {
        match MAPS.iter().find(|s| s.name == name) {
            Some(spec) => self.open_map(spec),
            None => Ok(None),
        }
    }

    /// Open the maps the policy lives in; `None` when any of them is not pinned.
    fn open_maps(&self) -> Result<Option<Maps>, EbpfError> {
        macro_rules! open {
            ($name:literal) => {
                match self.open_required($name)? {
                    Some(map) => map
                        .try_into()
                        .map_err(kernel_err(concat!("opening map ", $name)))?,
                    None => return Ok(None),
                }
            };
        }
        Ok(Some(Maps {
            active: open!("zt_active"),
            header: open!("zt_header"),
            groups: open!("zt_groups"),
            members: open!("zt_members"),
            prefixes: open!("zt_prefixes"),
            rules: open!("zt_rules"),
            counters: open!("zt_counters"),
        }))
    }

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

    fn hooks(&self) -> Result<Vec<(SocketHook, Attachment)>, EbpfError> {
        let any_link = SocketHook::ALL.iter().any(|h| self.link_path(*h).exists());
        // Without links there is nothing to compare, and the attach cgroup may not exist yet.
        let cgroup = if any_link { self.attach_id()? } else { 0 };
        SocketHook::ALL
            .iter()
            .map(|&h| Ok((h, self.attachment(h, cgroup)?)))
            .collect()
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

    /// Load the object, creating (and pinning) missing maps and reusing pinned ones.
    fn load_object(&self) -> Result<Ebpf, EbpfError> {
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
    fn load_programs(&self, ebpf: &mut Ebpf, hooks: &[SocketHook]) -> Result<(), EbpfError> {
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
    fn link(&self, ebpf: &mut Ebpf, hooks: &[SocketHook]) -> Result<(), EbpfError> {
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

    /// Read one generation's raw entries.
    fn read_generation(maps: &Maps, generation: u32) -> Result<Generation, EbpfError> {
        let header = maps
            .header
            .get(&generation, 0)
            .map_err(kernel_err("reading zt_header"))?;
        let count = header.groups.min(MAX_GROUPS);
        let groups = (0..count)
            .map(|i| {
                maps.groups
                    .get(&(generation * MAX_GROUPS + i), 0)
                    .map_err(kernel_err("reading zt_groups"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut members = Vec::new();
        for entry in maps.members.iter() {
            let (k, v) = entry.map_err(kernel_err("reading zt_members"))?;
            if layout::scope_generation(k.group) == generation {
                members.push((k, v));
            }
        }
        let mut prefixes = Vec::new();
        for entry in maps.prefixes.iter() {
            let (k, v) = entry.map_err(kernel_err("reading zt_prefixes"))?;
            let data = k.data();
            if layout::scope_generation(data.list) == generation {
                prefixes.push((k.prefix_len(), data, v));
            }
        }
        let mut rules = Vec::new();
        for entry in maps.rules.iter() {
            let (k, v) = entry.map_err(kernel_err("reading zt_rules"))?;
            if k.generation == generation {
                rules.push((k, v));
            }
        }
        Ok(Generation {
            generation,
            header,
            groups,
            members,
            prefixes,
            rules,
        })
    }

    fn active(maps: &Maps) -> Result<u32, EbpfError> {
        maps.active
            .get(&0, 0)
            .map(|a| a.generation & 1)
            .map_err(kernel_err("reading zt_active"))
    }

    /// Empty generation `generation` of the hash and trie maps.
    fn clear(maps: &mut Maps, generation: u32) -> Result<(), EbpfError> {
        let keys: Vec<RawMemberKey> = maps
            .members
            .keys()
            .filter_map(Result::ok)
            .filter(|k| layout::scope_generation(k.group) == generation)
            .collect();
        for k in keys {
            ignore_missing(maps.members.remove(&k)).map_err(kernel_err("clearing zt_members"))?;
        }
        let keys: Vec<Key<RawPrefixData>> = maps
            .prefixes
            .keys()
            .filter_map(Result::ok)
            .filter(|k| layout::scope_generation(k.data().list) == generation)
            .collect();
        for k in keys {
            ignore_missing(maps.prefixes.remove(&k)).map_err(kernel_err("clearing zt_prefixes"))?;
        }
        let keys: Vec<RawRuleKey> = maps
            .rules
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.generation == generation)
            .collect();
        for k in keys {
            ignore_missing(maps.rules.remove(&k)).map_err(kernel_err("clearing zt_rules"))?;
        }
        Ok(())
    }

    /// Fill the inactive generation with `rendered` and flip the active index.
    fn write(maps: &mut Maps, rendered: &Rendered) -> Result<(), EbpfError> {
        let target = 1 - Self::active(maps)?;
        // The inactive generation is the one before last: programs that read the index before
        // the previous flip may only still be running now if applies follow each other within
        // microseconds.
        Self::clear(maps, target)?;
        let raw = layout::encode(rendered, target);
        let cpus = aya::util::nr_cpus()
            .map_err(|(what, e)| EbpfError::kernel(format!("reading {what}"), e))?;
        for r in &raw.rules {
            let zero = PerCpuValues::try_from(vec![0u64; cpus])
                .map_err(kernel_err("preparing counters"))?;
            maps.counters
                .set(target * MAX_RULES + r.0.index, zero, 0)
                .map_err(kernel_err("resetting zt_counters"))?;
        }
        for (i, g) in (0u32..).zip(&raw.groups) {
            maps.groups
                .set(target * MAX_GROUPS + i, g, 0)
                .map_err(kernel_err("writing zt_groups"))?;
        }
        for (k, v) in &raw.members {
            maps.members
                .insert(k, v, 0)
                .map_err(kernel_err("writing zt_members"))?;
        }
        for &(len, data, rule) in &raw.prefixes {
            maps.prefixes
                .insert(&Key::new(len, data), rule, 0)
                .map_err(kernel_err("writing zt_prefixes"))?;
        }
        for (k, v) in &raw.rules {
            maps.rules
                .insert(k, v, 0)
                .map_err(kernel_err("writing zt_rules"))?;
        }
        #[cfg(feature = "fault-injection")]
        if zt_core::fault::active("kernel-reject") {
            // A prefix longer than the trie's keys: the kernel refuses it (EINVAL).
            maps.prefixes
                .insert(&Key::new(u32::MAX, RawPrefixData::default()), 0, 0)
                .map_err(kernel_err("writing zt:injected-fault"))?;
        }
        maps.header
            .set(target, raw.header, 0)
            .map_err(kernel_err("writing zt_header"))?;
        zt_core::fault::kill_at("generation-filled");
        maps.active
            .set(0, RawActive { generation: target }, 0)
            .map_err(kernel_err("flipping zt_active"))
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

/// A map removal that found nothing is not an error (a concurrent reader may race us).
fn ignore_missing(r: Result<(), aya::maps::MapError>) -> Result<(), aya::maps::MapError> {
    match r {
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        other => other,
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
                let active = Self::active(&maps)?;
                layout::decode(&Self::read_generation(&maps, active)?)?
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
            return Self::write(&mut maps, rendered);
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
        Self::write(&mut maps, rendered)?;
        self.link(&mut ebpf, &stale)
    }

    fn counters(&mut self, indexes: &[u32]) -> Result<Vec<u64>, EbpfError> {
        let Some(maps) = self.open_maps()? else {
            return Ok(vec![0; indexes.len()]);
        };
        let active = Self::active(&maps)?;
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
