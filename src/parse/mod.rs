//! Policy text → [`ast::Policy`], collecting every syntax error.
//!
//! The grammar lives in `grammar/policy.pest`. To report several errors in one run, the
//! file is cut into top-level chunks (one statement, or one identity block up to its
//! closing `}`), and each chunk is parsed on its own: an error in one chunk does not hide
//! errors in the next. A chunk that is one rule line of the common shape is read by a
//! hand-written reader (`fast`) that builds exactly what the grammar's path builds; every
//! other chunk, and every error, goes through pest. Template strings are parsed by
//! [`template`]. This module never resolves names or judges meaning.

mod fast;
mod lower;
pub mod template;

use crate::ast;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::source::{Source, Span};
use pest::Parser as _;

/// The pest parser generated from `grammar/policy.pest`; its `Rule` enum names the grammar's
/// rules. Private: the AST is this module's interface, not the grammar's rule names.
mod generated {
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/policy.pest"]
    pub(crate) struct PolicyParser;
}
pub(crate) use generated::{PolicyParser, Rule};

/// Parses a whole policy file. On failure, every syntax error found is returned.
pub fn parse(source: &Source) -> Result<ast::Policy, Diagnostics> {
    let text = source.text();
    let bom = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (start, end) in chunks(text, bom) {
        match parse_chunk(&text[start..end], start) {
            Ok(mut chunk_items) => items.append(&mut chunk_items),
            Err(mut chunk_errors) => errors.append(&mut chunk_errors),
        }
    }
    let policy = lower::normalize_blanks(items);
    if errors.is_empty() {
        Ok(policy)
    } else {
        let mut diagnostics = Diagnostics::new(source.clone());
        diagnostics.items = errors;
        diagnostics.sort();
        Err(diagnostics)
    }
}

/// A policy cut in two for low-memory loading: the declarations (identities, sets,
/// comments) parsed, and the byte ranges of the rule statements, still unparsed.
pub struct Split {
    pub(crate) declarations: ast::Policy,
    pub(crate) rule_chunks: Vec<(usize, usize)>,
    pub(crate) errors: Vec<Diagnostic>,
}

/// Parses everything but the rules, and returns where the rules are.
///
/// With [`parse_rules`], a loader can parse and check one rule at a time, so the syntax
/// trees of a 100,000-rule policy never exist all at once. Errors are the same as
/// [`parse`]'s.
pub fn split(source: &Source) -> Split {
    let text = source.text();
    let bom = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
    let mut items = Vec::new();
    let mut errors = Vec::new();
    let mut rule_chunks = Vec::new();
    for (start, end) in chunks(text, bom) {
        // Only a rule starts with these: it is parsed once, by `parse_rules`.
        let word = text[start..end].split_whitespace().next().unwrap_or("");
        if word == "allow" || word == "deny" || word.starts_with("@id(") {
            rule_chunks.push((start, end));
            continue;
        }
        match parse_chunk(&text[start..end], start) {
            // The grammar, not the first word, says what a rule is: a rule is never
            // dropped as a declaration, whatever its text.
            Ok(chunk_items) if chunk_items.iter().any(|i| matches!(i, ast::Item::Rule(_))) => {
                rule_chunks.push((start, end));
            }
            Ok(mut chunk_items) => items.append(&mut chunk_items),
            Err(mut chunk_errors) => errors.append(&mut chunk_errors),
        }
    }
    Split {
        declarations: lower::normalize_blanks(items),
        rule_chunks,
        errors,
    }
}

/// Parses one chunk that [`split`] set aside, handing each rule to `on_rule`.
pub fn parse_rules(
    source: &Source,
    chunk: (usize, usize),
    mut on_rule: impl FnMut(&ast::Rule),
) -> Result<(), Vec<Diagnostic>> {
    let text = source.text().get(chunk.0..chunk.1).unwrap_or("");
    if let Some(rule) = fast::rule_line(text, chunk.0) {
        on_rule(&rule);
        return Ok(());
    }
    for item in parse_chunk_with_pest(text, chunk.0)? {
        if let ast::Item::Rule(rule) = item {
            on_rule(&rule);
        }
    }
    Ok(())
}

