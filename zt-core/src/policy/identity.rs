//! Who sends: the identity an egress rule matches.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The sending identity of an egress rule.
///
/// Group rules match the socket owner's *primary* (effective) group only. That is what every
/// backend can see: nftables' `meta skgid` and eBPF's `bpf_get_current_uid_gid` carry one gid,
/// and the iptables backend deliberately does not use `--suppl-groups`, so the three agree.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// Any sender, including packets no socket owns.
    Any,
    /// Sockets owned by this uid.
    User {
        /// The numeric uid.
        uid: u32,
        /// The name it was written as, if it was (shared by every rule that names it).
        name: Option<Arc<str>>,
    },
    /// Sockets whose owner's primary group is this gid.
    Group {
        /// The numeric gid.
        gid: u32,
        /// The name it was written as, if it was (shared by every rule that names it).
        name: Option<Arc<str>>,
    },
    /// Sockets created by processes in this cgroup v2 directory or below it.
    Cgroup(CgroupPath),
}

impl Identity {
    /// Whether every sender `other` matches, `self` matches too.
    pub fn covers(&self, other: &Identity) -> bool {
        match (self, other) {
            (Identity::Any, _) => true,
            (Identity::User { uid: a, name: _ }, Identity::User { uid: b, name: _ }) => a == b,
            (Identity::Group { gid: a, name: _ }, Identity::Group { gid: b, name: _ }) => a == b,
            (Identity::Cgroup(a), Identity::Cgroup(b)) => a.contains(b.as_str()),
            _ => false,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Any => f.write_str("any"),
            Identity::User { uid, name: Some(n) } => write!(f, "uid {uid} ({n})"),
            Identity::User { uid, name: None } => write!(f, "uid {uid}"),
            Identity::Group { gid, name: Some(n) } => write!(f, "gid {gid} ({n})"),
            Identity::Group { gid, name: None } => write!(f, "gid {gid}"),
            Identity::Cgroup(p) => write!(f, "cgroup {p}"),
        }
    }
}

/// A cgroup v2 path relative to the cgroup root, normalized: no leading or trailing `/`, no
/// empty, `.` or `..` components, printable ASCII other than quotes and backslash.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CgroupPath(String);

/// Longest cgroup path accepted (the kernel's PATH_MAX is far larger; nftables carries the
/// path in a 255-byte string).
pub const MAX_CGROUP_PATH: usize = 255;

impl CgroupPath {
    /// A normalized path, or why the text is not one.
    pub fn new(text: &str) -> Result<Self, &'static str> {
        let trimmed = text.trim_matches('/');
        if trimmed.is_empty() {
            return Err("the cgroup root matches every process; use `user: \"*\"` for that");
        }
        if trimmed.len() > MAX_CGROUP_PATH {
            return Err("a cgroup path is at most 255 characters");
        }
        if trimmed
            .chars()
            .any(|c| !('!'..='~').contains(&c) || matches!(c, '"' | '\'' | '\\'))
        {
            return Err(
                "a cgroup path uses printable characters other than spaces, quotes and backslash",
            );
        }
        if trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err("a cgroup path has no empty, '.' or '..' components");
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The path, without a leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Number of components (`system.slice/nginx.service` is at level 2), as nftables'
    /// `socket cgroupv2 level N` counts them.
    pub fn level(&self) -> usize {
        self.0.split('/').count()
    }

    /// Whether a process in cgroup `path` (relative, no leading `/`) is in this cgroup or below.
    pub fn contains(&self, path: &str) -> bool {
        let path = path.trim_matches('/');
        path == self.0
            || (path.starts_with(&self.0) && path.as_bytes().get(self.0.len()) == Some(&b'/'))
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_are_normalized_and_unsafe_ones_refused() {
        assert_eq!(
            CgroupPath::new("/system.slice/nginx.service/").map(|p| p.level()),
            Ok(2)
        );
        assert!(CgroupPath::new("system.slice/../user.slice").is_err());
        assert!(CgroupPath::new("/").is_err());
        assert!(CgroupPath::new("a//b").is_err());
        assert!(CgroupPath::new("a b").is_err());
    }

    #[test]
    fn a_cgroup_contains_itself_and_its_descendants_only() {
        let p = CgroupPath::new("system.slice/nginx.service").unwrap();
        assert!(p.contains("system.slice/nginx.service"));
        assert!(p.contains("/system.slice/nginx.service/worker"));
        assert!(!p.contains("system.slice/nginx.service2"));
        assert!(!p.contains("system.slice"));
    }
}
