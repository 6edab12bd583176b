//! The one module with `unsafe` code: low-level objects to libnftnl objects and netlink
//! messages, and netlink dump messages back to low-level objects. Its submodules split the
//! work by object: [`expr`] (expressions, both ways), [`set`] (sets and their elements),
//! [`udata`] (comments), [`batch`] (the replacing transaction) and [`dump`] (reading back).
//!
//! The `nftnl` crate provides the batch, tables, chains and rules. Its safe API lacks what zt
//! needs beyond that — log, limit, reject, byteorder, socket and bitwise expressions, sets with
//! concatenated interval keys, per-element counters and comments, and any way to read objects
//! back — so this module adds them on top of `nftnl-sys`, behind safe functions:
//!
//! * [`encode_batch`] turns a replacement of zt's table into one contiguous batch buffer;
//! * [`decode_message`] turns one message of a dump into a [`Dumped`] object.
//!
//! Every libnftnl object allocated here is owned by a guard that frees it, and every pointer
//! handed to libnftnl comes from a live Rust value or a NUL-terminated `CString`.

mod batch;
mod dump;
mod expr;
mod set;
mod udata;

pub(crate) use batch::{EncodedBatch, encode_batch};
pub(crate) use dump::{DumpKind, Dumped, decode_message, dump_request};
pub(crate) use udata::comment_from_udata;

use crate::error::NftError;
use std::ffi::{CStr, CString, c_char, c_void};

/// `NFPROTO_INET`.
const FAMILY: u16 = libc::NFPROTO_INET as u16;

fn cstring(what: &str, s: &str) -> Result<CString, NftError> {
    CString::new(s).map_err(|_| NftError::Encode(format!("{what} {s:?} contains a NUL byte")))
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn get_str(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// # Safety
/// `p` points to `len` readable bytes, or is null.
unsafe fn get_bytes(p: *const c_void, len: u32) -> Vec<u8> {
    if p.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) }.to_vec()
}
