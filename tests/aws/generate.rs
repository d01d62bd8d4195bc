//! Seeded generators: policy text built from the shipped policies' kinds of templates and
//! from characters that are special in AWS policies; identities with such attribute values;
//! topics and filters around each rule (its own levels, other values, a free level holding
//! `/`, one level more or less) and around nothing. They only generate; they never decide.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use topicguard::check::{Checked, LevelPattern, Piece};
use topicguard::{Identity, Request};

/// splitmix64: small and seedable.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// Literal level text of templates, AWS-special characters included.
const TEXTS: &[&str] = &["a", "b", "c", "$s", "x*y", "q?", "d$", "$", "?*"];

/// Set values (quoted, so braces are allowed): AWS's escapes and variables as plain text.
const SET_VALUES: &[&str] = &[
    "a",
    "b",
    "$s",
    "x*y",
    "q?",
    "${*}",
    "d$",
    "{k}",
    "${iot:ClientId}",
];

/// Attribute values: the identity grammar allows `*`, `?`, `{`, `}`.
pub const VALUES: &[&str] = &["P1", "A1", "a", "P*", "?", "{x}", "*?*", "x}{", "b"];

/// What a free level holds in generated topics: including `/`, `$`, wildcard characters
/// and AWS's escapes.
const FILLERS: &[&str] = &[
    "r1", "", "a", "a/b", "x/y/z", "$x", "*", "?", "${*}", "P1", "b", "success", "+", "#",
];

fn level(rng: &mut Rng, sets: &[&str]) -> String {
    match rng.below(16) {
        0..=2 => rng.pick(TEXTS).to_string(),
        3 | 4 => "+".to_string(),
        5 => "{+x}".to_string(),
        6 | 7 => "{pid}".to_string(),
        8 => "{pid}_x".to_string(),
        9 => "d-{+n}".to_string(),
        10 => "{+c}_{pid}".to_string(),
        11 if !sets.is_empty() => format!("{{v in {}}}", rng.pick(sets)),
        11 | 12 => "{a|b}".to_string(),
        13 => "{client}".to_string(),
        14 => "{+h}-t".to_string(),
        15 if rng.chance(30) => "${+d}".to_string(),
        _ => rng.pick(&["a", "b"]).to_string(),
    }
}

fn template(rng: &mut Rng, sets: &[&str]) -> String {
    let count = 1 + rng.below(4);
    let mut levels: Vec<String> = (0..count).map(|_| level(rng, sets)).collect();
    if rng.chance(25) {
        levels.push("#".to_string());
    }
    levels.join("/")
}

/// A random policy: one or two identities binding `pid`, sets with special values, rules.
pub fn policy(rng: &mut Rng) -> String {
    let mut text = String::new();
    let identities = 1 + rng.below(2);
    for i in 0..identities {
        let client = if rng.chance(50) {
            format!("c{i}:{{pid}}")
        } else {
            format!("c{i}:{{pid}}:{{+inst}}")
        };
        let _ = writeln!(
            text,
            "identity id{i} from jwt {{\n    issuer \"https://id{i}.example/\"\n    pid = claim \"pid\""
        );
        if rng.chance(20) {
            let _ = writeln!(text, "    subscriptions filtered");
        }
        let _ = writeln!(text, "    client \"{client}\"\n}}");
    }
    let mut sets = Vec::new();
    if rng.chance(50) {
        let mut values: Vec<String> = SET_VALUES
            .iter()
            .filter(|_| rng.chance(40))
            .map(|v| format!("\"{v}\""))
            .collect();
        if values.is_empty() {
            values.push("\"a\"".into());
        }
        let _ = writeln!(text, "set s = {}", values.join(", "));
        sets.push("s");
    }
    let _ = writeln!(text, "allow any connect");
    for _ in 0..1 + rng.below(7) {
        let effect = if rng.chance(30) { "deny" } else { "allow" };
        let who = if identities == 2 && rng.chance(50) {
            format!("id{}", rng.below(2))
        } else {
            "any".to_string()
        };
        let mut actions: Vec<&str> = ["publish", "retain", "subscribe", "receive"]
            .into_iter()
            .filter(|_| rng.chance(45))
            .collect();
        if actions.is_empty() {
            actions.push("publish");
        }
        let _ = writeln!(
            text,
            "{effect} {who} {} \"{}\"",
            actions.join(", "),
            template(rng, &sets)
        );
    }
    text
}

/// An identity of the policy with a client id its template accepts.
pub fn session(rng: &mut Rng, checked: &Checked) -> (Identity, String) {
    let index = rng.below(checked.identities.len());
    let def = &checked.identities[index];
    let pid = rng.pick(VALUES).to_string();
    let mut client = String::new();
    for piece in &def.client {
        match piece {
            topicguard::check::ClientPiece::Text(t) => client.push_str(t),
            topicguard::check::ClientPiece::Attr(_) => client.push_str(&pid),
            topicguard::check::ClientPiece::Capture(_) => {
                client.push_str(rng.pick(&["1", "*", "k?"]))
            }
        }
    }
    (Identity::asserted(&def.name, [("pid", pid)]), client)
}

