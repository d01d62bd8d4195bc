//! Representative topics: the level-by-level product of several instantiated templates.
//!
//! Given templates, each with the attribute values of one session (the same template may
//! appear once per session), [`representatives`] returns topics such that every topic name
//! is matched by exactly the same templates as one of them. A decision on a topic depends
//! only on which templates match it, so deciding the representatives decides every topic.
//!
//! The walk is a product construction over the templates' levels: at depth `j` the
//! templates still alive (every level so far matched) are partitioned by which of their
//! level-`j` patterns a level value matches; one value per realisable class is kept and
//! the walk goes on with the templates that matched it. Once no template has a level `j`,
//! every deeper topic is matched by the same (`#`) templates, so one more level stands for
//! all of them. Class values come first from the patterns themselves (a literal, each
//! value of a set or alternative, text and attribute values with captures filled with
//! `x`, nothing, or a character no literal uses) plus a value no pattern but `+` matches
//! and at the first level a `$` value: when at most one pattern at the level holds a
//! capture, these meet every class (a value a capture-free pattern matches is one of its
//! listed texts; a value only the capture pattern matches is its text with the unused
//! character in the captures; a value none matches is a character no pattern uses). When
//! two or more patterns hold captures, or a pattern has too many combinations to list,
//! the exact walk of [`super::classes`] adds one value per reachable product state of the
//! level's automata, so overlaps (`a{+x}c` and `ab{+y}` share `abc`) are found whatever
//! other patterns exclude. Each candidate's class is computed with the reference
//! interpreter's level matching, never assumed.
//!
//! Cost: the product of the class counts along each path, bounded by [`MAX_TOPICS`]
//! (past it the analysis stops with [`super::AnalysisError::TooComplex`]); it never
//! decides anything itself.

use super::{AnalysisError, classes};
use crate::decide::reference::template::{Item, Level, Template};
use std::collections::{BTreeMap, HashSet};

/// Past this many representative topics for one question the analysis gives up.
pub const MAX_TOPICS: usize = 100_000;

/// Fills a capture in a candidate value: a character no literal uses.
const FILLER: &str = "\u{E001}";

/// One template with the attribute values of one session.
#[derive(Clone, Copy)]
pub struct Instance<'t, 'c> {
    pub(crate) template: &'t Template<'c>,
    pub(crate) attrs: &'t BTreeMap<String, String>,
}