/// Cuts the text into byte ranges: one per line, or one per identity block.
fn chunks(text: &str, from: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut block_start: Option<usize> = None;
    let mut at = from;
    for line in text[from..].split_inclusive('\n') {
        let end = at + line.len();
        let word = line.split_whitespace().next().unwrap_or("");
        match block_start {
            None if word == "identity" && !line.contains('}') => block_start = Some(at),
            None => out.push((at, end)),
            Some(start) if word.starts_with('}') => {
                out.push((start, end));
                block_start = None;
            }
            Some(_)
                if word == "identity"
                    || word.starts_with("@id")
                    || word == "allow"
                    || word == "deny"
                    || word == "set"
                    || word == "assert" =>
            {
                // An identity block missing its `}`: end it here so the next statement is
                // parsed on its own.
                out.push((block_start.take().unwrap_or(at), at));
                if word == "identity" && !line.contains('}') {
                    block_start = Some(at);
                } else {
                    out.push((at, end));
                }
            }
            Some(_) => {}
        }
        at = end;
    }
    if let Some(start) = block_start {
        out.push((start, text.len()));
    }
    out
}

fn parse_chunk(chunk: &str, offset: usize) -> Result<Vec<ast::Item>, Vec<Diagnostic>> {
    if let Some(rule) = fast::rule_line(chunk, offset) {
        return Ok(vec![ast::Item::Rule(rule)]);
    }
    parse_chunk_with_pest(chunk, offset)
}

/// [`parse_chunk`] through the grammar alone: the path for everything the fast rule reader
/// declines, and the reference it is tested against.
fn parse_chunk_with_pest(chunk: &str, offset: usize) -> Result<Vec<ast::Item>, Vec<Diagnostic>> {
    // The grammar tolerates a BOM at the start of its input; only the file's own start
    // may have one (`parse` skips it), not the start of a later chunk.
    if chunk.starts_with('\u{FEFF}') {
        let bom = Diagnostic::error(
            Code::ParseForbiddenCharacter,
            Span::new(offset, offset + '\u{FEFF}'.len_utf8()),
            "byte order mark (U+FEFF) after the start of the file",
        )
        .with_label("here")
        .with_help(
            "remove the invisible U+FEFF character; only a file's first character may be one",
        );
        return Err(vec![bom]);
    }
    let mut pairs = PolicyParser::parse(Rule::policy, chunk).map_err(|e| {
        let unclosed = unclosed_block(chunk, offset);
        let at_end = match e.location {
            pest::error::InputLocation::Pos(p) | pest::error::InputLocation::Span((p, _)) => {
                p >= chunk.trim_end().len()
            }
        };
        let at = match e.location {
            pest::error::InputLocation::Pos(p) | pest::error::InputLocation::Span((p, _)) => p,
        };
        let strings = unterminated_strings(chunk, offset);
        // A syntax error at or after an unclosed quote is that quote's fault: report the
        // missing `"` (at the end of its line) instead of the confusing "expected ...".
        let explained = strings.first().is_some_and(|(quote, _)| at >= *quote);
        let syntax = if explained {
            strings.into_iter().map(|(_, d)| d).collect()
        } else {
            vec![pest_error(e, offset)]
        };
        match unclosed {
            Some(unclosed) if at_end => vec![unclosed],
            Some(unclosed) => [vec![unclosed], syntax].concat(),
            None => syntax,
        }
    })?;
    let policy = pairs
        .next()
        .expect("the policy rule always yields one pair");
    let mut template_errors = Vec::new();
    let items = lower::items(policy, offset, &mut template_errors);
    if template_errors.is_empty() {
        Ok(items)
    } else {
        Err(template_errors)
    }
}

/// Every quoted string in `chunk` that its line never closes, with the offset (in the
/// chunk) of its opening quote. The diagnostic points at the end of the line, where the
/// closing `"` is missing. A `#` outside a string starts a comment, as in the grammar.
fn unterminated_strings(chunk: &str, offset: usize) -> Vec<(usize, Diagnostic)> {
    let mut found = Vec::new();
    let mut line_start = 0;
    for line in chunk.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        let mut open: Option<usize> = None;
        for (i, c) in content.char_indices() {
            match (c, open) {
                ('"', None) => open = Some(i),
                ('"', Some(_)) => open = None,
                ('#', None) => break,
                _ => {}
            }
        }
        if let Some(quote) = open {
            let end = offset + line_start + content.len();
            let col = content[..quote].chars().count() + 1;
            let diagnostic = Diagnostic::error(
                Code::ParseUnterminatedString,
                Span::new(end, end),
                format!("unterminated string: the `\"` at column {col} is never closed"),
            )
            .with_label("closing `\"` expected here")
            .with_help("a quoted string ends on its own line: add the closing `\"`");
            found.push((line_start + quote, diagnostic));
        }
        line_start += line.len();
    }
    found
}

