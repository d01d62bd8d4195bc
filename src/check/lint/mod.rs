//! Warnings about rules that are legal but almost certainly mistakes.
//!
//! Every lint here is a [`Diagnostic::warning`] with a stable code, pointing at the rule it
//! is about, saying what to do. A lint only warns when it is *sure*: when a question cannot
//! be settled symbolically (an attribute compared with a literal, a pattern level compared
//! with a different pattern), it stays silent. Lints never produce errors, never change the
//! checked model, and never match a real topic.
//!
//! * `lint::shadowed-allow` — an allow rule that can never take effect because one deny rule
//!   applies to all of its identities and all of its actions, and the deny's template
//!   contains the allow's ([`template_contains`]). Deny wins whatever the order, so the deny
//!   may come before or after the allow. Only the denies that the index of literal levels
//!   (`lint/index.rs`) cannot rule out are compared, and the search is bounded (see
//!   [`SHADOW_BUDGET`]): on a huge policy some shadowed allows may go unreported, but
//!   nothing is reported falsely.
//! * `lint::never-matches` — a rule that can match no request at all. The cases proved:
//!   1. the rule applies to no identity (`any` in a policy that defines none);
//!   2. a `publish`, `retain` or `receive` rule whose template starts with `$share/` or
//!      `$queue/` and has at least two levels: those prefixes are shared-subscription filter
//!      syntax (MQTT 5.0 §4.8.2), not topic names; a `$` topic name is reserved to the server
//!      (§4.7.2), so no conforming client publishes (or is delivered) such a topic. The rule
//!      is a misplaced subscription rule. (A `subscribe` rule with such a template is not
//!      reported: the engine strips `$share/<group>/` and the inner filter could itself
//!      start with `$share/`. `$share/#` is not reported either: it also matches `$share`.)
//! * `lint::duplicate-rule` — a rule with the same effect, identities (as a set), actions
//!   and template (capture names aside) as an earlier rule.
//! * `lint::client-id-not-pinned` — an identity whose allow rules scope topics by
//!   credential attributes (`{pid}`, `{aid}`), while its client template leaves one of them
//!   out (and does not name the credential's subject — a JWT's `sub`, a certificate's
//!   subject CN — which its issuer keeps unique): every client of
//!   the identity that differs only in the missing attributes can then connect with the
//!   same client ids (`app-{+dev}`, or `app-{pid}-{+dev}` when topics are scoped by
//!   `{pid}_{aid}`), so another account's client can claim, or be refused as a duplicate
//!   for, an id that belongs to someone else. The fix is to put the attributes that
//!   identify the account in the client template.
//! * [`grants`] — what the policy grants per identity and action: `lint::no-connect`,
//!   `lint::subscribe-without-receive`, `lint::receive-without-subscribe`,
//!   `lint::retain-without-publish`, `lint::subsumed-allow` and `lint::dead-grant` (some
//!   actions of an allow removed by denies, found by the shadowed-allow search).
//! * `lint::unused-set` — a set no template, `require ... in` or `assert` uses (reported by
//!   the [`Checker`](super::Checker), which sees the set references as written).

pub mod grants;
mod index;

use super::{
    ActionSet, Checked, CheckedRule, ClientPiece, IdentityDef, IdentityId, LevelPattern, Piece,
    Require, TopicPattern,
};
use crate::ast::{Action, AttrSource, Effect, IdentityKind};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// At most this many (allow, deny) pairs are compared when looking for shadowed allows.
pub const SHADOW_BUDGET: usize = 1_000_000;

/// A level made of text and finite sets is expanded to its literals only up to this many.
const MAX_EXPANSION: usize = 1024;

/// Warnings for a checked policy: rules that can never match, allow rules wholly shadowed
/// by a deny, duplicate rules.
pub fn lint(checked: &Checked) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for rule in &checked.rules {
        never_matches(rule, &mut out);
    }
    duplicates(checked, &mut out);
    shadowed(checked, &mut out);
    unpinned_clients(checked, &mut out);
    grants::lint(checked, &mut out);
    out
}

// ---------------------------------------------------------------- client-id-not-pinned

