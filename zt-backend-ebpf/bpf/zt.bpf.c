// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * zt's cgroup socket-address programs: decide every connect() (TCP, connected UDP) and every
 * unconnected UDP sendmsg() of the processes in the attached cgroup, from the maps user space
 * renders from a Ruleset (see zt.h for the layouts and src/render.rs for how they are filled).
 *
 * Decision: read the active generation once; walk its groups in order (bpf_loop, bounded by
 * the header's group count); in each group, look the caller's identity, the transport and the
 * destination port up in zt_members, then (unless the member covers every address) the
 * destination address in zt_prefixes. The first group that matches decides; nothing matching
 * means the generation's default. Allow returns 1; refuse returns 0, which the kernel turns
 * into EPERM for the caller.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "zt.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_active);
} zt_active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct zt_header);
} zt_header SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * ZT_MAX_GROUPS);
	__type(key, __u32);
	__type(value, struct zt_group);
} zt_groups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZT_MAX_MEMBERS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct zt_member_key);
	__type(value, struct zt_member);
} zt_members SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ZT_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct zt_prefix_key);
	__type(value, __u32);
} zt_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * ZT_MAX_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct zt_rule_key);
	__type(value, struct zt_rule);
} zt_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * ZT_MAX_RULES);
	__type(key, __u32);
	__type(value, __u64);
} zt_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, ZT_AUDIT_BYTES);
} zt_audit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} zt_audit_lost SEC(".maps");

/* The state of one decision, shared with the group walk's callback. */
struct walk {
	__u32 gen;
	__u32 uid;
	__u32 gid;
	__u32 rule;    /* result: deciding rule */
	__u16 port;    /* destination port, host order (0 for transports without ports) */
	__u8 proto;    /* ZT_PROTO_* */
	__u8 v6;
	__u8 verdict;  /* result: 0 while no group matched */
	__u8 pad[3];
	__u8 addr[16];
};

static long walk_group(__u64 index, void *data)
{
	struct walk *w = data;
	__u32 i = (__u32)index;
	__u32 slot = w->gen * ZT_MAX_GROUPS + i;
	struct zt_group *g = bpf_map_lookup_elem(&zt_groups, &slot);
	if (!g)
		return 1;

	struct zt_member_key key = {};
	if (g->ports == ZT_PORTS_EXACT) {
		key.port = w->port;
	} else if (w->port < g->port_lo || w->port > g->port_hi) {
		return 0;
	}
	switch (g->ident) {
	case ZT_IDENT_UID:
		key.ident = w->uid;
		break;
	case ZT_IDENT_GID:
		key.ident = w->gid;
		break;
	case ZT_IDENT_CGROUP:
		/* 0 when the caller's cgroup is not that deep: no cgroup has id 0. */
		key.ident = bpf_get_current_ancestor_cgroup_id(g->cgroup_level);
		if (!key.ident)
			return 0;
		break;
	default:
		key.ident = 0;
	}
	key.group = (w->gen << ZT_GEN_SHIFT) | i;
	key.proto = w->proto;

	struct zt_member *m = bpf_map_lookup_elem(&zt_members, &key);
	if (!m)
		return 0;
	__u32 rule = m->rule;
	if (m->list) {
		struct zt_prefix_key pk = {};
		pk.prefixlen = 32 + (w->v6 ? 128 : 32);
		pk.list = (w->gen << ZT_GEN_SHIFT) | (w->v6 ? ZT_V6_BIT : 0) | m->list;
		__builtin_memcpy(pk.addr, w->addr, sizeof(pk.addr));
		__u32 *r = bpf_map_lookup_elem(&zt_prefixes, &pk);
		if (!r)
			return 0;
		rule = *r;
	}
	w->rule = rule;
	w->verdict = g->verdict;
	return 1;
}

