//! pest pairs → AST nodes, with spans shifted to file offsets.

use super::Rule;
use super::template::{TemplateKind, parse_template};
use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use pest::iterators::Pair;

type Errors = Vec<Diagnostic>;

fn span(pair: &Pair<Rule>, offset: usize) -> Span {
    let s = pair.as_span();
    Span::new(offset + s.start(), offset + s.end())
}

fn name(pair: Pair<Rule>, offset: usize) -> Name {
    Name {
        span: span(&pair, offset),
        text: pair.as_str().to_string(),
    }
}

fn comment(pair: Pair<Rule>, offset: usize) -> Comment {
    Comment {
        span: span(&pair, offset),
        text: pair.as_str().trim_end().to_string(),
    }
}

/// The items of a `policy` pair.
pub(crate) fn items(policy: Pair<Rule>, offset: usize, errors: &mut Errors) -> Vec<Item> {
    let mut out = Vec::new();
    for pair in policy.into_inner() {
        match pair.as_rule() {
            Rule::blank => out.push(Item::Blank),
            Rule::comment_line => {
                let inner = pair
                    .into_inner()
                    .next()
                    .expect("comment_line holds a comment");
                out.push(Item::Comment(comment(inner, offset)));
            }
            Rule::statement => out.push(statement(pair, offset, errors)),
            _ => {}
        }
    }
    out
}

fn statement(pair: Pair<Rule>, offset: usize, errors: &mut Errors) -> Item {
    let mut inner = pair.into_inner();
    let body = inner.next().expect("statement holds a body");
    let trailing = inner.next().map(|c| comment(c, offset));
    match body.as_rule() {
        Rule::identity => Item::Identity(identity(body, offset, trailing, errors)),
        Rule::set => Item::Set(set(body, offset, trailing)),
        Rule::assertion => Item::Assert(assertion(body, offset, trailing, errors)),
        _ => Item::Rule(rule(body, offset, trailing, errors)),
    }
}

fn identity(
    pair: Pair<Rule>,
    offset: usize,
    trailing: Option<Comment>,
    errors: &mut Errors,
) -> Identity {
    let whole = span(&pair, offset);
    let mut inner = pair.into_inner();
    let name = name(inner.next().expect("identity name"), offset);
    let kind_pair = inner.next().expect("identity kind");
    let kind = match kind_pair.as_str() {
        "jwt" => IdentityKind::Jwt,
        "certificate" => IdentityKind::Certificate,
        _ => IdentityKind::Anonymous,
    };
    let kind_span = span(&kind_pair, offset);
    let mut open_comment = None;
    let mut lines = Vec::new();
    for pair in inner {
        match pair.as_rule() {
            Rule::comment => open_comment = Some(comment(pair, offset)),
            Rule::blank => lines.push(IdentityLine::Blank),
            Rule::comment_line => {
                let c = pair
                    .into_inner()
                    .next()
                    .expect("comment_line holds a comment");
                lines.push(IdentityLine::Comment(comment(c, offset)));
            }
            Rule::identity_statement => lines.push(identity_statement(pair, offset, errors)),
            _ => {}
        }
    }
    Identity {
        name,
        kind,
        kind_span,
        open_comment,
        lines: trim_blanks(lines, |l| matches!(l, IdentityLine::Blank)),
        span: whole,
        trailing,
    }
}

fn identity_statement(pair: Pair<Rule>, offset: usize, errors: &mut Errors) -> IdentityLine {
    let mut inner = pair.into_inner();
    let body = inner.next().expect("identity statement body");
    let trailing = inner.next().map(|c| comment(c, offset));
    let whole = span(&body, offset);
    let mut parts = body.clone().into_inner();
    let statement = match body.as_rule() {
        Rule::client => {
            let string = parts.next().expect("client string");
            IdentityStatement::Client(template(string, offset, TemplateKind::ClientId, errors))
        }
        Rule::require => {
            let attr = name(parts.next().expect("require name"), offset);
            let test = parts.next().expect("require test");
            let kind = test.as_rule();
            let other = name(test.into_inner().next().expect("require operand"), offset);
            match kind {
                Rule::require_eq => IdentityStatement::RequireEq {
                    left: attr,
                    right: other,
                    span: whole,
                },
                Rule::require_in => IdentityStatement::RequireIn {
                    attr,
                    set: other,
                    span: whole,
                },
                _ => IdentityStatement::RequireIs {
                    attr,
                    check: other,
                    span: whole,
                },
            }
        }
        Rule::bind => {
            let attr = name(parts.next().expect("bind name"), offset);
            let source = source(parts.next().expect("bind source"), offset);
            IdentityStatement::Bind {
                attr,
                source,
                span: whole,
            }
        }
        Rule::extract => {
            let source = source(parts.next().expect("extract source"), offset);
            let string = parts.next().expect("extract template");
            let template = template(string, offset, TemplateKind::ClientId, errors);
            IdentityStatement::Extract {
                source,
                template,
                span: whole,
            }
        }
        _ => {
            let key = name(parts.next().expect("setting key"), offset);
            let values = parts.map(|v| value(v, offset)).collect();
            IdentityStatement::Setting {
                key,
                values,
                span: whole,
            }
        }
    };
    IdentityLine::Statement {
        statement,
        trailing,
    }
}

