//! What a template means: whether a topic name (or a client id) matches it, and what it
//! captures.
//!
//! This is the definition the rest of the project is held to. It works on one checked
//! template at a time, with no precomputation: the checker's lints, explanations and
//! client-id binding use it; the compiled automaton is tested against it and never calls
//! it on the hot path.
//!
//! A template matches a topic when every level matches and the level counts agree (a
//! trailing `#` also matches the parent level and any deeper levels). The first level of a
//! `$` topic is never matched by `+`, `#` or a level that starts with a capture, not even
//! with an empty capture (MQTT §4.7.2).
//!
//! Matching one level (or one client id) never backtracks. Text and attributes alone are
//! compared once from the left. Otherwise a table of which pieces can match which suffix
//! of the text is filled from the end, then the captures are read from the start, each
//! capture taking the shortest run that lets the rest match and each set its first listed
//! value that does. That costs O(text length × template length) time (a set's piece: ×
//! its distinct value lengths) and as many bits of memory, whatever the input, and gives
//! the same captures a backtracking search would.

use super::{ClientPiece, LevelPattern, Piece, TopicPattern};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::collections::BTreeMap;

/// Where matching reads attribute values: a map of them, or a bound session's
/// (`Session::attrs`).
pub trait AttrValues {
    /// The value of attribute `name`, if it has one.
    fn value(&self, name: &str) -> Option<&str>;
}

impl AttrValues for BTreeMap<String, String> {
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Captured values: named captures, set captures and the attributes used, in order.
pub type Captures = Vec<(String, String)>;

/// Matches a topic name against one rule's template. Returns the captured values (named
/// captures, set captures and attributes used) when it matches.
pub fn match_topic(
    pattern: &TopicPattern,
    topic: &str,
    attrs: &(impl AttrValues + ?Sized),
) -> Option<Captures> {
    let levels: Vec<&str> = topic.split('/').collect();
    let n = pattern.levels.len();
    let length_ok = if pattern.hash {
        levels.len() >= n
    } else {
        levels.len() == n
    };
    if !length_ok {
        return None;
    }
    let dollar = topic.starts_with('$');
    if dollar && n == 0 {
        return None; // a leading `#` never matches a `$` topic
    }
    let mut captures = Vec::new();
    for (i, level_pattern) in pattern.levels.iter().enumerate() {
        let first_dollar = i == 0 && dollar;
        if !match_level(level_pattern, levels[i], first_dollar, attrs, &mut captures) {
            return None;
        }
    }
    Some(captures)
}

/// Matches one level. `first_dollar`: this is the first level of a `$` topic, which no
/// wildcard and no level starting with a capture may match.
pub fn match_level(
    pattern: &LevelPattern,
    level: &str,
    first_dollar: bool,
    attrs: &(impl AttrValues + ?Sized),
    captures: &mut Captures,
) -> bool {
    match pattern {
        LevelPattern::Any { .. } if first_dollar => false,
        LevelPattern::Any { capture } => {
            if let Some(name) = capture {
                captures.push((name.to_string(), level.to_string()));
            }
            true
        }
        LevelPattern::Literal(text) => text == level,
        LevelPattern::Pieces(pieces) => {
            if first_dollar && matches!(pieces.first(), Some(Piece::Capture(_))) {
                return false;
            }
            let parts: Parts<'_> = pieces
                .iter()
                .map(|piece| match piece {
                    Piece::Text(text) => Part::literal(Some(text), None),
                    Piece::Attr(name) => Part::literal(attr(attrs, name), Some(name)),
                    Piece::Capture(name) => Part::Capture(name),
                    Piece::OneOf { capture, values } => Part::OneOf {
                        values,
                        name: capture.as_deref(),
                    },
                })
                .collect();
            match matched(&parts, level, 0, true) {
                Some(found) => {
                    captures.extend(found);
                    true
                }
                None => false,
            }
        }
    }
}

/// Matches a client id against its identity's `client` template; returns the captures.
///
/// Text and attributes must match exactly; a capture takes the shortest non-empty run
/// that lets the rest match.
pub fn match_client(
    pieces: &[ClientPiece],
    attrs: &(impl AttrValues + ?Sized),
    client_id: &str,
) -> Option<Captures> {
    let parts: Parts<'_> = pieces
        .iter()
        .map(|piece| match piece {
            ClientPiece::Text(text) => Part::literal(Some(text), None),
            ClientPiece::Attr(name) => Part::literal(attr(attrs, name), Some(name)),
            ClientPiece::Capture(name) => Part::Capture(name),
        })
        .collect();
    matched(&parts, client_id, 1, false)
}

/// The captures when `parts` match the whole `text` (see [`Table::captures`] for `all`).
fn matched(parts: &[Part<'_>], text: &str, min_capture: usize, all: bool) -> Option<Captures> {
    if parts.iter().all(|p| matches!(p, Part::Literal { .. })) {
        return literals(parts, text, all);
    }
    Table::fill(parts, text, min_capture).map(|table| table.captures(all))
}

/// Text and attributes only: one comparison from the left decides.
fn literals(parts: &[Part<'_>], text: &str, all: bool) -> Option<Captures> {
    let mut rest = text;
    let mut out = Vec::new();
    for part in parts {
        let Part::Literal {
            text: Some(literal),
            name,
        } = *part
        else {
            return None;
        };
        rest = strip_prefix_in_place(rest, literal)?;
        if let (true, Some(name)) = (all, name) {
            out.push((name.to_string(), literal.to_string()));
        }
    }
    rest.is_empty().then_some(out)
}

/// `text.strip_prefix(prefix)`, comparing bytes in place: client-id parts are a few bytes
/// long, and for those a loop is cheaper than a call to `memcmp`.
#[inline]
fn strip_prefix_in_place<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let (t, p) = (text.as_bytes(), prefix.as_bytes());
    if t.len() < p.len() || !t.iter().zip(p).all(|(a, b)| a == b) {
        return None;
    }
    // `prefix` is a whole string, so the cut falls on a character boundary.
    text.get(p.len()..)
}

/// An attribute's value; an empty one matches nothing.
fn attr<'a>(attrs: &'a (impl AttrValues + ?Sized), name: &str) -> Option<&'a str> {
    attrs.value(name).filter(|v| !v.is_empty())
}

