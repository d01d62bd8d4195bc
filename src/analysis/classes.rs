//! Every class of level values, found exactly: a breadth-first walk of the product of the
//! level patterns' automata.
//!
//! With the session's attribute values filled in, a level pattern is a finite automaton
//! over characters: its state is the set of places (piece, how much of the piece's text is
//! read) a prefix of the level can have reached. For several patterns at once the state is
//! the tuple of their states, plus, at a topic's first level, whether the level starts with
//! `$` (which `+` and leading captures never match). Two level values that reach the same
//! product state are matched by exactly the same patterns, and so are their extensions.
//! The walk reads characters from the empty level on, one representative character per
//! class of characters (every character some pattern's text, value or set member uses,
//! `$` at the first level, and one character none of them uses, which stands for all the
//! others: no pattern tells those apart), and visits every reachable product state once.
//! Each visited state's value is the shortest that reaches it; the classes are the distinct
//! match vectors over all visited states, so no class a level value can realise is missed,
//! however captures overlap (`a{+x}c` and `ab{+y}` share `abc`).
//!
//! Cost: states × characters × patterns steps; past [`MAX_STATES`] product states at one
//! level the walk stops with [`AnalysisError::TooComplex`] rather than answer from a part.
//! It decides nothing: callers compute each value's class with the reference matcher.

use super::AnalysisError;
use crate::decide::reference::template::{Item, Level};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Past this many product states at one level the walk gives up.
pub const MAX_STATES: usize = 50_000;

/// One pattern with the values its attribute pieces render.
pub type Bound<'a, 'c> = (&'a Level<'c>, &'a BTreeMap<String, String>);

/// Places in one pattern: (piece index, bytes of that piece's text already read).
type Places = BTreeSet<(usize, String)>;

/// Whether a level value starts with `$` (at a topic's first level only).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Start {
    Empty,
    Dollar,
    Other,
}

/// One shortest level value per reachable product state of `patterns` (at the topic's
/// first level when `first`), in the order the walk meets them.
pub fn level_values(patterns: &[Bound<'_, '_>], first: bool) -> Result<Vec<String>, AnalysisError> {
    let alphabet = alphabet(patterns, first);
    let compiled: Vec<(Vec<PieceRef<'_, '_>>, &BTreeMap<String, String>)> =
        patterns.iter().map(|(l, a)| (items(l), *a)).collect();
    let start: Vec<Places> = compiled.iter().map(|p| closure(p, initial())).collect();
    let mut seen: HashMap<(Vec<Places>, Start), ()> = HashMap::new();
    let mut queue: VecDeque<(Vec<Places>, Start, String)> = VecDeque::new();
    seen.insert((start.clone(), Start::Empty), ());
    queue.push_back((start, Start::Empty, String::new()));
    let mut out = Vec::new();
    while let Some((state, begun, value)) = queue.pop_front() {
        for &c in &alphabet {
            let next: Vec<Places> = compiled
                .iter()
                .zip(&state)
                .map(|(p, places)| closure(p, step(p, places, c)))
                .collect();
            let begun = match begun {
                Start::Empty if first && c == '$' => Start::Dollar,
                Start::Empty => Start::Other,
                other => other,
            };
            if seen.contains_key(&(next.clone(), begun)) {
                continue;
            }
            if seen.len() >= MAX_STATES {
                return Err(AnalysisError::TooComplex(format!(
                    "more than {MAX_STATES} classes of level values at one level"
                )));
            }
            seen.insert((next.clone(), begun), ());
            let mut longer = value.clone();
            longer.push(c);
            queue.push_back((next, begun, longer));
        }
        out.push(value);
    }
    Ok(out)
}

/// The characters that can tell patterns apart, and one that none of them uses.
fn alphabet(patterns: &[Bound<'_, '_>], first: bool) -> Vec<char> {
    let mut used: BTreeSet<char> = BTreeSet::new();
    for (level, attrs) in patterns {
        match level {
            Level::Any => {}
            Level::Literal(text) => used.extend(text.chars()),
            Level::Pieces(items) => {
                for item in items {
                    match item {
                        Item::Text(text) => used.extend(text.chars()),
                        Item::Attr(name) => {
                            used.extend(attrs.get(*name).into_iter().flat_map(|v| v.chars()))
                        }
                        Item::Capture => {}
                        Item::Choice(choice) => {
                            used.extend(choice.listed.iter().flat_map(|v| v.chars()))
                        }
                    }
                }
            }
        }
    }
    if first {
        used.insert('$');
    }
    used.retain(|c| !matches!(c, '/' | '+' | '#' | '\0'));
    let other = "xyzqwkj"
        .chars()
        .chain('\u{E000}'..='\u{E0FF}')
        .find(|c| !used.contains(c))
        .unwrap_or('\u{E100}');
    let mut out = vec![other];
    out.extend(used);
    out
}