fn unpinned_clients(checked: &Checked, out: &mut Vec<Diagnostic>) {
    for (index, def) in checked.identities.iter().enumerate() {
        let identity = IdentityId(index as u16);
        let in_client: Vec<&str> = def
            .client
            .iter()
            .filter_map(|p| match p {
                ClientPiece::Attr(a) => Some(a.as_str()),
                _ => None,
            })
            .collect();
        let captured = |name: &str| {
            def.client
                .iter()
                .any(|p| matches!(p, ClientPiece::Capture(c) if c == name))
        };
        let mut scoping: Vec<&str> = checked
            .rules
            .iter()
            .filter(|r| r.effect == Effect::Allow && r.applies_to(identity))
            .filter_map(|r| r.topic.as_ref())
            .flat_map(|t| &t.levels)
            .filter_map(|level| match level {
                LevelPattern::Pieces(pieces) => Some(pieces.iter()),
                _ => None,
            })
            .flatten()
            .filter_map(|piece| match piece {
                Piece::Attr(a) if a != "client" && !captured(a.as_str()) => Some(a.as_str()),
                _ => None,
            })
            .collect();
        scoping.sort_unstable();
        scoping.dedup();
        let missing: Vec<&str> = scoping
            .iter()
            .copied()
            .filter(|a| !in_client.contains(a))
            .collect();
        if missing.is_empty() || names_the_subject(def, &in_client) {
            continue;
        }
        let names: Vec<String> = missing.iter().map(|a| format!("`{{{a}}}`")).collect();
        let message = if missing.len() == scoping.len() {
            format!(
                "the client template of `{}` names none of the attributes that scope its topics ({})",
                def.name,
                names.join(", ")
            )
        } else {
            format!(
                "the client template of `{}` does not name {} of the attributes that scope its topics",
                def.name,
                names.join(", ")
            )
        };
        out.push(
            Diagnostic::warning(Code::LintClientIdNotPinned, def.client_span, message)
            .with_label("any client of this identity may use these client ids")
            .with_help(format!(
                "a client of another account could connect with the same client id and take over the session; put the attributes that identify the account in the client template (such as {}), so each client id belongs to one account",
                names[0]
            )),
        );
    }
}

/// Whether the client template names the credential's subject, which the credential's
/// issuer keeps unique: a JWT attribute bound from `claim "sub"`, or every attribute a
/// certificate identity takes from `subject.CN` (bound whole or extracted from it). An
/// attribute counts as named when the template names it or one that `require a == b`
/// makes equal to it.
fn names_the_subject(def: &IdentityDef, in_client: &[&str]) -> bool {
    let named = |attr: &str| {
        in_client.contains(&attr)
            || def.requires.iter().any(|require| match require {
                Require::Equal(a, b) => {
                    (a == attr && in_client.contains(&b.as_str()))
                        || (b == attr && in_client.contains(&a.as_str()))
                }
                _ => false,
            })
    };
    let from_subject_cn = |source: &AttrSource| matches!(source, AttrSource::Field { path, .. } if path == "subject.CN");
    let mut subject: Vec<&str> = Vec::new();
    for (attr, source) in &def.binds {
        let is_subject = match source {
            AttrSource::Claim { name, .. } => name == "sub",
            AttrSource::Field { .. } => from_subject_cn(source),
        };
        if is_subject {
            subject.push(attr);
        }
    }
    for (source, pieces) in &def.extracts {
        if from_subject_cn(source) {
            subject.extend(pieces.iter().filter_map(|piece| match piece {
                ClientPiece::Attr(a) => Some(a.as_str()),
                _ => None,
            }));
        }
    }
    if def.kind == IdentityKind::Jwt {
        return subject.iter().any(|a| named(a));
    }
    !subject.is_empty() && subject.iter().all(|a| named(a))
}

// ---------------------------------------------------------------- never-matches

