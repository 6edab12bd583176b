//! Name resolution (user → uid, group → gid) behind a small trait.
//!
//! zt-core does no I/O of its own; the one place it needs the host is turning names into ids.
//! [`SystemResolver`] asks the passwd and group databases (through NSS, so LDAP/sssd users
//! resolve too); [`StaticResolver`] answers from a table, for tests and for embedders that
//! resolve identities their own way (an orchestration agent that knows its containers' uids).
//!
//! The system resolver uses `uzers`, the maintained fork of the `users` crate the design named:
//! `users` 0.11 is unmaintained (RUSTSEC-2023-0040) and unsound (RUSTSEC-2023-0059, an
//! unaligned read); `uzers` has the same API with the fix.

use std::collections::HashMap;

/// Turns user and group names into ids and back.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait NameResolver {
    /// The uid of a user name, if the user exists.
    fn uid(&self, user: &str) -> Option<u32>;
    /// The gid of a group name, if the group exists.
    fn gid(&self, group: &str) -> Option<u32>;
    /// The name of a uid, if it has one (used to print audit summaries).
    fn user_name(&self, uid: u32) -> Option<String>;
    /// The name of a gid, if it has one.
    fn group_name(&self, gid: u32) -> Option<String>;
}

/// The host's passwd and group databases (cached for the resolver's lifetime).
#[derive(Default)]
pub struct SystemResolver {
    cache: uzers::UsersCache,
}

impl SystemResolver {
    /// A resolver with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

impl NameResolver for SystemResolver {
    fn uid(&self, user: &str) -> Option<u32> {
        // A name with a NUL cannot be in passwd (and would be cut short by the C API).
        if user.contains('\0') {
            return None;
        }
        uzers::Users::get_user_by_name(&self.cache, user).map(|u| u.uid())
    }

    fn gid(&self, group: &str) -> Option<u32> {
        if group.contains('\0') {
            return None;
        }
        uzers::Groups::get_group_by_name(&self.cache, group).map(|g| g.gid())
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        uzers::Users::get_user_by_uid(&self.cache, uid)
            .map(|u| u.name().to_string_lossy().into_owned())
    }

    fn group_name(&self, gid: u32) -> Option<String> {
        uzers::Groups::get_group_by_gid(&self.cache, gid)
            .map(|g| g.name().to_string_lossy().into_owned())
    }
}

/// A fixed table of users and groups.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

impl StaticResolver {
    /// An empty table: every name is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a user.
    pub fn user(mut self, name: &str, uid: u32) -> Self {
        self.users.insert(name.to_owned(), uid);
        self
    }

    /// Add a group.
    pub fn group(mut self, name: &str, gid: u32) -> Self {
        self.groups.insert(name.to_owned(), gid);
        self
    }
}

impl NameResolver for StaticResolver {
    fn uid(&self, user: &str) -> Option<u32> {
        self.users.get(user).copied()
    }

    fn gid(&self, group: &str) -> Option<u32> {
        self.groups.get(group).copied()
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        self.users
            .iter()
            .find(|(_, u)| **u == uid)
            .map(|(n, _)| n.clone())
    }

    fn group_name(&self, gid: u32) -> Option<String> {
        self.groups
            .iter()
            .find(|(_, g)| **g == gid)
            .map(|(n, _)| n.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_resolver_knows_root_and_not_a_made_up_user() {
        let r = SystemResolver::new();
        assert_eq!(r.uid("root"), Some(0));
        assert_eq!(r.gid("root"), Some(0));
        assert_eq!(r.user_name(0).as_deref(), Some("root"));
        assert_eq!(r.uid("zt-no-such-user-4f1c"), None);
        assert_eq!(r.uid("ro\0ot"), None);
    }
}
