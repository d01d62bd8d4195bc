//! The differential test's traffic: credentials, client ids and requests for a generated
//! policy ([`super::generate`]), written to try what an attacker would.
//!
//! Sessions use values with `_ - : .`, 256-byte values (and 257: refused), values other
//! accounts own, values a `require` accepts or refuses, and client ids that must be
//! refused. Requests use topics instantiated from the policy's own templates (so rules
//! match often) and near misses, the policy's alphabet, the session's own values,
//! large-set values in and out of the set, `$` topics, `#` and `$share/g/#` filters, and
//! hostile topics (too long, too deep, NUL, wildcards).

use super::generate::{GeneratedPolicy, IdentitySpec, Part, Requirement, Rng, SET_VALUES};
use std::collections::BTreeMap;

/// A 256-byte value: the longest an attribute may be.
pub fn longest_value() -> String {
    "L".repeat(256)
}

/// Ordinary values, including ones with `_ - : .` and ones other patterns use.
const VALUES: &[&str] = &[
    "P1", "P2", "a", "b", "p1", "x", "A1", "P1_A1", "A-1", "a:b", "v.1", "x_P1", "v0007", "c",
];
const BAD_VALUES: &[&str] = &["a/b", "+", "", "$s", "#", "a b", "é", "x\u{1}"];
const EUI64: &[&str] = &["0123456789abcdef", "0123456789ABCDEF", "0123456789abcde"];
const UUIDS: &[&str] = &[
    "550e8400-e29b-41d4-a716-446655440000",
    "550E8400-E29B-41D4-A716-446655440000",
    "550e8400e29b41d4a716446655440000",
];

/// A credential, client id and identity name for one connection, sometimes wrong.
pub struct SessionSpec {
    pub kind: String,
    pub attrs: Vec<(String, String)>,
    pub client_id: String,
    /// The raw value an extraction splits, when the identity extracts.
    pub raw: Option<String>,
}

fn value(rng: &mut Rng, attr: &str, spec: &IdentitySpec, policy: &GeneratedPolicy) -> String {
    let required = spec
        .requires
        .iter()
        .find(|(a, _)| *a == attr)
        .map(|(_, r)| *r);
    if rng.chance(50) {
        match required {
            Some(Requirement::Eui64) => return rng.pick(EUI64).to_string(),
            Some(Requirement::Uuid) => return rng.pick(UUIDS).to_string(),
            Some(Requirement::InSet) => {
                let (_, values) = rng.pick(&policy.small_sets.iter().collect::<Vec<_>>());
                return rng.pick(values).to_string();
            }
            _ => {}
        }
    }
    match rng.below(100) {
        0 | 1 => rng.pick(BAD_VALUES).to_string(),
        2 | 3 => longest_value(),
        4 => "L".repeat(257),
        5 => rng.pick(EUI64).to_string(),
        _ => rng.pick(VALUES).to_string(),
    }
}

/// A capture's value: usually plain, sometimes holding the template's own separators.
fn capture_value(
    rng: &mut Rng,
    attr: &str,
    spec: &IdentitySpec,
    policy: &GeneratedPolicy,
) -> String {
    match rng.below(20) {
        0 | 1 => rng
            .pick(&["7:8", "a-b", "x_1", "q.r", ":", "-", "::x"])
            .to_string(),
        2 => String::new(),
        3..=6 => value(rng, attr, spec, policy),
        _ => rng.pick(&["7", "a", "x_1", "P1", "i9"]).to_string(),
    }
}

fn render(
    parts: &[Part],
    attrs: &[(String, String)],
    filled: &mut dyn FnMut(&str) -> String,
) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Attr(a) => {
                let bound = attrs.iter().find(|(k, _)| k == a).map(|(_, v)| v.as_str());
                out.push_str(bound.unwrap_or(""));
            }
            Part::Capture(c) => out.push_str(&filled(c)),
        }
    }
    out
}