fn never_matches(rule: &CheckedRule, out: &mut Vec<Diagnostic>) {
    if rule.identities.is_empty() {
        out.push(
            Diagnostic::warning(
                Code::LintNeverMatches,
                rule.span,
                "this rule applies to no identity: the policy defines none, so it can never match",
            )
            .with_label("matches nobody")
            .with_help(
                "define the identities clients connect as (`identity NAME from jwt|certificate|anonymous { ... }`), or remove the rule",
            ),
        );
        return;
    }
    let Some(prefix) = rule.topic.as_ref().and_then(shared_prefix) else {
        return;
    };
    let dead: Vec<&str> = [Action::Publish, Action::Retain, Action::Receive]
        .into_iter()
        .filter(|a| rule.actions.contains(*a))
        .map(Action::as_str)
        .collect();
    if dead.is_empty() {
        return;
    }
    out.push(
        Diagnostic::warning(
            Code::LintNeverMatches,
            rule.span,
            format!(
                "no topic name starts with `{prefix}/`, so this rule never matches {}",
                dead.join(", ")
            ),
        )
        .with_label(format!("`{prefix}/` is only a subscription-filter prefix"))
        .with_help(
            "write the topic itself (e.g. `sensors/#`); a `$share/<group>/` subscription is judged on the filter after the group",
        ),
    );
}

/// `$share` or `$queue` when the template is that prefix followed by more levels.
fn shared_prefix(topic: &TopicPattern) -> Option<&'static str> {
    if topic.levels.len() < 2 {
        return None;
    }
    match &topic.levels[0] {
        LevelPattern::Literal(t) if t == "$share" => Some("$share"),
        LevelPattern::Literal(t) if t == "$queue" => Some("$queue"),
        _ => None,
    }
}

// ---------------------------------------------------------------- duplicate-rule

/// A rule's identities as a set: sorted, without repeats (no allocation for up to eight).
fn identity_set(rule: &CheckedRule) -> SmallVec<[u16; 8]> {
    let mut ids: SmallVec<[u16; 8]> = rule.identities.iter().map(|i| i.0).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A hash of what makes two rules the same (effect, identities as a set, actions, template
/// without capture names), computed in place: no copy of the template is made.
fn rule_hash(rule: &CheckedRule) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    rule.effect.hash(&mut hasher);
    identity_set(rule).hash(&mut hasher);
    rule.actions.0.hash(&mut hasher);
    match &rule.topic {
        None => 0u8.hash(&mut hasher),
        Some(topic) => {
            1u8.hash(&mut hasher);
            topic.hash.hash(&mut hasher);
            topic.levels.len().hash(&mut hasher);
            for level in topic.levels.iter() {
                hash_level(level, &mut hasher);
            }
        }
    }
    hasher.finish()
}

/// Hashes a level as [`same_level`] compares it: capture names left out.
fn hash_level(level: &LevelPattern, hasher: &mut impl Hasher) {
    match level {
        LevelPattern::Any { .. } => 0u8.hash(hasher),
        LevelPattern::Literal(text) => {
            1u8.hash(hasher);
            text.as_str().hash(hasher);
        }
        LevelPattern::Pieces(pieces) => {
            2u8.hash(hasher);
            pieces.len().hash(hasher);
            for piece in pieces.iter() {
                match piece {
                    Piece::Text(text) => (0u8, text.as_str()).hash(hasher),
                    Piece::Attr(name) => (1u8, name.as_str()).hash(hasher),
                    Piece::Capture(_) => 2u8.hash(hasher),
                    Piece::OneOf { values, .. } => (3u8, &values[..]).hash(hasher),
                }
            }
        }
    }
}

/// True when two rules have the same effect, identities (as a set), actions and template
/// (capture names aside): the full comparison behind a hash match.
fn same_rule(a: &CheckedRule, b: &CheckedRule) -> bool {
    a.effect == b.effect
        && a.actions == b.actions
        && identity_set(a) == identity_set(b)
        && match (&a.topic, &b.topic) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                x.hash == y.hash
                    && x.levels.len() == y.levels.len()
                    && x.levels
                        .iter()
                        .zip(y.levels.iter())
                        .all(|(l, m)| same_level(l, m))
            }
            _ => false,
        }
}

/// True when two levels match the same texts by their form: equal but for capture names.
fn same_level(a: &LevelPattern, b: &LevelPattern) -> bool {
    match (a, b) {
        (LevelPattern::Any { .. }, LevelPattern::Any { .. }) => true,
        (LevelPattern::Literal(x), LevelPattern::Literal(y)) => x == y,
        (LevelPattern::Pieces(x), LevelPattern::Pieces(y)) => {
            Arc::ptr_eq(x, y)
                || (x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same_piece(p, q)))
        }
        _ => false,
    }
}

