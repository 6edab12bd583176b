//! Opening and reading a file an operator names (a policy, a saved kernel log) without
//! trusting what the path leads to.
//!
//! `std::fs::read` reads to the end of the file. From `/dev/zero` that is never (8 GB of
//! memory in six seconds); from a FIFO it is whatever its writer sends; and opening a FIFO no
//! one writes to blocks forever. [`Input`] bounds all three:
//!
//! * The path is looked at first (`stat`), and anything but a regular file or a FIFO is
//!   refused before it is opened: opening a device can act by itself (a tape rewinds,
//!   `/dev/watchdog` arms the machine's watchdog).
//! * It is opened with `O_NONBLOCK`, so opening a FIFO never waits for a writer; `O_CLOEXEC`,
//!   so no program zt starts inherits it; and `O_NOCTTY`, so a terminal can never become zt's
//!   controlling terminal.
//! * What was opened is looked at again with `fstat` on the descriptor. That is what is
//!   judged, since the path may have been changed between the first look and the open.
//! * Then `O_NONBLOCK` is cleared: from there on a read waits for data as any read does. For a
//!   FIFO, one read comes first, while the descriptor is still nonblocking: when it finds
//!   neither data nor a writer, the FIFO is refused at once ([`Refused::NoWriter`]) instead of
//!   read as empty or waited on. A FIFO that has a writer, even a slow one, is then read like
//!   any pipe, so `zt check -c <(generate)` keeps working.
//!
//! The kinds of file, and why:
//! * A regular file is read.
//! * A FIFO or a pipe (`<(generate)`, `/dev/stdin` in a pipeline) is read, with the same
//!   limits as a file ([`Input::read_at_most`]): its writer cannot make zt read without end.
//! * A character device (`/dev/zero`, `/dev/urandom`, a terminal), a block device, a socket
//!   and a directory are refused, naming the kind ([`Refused::Kind`]). None of them holds a
//!   policy or a log; a device may have no end, and a socket cannot be opened at all.

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::error::Error;
use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a file was refused without being read; carried by the [`io::Error`] the opening
/// returns (`error.get_ref()` downcasts to it), of kind [`io::ErrorKind::InvalidInput`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// Not a regular file or a FIFO.
    #[error("it is {0}, not a regular file or a pipe")]
    Kind(Kind),
    /// A FIFO or pipe with no data and no writer when it was opened.
    #[error(
        "it is a FIFO or pipe with no data and no writer, and zt does not wait for a writer: \
         start the program that writes it first"
    )]
    NoWriter,
}

/// The kinds of file [`Input`] refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `/dev/zero`, a terminal, …
    CharacterDevice,
    /// A disk.
    BlockDevice,
    /// A Unix socket.
    Socket,
    /// A directory.
    Directory,
    /// A symbolic link, where the caller asked not to follow one.
    Symlink,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::CharacterDevice => "a character device",
            Kind::BlockDevice => "a block device",
            Kind::Socket => "a socket",
            Kind::Directory => "a directory",
            Kind::Symlink => "a symbolic link",
        })
    }
}

/// What [`Input::read_at_most`] read.
#[derive(Debug)]
pub enum Contents {
    /// The whole file, no longer than the limit.
    Complete(Vec<u8>),
    /// More than the limit: nothing was read past one byte beyond it.
    TooLarge {
        /// The size of a regular file (refused without being read); `None` for a pipe, or a
        /// file that grew while it was read.
        size: Option<u64>,
    },
}

/// A file opened for reading, known to be a regular file or a FIFO with data or a writer.
#[derive(Debug)]
pub struct Input {
    path: PathBuf,
    file: File,
    metadata: Metadata,
    /// What the first, nonblocking read of a FIFO found.
    first: Vec<u8>,
}

impl Input {
    /// Open `path`, following symbolic links, as the [module](self) describes.
    pub fn open(path: &Path) -> io::Result<Input> {
        Self::open_with(path, true)
    }

    /// [`Input::open`], but a symbolic link as the last component is refused (`O_NOFOLLOW`):
    /// for a path whose every component was checked already.
    pub fn open_no_follow(path: &Path) -> io::Result<Input> {
        Self::open_with(path, false)
    }

    fn open_with(path: &Path, follow: bool) -> io::Result<Input> {
        // A look before the open, so that a device is never opened; the fstat below is what
        // is trusted.
        let seen = if follow {
            std::fs::metadata(path)?
        } else {
            std::fs::symlink_metadata(path)?
        };
        refuse_kind(&seen)?;
        // O_CLOEXEC is named although std adds it to every open: it is part of the contract.
        let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        if !follow {
            flags |= libc::O_NOFOLLOW;
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)?;
        let metadata = file.metadata()?;
        refuse_kind(&metadata)?;
        let mut first = Vec::new();
        if metadata.file_type().is_fifo() {
            first = probe(&file)?;
        }
        blocking(&file)?;
        Ok(Input {
            path: path.to_path_buf(),
            file,
            metadata,
            first,
        })
    }

