//! The transaction that replaces zt's table, as one buffer of netlink messages.

use super::FAMILY;
use super::cstring;
use super::expr::{Prebuilt, encode_expr};
use super::set::{SetMsg, add_elements};
use crate::error::NftError;
use crate::low::{LowBase, LowRule, LowTable};
use nftnl::nftnl_sys as sys;
use nftnl::{Batch, Chain, MsgType, NlMsg, ProtoFamily, Rule, Table};
use std::ffi::{CStr, c_char, c_void};
use std::ptr::NonNull;

/// A built batch: one buffer to send in one `sendmsg`, and what each message concerns.
pub(crate) struct EncodedBatch {
    /// The messages, BEGIN to END, contiguous.
    pub bytes: Vec<u8>,
    /// What each message between BEGIN and END concerns, in order (for error messages).
    pub subjects: Vec<String>,
}

/// Encode the transaction that makes table `name` hold exactly `table` — or removes it when
/// `table` is `None` — all in one batch the kernel commits atomically. Where the table is
/// `present`, it is created (a no-op), deleted, and built anew, whatever it held; where it is
/// not, it is only built: a table created and deleted in the same batch leaves objects for
/// the kernel to free after an RCU grace period, which whoever closes the socket then waits
/// for (6–15 ms here). Should a table have appeared since, its chains already exist and the
/// whole batch is refused.
pub(crate) fn encode_batch(
    name: &str,
    present: bool,
    table: Option<&LowTable>,
) -> Result<EncodedBatch, NftError> {
    let cname = cstring("table name", name)?;
    let t = Table::new(&cname, ProtoFamily::Inet);
    let mut batch = Batch::new();
    let mut subjects: Vec<String> = Vec::new();
    let push = |subjects: &mut Vec<String>, what: String| subjects.push(what);
    if present {
        batch.add(&t, MsgType::Add);
        push(&mut subjects, format!("table inet {name}"));
        batch.add(&t, MsgType::Del);
        push(&mut subjects, format!("table inet {name}"));
    }
    if let Some(table) = table {
        if present {
            batch.add(&t, MsgType::Add);
        } else {
            batch.add(&NewTable::new(&cname), MsgType::Add);
        }
        push(&mut subjects, format!("table inet {name}"));
        let mut set_msgs = Vec::with_capacity(table.sets.len());
        for (i, s) in table.sets.iter().enumerate() {
            let msg = SetMsg::new(&cname, s, i as u32 + 1)?;
            batch.add(&msg, MsgType::Add);
            push(&mut subjects, format!("set {}", s.name));
            for _ in 0..add_elements(&mut batch, &msg) {
                push(&mut subjects, format!("elements of set {}", s.name));
            }
            set_msgs.push(msg);
        }
        let mut chains = Vec::with_capacity(table.chains.len());
        for c in &table.chains {
            let mut chain = Chain::new(cstring("chain name", &c.name)?, &t);
            if let Some(LowBase {
                hook,
                priority,
                policy,
                ..
            }) = &c.base
            {
                chain.set_type(nftnl::ChainType::Filter);
                let hook = match *hook {
                    1 => nftnl::Hook::In,
                    3 => nftnl::Hook::Out,
                    other => return Err(NftError::Encode(format!("unsupported hook {other}"))),
                };
                chain.set_hook(hook, *priority);
                chain.set_policy(if *policy == 1 {
                    nftnl::Policy::Accept
                } else {
                    nftnl::Policy::Drop
                });
            }
            batch.add(&chain, MsgType::Add);
            push(&mut subjects, format!("chain {}", c.name));
            chains.push(chain);
        }
        for (c, chain) in table.chains.iter().zip(&chains) {
            for r in &c.rules {
                let rule = build_rule(chain, r)?;
                batch.add(&rule, MsgType::Add);
                let what = match &r.comment {
                    Some(comment) => format!("rule '{comment}' in chain {}", c.name),
                    None => format!("a rule in chain {}", c.name),
                };
                push(&mut subjects, what);
            }
        }
    }
    let finalized = batch.finalize();
    let mut bytes = Vec::new();
    for page in &finalized {
        bytes.extend_from_slice(page);
    }
    Ok(EncodedBatch { bytes, subjects })
}

