//! Directories opened once and checked, and the files in them opened relative to the open
//! directory (`openat`), never through a link.
//!
//! zt runs as root and writes its state directory; whoever else can change that directory
//! could plant a link there (`lock` → a file of root's, which zt would overwrite) or a record
//! (a rollback point whose snapshot is "zt owned nothing", which the next rollback would
//! enforce by deleting the firewall). So a state directory is used only when it is root's or
//! the invoking user's alone, every file in it is opened with `O_NOFOLLOW` relative to the
//! directory descriptor that was checked (a rename of a directory above it after the check
//! changes nothing), and each file must be root's or the user's alone as well.

use crate::error::EngineError;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Whether what a directory holds must be checked (the state directory) or not (the targets
/// `persist` writes boot files into, which are the operator's to choose).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trust {
    /// Owned by root or the effective user, writable by nobody else, no links.
    Checked,
    /// Only no link is followed at a temporary name.
    Unchecked,
}

/// How a file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Open {
    /// For reading; absent is `None`.
    Read,
    /// For appending, created 0600 if absent.
    Append,
    /// For reading and writing, created 0600 if absent (the lock).
    ReadWrite,
}

/// An open directory, checked when it was opened if its trust is [`Trust::Checked`].
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
    trust: Trust,
}

impl Dir {
    /// Open the directory at `path`; `None` if it does not exist. A link as the last
    /// component is followed (`/var/lib/zt` may be a link the administrator made) only when
    /// root or the effective user owns the link itself. The directories above it are not
    /// checked: the path is the operator's choice, as a policy file's is.
    pub(crate) fn open(path: &Path, trust: Trust) -> Result<Option<Dir>, EngineError> {
        if trust == Trust::Checked {
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    use std::os::unix::fs::MetadataExt;
                    if let Some(problem) = foreign_owner(meta.uid()) {
                        return Err(untrusted(path, format!("a symbolic link {problem}")));
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(EngineError::state("open", path, e)),
            }
        }
        let name = c_path(path.as_os_str().as_bytes(), path)?;
        // SAFETY: `name` is a NUL-terminated string that outlives the call.
        let fd = unsafe {
            libc::open(
                name.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        let fd = match owned(fd) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::state("open", path, e)),
        };
        let dir = Dir {
            fd,
            path: path.to_path_buf(),
            trust,
        };
        dir.check(&dir.fd, &dir.path, Kind::Directory)?;
        Ok(Some(dir))
    }

