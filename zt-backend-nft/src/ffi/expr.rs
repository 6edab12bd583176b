//! Expressions: a low-level expression as a libnftnl one, and a dumped one read back.

use super::{cstring, get_bytes, get_str};
use crate::error::NftError;
use crate::low::LowExpr;
use nftnl::Rule;
use nftnl::expr::Expression;
use nftnl::nftnl_sys as sys;
use std::ffi::{CStr, c_void};
use std::ptr::NonNull;

/// Owns a libnftnl expression until a rule or set element takes it.
pub(super) struct ExprGuard(NonNull<sys::nftnl_expr>);

impl ExprGuard {
    fn new(name: &CStr) -> Self {
        // SAFETY: `name` is NUL-terminated; allocation failure aborts, as std does on OOM.
        let ptr = unsafe { sys::nftnl_expr_alloc(name.as_ptr()) };
        match NonNull::new(ptr) {
            Some(p) => Self(p),
            None => std::process::abort(),
        }
    }

    fn u32(&self, attr: u32, v: u32) {
        // SAFETY: the expression is live; libnftnl ignores attributes the type lacks.
        unsafe { sys::nftnl_expr_set_u32(self.0.as_ptr(), attr as u16, v) }
    }

    fn u64(&self, attr: u32, v: u64) {
        // SAFETY: as above.
        unsafe { sys::nftnl_expr_set_u64(self.0.as_ptr(), attr as u16, v) }
    }

    fn u8(&self, attr: u32, v: u8) {
        // SAFETY: as above.
        unsafe { sys::nftnl_expr_set_u8(self.0.as_ptr(), attr as u16, v) }
    }

    fn data(&self, attr: u32, v: &[u8]) {
        // SAFETY: libnftnl copies `len` bytes from the live slice.
        unsafe {
            sys::nftnl_expr_set(
                self.0.as_ptr(),
                attr as u16,
                v.as_ptr().cast::<c_void>(),
                v.len() as u32,
            );
        }
    }

    fn str(&self, attr: u32, v: &CStr) {
        // SAFETY: libnftnl copies the NUL-terminated string.
        unsafe { sys::nftnl_expr_set_str(self.0.as_ptr(), attr as u16, v.as_ptr()) };
    }

    /// Hand ownership to the caller (a rule or element that frees it with itself).
    pub(super) fn release(self) -> NonNull<sys::nftnl_expr> {
        let p = self.0;
        std::mem::forget(self);
        p
    }
}

impl Drop for ExprGuard {
    fn drop(&mut self) {
        // SAFETY: still owned here (not released).
        unsafe { sys::nftnl_expr_free(self.0.as_ptr()) }
    }
}