fn same_piece(a: &Piece, b: &Piece) -> bool {
    match (a, b) {
        (Piece::Text(x), Piece::Text(y)) | (Piece::Attr(x), Piece::Attr(y)) => x == y,
        (Piece::Capture(_), Piece::Capture(_)) => true,
        (Piece::OneOf { values: x, .. }, Piece::OneOf { values: y, .. }) => x == y,
        _ => false,
    }
}

fn duplicates(checked: &Checked, out: &mut Vec<Diagnostic>) {
    duplicates_by(checked, rule_hash, out);
}

/// The duplicate-rule lint with the rule hash given (tests give a colliding one).
fn duplicates_by(checked: &Checked, hash: fn(&CheckedRule) -> u64, out: &mut Vec<Diagnostic>) {
    // Keyed by a hash computed in place, not the key itself: holding (or even building) a
    // copy of every template would double the memory and the allocations a large policy
    // needs. Rules with the same hash are compared in full.
    let mut seen: FxHashMap<u64, SmallVec<[usize; 1]>> = FxHashMap::default();
    seen.reserve(checked.rules.len());
    for (index, rule) in checked.rules.iter().enumerate() {
        let same_hash = seen.entry(hash(rule)).or_default();
        let first = same_hash
            .iter()
            .map(|i| &checked.rules[*i])
            .find(|earlier| same_rule(earlier, rule));
        let Some(earlier) = first else {
            same_hash.push(index);
            continue;
        };
        out.push(
            Diagnostic::warning(
                Code::LintDuplicateRule,
                rule.span,
                format!("this rule repeats the rule at {}", earlier.loc),
            )
            .with_label("duplicate rule")
            .with_help(format!(
                "delete this line: `{}` already has the same effect, identities, actions and template",
                earlier.text()
            )),
        );
    }
}

// ---------------------------------------------------------------- shadowed-allow

/// The denies of a policy: connect-only ones, and the others indexed by template, so an
/// allow is compared only with the denies that could contain it.
struct DenyIndex<'a> {
    connect: Vec<&'a CheckedRule>,
    topics: index::TemplateIndex<'a>,
    rules: &'a [CheckedRule],
}

impl<'a> DenyIndex<'a> {
    fn new(checked: &'a Checked) -> DenyIndex<'a> {
        let mut index = DenyIndex {
            connect: Vec::new(),
            topics: index::TemplateIndex::default(),
            rules: &checked.rules,
        };
        let denies = checked.rules.iter().filter(|r| r.effect == Effect::Deny);
        for deny in denies.filter(|r| !r.identities.is_empty()) {
            match &deny.topic {
                None => index.connect.push(deny),
                Some(topic) => index.topics.insert(topic, deny.id.0),
            }
        }
        index
    }

    /// The denies that may contain the allow: those with fewer leading literal levels
    /// first, in file order within each count (the order warnings cite them in).
    fn candidates(&self, allow: &CheckedRule) -> Vec<&'a CheckedRule> {
        let Some(topic) = &allow.topic else {
            return self.connect.clone();
        };
        let mut denies: Vec<&'a CheckedRule> = self
            .topics
            .may_contain(topic)
            .into_iter()
            .map(|id| &self.rules[id as usize])
            .collect();
        denies.sort_by_key(|deny| leading_literals(deny));
        denies
    }
}

/// How many levels a rule's template starts with that are plain literals.
fn leading_literals(rule: &CheckedRule) -> usize {
    rule.topic.as_ref().map_or(0, |topic| {
        topic
            .levels
            .iter()
            .take_while(|level| matches!(level, LevelPattern::Literal(_)))
            .count()
    })
}

fn shadowed(checked: &Checked, out: &mut Vec<Diagnostic>) {
    let index = DenyIndex::new(checked);
    let mut budget = SHADOW_BUDGET;
    let allows = checked.rules.iter().filter(|r| r.effect == Effect::Allow);
    for allow in allows.filter(|r| !r.identities.is_empty()) {
        let mut dead = ActionSet::default();
        let mut killers: Vec<&CheckedRule> = Vec::new();
        let mut shadowed = false;
        for deny in index.candidates(allow) {
            if budget == 0 {
                return;
            }
            budget -= 1;
            if deny_covers(deny, allow) {
                out.push(shadow_warning(allow.span, deny));
                shadowed = true;
                break;
            }
            let removed = ActionSet(allow.actions.0 & deny.actions.0);
            if removed.0 != 0 && deny_covers_topics(deny, allow) {
                dead = dead.union(removed);
                killers.push(deny);
            }
        }
        if !shadowed && dead.0 != 0 {
            out.push(grants::dead_grant(allow, dead, &killers));
        }
    }
}

