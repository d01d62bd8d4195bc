//! The baseline: a naive linear scan over every rule, as mosquitto and rumqttd do it.
//!
//! For each request the scan visits every rule in file order, skips rules for other
//! identities or actions, substitutes the session's attributes into the rule's template
//! and matches the topic against it level by level. The first matching deny decides;
//! otherwise the first matching allow; otherwise the request is denied by default — the
//! same answer, and the same deciding rule, as topicguard gives. It is written to be
//! reasonably fast (attributes are pre-indexed, nothing is allocated per request), not
//! artificially slow. It must never be used to decide anything outside the benchmarks:
//! it implements only what the benchmark policies use (no `retain`, no filtered
//! subscriptions).
//!
//! The comparison crate in `bench/compare/` includes this file by path, so it depends on
//! nothing but the public `topicguard` API.

use topicguard::Identity;
use topicguard::ast::{Action, Effect};
use topicguard::check::{ActionSet, Checked, ClientPiece, LevelPattern, Piece};

/// What the scan decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanVerdict {
    Allowed(u32),
    Denied(u32),
    NoMatch,
}

impl ScanVerdict {
    pub fn allowed(self) -> bool {
        matches!(self, ScanVerdict::Allowed(_))
    }

    /// The deciding rule's id (file order), if a rule decided.
    pub fn rule(self) -> Option<u32> {
        match self {
            ScanVerdict::Allowed(id) | ScanVerdict::Denied(id) => Some(id),
            ScanVerdict::NoMatch => None,
        }
    }
}

enum ScanPiece {
    Text(Box<str>),
    Attr(usize),
    Capture,
    OneOf(Box<[Box<str>]>),
}

enum ScanLevel {
    Any,
    Literal(Box<str>),
    Pieces(Vec<ScanPiece>),
}

struct ScanRule {
    id: u32,
    effect: Effect,
    identities: u64,
    actions: ActionSet,
    levels: Vec<ScanLevel>,
    hash: bool,
}

/// Every rule of a policy, in file order, ready to be scanned.
pub struct Scan {
    rules: Vec<ScanRule>,
    attr_names: Vec<String>,
    identities: Vec<(String, Vec<ClientPiece>)>,
}

/// An identity bound for the scan: its attribute values by index.
pub struct ScanSession {
    identity: usize,
    attrs: Vec<Option<Box<str>>>,
    client_ok: bool,
}

impl Scan {
    /// Prepares the rules of a checked policy.
    pub fn new(checked: &Checked) -> Scan {
        let mut scan = Scan {
            rules: Vec::with_capacity(checked.rules.len()),
            attr_names: Vec::new(),
            identities: checked
                .identities
                .iter()
                .map(|d| (d.name.clone(), d.client.clone()))
                .collect(),
        };
        for rule in &checked.rules {
            let (levels, hash) = match &rule.topic {
                Some(t) => (t.levels.iter().map(|l| scan.level(l)).collect(), t.hash),
                None => (Vec::new(), false),
            };
            scan.rules.push(ScanRule {
                id: rule.id.0,
                effect: rule.effect,
                identities: rule.identities.iter().fold(0, |m, i| m | 1 << i.0),
                actions: rule.actions,
                levels,
                hash,
            });
        }
        scan
    }

