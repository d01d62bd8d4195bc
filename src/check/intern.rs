//! Shared strings and the interner that hands them out while one policy is checked.
//!
//! A large policy repeats a few texts over and over — the literal levels `c` and `xfi`, the
//! attribute names `pid` and `client`, the pieces of `{pid}_{aid}`, the identity list of
//! `allow mobile ...`. The checker asks an [`Interner`] for each of them, so every use of
//! the same text is one [`SharedStr`] (one allocation, a reference count per use) and
//! every equal piece sequence or identity list one `Arc`. The interner lives for one load
//! and is dropped with the checker; the checked policy keeps only the shared values.
//! Interning never changes what a value is: a `SharedStr` compares, hashes, orders and
//! prints exactly as its text.

use super::model::{IdentityId, Piece};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// An immutable string that equal texts of one checked policy share.
///
/// It reads as a `&str` (`Deref`, [`SharedStr::as_str`]), compares with `str` and
/// `String`, and serializes and prints as its text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when both are the same allocation (not merely equal text).
    pub fn shares_allocation(&self, other: &SharedStr) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for SharedStr {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> SharedStr {
        SharedStr(Arc::from(text))
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> SharedStr {
        SharedStr(Arc::from(text))
    }
}

impl From<&String> for SharedStr {
    fn from(text: &String) -> SharedStr {
        SharedStr(Arc::from(text.as_str()))
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> String {
        text.0.to_string()
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == &*other.0
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        **self == *other.0
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl serde::Serialize for SharedStr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The shared values of one load: each distinct text, piece sequence, list of alternatives
/// and identity list once.
///
/// Costs one hash and, the first time a value is seen, one allocation; the sets hold a
/// reference to each value until the interner is dropped. Every hash and comparison is
/// linear in the rule's own text: a piece that names a set (`{x in big}`) is keyed by the
/// set's one shared value list, never by its values, so a rule costs the same whatever the
/// size of the sets it names.
#[derive(Default)]
pub(crate) struct Interner {
    texts: FxHashSet<SharedStr>,
    /// Piece sequences by [`pieces_hash`]; equal ones by [`same_pieces`].
    pieces: FxHashMap<u64, Vec<Arc<[Piece]>>>,
    alternatives: FxHashSet<Arc<[String]>>,
    identity_lists: FxHashSet<Arc<[IdentityId]>>,
}

impl Interner {
    /// The shared string equal to `text`.
    pub(crate) fn text(&mut self, text: &str) -> SharedStr {
        if let Some(shared) = self.texts.get(text) {
            return shared.clone();
        }
        let shared = SharedStr::from(text);
        self.texts.insert(shared.clone());
        shared
    }

    /// The shared piece sequence equal to `pieces` (with the same value lists).
    pub(crate) fn pieces(&mut self, pieces: Vec<Piece>) -> Arc<[Piece]> {
        let bucket = self.pieces.entry(pieces_hash(&pieces)).or_default();
        if let Some(shared) = bucket.iter().find(|p| same_pieces(p, &pieces)) {
            return shared.clone();
        }
        let shared: Arc<[Piece]> = pieces.into();
        bucket.push(shared.clone());
        shared
    }

    /// The shared list of alternatives (`{success|failure}`) equal to `values`.
    pub(crate) fn alternatives(&mut self, values: Vec<String>) -> Arc<[String]> {
        if let Some(shared) = self.alternatives.get(values.as_slice()) {
            return shared.clone();
        }
        let shared: Arc<[String]> = values.into();
        self.alternatives.insert(shared.clone());
        shared
    }

    /// The shared identity list equal to `ids`.
    pub(crate) fn identities(&mut self, ids: &[IdentityId]) -> Arc<[IdentityId]> {
        if let Some(shared) = self.identity_lists.get(ids) {
            return shared.clone();
        }
        let shared: Arc<[IdentityId]> = ids.into();
        self.identity_lists.insert(shared.clone());
        shared
    }
}

/// A hash of a piece sequence: texts and names by content, value lists by allocation.
fn pieces_hash(pieces: &[Piece]) -> u64 {
    let mut hasher = FxHasher::default();
    for piece in pieces {
        match piece {
            Piece::Text(text) => (0u8, text).hash(&mut hasher),
            Piece::Attr(name) => (1u8, name).hash(&mut hasher),
            Piece::Capture(name) => (2u8, name).hash(&mut hasher),
            Piece::OneOf { capture, values } => {
                (3u8, capture, Arc::as_ptr(values).cast::<String>()).hash(&mut hasher)
            }
        }
    }
    hasher.finish()
}

/// True when both sequences have equal texts and names and the very same value lists.
fn same_pieces(a: &[Piece], b: &[Piece]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (
                Piece::OneOf { capture, values },
                Piece::OneOf {
                    capture: other_capture,
                    values: other_values,
                },
            ) => capture == other_capture && Arc::ptr_eq(values, other_values),
            (Piece::OneOf { .. }, _) | (_, Piece::OneOf { .. }) => false,
            (x, y) => x == y,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_allocation() {
        let mut interner = Interner::default();
        let a = interner.text("xfi");
        let b = interner.text(&String::from("xfi"));
        let c = interner.text("xfj");
        assert!(a.shares_allocation(&b));
        assert!(!a.shares_allocation(&c));
        assert_eq!(a, "xfi");
        assert_eq!(format!("{a} {a:?}"), "xfi \"xfi\"");
    }

    #[test]
    fn equal_piece_sequences_and_identity_lists_share_one_allocation() {
        let mut interner = Interner::default();
        let pid = interner.text("pid");
        let pieces = |i: &mut Interner| {
            i.pieces(vec![
                Piece::Attr(pid.clone()),
                Piece::Text(SharedStr::from("_")),
            ])
        };
        let (a, b) = (pieces(&mut interner), pieces(&mut interner));
        assert!(Arc::ptr_eq(&a, &b));
        let big: Arc<[String]> = (0..1000).map(|i| format!("v{i}")).collect();
        let named = |i: &mut Interner, values: &Arc<[String]>| {
            i.pieces(vec![Piece::OneOf {
                capture: Some(SharedStr::from("x")),
                values: values.clone(),
            }])
        };
        let (c, d) = (named(&mut interner, &big), named(&mut interner, &big));
        assert!(Arc::ptr_eq(&c, &d), "the same set is one sequence");
        let copy: Arc<[String]> = big.to_vec().into();
        let e = named(&mut interner, &copy);
        assert!(
            !Arc::ptr_eq(&c, &e),
            "sets are told apart by their one allocation"
        );
        assert_eq!(c, e, "which holds the same values");
        let alternatives = |i: &mut Interner| i.alternatives(vec!["ok".into(), "err".into()]);
        let (f, g) = (alternatives(&mut interner), alternatives(&mut interner));
        assert!(Arc::ptr_eq(&f, &g));
        let x = interner.identities(&[IdentityId(0), IdentityId(2)]);
        let y = interner.identities(&[IdentityId(0), IdentityId(2)]);
        let z = interner.identities(&[IdentityId(2), IdentityId(0)]);
        assert!(Arc::ptr_eq(&x, &y));
        assert!(!Arc::ptr_eq(&x, &z), "order is part of the list");
    }
}
