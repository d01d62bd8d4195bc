//! Policy text → [`ast::Policy`], collecting every syntax error.
//!
//! The grammar lives in `grammar/policy.pest`. To report several errors in one run, the
//! file is cut into top-level chunks (one statement, or one identity block up to its
//! closing `}`), and each chunk is parsed on its own: an error in one chunk does not hide
//! errors in the next. Template strings are parsed by [`template`]. This module never
//! resolves names or judges meaning.

mod lower;
pub mod template;

use crate::ast;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::{Source, Span};
use pest::Parser as _;

/// The pest parser generated from `grammar/policy.pest`.
#[derive(pest_derive::Parser)]
#[grammar = "../grammar/policy.pest"]
pub struct PolicyParser;

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
            Some(_) if word == "identity" || word == "allow" || word == "deny" || word == "set" => {
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
    let mut pairs =
        PolicyParser::parse(Rule::policy, chunk).map_err(|e| vec![pest_error(e, offset)])?;
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
        "parse::syntax",
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
        Rule::require | Rule::require_eq | Rule::require_is => {
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
        Rule::effect => "`allow` or `deny`",
        Rule::who | Rule::any => "`any` or an identity name",
        Rule::actions | Rule::action => "an action (connect, publish, retain, subscribe, receive)",
        Rule::policy => "a policy",
        Rule::nl => "end of line",
        Rule::WHITESPACE => "a space",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn crlf_bom_and_missing_final_newline_parse_the_same() {
        let lf = "set s = a, b\nallow any publish \"x/{v in s}\"\n";
        let other = "\u{FEFF}set s = a, b\r\nallow any publish \"x/{v in s}\"";
        let a = parse(&Source::new("a", lf)).unwrap();
        let b = parse(&Source::new("b", other)).unwrap();
        assert_eq!(a.items.len(), b.items.len());
        assert_eq!(crate::fmt::format(&a), crate::fmt::format(&b));
    }
}
