//! AWS IoT Core's policy evaluation, written from AWS's documentation and nothing else —
//! never from the renderer's code — so the renderer can be held to it.
//!
//! Sources (AWS IoT Core Developer Guide unless said otherwise):
//! - "AWS IoT Core action resources": `iot:Connect` is checked on `client/<client id>`,
//!   `iot:Publish`, `iot:Receive` and `iot:RetainPublish` on `topic/<topic>`,
//!   `iot:Subscribe` on `topicfilter/<filter>`; ARNs are
//!   `arn:aws:iot:<region>:<account>:<type>/<name>`.
//! - "AWS IoT Core policy actions": `iot:Receive` is checked on every delivery; a retained
//!   publish needs `iot:RetainPublish` as well as `iot:Publish`.
//! - "Publish/Subscribe policy examples" and "AWS IoT Core policy variables": in a
//!   resource `*` matches any combination of characters and `?` any single character;
//!   `+` and `#` are plain characters. A topic filter resource is compared with the filter
//!   as a string.
//! - IAM "Policy elements: Variables", "Special characters": `${*}`, `${?}` and `${$}` are
//!   the characters `*`, `?` and `$`; variables are only read in policies with
//!   `"Version": "2012-10-17"`. A variable that cannot be resolved makes its statement
//!   invalid; this evaluator then lets the statement match nothing — for a Deny that is
//!   the reading least favourable to the renderer.
//! - IAM "Policy evaluation logic": an explicit Deny in any statement of any policy wins;
//!   otherwise an Allow allows; otherwise the request is implicitly denied. IAM action
//!   names are case-insensitive and may hold wildcards too.
//! - MQTT 3.1.1/5.0: a topic name holds no `+` or `#`; a filter's `+` and `#` are whole
//!   levels and `#` is last. A broker refuses anything else before any authorization.

use serde_json::Value;

/// An answer of AWS's evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

#[derive(Clone, Debug)]
enum Tok {
    Char(char),
    /// `*`
    Any,
    /// `?`
    One,
}

#[derive(Clone, Debug)]
struct Pattern {
    toks: Vec<Tok>,
    /// False when it names a variable this evaluation cannot resolve.
    resolvable: bool,
}

#[derive(Clone, Debug)]
struct Statement {
    deny: bool,
    actions: Vec<Pattern>,
    resources: Vec<Pattern>,
}

/// The statements of a set of policy documents.
#[derive(Clone, Debug)]
pub struct Policies {
    statements: Vec<Statement>,
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().expect("a string").to_string())
            .collect(),
        other => panic!("expected a string or an array of strings, got {other}"),
    }
}

/// Reads a resource or action pattern; `variables`: whether `${...}` is a variable.
fn pattern(text: &str, variables: bool) -> Pattern {
    let mut toks = Vec::new();
    let mut resolvable = true;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if variables && c == '$' && chars.get(i + 1) == Some(&'{') {
            match chars[i + 2..].iter().position(|&c| c == '}') {
                Some(len) => {
                    let name: String = chars[i + 2..i + 2 + len].iter().collect();
                    match name.as_str() {
                        "*" => toks.push(Tok::Char('*')),
                        "?" => toks.push(Tok::Char('?')),
                        "$" => toks.push(Tok::Char('$')),
                        _ => resolvable = false,
                    }
                    i += len + 3;
                }
                None => {
                    resolvable = false;
                    i = chars.len();
                }
            }
            continue;
        }
        toks.push(match c {
            '*' => Tok::Any,
            '?' => Tok::One,
            c => Tok::Char(c),
        });
        i += 1;
    }
    Pattern { toks, resolvable }
}

/// Whole-string wildcard matching; `fold`: compare ASCII letters case-insensitively.
fn matches(pattern: &Pattern, text: &[char], fold: bool) -> bool {
    if !pattern.resolvable {
        return false;
    }
    // reach[j]: the pattern so far can match text[..j].
    let mut reach = vec![false; text.len() + 1];
    let mut next = vec![false; text.len() + 1];
    reach[0] = true;
    for tok in &pattern.toks {
        next.iter_mut().for_each(|n| *n = false);
        match tok {
            Tok::Any => {
                let mut seen = false;
                for (n, r) in next.iter_mut().zip(&reach) {
                    seen |= *r;
                    *n = seen;
                }
            }
            Tok::One => next[1..].copy_from_slice(&reach[..text.len()]),
            Tok::Char(c) => {
                for (j, t) in text.iter().enumerate() {
                    let same = if fold {
                        c.eq_ignore_ascii_case(t)
                    } else {
                        c == t
                    };
                    next[j + 1] = reach[j] && same;
                }
            }
        }
        std::mem::swap(&mut reach, &mut next);
    }
    reach[text.len()]
}

