//! AWS IoT resource patterns: literal text and `*`, written safely, and the candidates the
//! renderer builds from shapes.
//!
//! In an AWS IoT policy resource `*` matches any run of characters — `/` included — and
//! `?` any one character; `+` and `#` are plain characters; `${...}` is a policy variable,
//! and the fixed variables `${*}`, `${?}` and `${$}` stand for the characters `*`, `?` and
//! `$` (IAM "Policy elements: Variables", "Special characters"). A [`Glob`] holds literal
//! text and stars; [`Glob::resource`] writes every `*` and `?` of its text as `${*}` and
//! `${?}`, and a `$` followed by `{` as `${$}`, so no attribute value or client id can ever
//! become a wildcard or a variable. The renderer emits no `?` and no other variable.
//!
//! A star is wider than topicguard's `+`: it crosses levels. [`cuts`] lists the Deny
//! patterns that would take back exactly what a shape's star reaches beyond its level
//! (`a/*/*` for `a/+`), a leading `$` level, and a trailing `#` filter; the renderer emits
//! one only after proving that it removes nothing topicguard allows. This module builds
//! candidates; it proves nothing.

use super::shape::{Level, Part, Reading, Shape};

/// One token of a resource pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tok {
    /// Literal text.
    Lit(String),
    /// `*`: any run of characters, `/` included.
    Star,
}

/// A resource pattern (the part after `topic/`, `topicfilter/` or `client/`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Glob {
    toks: Vec<Tok>,
}

impl Glob {
    pub(crate) fn literal(text: &str) -> Glob {
        let mut glob = Glob::default();
        glob.push(Tok::Lit(text.to_string()));
        glob
    }

    /// Every string starting with `text`: the text, then a star.
    pub fn prefix(text: &str) -> Glob {
        let mut glob = Glob::literal(text);
        glob.push(Tok::Star);
        glob
    }

    fn push(&mut self, tok: Tok) {
        match (self.toks.last_mut(), tok) {
            (Some(Tok::Lit(prev)), Tok::Lit(next)) => prev.push_str(&next),
            (Some(Tok::Star), Tok::Star) => {}
            (_, Tok::Lit(t)) if t.is_empty() => {}
            (_, tok) => self.toks.push(tok),
        }
    }

    fn extend(&mut self, toks: impl IntoIterator<Item = Tok>) {
        for tok in toks {
            self.push(tok);
        }
    }

    /// The text, if the pattern has no star.
    pub fn as_literal(&self) -> Option<String> {
        match self.toks.as_slice() {
            [] => Some(String::new()),
            [Tok::Lit(text)] => Some(text.clone()),
            _ => None,
        }
    }

    /// The same set of strings as a whole-string regex.
    pub fn regex(&self) -> String {
        self.toks
            .iter()
            .map(|t| match t {
                Tok::Lit(text) => regex_syntax::escape(text),
                Tok::Star => "(?s:.)*".to_string(),
            })
            .collect()
    }

    /// The pattern as AWS reads it: stars as `*`, special characters of the text escaped.
    pub fn resource(&self) -> String {
        let mut out = String::new();
        for tok in &self.toks {
            match tok {
                Tok::Star => out.push('*'),
                Tok::Lit(text) => escape_into(text, &mut out),
            }
        }
        out
    }
}

/// Writes literal text so AWS matches exactly it: `*` → `${*}`, `?` → `${?}`, and `$`
/// → `${$}` where the next character is `{` (elsewhere a `$` is plain text).
pub fn escape_into(text: &str, out: &mut String) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            '$' if chars.peek() == Some(&'{') => out.push_str("${$}"),
            c => out.push(c),
        }
    }
}

/// How the free levels (`+`, `{+name}`) of a shape are written in a `topicfilter`
/// pattern: bit `i` set writes the `i`-th free level as `*` (the filter may hold any text
/// there, or `+`), clear as the literal `+` (only the filter with `+` there). Topic
/// patterns always use [`Form::STARS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Form(pub u32);

impl Form {
    /// Every free level as `*`.
    pub const STARS: Form = Form(u32::MAX);
    /// Every free level as `+`.
    pub const PLUSES: Form = Form(0);

    fn star(self, free_index: usize) -> bool {
        free_index >= 32 || self.0 & (1 << free_index) != 0
    }

    /// True if every level this form writes as `*`, `other` writes as `*` too.
    pub fn within(self, other: Form) -> bool {
        self.0 & !other.0 == 0
    }

    /// The forms worth trying for a shape with `free` free levels, most stars first: all
    /// combinations up to three free levels, else all stars and all pluses.
    pub fn choices(free: usize) -> Vec<Form> {
        if free == 0 {
            return vec![Form::STARS];
        }
        let full = if free >= 32 {
            u32::MAX
        } else {
            (1u32 << free) - 1
        };
        let mut forms: Vec<Form> = if free <= 3 {
            (0..=full).map(Form).collect()
        } else {
            vec![Form(full), Form(0)]
        };
        forms.sort_by_key(|f| std::cmp::Reverse(f.0.count_ones()));
        forms
    }
}

