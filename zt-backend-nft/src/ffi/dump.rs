//! Reading zt's table back: dump requests, and each message of a dump as a low-level object.

use super::expr::decode_expr;
use super::udata::comment_from_udata;
use super::{FAMILY, cstring, get_bytes, get_str};
use crate::error::NftError;
use crate::low::{LowBase, LowChain, LowElem, LowExpr, LowRule, LowSet};
use nftnl::nftnl_sys as sys;
use std::ffi::{c_char, c_void};

/// A request for a dump of one kind of object of table `name` (or, for elements, of set `set`).
pub(crate) fn dump_request(kind: DumpKind, table: &str, seq: u32) -> Result<Vec<u8>, NftError> {
    let tname = cstring("table name", table)?;
    let mut buf = vec![0u8; nftnl::nft_nlmsg_maxsize() as usize];
    let flags = match kind {
        DumpKind::Table => libc::NLM_F_ACK as u16,
        _ => libc::NLM_F_DUMP as u16,
    };
    // SAFETY: `buf` has room for the largest message; objects are freed before returning.
    unsafe {
        let b = buf.as_mut_ptr().cast::<c_char>();
        let len = match &kind {
            DumpKind::Table => {
                let h = sys::nftnl_nlmsg_build_hdr(
                    b,
                    libc::NFT_MSG_GETTABLE as u16,
                    FAMILY,
                    flags,
                    seq,
                );
                let t = sys::nftnl_table_alloc();
                if t.is_null() {
                    std::process::abort();
                }
                sys::nftnl_table_set_str(t, sys::NFTNL_TABLE_NAME as u16, tname.as_ptr());
                sys::nftnl_table_nlmsg_build_payload(h, t);
                sys::nftnl_table_free(t);
                (*h).nlmsg_len
            }
            DumpKind::Chains => {
                let h = sys::nftnl_nlmsg_build_hdr(
                    b,
                    libc::NFT_MSG_GETCHAIN as u16,
                    FAMILY,
                    flags,
                    seq,
                );
                let c = sys::nftnl_chain_alloc();
                if c.is_null() {
                    std::process::abort();
                }
                sys::nftnl_chain_set_str(c, sys::NFTNL_CHAIN_TABLE as u16, tname.as_ptr());
                sys::nftnl_chain_nlmsg_build_payload(h, c);
                sys::nftnl_chain_free(c);
                (*h).nlmsg_len
            }
            DumpKind::Rules => {
                let h =
                    sys::nftnl_nlmsg_build_hdr(b, libc::NFT_MSG_GETRULE as u16, FAMILY, flags, seq);
                let r = sys::nftnl_rule_alloc();
                if r.is_null() {
                    std::process::abort();
                }
                sys::nftnl_rule_set_str(r, sys::NFTNL_RULE_TABLE as u16, tname.as_ptr());
                sys::nftnl_rule_nlmsg_build_payload(h, r);
                sys::nftnl_rule_free(r);
                (*h).nlmsg_len
            }
            DumpKind::Sets => {
                let h =
                    sys::nftnl_nlmsg_build_hdr(b, libc::NFT_MSG_GETSET as u16, FAMILY, flags, seq);
                let s = sys::nftnl_set_alloc();
                if s.is_null() {
                    std::process::abort();
                }
                sys::nftnl_set_set_str(s, sys::NFTNL_SET_TABLE as u16, tname.as_ptr());
                sys::nftnl_set_nlmsg_build_payload(h, s);
                sys::nftnl_set_free(s);
                (*h).nlmsg_len
            }
            DumpKind::Elements(set) => {
                let sname = cstring("set name", set)?;
                let h = sys::nftnl_nlmsg_build_hdr(
                    b,
                    libc::NFT_MSG_GETSETELEM as u16,
                    FAMILY,
                    flags,
                    seq,
                );
                let s = sys::nftnl_set_alloc();
                if s.is_null() {
                    std::process::abort();
                }
                sys::nftnl_set_set_str(s, sys::NFTNL_SET_TABLE as u16, tname.as_ptr());
                sys::nftnl_set_set_str(s, sys::NFTNL_SET_NAME as u16, sname.as_ptr());
                sys::nftnl_set_elems_nlmsg_build_payload(h, s);
                sys::nftnl_set_free(s);
                (*h).nlmsg_len
            }
        };
        buf.truncate(len as usize);
    }
    Ok(buf)
}

/// What a dump request asks for.
#[derive(Clone, Debug)]
pub(crate) enum DumpKind {
    /// The table itself (does it exist?).
    Table,
    /// Its chains.
    Chains,
    /// Its rules.
    Rules,
    /// Its sets.
    Sets,
    /// The elements of one set.
    Elements(String),
}

/// One object decoded from a dump message.
#[derive(Debug)]
pub(crate) enum Dumped {
    /// The table exists.
    Table,
    /// A chain of table `.0`.
    Chain(String, LowChain),
    /// A rule of table `.0`, chain `.1`.
    Rule(String, String, LowRule),
    /// A set (without elements) of table `.0`.
    Set(String, LowSet),
    /// Elements of set `.1` of table `.0`.
    Elements(String, String, Vec<LowElem>),
}

