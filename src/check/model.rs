//! The checked policy: names resolved, sets expanded, templates normalized.
//!
//! This is what [`crate::compile`] and the reference interpreter consume. Every rule keeps
//! its id (its position in the file), its `file:line` and its text, so decisions can cite it.
//! Nothing here matches topics; it only describes what each rule means.

use crate::ast::{Action, AttrSource, Effect, IdentityKind};
use crate::source::{Loc, Source, Span};
use std::sync::Arc;

pub use super::intern::SharedStr;

/// A rule's index in file order. Lower ids come first in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct RuleId(pub u32);

/// An identity kind's index in the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct IdentityId(pub u16);

/// A set of actions as a bit mask (see [`Action::bit`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ActionSet(pub u8);

impl ActionSet {
    /// True when the set holds `action`.
    pub fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    pub(crate) fn insert(&mut self, action: Action) {
        self.0 |= action.bit();
    }

    pub(crate) fn union(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 | other.0)
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

/// A fully checked policy.
#[derive(Clone, Debug)]
pub struct Checked {
    pub(crate) source: Source,
    /// The identities, indexed by `IdentityId`.
    pub identities: Vec<IdentityDef>,
    /// The sets, indexed by `SetId`.
    pub sets: Vec<SetDef>,
    /// The rules, in file order.
    pub rules: Vec<CheckedRule>,
    /// `assert` lines, in file order.
    pub assertions: Vec<CheckedAssertion>,
}

impl Checked {
    /// The identity declared under `name`, with its id.
    pub fn identity(&self, name: &str) -> Option<(IdentityId, &IdentityDef)> {
        self.identities
            .iter()
            .enumerate()
            .find(|(_, d)| d.name == name)
            .map(|(i, d)| (IdentityId(i as u16), d))
    }

    /// The rule with this id.
    pub fn rule(&self, id: RuleId) -> &CheckedRule {
        &self.rules[id.0 as usize]
    }
}

/// `assert WHO only "namespace", ...` (every topic and filter the identities may use lies
/// in one of the namespaces) or `assert WHO isolated by a, b` (sessions whose values of
/// these attributes differ share no attribute-scoped topic), proved by `topicguard verify`.
#[derive(Clone, Debug)]
pub struct CheckedAssertion {
    pub(crate) identities: Vec<IdentityId>,
    /// Each namespace as written (between the quotes) and resolved.
    pub namespaces: Vec<(String, TopicPattern)>,
    /// `isolated by a, b`: the attributes that tell accounts apart (empty for `only`).
    pub isolated_by: Vec<String>,
    pub(crate) loc: Loc,
    /// Where the `assert` line is.
    pub span: Span,
    /// The assertion as written.
    pub text: String,
}

/// A named set of literal level values.
#[derive(Clone, Debug)]
pub struct SetDef {
    /// The set's name.
    pub name: String,
    /// Its members, in declaration order.
    pub values: Arc<[String]>,
    /// Where it is declared.
    pub span: Span,
}

/// An identity kind: how it is verified and which attributes it binds.
#[derive(Clone, Debug)]
pub struct IdentityDef {
    /// The identity's name.
    pub name: String,
    /// What credential verifies it.
    pub kind: IdentityKind,
    pub(crate) span: Span,
    /// Every attribute name this identity binds, sorted (always includes `client`).
    pub attrs: Vec<String>,
    /// `attr = source` lines.
    pub binds: Vec<(String, AttrSource)>,
    /// `source as "a:b:{x}"` lines: the source and the pieces of the split.
    pub extracts: Vec<(AttrSource, Vec<ClientPiece>)>,
    pub(crate) requires: Vec<Require>,
    /// The client id template; captures in it bind attributes at CONNECT.
    pub client: Vec<ClientPiece>,
    /// Where the client template is written.
    pub client_span: Span,
    /// Other settings (`issuer`, `audience`, `algorithms`, `leeway`, ...), values as written.
    pub settings: Vec<(String, Vec<String>)>,
    /// `subscriptions filtered`: broader filters are granted; `receive` filters delivery.
    pub filtered_subscriptions: bool,
    /// Characters each attribute's values may not contain, because they separate it from
    /// its neighbours in some template (see [`crate::check::attribute_separators`]).
    pub separators: Vec<(String, char)>,
}

impl IdentityDef {
    pub(crate) fn binds_attr(&self, name: &str) -> bool {
        self.attrs
            .binary_search_by(|a| a.as_str().cmp(name))
            .is_ok()
    }