    /// Open the directory at `path`, creating it (and its missing parents) mode 0700 first:
    /// a state directory zt makes is root's alone from the start.
    pub(crate) fn create(path: &Path) -> Result<Dir, EngineError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| EngineError::state("create", path, e))?;
        Dir::open(path, Trust::Checked)?.ok_or_else(|| {
            EngineError::state("open", path, io::Error::from(io::ErrorKind::NotFound))
        })
    }

    /// The path of `name` in this directory, for messages.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Open the subdirectory `name` (never a link), creating it mode 0700 if asked; `None`
    /// if it does not exist and was not to be created.
    pub(crate) fn subdir(&self, name: &str, create: bool) -> Result<Option<Dir>, EngineError> {
        let path = self.join(name);
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let fd = match self.open_at(name, flags, 0) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                let c = c_path(name.as_bytes(), &path)?;
                // SAFETY: `c` is a NUL-terminated string that outlives the call; the
                // descriptor is open.
                let made = unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), 0o700) };
                if made < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(EngineError::state("create", path, e));
                    }
                }
                self.open_at(name, flags, 0)
            }
            other => other,
        };
        let fd = match fd {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.open_failed(&path, "not a directory", e)),
        };
        self.check(&fd, &path, Kind::Directory)?;
        Ok(Some(Dir {
            fd,
            path,
            trust: self.trust,
        }))
    }

    /// Open the file `name` as `how` says (never through a link), and check it; `None` when
    /// it is absent and [`Open::Read`] was asked.
    pub(crate) fn file(&self, name: &str, how: Open) -> Result<Option<File>, EngineError> {
        let path = self.join(name);
        // O_NONBLOCK: a FIFO in place of a record must not hang the open; it is refused below,
        // and the flag does nothing to a regular file.
        let base = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
        let flags = match how {
            Open::Read => libc::O_RDONLY,
            Open::Append => libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT,
            Open::ReadWrite => libc::O_RDWR | libc::O_CREAT,
        };
        let fd = match self.open_at(name, base | flags, 0o600) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound && how == Open::Read => {
                return Ok(None);
            }
            Err(e) => return Err(self.open_failed(&path, "not a regular file", e)),
        };
        self.check(&fd, &path, Kind::File)?;
        Ok(Some(File::from(fd)))
    }

    /// The contents of `name`; `None` when it is absent.
    pub(crate) fn read(&self, name: &str) -> Result<Option<Vec<u8>>, EngineError> {
        use std::io::Read;
        let Some(mut file) = self.file(name, Open::Read)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| EngineError::state("read", self.join(name), e))?;
        Ok(Some(bytes))
    }

    /// Write `contents` into a new temporary file beside `name`, mode `mode`, and sync it;
    /// the temporary's name. The temporary is created exclusively and never through a link:
    /// one left at its name (by a process that died, or planted) is removed first — the
    /// link itself, not what it points to.
    pub(crate) fn stage(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<String, EngineError> {
        use std::io::Write;
        let tmp = format!(".{name}.tmp-{}", std::process::id());
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let fd = match self.open_at(&tmp, flags, mode) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.unlink(&tmp)
                    .map_err(|e| EngineError::state("remove", self.join(&tmp), e))?;
                self.open_at(&tmp, flags, mode)
            }
            other => other,
        }
        .map_err(|e| EngineError::state("write", self.join(name), e))?;
        let mut file = File::from(fd);
        if let Err(e) = file.write_all(contents).and_then(|()| file.sync_all()) {
            let _ = self.unlink(&tmp);
            return Err(EngineError::state("write", self.join(name), e));
        }
        Ok(tmp)
    }

    /// Rename `from` to `to` in this directory (replacing `to`); on failure `from` is removed.
    pub(crate) fn commit(&self, from: &str, to: &str) -> Result<(), EngineError> {
        self.rename(from, to).map_err(|e| {
            let _ = self.unlink(from);
            EngineError::state("write", self.join(to), e)
        })
    }

    /// Replace `name` with `contents` ([`Dir::stage`], then a rename over the old file, then
    /// a directory sync), so readers and a crash see the old or the new file.
    pub(crate) fn write_atomically(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), EngineError> {
        let tmp = self.stage(name, contents, mode)?;
        self.commit(&tmp, name)?;
        self.sync()
    }

    /// Rename `from` to `to` in this directory.
    pub(crate) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (c_name(from)?, c_name(to)?);
        let fd = self.fd.as_raw_fd();
        // SAFETY: both names are NUL-terminated strings that outlive the call; the
        // descriptor is open.
        let done = unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) };
        if done < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Remove `name` (a link itself, never what it points to); false when it was absent. An
    /// absent file is looked for first, so removing nothing works in a read-only directory.
    pub(crate) fn remove(&self, name: &str) -> Result<bool, EngineError> {
        match self.lstat(name) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(EngineError::state("remove", self.join(name), e)),
        }
        match self.unlink(name) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(EngineError::state("remove", self.join(name), e)),
        }
    }

    /// Make renames and removals in this directory durable.
    pub(crate) fn sync(&self) -> Result<(), EngineError> {
        // SAFETY: fsync(2) on an open descriptor touches no memory.
        if unsafe { libc::fsync(self.fd.as_raw_fd()) } < 0 {
            return Err(EngineError::state(
                "sync",
                &self.path,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    fn unlink(&self, name: &str) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: `c` is a NUL-terminated string that outlives the call.
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn open_at(&self, name: &str, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
        let c = c_name(name)?;
        // SAFETY: `c` is a NUL-terminated string that outlives the call; the descriptor is
        // open.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode,
            )
        };
        owned(fd)
    }

    /// The error for an `openat` of `path` that failed: a link (`ELOOP` under `O_NOFOLLOW`,
    /// or `ENOTDIR` with `O_DIRECTORY` too) or the wrong kind of file is refused as
    /// untrusted, anything else is the system's.
    fn open_failed(&self, path: &Path, wrong_kind: &str, e: io::Error) -> EngineError {
        match e.raw_os_error() {
            Some(libc::ELOOP) => untrusted(path, "a symbolic link".into()),
            Some(libc::ENOTDIR) => {
                let link = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| self.lstat(n).ok())
                    .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
                untrusted(
                    path,
                    if link { "a symbolic link" } else { wrong_kind }.into(),
                )
            }
            _ => EngineError::state("open", path, e),
        }
    }

    /// What `name` in this directory is, without following a link.
    fn lstat(&self, name: &str) -> io::Result<libc::stat> {
        let c = c_name(name)?;
        // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is NUL-terminated and `st` is a valid out-pointer; both outlive the
        // call, and the descriptor is open.
        let done = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if done < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }

    /// Check what `fd` (at `path`) is, who owns it and who else may write it.
    fn check(&self, fd: &OwnedFd, path: &Path, kind: Kind) -> Result<(), EngineError> {
        // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the descriptor is open and `st` is a valid out-pointer.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
            return Err(EngineError::state(
                "inspect",
                path,
                io::Error::last_os_error(),
            ));
        }
        let format = st.st_mode & libc::S_IFMT;
        let (want, what) = match kind {
            Kind::Directory => (libc::S_IFDIR, "not a directory"),
            Kind::File => (libc::S_IFREG, "not a regular file"),
        };
        if format != want {
            return Err(untrusted(path, what.into()));
        }
        if self.trust == Trust::Unchecked {
            return Ok(());
        }
        if let Some(problem) = foreign_owner(st.st_uid) {
            return Err(untrusted(path, problem));
        }
        let mode = st.st_mode & 0o7777;
        let by = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (false, false) => return Ok(()),
            (true, false) => "its group",
            (false, true) => "every user",
            (true, true) => "its group and every user",
        };
        Err(untrusted(
            path,
            format!("writable by {by} (mode {mode:04o})"),
        ))
    }
}