static __always_inline void audit(struct walk *w, __u8 hook, __u8 proto)
{
	struct zt_audit_record *rec = bpf_ringbuf_reserve(&zt_audit, sizeof(*rec), 0);
	if (!rec) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&zt_audit_lost, &zero);
		if (lost)
			*lost += 1;
		return;
	}
	__u64 ug = bpf_get_current_uid_gid();
	rec->cgroup = bpf_get_current_cgroup_id();
	rec->uid = (__u32)ug;
	rec->gid = (__u32)(ug >> 32);
	rec->pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
	rec->rule = w->rule;
	rec->gen = w->gen;
	rec->port = w->port;
	rec->family = w->v6 ? 6 : 4;
	rec->proto = proto;
	rec->verdict = w->verdict;
	rec->hook = hook;
	rec->pad[0] = 0;
	rec->pad[1] = 0;
	__builtin_memcpy(rec->addr, w->addr, sizeof(rec->addr));
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));
	__builtin_memset(rec->pad2, 0, sizeof(rec->pad2));
	rec->time_ns = bpf_ktime_get_boot_ns();
	bpf_ringbuf_submit(rec, 0);
}

static __always_inline int decide(struct bpf_sock_addr *ctx, __u8 hook, int v6)
{
	__u32 zero = 0;
	struct zt_active *active = bpf_map_lookup_elem(&zt_active, &zero);
	if (!active)
		return 1;
	__u32 gen = active->gen & 1;
	struct zt_header *h = bpf_map_lookup_elem(&zt_header, &gen);
	/* Programs are attached only after a generation is written; be inert until then. */
	if (!h || h->default_verdict == 0 || h->version != ZT_LAYOUT_VERSION)
		return 1;

	struct walk w = {};
	w.gen = gen;
	__u64 ug = bpf_get_current_uid_gid();
	w.uid = (__u32)ug;
	w.gid = (__u32)(ug >> 32);
	__u32 proto = ctx->protocol;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		w.proto = proto;
		w.port = bpf_ntohs((__u16)ctx->user_port);
	} else {
		w.proto = ZT_PROTO_OTHER;
		w.port = 0;
	}
	if (v6) {
		__u32 a0 = ctx->user_ip6[0];
		__u32 a1 = ctx->user_ip6[1];
		__u32 a2 = ctx->user_ip6[2];
		__u32 a3 = ctx->user_ip6[3];
		if (a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff)) {
			/* An IPv4-mapped destination leaves as IPv4: decide it as IPv4. */
			__builtin_memcpy(w.addr, &a3, 4);
		} else {
			w.v6 = 1;
			__builtin_memcpy(w.addr, &a0, 4);
			__builtin_memcpy(w.addr + 4, &a1, 4);
			__builtin_memcpy(w.addr + 8, &a2, 4);
			__builtin_memcpy(w.addr + 12, &a3, 4);
		}
	} else {
		__u32 a = ctx->user_ip4;
		__builtin_memcpy(w.addr, &a, 4);
	}

	__u32 n = h->ngroups;
	if (n > ZT_MAX_GROUPS)
		n = ZT_MAX_GROUPS;
	bpf_loop(n, walk_group, &w, 0);
	if (!w.verdict) {
		w.rule = h->default_rule;
		w.verdict = h->default_verdict;
	}

	__u32 counter = gen * ZT_MAX_RULES + (w.rule & ZT_RULE_INDEX);
	__u64 *count = bpf_map_lookup_elem(&zt_counters, &counter);
	if (count)
		*count += 1;
	if (w.verdict != ZT_ALLOW || (w.rule & ZT_RULE_LOG))
		audit(&w, hook, (__u8)proto);
	return w.verdict == ZT_ALLOW ? 1 : 0;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	return decide(ctx, ZT_HOOK_CONNECT4, 0);
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	return decide(ctx, ZT_HOOK_CONNECT6, 1);
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	return decide(ctx, ZT_HOOK_SENDMSG4, 0);
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
	return decide(ctx, ZT_HOOK_SENDMSG6, 1);
}

char LICENSE[] SEC("license") = "MIT OR Apache-2.0";
