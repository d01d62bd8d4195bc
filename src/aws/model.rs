//! topicguard's meaning of a shape, written as regexes over whole topic or filter strings.
//!
//! These are the sets the renderer proves its statements against (with [`super::lang`]):
//! - [`topics`]: the topic names a shape matches (`docs/policy-language.md` §5, §6.6);
//! - [`contained_filters`]: the filters every topic of which the shape matches — under
//!   containment a filter inside one allow rule is granted unless it touches a deny;
//! - [`overlapping_filters`]: the filters some topic of which the shape matches — any of
//!   them is denied by a deny rule under containment, and only they can be granted at all;
//! - validity: topic names and filters MQTT accepts and topicguard decides at all.
//!
//! They are a second, independent statement of the semantics that `check::matches` and the
//! engine implement; `tests/aws/model_cases.rs` holds them to [`crate::decide::Engine::decide`]. Where the
//! two readings of a leading capture differ ([`Reading`]) callers pick the one that errs
//! toward denying. This module never decides a request.

use super::shape::{Level, Part, Reading, Shape};

/// Topic names topicguard decides at all: non-empty, no wildcard, no NUL. (Names starting
/// with `$share/` or `$queue/` are denied too: see [`SHARED`].)
pub const VALID_TOPIC: &str = r"[^+#\x00]+";

/// Strings starting with a shared-subscription prefix: never a topic name topicguard
/// allows, and never a filter this renderer grants (AWS would read them as shared
/// subscriptions of the rest).
pub const SHARED: &str = r"\$(?:share|queue)/(?s:.)*";

/// One level of a filter: `+` or literal text.
const FILTER_LEVEL: &str = r"(?:\+|[^/+#\x00]*)";

/// Filters MQTT accepts: one non-empty level (`+`, `#` or text), or two levels or more
/// of which only the last may be `#`.
pub fn valid_filter() -> String {
    format!(r"(?:\+|#|[^/+#\x00]+|(?:{FILTER_LEVEL}/)+(?:{FILTER_LEVEL}|#))")
}

/// Characters a level may hold: in a topic name, or in a filter's literal level.
#[derive(Clone, Copy)]
struct Alphabet {
    any: &'static str,
    not_dollar: &'static str,
}

const TOPIC: Alphabet = Alphabet {
    any: "[^/]",
    not_dollar: "[^$/]",
};

const FILTER: Alphabet = Alphabet {
    any: r"[^/+#\x00]",
    not_dollar: r"[^$/+#\x00]",
};

/// The topic names `shape` matches.
pub fn topics(shape: &Shape, reading: Reading) -> String {
    if shape.levels.is_empty() {
        return "[^$](?s:.)*".to_string();
    }
    let levels: Vec<String> = shape
        .levels
        .iter()
        .enumerate()
        .map(|(i, level)| level_regex(level, i == 0, reading, TOPIC))
        .collect();
    let tail = if shape.hash { "(?:/(?s:.)*)?" } else { "" };
    format!("{}{tail}", levels.join("/"))
}

/// A filter continuing after a `#` template's levels: nothing, or more levels of any kind,
/// the last possibly `#`.
fn filter_tail() -> String {
    format!("(?:/(?:{FILTER_LEVEL}/)*(?:{FILTER_LEVEL}|#))?")
}

/// Filters whose every topic has a first level without `$`: `#`, or a first level that is
/// `+` or text not starting with `$`, then anything.
fn plain_filters() -> String {
    format!(
        r"(?:#|(?:\+|(?:{}{}*)?){})",
        FILTER.not_dollar,
        FILTER.any,
        filter_tail()
    )
}

/// The filters every topic of which `shape` matches (strict reading: a lower bound).
pub fn contained_filters(shape: &Shape) -> String {
    if shape.levels.is_empty() {
        return plain_filters();
    }
    let levels: Vec<String> = shape
        .levels
        .iter()
        .enumerate()
        .map(|(i, level)| match level {
            Level::Any if i == 0 => {
                format!(r"(?:\+|(?:{}{}*)?)", FILTER.not_dollar, FILTER.any)
            }
            Level::Any => FILTER_LEVEL.to_string(),
            other => level_regex(other, i == 0, Reading::Strict, FILTER),
        })
        .collect();
    let tail = if shape.hash {
        filter_tail()
    } else {
        String::new()
    };
    format!("{}{tail}", levels.join("/"))
}

/// The filters some topic of which `shape` matches.
pub fn overlapping_filters(shape: &Shape, reading: Reading) -> String {
    overlap(shape, reading, true)
}

/// An upper bound of the filters containment could grant with these allow shapes: a filter
/// without `#` that touches one of them; and, if one of them ends in `#`, such a filter
/// followed by `/#`, or `#` alone. (A filter a union of rules contains touches one of them;
/// if it ends in `#` it covers its parent — the same filter without `/#`, contained too —
/// and topics of every depth, which only a rule ending in `#` matches.)
pub fn possibly_contained_filters(allows: &[Shape], reading: Reading) -> String {
    let touching: Vec<String> = allows
        .iter()
        .map(|s| format!("(?:{})", overlap(s, reading, false)))
        .collect();
    if touching.is_empty() {
        return super::lang::NOTHING.to_string();
    }
    let touching = touching.join("|");
    if allows.iter().any(|s| s.hash) {
        format!("(?:{touching})(?:/#)?|#")
    } else {
        touching
    }
}

