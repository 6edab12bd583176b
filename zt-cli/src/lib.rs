//! The reference `zt` command (filled by the CLI issue).
//!
//! It will be a thin shell over `zt-core` and the backends: argument parsing, output formatting
//! (text and `--json`), a lock on the state directory, the state files (last applied policy,
//! rollback snapshot) and the append-only audit trail. Everything an embedder also needs —
//! diffing, verification, persistence formats, log parsing — stays in the libraries.