/// Decode one dump message (`bytes` is the whole message, header included).
pub(crate) fn decode_message(kind: &DumpKind, bytes: &[u8]) -> Result<Dumped, NftError> {
    if bytes.len() < std::mem::size_of::<libc::nlmsghdr>() {
        return Err(NftError::Decode("short netlink message".into()));
    }
    // Copy into an aligned buffer: libnftnl reads the header and attributes in place.
    let mut aligned: Vec<u64> = vec![0; bytes.len().div_ceil(8)];
    // SAFETY: `aligned` holds at least `bytes.len()` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            aligned.as_mut_ptr().cast::<u8>(),
            bytes.len(),
        );
    }
    let h = aligned.as_ptr().cast::<libc::nlmsghdr>();
    // SAFETY: `h` points to a complete netlink message; each object is freed before returning.
    unsafe {
        match kind {
            DumpKind::Table => {
                let t = sys::nftnl_table_alloc();
                if t.is_null() {
                    std::process::abort();
                }
                let ok = sys::nftnl_table_nlmsg_parse(h, t) >= 0;
                sys::nftnl_table_free(t);
                if !ok {
                    return Err(NftError::Decode("table message".into()));
                }
                Ok(Dumped::Table)
            }
            DumpKind::Chains => {
                let c = sys::nftnl_chain_alloc();
                if c.is_null() {
                    std::process::abort();
                }
                let result = decode_chain(h, c);
                sys::nftnl_chain_free(c);
                result
            }
            DumpKind::Rules => {
                let r = sys::nftnl_rule_alloc();
                if r.is_null() {
                    std::process::abort();
                }
                let result = decode_rule(h, r);
                sys::nftnl_rule_free(r);
                result
            }
            DumpKind::Sets => {
                let s = sys::nftnl_set_alloc();
                if s.is_null() {
                    std::process::abort();
                }
                let result = decode_set(h, s);
                sys::nftnl_set_free(s);
                result
            }
            DumpKind::Elements(_) => {
                let s = sys::nftnl_set_alloc();
                if s.is_null() {
                    std::process::abort();
                }
                let result = decode_elements(h, s);
                sys::nftnl_set_free(s);
                result
            }
        }
    }
}

/// # Safety
/// `h` is a complete message; `c` a live chain.
unsafe fn decode_chain(
    h: *const libc::nlmsghdr,
    c: *mut sys::nftnl_chain,
) -> Result<Dumped, NftError> {
    // SAFETY: per the contract.
    unsafe {
        if sys::nftnl_chain_nlmsg_parse(h, c) < 0 {
            return Err(NftError::Decode("chain message".into()));
        }
        let table = get_str(sys::nftnl_chain_get_str(c, sys::NFTNL_CHAIN_TABLE as u16));
        let name = get_str(sys::nftnl_chain_get_str(c, sys::NFTNL_CHAIN_NAME as u16));
        let base = sys::nftnl_chain_is_set(c, sys::NFTNL_CHAIN_HOOKNUM as u16).then(|| LowBase {
            kind: get_str(sys::nftnl_chain_get_str(c, sys::NFTNL_CHAIN_TYPE as u16)),
            hook: sys::nftnl_chain_get_u32(c, sys::NFTNL_CHAIN_HOOKNUM as u16),
            priority: sys::nftnl_chain_get_s32(c, sys::NFTNL_CHAIN_PRIO as u16),
            policy: sys::nftnl_chain_get_u32(c, sys::NFTNL_CHAIN_POLICY as u16),
        });
        Ok(Dumped::Chain(
            table,
            LowChain {
                name,
                base,
                rules: Vec::new(),
            },
        ))
    }
}