/// A shape as rows of tokens, one row per level.
#[derive(Clone, Debug)]
pub struct Layout {
    levels: Vec<Vec<Tok>>,
    hash: bool,
}

impl Layout {
    pub(crate) fn new(shape: &Shape, form: Form) -> Layout {
        let mut free = 0;
        let levels = shape
            .levels
            .iter()
            .map(|level| {
                let star = matches!(level, Level::Any) && {
                    free += 1;
                    form.star(free - 1)
                };
                level_toks(level, star || !matches!(level, Level::Any))
            })
            .collect();
        Layout {
            levels,
            hash: shape.hash,
        }
    }

    /// True if some level is written with a star.
    pub fn has_star(&self) -> bool {
        self.levels.iter().flatten().any(|t| *t == Tok::Star)
    }

    /// The patterns granting the shape: its levels, and with `#` the same followed by
    /// `/*` (a lone `#` is `*`).
    pub fn grants(&self) -> Vec<Glob> {
        if self.levels.is_empty() {
            let mut star = Glob::default();
            star.push(Tok::Star);
            return vec![star];
        }
        with_hash(join(&self.levels), self.hash)
    }

    /// The Deny candidates that take back what the grants reach beyond the shape: a star
    /// spanning `/`, a `$` first level where the first level starts with a star, and (for
    /// filters) a `#` where a free level is a lone star: such a filter also covers topics
    /// with fewer levels than the shape.
    pub fn cuts(&self, filter: bool) -> Vec<Glob> {
        if self.levels.is_empty() {
            let mut dollar = Glob::literal("$");
            dollar.push(Tok::Star);
            return vec![dollar];
        }
        let mut bases = Vec::new();
        for (li, level) in self.levels.iter().enumerate() {
            for (ti, tok) in level.iter().enumerate() {
                if *tok == Tok::Star {
                    bases.push(self.replaced(li, ti, vec![Tok::Star, lit("/"), Tok::Star]));
                }
            }
        }
        if self.levels[0].first() == Some(&Tok::Star) {
            bases.push(self.replaced(0, 0, vec![lit("$"), Tok::Star]));
        }
        let mut out: Vec<Glob> = bases
            .into_iter()
            .flat_map(|b| with_hash(b, self.hash))
            .collect();
        if filter {
            for (li, level) in self.levels.iter().enumerate() {
                if *level == [Tok::Star] {
                    let mut prefix = self.levels[..li].to_vec();
                    prefix.push(vec![lit("#")]);
                    out.push(join(&prefix));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn replaced(&self, level: usize, tok: usize, with: Vec<Tok>) -> Glob {
        let mut levels = self.levels.clone();
        levels[level].splice(tok..=tok, with);
        join(&levels)
    }
}

fn lit(text: &str) -> Tok {
    Tok::Lit(text.to_string())
}

/// One level's tokens; `star`: a free level is written `*` (else `+`).
fn level_toks(level: &Level, star: bool) -> Vec<Tok> {
    match level {
        Level::Text(t) => vec![lit(t)],
        Level::Any if star => vec![Tok::Star],
        Level::Any => vec![lit("+")],
        Level::Glob(parts) => parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => lit(t),
                Part::Hole => Tok::Star,
            })
            .collect(),
    }
}

fn join(levels: &[Vec<Tok>]) -> Glob {
    let mut glob = Glob::default();
    for (i, level) in levels.iter().enumerate() {
        if i > 0 {
            glob.push(lit("/"));
        }
        glob.extend(level.iter().cloned());
    }
    glob
}

fn with_hash(base: Glob, hash: bool) -> Vec<Glob> {
    if !hash {
        return vec![base];
    }
    let mut deeper = base.clone();
    deeper.extend([lit("/"), Tok::Star]);
    vec![base, deeper]
}

/// The most filter patterns one allow and one deny shape may give in [`overlap_cuts`].
const MAX_OVERLAP_VARIANTS: usize = 64;

/// Deny candidates for the filters of `allow` (written in `form`) that touch a topic of
/// `deny`: under containment topicguard denies them. Level by level: where the allow
/// shape is free, the filter may hold the deny's text or `+`. Only the simple cases are
/// built (the allow shape without `#`, the deny no longer, or ending with `#`); whatever
/// they miss, the renderer's proof catches and the allow is narrowed instead.
pub fn overlap_cuts(allow: &Shape, form: Form, deny: &Shape) -> Vec<Glob> {
    let (na, nd) = (allow.levels.len(), deny.levels.len());
    if allow.hash || na == 0 || !(nd == na || (deny.hash && nd <= na)) {
        return Vec::new();
    }
    let mut rows: Vec<Vec<Vec<Tok>>> = Vec::with_capacity(na);
    let mut free = 0;
    for (i, a) in allow.levels.iter().enumerate() {
        let star = match a {
            Level::Any => {
                free += 1;
                form.star(free - 1)
            }
            _ => true,
        };
        let choices = match deny.levels.get(i) {
            None => vec![level_toks(a, star)],
            Some(d) => match overlap_choices(a, star, d, i == 0) {
                Some(c) => c,
                None => return Vec::new(),
            },
        };
        rows.push(choices);
    }
    let count = rows.iter().map(Vec::len).product::<usize>();
    if count > MAX_OVERLAP_VARIANTS {
        return Vec::new();
    }
    let mut combos: Vec<Vec<Vec<Tok>>> = vec![Vec::new()];
    for choices in rows {
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                choices.iter().map(move |c| {
                    let mut next = prefix.clone();
                    next.push(c.clone());
                    next
                })
            })
            .collect();
    }
    combos.iter().map(|levels| join(levels)).collect()
}