    /// The path it was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What `fstat` said of the open descriptor: the file's owner, mode and size.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Read at most `limit` bytes. A regular file larger than that is not read at all; from a
    /// pipe (or a file that grows meanwhile) one byte past the limit is read, and no more.
    /// The file is closed on return, so a pipe's writer meets a closed pipe (EPIPE).
    pub fn read_at_most(self, limit: usize) -> io::Result<Contents> {
        let size = self.metadata.len();
        let regular = self.metadata.is_file();
        if regular && size > limit as u64 {
            return Ok(Contents::TooLarge { size: Some(size) });
        }
        let cap = limit.saturating_add(1);
        let mut bytes = self.first;
        if regular {
            // The whole file at once, and one byte to see it did not grow.
            let wanted = usize::try_from(size)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            bytes
                .try_reserve_exact(wanted.min(cap))
                .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        }
        let left = cap.saturating_sub(bytes.len()) as u64;
        (&self.file).take(left).read_to_end(&mut bytes)?;
        if bytes.len() > limit {
            return Ok(Contents::TooLarge { size: None });
        }
        Ok(Contents::Complete(bytes))
    }

    /// Read a policy, named `source` in diagnostics: at most
    /// [`crate::yaml::MAX_INPUT_BYTES`]. A larger one is the `too-large` diagnostic, reported
    /// without reading further; a read that fails is [`Error::Read`].
    pub fn read_policy(self, source: &str) -> Result<Vec<u8>, Error> {
        let path = self.path.clone();
        let read_error = |source| Error::Read {
            path: path.clone(),
            source,
        };
        match self
            .read_at_most(crate::yaml::MAX_INPUT_BYTES)
            .map_err(read_error)?
        {
            Contents::Complete(bytes) => Ok(bytes),
            Contents::TooLarge { size } => {
                let message = crate::yaml::too_large(size);
                Err(Error::Invalid(Diagnostics::new(
                    source,
                    vec![Diagnostic::error(Code::TooLarge, message)],
                )))
            }
        }
    }

    /// The file as a reader that blocks, for a caller that reads it piece by piece (a log,
    /// line by line) and so bounds its memory itself.
    pub fn into_reader(self) -> Reader {
        Reader(io::Cursor::new(self.first).chain(self.file))
    }
}

/// An [`Input`] being read ([`Input::into_reader`]).
#[derive(Debug)]
pub struct Reader(io::Chain<io::Cursor<Vec<u8>>, File>);

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// Refuse what is neither a regular file nor a FIFO, naming it.
fn refuse_kind(meta: &Metadata) -> io::Result<()> {
    let t = meta.file_type();
    let kind = if t.is_file() || t.is_fifo() {
        return Ok(());
    } else if t.is_char_device() {
        Kind::CharacterDevice
    } else if t.is_block_device() {
        Kind::BlockDevice
    } else if t.is_socket() {
        Kind::Socket
    } else if t.is_dir() {
        Kind::Directory
    } else {
        Kind::Symlink
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        Refused::Kind(kind),
    ))
}

/// The first read of a FIFO, still nonblocking: what it holds already, or nothing when a
/// writer has it open but has not written yet. Neither data nor a writer is
/// [`Refused::NoWriter`]: a blocking read would have reported an empty file, and a blocking
/// open would have waited forever.
fn probe(file: &File) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; 64 * 1024];
    loop {
        match (&*file).read(&mut buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    Refused::NoWriter,
                ));
            }
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Vec::new()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Clear `O_NONBLOCK`: reads wait for data from here on.
fn blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl(2) F_GETFL/F_SETFL on a descriptor this function borrows; no memory is
    // passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(e: &io::Error) -> Option<Refused> {
        e.get_ref()?.downcast_ref::<Refused>().copied()
    }

    #[test]
    fn devices_and_directories_are_refused_naming_their_kind() {
        let e = Input::open(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(refusal(&e), Some(Refused::Kind(Kind::CharacterDevice)));
        assert_eq!(
            e.to_string(),
            "it is a character device, not a regular file or a pipe"
        );
        let e = Input::open(Path::new("/")).unwrap_err();
        assert_eq!(refusal(&e), Some(Refused::Kind(Kind::Directory)));
    }

    #[test]
    fn a_regular_file_is_read_up_to_the_limit_and_refused_past_it() {
        let path = std::env::temp_dir().join(format!("zt-input-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let read = |limit| Input::open(&path).unwrap().read_at_most(limit).unwrap();
        assert!(matches!(read(10), Contents::Complete(b) if b == b"0123456789"));
        assert!(matches!(read(9), Contents::TooLarge { size: Some(10) }));
        std::fs::remove_file(&path).unwrap();
    }
}
