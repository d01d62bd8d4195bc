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
//! Matching one level (or one client id) never backtracks: a table of which pieces can
//! match which suffix of the text is filled from the end, then the captures are read from
//! the start, each capture taking the shortest run that lets the rest match and each set
//! its first listed value that does. That costs O(text length × template length) time
//! and memory whatever the input, and gives the same captures a backtracking search would.

use super::{ClientPiece, LevelPattern, Piece, TopicPattern};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::collections::BTreeMap;

/// Captured values: named captures, set captures and the attributes used, in order.
pub type Captures = Vec<(String, String)>;

/// Matches a topic name against one rule's template. Returns the captured values (named
/// captures, set captures and attributes used) when it matches.
pub fn match_topic(
    pattern: &TopicPattern,
    topic: &str,
    attrs: &BTreeMap<String, String>,
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
    attrs: &BTreeMap<String, String>,
    captures: &mut Captures,
) -> bool {
    match pattern {
        LevelPattern::Any { .. } if first_dollar => false,
        LevelPattern::Any { capture } => {
            if let Some(name) = capture {
                captures.push((name.clone(), level.to_string()));
            }
            true
        }
        LevelPattern::Literal(text) => text == level,
        LevelPattern::Pieces(pieces) => {
            if first_dollar && matches!(pieces.first(), Some(Piece::Capture(_))) {
                return false;
            }
            match Table::fill(pieces, level, attrs, 0) {
                Some(table) => {
                    captures.extend(table.captures(true));
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
    attrs: &BTreeMap<String, String>,
    client_id: &str,
) -> Option<Captures> {
    let pieces: Vec<Piece> = pieces
        .iter()
        .map(|p| match p {
            ClientPiece::Text(t) => Piece::Text(t.clone()),
            ClientPiece::Attr(a) => Piece::Attr(a.clone()),
            ClientPiece::Capture(c) => Piece::Capture(c.clone()),
        })
        .collect();
    Table::fill(&pieces, client_id, attrs, 1).map(|table| table.captures(false))
}

/// Which pieces can match which suffix of a text: `can[i][p]` is true when `pieces[i..]`
/// match `text[p..]` exactly (`p` a character boundary).
struct Table<'a> {
    pieces: &'a [Piece],
    text: &'a str,
    attrs: &'a BTreeMap<String, String>,
    /// The shortest capture, in characters (0 in topic levels, 1 in client ids).
    min_capture: usize,
    width: usize,
    can: Vec<bool>,
}

impl<'a> Table<'a> {
    /// The filled table, or `None` when the pieces do not match the whole text.
    fn fill(
        pieces: &'a [Piece],
        text: &'a str,
        attrs: &'a BTreeMap<String, String>,
        min_capture: usize,
    ) -> Option<Table<'a>> {
        let width = text.len() + 1;
        let mut table = Table {
            pieces,
            text,
            attrs,
            min_capture,
            width,
            can: vec![false; (pieces.len() + 1) * width],
        };
        table.can[pieces.len() * width + text.len()] = true;
        for i in (0..pieces.len()).rev() {
            table.fill_row(i);
        }
        table.can[0].then_some(table)
    }

    fn at(&self, i: usize, p: usize) -> bool {
        self.can[i * self.width + p]
    }

    /// Row `i` from row `i + 1`.
    fn fill_row(&mut self, i: usize) {
        let (text, pieces, attrs) = (self.text, self.pieces, self.attrs);
        let boundaries = (0..=text.len()).filter(|&p| text.is_char_boundary(p));
        match &pieces[i] {
            Piece::Capture(_) => {
                // `any_after` = some boundary at or after `q` ends a match of the rest.
                let mut any_after = false;
                let ends: Vec<usize> = boundaries.collect();
                let mut reach = vec![false; ends.len()];
                for (k, &q) in ends.iter().enumerate().rev() {
                    any_after |= self.at(i + 1, q);
                    reach[k] = any_after;
                }
                for (k, &p) in ends.iter().enumerate() {
                    let shortest = k + self.min_capture;
                    self.can[i * self.width + p] = reach.get(shortest).copied().unwrap_or(false);
                }
            }
            piece => {
                let options = Options::of(piece, attrs);
                for p in boundaries {
                    let matched = options
                        .lengths_at(text, p)
                        .into_iter()
                        .any(|len| self.at(i + 1, p + len));
                    self.can[i * self.width + p] = matched;
                }
            }
        }
    }

    /// What each piece matched on the way the module docs describe, as `(name, value)`
    /// for each free capture, and for attributes and named sets when `all`.
    fn captures(&self, all: bool) -> Captures {
        let mut out = Vec::new();
        let mut p = 0;
        for (i, piece) in self.pieces.iter().enumerate() {
            let end = match piece {
                Piece::Capture(_) => self
                    .text
                    .char_indices()
                    .map(|(q, _)| q)
                    .chain(std::iter::once(self.text.len()))
                    .filter(|&q| q >= p)
                    .skip(self.min_capture)
                    .find(|&q| self.at(i + 1, q)),
                piece => Options::of(piece, self.attrs)
                    .lengths_at(self.text, p)
                    .into_iter()
                    .map(|len| p + len)
                    .find(|&q| self.at(i + 1, q)),
            };
            let Some(end) = end else {
                return out; // unreachable once the table matched
            };
            let value = self.text[p..end].to_string();
            match piece {
                Piece::Capture(name) => out.push((name.clone(), value)),
                Piece::Attr(name) if all => out.push((name.clone(), value)),
                Piece::OneOf {
                    capture: Some(name),
                    ..
                } if all => out.push((name.clone(), value)),
                _ => {}
            }
            p = end;
        }
        out
    }
}

/// The texts a text, attribute or set piece can match.
enum Options<'a> {
    One(Option<&'a str>),
    /// A short list, tried in order.
    Few(&'a [String]),
    /// A long list, looked up by length: every length that occurs, and each value's
    /// first position in the list.
    Many(Vec<usize>, FxHashMap<&'a str, usize>),
}

/// Sets longer than this are looked up by length instead of scanned.
const SCAN_MAX: usize = 16;

impl<'a> Options<'a> {
    fn of(piece: &'a Piece, attrs: &'a BTreeMap<String, String>) -> Options<'a> {
        match piece {
            Piece::Text(text) => Options::One(Some(text)),
            Piece::Attr(name) => Options::One(
                attrs
                    .get(name)
                    .map(String::as_str)
                    .filter(|v| !v.is_empty()),
            ),
            Piece::OneOf { values, .. } if values.len() <= SCAN_MAX => Options::Few(values),
            Piece::OneOf { values, .. } => {
                let mut positions = FxHashMap::default();
                for (at, v) in values.iter().enumerate() {
                    positions.entry(v.as_str()).or_insert(at);
                }
                let mut lengths: Vec<usize> = positions.keys().map(|v| v.len()).collect();
                lengths.sort_unstable();
                lengths.dedup();
                Options::Many(lengths, positions)
            }
            Piece::Capture(_) => Options::One(None),
        }
    }

    /// The lengths of the options that `text[p..]` starts with, in the options' order.
    fn lengths_at(&self, text: &str, p: usize) -> SmallVec<[usize; 4]> {
        let rest = &text[p..];
        match self {
            Options::One(value) => value
                .iter()
                .filter(|v| rest.starts_with(**v))
                .map(|v| v.len())
                .collect(),
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
            &LevelPattern::Pieces(pieces),
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
