//! A hand-written recognizer for the common rule line, ahead of the pest grammar.
//!
//! Almost every line of a large policy is one rule, written
//! `[@id("label")] allow|deny WHO[, WHO] ACTION[, ACTION] ["TEMPLATE"] [# comment]`. This
//! module reads such a line in one pass over its bytes and builds the same [`Rule`]
//! (spans included) that the grammar's path — pest, then `lower` — builds for it, at a
//! fraction of the cost: no pair queue, no token tree, no backtracking.
//!
//! It must never accept what pest rejects, nor build anything but what pest's path builds.
//! So it recognizes only what it can be certain of, and declines (returns `None`) on
//! everything else — any other statement, a second line, a byte order mark, an unfinished
//! string, a stray character, a template with a syntax error — and the caller hands the
//! chunk to pest, so every error message and span is pest's own. Where the grammar lets
//! blanks in (spaces and tabs between tokens), this reader skips them at the same places
//! pest's implicit `WHITESPACE` does, because the spans of a rule without a template and
//! of `any` depend on it. Its cost is linear in the line; it never panics, and it
//! allocates nothing until it has recognized the line's shape (the template is parsed
//! last).
//!
//! `tests` prove it equal to pest's path on every policy of the repository, on generated
//! policies and on thousands of mutated rule lines.

use super::template::{TemplateKind, parse_template};
use crate::ast::{Action, Comment, Effect, Name, Rule, Template, Who};
use crate::source::Span;

/// The rule on `chunk` (one line of the file, starting at byte `offset`), or `None` when
/// the line is not a rule this reader is certain of. Pest's path makes this rule the
/// chunk's one item.
pub(super) fn rule_line(chunk: &str, offset: usize) -> Option<Rule> {
    let mut line = Line {
        text: chunk,
        bytes: chunk.as_bytes(),
        at: 0,
    };
    line.skip_blanks();
    let start = line.at;
    let label = line.label();
    line.skip_blanks();
    let effect = line.effect()?;
    line.skip_blanks();
    let who = line.who()?;
    line.skip_blanks();
    let actions = line.actions()?;
    // The grammar skips blanks before the optional template, so a rule without one ends
    // after the blanks that follow its last action.
    line.skip_blanks();
    let template = line.string();
    let end = line.at;
    line.skip_blanks();
    let trailing = line.comment();
    line.skip_blanks();
    if !line.end_of_line() {
        return None;
    }
    let template = match template {
        Some(body) => Some(topic_template(chunk, body, offset)?),
        None => None,
    };
    let span = |(s, e): (usize, usize)| Span::new(offset + s, offset + e);
    let name = |range: (usize, usize)| Name {
        text: chunk[range.0..range.1].to_string(),
        span: span(range),
    };
    let rule = Rule {
        label: label.map(|(whole, body)| Name {
            text: chunk[body.0..body.1].to_string(),
            span: span(whole),
        }),
        effect,
        who: match who {
            Whom::Any(range) => Who::Any(span(range)),
            Whom::Names(names) => Who::Identities(names.iter().map(|&r| name(r)).collect()),
        },
        actions: actions.iter().map(|&(a, r)| (a, span(r))).collect(),
        template,
        span: span((start, end)),
        trailing: trailing.map(|range| Comment {
            text: chunk[range.0..range.1].trim_end().to_string(),
            span: span(range),
        }),
    };
    Some(rule)
}

/// The template whose body is `body` in `chunk`; `None` if it has a syntax error, which
/// pest's path then reports (the same function's errors, in its order).
fn topic_template(chunk: &str, body: Range, offset: usize) -> Option<Template> {
    let mut errors = Vec::new();
    let text = &chunk[body.0..body.1];
    let template = parse_template(text, offset + body.0, TemplateKind::Topic, &mut errors);
    errors.is_empty().then_some(template)
}

/// Byte ranges in the line (start, end).
type Range = (usize, usize);

/// At most this many names or actions are read without allocating; a longer list is
/// left to pest (no policy writes one).
const MAX_LIST: usize = 8;

/// A fixed-capacity list, so that a line is recognized before anything is allocated.
struct List<T: Copy> {
    items: [Option<T>; MAX_LIST],
    len: usize,
}

impl<T: Copy> List<T> {
    fn new() -> Self {
        List {
            items: [None; MAX_LIST],
            len: 0,
        }
    }

    /// Adds an item; `None` when the list is full.
    fn push(&mut self, item: T) -> Option<()> {
        *self.items.get_mut(self.len)? = Some(item);
        self.len += 1;
        Some(())
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.items[..self.len].iter().flatten()
    }
}