pub fn session(rng: &mut Rng, policy: &GeneratedPolicy) -> SessionSpec {
    let spec = &policy.identities[rng.below(policy.identities.len())];
    let mut attrs: Vec<(String, String)> = spec
        .credential
        .iter()
        .map(|a| (a.to_string(), value(rng, a, spec, policy)))
        .collect();
    if spec
        .requires
        .iter()
        .any(|(_, r)| *r == Requirement::EqualsOther)
        && rng.chance(50)
    {
        let pid = attrs[0].1.clone();
        attrs[1].1 = pid;
    }
    let raw = spec
        .extract
        .as_ref()
        .map(|parts| render(parts, &attrs, &mut |_| String::new()));
    let mut client_id = render(&spec.client, &attrs, &mut |c| {
        capture_value(rng, c, spec, policy)
    });
    match rng.below(90) {
        0 => client_id.push('z'),
        1 => {
            client_id.pop();
        }
        2 => client_id = client_id.replacen("P1", "P2", 1),
        3 => client_id.insert(0, ' '),
        4 => client_id = String::new(),
        5 => {
            client_id = format!(
                "{client_id}{}",
                "z".repeat(257usize.saturating_sub(client_id.len()))
            )
        }
        6 => client_id.push('$'),
        _ => {}
    }
    if rng.chance(3) {
        attrs.push(("inst".to_string(), "7".to_string()));
    }
    if rng.chance(2) && !attrs.is_empty() {
        attrs.pop();
    }
    let kind = match rng.below(60) {
        0 => "nobody".to_string(),
        1 => policy.identities[rng.below(policy.identities.len())]
            .name
            .clone(),
        _ => spec.name.clone(),
    };
    SessionSpec {
        kind,
        attrs,
        client_id,
        raw,
    }
}

/// A topic level: the policy alphabet, the session's values, large-set values, misses.
fn topic_level(rng: &mut Rng, session: &SessionSpec, big: usize, first: bool) -> String {
    let attr = |i: usize| {
        session
            .attrs
            .get(i)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let big_value = |rng: &mut Rng| format!("v{:04}", rng.below(big.max(1) + 20));
    match rng.below(34) {
        0 => "a".into(),
        1 => "b".into(),
        2 => "$s".into(),
        3 => "p1".into(),
        4 => "p1_x".into(),
        5 => String::new(),
        6 => "x".into(),
        7 => "xq".into(),
        8 => "c".into(),
        9 => "P1".into(),
        10 => "P1_x".into(),
        11 => "q_P1".into(),
        12 => "x_P1".into(),
        13 => session.client_id.clone(),
        14 => format!("{}_x", attr(0)),
        15 => attr(0),
        16 => format!("q_{}", attr(0)),
        17 => "$t".into(),
        18 => format!("{}_{}", attr(0), attr(1)),
        19 => "a_x".into(),
        20 => "x_a".into(),
        21 => format!("{}-{}", attr(0), rng.pick(SET_VALUES)),
        22 => format!("q:{}:r", attr(0)),
        23 => big_value(rng),
        24 => format!("{}_{}", attr(0), big_value(rng)),
        25 => format!("x_{}", big_value(rng)),
        26 => format!("{}:7", big_value(rng)),
        27 => format!("{}-{}", big_value(rng), attr(1)),
        28 if first => rng.pick(&["$SYS", "$", "x$s", "$s$s", "a$s", "$x"]).into(),
        29 => format!("{}.{}", attr(1), rng.pick(&["", "7", "q.r"])),
        30 => format!("i-{}", rng.pick(&["7", "a", "x_1"])),
        31 => format!("{}.{}", session.client_id, attr(0)),
        32 => rng.pick(&["7", "a", "x_1", "7:8", "a.b", "A-1"]).into(),
        _ => "A1".into(),
    }
}

/// Topics no rule is needed to refuse: empty, wildcards, NUL, too long or too deep, and
/// one level that backtracking matchers choke on.
fn hostile_topic(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => String::new(),
        1 => "a/+".into(),
        2 => "#".into(),
        3 => "a\u{0}b".into(),
        4 => "$share/g/a".into(),
        5 => "$queue/a".into(),
        6 => vec!["a"; 128].join("/"),
        7 => vec!["a"; 129].join("/"),
        8 => format!("{}\u{0}", vec!["a"; 129].join("/")),
        9 => "x".repeat(65_536),
        10 => format!("m{}x", ":".repeat(300)),
        _ => format!("a/{}", "x".repeat(65_533)),
    }
}

/// What a request generator knows: the policy and the session as the reference bound it.
pub struct Context<'a> {
    pub policy: &'a GeneratedPolicy,
    pub session: &'a SessionSpec,
    /// The bound attributes (with client-template captures), empty if binding was refused.
    pub attrs: &'a BTreeMap<String, String>,
}

