//! The nftables backend for zt (filled by the nftables backend issue).
//!
//! It will hold a typed model of zt's own `inet` table (base chains on the output and input
//! hooks, the prologue, the user rules compiled into set lookups where runs of rules share a
//! shape, the log-and-default epilogue), two encoders from that one model — `nft -f` text and
//! netlink messages — and the kernel seam that applies the table in one netlink transaction,
//! reads it back for plan/verify/status, and restores or deletes it for rollback/flush.
