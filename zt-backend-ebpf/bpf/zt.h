/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Map layouts shared by zt.bpf.c and the Rust side (src/layout.rs mirrors every struct with
 * #[repr(C)] and checks the sizes). Every struct is padded explicitly: no implicit padding, so
 * the bytes user space writes are the bytes the program reads.
 *
 * Generations: every policy entry is keyed by a generation (0 or 1). zt_active holds the
 * generation the programs read; user space fills the other one and flips the index, so a
 * program run sees one whole policy, never half of two.
 */
#ifndef ZT_H
#define ZT_H

#include <linux/types.h>

/* Bump when a layout below changes: pinned maps of another layout are refused. */
#define ZT_LAYOUT_VERSION 1

#define ZT_MAX_GROUPS 4096          /* groups per generation (bounded walk) */
#define ZT_MAX_RULES 16384          /* ruleset entry indexes per generation (counters) */
#define ZT_MAX_MEMBERS 262144       /* member entries, both generations */
#define ZT_MAX_PREFIXES 262144      /* prefix entries, both generations */
#define ZT_AUDIT_BYTES (256 * 1024) /* ring buffer of audit records */

/* Verdicts. 0 means "no policy written" (the header of a generation never filled). */
#define ZT_ALLOW 1
#define ZT_REFUSE 2

/* Identity kinds of a group: what the member key's identity is. */
#define ZT_IDENT_ANY 0
#define ZT_IDENT_UID 1
#define ZT_IDENT_GID 2
#define ZT_IDENT_CGROUP 3

/* Port matching of a group. */
#define ZT_PORTS_EXACT 0 /* member key port = destination port */
#define ZT_PORTS_RANGE 1 /* member key port = 0, destination port in [port_lo, port_hi] */

/* Transport in member keys: TCP, UDP, or anything else a socket hook sees (port 0). */
#define ZT_PROTO_OTHER 0
#define ZT_PROTO_TCP 6
#define ZT_PROTO_UDP 17

/* A rule reference: ruleset entry index, with the entry's log flag in the top bit. */
#define ZT_RULE_LOG 0x80000000u
#define ZT_RULE_INDEX 0x7fffffffu

/* Scope words: generation in bit 31; for prefix lists, IPv6 in bit 30. */
#define ZT_GEN_SHIFT 31
#define ZT_V6_BIT 0x40000000u

/* Hooks, as recorded in audit records. */
#define ZT_HOOK_CONNECT4 0
#define ZT_HOOK_CONNECT6 1
#define ZT_HOOK_SENDMSG4 2
#define ZT_HOOK_SENDMSG6 3

/* zt_active[0] */
struct zt_active {
	__u32 gen;
};

/* zt_header[gen]: one generation's policy as a whole. */
struct zt_header {
	__u32 version;       /* ZT_LAYOUT_VERSION */
	__u32 ngroups;       /* groups to walk */
	__u32 default_rule;  /* zt:default (with ZT_RULE_LOG if zt:log logs fall-through) */
	__u8 default_verdict;
	__u8 pad[3];
};

/* zt_groups[gen * ZT_MAX_GROUPS + i]: a run of rules with one verdict and one shape. */
struct zt_group {
	__u8 verdict;
	__u8 ident;
	__u8 cgroup_level; /* for ZT_IDENT_CGROUP: bpf_get_current_ancestor_cgroup_id(level) */
	__u8 ports;
	__u16 port_lo;     /* ZT_PORTS_RANGE: inclusive, host order */
	__u16 port_hi;
};

/* zt_members: which (identity, transport, port) belong to a group. */
struct zt_member_key {
	__u64 ident;  /* uid, gid, cgroup id, or 0 for any */
	__u32 group;  /* gen << 31 | group index */
	__u16 port;   /* host order; 0 for range groups */
	__u8 proto;   /* ZT_PROTO_* */
	__u8 pad;
};

struct zt_member {
	__u32 rule;  /* list == 0: the deciding rule (every address matches) */
	__u32 list;  /* != 0: look the destination up in zt_prefixes under this list */
};

/* zt_prefixes (LPM trie): prefixlen = 32 + the address prefix length. */
struct zt_prefix_key {
	__u32 prefixlen;
	__u32 list;     /* gen << 31 | ZT_V6_BIT for IPv6 | list id; always fully matched */
	__u8 addr[16];  /* network order; IPv4 in the first 4 bytes */
};
/* value: __u32 rule (the lowest rule whose prefixes contain this prefix) */

/* zt_rules (user space only): the name table of a generation, for status and audit. */
struct zt_rule_key {
	__u32 gen;
	__u32 index;
};

struct zt_rule {
	char name[64];
	__u8 verdict;
	__u8 log;
	__u8 pad[6];
};

/* zt_audit ring buffer records: refusals, and allowed calls of rules with log: true. */
struct zt_audit_record {
	__u64 cgroup;   /* cgroup v2 id of the caller */
	__u32 uid;
	__u32 gid;
	__u32 pid;      /* thread group id */
	__u32 rule;     /* deciding rule (with ZT_RULE_LOG) */
	__u32 gen;      /* generation whose name table names the rule */
	__u16 port;     /* host order */
	__u8 family;    /* 4 or 6 (IPv4-mapped IPv6 destinations are recorded as IPv4) */
	__u8 proto;     /* IP protocol number of the socket */
	__u8 verdict;
	__u8 hook;      /* ZT_HOOK_* */
	__u8 pad[2];
	__u8 addr[16];
	char comm[16];
	__u8 pad2[4];
	__u64 time_ns;  /* bpf_ktime_get_boot_ns() at the call (boot clock, counts suspend) */
};

_Static_assert(sizeof(struct zt_header) == 16, "zt_header");
_Static_assert(sizeof(struct zt_group) == 8, "zt_group");
_Static_assert(sizeof(struct zt_member_key) == 16, "zt_member_key");
_Static_assert(sizeof(struct zt_member) == 8, "zt_member");
_Static_assert(sizeof(struct zt_prefix_key) == 24, "zt_prefix_key");
_Static_assert(sizeof(struct zt_rule_key) == 8, "zt_rule_key");
_Static_assert(sizeof(struct zt_rule) == 72, "zt_rule");
_Static_assert(sizeof(struct zt_audit_record) == 80, "zt_audit_record");

#endif