/// Build a libnftnl expression from a low-level one.
pub(super) fn encode_expr(e: &LowExpr) -> Result<ExprGuard, NftError> {
    use LowExpr::*;
    let g = match e {
        Meta { key, dreg } => {
            let g = ExprGuard::new(c"meta");
            g.u32(sys::NFTNL_EXPR_META_KEY, *key);
            g.u32(sys::NFTNL_EXPR_META_DREG, *dreg);
            g
        }
        Payload {
            base,
            offset,
            len,
            dreg,
        } => {
            let g = ExprGuard::new(c"payload");
            g.u32(sys::NFTNL_EXPR_PAYLOAD_DREG, *dreg);
            g.u32(sys::NFTNL_EXPR_PAYLOAD_BASE, *base);
            g.u32(sys::NFTNL_EXPR_PAYLOAD_OFFSET, *offset);
            g.u32(sys::NFTNL_EXPR_PAYLOAD_LEN, *len);
            g
        }
        Cmp { op, sreg, data } => {
            let g = ExprGuard::new(c"cmp");
            g.u32(sys::NFTNL_EXPR_CMP_SREG, *sreg);
            g.u32(sys::NFTNL_EXPR_CMP_OP, *op);
            g.data(sys::NFTNL_EXPR_CMP_DATA, data);
            g
        }
        Bitwise {
            sreg,
            dreg,
            len,
            mask,
            xor,
        } => {
            let g = ExprGuard::new(c"bitwise");
            g.u32(sys::NFTNL_EXPR_BITWISE_SREG, *sreg);
            g.u32(sys::NFTNL_EXPR_BITWISE_DREG, *dreg);
            g.u32(sys::NFTNL_EXPR_BITWISE_LEN, *len);
            g.data(sys::NFTNL_EXPR_BITWISE_MASK, mask);
            g.data(sys::NFTNL_EXPR_BITWISE_XOR, xor);
            g
        }
        Ct { key, dreg } => {
            let g = ExprGuard::new(c"ct");
            g.u32(sys::NFTNL_EXPR_CT_KEY, *key);
            g.u32(sys::NFTNL_EXPR_CT_DREG, *dreg);
            g
        }
        Byteorder {
            sreg,
            dreg,
            op,
            len,
            size,
        } => {
            let g = ExprGuard::new(c"byteorder");
            g.u32(sys::NFTNL_EXPR_BYTEORDER_SREG, *sreg);
            g.u32(sys::NFTNL_EXPR_BYTEORDER_DREG, *dreg);
            g.u32(sys::NFTNL_EXPR_BYTEORDER_OP, *op);
            g.u32(sys::NFTNL_EXPR_BYTEORDER_LEN, *len);
            g.u32(sys::NFTNL_EXPR_BYTEORDER_SIZE, *size);
            g
        }
        Socket { key, dreg, level } => {
            let g = ExprGuard::new(c"socket");
            g.u32(sys::NFTNL_EXPR_SOCKET_KEY, *key);
            g.u32(sys::NFTNL_EXPR_SOCKET_DREG, *dreg);
            g.u32(sys::NFTNL_EXPR_SOCKET_LEVEL, *level);
            g
        }
        Lookup { sreg, set } => {
            let g = ExprGuard::new(c"lookup");
            g.u32(sys::NFTNL_EXPR_LOOKUP_SREG, *sreg);
            g.str(sys::NFTNL_EXPR_LOOKUP_SET, &cstring("set name", set)?);
            g
        }
        Counter { packets, bytes } => {
            let g = ExprGuard::new(c"counter");
            g.u64(sys::NFTNL_EXPR_CTR_PACKETS, *packets);
            g.u64(sys::NFTNL_EXPR_CTR_BYTES, *bytes);
            g
        }
        Limit {
            rate,
            unit,
            burst,
            kind,
            flags,
        } => {
            let g = ExprGuard::new(c"limit");
            g.u64(sys::NFTNL_EXPR_LIMIT_RATE, *rate);
            g.u64(sys::NFTNL_EXPR_LIMIT_UNIT, *unit);
            g.u32(sys::NFTNL_EXPR_LIMIT_BURST, *burst);
            g.u32(sys::NFTNL_EXPR_LIMIT_TYPE, *kind);
            g.u32(sys::NFTNL_EXPR_LIMIT_FLAGS, *flags);
            g
        }
        Log {
            prefix,
            level,
            flags,
        } => {
            let g = ExprGuard::new(c"log");
            g.str(sys::NFTNL_EXPR_LOG_PREFIX, &cstring("log prefix", prefix)?);
            if let Some(l) = level {
                g.u32(sys::NFTNL_EXPR_LOG_LEVEL, *l);
            }
            if let Some(f) = flags {
                g.u32(sys::NFTNL_EXPR_LOG_FLAGS, *f);
            }
            g
        }
        Reject { kind, code } => {
            let g = ExprGuard::new(c"reject");
            g.u32(sys::NFTNL_EXPR_REJECT_TYPE, *kind);
            g.u8(sys::NFTNL_EXPR_REJECT_CODE, *code);
            g
        }
        Verdict { code, chain } => {
            let g = ExprGuard::new(c"immediate");
            g.u32(sys::NFTNL_EXPR_IMM_DREG, crate::low::REG_VERDICT);
            g.u32(sys::NFTNL_EXPR_IMM_VERDICT, *code as u32);
            if let Some(c) = chain {
                g.str(sys::NFTNL_EXPR_IMM_CHAIN, &cstring("chain name", c)?);
            }
            g
        }
        Other { name } => {
            return Err(NftError::Encode(format!(
                "cannot recreate the '{name}' expression: zt does not generate it"
            )));
        }
    };
    Ok(g)
}

/// A pre-built expression handed to `nftnl::Rule::add_expr`, which takes ownership.
pub(super) struct Prebuilt(pub(super) std::cell::Cell<Option<ExprGuard>>);

impl Expression for Prebuilt {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        match self.0.take() {
            Some(g) => g.release(),
            // `add_expr` calls this exactly once per expression.
            None => std::process::abort(),
        }
    }
}

