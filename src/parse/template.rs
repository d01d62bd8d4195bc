//! Parses the inside of a template string into levels and parts.
//!
//! `"c/xfi/{pid}_{aid}/{sid in services}/{+rid}/{success|failure}"` becomes six levels;
//! the third is the parts `{pid}`, `_`, `{aid}`. Every malformed `{...}` or wildcard is an
//! error with the exact span. This module knows syntax only: whether `{pid}` names a real
//! attribute is decided by [`crate::check`].

use crate::ast::{Level, Name, Part, Template};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;
use smallvec::SmallVec;

/// Whether the template is a topic (split on `/`) or a client id (one piece).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateKind {
    /// A topic template.
    Topic,
    /// A client-id template.
    ClientId,
}

/// Parses `text`, which starts at byte `offset` of the file.
///
/// Costs one pass to cut the levels and one over each level; it allocates only what the
/// template keeps (its text, its levels, their parts and names), each at its final size.
pub fn parse_template(
    text: &str,
    offset: usize,
    kind: TemplateKind,
    errors: &mut Vec<Diagnostic>,
) -> Template {
    let span = Span::new(offset, offset + text.len());
    let pieces = split_levels(text, kind);
    let mut levels = Vec::with_capacity(pieces.len());
    for (start, piece) in pieces {
        levels.push(parse_level(piece, offset + start, kind, errors));
    }
    Template {
        text: text.to_string(),
        span,
        levels,
    }
}

/// The levels of a template, cut without allocating for the common number of them.
type Pieces<'a> = SmallVec<[(usize, &'a str); 12]>;