/// True when `deny` applies to every identity of `allow` and its template contains the
/// allow's (whatever their actions).
fn deny_covers_topics(deny: &CheckedRule, allow: &CheckedRule) -> bool {
    allow.identities.iter().all(|i| deny.identities.contains(i))
        && match (&deny.topic, &allow.topic) {
            (None, None) => true,
            (Some(outer), Some(inner)) => template_contains(outer, inner),
            _ => false,
        }
}

fn shadow_warning(span: Span, deny: &CheckedRule) -> Diagnostic {
    Diagnostic::warning(
        Code::LintShadowedAllow,
        span,
        format!(
            "this allow never takes effect: the deny at {} covers every identity, action and topic it allows",
            deny.loc
        ),
    )
    .with_label("shadowed by a deny")
    .with_help(format!(
        "deny always wins, whatever the order: remove this allow, or narrow `{}` if this access should be granted",
        deny.text()
    ))
}

/// True when `deny` applies to every identity and action of `allow`, and its template
/// contains the allow's.
fn deny_covers(deny: &CheckedRule, allow: &CheckedRule) -> bool {
    allow.actions.0 & !deny.actions.0 == 0
        && allow.identities.iter().all(|i| deny.identities.contains(i))
        && match (&deny.topic, &allow.topic) {
            (None, None) => true,
            (Some(outer), Some(inner)) => template_contains(outer, inner),
            _ => false,
        }
}

// ---------------------------------------------------------------- containment

/// True when every topic `inner` matches is also matched by `outer`, for any one session.
///
/// Decided symbolically, level by level; `false` means "not proved", not "proved not".
/// Attributes are opaque symbols (`{pid}` contains only `{pid}`); `+` contains any single
/// level; a trailing `#` in `outer` contains everything from its position on, including
/// no further level; a finite level (literal, `{a|b}`, `{x in set}`, text around them) is
/// contained when each of its literals is; any level contains an identical level. A
/// leading `+` or `#` never reaches a topic starting with `$`, so it does not contain a
/// first level that may start with `$`.
pub fn template_contains(outer: &TopicPattern, inner: &TopicPattern) -> bool {
    if outer.levels.is_empty() && outer.hash {
        return !inner.levels.first().is_some_and(may_start_with_dollar);
    }
    let levels_contained = outer
        .levels
        .iter()
        .zip(&inner.levels)
        .enumerate()
        .all(|(at, (o, i))| level_contains(o, i, at == 0));
    if !levels_contained {
        return false;
    }
    match outer.levels.len().cmp(&inner.levels.len()) {
        std::cmp::Ordering::Less => outer.hash,
        std::cmp::Ordering::Equal => outer.hash || !inner.hash,
        std::cmp::Ordering::Greater => false,
    }
}

/// One level: does `outer` match every value `inner` can match? `first`: this is the
/// topic's first level, where a wildcard never matches a value starting with `$`.
fn level_contains(outer: &LevelPattern, inner: &LevelPattern, first: bool) -> bool {
    match (outer, inner) {
        (LevelPattern::Literal(o), LevelPattern::Literal(i)) => return o == i,
        (LevelPattern::Any { .. }, _) => return !(first && may_start_with_dollar(inner)),
        (LevelPattern::Pieces(o), LevelPattern::Pieces(i)) if same_pieces(o, i) => return true,
        _ => {}
    }
    finite_literals(inner)
        .is_some_and(|literals| literals.iter().all(|l| matches_literal(outer, l, first)))
}

/// The same pieces, capture names aside.
fn same_pieces(outer: &[Piece], inner: &[Piece]) -> bool {
    outer.len() == inner.len()
        && outer.iter().zip(inner).all(|pair| match pair {
            (Piece::Text(a), Piece::Text(b)) | (Piece::Attr(a), Piece::Attr(b)) => a == b,
            (Piece::Capture(_), Piece::Capture(_)) => true,
            (Piece::OneOf { values: a, .. }, Piece::OneOf { values: b, .. }) => a == b,
            _ => false,
        })
}

