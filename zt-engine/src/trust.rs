//! Who besides root can change a policy file: through the file itself, and through every
//! directory and symbolic link its path goes through (the rules, and why, are [`Trust`]'s).
//!
//! The path is walked from `/` the way the kernel resolves it, rather than canonicalized and
//! then judged: each component is looked at with `lstat`, so a link is judged as a link, where
//! it lies (its owner may replace it in a sticky directory), and then followed; the
//! directories judged are those of the real file. The file itself is judged by `fstat` on the
//! descriptor zt then reads, opened by its real path without following a link
//! (`O_NOFOLLOW`), and it must be the inode the walk found: nothing swapped in between.

use std::ffi::{CString, OsString};
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Whose policy files a change accepts, besides root's and the caller's
/// ([`crate::PolicyFile::read_for_change_trusting`]).
///
/// Whoever can change the file zt reads decides what zt, running as root, enforces; its own
/// mode and owner do not say who can. The owner of a directory on its path, or anyone allowed
/// to write to one, can rename another file into the policy's place or swap a directory or a
/// link above it. So the path is walked from `/` as the kernel resolves it, every link
/// followed, and each directory and link on the way is judged, as well as the file.
///
/// What counts, for a change to the kernel or the boot files
/// ([`crate::PolicyFile::read_for_change`]):
/// * the file: writable by every user, or owned by a user other than root and the caller:
///   refused; writable by a group other than root's: a warning (a group is an administrator's
///   deliberate grant, as zt has always treated it);
/// * a directory: owned by another user, or writable by every user without the sticky bit:
///   refused; writable by a group other than root's without the sticky bit: a warning, as for
///   the file. The sticky bit (`/tmp`, mode 1777) lets only an entry's owner rename it, so
///   there the entries' owners are what count;
/// * a symbolic link in a directory others may write (then sticky): owned by another user:
///   refused, since its owner may replace it. Elsewhere a link cannot be changed, only
///   replaced by whoever may write its directory, which is judged already.
///
/// "Another user" is anyone but root and the user zt runs as (its effective uid); with
/// [`Trust::FileOwner`], the file's owner is trusted too. `zt check` reports the same problems
/// as warnings and refuses nothing.
///
/// A link of `/proc` that names no file (`/dev/fd/63` for `<(generate)` leads to
/// `/proc/<pid>/fd/63`, a link to `pipe:[…]`) ends the walk: it leads to what that process has
/// open, and `/proc/<pid>/fd` belongs to that process's user, judged as any directory is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// Root and the user this process runs as (its effective uid) only: a policy file, or a
    /// directory or symbolic link on its path, that belongs to anyone else is refused.
    #[default]
    RootAndCaller,
    /// Also the user who owns the policy file, for the file and for the directories and links
    /// on its path that user owns (`zt apply --trust-owner`): that user can change what zt
    /// enforces at any time, and the caller says so on purpose. Modes still count: a file or a
    /// directory every user may write is refused all the same.
    FileOwner,
}

/// Most symbolic links followed in one path, as the kernel's limit (ELOOP).
const MAX_LINKS: usize = 40;

/// A directory or symbolic link the path goes through, as `lstat` saw it.
#[derive(Debug)]
struct Step {
    path: PathBuf,
    meta: Metadata,
    /// The directory holding it lets users other than root write to it (it then has the
    /// sticky bit, or the directory itself is refused): an entry's owner may replace it.
    shared_parent: Option<PathBuf>,
}

/// The path, walked.
#[derive(Debug)]
pub(crate) struct Walk {
    steps: Vec<Step>,
    /// Where it ends.
    pub end: End,
}

/// Where a walk ends.
#[derive(Debug)]
pub(crate) enum End {
    /// A name in a directory: the real path, every link resolved, and what `lstat` saw there.
    File {
        /// The path with no link in it.
        real: PathBuf,
        /// Device and inode, for checking that the file opened is this one.
        id: (u64, u64),
    },
    /// A link of `/proc` to an object with no name (a pipe): the kernel opens what the
    /// process holding the descriptor has open.
    Descriptor,
}

