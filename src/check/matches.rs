//! What a topic template means: whether a topic name matches it, and what it captures.
//!
//! This is the definition the rest of the project is held to. It works on one checked
//! template at a time, with plain backtracking and no precomputation: the reference
//! interpreter, the checker's lints and explanations use it; the compiled automaton is
//! tested against it and never calls it on the hot path.
//!
//! A template matches a topic when every level matches and the level counts agree (a
//! trailing `#` also matches the parent level and any deeper levels). The first level of a
//! `$` topic is never matched by `+`, `#` or a leading capture (MQTT §4.7.2).

use super::{LevelPattern, Piece, TopicPattern};
use std::collections::BTreeMap;

/// Matches a topic name against one rule's template. Returns the captured values (named
/// captures, set captures and attributes used) when it matches.
pub fn match_topic(
    pattern: &TopicPattern,
    topic: &str,
    attrs: &BTreeMap<String, String>,
) -> Option<Vec<(String, String)>> {
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
/// wildcard or leading capture may match.
pub fn match_level(
    pattern: &LevelPattern,
    level: &str,
    first_dollar: bool,
    attrs: &BTreeMap<String, String>,
    captures: &mut Vec<(String, String)>,
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
            match_pieces(pieces, level, first_dollar, true, attrs, captures)
        }
    }
}

/// Backtracking match of pieces against the rest of a level.
fn match_pieces(
    pieces: &[Piece],
    rest: &str,
    first_dollar: bool,
    at_start: bool,
    attrs: &BTreeMap<String, String>,
    captures: &mut Vec<(String, String)>,
) -> bool {
    let Some((piece, tail)) = pieces.split_first() else {
        return rest.is_empty();
    };
    let mark = captures.len();
    let mut attempt = |taken: usize, name: Option<(&str, &str)>| {
        if let Some((n, v)) = name {
            captures.push((n.to_string(), v.to_string()));
        }
        if match_pieces(tail, &rest[taken..], first_dollar, false, attrs, captures) {
            return true;
        }
        captures.truncate(mark);
        false
    };
    match piece {
        Piece::Text(text) => rest.starts_with(text.as_str()) && attempt(text.len(), None),
        Piece::Attr(name) => match attrs.get(name) {
            Some(value) if !value.is_empty() && rest.starts_with(value.as_str()) => {
                attempt(value.len(), Some((name, value)))
            }
            _ => false,
        },
        Piece::OneOf { capture, values } => values.iter().any(|v| {
            rest.starts_with(v.as_str())
                && attempt(v.len(), capture.as_deref().map(|c| (c, v.as_str())))
        }),
        Piece::Capture(name) => {
            let ends = rest
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(rest.len()));
            for end in ends {
                let value = &rest[..end];
                if first_dollar && at_start && value.starts_with('$') {
                    continue;
                }
                if attempt(end, Some((name, value))) {
                    return true;
                }
            }
            false
        }
    }
}