    fn attr_index(&mut self, name: &str) -> usize {
        match self.attr_names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.attr_names.push(name.to_string());
                self.attr_names.len() - 1
            }
        }
    }

    fn level(&mut self, level: &LevelPattern) -> ScanLevel {
        match level {
            LevelPattern::Any { .. } => ScanLevel::Any,
            LevelPattern::Literal(text) => ScanLevel::Literal(text.as_str().into()),
            LevelPattern::Pieces(pieces) => ScanLevel::Pieces(
                pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Text(t) => ScanPiece::Text(t.as_str().into()),
                        Piece::Attr(a) => ScanPiece::Attr(self.attr_index(a)),
                        Piece::Capture(_) => ScanPiece::Capture,
                        Piece::OneOf { values, .. } => {
                            ScanPiece::OneOf(values.iter().map(|v| v.as_str().into()).collect())
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// Binds an identity: its attributes by index, and whether the client id matches.
    pub fn bind(&self, identity: &Identity, client_id: &str) -> ScanSession {
        let mut attrs: Vec<Option<Box<str>>> = vec![None; self.attr_names.len()];
        let index = self
            .identities
            .iter()
            .position(|(n, _)| *n == identity.kind);
        let mut set = |name: &str, value: &str| {
            if let Some(i) = self.attr_names.iter().position(|n| n == name) {
                attrs[i] = Some(value.into());
            }
        };
        for (name, value) in &identity.attrs {
            set(name, value);
        }
        set("client", client_id);
        let client_ok = index
            .is_some_and(|i| client_matches(&self.identities[i].1, identity, client_id, &mut set));
        ScanSession {
            identity: index.unwrap_or(usize::MAX),
            attrs,
            client_ok,
        }
    }

    /// Decides one request by scanning every rule.
    pub fn decide(&self, session: &ScanSession, action: Action, topic: &str) -> ScanVerdict {
        if !session.client_ok || session.identity >= 64 {
            return ScanVerdict::NoMatch;
        }
        let me = 1u64 << session.identity;
        let (topic, subscribe) = match action {
            Action::Subscribe => (strip_share(topic), true),
            _ => (topic, false),
        };
        let mut allow = None;
        for rule in &self.rules {
            if rule.identities & me == 0 || !rule.actions.contains(action) {
                continue;
            }
            let hit =
                action == Action::Connect || rule_matches(rule, &session.attrs, topic, subscribe);
            if hit {
                match rule.effect {
                    Effect::Deny => return ScanVerdict::Denied(rule.id),
                    Effect::Allow if allow.is_none() => allow = Some(rule.id),
                    Effect::Allow => {}
                }
            }
        }
        allow.map_or(ScanVerdict::NoMatch, ScanVerdict::Allowed)
    }
}

fn strip_share(filter: &str) -> &str {
    match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, f)| f),
        None => filter,
    }
}

/// Matches a client id against the identity's template, recording captures.
fn client_matches(
    pieces: &[ClientPiece],
    identity: &Identity,
    rest: &str,
    set: &mut impl FnMut(&str, &str),
) -> bool {
    let Some((first, tail)) = pieces.split_first() else {
        return rest.is_empty();
    };
    match first {
        ClientPiece::Text(t) => rest
            .strip_prefix(t.as_str())
            .is_some_and(|r| client_matches(tail, identity, r, set)),
        ClientPiece::Attr(a) => identity.attr(a).is_some_and(|v| {
            rest.strip_prefix(v)
                .is_some_and(|r| client_matches(tail, identity, r, set))
        }),
        ClientPiece::Capture(name) => (1..=rest.len())
            .filter(|end| rest.is_char_boundary(*end))
            .any(|end| {
                let ok = client_matches(tail, identity, &rest[end..], set);
                if ok {
                    set(name, &rest[..end]);
                }
                ok
            }),
    }
}

fn rule_matches(rule: &ScanRule, attrs: &[Option<Box<str>>], topic: &str, subscribe: bool) -> bool {
    let dollar = topic.starts_with('$');
    let mut levels = topic.split('/');
    for (i, template) in rule.levels.iter().enumerate() {
        let Some(level) = levels.next() else {
            return false;
        };
        if i == 0 && dollar && !matches!(template, ScanLevel::Literal(_)) {
            return false;
        }
        if subscribe && (level == "#" || level == "+") {
            if level == "#" || !matches!(template, ScanLevel::Any) {
                return false;
            }
            continue;
        }
        if !level_matches(template, attrs, level) {
            return false;
        }
    }
    match levels.next() {
        None => true,
        Some(_) if !rule.hash => false,
        Some(_) => !(dollar && rule.levels.is_empty()),
    }
}

fn level_matches(template: &ScanLevel, attrs: &[Option<Box<str>>], level: &str) -> bool {
    match template {
        ScanLevel::Any => true,
        ScanLevel::Literal(text) => **text == *level,
        ScanLevel::Pieces(pieces) => pieces_match(pieces, attrs, level),
    }
}

fn pieces_match(pieces: &[ScanPiece], attrs: &[Option<Box<str>>], s: &str) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return s.is_empty();
    };
    let then = |r: &str| pieces_match(rest, attrs, r);
    match first {
        ScanPiece::Text(t) => s.strip_prefix(&**t).is_some_and(then),
        ScanPiece::Attr(i) => attrs[*i]
            .as_deref()
            .is_some_and(|v| s.strip_prefix(v).is_some_and(then)),
        ScanPiece::OneOf(values) => values
            .iter()
            .any(|v| s.strip_prefix(&**v).is_some_and(then)),
        ScanPiece::Capture if rest.is_empty() => true,
        ScanPiece::Capture => (0..=s.len())
            .filter(|i| s.is_char_boundary(*i))
            .any(|i| then(&s[i..])),
    }
}
