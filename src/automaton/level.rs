//! Pattern levels: the matcher for one topic level that mixes text, attributes, sets and
//! captures (`{pid}_{aid}_{+device}`, `dev-{+n}`, `{a|b}_{+x}`).
//!
//! A pattern level is cut in three at compile time:
//! * the **head**: the text and attributes before its first capture or set;
//! * the **middle**: from its first capture or set to its last, attribute-free;
//! * the **tail**: the text and attributes after its last capture or set.
//!
//! The checker guarantees that no attribute sits in the middle (an attribute with a capture
//! or a set on both sides could be read at several places of one level, so one level would
//! belong to several accounts). Once a session's attributes are filled in, the head and
//! the tail are plain text, so a level matches when it starts with the head, ends with the
//! tail (without overlap) and what is left between them matches the middle. The middle is
//! built once, here, shared by every session: any text (a lone capture), a literal set
//! (a lone set), or an anchored regex-automata regex built from regex-syntax `Hir` for
//! everything else, within a size limit. Deciding never builds anything, never fails, and
//! costs time linear in the level's length.
//!
//! A level whose template starts with a capture never matches a first topic level that
//! starts with `$`, not even with an empty capture (MQTT 4.7.2).

use super::{LiteralSet, SetId, SlotId, SlotTexts};
use crate::check::Piece;
pub use crate::check::{Split, is_variable, split};
use regex_automata::meta::{self, Regex};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_syntax::hir::{Dot, Hir, Look, Repetition};

/// Text around a pattern level's middle.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Affix {
    /// The same for every session (possibly empty).
    Text(Box<str>),
    /// Depends on the session's attributes: one of its identity's slots.
    Slot(SlotId),
}

impl Affix {
    /// The text, with the session's slots filled in.
    #[inline]
    pub fn text<'a>(&'a self, slots: SlotTexts<'a>) -> &'a str {
        match self {
            Affix::Text(text) => text,
            Affix::Slot(slot) => slots.get(*slot),
        }
    }
}

/// What the middle of a pattern level must be.
#[derive(Clone, Debug)]
pub enum Middle {
    /// A lone capture: any text, possibly empty.
    Any,
    /// A lone set or alternatives: exactly one of the values.
    Set(SetId),
    /// Anything else: an anchored regex over the whole middle.
    Regex(Regex),
}

/// A compiled pattern level.
#[derive(Clone, Debug)]
pub struct PatternLevel {
    /// The level as written (for dumps and for subscribe's witnesses).
    pub pieces: Vec<Piece>,
    pub(crate) head: Affix,
    pub(crate) middle: Middle,
    pub(crate) tail: Affix,
    /// First topic level starting with a capture: never matches a level starting with `$`.
    pub leading_capture: bool,
    /// Every match starts with `$` (so a leading wildcard level can never reach it).
    pub dollar_only: bool,
}

impl PatternLevel {
    /// Does `level` match? `slots`: the session's rendered slots of this pattern's identity.
    #[inline(never)]
    pub fn matches(&self, level: &str, sets: &[LiteralSet], slots: SlotTexts<'_>) -> bool {
        if self.leading_capture && level.starts_with('$') {
            return false;
        }
        let Some(middle) = without_affixes(level, self.head.text(slots), self.tail.text(slots))
        else {
            return false;
        };
        match &self.middle {
            Middle::Any => true,
            Middle::Set(set) => sets[set.0 as usize].contains(middle),
            Middle::Regex(regex) => regex.is_match(middle),
        }
    }
}

/// `level` without `head` at its start and `tail` at its end, if it has both (without
/// overlap). Compares bytes directly: for the few bytes of an affix that is much cheaper
/// than a call to `memcmp`, and an empty affix costs nothing.
#[inline]
fn without_affixes<'l>(level: &'l str, head: &str, tail: &str) -> Option<&'l str> {
    let (bytes, h, t) = (level.as_bytes(), head.as_bytes(), tail.as_bytes());
    if bytes.len() < h.len() + t.len() {
        return None;
    }
    let same = |a: &[u8], b: &[u8]| a.iter().zip(b).all(|(x, y)| x == y);
    if !same(&bytes[..h.len()], h) || !same(&bytes[bytes.len() - t.len()..], t) {
        return None;
    }
    // Both affixes are whole UTF-8 strings, so the cuts fall on character boundaries.
    level.get(h.len()..bytes.len() - t.len())
}