/// # Safety
/// `h` is a complete message; `r` a live rule.
unsafe fn decode_rule(
    h: *const libc::nlmsghdr,
    r: *mut sys::nftnl_rule,
) -> Result<Dumped, NftError> {
    // SAFETY: per the contract; the iterator is destroyed before returning.
    unsafe {
        if sys::nftnl_rule_nlmsg_parse(h, r) < 0 {
            return Err(NftError::Decode("rule message".into()));
        }
        let table = get_str(sys::nftnl_rule_get_str(r, sys::NFTNL_RULE_TABLE as u16));
        let chain = get_str(sys::nftnl_rule_get_str(r, sys::NFTNL_RULE_CHAIN as u16));
        let comment = if sys::nftnl_rule_is_set(r, sys::NFTNL_RULE_USERDATA as u16) {
            let mut len = 0u32;
            let p = sys::nftnl_rule_get_data(r, sys::NFTNL_RULE_USERDATA as u16, &mut len);
            comment_from_udata(&get_bytes(p, len))
        } else {
            None
        };
        let iter = sys::nftnl_expr_iter_create(r);
        if iter.is_null() {
            std::process::abort();
        }
        let mut exprs = Vec::new();
        loop {
            let e = sys::nftnl_expr_iter_next(iter);
            if e.is_null() {
                break;
            }
            exprs.push(decode_expr(e));
        }
        sys::nftnl_expr_iter_destroy(iter);
        Ok(Dumped::Rule(table, chain, LowRule { exprs, comment }))
    }
}
/// # Safety
/// `h` is a complete message; `s` a live set.
unsafe fn decode_set(h: *const libc::nlmsghdr, s: *mut sys::nftnl_set) -> Result<Dumped, NftError> {
    // SAFETY: per the contract.
    unsafe {
        if sys::nftnl_set_nlmsg_parse(h, s) < 0 {
            return Err(NftError::Decode("set message".into()));
        }
        let table = get_str(sys::nftnl_set_get_str(s, sys::NFTNL_SET_TABLE as u16));
        let data = |a: u32| {
            if !sys::nftnl_set_is_set(s, a as u16) {
                return Vec::new();
            }
            let mut len = 0u32;
            let p = sys::nftnl_set_get_data(s, a as u16, &mut len);
            get_bytes(p, len)
        };
        let mut exprs = Vec::new();
        extern "C" fn collect(e: *mut sys::nftnl_expr, data: *mut c_void) -> i32 {
            // SAFETY: `data` is the `Vec<LowExpr>` passed below; `e` is live for the call.
            unsafe { (*data.cast::<Vec<LowExpr>>()).push(decode_expr(e)) };
            0
        }
        sys::nftnl_set_expr_foreach(
            s,
            Some(collect),
            (&mut exprs as *mut Vec<LowExpr>).cast::<c_void>(),
        );
        let set = LowSet {
            name: get_str(sys::nftnl_set_get_str(s, sys::NFTNL_SET_NAME as u16)),
            flags: sys::nftnl_set_get_u32(s, sys::NFTNL_SET_FLAGS as u16),
            key_type: sys::nftnl_set_get_u32(s, sys::NFTNL_SET_KEY_TYPE as u16),
            key_len: sys::nftnl_set_get_u32(s, sys::NFTNL_SET_KEY_LEN as u16),
            fields: data(sys::NFTNL_SET_DESC_CONCAT),
            userdata: data(sys::NFTNL_SET_USERDATA),
            size: if sys::nftnl_set_is_set(s, sys::NFTNL_SET_DESC_SIZE as u16) {
                sys::nftnl_set_get_u32(s, sys::NFTNL_SET_DESC_SIZE as u16)
            } else {
                0
            },
            exprs,
            elements: Vec::new(),
        };
        Ok(Dumped::Set(table, set))
    }
}

/// # Safety
/// `h` is a complete message; `s` a live set.
unsafe fn decode_elements(
    h: *const libc::nlmsghdr,
    s: *mut sys::nftnl_set,
) -> Result<Dumped, NftError> {
    // SAFETY: per the contract; the iterator is destroyed before returning.
    unsafe {
        if sys::nftnl_set_elems_nlmsg_parse(h, s) < 0 {
            return Err(NftError::Decode("set elements message".into()));
        }
        let table = get_str(sys::nftnl_set_get_str(s, sys::NFTNL_SET_TABLE as u16));
        let name = get_str(sys::nftnl_set_get_str(s, sys::NFTNL_SET_NAME as u16));
        let iter = sys::nftnl_set_elems_iter_create(s);
        if iter.is_null() {
            std::process::abort();
        }
        let mut out = Vec::new();
        loop {
            let e = sys::nftnl_set_elems_iter_next(iter);
            if e.is_null() {
                break;
            }
            let bytes = |a: u32| {
                if !sys::nftnl_set_elem_is_set(e, a as u16) {
                    return None;
                }
                let mut len = 0u32;
                let p = sys::nftnl_set_elem_get(e, a as u16, &mut len);
                Some(get_bytes(p, len))
            };
            let mut exprs = Vec::new();
            extern "C" fn collect(x: *mut sys::nftnl_expr, data: *mut c_void) -> i32 {
                // SAFETY: `data` is the `Vec<LowExpr>` passed below; `x` is live for the call.
                unsafe { (*data.cast::<Vec<LowExpr>>()).push(decode_expr(x)) };
                0
            }
            sys::nftnl_set_elem_expr_foreach(
                e,
                Some(collect),
                (&mut exprs as *mut Vec<LowExpr>).cast::<c_void>(),
            );
            out.push(LowElem {
                key: bytes(sys::NFTNL_SET_ELEM_KEY).unwrap_or_default(),
                key_end: bytes(sys::NFTNL_SET_ELEM_KEY_END),
                exprs,
                comment: bytes(sys::NFTNL_SET_ELEM_USERDATA).and_then(|u| comment_from_udata(&u)),
            });
        }
        sys::nftnl_set_elems_iter_destroy(iter);
        Ok(Dumped::Elements(table, name, out))
    }
}