/// # Safety
/// `e` is a live expression.
pub(super) unsafe fn decode_expr(e: *const sys::nftnl_expr) -> LowExpr {
    // SAFETY: per the contract; getters return copies or pointers into `e`.
    unsafe {
        let name = get_str(sys::nftnl_expr_get_str(e, sys::NFTNL_EXPR_NAME as u16));
        let u32_ = |a: u32| sys::nftnl_expr_get_u32(e, a as u16);
        let u64_ = |a: u32| sys::nftnl_expr_get_u64(e, a as u16);
        let is = |a: u32| sys::nftnl_expr_is_set(e, a as u16);
        let data = |a: u32| {
            let mut len = 0u32;
            let p = sys::nftnl_expr_get(e, a as u16, &mut len);
            get_bytes(p, len)
        };
        let string = |a: u32| get_str(sys::nftnl_expr_get_str(e, a as u16));
        match name.as_str() {
            "meta" if is(sys::NFTNL_EXPR_META_DREG) => LowExpr::Meta {
                key: u32_(sys::NFTNL_EXPR_META_KEY),
                dreg: u32_(sys::NFTNL_EXPR_META_DREG),
            },
            "payload" if is(sys::NFTNL_EXPR_PAYLOAD_DREG) => LowExpr::Payload {
                base: u32_(sys::NFTNL_EXPR_PAYLOAD_BASE),
                offset: u32_(sys::NFTNL_EXPR_PAYLOAD_OFFSET),
                len: u32_(sys::NFTNL_EXPR_PAYLOAD_LEN),
                dreg: u32_(sys::NFTNL_EXPR_PAYLOAD_DREG),
            },
            "cmp" => LowExpr::Cmp {
                op: u32_(sys::NFTNL_EXPR_CMP_OP),
                sreg: u32_(sys::NFTNL_EXPR_CMP_SREG),
                data: data(sys::NFTNL_EXPR_CMP_DATA),
            },
            "bitwise"
                if !is(sys::NFTNL_EXPR_BITWISE_OP) || u32_(sys::NFTNL_EXPR_BITWISE_OP) == 0 =>
            {
                LowExpr::Bitwise {
                    sreg: u32_(sys::NFTNL_EXPR_BITWISE_SREG),
                    dreg: u32_(sys::NFTNL_EXPR_BITWISE_DREG),
                    len: u32_(sys::NFTNL_EXPR_BITWISE_LEN),
                    mask: data(sys::NFTNL_EXPR_BITWISE_MASK),
                    xor: data(sys::NFTNL_EXPR_BITWISE_XOR),
                }
            }
            "ct" if is(sys::NFTNL_EXPR_CT_DREG) && !is(sys::NFTNL_EXPR_CT_DIR) => LowExpr::Ct {
                key: u32_(sys::NFTNL_EXPR_CT_KEY),
                dreg: u32_(sys::NFTNL_EXPR_CT_DREG),
            },
            "byteorder" => LowExpr::Byteorder {
                sreg: u32_(sys::NFTNL_EXPR_BYTEORDER_SREG),
                dreg: u32_(sys::NFTNL_EXPR_BYTEORDER_DREG),
                op: u32_(sys::NFTNL_EXPR_BYTEORDER_OP),
                len: u32_(sys::NFTNL_EXPR_BYTEORDER_LEN),
                size: u32_(sys::NFTNL_EXPR_BYTEORDER_SIZE),
            },
            "socket" => LowExpr::Socket {
                key: u32_(sys::NFTNL_EXPR_SOCKET_KEY),
                dreg: u32_(sys::NFTNL_EXPR_SOCKET_DREG),
                level: u32_(sys::NFTNL_EXPR_SOCKET_LEVEL),
            },
            "lookup" if !is(sys::NFTNL_EXPR_LOOKUP_DREG) => LowExpr::Lookup {
                sreg: u32_(sys::NFTNL_EXPR_LOOKUP_SREG),
                set: string(sys::NFTNL_EXPR_LOOKUP_SET),
            },
            "counter" => LowExpr::Counter {
                packets: u64_(sys::NFTNL_EXPR_CTR_PACKETS),
                bytes: u64_(sys::NFTNL_EXPR_CTR_BYTES),
            },
            "limit" => LowExpr::Limit {
                rate: u64_(sys::NFTNL_EXPR_LIMIT_RATE),
                unit: u64_(sys::NFTNL_EXPR_LIMIT_UNIT),
                burst: u32_(sys::NFTNL_EXPR_LIMIT_BURST),
                kind: u32_(sys::NFTNL_EXPR_LIMIT_TYPE),
                flags: u32_(sys::NFTNL_EXPR_LIMIT_FLAGS),
            },
            "log" if !is(sys::NFTNL_EXPR_LOG_GROUP) => LowExpr::Log {
                prefix: string(sys::NFTNL_EXPR_LOG_PREFIX),
                level: is(sys::NFTNL_EXPR_LOG_LEVEL).then(|| u32_(sys::NFTNL_EXPR_LOG_LEVEL)),
                flags: is(sys::NFTNL_EXPR_LOG_FLAGS).then(|| u32_(sys::NFTNL_EXPR_LOG_FLAGS)),
            },
            "reject" => LowExpr::Reject {
                kind: u32_(sys::NFTNL_EXPR_REJECT_TYPE),
                code: sys::nftnl_expr_get_u8(e, sys::NFTNL_EXPR_REJECT_CODE as u16),
            },
            "immediate" if is(sys::NFTNL_EXPR_IMM_VERDICT) => LowExpr::Verdict {
                code: u32_(sys::NFTNL_EXPR_IMM_VERDICT) as i32,
                chain: is(sys::NFTNL_EXPR_IMM_CHAIN).then(|| string(sys::NFTNL_EXPR_IMM_CHAIN)),
            },
            _ => LowExpr::Other { name },
        }
    }
}