impl Policies {
    /// Reads a JSON array of policy documents (or one document).
    pub fn parse(documents: &Value) -> Policies {
        let documents: Vec<&Value> = match documents {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        let mut statements = Vec::new();
        for doc in documents {
            let variables = doc["Version"] == "2012-10-17";
            let listed = match &doc["Statement"] {
                Value::Array(items) => items.clone(),
                one => vec![one.clone()],
            };
            for st in listed {
                let deny = match st["Effect"].as_str() {
                    Some("Allow") => false,
                    Some("Deny") => true,
                    other => panic!("bad Effect {other:?}"),
                };
                statements.push(Statement {
                    deny,
                    actions: strings(&st["Action"])
                        .iter()
                        .map(|a| pattern(a, false))
                        .collect(),
                    resources: strings(&st["Resource"])
                        .iter()
                        .map(|r| pattern(r, variables))
                        .collect(),
                });
            }
        }
        Policies { statements }
    }

    /// The verdict for one action on one resource ARN.
    pub fn evaluate(&self, action: &str, resource: &str) -> Verdict {
        let action: Vec<char> = action.chars().collect();
        let resource: Vec<char> = resource.chars().collect();
        let applies = |s: &Statement| {
            s.actions.iter().any(|a| matches(a, &action, true))
                && s.resources.iter().any(|r| matches(r, &resource, false))
        };
        if self.statements.iter().any(|s| s.deny && applies(s)) {
            Verdict::ExplicitDeny
        } else if self.statements.iter().any(|s| !s.deny && applies(s)) {
            Verdict::Allowed
        } else {
            Verdict::ImplicitDeny
        }
    }
}

/// An MQTT request as a client makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    Connect(String),
    Publish(String, bool),
    Subscribe(String),
    Receive(String),
}

fn valid_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| {
        !level.contains(['+', '#']) || *level == "+" || (*level == "#" && i + 1 == levels.len())
    })
}

/// Whether AWS IoT Core lets the request through, with `arn` the ARN prefix
/// (`arn:aws:iot:<region>:<account>`).
pub fn allows(policies: &Policies, arn: &str, ask: &Ask) -> bool {
    let allowed = |action: &str, kind: &str, name: &str| {
        policies.evaluate(action, &format!("{arn}:{kind}/{name}")) == Verdict::Allowed
    };
    match ask {
        Ask::Connect(id) => allowed("iot:Connect", "client", id),
        Ask::Publish(topic, retain) => {
            valid_name(topic)
                && allowed("iot:Publish", "topic", topic)
                && (!retain || allowed("iot:RetainPublish", "topic", topic))
        }
        Ask::Subscribe(filter) => {
            valid_filter(filter) && allowed("iot:Subscribe", "topicfilter", filter)
        }
        Ask::Receive(topic) => valid_name(topic) && allowed("iot:Receive", "topic", topic),
    }
}

#[test]
fn evaluation_follows_the_documentation() {
    let docs = serde_json::json!([
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:r:1:topic/a/*"},
            {"Effect": "Allow", "Action": ["iot:Subscribe"], "Resource": ["arn:aws:iot:r:1:topicfilter/a/+"]},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": "arn:aws:iot:r:1:topic/x${*}y?"}
        ]},
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "IOT:publish", "Resource": "arn:aws:iot:r:1:topic/a/b/*"},
            {"Effect": "Deny", "Action": "iot:Receive", "Resource": "arn:aws:iot:r:1:topic/${iot:ClientId}"}
        ]}
    ]);
    let p = Policies::parse(&docs);
    let arn = "arn:aws:iot:r:1";
    assert!(allows(&p, arn, &Ask::Publish("a/x/y".into(), false)));
    assert!(
        !allows(&p, arn, &Ask::Publish("a/b/c".into(), false)),
        "deny wins across documents"
    );
    assert!(
        !allows(&p, arn, &Ask::Publish("a/x".into(), true)),
        "retain needs RetainPublish"
    );
    assert!(
        !allows(&p, arn, &Ask::Publish("a/+".into(), false)),
        "no wildcard in a name"
    );
    assert!(
        allows(&p, arn, &Ask::Subscribe("a/+".into())),
        "+ is a plain character"
    );
    assert!(!allows(&p, arn, &Ask::Subscribe("a/x".into())));
    assert!(
        allows(&p, arn, &Ask::Receive("x*yz".into())),
        "${{*}} is a literal star"
    );
    assert!(!allows(&p, arn, &Ask::Receive("xQyz".into())));
    assert!(allows(&p, arn, &Ask::Receive("x*y/".into())), "? matches /");
    // The unresolvable variable makes its Deny match nothing (the least favourable reading).
    assert_eq!(
        p.evaluate("iot:Receive", "arn:aws:iot:r:1:topic/${iot:ClientId}"),
        Verdict::ImplicitDeny
    );
    let old = Policies::parse(&serde_json::json!({"Version": "2008-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:*", "Resource": "arn:aws:iot:r:1:topic/${*}"}]}));
    assert!(
        allows(&old, arn, &Ask::Receive("${*}".into())),
        "no variables before 2012-10-17"
    );
    assert!(!allows(&old, arn, &Ask::Receive("*".into())));
}
