//! Canonical formatting of a policy (`topicguard fmt`).
//!
//! Prints an [`ast::Policy`] back as text in one canonical layout: single spaces between
//! words, `, ` between list items, four-space indentation inside identity blocks, one blank
//! line at most between statements, comments kept where they were. Formatting is idempotent
//! and `parse(format(ast))` gives back the same AST (spans aside). It never changes meaning.

use crate::ast::*;
use std::fmt::Write as _;

/// Formats a whole policy.
pub fn format(policy: &Policy) -> String {
    let mut out = String::new();
    for item in &policy.items {
        match item {
            Item::Blank => out.push('\n'),
            Item::Comment(c) => {
                out.push_str(&c.text);
                out.push('\n');
            }
            Item::Identity(identity) => format_identity(&mut out, identity),
            Item::Set(set) => {
                let values: Vec<String> = set.values.iter().map(format_value).collect();
                let _ = write!(out, "set {} = {}", set.name.text, values.join(", "));
                end_line(&mut out, &set.trailing);
            }
            Item::Rule(rule) => {
                out.push_str(&format_rule(rule));
                end_line(&mut out, &rule.trailing);
            }
            Item::Assert(assertion) => {
                out.push_str(&format_assertion(assertion));
                end_line(&mut out, &assertion.trailing);
            }
        }
    }
    out
}

/// One assertion on one line, without its trailing comment.
pub fn format_assertion(assertion: &Assertion) -> String {
    let namespaces: Vec<String> = assertion
        .namespaces
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect();
    let who = format_who(&assertion.who);
    if assertion.isolated_by.is_empty() {
        format!("assert {who} only {}", namespaces.join(", "))
    } else {
        let names: Vec<&str> = assertion
            .isolated_by
            .iter()
            .map(|n| n.text.as_str())
            .collect();
        format!("assert {who} isolated by {}", names.join(", "))
    }
}

fn format_who(who: &Who) -> String {
    match who {
        Who::Any(_) => "any".to_string(),
        Who::Identities(names) => names
            .iter()
            .map(|n| n.text.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// One rule on one line, without its trailing comment.
pub fn format_rule(rule: &Rule) -> String {
    let who = format_who(&rule.who);
    let actions: Vec<&str> = rule.actions.iter().map(|(a, _)| a.as_str()).collect();
    let mut line = match &rule.label {
        Some(label) => format!("@id(\"{}\") ", label.text),
        None => String::new(),
    };
    let _ = write!(line, "{} {} {}", rule.effect, who, actions.join(", "));
    if let Some(t) = &rule.template {
        let _ = write!(line, " \"{t}\"");
    }
    line
}

fn end_line(out: &mut String, trailing: &Option<Comment>) {
    if let Some(c) = trailing {
        out.push_str("  ");
        out.push_str(&c.text);
    }
    out.push('\n');
}

fn format_value(value: &Value) -> String {
    if value.quoted {
        format!("\"{}\"", value.text)
    } else {
        value.text.clone()
    }
}

fn format_source(source: &AttrSource) -> String {
    match source {
        AttrSource::Claim { name, .. } => format!("claim \"{name}\""),
        AttrSource::Field { path, .. } => path.clone(),
    }
}

fn format_identity(out: &mut String, identity: &Identity) {
    let _ = write!(
        out,
        "identity {} from {} {{",
        identity.name.text, identity.kind
    );
    end_line(out, &identity.open_comment);
    for line in &identity.lines {
        match line {
            IdentityLine::Blank => out.push('\n'),
            IdentityLine::Comment(c) => {
                let _ = writeln!(out, "    {}", c.text);
            }
            IdentityLine::Statement {
                statement,
                trailing,
            } => {
                out.push_str("    ");
                out.push_str(&format_statement(statement));
                end_line(out, trailing);
            }
        }
    }
    out.push('}');
    end_line(out, &identity.trailing);
}

fn format_statement(statement: &IdentityStatement) -> String {
    match statement {
        IdentityStatement::Client(t) => format!("client \"{t}\""),
        IdentityStatement::RequireEq { left, right, .. } => {
            format!("require {} == {}", left.text, right.text)
        }
        IdentityStatement::RequireIs { attr, check, .. } => {
            format!("require {} is {}", attr.text, check.text)
        }
        IdentityStatement::RequireIn { attr, set, .. } => {
            format!("require {} in {}", attr.text, set.text)
        }
        IdentityStatement::Bind { attr, source, .. } => {
            format!("{} = {}", attr.text, format_source(source))
        }
        IdentityStatement::Extract {
            source, template, ..
        } => format!("{} as \"{template}\"", format_source(source)),
        IdentityStatement::Setting { key, values, .. } => {
            let values: Vec<String> = values.iter().map(format_value).collect();
            format!("{} {}", key.text, values.join(", "))
        }
    }
}