/// A piece of a template, attributes filled in, borrowed from the template and the values.
#[derive(Clone, Copy)]
enum Part<'a> {
    /// Text or an attribute's value (`None`: a missing attribute, which matches nothing);
    /// `name` for an attribute.
    Literal {
        text: Option<&'a str>,
        name: Option<&'a str>,
    },
    Capture(&'a str),
    OneOf {
        values: &'a [String],
        name: Option<&'a str>,
    },
}

impl<'a> Part<'a> {
    fn literal(text: Option<&'a str>, name: Option<&'a str>) -> Part<'a> {
        Part::Literal { text, name }
    }
}

type Parts<'a> = SmallVec<[Part<'a>; 8]>;

/// Which parts can match which suffix of a text: `can[i][p]` is true when `parts[i..]`
/// match `text[p..]` exactly (`p` a character boundary).
struct Table<'a> {
    parts: &'a [Part<'a>],
    text: &'a str,
    /// The shortest capture, in characters (0 in topic levels, 1 in client ids).
    min_capture: usize,
    width: usize,
    /// One bit per (part, position), row by row.
    can: Vec<u64>,
}

impl<'a> Table<'a> {
    /// The filled table, or `None` when the parts do not match the whole text.
    fn fill(parts: &'a [Part<'a>], text: &'a str, min_capture: usize) -> Option<Table<'a>> {
        let width = text.len() + 1;
        let mut table = Table {
            parts,
            text,
            min_capture,
            width,
            can: vec![0; ((parts.len() + 1) * width).div_ceil(64)],
        };
        table.set(parts.len() * width + text.len(), true);
        for i in (0..parts.len()).rev() {
            table.fill_row(i);
        }
        table.at(0, 0).then_some(table)
    }

    fn at(&self, i: usize, p: usize) -> bool {
        let bit = i * self.width + p;
        self.can[bit / 64] & (1 << (bit % 64)) != 0
    }

    fn set(&mut self, bit: usize, value: bool) {
        self.can[bit / 64] |= u64::from(value) << (bit % 64);
    }