fn initial() -> Places {
    BTreeSet::from([(0, String::new())])
}

/// The pattern's pieces; `+` is one capture, a literal one text.
fn items<'l, 'c>(level: &'l Level<'c>) -> Vec<PieceRef<'l, 'c>> {
    match level {
        Level::Any => vec![PieceRef::Capture],
        Level::Literal(text) => vec![PieceRef::Text(text)],
        Level::Pieces(items) => items
            .iter()
            .map(|item| match item {
                Item::Text(text) => PieceRef::Text(text),
                Item::Attr(name) => PieceRef::Attr(name),
                Item::Capture => PieceRef::Capture,
                Item::Choice(choice) => PieceRef::Choice(&choice.listed),
            })
            .collect(),
    }
}

/// A pattern's pieces and the values its attributes render.
type Compiled<'l, 'c, 'a> = (Vec<PieceRef<'l, 'c>>, &'a BTreeMap<String, String>);

enum PieceRef<'l, 'c> {
    Text(&'c str),
    Attr(&'c str),
    Capture,
    Choice(&'l [&'c str]),
}

/// Adds every place reachable without reading: past a capture, past a complete text.
fn closure(pattern: &Compiled<'_, '_, '_>, mut places: Places) -> Places {
    let pieces = &pattern.0;
    let mut todo: Vec<(usize, String)> = places.iter().cloned().collect();
    while let Some((i, read)) = todo.pop() {
        let Some(piece) = pieces.get(i) else { continue };
        let complete = match piece {
            PieceRef::Capture => true,
            PieceRef::Text(text) => read == *text,
            PieceRef::Attr(name) => pattern.1.get(*name).is_some_and(|v| read == *v),
            PieceRef::Choice(values) => values.contains(&read.as_str()),
        };
        if complete && places.insert((i + 1, String::new())) {
            todo.push((i + 1, String::new()));
        }
    }
    places
}

/// The places after reading `c`.
fn step(pattern: &Compiled<'_, '_, '_>, places: &Places, c: char) -> Places {
    let pieces = &pattern.0;
    let mut out = Places::new();
    for (i, read) in places {
        let Some(piece) = pieces.get(*i) else {
            continue;
        };
        let mut longer = read.clone();
        longer.push(c);
        let fits = match piece {
            PieceRef::Capture => {
                out.insert((*i, String::new()));
                continue;
            }
            PieceRef::Text(text) => text.starts_with(&longer),
            PieceRef::Attr(name) => pattern.1.get(*name).is_some_and(|v| v.starts_with(&longer)),
            PieceRef::Choice(values) => values.iter().any(|v| v.starts_with(&longer)),
        };
        if fits {
            out.insert((*i, longer));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{LevelPattern, Piece, TopicPattern};
    use crate::decide::reference::template::Template;

    fn level(pieces: Vec<Piece>) -> TopicPattern {
        TopicPattern {
            levels: Box::new([LevelPattern::Pieces(pieces.into())]),
            hash: false,
        }
    }

    fn text(t: &str) -> Piece {
        Piece::Text(t.into())
    }

    fn capture() -> Piece {
        Piece::Capture("c".into())
    }

    #[test]
    fn overlapping_captures_share_a_value() {
        let a = level(vec![text("a"), capture(), text("c")]);
        let b = level(vec![text("ab"), capture()]);
        let (ta, tb) = (Template::new(&a), Template::new(&b));
        let attrs = BTreeMap::new();
        let found = level_values(&[(&ta.levels[0], &attrs), (&tb.levels[0], &attrs)], false)
            .expect("small");
        let both = found
            .iter()
            .any(|v| ta.matches(v, &attrs) && tb.matches(v, &attrs));
        assert!(both, "{found:?}");
    }

    #[test]
    fn a_dollar_value_is_its_own_class_at_the_first_level() {
        let any = TopicPattern {
            levels: Box::new([LevelPattern::Any { capture: None }]),
            hash: false,
        };
        let t = Template::new(&any);
        let attrs = BTreeMap::new();
        let found = level_values(&[(&t.levels[0], &attrs)], true).expect("small");
        assert!(found.iter().any(|v| v.starts_with('$')), "{found:?}");
        assert!(found.iter().any(|v| !v.is_empty() && !v.starts_with('$')));
    }
}