/// Does `outer` match the literal level `value`? Only answered without attributes.
fn matches_literal(outer: &LevelPattern, value: &str, first: bool) -> bool {
    let first_dollar = first && value.starts_with('$');
    match outer {
        LevelPattern::Any { .. } => !first_dollar,
        LevelPattern::Literal(text) => text == value,
        LevelPattern::Pieces(pieces) if pieces.iter().any(|p| matches!(p, Piece::Attr(_))) => false,
        LevelPattern::Pieces(_) => super::matches::match_level(
            outer,
            value,
            first_dollar,
            &BTreeMap::new(),
            &mut Vec::new(),
        ),
    }
}

/// Every value a level can match, when that is a small finite set of literals.
fn finite_literals(level: &LevelPattern) -> Option<Vec<String>> {
    let pieces = match level {
        LevelPattern::Literal(text) => return Some(vec![text.to_string()]),
        LevelPattern::Any { .. } => return None,
        LevelPattern::Pieces(pieces) => pieces,
    };
    let mut literals = vec![String::new()];
    for piece in pieces.iter() {
        let choices: Vec<&str> = match piece {
            Piece::Text(text) => vec![text.as_str()],
            Piece::OneOf { values, .. } => values.iter().map(String::as_str).collect(),
            Piece::Attr(_) | Piece::Capture(_) => return None,
        };
        if literals.len() * choices.len() > MAX_EXPANSION {
            return None;
        }
        // Plain concatenation: `format!` costs several times as much, once per literal.
        let mut longer = Vec::with_capacity(literals.len() * choices.len());
        for prefix in &literals {
            for choice in &choices {
                let mut literal = String::with_capacity(prefix.len() + choice.len());
                literal.push_str(prefix);
                literal.push_str(choice);
                longer.push(literal);
            }
        }
        literals = longer;
    }
    Some(literals)
}