    /// Row `i` from row `i + 1`. Each row costs O(text) (a set's row: O(text × distinct
    /// value lengths)), and allocates nothing but a long set's index.
    fn fill_row(&mut self, i: usize) {
        let text = self.text;
        let row = i * self.width;
        match self.parts[i] {
            Part::Literal {
                text: Some(literal),
                ..
            } if literal.len() <= text.len() => {
                // A UTF-8 literal can only match from a character boundary to one.
                for p in 0..=text.len() - literal.len() {
                    let end = p + literal.len();
                    if self.at(i + 1, end) && text.as_bytes()[p..end] == *literal.as_bytes() {
                        self.set(row + p, true);
                    }
                }
            }
            // A missing attribute, or text longer than the whole text: matches nowhere.
            Part::Literal { .. } => {}
            Part::Capture(_) => {
                // Scanning from the end: does some boundary at or after the next one end a
                // match of the rest?
                let mut after_next = false;
                for p in (0..=text.len()).rev().filter(|&p| text.is_char_boundary(p)) {
                    let from_here = self.at(i + 1, p) || after_next;
                    let value = if self.min_capture == 0 {
                        from_here
                    } else {
                        after_next
                    };
                    self.set(row + p, value);
                    after_next = from_here;
                }
            }
            Part::OneOf { values, .. } => {
                let options = Options::of(values);
                for p in (0..=text.len()).filter(|&p| text.is_char_boundary(p)) {
                    let matched = options
                        .lengths_at(text, p)
                        .into_iter()
                        .any(|len| self.at(i + 1, p + len));
                    self.set(row + p, matched);
                }
            }
        }
    }

    /// What each part matched on the way the module docs describe, as `(name, value)`
    /// for each free capture, and for attributes and named sets when `all`.
    fn captures(&self, all: bool) -> Captures {
        let mut out = Vec::new();
        let mut p = 0;
        for (i, part) in self.parts.iter().enumerate() {
            let (end, name) = match *part {
                Part::Literal { text, name } => {
                    let end = text.map(|t| p + t.len());
                    (end.filter(|&q| self.at(i + 1, q)), name.filter(|_| all))
                }
                Part::Capture(name) => {
                    let end = self
                        .text
                        .char_indices()
                        .map(|(q, _)| q)
                        .chain(std::iter::once(self.text.len()))
                        .filter(|&q| q >= p)
                        .skip(self.min_capture)
                        .find(|&q| self.at(i + 1, q));
                    (end, Some(name))
                }
                Part::OneOf { values, name } => {
                    let end = Options::of(values)
                        .lengths_at(self.text, p)
                        .into_iter()
                        .map(|len| p + len)
                        .find(|&q| self.at(i + 1, q));
                    (end, name.filter(|_| all))
                }
            };
            let Some(end) = end else {
                return out; // unreachable once the table matched
            };
            if let Some(name) = name {
                out.push((name.to_string(), self.text[p..end].to_string()));
            }
            p = end;
        }
        out
    }
}

