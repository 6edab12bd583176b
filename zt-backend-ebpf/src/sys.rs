//! The few raw system calls aya does not offer: reading a pinned link's cgroup, detaching a
//! link synchronously, and checking file system types. All the crate's raw `unsafe` FFI is here.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_DETACH: libc::c_long = 34;

/// `f_type` of a BPF file system.
pub const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The part of `union bpf_attr` used by `BPF_OBJ_GET`.
#[repr(C)]
struct ObjGetAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    pad: u32,
}

/// The part of `union bpf_attr` used by `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The part of `union bpf_attr` used by `BPF_LINK_DETACH`.
#[repr(C)]
struct LinkDetachAttr {
    link_fd: u32,
}

/// `struct bpf_link_info` with its cgroup member, padded to hold any kernel's version.
#[repr(C)]
#[derive(Default)]
struct RawLinkInfo {
    link_type: u32,
    id: u32,
    prog_id: u32,
    pad: u32,
    cgroup_id: u64,
    attach_type: u32,
    pad2: u32,
    rest: [u64; 8],
}

/// `BPF_LINK_TYPE_CGROUP`.
const LINK_TYPE_CGROUP: u32 = 3;

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialized #[repr(C)] prefix of `union bpf_attr` for `cmd`,
    // living for the whole call; the kernel reads (and for info, writes through the pointer it
    // holds) at most `size_of::<T>()` bytes of it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            size_of::<T>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Open a pinned BPF object.
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let name = c_path(path)?;
    let mut attr = ObjGetAttr {
        pathname: name.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
        path_fd: 0,
        pad: 0,
    };
    let fd = bpf(BPF_OBJ_GET, &mut attr)?;
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("file descriptor out of range"))?;
    // SAFETY: BPF_OBJ_GET returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The cgroup a pinned cgroup link is attached to: `Some(id)`, or `None` when the link is not a
/// cgroup link or has been detached (its cgroup is gone or someone detached it).
pub fn link_cgroup(link: &OwnedFd) -> io::Result<Option<u64>> {
    use std::os::fd::AsRawFd;
    let mut info = RawLinkInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: u32::try_from(link.as_raw_fd()).unwrap_or(u32::MAX),
        info_len: u32::try_from(size_of::<RawLinkInfo>()).unwrap_or(0),
        info: std::ptr::from_mut(&mut info) as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok((info.link_type == LINK_TYPE_CGROUP && info.cgroup_id != 0).then_some(info.cgroup_id))
}

/// Detach a link now (the program stops running at once), whoever else holds it.
pub fn link_detach(link: &OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut attr = LinkDetachAttr {
        link_fd: u32::try_from(link.as_raw_fd()).unwrap_or(u32::MAX),
    };
    bpf(BPF_LINK_DETACH, &mut attr).map(|_| ())
}

/// The file system type (`f_type`) of the file system holding `path`.
pub fn fs_type(path: &Path) -> io::Result<i64> {
    let name = c_path(path)?;
    // SAFETY: statfs is plain data; all-zero is a valid value.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a NUL-terminated path and `buf` a valid statfs to write into.
    let ret = unsafe { libc::statfs(name.as_ptr(), &mut buf) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Ok(i64::from(buf.f_type))
}