/// The ways one filter level of the allow shape can touch the deny's level; `star`: a
/// free level of the allow shape is written `*`.
fn overlap_choices(a: &Level, star: bool, d: &Level, first: bool) -> Option<Vec<Vec<Tok>>> {
    let plus = vec![lit("+")];
    let plus_fits = !first || d.can_start_plain();
    match (a, star) {
        (Level::Text(t), _) => d
            .matches(t, first, Reading::Lenient)
            .then(|| vec![vec![lit(t)]]),
        (Level::Any, false) => plus_fits.then(|| vec![plus]),
        (Level::Any, true) => Some(match d {
            Level::Any => vec![vec![Tok::Star]],
            Level::Text(s) => {
                let mut c = vec![vec![lit(s)]];
                if plus_fits {
                    c.push(plus);
                }
                c
            }
            Level::Glob(_) => vec![level_toks(d, true), plus],
        }),
        (Level::Glob(_), _) => match d {
            Level::Any => Some(vec![level_toks(a, true)]),
            Level::Text(s) => a
                .matches(s, first, Reading::Lenient)
                .then(|| vec![vec![lit(s)]]),
            Level::Glob(_) => Some(vec![level_toks(d, true)]),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Effect;
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

    fn resources(globs: &[Glob]) -> Vec<String> {
        globs.iter().map(Glob::resource).collect()
    }

    #[test]
    fn special_characters_are_never_wildcards() {
        let mut out = String::new();
        escape_into("a*b?c${d}$e$", &mut out);
        assert_eq!(out, "a${*}b${?}c${$}{d}$e$");
        assert_eq!(Glob::literal("x*").resource(), "x${*}");
    }

    #[test]
    fn grants_and_cuts() {
        let s = shape(
            vec![
                text("c"),
                Level::Any,
                Level::Glob(vec![Part::Text("d-".into()), Part::Hole]),
            ],
            false,
        );
        let layout = Layout::new(&s, Form::STARS);
        assert_eq!(resources(&layout.grants()), ["c/*/d-*"]);
        assert_eq!(resources(&layout.cuts(false)), ["c/*/*/d-*", "c/*/d-*/*"]);
        let lead = Layout::new(&shape(vec![Level::Any, text("x")], true), Form::STARS);
        assert_eq!(resources(&lead.grants()), ["*/x", "*/x/*"]);
        assert_eq!(
            resources(&lead.cuts(false)),
            ["$*/x", "$*/x/*", "*/*/x", "*/*/x/*"]
        );
        let last = Layout::new(&shape(vec![text("a"), Level::Any], false), Form::STARS);
        assert_eq!(resources(&last.cuts(true)), ["a/*/*", "a/#"]);
        let plus = Layout::new(&shape(vec![text("a"), Level::Any], false), Form::PLUSES);
        assert_eq!(resources(&plus.grants()), ["a/+"]);
        assert!(plus.cuts(true).is_empty());
    }

    #[test]
    fn forms_write_each_free_level_as_a_star_or_a_plus() {
        let s = shape(vec![text("f"), Level::Any, text("t"), Level::Any], false);
        let forms = Form::choices(2);
        assert_eq!(forms.first(), Some(&Form(0b11)));
        assert_eq!(forms.last(), Some(&Form(0)));
        let got: Vec<String> = forms
            .iter()
            .map(|f| Layout::new(&s, *f).grants()[0].resource())
            .collect();
        assert_eq!(got, ["f/*/t/*", "f/*/t/+", "f/+/t/*", "f/+/t/+"]);
        assert!(Form(0b01).within(Form(0b11)) && !Form(0b11).within(Form(0b01)));
        assert_eq!(Form::choices(5).len(), 2);
    }

    #[test]
    fn overlap_cuts_follow_the_deny_level_by_level() {
        let allow = shape(vec![text("f"), text("V1"), Level::Any], false);
        let deny = shape(vec![text("f"), Level::Any, text("cabin")], false);
        let got = resources(&overlap_cuts(&allow, Form::STARS, &deny));
        assert_eq!(got, ["f/V1/cabin", "f/V1/+"]);
        let other = shape(vec![text("g"), Level::Any, text("cabin")], false);
        assert!(overlap_cuts(&allow, Form::STARS, &other).is_empty());
    }
}