/// Can this level, as a topic's first level, match a value starting with `$`? `true`
/// when unsure. Attribute values and client ids never start with `$` (the value grammars
/// reject it), and a first level that starts with a capture never matches a `$` level.
fn may_start_with_dollar(level: &LevelPattern) -> bool {
    match level {
        LevelPattern::Any { .. } => false,
        LevelPattern::Literal(text) => text.starts_with('$'),
        LevelPattern::Pieces(pieces) => match pieces.first() {
            Some(Piece::Attr(_) | Piece::Capture(_)) => false,
            Some(Piece::Text(text)) if !text.is_empty() => text.starts_with('$'),
            _ => finite_literals(level).is_none_or(|l| l.iter().any(|v| v.starts_with('$'))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;

    /// The checked topic of `allow any publish "<template>"` in a policy with one identity.
    fn topic(template: &str) -> TopicPattern {
        let text = format!(
            "identity u from jwt {{\n    pid = claim \"pid\"\n    client \"c-{{pid}}\"\n}}\nset s = a, b, $x\nset t = a, b, c\nallow u publish \"{template}\"\n"
        );
        let source = Source::new("t", text);
        let ast = crate::parse::parse(&source).unwrap_or_else(|e| panic!("{e}"));
        let out = crate::check::check(&source, &ast).unwrap_or_else(|e| panic!("{e}"));
        out.checked.rules[0].topic.clone().expect("a topic rule")
    }

    /// The lines the duplicate-rule lint reports in `rules` (after one identity `u`, one
    /// identity `v` and two sets, from line 13 on), with the rule hash given.
    fn duplicate_lines(rules: &str, hash: fn(&CheckedRule) -> u64) -> Vec<usize> {
        let text = format!(
            "identity u from jwt {{\n    trust \"a\"\n    pid = claim \"pid\"\n    client \"c-{{pid}}\"\n}}\nidentity v from jwt {{\n    trust \"b\"\n    pid = claim \"pid\"\n    client \"d-{{pid}}\"\n}}\nset s = a, b\nset t = a, c\n{rules}"
        );
        let source = Source::new("t", text);
        let ast = crate::parse::parse(&source).unwrap_or_else(|e| panic!("{e}"));
        let out = crate::check::check(&source, &ast).unwrap_or_else(|e| panic!("{e}"));
        let mut found = Vec::new();
        duplicates_by(&out.checked, hash, &mut found);
        found
            .iter()
            .map(|d| d.span.start)
            .map(|at| source.text()[..at].lines().count() + 1)
            .collect()
    }

    /// Rules that differ in one thing each, and the duplicates among them (names aside).
    const NEAR_DUPLICATES: &str = "allow u publish \"a/{+x}/b\"
allow u publish \"a/{+y}/b\"
allow u subscribe \"a/{+x}/b\"
deny u publish \"a/{+x}/b\"
allow v publish \"a/{+x}/b\"
allow u, v publish \"a/+/b\"
allow v, u, v publish \"a/{+z}/b\"
allow u publish \"a/+/b/#\"
allow u publish \"a/+/c\"
allow u publish \"a/{pid}_{+r}\"
allow u publish \"a/{pid}_{+q}\"
allow u publish \"a/{pid}-{+q}\"
allow u publish \"a/{v in s}\"
allow u publish \"a/{w in t}\"
allow u publish \"a/{a|b}\"
allow u connect
allow u connect
allow u publish \"a\"
";

    #[test]
    fn duplicates_are_rules_equal_but_for_capture_names() {
        assert_eq!(
            duplicate_lines(NEAR_DUPLICATES, rule_hash),
            [14, 19, 23, 27, 29]
        );
    }

    #[test]
    fn a_hash_collision_is_never_a_duplicate() {
        // Every rule hashes alike: only the full comparison tells them apart.
        assert_eq!(
            duplicate_lines(NEAR_DUPLICATES, |_| 0),
            duplicate_lines(NEAR_DUPLICATES, rule_hash)
        );
        assert!(
            duplicate_lines("allow u publish \"a\"\nallow u publish \"b\"\n", |_| 7).is_empty()
        );
    }

    fn contains(outer: &str, inner: &str) -> bool {
        template_contains(&topic(outer), &topic(inner))
    }

    #[test]
    fn identical_templates_contain_each_other() {
        for t in [
            "a/b",
            "a/+/c",
            "a/#",
            "#",
            "{pid}/x",
            "a/{pid}_{+r}",
            "a/{v in s}",
            "$SYS/x",
        ] {
            assert!(contains(t, t), "{t}");
        }
    }

    #[test]
    fn wildcards_contain_single_levels_and_tails() {
        assert!(contains("a/+", "a/b"));
        assert!(contains("a/+", "a/{pid}"));
        assert!(contains("a/+", "a/{+rid}"));
        assert!(contains("+/+", "{pid}/{v in t}"));
        assert!(contains("a/#", "a"));
        assert!(contains("a/#", "a/b/c/d"));
        assert!(contains("a/#", "a/+/#"));
        assert!(contains("#", "a/b/#"));
        assert!(contains("#", "{pid}/b"));
    }

    #[test]
    fn finite_levels_contain_literals_and_subsets() {
        assert!(contains("a/{x|y|z}", "a/y"));
        assert!(!contains("a/{v in t}", "a/{x in s}"));
        assert!(contains("a/{v in t}", "a/{a|b}"));
        assert!(contains("a/{a|b|c|d}", "a/{v in t}"));
        assert!(contains("a/{+r}_x", "a/foo_x"));
        assert!(contains("a/x{a|b}", "a/xa"));
        assert!(contains("a/b", "a/{b|b}"));
    }

    #[test]
    fn not_contained_when_unsure_or_wrong() {
        assert!(!contains("a/b", "a/+"));
        assert!(!contains("a/b", "a/c"));
        assert!(!contains("a/{x|y}", "a/{v in t}"));
        assert!(!contains("a/{pid}", "a/P1"));
        assert!(!contains("a/{pid}", "a/+"));
        assert!(!contains("{pid}_x/b", "{pid}_y/b"));
        assert!(!contains("a/+", "a/b/c"));
        assert!(!contains("a/+", "a/#"));
        assert!(!contains("a/+/#", "a/#"));
        assert!(!contains("a/b/#", "a"));
        assert!(!contains("a", "a/#"));
        assert!(!contains("a/{+r}_x", "a/foo_y"));
    }

    #[test]
    fn leading_wildcards_never_contain_dollar_topics() {
        assert!(!contains("#", "$SYS/x"));
        assert!(!contains("+/#", "$SYS/x"));
        assert!(!contains("+/x", "$SYS/x"));
        assert!(!contains("+/x", "{v in s}/x"));
        assert!(!contains("#", "{v in s}/x"));
        assert!(!contains("{+r}/x", "$SYS/x"));
        assert!(contains("$SYS/#", "$SYS/x"));
        assert!(contains("+/x", "{v in t}/x"));
        assert!(contains("#", "#"));
        assert!(contains("x/+", "x/$SYS"));
    }

    /// Soundness against the reference matcher: whenever containment is claimed, every
    /// topic (of a pool mixing literals, attribute values and `$` levels) that the inner
    /// template matches is matched by the outer one too.
    #[test]
    fn claimed_containment_holds_on_sampled_topics() {
        let sample = samples::Sample::new(0x9E37_79B9_7F4A_7C15, 150);
        let patterns = sample.patterns();
        let mut claimed = 0;
        for outer in &patterns {
            for inner in &patterns {
                if !template_contains(outer, inner) {
                    continue;
                }
                claimed += 1;
                for topic in sample.topics.iter().filter(|t| sample.matches(inner, t)) {
                    assert!(
                        sample.matches(outer, topic),
                        "{outer:?} claimed to contain {inner:?}, but not {topic}"
                    );
                }
            }
        }
        assert!(claimed > 1000, "too few containments exercised: {claimed}");
    }
}

/// Random templates and topics for the soundness tests of the template relations
/// (containment here, overlap in `grants`).
#[cfg(test)]
pub(super) mod samples {
    use crate::check::{Checked, TopicPattern};
    use crate::source::Source;
    use std::collections::BTreeMap;

    /// Level shapes the templates are built from.
    const LEVELS: &[&str] = &[
        "a", "b", "$x", "+", "{pid}", "{+r}", "{+r}_x", "{v in s}", "{a|b}", "x{a|b}", "{pid}_x",
        "",
    ];
    /// Levels the topics are built from: literals, attribute values, `$` levels.
    const TOPIC_LEVELS: &[&str] = &[
        "a", "b", "$x", "P1", "P1_x", "foo_x", "_x", "xa", "xb", "", "c",
    ];

    /// A checked policy of random allow rules for identity `u` (`pid` = `P1`), and 400
    /// random topics.
    pub(in crate::check::lint) struct Sample {
        checked: Checked,
        /// The topics to test the claimed relations on.
        pub(in crate::check::lint) topics: Vec<String>,
        attrs: BTreeMap<String, String>,
    }

    impl Sample {
        /// `rules` random rules and 400 random topics from the xorshift generator `seed`.
        pub(in crate::check::lint) fn new(mut seed: u64, rules: usize) -> Sample {
            let mut next = |n: usize| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % n as u64) as usize
            };
            let mut text = String::from(
                "identity u from jwt {\n    pid = claim \"pid\"\n    client \"c-{pid}\"\n}\nset s = a, b, $x\n",
            );
            for _ in 0..rules {
                let levels: Vec<&str> = (0..1 + next(3))
                    .map(|_| LEVELS[next(LEVELS.len())])
                    .collect();
                let hash = if next(3) == 0 { "/#" } else { "" };
                text.push_str(&format!("allow u publish \"{}{hash}\"\n", levels.join("/")));
            }
            let topics = (0..400)
                .map(|_| {
                    let n = 1 + next(4);
                    let levels: Vec<&str> = (0..n)
                        .map(|_| TOPIC_LEVELS[next(TOPIC_LEVELS.len())])
                        .collect();
                    levels.join("/")
                })
                .collect();
            let source = Source::new("t", text);
            let ast = crate::parse::parse(&source).unwrap_or_else(|e| panic!("{e}"));
            let checked = crate::check::check(&source, &ast)
                .unwrap_or_else(|e| panic!("{e}"))
                .checked;
            let attrs = [("pid", "P1"), ("client", "c-P1")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Sample {
                checked,
                topics,
                attrs,
            }
        }

        /// Every rule's topic template.
        pub(in crate::check::lint) fn patterns(&self) -> Vec<&TopicPattern> {
            self.checked
                .rules
                .iter()
                .filter_map(|r| r.topic.as_ref())
                .collect()
        }

        /// Whether `pattern` matches `topic` for the sample's session.
        pub(in crate::check::lint) fn matches(&self, pattern: &TopicPattern, topic: &str) -> bool {
            crate::check::matches::match_topic(pattern, topic, &self.attrs).is_some()
        }
    }
}