/// A problem with the file or its path.
#[derive(Debug)]
pub(crate) struct Finding {
    /// The element at fault.
    pub element: PathBuf,
    /// What is wrong, naming the element.
    pub problem: String,
    /// What would fix it.
    pub remedy: String,
    /// Refused for a change (else a warning).
    pub refuse: bool,
    /// A file writable by every user: reported as [`crate::EngineError::Writable`], as ever.
    pub world_writable_file: bool,
}

/// Walk `path` from `/` as the kernel resolves it, with `lstat` on every component.
pub(crate) fn walk(path: &Path) -> io::Result<Walk> {
    let absolute = std::path::absolute(path)?;
    let mut pending: Vec<OsString> = names(&absolute);
    pending.reverse();
    let mut at = PathBuf::from("/");
    let mut at_meta = lstat(&at)?;
    let mut steps = vec![Step {
        path: at.clone(),
        meta: at_meta.clone(),
        shared_parent: None,
    }];
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            if at.pop() {
                at_meta = lstat(&at)?;
            }
            continue;
        }
        let next = at.join(&name);
        // The caller names the file; an error on a directory or link names that element.
        let meta = if pending.is_empty() {
            std::fs::symlink_metadata(&next)?
        } else {
            lstat(&next)?
        };
        let shared_parent = others_may_write(&at_meta).then(|| at.clone());
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(named(
                    &next,
                    io::Error::other("more than 40 symbolic links to follow"),
                ));
            }
            let target = std::fs::read_link(&next).map_err(|e| named(&next, e))?;
            steps.push(Step {
                path: next.clone(),
                meta,
                shared_parent,
            });
            if names_no_file(&at, &target) {
                if !pending.is_empty() {
                    return Err(named(
                        &next,
                        io::Error::other(format!(
                            "it leads to {}, which is not a directory",
                            target.display()
                        )),
                    ));
                }
                return Ok(Walk {
                    steps,
                    end: End::Descriptor,
                });
            }
            if target.is_absolute() {
                at = PathBuf::from("/");
                at_meta = lstat(&at)?;
            }
            pending.extend(names(&target).into_iter().rev());
            continue;
        }
        if pending.is_empty() {
            let id = (meta.dev(), meta.ino());
            return Ok(Walk {
                steps,
                end: End::File { real: next, id },
            });
        }
        if !meta.is_dir() {
            return Err(named(&next, io::Error::from_raw_os_error(libc::ENOTDIR)));
        }
        steps.push(Step {
            path: next.clone(),
            meta: meta.clone(),
            shared_parent,
        });
        at = next;
        at_meta = meta;
    }
    // The path names a directory ("/", "x/.."): opening it refuses it, naming what it is.
    let id = (at_meta.dev(), at_meta.ino());
    Ok(Walk {
        steps,
        end: End::File { real: at, id },
    })
}

/// The problems of the directories and links on the path.
pub(crate) fn judge_path(walk: &Walk, owner: u32, trust: Trust) -> Vec<Finding> {
    let trusted = |uid| trusted(uid, owner, trust);
    let mut findings = Vec::new();
    for step in &walk.steps {
        let (p, meta) = (&step.path, &step.meta);
        let shown = p.display();
        if meta.file_type().is_symlink() {
            if let Some(dir) = &step.shared_parent
                && !trusted(meta.uid())
            {
                findings.push(Finding {
                    element: p.clone(),
                    problem: format!(
                        "symbolic link {shown} belongs to {}, who can point it elsewhere (its \
                         directory {} is writable by others, and the sticky bit protects only \
                         other users' entries)",
                        user(meta.uid()),
                        dir.display()
                    ),
                    remedy: format!("name the file it leads to, or remove {shown}"),
                    refuse: true,
                    world_writable_file: false,
                });
            }
            continue;
        }
        let mode = meta.mode();
        let sticky = mode & 0o1000 != 0;
        if !trusted(meta.uid()) {
            findings.push(Finding {
                element: p.clone(),
                problem: format!(
                    "directory {shown} belongs to {}, who can put another file in the \
                     policy's place",
                    user(meta.uid())
                ),
                remedy: format!("chown root {shown}, or keep the policy elsewhere"),
                refuse: true,
                world_writable_file: false,
            });
        }
        if mode & 0o002 != 0 && !sticky {
            findings.push(Finding {
                element: p.clone(),
                problem: format!(
                    "directory {shown} is writable by every user and has no sticky bit, so \
                     anyone can put another file in the policy's place"
                ),
                remedy: format!(
                    "chmod o-w {shown}, or chmod +t {shown}, or keep the policy elsewhere"
                ),
                refuse: true,
                world_writable_file: false,
            });
        } else if mode & 0o020 != 0 && meta.gid() != 0 && !sticky {
            findings.push(Finding {
                element: p.clone(),
                problem: format!(
                    "directory {shown} is writable by group {} and has no sticky bit, so its \
                     members can put another file in the policy's place",
                    meta.gid()
                ),
                remedy: format!("chmod g-w {shown}"),
                refuse: false,
                world_writable_file: false,
            });
        }
    }
    findings
}