    pub(crate) fn setting(&self, key: &str) -> Option<&[String]> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of a setting (`issuer`, `audience`, `trust`, ...), if set.
    pub fn setting_value(&self, key: &str) -> Option<&str> {
        self.setting(key)
            .and_then(|values| values.first())
            .map(String::as_str)
    }

    /// The `trust` label: which configured anchors verify this identity's credentials.
    /// `None` means the default anchors (`--ca`, `--crl`, `--jwks`).
    pub fn trust_label(&self) -> Option<&str> {
        self.setting_value("trust")
    }
}

/// A piece of a client-id or extraction template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientPiece {
    /// Literal text.
    Text(String),
    /// The value of the named attribute.
    Attr(String),
    /// A named capture.
    Capture(String),
}

/// A client or extraction template as written in the policy (`m-{pid}_{+inst}`), for
/// messages.
pub fn template_text(pieces: &[ClientPiece]) -> String {
    fn piece(p: &ClientPiece) -> (&'static str, &str, &'static str) {
        match p {
            ClientPiece::Text(t) => ("", t.as_str(), ""),
            ClientPiece::Attr(a) => ("{", a.as_str(), "}"),
            ClientPiece::Capture(c) => ("{+", c.as_str(), "}"),
        }
    }
    // One allocation: a refused connect builds this text for its error.
    let len = pieces
        .iter()
        .map(|p| {
            let (open, body, close) = piece(p);
            open.len() + body.len() + close.len()
        })
        .sum();
    let mut text = String::with_capacity(len);
    for (open, body, close) in pieces.iter().map(piece) {
        text.push_str(open);
        text.push_str(body);
        text.push_str(close);
    }
    text
}

/// A `require` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Require {
    /// Two attributes must be equal.
    Equal(String, String),
    /// An attribute must pass a named check.
    Check(String, AttrCheck),
    /// `require pid in partners`: the set's values, sorted (so membership is a binary
    /// search), are filled in once sets are resolved.
    InSet {
        /// The attribute.
        attr: String,
        /// The set's name.
        set: String,
        /// Where the `require` line is.
        span: Span,
        /// The set's members.
        values: Arc<[String]>,
    },
}

/// Named value checks for `require ATTR is CHECK`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrCheck {
    /// 16 lowercase hex digits, no separators.
    Eui64,
    /// A UUID in canonical 8-4-4-4-12 lowercase hex form.
    Uuid,
}

impl AttrCheck {
    pub(crate) fn parse(name: &str) -> Option<AttrCheck> {
        match name {
            "eui64" => Some(AttrCheck::Eui64),
            "uuid" => Some(AttrCheck::Uuid),
            _ => None,
        }
    }

    pub(crate) fn accepts(self, value: &str) -> bool {
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        match self {
            AttrCheck::Eui64 => value.len() == 16 && value.chars().all(hex),
            AttrCheck::Uuid => {
                let groups: Vec<&str> = value.split('-').collect();
                groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
                    && groups.iter().all(|g| g.chars().all(hex))
            }
        }
    }
}

/// One rule, resolved.
///
/// A policy of 100,000 rules holds 100,000 of these, so a rule owns as little as it can:
/// its names and literal levels are [`SharedStr`]s and its identity list an `Arc` shared
/// with every rule that names the same identities, and its text is a span of the policy
/// text (which the checked policy keeps anyway) rather than a copy.
#[derive(Clone, Debug)]
pub struct CheckedRule {
    /// The rule's id (its index in `Checked::rules`).
    pub id: RuleId,
    /// Allow or deny.
    pub effect: Effect,
    /// The actions it covers.
    pub actions: ActionSet,
    /// The rule's stable name (`@id("mobile-requests")`), if it has one.
    pub label: Option<SharedStr>,
    /// The identities it applies to (`any` = all of them), shared by every rule that names
    /// the same identities.
    pub identities: Arc<[IdentityId]>,
    /// `None` for connect-only rules.
    pub topic: Option<TopicPattern>,
    /// Where it is, as file:line:col.
    pub loc: Loc,
    pub(crate) span: Span,
    /// The whole policy text, shared; [`CheckedRule::text`] is a part of it.
    source: Arc<str>,
    /// Where the rule's text (its label aside, trimmed) starts, counted from `span.start`.
    text_offset: u32,
    /// The length of the rule's text in bytes.
    text_len: u32,
}

