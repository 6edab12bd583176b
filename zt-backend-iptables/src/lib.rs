//! The iptables backend for zt (filled by the iptables backend issue).
//!
//! It will render a `Ruleset` as `iptables-restore` and `ip6tables-restore` input for zt's own
//! `ZT-*` chains reached by one jump rule per hooked built-in chain, apply both families with one
//! `--noflush` restore each (restoring IPv4 from the snapshot if IPv6 fails), detect the host's
//! iptables variant (legacy or nft), and parse `iptables-save` output for plan, verify and status.
