//! Where something was written: positions in a configuration file.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A place in a configuration file: 1-based line and 1-based column, counted in characters.
///
/// Every diagnostic carries one, so an operator can jump straight to the offending text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Line number, starting at 1.
    pub line: u32,
    /// Column number, starting at 1, in characters (not bytes).
    pub column: u32,
}

impl Position {
    /// A position from 1-based line and column numbers.
    pub const fn new(line: u32, column: u32) -> Self {
        Self { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where a policy rule came from: its position in the file, if it was read from one.
///
/// Provenance is metadata, not meaning: two rules that say the same thing are equal wherever
/// they were written (this is what lets a policy built in code compare equal to the same policy
/// read back from YAML).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Provenance(pub Option<Position>);

impl PartialEq for Provenance {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Provenance {}

/// Consistent with equality: every provenance hashes alike.
impl std::hash::Hash for Provenance {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}
