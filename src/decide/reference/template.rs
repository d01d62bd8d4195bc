//! What a topic template matches, written from the language reference (section 5 and
//! section 6.6) for the reference interpreter.
//!
//! A template matches a topic name when the level counts agree (a trailing `#` also
//! matches the parent level and any deeper ones) and every level matches its pattern. A
//! pattern level is a sequence of pieces — text, an attribute's value, a free capture (any
//! run of characters, possibly empty), one value of a set or of `{a|b}` — matched against
//! the whole level by walking the pieces left to right and keeping the set of byte
//! positions the pieces so far can end at. That is a finite-automaton simulation with no
//! backtracking: O(pieces × level length × longest text or value), whatever the topic.
//!
//! `$` topics (section 6.6): when the first level starts with `$`, it is never matched by
//! `+`, `{+name}`, a level whose template starts with a capture, or a leading `#`.
//!
//! A set's values are kept in a hash set once per policy, so that asking whether a level
//! ends with one of 10,000 values costs one lookup per distinct value length. This module
//! must never share code with the compiled engine (`compile`, `automaton`, `walk`,
//! `check::matches`): it is what they are tested against.

use crate::check::{LevelPattern, Piece, TopicPattern};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// One rule's template, ready for matching.
#[derive(Debug)]
pub struct Template<'c> {
    pub(crate) levels: Vec<Level<'c>>,
    /// Ends with `#`: also matches the parent level and any deeper levels.
    pub hash: bool,
}