/// `hash_filters`: include the filters ending in `#` that touch the shape.
fn overlap(shape: &Shape, reading: Reading, hash_filters: bool) -> String {
    let n = shape.levels.len();
    if n == 0 {
        return plain_filters();
    }
    let hash_alternative = if hash_filters { "#|" } else { "" };
    let mut rest = if shape.hash && hash_filters {
        filter_tail()
    } else if shape.hash {
        format!("(?:/(?:{FILTER_LEVEL}/)*{FILTER_LEVEL})?")
    } else if hash_filters {
        "(?:/#)?".to_string()
    } else {
        String::new()
    };
    for i in (1..n).rev() {
        rest = format!(
            "/(?:{hash_alternative}{}{rest})",
            overlap_level(&shape.levels[i], false, reading)
        );
    }
    let first = &shape.levels[0];
    let head = overlap_level(first, true, reading);
    if first.can_start_plain() && hash_filters {
        format!("(?:#|{head}{rest})")
    } else {
        format!("{head}{rest}")
    }
}

/// The filter levels that overlap one level of a shape: text matching it, or `+` (which
/// at the start of a filter covers no `$` level).
fn overlap_level(level: &Level, first: bool, reading: Reading) -> String {
    match level {
        Level::Any if first => format!(r"(?:\+|(?:{}{}*)?)", FILTER.not_dollar, FILTER.any),
        Level::Any => FILTER_LEVEL.to_string(),
        other => {
            let text = level_regex(other, first, reading, FILTER);
            if !first || other.can_start_plain() {
                format!(r"(?:{text}|\+)")
            } else {
                text
            }
        }
    }
}

/// One level as a regex. A first level never starts with `$` unless the level names it.
fn level_regex(level: &Level, first: bool, reading: Reading, alphabet: Alphabet) -> String {
    let Alphabet { any, not_dollar } = alphabet;
    let free_not_dollar = format!("(?:{not_dollar}{any}*)?");
    match level {
        Level::Text(text) => regex_syntax::escape(text),
        Level::Any if first => free_not_dollar,
        Level::Any => format!("{any}*"),
        Level::Glob(parts) => {
            let body = |parts: &[Part]| -> String {
                parts
                    .iter()
                    .map(|p| match p {
                        Part::Text(t) => regex_syntax::escape(t),
                        Part::Hole => format!("{any}*"),
                    })
                    .collect()
            };
            match parts.split_first() {
                Some((Part::Hole, rest)) if first => {
                    let next_is_dollar =
                        matches!(rest.first(), Some(Part::Text(t)) if t.starts_with('$'));
                    if reading == Reading::Strict && next_is_dollar {
                        format!("{not_dollar}{any}*{}", body(rest))
                    } else {
                        format!("{free_not_dollar}{}", body(rest))
                    }
                }
                _ => body(parts),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Effect;
    use crate::aws::lang::Lang;
    use crate::check::RuleId;

    fn shape(levels: Vec<Level>, hash: bool) -> Shape {
        Shape {
            rule: RuleId(0),
            effect: Effect::Allow,
            levels,
            hash,
        }
    }

    fn text(t: &str) -> Level {
        Level::Text(t.to_string())
    }

    #[test]
    fn topic_sets() {
        let s = shape(vec![text("a"), Level::Any], true);
        let lang = Lang::new(&topics(&s, Reading::Strict)).unwrap();
        for yes in ["a/", "a/x", "a/x/y/z"] {
            assert!(lang.contains(yes), "{yes}");
        }
        for no in ["a", "b/x"] {
            assert!(!lang.contains(no), "{no}");
        }
        let lead = Lang::new(&topics(&shape(vec![Level::Any], false), Reading::Lenient)).unwrap();
        assert!(lead.contains("x") && lead.contains("") && !lead.contains("$x"));
        let hash = Lang::new(&topics(&shape(vec![], true), Reading::Strict)).unwrap();
        assert!(hash.contains("a/b") && !hash.contains("$SYS/x"));
    }

    #[test]
    fn containment_and_overlap_of_filters() {
        let s = shape(vec![text("a"), Level::Any, text("c")], false);
        let contained = Lang::new(&contained_filters(&s)).unwrap();
        let overlap = Lang::new(&overlapping_filters(&s, Reading::Lenient)).unwrap();
        for yes in ["a/+/c", "a/x/c", "a//c"] {
            assert!(contained.contains(yes), "{yes}");
        }
        for no in ["a/#", "+/x/c", "a/+/+", "#", "a/x/c/#"] {
            assert!(!contained.contains(no), "{no}");
        }
        for yes in ["#", "a/#", "+/+/+", "a/x/#", "a/+/c/#", "+/x/c"] {
            assert!(overlap.contains(yes), "{yes}");
        }
        for no in ["a/x", "b/#", "a/x/d", "a/x/c/d"] {
            assert!(!overlap.contains(no), "{no}");
        }
        let possible = Lang::new(&possibly_contained_filters(
            std::slice::from_ref(&s),
            Reading::Lenient,
        ))
        .unwrap();
        for yes in ["a/+/c", "+/x/c", "a/x/+"] {
            assert!(possible.contains(yes), "{yes}");
        }
        for no in ["#", "a/#", "a/x/#", "a/+/c/#"] {
            assert!(!possible.contains(no), "{no}");
        }
        let deep = shape(vec![text("b"), Level::Any], true);
        let possible = Lang::new(&possibly_contained_filters(&[deep], Reading::Lenient)).unwrap();
        for yes in ["b/x", "b/x/#", "b/+/y/#", "#"] {
            assert!(possible.contains(yes), "{yes}");
        }
        assert!(
            !possible.contains("b/#"),
            "its parent `b` is no topic of `b/+/#`"
        );
        let dollar = shape(vec![text("$SYS"), Level::Any], false);
        let overlap = Lang::new(&overlapping_filters(&dollar, Reading::Strict)).unwrap();
        assert!(overlap.contains("$SYS/#") && !overlap.contains("#") && !overlap.contains("+/x"));
    }
}