// A policy of 100,000 rules holds 100,000 of these: a field added here costs that many times.
const _: () = assert!(std::mem::size_of::<CheckedRule>() <= 128);

impl CheckedRule {
    /// A rule of the policy text `source`, whose text (label aside) is `text`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: RuleId,
        effect: Effect,
        actions: ActionSet,
        identities: Arc<[IdentityId]>,
        topic: Option<TopicPattern>,
        loc: Loc,
        span: Span,
        source: Arc<str>,
        text: Span,
    ) -> CheckedRule {
        // A rule is far shorter than 4 GiB (the compiler refuses long ones); were it not,
        // its text would read as a part of the rule or as nothing, never as another rule's.
        let text_offset = u32::try_from(text.start.saturating_sub(span.start)).unwrap_or(0);
        let text_len = u32::try_from(text.end.saturating_sub(text.start)).unwrap_or(0);
        CheckedRule {
            id,
            effect,
            actions,
            label: None,
            identities,
            topic,
            loc,
            span,
            source,
            text_offset,
            text_len,
        }
    }

    /// The rule as written (its label aside), for explanations.
    pub fn text(&self) -> &str {
        let start = self.span.start.saturating_add(self.text_offset as usize);
        let end = start.saturating_add(self.text_len as usize);
        self.source.get(start..end).unwrap_or("")
    }

    /// How a message cites the rule: `` `label` at file:line `` or `at file:line`.
    pub fn cite(&self) -> String {
        cite(self.label.as_deref(), &self.loc)
    }

    /// True when the rule applies to `identity`.
    pub fn applies_to(&self, identity: IdentityId) -> bool {
        self.identities.contains(&identity)
    }
}

/// `` `label` at file:line `` when there is a label, else `at file:line`.
pub fn cite(label: Option<&str>, loc: &Loc) -> String {
    match label {
        Some(label) => format!("`{label}` at {loc}"),
        None => format!("at {loc}"),
    }
}

/// A normalized topic template: levels, and whether it ends in `#`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopicPattern {
    /// The levels, in order.
    pub levels: Box<[LevelPattern]>,
    /// The template ends with `/#` (or is `#`): it also matches any deeper levels, and the
    /// parent level itself.
    pub hash: bool,
}

/// What one topic level must be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LevelPattern {
    /// `+` or `{+name}`: any one level.
    Any {
        /// The capture's name, if any.
        capture: Option<SharedStr>,
    },
    /// Literal text.
    Literal(SharedStr),
    /// Anything else: a sequence of pieces, matched against the whole level. Equal piece
    /// sequences (`{pid}_{aid}` in every rule) share one allocation.
    Pieces(Arc<[Piece]>),
}

/// A piece of a level that is not just a literal or a wildcard.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Piece {
    /// Literal text.
    Text(SharedStr),
    /// An attribute (or `client`), compared as literal text.
    Attr(SharedStr),
    /// `{+name}` inside a level: any run of characters (possibly empty).
    Capture(SharedStr),
    /// One of a finite set of literals (`{a|b}` or `{x in set}`).
    OneOf {
        /// The capture it is remembered under, if named.
        capture: Option<SharedStr>,
        /// The values.
        values: Arc<[String]>,
    },
}

/// A level's pieces cut at their first and last capture or set: the head and the tail are
/// text and attributes only; the middle starts and ends with a capture or a set.
#[derive(Debug, PartialEq, Eq)]
pub struct Split<'p> {
    pub(crate) head: &'p [Piece],
    pub(crate) middle: &'p [Piece],
    pub(crate) tail: &'p [Piece],
}

