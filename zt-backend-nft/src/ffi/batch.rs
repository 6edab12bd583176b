//! The transaction that replaces zt's table, as one buffer of netlink messages.

use super::cstring;
use super::expr::{Prebuilt, encode_expr};
use super::set::{SetMsg, add_elements};
use crate::error::NftError;
use crate::low::{LowBase, LowRule, LowTable};
use nftnl::{Batch, Chain, MsgType, ProtoFamily, Rule, Table};

/// A built batch: one buffer to send in one `sendmsg`, and what each message concerns.
pub(crate) struct EncodedBatch {
    /// The messages, BEGIN to END, contiguous.
    pub bytes: Vec<u8>,
    /// What each message between BEGIN and END concerns, in order (for error messages).
    pub subjects: Vec<String>,
}

/// Encode the transaction that makes table `name` hold exactly `table` — or removes it when
/// `table` is `None` — whatever was there before: create (no-op if present), delete, then
/// build the new content, all in one batch the kernel commits atomically.
pub(crate) fn encode_batch(name: &str, table: Option<&LowTable>) -> Result<EncodedBatch, NftError> {
    let cname = cstring("table name", name)?;
    let t = Table::new(&cname, ProtoFamily::Inet);
    let mut batch = Batch::new();
    let mut subjects: Vec<String> = Vec::new();
    let push = |subjects: &mut Vec<String>, what: String| subjects.push(what);
    batch.add(&t, MsgType::Add);
    push(&mut subjects, format!("table inet {name}"));
    batch.add(&t, MsgType::Del);
    push(&mut subjects, format!("table inet {name}"));
    if let Some(table) = table {
        batch.add(&t, MsgType::Add);
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
        let b = encode_batch("zt", Some(&table)).unwrap();
        assert!(b.bytes.len() > 100);
        assert_eq!(b.subjects.len(), 5);
        assert!(b.subjects[4].contains("zt:default"));
    }
}