/// A request, owned, so it can be printed and replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    Connect,
    Publish(String, bool),
    Subscribe(String),
    Receive(String),
}

impl Ask {
    pub fn request(&self) -> Request<'_> {
        match self {
            Ask::Connect => Request::Connect,
            Ask::Publish(t, retain) => Request::Publish {
                topic: t,
                retain: *retain,
            },
            Ask::Subscribe(f) => Request::subscribe(f),
            Ask::Receive(t) => Request::receive(t),
        }
    }

    /// The same request as AWS's evaluator sees it.
    pub fn aws(&self, client_id: &str) -> super::eval::Ask {
        use super::eval::Ask as A;
        match self {
            Ask::Connect => A::Connect(client_id.to_string()),
            Ask::Publish(t, r) => A::Publish(t.clone(), *r),
            Ask::Subscribe(f) => A::Subscribe(f.clone()),
            Ask::Receive(t) => A::Receive(t.clone()),
        }
    }
}

/// Topics made from one rule's template: its levels mostly kept, free levels filled with
/// anything (including `/`), one level changed, added or dropped now and then.
fn around_rule(
    rng: &mut Rng,
    pattern: &topicguard::check::TopicPattern,
    attrs: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut levels: Vec<String> = pattern
        .levels
        .iter()
        .map(|level| instantiate(rng, level, attrs))
        .collect();
    if pattern.hash {
        for _ in 0..rng.below(3) {
            levels.push(rng.pick(FILLERS).to_string());
        }
    }
    match rng.below(10) {
        0 if !levels.is_empty() => {
            let i = rng.below(levels.len());
            levels[i] = rng.pick(FILLERS).to_string();
        }
        1 => levels.push(rng.pick(FILLERS).to_string()),
        2 if levels.len() > 1 => {
            levels.pop();
        }
        _ => {}
    }
    levels
}

fn instantiate(rng: &mut Rng, level: &LevelPattern, attrs: &BTreeMap<String, String>) -> String {
    match level {
        LevelPattern::Literal(t) if rng.chance(92) => t.to_string(),
        LevelPattern::Literal(_) | LevelPattern::Any { .. } => rng.pick(FILLERS).to_string(),
        LevelPattern::Pieces(pieces) => pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(t) => t.to_string(),
                Piece::Attr(a) if rng.chance(90) => {
                    attrs.get(a.as_str()).cloned().unwrap_or_default()
                }
                Piece::Attr(_) => rng.pick(VALUES).to_string(),
                Piece::Capture(_) => rng.pick(FILLERS).to_string(),
                Piece::OneOf { values, .. } if rng.chance(85) => {
                    values[rng.below(values.len())].clone()
                }
                Piece::OneOf { .. } => rng.pick(SET_VALUES).to_string(),
            })
            .collect(),
    }
}

/// A topic: around a rule of the policy, or from loose levels.
pub fn topic(rng: &mut Rng, checked: &Checked, attrs: &BTreeMap<String, String>) -> String {
    let patterns: Vec<&topicguard::check::TopicPattern> = checked
        .rules
        .iter()
        .filter_map(|r| r.topic.as_ref())
        .collect();
    let levels = if !patterns.is_empty() && rng.chance(85) {
        let pattern = patterns[rng.below(patterns.len())];
        around_rule(rng, pattern, attrs)
    } else {
        (0..1 + rng.below(4))
            .map(|_| rng.pick(FILLERS).to_string())
            .collect()
    };
    levels.join("/")
}

/// A filter: a topic with some levels made `+`, maybe ending in `#`, maybe shared.
pub fn filter(rng: &mut Rng, checked: &Checked, attrs: &BTreeMap<String, String>) -> String {
    let topic = topic(rng, checked, attrs);
    let mut levels: Vec<String> = topic
        .split('/')
        .map(|l| {
            if rng.chance(25) {
                "+".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    if rng.chance(25) {
        let keep = rng.below(levels.len() + 1);
        levels.truncate(keep);
        levels.push("#".to_string());
    }
    let inner = levels.join("/");
    if rng.chance(5) {
        format!("$share/g/{inner}")
    } else {
        inner
    }
}

/// A request of any kind around the policy.
pub fn ask(rng: &mut Rng, checked: &Checked, attrs: &BTreeMap<String, String>) -> Ask {
    match rng.below(20) {
        0 => Ask::Connect,
        1..=6 => Ask::Publish(topic(rng, checked, attrs), rng.chance(30)),
        7..=12 => Ask::Receive(topic(rng, checked, attrs)),
        _ => Ask::Subscribe(filter(rng, checked, attrs)),
    }
}