/// The values of a set, ready to be found at a position.
enum Options<'a> {
    /// A short list, tried in order.
    Few(&'a [String]),
    /// A long list, looked up by length: every length that occurs, and each value's
    /// first position in the list.
    Many(Vec<usize>, FxHashMap<&'a str, usize>),
}

/// Sets longer than this are looked up by length instead of scanned.
const SCAN_MAX: usize = 16;

impl<'a> Options<'a> {
    fn of(values: &'a [String]) -> Options<'a> {
        if values.len() <= SCAN_MAX {
            return Options::Few(values);
        }
        let mut positions = FxHashMap::default();
        for (at, v) in values.iter().enumerate() {
            positions.entry(v.as_str()).or_insert(at);
        }
        let mut lengths: Vec<usize> = positions.keys().map(|v| v.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        Options::Many(lengths, positions)
    }

    /// The lengths of the values that `text[p..]` starts with, in the list's order.
    fn lengths_at(&self, text: &str, p: usize) -> SmallVec<[usize; 4]> {
        let rest = &text[p..];
        match self {
            Options::Few(values) => values
                .iter()
                .filter(|v| rest.starts_with(v.as_str()))
                .map(String::len)
                .collect(),
            Options::Many(lengths, positions) => {
                let mut found: SmallVec<[(usize, usize); 4]> = lengths
                    .iter()
                    .filter_map(|&len| {
                        let head = rest.get(..len)?;
                        positions.get(head).map(|&at| (at, len))
                    })
                    .collect();
                found.sort_unstable();
                found.into_iter().map(|(_, len)| len).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn level(pieces: Vec<Piece>, text: &str, first_dollar: bool) -> Option<Captures> {
        let mut out = Vec::new();
        match_level(
            &LevelPattern::Pieces(pieces.into()),
            text,
            first_dollar,
            &attrs(&[("pid", "P1")]),
            &mut out,
        )
        .then_some(out)
    }

    fn text(t: &str) -> Piece {
        Piece::Text(t.into())
    }

    fn capture(name: &str) -> Piece {
        Piece::Capture(name.into())
    }

    #[test]
    fn captures_take_the_shortest_run_that_lets_the_rest_match() {
        let got = level(vec![capture("a"), text("_"), capture("b")], "x_y_z", false);
        assert_eq!(
            got,
            Some(vec![("a".into(), "x".into()), ("b".into(), "y_z".into())])
        );
        let got = level(vec![capture("a"), text("_"), capture("b")], "_", false);
        assert_eq!(
            got,
            Some(vec![("a".into(), "".into()), ("b".into(), "".into())])
        );
        assert_eq!(level(vec![capture("a"), text("_")], "xy", false), None);
    }

    #[test]
    fn attributes_and_sets_match_as_literal_text() {
        let set = Piece::OneOf {
            capture: Some("s".into()),
            values: Arc::from(vec!["ab".to_string(), "a".to_string()]),
        };
        let got = level(
            vec![Piece::Attr("pid".into()), text("-"), set],
            "P1-a",
            false,
        );
        assert_eq!(
            got,
            Some(vec![("pid".into(), "P1".into()), ("s".into(), "a".into())])
        );
        assert_eq!(level(vec![Piece::Attr("other".into())], "", false), None);
        assert_eq!(level(vec![text("abc"), capture("c")], "ab", false), None);
        assert_eq!(
            level(vec![capture("c"), text("ü")], "aü", false).map(|c| c.len()),
            Some(1)
        );
    }

    #[test]
    fn a_leading_capture_never_matches_a_dollar_level() {
        assert_eq!(level(vec![capture("c"), text("$SYS")], "$SYS", true), None);
        assert_eq!(level(vec![capture("c"), text("x")], "$ax", true), None);
        assert!(level(vec![capture("c"), text("$SYS")], "a$SYS", false).is_some());
    }

    #[test]
    fn long_sets_are_looked_up_by_length() {
        let values: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
        let set = Piece::OneOf {
            capture: Some("s".into()),
            values: Arc::from(values),
        };
        let got = level(vec![capture("a"), text("_"), set], "x_v_v999", false);
        assert_eq!(
            got,
            Some(vec![
                ("a".into(), "x_v".into()),
                ("s".into(), "v999".into())
            ])
        );
    }

    #[test]
    fn client_captures_are_never_empty() {
        let pieces = vec![
            ClientPiece::Text("svc:".into()),
            ClientPiece::Attr("sid".into()),
            ClientPiece::Text(":".into()),
            ClientPiece::Capture("instance".into()),
        ];
        let a = attrs(&[("sid", "lights")]);
        assert_eq!(
            match_client(&pieces, &a, "svc:lights:7"),
            Some(vec![("instance".into(), "7".into())])
        );
        assert_eq!(match_client(&pieces, &a, "svc:lights:"), None);
        assert_eq!(match_client(&pieces, &a, "svc:locks:7"), None);
    }

    /// Backtracking took minutes on this; the table takes one pass per piece.
    #[test]
    fn hostile_client_ids_cost_one_pass_per_piece() {
        let mut pieces = vec![ClientPiece::Text("m".into())];
        for i in 0..5 {
            if i > 0 {
                pieces.push(ClientPiece::Text(":".into()));
            }
            pieces.push(ClientPiece::Capture(format!("c{i}")));
        }
        pieces.push(ClientPiece::Text(".".into()));
        let id = format!("m{}x", ":".repeat(200));
        assert_eq!(match_client(&pieces, &BTreeMap::new(), &id), None);
        let id = format!("m{}.", "a:".repeat(5000));
        assert!(match_client(&pieces, &BTreeMap::new(), &id).is_some());
    }
}