/// The creation of a table that must not exist yet (`NLM_F_EXCL`, which `nftnl`'s own table
/// message does not set): a batch built for a kernel without zt's table fails whole where
/// the table has appeared since, instead of adding rules to chains that exist.
struct NewTable {
    table: NonNull<sys::nftnl_table>,
}

impl NewTable {
    fn new(name: &CStr) -> Self {
        // SAFETY: allocation checked; the name is copied from a live NUL-terminated string.
        unsafe {
            let Some(table) = NonNull::new(sys::nftnl_table_alloc()) else {
                std::process::abort()
            };
            let p = table.as_ptr();
            sys::nftnl_table_set_u32(p, sys::NFTNL_TABLE_FAMILY as u16, u32::from(FAMILY));
            sys::nftnl_table_set_str(p, sys::NFTNL_TABLE_NAME as u16, name.as_ptr());
            NewTable { table }
        }
    }
}

impl Drop for NewTable {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, freed once.
        unsafe { sys::nftnl_table_free(self.table.as_ptr()) }
    }
}

// SAFETY: `write` fills at most one message into the buffer `Batch` provides
// (`nft_nlmsg_maxsize` bytes), as nftnl's own messages do.
unsafe impl NlMsg for NewTable {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, _: MsgType) {
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL | libc::NLM_F_ACK) as u16;
        // SAFETY: the caller provides a buffer of `nft_nlmsg_maxsize` bytes.
        unsafe {
            let h = sys::nftnl_nlmsg_build_hdr(
                buf.cast::<c_char>(),
                libc::NFT_MSG_NEWTABLE as u16,
                FAMILY,
                flags,
                seq,
            );
            sys::nftnl_table_nlmsg_build_payload(h, self.table.as_ptr());
        }
    }
}

fn build_rule<'c>(chain: &'c Chain<'c>, r: &LowRule) -> Result<Rule<'c>, NftError> {
    let mut rule = Rule::new(chain);
    for e in &r.exprs {
        let built = Prebuilt(std::cell::Cell::new(Some(encode_expr(e)?)));
        rule.add_expr(&built);
    }
    if let Some(c) = &r.comment {
        rule.set_comment(cstring("comment", c)?)
            .map_err(|e| NftError::Encode(format!("comment {c:?}: {e}")))?;
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::low::{LowChain, LowExpr};

    #[test]
    fn a_batch_is_one_buffer_with_a_subject_per_message() {
        let table = LowTable {
            name: "zt".into(),
            sets: vec![],
            chains: vec![LowChain {
                name: "output".into(),
                base: Some(LowBase {
                    kind: "filter".into(),
                    hook: 3,
                    priority: 0,
                    policy: 1,
                }),
                rules: vec![LowRule {
                    exprs: vec![
                        LowExpr::Counter {
                            packets: 0,
                            bytes: 0,
                        },
                        LowExpr::Verdict {
                            code: 0,
                            chain: None,
                        },
                    ],
                    comment: Some("zt:default".into()),
                }],
            }],
        };
        let b = encode_batch("zt", true, Some(&table)).unwrap();
        assert!(b.bytes.len() > 100);
        assert_eq!(b.subjects.len(), 5);
        assert!(b.subjects[4].contains("zt:default"));
        let fresh = encode_batch("zt", false, Some(&table)).unwrap();
        assert_eq!(
            fresh.subjects.len(),
            3,
            "no create-and-delete of an absent table"
        );
        assert!(encode_batch("zt", false, None).unwrap().subjects.is_empty());
    }
}
