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
use rustc_hash::FxHashSet;
use std::borrow::Borrow;
use std::fmt;
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

/// The shared values of one load: each distinct text, piece sequence and identity list
/// once.
///
/// Costs one hash and, the first time a value is seen, one allocation; the sets hold a
/// reference to each value until the interner is dropped.
#[derive(Default)]
pub(crate) struct Interner {
    texts: FxHashSet<SharedStr>,
    pieces: FxHashSet<Arc<[Piece]>>,
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

    /// The shared piece sequence equal to `pieces`.
    pub(crate) fn pieces(&mut self, pieces: Vec<Piece>) -> Arc<[Piece]> {
        if let Some(shared) = self.pieces.get(pieces.as_slice()) {
            return shared.clone();
        }
        let shared: Arc<[Piece]> = pieces.into();
        self.pieces.insert(shared.clone());
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
        let x = interner.identities(&[IdentityId(0), IdentityId(2)]);
        let y = interner.identities(&[IdentityId(0), IdentityId(2)]);
        let z = interner.identities(&[IdentityId(2), IdentityId(0)]);
        assert!(Arc::ptr_eq(&x, &y));
        assert!(!Arc::ptr_eq(&x, &z), "order is part of the list");
    }
}