/// What a checked descriptor must be.
#[derive(Clone, Copy)]
enum Kind {
    Directory,
    File,
}

/// Why an owner is not trusted, if it is not root or the effective user.
fn foreign_owner(uid: u32) -> Option<String> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    if uid == 0 || uid == me {
        return None;
    }
    let name = uzers::get_user_by_uid(uid)
        .map(|u| format!(" ({})", u.name().to_string_lossy()))
        .unwrap_or_default();
    let trusted = if me == 0 {
        "root".to_owned()
    } else {
        format!("root or uid {me}, whom zt runs as")
    };
    Some(format!("owned by uid {uid}{name}, not by {trusted}"))
}

fn untrusted(path: &Path, problem: String) -> EngineError {
    EngineError::UntrustedState {
        path: path.to_path_buf(),
        problem,
    }
}

/// `name` (one component, as zt names its files) for a system call.
fn c_name(name: &str) -> io::Result<CString> {
    if name.is_empty() || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{name}' is not a file name"),
        ));
    }
    CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// `bytes` for a system call on `path` (a path cannot hold a NUL, but the type allows it).
fn c_path(bytes: &[u8], path: &Path) -> Result<CString, EngineError> {
    CString::new(bytes).map_err(|e| {
        EngineError::state("open", path, io::Error::new(io::ErrorKind::InvalidInput, e))
    })
}

/// A descriptor a system call returned, or its error.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative return of open(2)/openat(2) is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