/// Splits on `/` outside braces, keeping byte offsets. `{`, `}` and `/` are ASCII, so the
/// bytes are scanned, not the characters.
fn split_levels(text: &str, kind: TemplateKind) -> Pieces<'_> {
    let mut pieces = Pieces::new();
    if kind == TemplateKind::ClientId {
        pieces.push((0, text));
        return pieces;
    }
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b'/' if depth == 0 => {
                pieces.push((start, &text[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push((start, &text[start..]));
    pieces
}

fn parse_level(
    text: &str,
    offset: usize,
    kind: TemplateKind,
    errors: &mut Vec<Diagnostic>,
) -> Level {
    let span = Span::new(offset, offset + text.len());
    if kind == TemplateKind::Topic && text == "+" {
        return Level {
            parts: vec![Part::Plus { span }],
            span,
        };
    }
    if kind == TemplateKind::Topic && text == "#" {
        return Level {
            parts: vec![Part::Hash { span }],
            span,
        };
    }
    let mut parts: SmallVec<[Part; 4]> = SmallVec::new();
    let mut rest = text;
    let mut at = offset;
    while !rest.is_empty() {
        let consumed = if rest.starts_with('{') {
            parse_brace(rest, at, &mut parts, errors)
        } else {
            parse_text(rest, at, kind, &mut parts, errors)
        };
        rest = &rest[consumed..];
        at += consumed;
    }
    // Exactly sized: `collect` would give a one-part level room for four.
    let mut exact = Vec::with_capacity(parts.len());
    exact.extend(parts);
    Level { parts: exact, span }
}

/// Literal text up to the next `{`; returns bytes consumed.
fn parse_text(
    rest: &str,
    at: usize,
    kind: TemplateKind,
    parts: &mut SmallVec<[Part; 4]>,
    errors: &mut Vec<Diagnostic>,
) -> usize {
    let end = rest.find('{').unwrap_or(rest.len());
    let text = &rest[..end];
    if !text.bytes().all(plain_byte) {
        for (i, c) in text.char_indices() {
            let span = Span::new(at + i, at + i + c.len_utf8());
            if let Some(problem) = bad_char(c, kind) {
                errors.push(problem.at(span));
            }
        }
    }
    parts.push(Part::Text {
        text: text.to_string(),
        span: Span::new(at, at + end),
    });
    end.max(1)
}

/// A byte that is a whole character [`bad_char`] accepts in every kind of template:
/// printable ASCII but `}`, `+` and `#`. Text of only these needs no per-character check.
fn plain_byte(b: u8) -> bool {
    (b' '..=b'~').contains(&b) && !matches!(b, b'}' | b'+' | b'#')
}

struct CharProblem {
    code: Code,
    message: String,
    help: &'static str,
}

impl CharProblem {
    fn at(self, span: Span) -> Diagnostic {
        Diagnostic::error(self.code, span, self.message)
            .with_label("here")
            .with_help(self.help)
    }
}

/// Characters that may not appear in literal template text.
fn bad_char(c: char, kind: TemplateKind) -> Option<CharProblem> {
    match c {
        '}' => Some(CharProblem {
            code: Code::ParseUnmatchedBrace,
            message: "`}` without a matching `{`".into(),
            help: "braces enclose an attribute (`{pid}`), a capture (`{+rid}`), a set (`{sid in services}`) or alternatives (`{a|b}`)",
        }),
        '+' | '#' if kind == TemplateKind::Topic => Some(CharProblem {
            code: Code::ParseWildcardInLevel,
            message: format!("`{c}` must be a whole topic level, not part of one"),
            help: "write `+` or `#` alone between slashes, e.g. `a/+/c` or `a/#`; use `{+name}` to capture part of a level",
        }),
        '\u{0}' => Some(CharProblem {
            code: Code::ParseForbiddenCharacter,
            message: "NUL character in a template".into(),
            help: "MQTT topics may not contain U+0000",
        }),
        '\u{FEFF}' => Some(CharProblem {
            code: Code::ParseForbiddenCharacter,
            message: "byte order mark (U+FEFF) inside a template".into(),
            help: "remove the invisible U+FEFF character",
        }),
        c if c.is_control() => Some(CharProblem {
            code: Code::ParseForbiddenCharacter,
            message: format!("control character U+{:04X} in a template", c as u32),
            help: "MQTT topics may not contain control characters",
        }),
        _ => None,
    }
}

/// A `{...}` expression; returns bytes consumed.
fn parse_brace(
    rest: &str,
    at: usize,
    parts: &mut SmallVec<[Part; 4]>,
    errors: &mut Vec<Diagnostic>,
) -> usize {
    let Some(close) = rest.find('}') else {
        errors.push(
            Diagnostic::error(
                Code::ParseUnterminatedBrace,
                Span::new(at, at + rest.len()),
                "unterminated `{`: no closing `}` in this level",
            )
            .with_label("opened here")
            .with_help("close the expression, e.g. `{pid}`"),
        );
        return rest.len();
    };
    if let Some(nested) = rest[1..close].find('{') {
        errors.push(
            Diagnostic::error(
                Code::ParseNestedBrace,
                Span::new(at + 1 + nested, at + 2 + nested),
                "`{` inside `{...}`",
            )
            .with_label("nested here"),
        );
        return close + 1;
    }
    let inner = &rest[1..close];
    let span = Span::new(at, at + close + 1);
    if let Some(part) = parse_expression(inner, at + 1, span, errors) {
        parts.push(part);
    }
    close + 1
}

/// The inside of braces: `pid`, `+rid`, `sid in services`, or `a|b|c`.
fn parse_expression(
    inner: &str,
    at: usize,
    span: Span,
    errors: &mut Vec<Diagnostic>,
) -> Option<Part> {
    let trimmed = inner.trim();
    let lead = inner.len() - inner.trim_start().len();
    let name_at = |text: &str, offset: usize| Name {
        text: text.to_string(),
        span: Span::new(at + offset, at + offset + text.len()),
    };
    if trimmed.is_empty() {
        errors.push(
            Diagnostic::error(Code::ParseEmptyBrace, span, "empty `{}`")
                .with_help("write an attribute (`{pid}`), a capture (`{+rid}`), a set (`{sid in services}`) or alternatives (`{a|b}`)"),
        );
        return None;
    }
    if trimmed.contains('|') {
        return parse_alternatives(inner, at, span, errors);
    }
    if let Some(capture) = trimmed.strip_prefix('+') {
        let name = name_at(
            capture.trim(),
            lead + 1 + (capture.len() - capture.trim_start().len()),
        );
        return check_name(&name, errors).then_some(Part::Capture { name });
    }
    let mut words = trimmed.split_whitespace();
    let words = [words.next(), words.next(), words.next(), words.next()];
    if let [Some(capture), Some("in"), Some(set), None] = words {
        let capture_offset = lead;
        let set_offset = inner.rfind(set).unwrap_or(lead);
        let (capture, set) = (name_at(capture, capture_offset), name_at(set, set_offset));
        let ok = check_name(&capture, errors) & check_name(&set, errors);
        return ok.then_some(Part::SetRef {
            capture: Box::new(capture),
            set: Box::new(set),
            span,
        });
    }
    let name = name_at(trimmed, lead);
    check_name(&name, errors).then_some(Part::Attr { name })
}

fn parse_alternatives(
    inner: &str,
    at: usize,
    span: Span,
    errors: &mut Vec<Diagnostic>,
) -> Option<Part> {
    let mut items = Vec::new();
    let mut offset = 0;
    let mut ok = true;
    for piece in inner.split('|') {
        let lead = piece.len() - piece.trim_start().len();
        let text = piece.trim();
        let item_span = Span::new(at + offset + lead, at + offset + lead + text.len());
        if text.is_empty() {
            errors.push(
                Diagnostic::error(
                    Code::ParseEmptyAlternative,
                    Span::new(at + offset, at + offset + piece.len()),
                    "empty alternative in `{a|b}`",
                )
                .with_help("every alternative must be a non-empty literal"),
            );
            ok = false;
        } else if let Some(c) = text
            .chars()
            .find(|c| matches!(c, '+' | '#' | '/' | ' ') || c.is_control())
        {
            errors.push(
                Diagnostic::error(
                    Code::ParseBadAlternative,
                    item_span,
                    format!("alternative `{text}` contains `{}`", c.escape_default()),
                )
                .with_help("alternatives are literal level text: no wildcards, slashes or spaces"),
            );
            ok = false;
        }
        items.push(Name {
            text: text.to_string(),
            span: item_span,
        });
        offset += piece.len() + 1;
    }
    ok.then_some(Part::Alternatives { items, span })
}

/// Names in braces: a letter or `_`, then letters, digits, `_` or `-`.
fn check_name(name: &Name, errors: &mut Vec<Diagnostic>) -> bool {
    let mut chars = name.text.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        errors.push(
            Diagnostic::error(
                Code::ParseBadName,
                name.span,
                format!("`{}` is not a valid name", name.text),
            )
            .with_help("names start with a letter or `_` and contain letters, digits, `_` or `-`"),
        );
    }
    valid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Template {
        let mut errors = Vec::new();
        let t = parse_template(text, 0, TemplateKind::Topic, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        t
    }

    fn parse_err(text: &str) -> Vec<Code> {
        let mut errors = Vec::new();
        parse_template(text, 0, TemplateKind::Topic, &mut errors);
        errors.iter().map(|e| e.code).collect()
    }

    #[test]
    fn round_trips_through_display() {
        let text = "c/xfi/{pid}_{aid}/{sid in services}/{client}/{+rid}/{success|failure}/+/#";
        assert_eq!(parse_ok(text).to_string(), text);
        assert_eq!(parse_ok(text).levels.len(), 9);
    }

    #[test]
    fn malformed_wildcards_are_errors() {
        assert_eq!(parse_err("a/b#"), [Code::ParseWildcardInLevel]);
        assert_eq!(parse_err("a/+x/c"), [Code::ParseWildcardInLevel]);
        assert!(
            parse_ok("a/#/b").levels[1].parts[0]
                == Part::Hash {
                    span: Span::new(2, 3)
                }
        );
    }

    #[test]
    fn malformed_braces_are_errors() {
        assert_eq!(parse_err("a/{pid"), [Code::ParseUnterminatedBrace]);
        assert_eq!(parse_err("a/pid}"), [Code::ParseUnmatchedBrace]);
        assert_eq!(parse_err("a/{}"), [Code::ParseEmptyBrace]);
        assert_eq!(parse_err("a/{x||y}"), [Code::ParseEmptyAlternative]);
        assert_eq!(parse_err("a/{1x}"), [Code::ParseBadName]);
        assert_eq!(parse_err("a/\u{0}"), [Code::ParseForbiddenCharacter]);
    }

    #[test]
    fn client_templates_keep_slashes() {
        let mut errors = Vec::new();
        let t = parse_template("a/{x}+", 0, TemplateKind::ClientId, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(t.levels.len(), 1);
    }
}