/// Why a middle could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MiddleError {
    /// An attribute between captures or sets (the checker refuses these).
    #[error("attribute `{0}` sits between captures or sets, which the checker forbids")]
    Attribute(String),
    /// The pattern would need more memory than the limit.
    #[error("the level's pattern needs more than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// The regex for a middle: anchored at both ends, captures as `.*`, sets as alternations.
/// At most `limit` bytes for its automata (the regex-automata NFA size limit, checked again
/// on the built regex's own memory count).
pub fn middle_regex(middle: &[Piece], limit: usize) -> Result<Regex, MiddleError> {
    let mut parts = Vec::with_capacity(middle.len() + 2);
    parts.push(Hir::look(Look::Start));
    for piece in middle {
        parts.push(match piece {
            Piece::Text(text) => Hir::literal(text.as_bytes()),
            Piece::Capture(_) => Hir::repetition(Repetition {
                min: 0,
                max: None,
                greedy: true,
                sub: Box::new(Hir::dot(Dot::AnyChar)),
            }),
            Piece::OneOf { values, .. } => {
                Hir::alternation(values.iter().map(|v| Hir::literal(v.as_bytes())).collect())
            }
            Piece::Attr(name) => return Err(MiddleError::Attribute(name.to_string())),
        });
    }
    parts.push(Hir::look(Look::End));
    let config = meta::Config::new()
        .nfa_size_limit(Some(limit))
        .onepass_size_limit(Some(limit))
        .dfa_size_limit(Some(limit))
        .which_captures(WhichCaptures::Implicit);
    let regex = meta::Builder::new()
        .configure(config)
        .build_from_hir(&Hir::concat(parts))
        .map_err(|_| MiddleError::TooLarge { limit })?;
    if regex.memory_usage() > limit {
        return Err(MiddleError::TooLarge { limit });
    }
    Ok(regex)
}

/// True when every text the pieces can match starts with `$`.
pub fn dollar_only(pieces: &[Piece]) -> bool {
    match pieces.first() {
        Some(Piece::Text(t)) => t.starts_with('$'),
        Some(Piece::OneOf { values, .. }) => values.iter().all(|v| v.starts_with('$')),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn text(t: &str) -> Piece {
        Piece::Text(t.into())
    }

    fn attr(a: &str) -> Piece {
        Piece::Attr(a.into())
    }

    fn capture() -> Piece {
        Piece::Capture("c".into())
    }

    fn one_of(values: &[&str]) -> Piece {
        Piece::OneOf {
            capture: None,
            values: Arc::from(values.iter().map(|v| v.to_string()).collect::<Vec<_>>()),
        }
    }

    #[test]
    fn split_cuts_at_the_first_and_last_capture_or_set() {
        let pieces = [
            attr("pid"),
            text("_"),
            capture(),
            text(":"),
            one_of(&["a"]),
            text("-"),
            attr("aid"),
        ];
        let cut = split(&pieces).expect("has a capture");
        assert_eq!(cut.head, &pieces[..2]);
        assert_eq!(cut.middle, &pieces[2..5]);
        assert_eq!(cut.tail, &pieces[5..]);
        assert_eq!(split(&[attr("pid"), text("_"), attr("aid")]), None);
    }

    #[test]
    fn middle_regex_matches_the_whole_middle() {
        let regex = middle_regex(&[capture(), text("_"), one_of(&["x", "yz"])], 1 << 20).unwrap();
        for (middle, want) in [
            ("_x", true),
            ("a_b_yz", true),
            ("a_y", false),
            ("a_xz", false),
            ("ü_x", true),
        ] {
            assert_eq!(regex.is_match(middle), want, "{middle}");
        }
    }

    #[test]
    fn middle_regex_refuses_attributes_and_sizes_past_the_limit() {
        assert_eq!(
            middle_regex(
                &[capture(), text("_"), attr("pid"), text("_"), capture()],
                1 << 20
            )
            .unwrap_err(),
            MiddleError::Attribute("pid".into())
        );
        let values: Vec<String> = (0..2000).map(|i| format!("value{i:06}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        assert_eq!(
            middle_regex(&[capture(), text("_"), one_of(&refs)], 4096).unwrap_err(),
            MiddleError::TooLarge { limit: 4096 }
        );
    }
}
