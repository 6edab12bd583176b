//! What restores a policy at boot (spec FR-7): files a backend writes, and the systemd unit
//! that loads them before the network comes up.
//!
//! Backends describe the files; the caller writes them under a root of its choice (`/` on a
//! host, an image being built, a test directory). Paths are absolute as seen from that root.
//! Every backend's unit has the same shape — a oneshot ordered before `network-pre.target`,
//! pulled in by `sysinit.target` — so a host never boots with its interfaces up and zt's
//! rules not yet loaded. [`systemd_unit`] writes it.

use std::path::{Path, PathBuf};

/// One file to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistFile {
    /// Where, as an absolute path below the chosen root (`/etc/zt/zt.nft`).
    pub path: PathBuf,
    /// Permission bits.
    pub mode: u32,
    /// Contents.
    pub contents: String,
}

/// A symbolic link to create (how `systemctl enable` wires a unit into a target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistLink {
    /// The link, absolute below the chosen root.
    pub path: PathBuf,
    /// What it points to (absolute, as on the booted system).
    pub target: PathBuf,
}

/// Everything that restores a ruleset at boot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persistence {
    /// Files, written in order.
    pub files: Vec<PersistFile>,
    /// Links, created after the files.
    pub links: Vec<PersistLink>,
}

/// What a backend may need, besides the ruleset, to restore a policy at boot. A backend whose
/// kernel state nothing can load without zt (eBPF: bpffs starts empty) writes the policy
/// itself and a unit that runs `zt apply` on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// The policy as written.
    pub policy_yaml: String,
    /// The `zt` executable a boot unit runs.
    pub zt: PathBuf,
}

/// Where zt keeps what it persists.
pub const PERSIST_DIR: &str = "/etc/zt";

/// Where units are installed.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// A unit named `name` (`zt-nft.service`) that runs the `exec_start` commands once at boot,
/// in order, before the network, and the link that enables it; `description` says what it
/// restores.
pub fn systemd_unit(
    name: &str,
    description: &str,
    exec_start: &[String],
) -> (PersistFile, PersistLink) {
    let exec_start: String = exec_start
        .iter()
        .map(|c| format!("ExecStart={c}\n"))
        .collect();
    let contents = format!(
        "# Written by `zt persist`; `zt persist` again rewrites it.\n\
         [Unit]\n\
         Description={description}\n\
         Documentation=man:zt(1)\n\
         DefaultDependencies=no\n\
         Wants=network-pre.target\n\
         Before=network-pre.target shutdown.target\n\
         Conflicts=shutdown.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         {exec_start}\
         \n\
         [Install]\n\
         WantedBy=sysinit.target\n"
    );
    let path = PathBuf::from(UNIT_DIR).join(name);
    let link = PersistLink {
        path: PathBuf::from(UNIT_DIR)
            .join("sysinit.target.wants")
            .join(name),
        target: path.clone(),
    };
    (
        PersistFile {
            path,
            mode: 0o644,
            contents,
        },
        link,
    )
}

/// For a backend whose kernel state has no file form a system tool can load (eBPF programs
/// and maps live in bpffs, which starts empty at boot): the policy itself, kept under
/// [`PERSIST_DIR`], and a unit that runs `zt apply` on it before the network comes up.
/// `zt` is the absolute path of the `zt` binary; `args` go before the command (the backend
/// and its options).
pub fn reapply_at_boot(
    backend: &str,
    zt: &Path,
    args: &[String],
    policy_yaml: &str,
) -> Persistence {
    let policy = PathBuf::from(PERSIST_DIR).join(format!("{backend}-policy.yaml"));
    let mut command = vec![zt.display().to_string()];
    command.extend(args.iter().cloned());
    command.extend([
        "apply".to_owned(),
        "-c".to_owned(),
        policy.display().to_string(),
    ]);
    let (unit, link) = systemd_unit(
        &format!("zt-{backend}.service"),
        &format!("zt: apply the policy with the {backend} backend"),
        &[command.join(" ")],
    );
    Persistence {
        files: vec![
            PersistFile {
                path: policy,
                mode: 0o600,
                contents: policy_yaml.to_owned(),
            },
            unit,
        ],
        links: vec![link],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_loads_before_the_network_and_is_enabled_by_sysinit() {
        let (unit, link) = systemd_unit(
            "zt-nft.service",
            "zt: restore",
            &["/usr/sbin/nft -f /etc/zt/zt.nft".to_owned()],
        );
        assert_eq!(
            unit.path,
            PathBuf::from("/etc/systemd/system/zt-nft.service")
        );
        assert!(unit.contents.contains("Before=network-pre.target"));
        assert!(
            unit.contents
                .contains("ExecStart=/usr/sbin/nft -f /etc/zt/zt.nft\n")
        );
        assert!(unit.contents.contains("WantedBy=sysinit.target"));
        assert_eq!(
            link.path,
            PathBuf::from("/etc/systemd/system/sysinit.target.wants/zt-nft.service")
        );
        assert_eq!(link.target, unit.path);
    }

    #[test]
    fn a_reapplying_unit_runs_zt_on_the_kept_policy() {
        let p = reapply_at_boot(
            "ebpf",
            Path::new("/usr/local/bin/zt"),
            &["--backend".into(), "ebpf".into()],
            "version: \"1.0\"\nrules: []\n",
        );
        assert_eq!(p.files[0].path, PathBuf::from("/etc/zt/ebpf-policy.yaml"));
        assert!(p.files[1].contents.contains(
            "ExecStart=/usr/local/bin/zt --backend ebpf apply -c /etc/zt/ebpf-policy.yaml\n"
        ));
        assert_eq!(p.links[0].target, p.files[1].path);
    }
}