fn source(pair: Pair<Rule>, offset: usize) -> AttrSource {
    let inner = pair.into_inner().next().expect("source body");
    let whole = span(&inner, offset);
    match inner.as_rule() {
        Rule::claim => {
            let string = inner.into_inner().next().expect("claim string");
            AttrSource::Claim {
                name: string_body(&string).to_string(),
                span: whole,
            }
        }
        _ => AttrSource::Field {
            path: inner.as_str().to_string(),
            span: whole,
        },
    }
}

fn string_body<'a>(string: &Pair<'a, Rule>) -> &'a str {
    let s = string.as_str();
    &s[1..s.len() - 1]
}

fn value(pair: Pair<Rule>, offset: usize) -> Value {
    let inner = pair.into_inner().next().expect("value body");
    let quoted = inner.as_rule() == Rule::string;
    let text = if quoted {
        string_body(&inner)
    } else {
        inner.as_str()
    };
    Value {
        text: text.to_string(),
        quoted,
        span: span(&inner, offset),
    }
}

fn template(
    string: Pair<Rule>,
    offset: usize,
    kind: TemplateKind,
    errors: &mut Errors,
) -> Template {
    let start = offset + string.as_span().start() + 1;
    parse_template(string_body(&string), start, kind, errors)
}

fn set(pair: Pair<Rule>, offset: usize, trailing: Option<Comment>) -> SetDecl {
    let whole = span(&pair, offset);
    let mut inner = pair.into_inner();
    let name = name(inner.next().expect("set name"), offset);
    SetDecl {
        name,
        values: inner.map(|v| value(v, offset)).collect(),
        span: whole,
        trailing,
    }
}

fn who(pair: Pair<Rule>, offset: usize) -> Who {
    let who_span = span(&pair, offset);
    let names: Vec<Pair<Rule>> = pair.into_inner().collect();
    match names.first().map(Pair::as_rule) {
        Some(Rule::any) | None => Who::Any(who_span),
        _ => Who::Identities(names.into_iter().map(|n| name(n, offset)).collect()),
    }
}

fn assertion(
    pair: Pair<Rule>,
    offset: usize,
    trailing: Option<Comment>,
    errors: &mut Errors,
) -> crate::ast::Assertion {
    let whole = span(&pair, offset);
    let mut inner = pair.into_inner();
    let who = who(inner.next().expect("who"), offset);
    let mut namespaces = Vec::new();
    let mut isolated_by = Vec::new();
    for part in inner {
        match part.as_rule() {
            Rule::string => namespaces.push(template(part, offset, TemplateKind::Topic, errors)),
            Rule::name => isolated_by.push(name(part, offset)),
            _ => {}
        }
    }
    crate::ast::Assertion {
        who,
        namespaces,
        isolated_by,
        span: whole,
        trailing,
    }
}

fn rule(
    pair: Pair<Rule>,
    offset: usize,
    trailing: Option<Comment>,
    errors: &mut Errors,
) -> crate::ast::Rule {
    let whole = span(&pair, offset);
    let mut inner = pair.into_inner().peekable();
    let label = inner.next_if(|p| p.as_rule() == Rule::label).map(|label| {
        let whole = span(&label, offset);
        let string = label.into_inner().next().expect("label string");
        Name {
            text: string_body(&string).to_string(),
            span: whole,
        }
    });
    let effect = match inner.next().expect("effect").as_str() {
        "allow" => Effect::Allow,
        _ => Effect::Deny,
    };
    let who = who(inner.next().expect("who"), offset);
    let actions = inner
        .next()
        .expect("actions")
        .into_inner()
        .map(|a| {
            let action = Action::parse(a.as_str()).expect("grammar only accepts known actions");
            (action, span(&a, offset))
        })
        .collect();
    let template = inner
        .next()
        .map(|s| template(s, offset, TemplateKind::Topic, errors));
    crate::ast::Rule {
        label,
        effect,
        who,
        actions,
        template,
        span: whole,
        trailing,
    }
}

fn trim_blanks<T>(mut items: Vec<T>, is_blank: impl Fn(&T) -> bool) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        let blank = is_blank(&item);
        if blank && (out.is_empty() || out.last().is_some_and(&is_blank)) {
            continue;
        }
        out.push(item);
    }
    while out.last().is_some_and(&is_blank) {
        out.pop();
    }
    out
}

/// Collapses runs of blank lines and drops leading and trailing ones.
pub(crate) fn normalize_blanks(items: Vec<Item>) -> Policy {
    Policy {
        items: trim_blanks(items, |i| matches!(i, Item::Blank)),
    }
}