/// An identity block that `chunks` had to end because no line starting with `}` closed it.
fn unclosed_block(chunk: &str, offset: usize) -> Option<Diagnostic> {
    let body = chunk.trim_start();
    let closed = chunk.lines().any(|l| l.trim_start().starts_with('}'));
    if !body.starts_with("identity") || closed {
        return None;
    }
    let start = offset + chunk.len() - body.len();
    let head = body.lines().next().unwrap_or("").trim_end();
    Some(
        Diagnostic::error(
            Code::ParseUnclosedBlock,
            Span::new(start, start + head.len()),
            "this identity block is never closed",
        )
        .with_label("opened here")
        .with_help("end the block with a line holding only `}` before the next statement"),
    )
}

/// Turns a pest error into a diagnostic with a readable "expected ..." message.
fn pest_error(error: pest::error::Error<Rule>, offset: usize) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let (start, end) = match error.location {
        InputLocation::Pos(p) => (p, p),
        InputLocation::Span((s, e)) => (s, e),
    };
    let message = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } if !positives.is_empty() => {
            let mut names: Vec<&str> = positives.iter().map(|r| describe(*r)).collect();
            names.sort_unstable();
            names.dedup();
            format!("syntax error: expected {}", names.join(", or "))
        }
        ErrorVariant::ParsingError { .. } => "syntax error: unexpected input".to_string(),
        ErrorVariant::CustomError { message } => message.clone(),
    };
    Diagnostic::error(
        Code::ParseSyntax,
        Span::new(offset + start, offset + end.max(start)),
        message,
    )
    .with_label("here")
    .with_help(
        "statements are `identity NAME from jwt|certificate|anonymous { ... }`, `set NAME = a, b`, or `allow|deny WHO ACTIONS \"topic/template\"`",
    )
}

