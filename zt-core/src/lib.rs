//! # zt-core — identity-based host firewall policy, from YAML to a first-match ruleset
//!
//! zt turns a declarative policy ("only processes running as `web-user` may open TCP
//! connections to 127.0.0.1:6379; everything else is denied, IPv4 and IPv6; SSH is never cut
//! off") into kernel firewall state through pluggable backends. This crate is everything up to
//! the kernel, and nothing that touches it:
//!
//! ```text
//! rules.yaml ─read─▶ Config ─validate+resolve─▶ Policy ─order─▶ Ruleset ─Backend─▶ kernel
//! ```
//!
//! * [`Config`]: the file's shape, every value with its line and column.
//! * [`Policy`]: validated and resolved — uids and gids, normalized address sets per family,
//!   port ranges. Only validation (of a file, or of [`PolicyBuilder`] input) produces one, and
//!   every problem is reported at once, each with its rule, field and position.
//! * [`Ruleset`]: the exact first-match list, zt's prologue and epilogue included, and the
//!   reference evaluator [`Ruleset::evaluate`] that defines what every backend must do.
//! * [`Backend`]: the contract backends implement (plan, apply, verify, rollback, status, flush).
//! * [`fleet`]: where a policy applies in a fleet (`selector:`, `order:`) and how a host's
//!   policies compose into one (`<policy>/<rule>` names, settings that must agree) — pure, for
//!   fleet agents such as zt-agent.
//!
//! ```
//! use zt_core::{Policy, Probe, ProbeProtocol, StaticResolver, Verdict};
//!
//! let yaml = r#"
//! version: "1.0"
//! rules:
//!   - name: web-to-redis
//!     from: { user: web-user }
//!     to: { host: 127.0.0.1, port: 6379 }
//!     action: allow
//! "#;
//! let resolver = StaticResolver::new().user("web-user", 1001);
//! let ruleset = Policy::from_yaml(yaml, "rules.yaml", &resolver)?.policy.ruleset();
//!
//! let web = Probe::connect(ProbeProtocol::Tcp, 1001, 1001, "127.0.0.1:6379".parse().unwrap());
//! assert_eq!(ruleset.evaluate(&web).verdict, Verdict::Accept);
//! let other = Probe::connect(ProbeProtocol::Tcp, 1002, 1002, "127.0.0.1:6379".parse().unwrap());
//! assert_eq!(ruleset.evaluate(&other).name, "zt:default");
//! # Ok::<(), zt_core::Error>(())
//! ```
//!
//! ## Dependencies, and why these
//!
//! zt-core links no C library (embedders get a pure-Rust core). The design named `serde_yaml`
//! and `users`; both are unmaintained, so zt uses their maintained successors:
//! * YAML: `serde_yaml` was archived by its author in 2024 (and `serde_yml` carries advisories
//!   RUSTSEC-2025-0067/0068). zt writes YAML with `serde-saphyr` and reads it with
//!   `granit-parser`, the pure-Rust parser `serde-saphyr` is built on, plus a strict fast path
//!   for the common subset (see [`yaml`]). Reading events directly gives every scalar as
//!   written and every node a position, with zt's own limits on size, nesting and aliases.
//! * Users and groups: `users` 0.11 is unmaintained and unsound (RUSTSEC-2023-0040,
//!   RUSTSEC-2023-0059); zt uses `uzers`, the maintained fork with the same API.
//! * Hashing zt's internal maps (rule names, rule groups): `foldhash`, pure Rust under the
//!   permissive Zlib licence and already in the build through `hashbrown`. It is several times
//!   faster than std's SipHash on short keys, and its per-map random seed still protects the maps
//!   against crafted keys.
//! * The duplicate-name table: `hashbrown`'s `HashTable` (MIT OR Apache-2.0, the crate std's
//!   `HashMap` is built on, already in the build), which stores 8-byte slots and looks the
//!   names up where they already are; std exposes no such table.
//! * `libc`: the bindings std itself is built on (no further C library), for what std does not
//!   expose when a file is opened: `O_NONBLOCK`, `O_NOCTTY`, `O_NOFOLLOW` and `fcntl` (see
//!   [`input`]).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod backend;
pub mod config;
pub mod diagnostic;
mod error;
pub mod fault;
pub mod fleet;
pub mod host;
pub mod input;
pub mod kernel_log;
pub mod persist;
pub mod policy;
pub mod resolve;
pub mod ruleset;
mod short_str;
pub mod source;
pub mod yaml;

#[cfg(any(test, feature = "mock"))]
pub use backend::MockBackend;
pub use backend::{
    Artifact, ArtifactFile, AuditEvent, AuditSource, Backend, Capabilities, Change, ChangeCounts,
    ChangeKind, Counter, Diff, Drift, DriftItem, DriftKind, Driver, Plan, Snapshot, Status,
    Transition, Unit, compare,
};
pub use config::Config;
pub use diagnostic::{Code, Diagnostic, Diagnostics, Severity};
pub use error::Error;
pub use persist::{Boot, PersistFile, PersistLink, Persistence};
pub use policy::{
    Action, AddressSet, AddressSetParts, Addresses, CgroupPath, DefaultPolicy, Direction, Family,
    Identity, Loaded, Policy, PolicyBuilder, PortRange, PortRangeParts, PortSet, Protocol, Rule,
    RuleBuilder, RuleMatchParts, RuleName, Settings, ShortList,
};
#[cfg(any(test, feature = "mock"))]
pub use resolve::MockNameResolver;
pub use resolve::{NameResolver, StaticResolver, SystemResolver};
pub use ruleset::{
    CtState, Decision, Entry, EntryParts, Hook, Matcher, Probe, ProbeProtocol, RuleMatch, RuleRef,
    Ruleset, Verdict,
};
pub use source::Position;