/// A topic level filling one `{...}` or wildcard of a template: usually what matches it
/// for this session, sometimes a near miss.
fn fill(rng: &mut Rng, expression: &str, context: &Context<'_>) -> String {
    let session_value = |name: &str| context.attrs.get(name).cloned();
    if let Some(_capture) = expression.strip_prefix('+') {
        return rng
            .pick(&["", "7", "x_1", "a:b", "zz", "$s", "P1", "-", "_", "v0007"])
            .to_string();
    }
    if let Some((_, set)) = expression.split_once(" in ") {
        if set == "big" {
            let size = context.policy.big;
            return if rng.chance(85) {
                format!("v{:04}", rng.below(size))
            } else {
                let past_the_end = format!("v{size:04}");
                rng.pick(&[past_the_end.as_str(), "v", "P1", "$s"])
                    .to_string()
            };
        }
        let values = context.policy.small_sets.iter().find(|(n, _)| *n == set);
        return match values {
            Some((_, values)) if rng.chance(85) => rng.pick(values).to_string(),
            _ => rng.pick(SET_VALUES).to_string(),
        };
    }
    if expression.contains('|') {
        let options: Vec<&str> = expression.split('|').collect();
        return rng.pick(&options).to_string();
    }
    match session_value(expression) {
        Some(value) if rng.chance(90) => value,
        _ => rng.pick(VALUES).to_string(),
    }
}

/// A template level with every `{...}` filled.
fn fill_level(rng: &mut Rng, level: &str, context: &Context<'_>) -> String {
    let mut out = String::new();
    let mut rest = level;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| c + open);
        out.push_str(&fill(rng, &rest[open + 1..close], context));
        rest = rest.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// A topic made from one of the policy's templates, so that rules match often.
fn from_template(rng: &mut Rng, context: &Context<'_>) -> Option<Vec<String>> {
    if context.policy.templates.is_empty() {
        return None;
    }
    let template = rng
        .pick(&context.policy.templates.iter().collect::<Vec<_>>())
        .clone();
    let mut levels = Vec::new();
    for (index, level) in template.split('/').enumerate() {
        match level {
            "#" => {
                for _ in 0..rng.pick(&[0, 0, 1, 1, 2]) {
                    levels.push(topic_level(rng, context.session, context.policy.big, false));
                }
            }
            "+" => levels.push(topic_level(
                rng,
                context.session,
                context.policy.big,
                index == 0,
            )),
            _ => levels.push(fill_level(rng, level, context)),
        }
    }
    if levels.is_empty() {
        levels.push(topic_level(rng, context.session, context.policy.big, true));
    }
    if rng.chance(10) {
        let at = rng.below(levels.len());
        levels[at] = topic_level(rng, context.session, context.policy.big, at == 0);
    }
    Some(levels)
}

fn topic(rng: &mut Rng, context: &Context<'_>) -> String {
    if rng.chance(3) {
        return hostile_topic(rng);
    }
    if rng.chance(55) {
        if let Some(levels) = from_template(rng, context) {
            return levels.join("/");
        }
    }
    let count = rng.pick(&[1, 1, 2, 2, 2, 3, 3, 4, 5]);
    let levels: Vec<String> = (0..count)
        .map(|i| topic_level(rng, context.session, context.policy.big, i == 0))
        .collect();
    levels.join("/")
}

fn filter(rng: &mut Rng, context: &Context<'_>) -> String {
    if rng.chance(3) {
        return rng
            .pick(&[
                "",
                "a/b#",
                "a/#/b",
                "+a",
                "$share/g/",
                "$share//a",
                "$share/g",
                "$share/g+/a",
                "#/a",
                "$queue/#",
            ])
            .to_string();
    }
    if rng.chance(4) {
        return rng
            .pick(&[
                "#",
                "+/#",
                "$share/g/#",
                "$share/g/+/#",
                "$s/#",
                "$SYS/#",
                "+/+",
                "$share/g/$s/#",
            ])
            .to_string();
    }
    let mut levels: Vec<String> = match from_template(rng, context) {
        Some(levels) if rng.chance(55) => levels,
        _ => {
            let count = rng.pick(&[1, 1, 2, 2, 2, 3, 3, 4]);
            (0..count)
                .map(|i| topic_level(rng, context.session, context.policy.big, i == 0))
                .collect()
        }
    };
    for level in levels.iter_mut() {
        if rng.chance(30) {
            *level = "+".to_string();
        }
    }
    if rng.chance(35) {
        let keep = rng.range(0, levels.len());
        levels.truncate(keep);
        levels.push("#".to_string());
    }
    let inner = levels.join("/");
    match rng.below(20) {
        0 | 1 => format!("$share/g/{inner}"),
        2 => format!("$queue/{inner}"),
        _ => inner,
    }
}

/// A request with owned text, so it can be printed and replayed.
#[derive(Clone, Debug)]
pub enum Ask {
    Connect,
    Publish(String, bool),
    Subscribe(String),
    Receive(String),
}

pub fn ask(rng: &mut Rng, context: &Context<'_>) -> Ask {
    match rng.below(20) {
        0 => Ask::Connect,
        1..=5 => Ask::Publish(topic(rng, context), rng.chance(35)),
        6..=8 => Ask::Receive(topic(rng, context)),
        _ => Ask::Subscribe(filter(rng, context)),
    }
}
