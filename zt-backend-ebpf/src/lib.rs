//! The eBPF backend for zt (filled by the eBPF backend issue).
//!
//! It will enforce a `Ruleset` with clang-built `cgroup/connect4`, `connect6`, `sendmsg4` and
//! `sendmsg6` programs attached to a cgroup v2 directory, loaded with aya, deciding from maps
//! rendered purely from the ruleset; policy updates flip a map generation without reloading any
//! program, and every object is pinned under zt's own bpffs directory.
