//! A list that holds a single item without a heap allocation.
//!
//! Most rules name one network and one port range. A `Vec` for each would cost a 10 000-rule
//! policy two allocations per rule to make, and two to free, for one-item lists.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// A list of `T`, read as a slice; one item is stored inline.
///
/// Equality, hashing and serialization are the slice's, so how a list is stored never shows.
#[derive(Clone)]
pub struct ShortList<T>(Repr<T>);

#[derive(Clone)]
enum Repr<T> {
    One(T),
    /// No item, or more than one (an empty `Vec` does not allocate).
    Many(Vec<T>),
}

impl<T> ShortList<T> {
    /// A list of one item.
    pub fn one(item: T) -> Self {
        Self(Repr::One(item))
    }

    /// Append an item.
    pub fn push(&mut self, item: T) {
        match &mut self.0 {
            Repr::Many(items) if items.is_empty() => self.0 = Repr::One(item),
            Repr::Many(items) => items.push(item),
            Repr::One(_) => {
                let Repr::One(first) = std::mem::take(self).0 else {
                    return;
                };
                self.0 = Repr::Many(vec![first, item]);
            }
        }
    }

    /// The items as a `Vec` (without copying a list of several).
    pub fn into_vec(self) -> Vec<T> {
        match self.0 {
            Repr::One(item) => vec![item],
            Repr::Many(items) => items,
        }
    }

    /// The items, to reorder or change in place.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        match &mut self.0 {
            Repr::One(item) => std::slice::from_mut(item),
            Repr::Many(items) => items,
        }
    }

    /// The items.
    pub fn as_slice(&self) -> &[T] {
        match &self.0 {
            Repr::One(item) => std::slice::from_ref(item),
            Repr::Many(items) => items,
        }
    }
}

impl<T> Default for ShortList<T> {
    fn default() -> Self {
        Self(Repr::Many(Vec::new()))
    }
}

impl<T> From<Vec<T>> for ShortList<T> {
    fn from(mut items: Vec<T>) -> Self {
        if items.len() == 1
            && let Some(item) = items.pop()
        {
            return Self::one(item);
        }
        Self(Repr::Many(items))
    }
}

impl<T> Deref for ShortList<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: PartialEq> PartialEq for ShortList<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Eq> Eq for ShortList<T> {}

impl<T: Hash> Hash for ShortList<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl<T: fmt::Debug> fmt::Debug for ShortList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl<T: Serialize> Serialize for ShortList<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ShortList<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::ShortList;
    use std::hash::{BuildHasher, RandomState};

    #[test]
    fn storage_never_shows_in_equality_hashing_or_serialization() {
        let inline = ShortList::one(7u16);
        // Not through `From`, which would store it inline too.
        let spilled = ShortList(super::Repr::Many(vec![7u16]));
        assert_eq!(inline, spilled);
        let hasher = RandomState::new();
        assert_eq!(hasher.hash_one(&inline), hasher.hash_one(&spilled));
        let json = serde_json::to_string(&inline).unwrap();
        assert_eq!(json, serde_json::to_string(&spilled).unwrap());
        assert_eq!(json, "[7]");
        let back: ShortList<u16> = serde_json::from_str("[7]").unwrap();
        assert!(matches!(back.0, super::Repr::One(7)));
        assert_eq!(&*ShortList::from(vec![1u16, 2]), &[1, 2]);
        assert!(ShortList::<u16>::default().is_empty());
        let mut pushed = ShortList::default();
        for i in 1..=3u16 {
            pushed.push(i);
            assert_eq!(pushed.to_vec(), (1..=i).collect::<Vec<_>>());
        }
        assert_eq!(pushed.into_vec(), vec![1, 2, 3]);
    }
}
