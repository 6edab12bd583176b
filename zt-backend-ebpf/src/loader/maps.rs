//! The pinned maps: their expected layout, opening them, and reading and writing one
//! generation of the policy.

use super::{Pinned, kernel_err};
use crate::EbpfError;
use crate::layout::{
    self, Generation, MAX_GROUPS, MAX_RULES, RawActive, RawGroup, RawHeader, RawMember,
    RawMemberKey, RawPrefixData, RawRule, RawRuleKey,
};
use crate::render::Rendered;
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap, Map, MapData, MapType, PerCpuArray, PerCpuValues};

/// One map of the object, with the layout zt expects of its pin.
pub(super) struct MapSpec {
    pub(super) name: &'static str,
    kind: MapType,
    key: usize,
    value: usize,
    max_entries: u32,
}

pub(super) const MAPS: [MapSpec; 9] = [
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

/// The pinned maps, opened.
pub(super) struct Maps {
    pub(super) active: Array<MapData, RawActive>,
    pub(super) header: Array<MapData, RawHeader>,
    pub(super) groups: Array<MapData, RawGroup>,
    pub(super) members: HashMap<MapData, RawMemberKey, RawMember>,
    pub(super) prefixes: LpmTrie<MapData, RawPrefixData, u32>,
    pub(super) rules: HashMap<MapData, RawRuleKey, RawRule>,
    pub(super) counters: PerCpuArray<MapData, u64>,
}

impl Pinned {
    /// Open one pinned map, checking it has the layout zt expects. `None` when not pinned.
    pub(super) fn open_map(&self, spec: &MapSpec) -> Result<Option<Map>, EbpfError> {
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

    pub(super) fn open_required(&self, name: &str) -> Result<Option<Map>, EbpfError> {
        match MAPS.iter().find(|s| s.name == name) {
            Some(spec) => self.open_map(spec),
            None => Ok(None),
        }
    }

    /// Open the maps the policy lives in; `None` when any of them is not pinned.
    pub(super) fn open_maps(&self) -> Result<Option<Maps>, EbpfError> {
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
}

impl Maps {
    /// Read one generation's raw entries.
    pub(super) fn read_generation(&self, generation: u32) -> Result<Generation, EbpfError> {
        let header = self
            .header
            .get(&generation, 0)
            .map_err(kernel_err("reading zt_header"))?;
        let count = header.groups.min(MAX_GROUPS);
        let groups = (0..count)
            .map(|i| {
                self.groups
                    .get(&(generation * MAX_GROUPS + i), 0)
                    .map_err(kernel_err("reading zt_groups"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut members = Vec::new();
        for entry in self.members.iter() {
            let (k, v) = entry.map_err(kernel_err("reading zt_members"))?;
            if layout::scope_generation(k.group) == generation {
                members.push((k, v));
            }
        }
        let mut prefixes = Vec::new();
        for entry in self.prefixes.iter() {
            let (k, v) = entry.map_err(kernel_err("reading zt_prefixes"))?;
            let data = k.data();
            if layout::scope_generation(data.list) == generation {
                prefixes.push((k.prefix_len(), data, v));
            }
        }
        let mut rules = Vec::new();
        for entry in self.rules.iter() {
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

    /// The generation the programs read now.
    pub(super) fn active_generation(&self) -> Result<u32, EbpfError> {
        self.active
            .get(&0, 0)
            .map(|a| a.generation & 1)
            .map_err(kernel_err("reading zt_active"))
    }

    /// Empty generation `generation` of the hash and trie maps.
    fn clear(&mut self, generation: u32) -> Result<(), EbpfError> {
        let keys: Vec<RawMemberKey> = self
            .members
            .keys()
            .filter_map(Result::ok)
            .filter(|k| layout::scope_generation(k.group) == generation)
            .collect();
        for k in keys {
            ignore_missing(self.members.remove(&k)).map_err(kernel_err("clearing zt_members"))?;
        }
        let keys: Vec<Key<RawPrefixData>> = self
            .prefixes
            .keys()
            .filter_map(Result::ok)
            .filter(|k| layout::scope_generation(k.data().list) == generation)
            .collect();
        for k in keys {
            ignore_missing(self.prefixes.remove(&k)).map_err(kernel_err("clearing zt_prefixes"))?;
        }
        let keys: Vec<RawRuleKey> = self
            .rules
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.generation == generation)
            .collect();
        for k in keys {
            ignore_missing(self.rules.remove(&k)).map_err(kernel_err("clearing zt_rules"))?;
        }
        Ok(())
    }

    /// Fill the inactive generation with `rendered` and flip the active index.
    pub(super) fn write(&mut self, rendered: &Rendered) -> Result<(), EbpfError> {
        let target = 1 - self.active_generation()?;
        // The inactive generation is the one before last: programs that read the index before
        // the previous flip may only still be running now if applies follow each other within
        // microseconds.
        self.clear(target)?;
        let raw = layout::encode(rendered, target);
        let cpus = aya::util::nr_cpus()
            .map_err(|(what, e)| EbpfError::kernel(format!("reading {what}"), e))?;
        for r in &raw.rules {
            let zero = PerCpuValues::try_from(vec![0u64; cpus])
                .map_err(kernel_err("preparing counters"))?;
            self.counters
                .set(target * MAX_RULES + r.0.index, zero, 0)
                .map_err(kernel_err("resetting zt_counters"))?;
        }
        for (i, g) in (0u32..).zip(&raw.groups) {
            self.groups
                .set(target * MAX_GROUPS + i, g, 0)
                .map_err(kernel_err("writing zt_groups"))?;
        }
        for (k, v) in &raw.members {
            self.members
                .insert(k, v, 0)
                .map_err(kernel_err("writing zt_members"))?;
        }
        for &(len, data, rule) in &raw.prefixes {
            self.prefixes
                .insert(&Key::new(len, data), rule, 0)
                .map_err(kernel_err("writing zt_prefixes"))?;
        }
        for (k, v) in &raw.rules {
            self.rules
                .insert(k, v, 0)
                .map_err(kernel_err("writing zt_rules"))?;
        }
        #[cfg(feature = "fault-injection")]
        if zt_core::fault::active("kernel-reject") {
            // A prefix longer than the trie's keys: the kernel refuses it (EINVAL).
            self.prefixes
                .insert(&Key::new(u32::MAX, RawPrefixData::default()), 0, 0)
                .map_err(kernel_err("writing zt:injected-fault"))?;
        }
        self.header
            .set(target, raw.header, 0)
            .map_err(kernel_err("writing zt_header"))?;
        zt_core::fault::kill_at("generation-filled");
        self.active
            .set(0, RawActive { generation: target }, 0)
            .map_err(kernel_err("flipping zt_active"))
    }
}

/// A map removal that found nothing is not an error (a concurrent reader may race us).
fn ignore_missing(r: Result<(), aya::maps::MapError>) -> Result<(), aya::maps::MapError> {
    match r {
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        other => other,
    }
}