/// True for the pieces that match more than one text: captures and sets.
pub fn is_variable(piece: &Piece) -> bool {
    matches!(piece, Piece::Capture(_) | Piece::OneOf { .. })
}

/// Cuts pieces into a [`Split`]; `None` when there is no capture or set (the level is
/// text and attributes only).
pub fn split(pieces: &[Piece]) -> Option<Split<'_>> {
    let first = pieces.iter().position(is_variable)?;
    let last = pieces.iter().rposition(is_variable)?;
    Some(Split {
        head: &pieces[..first],
        middle: &pieces[first..=last],
        tail: &pieces[last + 1..],
    })
}

impl LevelPattern {
    /// True if this level depends on the identity's attributes.
    pub fn uses_attrs(&self) -> bool {
        matches!(self, LevelPattern::Pieces(p) if p.iter().any(|p| matches!(p, Piece::Attr(_))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(text: &str) -> Checked {
        let source = Source::new("p", text);
        let ast = crate::parse::parse(&source).unwrap_or_else(|e| panic!("{e}"));
        crate::check::check(&source, &ast)
            .unwrap_or_else(|e| panic!("{e}"))
            .checked
    }

    const DEVICES: &str = "identity d from jwt {\n    pid = claim \"pid\"\n    aid = claim \"aid\"\n    client \"d-{pid}_{aid}\"\n}\n";

    #[test]
    fn repeated_texts_piece_lists_and_identity_lists_are_held_once() {
        let mut text = DEVICES.to_string();
        for i in 0..50 {
            text.push_str(&format!(
                "allow d publish \"c/xfi/{{pid}}_{{aid}}/svc{i}/{{+rid}}\"\n"
            ));
        }
        let checked = checked(&text);
        let first = &checked.rules[0];
        let levels = |rule: &CheckedRule| rule.topic.as_ref().expect("a topic").levels.clone();
        let (a, a_levels) = (first, levels(first));
        for b in &checked.rules[1..] {
            let b_levels = levels(b);
            assert!(Arc::ptr_eq(&a.identities, &b.identities), "identity list");
            for at in [0, 1, 4] {
                let (
                    LevelPattern::Literal(x) | LevelPattern::Any { capture: Some(x) },
                    LevelPattern::Literal(y) | LevelPattern::Any { capture: Some(y) },
                ) = (&a_levels[at], &b_levels[at])
                else {
                    panic!("level {at}: {:?}", a_levels[at]);
                };
                assert!(x.shares_allocation(y), "level {at}: {x}");
            }
            let (LevelPattern::Pieces(x), LevelPattern::Pieces(y)) = (&a_levels[2], &b_levels[2])
            else {
                panic!("`{{pid}}_{{aid}}` is pieces");
            };
            assert!(Arc::ptr_eq(x, y), "`{{pid}}_{{aid}}`");
        }
    }

    #[test]
    fn a_rule_text_is_the_rule_as_written_without_its_label() {
        let text = format!(
            "{DEVICES}allow d publish \"a/{{pid}}\"\n  @id(\"second\")   deny d publish \"a/b\"   # why\n"
        );
        let checked = checked(&text);
        assert_eq!(checked.rules[0].text(), "allow d publish \"a/{pid}\"");
        assert_eq!(checked.rules[1].text(), "deny d publish \"a/b\"");
        assert_eq!(checked.rules[1].label.as_deref(), Some("second"));
    }

    #[test]
    fn a_client_template_reads_back_as_written() {
        let pieces = [
            ClientPiece::Text("xfi:".into()),
            ClientPiece::Attr("pid".into()),
            ClientPiece::Text("_".into()),
            ClientPiece::Attr("aid".into()),
            ClientPiece::Text(":clt:".into()),
            ClientPiece::Capture("jti".into()),
        ];
        let text = template_text(&pieces);
        assert_eq!(text, "xfi:{pid}_{aid}:clt:{+jti}");
        assert_eq!(text.capacity(), text.len());
        assert_eq!(template_text(&[]), "");
    }
}
