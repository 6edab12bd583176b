//! A string that holds a short text without a heap allocation.
//!
//! Every rule has a name, and its ruleset entry and the diagnostics about it carry the name
//! too. Shared as an `Arc<str>`, a name cost an allocation to make and one to free, and an
//! atomic count update every time it was passed on: for a 10 000-rule policy, more time than
//! reading the names. Names are short (at most 63 bytes, and most far shorter), so those up to
//! [`INLINE`] bytes are stored in place and copied instead.

use serde::{Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Longest text stored in place: what fits beside the length in the size of the shared form.
pub(crate) const INLINE: usize = 22;

/// An immutable string; equality, order, hashing, `Debug` and serialization are the text's, so
/// how it is stored never shows.
#[derive(Clone)]
pub(crate) struct ShortStr(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl ShortStr {
    pub(crate) fn new(text: &str) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Self(Repr::Inline { len, bytes })
            }
            _ => Self(Repr::Shared(Arc::from(text))),
        }
    }

    /// The text's bytes: what comparing and hashing need, without `as_str`'s UTF-8 check.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared(text) => text.as_bytes(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match &self.0 {
            // Copied from a `&str` whole, so always UTF-8; the fallback is never taken.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Shared(text) => text,
        }
    }
}

impl PartialEq for ShortStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ShortStr {}

impl PartialOrd for ShortStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ShortStr {
    fn cmp(&self, other: &Self) -> Ordering {
        // UTF-8 orders as its bytes do.
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for ShortStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ShortStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::{INLINE, Repr, ShortStr};
    use proptest::prelude::*;

    #[test]
    fn short_texts_are_stored_in_place_and_long_ones_shared() {
        let short = "a".repeat(INLINE);
        let long = "a".repeat(INLINE + 1);
        assert!(matches!(ShortStr::new(&short).0, Repr::Inline { .. }));
        assert!(matches!(ShortStr::new(&long).0, Repr::Shared(_)));
        assert_eq!(ShortStr::new(&short).as_str(), short);
        assert_eq!(ShortStr::new(&long).as_str(), long);
    }

    proptest! {
        /// Stored in place or shared, a text compares, orders and prints as itself.
        #[test]
        fn behaves_as_its_text(a in "\\PC{0,30}", b in "\\PC{0,30}") {
            let (x, y) = (ShortStr::new(&a), ShortStr::new(&b));
            prop_assert_eq!(x.as_str(), a.as_str());
            prop_assert_eq!(x == y, a == b);
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x.as_bytes(), a.as_bytes());
            prop_assert_eq!(format!("{x:?}"), format!("{a:?}"));
            prop_assert_eq!(x.to_string(), a.clone());
        }
    }
}