/// The problems of the file itself, as `fstat` saw it.
pub(crate) fn judge_file(path: &Path, meta: &Metadata, trust: Trust) -> Vec<Finding> {
    let mode = meta.mode();
    let shown = path.display();
    let mut findings = Vec::new();
    if mode & 0o002 != 0 {
        findings.push(Finding {
            element: path.to_path_buf(),
            problem: "it is writable by every user".into(),
            remedy: format!("chmod o-w {shown}"),
            refuse: true,
            world_writable_file: true,
        });
    } else if mode & 0o020 != 0 && meta.gid() != 0 {
        findings.push(Finding {
            element: path.to_path_buf(),
            problem: format!("it is writable by group {}", meta.gid()),
            remedy: format!("chmod g-w {shown}"),
            refuse: false,
            world_writable_file: false,
        });
    }
    if !trusted(meta.uid(), meta.uid(), trust) {
        findings.push(Finding {
            element: path.to_path_buf(),
            problem: format!("it belongs to {}", user(meta.uid())),
            remedy: format!("chown root {shown}, or trust its owner with --trust-owner"),
            refuse: true,
            world_writable_file: false,
        });
    }
    findings
}

/// Whether `uid` may own what zt reads: root, the user zt runs as, and under
/// [`Trust::FileOwner`] the file's owner `owner`.
fn trusted(uid: u32, owner: u32, trust: Trust) -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    uid == 0 || uid == me || (trust == Trust::FileOwner && uid == owner)
}

/// `uid 65534 (nobody)`, or `uid 65534` for a uid with no name.
fn user(uid: u32) -> String {
    match uzers::get_user_by_uid(uid) {
        Some(u) => format!("uid {uid} ({})", u.name().to_string_lossy()),
        None => format!("uid {uid}"),
    }
}

/// Users other than root may write to the directory `meta` describes, through its mode (an
/// owner other than root is judged as the directory is).
fn others_may_write(meta: &Metadata) -> bool {
    let mode = meta.mode();
    mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != 0)
}

/// The names a path is made of, `..` included, `.` and `/` left out.
fn names(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// A link in `dir` to `target` is one of `/proc`'s that names no file: `dir` is on a proc
/// file system, and `target` (`pipe:[1234]`, `socket:[…]`, `anon_inode:…`) is one relative
/// name that does not exist there.
fn names_no_file(dir: &Path, target: &Path) -> bool {
    if target.is_absolute() || target.components().count() != 1 {
        return false;
    }
    if std::fs::symlink_metadata(dir.join(target)).is_ok() {
        return false;
    }
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statfs is valid; statfs(2) writes only into it, and `c` is a
    // NUL-terminated path that outlives the call.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut fs) } != 0 {
        return false;
    }
    i128::from(fs.f_type) == i128::from(libc::PROC_SUPER_MAGIC)
}

fn lstat(path: &Path) -> io::Result<Metadata> {
    std::fs::symlink_metadata(path).map_err(|e| named(path, e))
}

/// `error`, saying which element of the path it concerns.
fn named(element: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", element.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_resolves_links_and_dot_dot_as_the_kernel_does() {
        let dir = std::env::temp_dir().join(format!("zt-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/p.yaml"), "x").unwrap();
        std::os::unix::fs::symlink("a/b", dir.join("l")).unwrap();
        let walk = walk(&dir.join("l/../b/./p.yaml")).unwrap();
        let End::File { real, .. } = &walk.end else {
            panic!("{walk:?}")
        };
        let canonical = std::fs::canonicalize(dir.join("a/b/p.yaml")).unwrap();
        assert_eq!(real, &canonical);
        assert!(walk.steps.iter().any(|s| s.path.ends_with("l")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
