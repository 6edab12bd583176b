//! Facts about the host that every backend needs to resolve a policy, read in one place.
//!
//! zt-core talks to no kernel object, but a policy names things the host defines: users and
//! groups ([`crate::resolve`]) and cgroups, whose paths are relative to the cgroup v2 mount.
//! Every backend resolves cgroup paths against that mount, so finding it lives here once.

use std::path::PathBuf;

/// Where cgroup v2 is mounted: `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on
/// a hybrid one (cgroup v1 controllers beside a v2 hierarchy), or wherever the mount table says
/// (read from `/proc/self/mountinfo`, so it is the mount this process sees). `None` when no
/// cgroup2 file system is mounted.
pub fn cgroup_v2_root() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    cgroup_v2_mount(&info)
}

/// The cgroup2 mount point of a `mountinfo` text: the standard one where it is mounted (a
/// container runtime may have mounted the hierarchy again elsewhere), else the first.
fn cgroup_v2_mount(mountinfo: &str) -> Option<PathBuf> {
    let mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| {
            // "<id> <parent> <dev> <root> <mount point> <options> [optional…] - <fstype> …"
            let (left, right) = line.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2")
                .then(|| left.split_whitespace().nth(4))
                .flatten()
        })
        .collect();
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .find(|p| mounts.contains(p))
        .or_else(|| mounts.first().copied())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_on_unified_and_hybrid_hosts() {
        let unified = "25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            cgroup_v2_mount(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let hybrid = "30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n\
                      31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n\
                      32 30 0:28 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu\n";
        assert_eq!(
            cgroup_v2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            cgroup_v2_mount("30 25 0:26 / /sys/fs/cgroup ro - cgroup cgroup rw\n"),
            None
        );
    }
}