/// Whom a rule names, as byte ranges.
enum Whom {
    Any(Range),
    Names(List<Range>),
}

/// A cursor over one line.
struct Line<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

/// A character that continues a name (the grammar's `word_char`).
fn word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl Line<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// The grammar's implicit `WHITESPACE`: spaces and tabs.
    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, literal: &str) -> bool {
        let found = self.text[self.at..].starts_with(literal);
        if found {
            self.at += literal.len();
        }
        found
    }

    /// `literal` as a whole word (not followed by a `word_char`); its range.
    fn keyword(&mut self, literal: &str) -> Option<Range> {
        let start = self.at;
        let rest = &self.bytes[start..];
        let whole = rest.starts_with(literal.as_bytes())
            && !rest.get(literal.len()).copied().is_some_and(word_char);
        whole.then(|| {
            self.at += literal.len();
            (start, self.at)
        })
    }

    /// `(ASCII_ALPHA | "_") ~ word_char*`.
    fn name(&mut self) -> Option<Range> {
        let start = self.at;
        let first = self.peek()?;
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return None;
        }
        self.at += 1;
        while self.peek().is_some_and(word_char) {
            self.at += 1;
        }
        Some((start, self.at))
    }

    /// A quoted string: the range of its body. Leaves the cursor where it was if there is
    /// none; a string its line never closes is not one.
    fn string(&mut self) -> Option<Range> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let body_start = self.at + 1;
        let len = self.bytes[body_start..]
            .iter()
            .position(|&b| matches!(b, b'"' | b'\r' | b'\n'))?;
        let body_end = body_start + len;
        (self.bytes[body_end] == b'"').then(|| {
            self.at = body_end + 1;
            (body_start, body_end)
        })
    }

    /// `@id("label")`: the whole label's range and its body's. Nothing is consumed unless
    /// the whole label is there.
    fn label(&mut self) -> Option<(Range, Range)> {
        let start = self.at;
        let body = self.label_body();
        if body.is_none() {
            self.at = start;
        }
        body.map(|body| ((start, self.at), body))
    }

    fn label_body(&mut self) -> Option<Range> {
        if !self.eat("@id(") {
            return None;
        }
        let body = self.string()?;
        self.eat(")").then_some(body)
    }

    fn effect(&mut self) -> Option<Effect> {
        if self.keyword("allow").is_some() {
            Some(Effect::Allow)
        } else if self.keyword("deny").is_some() {
            Some(Effect::Deny)
        } else {
            None
        }
    }

    /// `any | name ~ ("," ~ name)*`, with the grammar's greedy repetition.
    fn who(&mut self) -> Option<Whom> {
        if let Some(any) = self.keyword("any") {
            return Some(Whom::Any(any));
        }
        let mut names = List::new();
        names.push(self.name()?)?;
        while let Some(name) = self.next_in_list(Line::name) {
            names.push(name)?;
        }
        Some(Whom::Names(names))
    }

    /// `action ~ ("," ~ action)*`.
    fn actions(&mut self) -> Option<List<(Action, Range)>> {
        let mut actions = List::new();
        actions.push(self.action()?)?;
        while let Some(action) = self.next_in_list(Line::action) {
            actions.push(action)?;
        }
        Some(actions)
    }

    /// One of the five action keywords.
    fn action(&mut self) -> Option<(Action, Range)> {
        Action::ALL
            .into_iter()
            .find_map(|action| Some((action, self.keyword(action.as_str())?)))
    }

    /// `"," ~ item` after blanks; the cursor is left where it was if there is none.
    fn next_in_list<T>(&mut self, item: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let before = self.at;
        self.skip_blanks();
        if !self.eat(",") {
            self.at = before;
            return None;
        }
        self.skip_blanks();
        let found = item(self);
        if found.is_none() {
            self.at = before;
        }
        found
    }

    /// `# ...` up to the end of the line (not including its `\r\n` or `\n`).
    fn comment(&mut self) -> Option<Range> {
        if self.peek() != Some(b'#') {
            return None;
        }
        let start = self.at;
        let rest = &self.text[start..];
        let len = rest.find('\n').unwrap_or(rest.len());
        let len = if rest[..len].ends_with('\r') && len < rest.len() {
            len - 1
        } else {
            len
        };
        self.at = start + len;
        Some((start, self.at))
    }

    /// `\n`, `\r\n` or the end of the chunk, and nothing after it.
    fn end_of_line(&mut self) -> bool {
        let rest = &self.bytes[self.at..];
        matches!(rest, b"" | b"\n" | b"\r\n")
    }
}

#[cfg(test)]
mod tests;