/// Topics standing for every topic name, as described in the module docs.
pub fn representatives(instances: &[Instance<'_, '_>]) -> Result<Vec<String>, AnalysisError> {
    let mut out = Vec::new();
    let alive: Vec<usize> = (0..instances.len()).collect();
    walk(instances, &alive, &mut Vec::new(), &mut out)?;
    out.retain(|t| !t.is_empty());
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(
    instances: &[Instance<'_, '_>],
    alive: &[usize],
    prefix: &mut Vec<String>,
    out: &mut Vec<String>,
) -> Result<(), AnalysisError> {
    if out.len() > MAX_TOPICS {
        return Err(AnalysisError::TooComplex(format!(
            "more than {MAX_TOPICS} representative topics"
        )));
    }
    let j = prefix.len();
    if j > 0 {
        out.push(prefix.join("/"));
    }
    let deeper: Vec<usize> = alive
        .iter()
        .copied()
        .filter(|&i| instances[i].template.levels.len() > j)
        .collect();
    let finished: Vec<usize> = alive
        .iter()
        .copied()
        .filter(|&i| instances[i].template.hash && instances[i].template.levels.len() <= j)
        .collect();
    for value in level_classes(instances, &deeper, j)? {
        let mut next: Vec<usize> = deeper
            .iter()
            .copied()
            .filter(|&i| {
                instances[i].template.levels[j].matches(&value, j == 0, instances[i].attrs)
            })
            .collect();
        next.extend(&finished);
        prefix.push(value);
        if next
            .iter()
            .any(|&i| instances[i].template.levels.len() > j + 1)
            || j == 0
        {
            walk(instances, &next, prefix, out)?;
        } else {
            // Only `#` templates (or none) can match anything deeper: one more level
            // stands for every deeper topic.
            out.push(prefix.join("/"));
            out.push(format!("{}/x", prefix.join("/")));
        }
        prefix.pop();
    }
    Ok(())
}

/// One value per class of level values at depth `j`, a class being the set of `alive`
/// templates' level-`j` patterns that match. Readable candidates come first, so a class
/// is shown by `x` rather than by a private-use character whenever `x` is in it.
fn level_classes(
    instances: &[Instance<'_, '_>],
    alive: &[usize],
    j: usize,
) -> Result<Vec<String>, AnalysisError> {
    let mut candidates: Vec<String> = vec!["x".into(), "\u{E000}".into()];
    if j == 0 {
        candidates.push("$x".into());
        candidates.push("$\u{E000}".into());
    }
    let mut truncated = false;
    for &i in alive {
        let instance = instances[i];
        let (texts, complete) = pattern_texts(&instance.template.levels[j], instance.attrs);
        candidates.extend(texts);
        truncated |= !complete;
    }
    candidates.extend(joined_texts(instances, alive, j));
    // With at most one pattern holding captures the candidates above meet every class
    // (see the module docs); with more, their overlaps need the exact walk.
    let with_captures = alive
        .iter()
        .filter(|&&i| has_capture(&instances[i].template.levels[j]))
        .count();
    if with_captures > 1 || truncated {
        let patterns: Vec<classes::Bound<'_, '_>> = alive
            .iter()
            .map(|&i| (&instances[i].template.levels[j], instances[i].attrs))
            .collect();
        candidates.extend(classes::level_values(&patterns, j == 0)?);
    }
    let mut classes: HashSet<Vec<bool>> = HashSet::new();
    let mut kept = Vec::new();
    for value in candidates {
        if value.contains(['/', '+', '#', '\0']) {
            continue;
        }
        // At the first level a `$` value is its own class even for `#` templates.
        let dollar = j == 0 && value.starts_with('$');
        let class: Vec<bool> = std::iter::once(dollar)
            .chain(alive.iter().map(|&i| {
                instances[i].template.levels[j].matches(&value, j == 0, instances[i].attrs)
            }))
            .collect();
        if classes.insert(class) {
            kept.push(value);
        }
    }
    Ok(kept)
}

/// A piece sequence with a capture in it (`+` alone is not one: `x` stands for it).
fn has_capture(pattern: &Level<'_>) -> bool {
    matches!(pattern, Level::Pieces(items) if items.iter().any(|p| matches!(p, Item::Capture)))
}

/// Past this many capture patterns at one level, their pairwise joins are not tried.
const MAX_JOINED: usize = 64;

/// Values in two capture patterns at once (`a{+x}` and `{+y}b` share `ab`): each
/// pattern's shortest text, joined in both orders. A join lies in both whenever the first
/// ends with a capture and the second starts with one.
fn joined_texts(instances: &[Instance<'_, '_>], alive: &[usize], j: usize) -> Vec<String> {
    let shortest: Vec<String> = alive
        .iter()
        .filter_map(|&i| shortest_text(&instances[i].template.levels[j], instances[i].attrs))
        .take(MAX_JOINED)
        .collect();
    let mut out = Vec::new();
    for a in &shortest {
        for b in &shortest {
            if a != b {
                out.push(format!("{a}{b}"));
            }
        }
    }
    out
}

/// A pattern with a capture, its captures empty and each choice at its first value.
fn shortest_text(pattern: &Level<'_>, attrs: &BTreeMap<String, String>) -> Option<String> {
    let Level::Pieces(items) = pattern else {
        return None;
    };
    if !items.iter().any(|p| matches!(p, Item::Capture)) {
        return None;
    }
    let mut text = String::new();
    for item in items {
        match item {
            Item::Text(t) => text.push_str(t),
            Item::Attr(name) => text.push_str(attrs.get(*name)?),
            Item::Capture => {}
            Item::Choice(choice) => text.push_str(choice.listed.first()?),
        }
    }
    Some(text)
}

/// Texts a level pattern matches: a literal; every combination of its pieces with
/// captures filled; none for `+` (the `x` candidate stands for it). False when there were
/// too many combinations to list them all.
fn pattern_texts(pattern: &Level<'_>, attrs: &BTreeMap<String, String>) -> (Vec<String>, bool) {
    let items = match pattern {
        Level::Any => return (Vec::new(), true),
        Level::Literal(text) => return (vec![text.to_string()], true),
        Level::Pieces(items) => items,
    };
    let mut texts = vec![String::new()];
    for item in items {
        let options: Vec<&str> = match item {
            Item::Text(text) => vec![text],
            Item::Attr(name) => match attrs.get(*name) {
                Some(value) => vec![value.as_str()],
                None => return (Vec::new(), true),
            },
            Item::Capture => vec!["x", "", FILLER],
            Item::Choice(choice) => choice.listed.clone(),
        };
        if texts.len().saturating_mul(options.len()) > MAX_TOPICS {
            return (texts, false);
        }
        texts = texts
            .iter()
            .flat_map(|t| options.iter().map(move |o| format!("{t}{o}")))
            .collect();
    }
    (texts, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::source::Source;

    fn topics(rules: &str) -> Vec<String> {
        let text = format!("identity u from anonymous {{\n    client \"c\"\n}}\n{rules}");
        let policy = Policy::from_source(&Source::new("p", text)).expect("valid");
        let templates: Vec<Template<'_>> = policy
            .checked
            .rules
            .iter()
            .filter_map(|r| r.topic.as_ref().map(Template::new))
            .collect();
        let attrs = BTreeMap::new();
        let instances: Vec<Instance<'_, '_>> = templates
            .iter()
            .map(|template| Instance {
                template,
                attrs: &attrs,
            })
            .collect();
        representatives(&instances).expect("small")
    }

    #[test]
    fn one_topic_per_class_and_a_dollar_topic_at_the_root() {
        let found = topics("allow u publish \"a/+\"\nallow u publish \"a/b\"\n");
        assert!(found.contains(&"a/b".to_string()), "{found:?}");
        assert!(found.contains(&"a/x".to_string()), "{found:?}");
        assert!(found.iter().any(|t| t.starts_with('$')), "{found:?}");
        assert!(found.iter().all(|t| t.split('/').count() <= 3), "{found:?}");
    }

    #[test]
    fn a_value_two_capture_patterns_share_is_found() {
        let found = topics("allow u publish \"a{+x}\"\ndeny u publish \"{+y}b\"\n");
        let both = |t: &str| t.starts_with('a') && t.ends_with('b');
        assert!(found.iter().any(|t| both(t)), "{found:?}");
    }

    #[test]
    fn hash_templates_get_a_deeper_representative() {
        let found = topics("allow u publish \"a/#\"\n");
        assert!(found.contains(&"a".to_string()), "{found:?}");
        assert!(found.iter().any(|t| t.starts_with("a/")), "{found:?}");
    }
}