/// What one level of a template must be.
#[derive(Debug)]
pub enum Level<'c> {
    /// `+` or `{+name}` as the whole level.
    Any,
    /// A level of literal text.
    Literal(&'c str),
    /// A level of text, attributes and captures.
    Pieces(Vec<Item<'c>>),
}

/// One piece of a pattern level.
#[derive(Debug)]
pub enum Item<'c> {
    /// Literal text.
    Text(&'c str),
    /// The session's value of this attribute (or `client`), as literal text.
    Attr(&'c str),
    /// `{+name}` inside a level: any run of characters, possibly empty.
    Capture,
    /// One value of a set or of `{a|b}`.
    Choice(Choice<'c>),
}

/// The values of a set or of `{a|b}`: in file order (for witnesses) and hashed.
#[derive(Debug)]
pub struct Choice<'c> {
    pub(crate) listed: Vec<&'c str>,
    members: HashSet<&'c str>,
    /// Every distinct value length in bytes.
    lengths: BTreeSet<usize>,
}

impl<'c> Template<'c> {
    pub(crate) fn new(pattern: &'c TopicPattern) -> Template<'c> {
        Template {
            levels: pattern.levels.iter().map(Level::new).collect(),
            hash: pattern.hash,
        }
    }

    /// Does `topic` (a valid topic name) match, for a session with these attributes?
    pub fn matches(&self, topic: &str, attrs: &BTreeMap<String, String>) -> bool {
        let levels: Vec<&str> = topic.split('/').collect();
        let count = self.levels.len();
        let length_ok = if self.hash {
            levels.len() >= count
        } else {
            levels.len() == count
        };
        if !length_ok {
            return false;
        }
        if self.hash && count == 0 && topic.starts_with('$') {
            return false;
        }
        let mut pairs = self.levels.iter().zip(&levels).enumerate();
        pairs.all(|(index, (pattern, level))| pattern.matches(level, index == 0, attrs))
    }
}

impl<'c> Level<'c> {
    fn new(pattern: &'c LevelPattern) -> Level<'c> {
        match pattern {
            LevelPattern::Any { .. } => Level::Any,
            LevelPattern::Literal(text) => Level::Literal(text),
            LevelPattern::Pieces(pieces) => Level::Pieces(pieces.iter().map(Item::new).collect()),
        }
    }

    /// Does this pattern match `level`? `first`: this is the topic's first level.
    pub fn matches(&self, level: &str, first: bool, attrs: &BTreeMap<String, String>) -> bool {
        let dollar = first && level.starts_with('$');
        match self {
            Level::Any => !dollar,
            Level::Literal(text) => *text == level,
            Level::Pieces(items) => {
                let leading_capture = matches!(items.first(), Some(Item::Capture));
                !(dollar && leading_capture) && items_match(items, level, attrs)
            }
        }
    }
}

impl<'c> Item<'c> {
    fn new(piece: &'c Piece) -> Item<'c> {
        match piece {
            Piece::Text(text) => Item::Text(text),
            Piece::Attr(name) => Item::Attr(name),
            Piece::Capture(_) => Item::Capture,
            Piece::OneOf { values, .. } => {
                let listed: Vec<&str> = values.iter().map(String::as_str).collect();
                Item::Choice(Choice {
                    members: listed.iter().copied().collect(),
                    lengths: listed.iter().map(|v| v.len()).collect(),
                    listed,
                })
            }
        }
    }
}

/// Walks the pieces over `level`, keeping every position the pieces so far can end at.
fn items_match(items: &[Item<'_>], level: &str, attrs: &BTreeMap<String, String>) -> bool {
    // A level that does not start and end with the fixed text at either edge cannot
    // match: a quick answer for most levels, the same answer the walk would give.
    let fixed = |item: Option<&Item<'_>>| -> Option<String> {
        match item {
            Some(Item::Text(text)) => Some(text.to_string()),
            Some(Item::Attr(name)) => attrs.get(*name).cloned(),
            _ => None,
        }
    };
    let starts_ok = fixed(items.first()).is_none_or(|t| level.starts_with(&t));
    let ends_ok = fixed(items.last()).is_none_or(|t| level.ends_with(&t));
    if !starts_ok || !ends_ok {
        return false;
    }
    let mut ends = vec![0];
    for item in items {
        ends = step(item, level, &ends, attrs);
        if ends.is_empty() {
            return false;
        }
    }
    ends.contains(&level.len())
}

/// The positions `item` can end at, starting from any position in `starts` (ascending,
/// each a character boundary of `level`). The result is ascending and without repeats.
fn step(
    item: &Item<'_>,
    level: &str,
    starts: &[usize],
    attrs: &BTreeMap<String, String>,
) -> Vec<usize> {
    let fixed = |text: &str| -> Vec<usize> {
        let fits = starts.iter().filter(|&&at| level[at..].starts_with(text));
        fits.map(|&at| at + text.len()).collect()
    };
    match item {
        // Any run, possibly empty: every character boundary from the first start on.
        Item::Capture => (starts[0]..=level.len())
            .filter(|&at| level.is_char_boundary(at))
            .collect(),
        Item::Text(text) => fixed(text),
        // An attribute the session lacks matches nothing.
        Item::Attr(name) => attrs.get(*name).map_or_else(Vec::new, |v| fixed(v)),
        Item::Choice(choice) => {
            let mut ends: Vec<usize> = Vec::new();
            for &at in starts {
                for &length in &choice.lengths {
                    let candidate = level.get(at..at + length);
                    if candidate.is_some_and(|c| choice.members.contains(c)) {
                        ends.push(at + length);
                    }
                }
            }
            ends.sort_unstable();
            ends.dedup();
            ends
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn text(t: &str) -> Piece {
        Piece::Text(t.into())
    }

    fn capture() -> Piece {
        Piece::Capture("c".into())
    }

    fn pieces(list: Vec<Piece>) -> TopicPattern {
        TopicPattern {
            levels: Box::new([LevelPattern::Pieces(list.into())]),
            hash: false,
        }
    }

    fn attrs() -> BTreeMap<String, String> {
        BTreeMap::from([("pid".to_string(), "P1".to_string())])
    }

    #[test]
    fn pieces_match_whole_levels() {
        let pattern = pieces(vec![capture(), text("_"), Piece::Attr("pid".into())]);
        let template = Template::new(&pattern);
        for (topic, want) in [
            ("_P1", true),
            ("x_y_P1", true),
            ("P1", false),
            ("_P1x", false),
        ] {
            assert_eq!(template.matches(topic, &attrs()), want, "{topic}");
        }
        let values: Arc<[String]> = ["a", "ab", "$s"].map(String::from).into();
        let set = Piece::OneOf {
            capture: None,
            values,
        };
        let pattern = pieces(vec![set, text("b")]);
        let template = Template::new(&pattern);
        for (topic, want) in [("ab", true), ("abb", true), ("$sb", true), ("b", false)] {
            assert_eq!(template.matches(topic, &attrs()), want, "{topic}");
        }
    }

    #[test]
    fn dollar_topics_are_reached_only_by_naming_them() {
        let leading = pieces(vec![capture(), text("$SYS")]);
        assert!(!Template::new(&leading).matches("$SYS", &attrs()));
        assert!(Template::new(&leading).matches("x$SYS", &attrs()));
        let any = TopicPattern {
            levels: Box::new([LevelPattern::Any { capture: None }]),
            hash: true,
        };
        assert!(!Template::new(&any).matches("$SYS/x", &attrs()));
        assert!(Template::new(&any).matches("x/$SYS", &attrs()));
        let hash = TopicPattern {
            levels: Box::new([]),
            hash: true,
        };
        assert!(!Template::new(&hash).matches("$SYS", &attrs()));
        let inner = pieces(vec![text("$"), capture()]);
        assert!(Template::new(&inner).matches("$SYS", &attrs()));
    }

    #[test]
    fn many_captures_on_a_long_level_cost_linear_time() {
        // `m{+c0}:{+c1}:{+c2}:{+c3}:{+c4}.` against `m` + 60,000 `:` + `x`: exponential for
        // a backtracking matcher, a few passes over the level here.
        let mut list = vec![text("m")];
        for i in 0..5 {
            if i > 0 {
                list.push(text(":"));
            }
            list.push(Piece::Capture(format!("c{i}").into()));
        }
        list.push(text("."));
        let pattern = pieces(list);
        let level = format!("m{}x", ":".repeat(60_000));
        assert!(!Template::new(&pattern).matches(&level, &attrs()));
        let level = format!("m{}.", ":".repeat(60_000));
        assert!(Template::new(&pattern).matches(&level, &attrs()));
    }
}