/// Human names for grammar rules in error messages.
fn describe(expected: Rule) -> &'static str {
    match expected {
        Rule::EOI => "end of file",
        Rule::comment => "a comment",
        Rule::statement | Rule::line | Rule::blank | Rule::comment_line => "a statement",
        Rule::name => "a name",
        Rule::string | Rule::string_body => "a quoted string",
        Rule::identity => "`identity`",
        Rule::identity_kind => "`jwt`, `certificate` or `anonymous`",
        Rule::identity_statement | Rule::identity_line => "an identity statement",
        Rule::client => "`client`",
        Rule::require | Rule::require_eq | Rule::require_is | Rule::require_in => {
            "`require a == b` or `require a is check`"
        }
        Rule::bind => "`attr = source`",
        Rule::extract => "`source as \"template\"`",
        Rule::source | Rule::claim | Rule::field_path => {
            "`claim \"name\"` or a field such as `san.dirname.O`"
        }
        Rule::setting => "a setting",
        Rule::value | Rule::word => "a value",
        Rule::set => "`set`",
        Rule::rule => "`allow` or `deny`",
        Rule::label => "`@id(\"label\")`",
        Rule::assertion => "`assert WHO only \"namespace\", ...`",
        Rule::only | Rule::isolated => "`only` or `isolated by`",
        Rule::effect => "`allow` or `deny`",
        Rule::who | Rule::any => "`any` or an identity name",
        Rule::actions | Rule::action => "an action (connect, publish, retain, subscribe, receive)",
        Rule::policy => "a statement (`identity`, `set`, `allow` or `deny`) or a comment",
        Rule::nl => "end of line",
        Rule::WHITESPACE => "a space",
        Rule::kw_identity => "`identity`",
        Rule::kw_from => "`from`",
        Rule::kw_client => "`client`",
        Rule::kw_require => "`require`",
        Rule::kw_is | Rule::kw_in => "`is` or `in`",
        Rule::kw_as => "`as`",
        Rule::kw_claim => "`claim`",
        Rule::kw_set => "`set`",
        Rule::kw_assert => "`assert`",
        Rule::kw_by => "`by`",
        Rule::word_char => "a letter, digit, `_` or `-`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A label is written `@id("...")` right before its rule, on the rule's line; it is part
    /// of the rule (not a statement of its own), and `fmt` keeps it with one space.
    #[test]
    fn a_label_belongs_to_the_rule_on_its_line() {
        let source = Source::new(
            "p",
            "identity d from anonymous {\n    client \"dev\"\n}\n@id(\"x\")  allow d connect\n",
        );
        let ast = parse(&source).expect("parses");
        let rule = ast
            .items
            .iter()
            .find_map(|item| match item {
                crate::ast::Item::Rule(rule) => Some(rule),
                _ => None,
            })
            .expect("one rule");
        let label = rule.label.as_ref().expect("labelled");
        assert_eq!(label.text, "x");
        assert_eq!(source.slice(label.span), "@id(\"x\")");
        assert!(crate::fmt::format(&ast).ends_with("@id(\"x\") allow d connect\n"));
        // The rule-by-rule loader finds the labelled rule as a rule, not as a declaration.
        let split = split(&source);
        assert_eq!(split.rule_chunks.len(), 1);
        assert!(split.errors.is_empty());
    }

    /// A line starting with a label goes to the rule-by-rule loader unparsed, like one
    /// starting with `allow` or `deny`; its errors are the whole-file parser's.
    #[test]
    fn a_labelled_line_is_split_off_as_a_rule_with_the_same_errors() {
        for text in [
            "@id(\"x\") allow any connect\n",
            "@id(\"x\") allwo any connect\n",
            "@id(x) allow any connect\n",
            "@id(\"a b\")deny any publish \"a/{b\"\n",
        ] {
            let source = Source::new("p", text);
            let split = split(&source);
            assert_eq!(split.rule_chunks, [(0, text.len())], "{text}");
            assert!(split.errors.is_empty(), "{text}");
            let mut rules = Vec::new();
            let by_rule = parse_rules(&source, split.rule_chunks[0], |r| rules.push(r.clone()));
            match parse(&source) {
                Ok(policy) => {
                    assert!(by_rule.is_ok(), "{text}");
                    let whole: Vec<&ast::Rule> = policy
                        .items
                        .iter()
                        .filter_map(|i| match i {
                            ast::Item::Rule(r) => Some(r),
                            _ => None,
                        })
                        .collect();
                    assert_eq!(whole, rules.iter().collect::<Vec<_>>(), "{text}");
                }
                Err(whole) => assert_eq!(by_rule, Err(whole.items), "{text}"),
            }
        }
    }

    #[test]
    fn several_errors_in_one_run() {
        let src = Source::new(
            "p",
            "allow mobile publsh \"a\"\nset = x\nallow any publish \"a/{pid\"\n",
        );
        let errs = parse(&src).unwrap_err();
        assert_eq!(errs.items.len(), 3, "{}", errs.render_short());
        let lines: Vec<u32> = errs.items.iter().map(|d| errs.loc(d).line).collect();
        assert_eq!(lines, [1, 2, 3]);
    }

    #[test]
    fn a_missing_closing_quote_points_at_the_end_of_its_line() {
        let text = "allow any connect\nallow any publish \"a/b\r\nallow any publish \"a/c\"\n";
        let errs = parse(&Source::new("p", text)).unwrap_err();
        assert_eq!(errs.items.len(), 1, "{}", errs.render_short());
        let d = &errs.items[0];
        assert_eq!(d.code, Code::ParseUnterminatedString);
        let end = text.find("a/b").unwrap() + 3;
        assert_eq!((d.span.start, d.span.end), (end, end));
        assert_eq!(errs.loc(d).to_string(), "p:2:23");
        // A `"` inside a comment opens nothing; a closed string is not reported.
        assert!(parse(&Source::new("p", "allow any connect # say \"hi\n")).is_ok());
        let in_block = "identity m from jwt {\n  client \"x\n}\n";
        let errs = parse(&Source::new("p", in_block)).unwrap_err();
        assert_eq!(errs.items[0].code, Code::ParseUnterminatedString);
    }

    #[test]
    fn crlf_bom_and_missing_final_newline_parse_the_same() {
        let lf = "set s = a, b\nallow any publish \"x/{v in s}\"\n";
        let other = "\u{FEFF}set s = a, b\r\nallow any publish \"x/{v in s}\"";
        let a = parse(&Source::new("a", lf)).unwrap();
        let b = parse(&Source::new("b", other)).unwrap();
        assert_eq!(a.items.len(), b.items.len());
        assert_eq!(crate::fmt::format(&a), crate::fmt::format(&b));
    }

    /// `denyadmin` is one word: neither the whole-file parser nor the rule-by-rule split
    /// reads it as `deny admin`, and neither drops the line without an error.
    #[test]
    fn an_effect_glued_to_a_name_is_an_error_in_both_parsers() {
        for text in [
            "denyadmin publish \"#\"\n",
            "allowadmin connect\n",
            "deny-x connect\n",
        ] {
            let src = Source::new("p", text);
            let whole = parse(&src).expect_err(text);
            assert_eq!(whole.items.len(), 1, "{text}: {}", whole.render_short());
            let split = split(&src);
            assert!(split.rule_chunks.is_empty(), "{text}");
            assert_eq!(split.errors.len(), 1, "{text}");
            assert_eq!(split.errors[0].span, whole.items[0].span, "{text}");
        }
        let spaced = parse(&Source::new("p", "deny\tadmin publish \"#\"\n")).unwrap();
        assert!(matches!(&spaced.items[..], [ast::Item::Rule(_)]));
    }
}
