//! `diff` and `verify` against the reference interpreter, on generated policies.
//!
//! A seeded generator writes small policies (one identity with two attributes, sets,
//! alternatives, captures, attribute levels, `#`) and a mutated copy (a rule replaced,
//! added, removed, or its effect flipped). Two directions must hold:
//! * every witness `diff` reports is decided by the reference interpreter as reported
//!   (added: denied under OLD, allowed under NEW; removed: the other way round);
//! * every sampled request (random attribute values, also literals and fresh text, random
//!   topics) that the reference allows under NEW and not OLD is covered by a reported
//!   added change of the same identity and action, citing the rule the engine decides by.
//!
//! and `verify`'s `only` counterexamples are allowed by the reference and outside the
//! namespace, while a namespace the policy is sampled to leave is reported.
//! `TOPICGUARD_ANALYSIS_SEED` replays another seed.

use topicguard::analysis::AnalysisError;
use topicguard::analysis::diff::{Side, diff};
use topicguard::analysis::verify::verify;
use topicguard::decide::Request;
use topicguard::decide::reference::{Binding, Reference};
use topicguard::{Engine, Identity, Policy, Source, Verdict};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const HEAD: &str = "identity u from jwt {\n    a = claim \"a\"\n    b = claim \"b\"\n    c = claim \"c\"\n    client \"u:{a}:{b}\"\n}\n\nset s = p, q\n\nallow u connect\n";

const LEVELS: [&str; 17] = [
    "x", "y", "p", "{a}", "{b}", "+", "{+g}", "{v in s}", "{a}_{+d}", "k{+e}", "{x|p}", "{client}",
    "{c}", "kzx", "k{+h}x", "kz{+i}", "{+j}zx",
];
const ACTIONS: [&str; 5] = [
    "publish",
    "retain",
    "subscribe",
    "receive",
    "publish, retain",
];

fn rule(rng: &mut Rng) -> String {
    let effect = if rng.below(100) < 75 { "allow" } else { "deny" };
    let depth = 1 + rng.below(3);
    let mut levels: Vec<&str> = (0..depth).map(|_| rng.pick(&LEVELS)).collect();
    if rng.below(100) < 25 {
        levels.push("#");
    }
    let actions = rng.pick(&ACTIONS);
    let actions = if rng.below(100) < 30 {
        "publish, retain, subscribe, receive"
    } else {
        actions
    };
    format!("{effect} u {actions} \"{}\"", levels.join("/"))
}

fn pair(rng: &mut Rng) -> (String, String) {
    let mut rules: Vec<String> = (0..1 + rng.below(4)).map(|_| rule(rng)).collect();
    let old = format!("{HEAD}{}\n", rules.join("\n"));
    match rng.below(4) {
        0 => rules.push(rule(rng)),
        1 if rules.len() > 1 => {
            let i = rng.below(rules.len());
            rules.remove(i);
        }
        2 => {
            let i = rng.below(rules.len());
            rules[i] = if let Some(rest) = rules[i].strip_prefix("allow") {
                format!("deny{rest}")
            } else {
                format!("allow{}", &rules[i][4..])
            };
        }
        _ => {
            let i = rng.below(rules.len());
            rules[i] = rule(rng);
        }
    }
    (old, format!("{HEAD}{}\n", rules.join("\n")))
}

fn load(name: &str, text: &str) -> Option<(Policy, Engine)> {
    let policy = Policy::from_source(&Source::new(name, text.to_string())).ok()?;
    let engine = Engine::new(&policy.checked).ok()?;
    Some((policy, engine))
}

const VALUES: [&str; 13] = [
    "f1", "f2", "f3", "x", "y", "p", "k", "kx", "z", "x_y", "q", "kz", "zx",
];
const TOPIC_LEVELS: [&str; 15] = [
    "x", "y", "p", "q", "k", "kz", "z", "", "$x", "ATTR", "ATTR_w", "CLIENT", "kzx", "kzzx", "kx",
];

fn request<'a>(action: usize, topic: &'a str) -> (Request<'a>, &'static str) {
    match action {
        0 => (
            Request::Publish {
                topic,
                retain: false,
            },
            "publish",
        ),
        1 => (
            Request::Publish {
                topic,
                retain: true,
            },
            "retain",
        ),
        2 => (Request::subscribe(topic), "subscribe"),
        _ => (Request::receive(topic), "receive"),
    }
}

fn verdict_allowed(
    reference: &Reference<'_>,
    attrs: &[(&str, &str)],
    client: &str,
    req: Request<'_>,
) -> bool {
    let binding: Binding = reference.bind(&Identity::asserted("u", attrs.iter().copied()), client);
    reference.decide(&binding, req).verdict == Verdict::Allowed
}

#[test]
fn diff_reports_exactly_what_the_reference_interpreter_adds() {
    let seed = std::env::var("TOPICGUARD_ANALYSIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00D1_FF5E_u64);
    let mut rng = Rng(seed);
    let (mut compared, mut refused) = (0, 0);
    for case in 0..80 {
        let (old_text, new_text) = pair(&mut rng);
        let (Some((old, old_engine)), Some((new, new_engine))) =
            (load("old.policy", &old_text), load("new.policy", &new_text))
        else {
            continue;
        };
        let report = match diff(
            Side {
                checked: &old.checked,
                engine: &old_engine,
            },
            Side {
                checked: &new.checked,
                engine: &new_engine,
            },
        ) {
            Ok(report) => report,
            // Outside the exact fragment: refused, never answered from a part.
            Err(AnalysisError::Inexact { .. }) => {
                refused += 1;
                continue;
            }
            Err(e) => panic!("case {case}: {e}\nOLD:\n{old_text}\nNEW:\n{new_text}"),
        };
        let old_ref = Reference::new(&old.checked);
        let new_ref = Reference::new(&new.checked);
        // Every reported witness is really added (or removed).
        for change in &report.changes {
            for w in &change.witnesses {
                let attrs: Vec<(&str, &str)> = w
                    .request
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let topic = w.request.topic.clone().unwrap_or_default();
                let action = ["publish", "retain", "subscribe", "receive"]
                    .iter()
                    .position(|a| *a == w.request.action);
                let req = match action {
                    Some(i) => request(i, &topic).0,
                    None => Request::Connect,
                };
                let before = verdict_allowed(&old_ref, &attrs, &w.request.client_id, req);
                let after = verdict_allowed(&new_ref, &attrs, &w.request.client_id, req);
                assert_eq!(
                    (before, after),
                    (!change.added, change.added),
                    "case {case}: witness {w:?}\nOLD:\n{old_text}\nNEW:\n{new_text}"
                );
            }
        }
        // Every sampled added request is covered by a reported change.
        for _ in 0..300 {
            let a = rng.pick(&VALUES);
            let b = rng.pick(&VALUES);
            let c = rng.pick(&VALUES);
            let client = format!("u:{a}:{b}");
            let depth = 1 + rng.below(4);
            let topic: Vec<String> = (0..depth)
                .map(|_| {
                    let attr = [a, b, c][rng.below(3)];
                    rng.pick(&TOPIC_LEVELS)
                        .replace("ATTR", attr)
                        .replace("CLIENT", &client)
                })
                .collect();
            let topic = topic.join("/");
            let action = rng.below(4);
            let (req, name) = request(action, &topic);
            let attrs = [("a", a), ("b", b), ("c", c)];
            let before = verdict_allowed(&old_ref, &attrs, &client, req);
            let after = verdict_allowed(&new_ref, &attrs, &client, req);
            compared += 1;
            if after && !before {
                let session = new_engine.bind(&Identity::asserted("u", attrs), &client);
                let rule = new_engine.decide(&session, req).rule;
                let cite = rule.map(|r| new.checked.rule(r).text().to_string());
                let covered = report.changes.iter().any(|c| {
                    c.added
                        && c.action == name
                        && (name == "subscribe" || c.rule.as_ref().map(|r| r.text.clone()) == cite)
                });
                assert!(
                    covered,
                    "case {case}: {name} {topic} with a={a} b={b} c={c} is added but not reported\nOLD:\n{old_text}\nNEW:\n{new_text}\nreport: {report:#?}"
                );
            }
        }
    }
    assert!(compared > 5_000, "too few requests compared: {compared}");
    assert!(refused < 40, "refused {refused} of 80 pairs");
}

#[test]
fn verify_counterexamples_are_real_and_leaks_are_found() {
    let mut rng = Rng(0x0417_1FED);
    let (mut refuted, mut proved) = (0, 0);
    for case in 0..60 {
        let (text, _) = pair(&mut rng);
        let text = format!("{text}assert u only \"{{a}}/#\"\n");
        let Some((policy, engine)) = load("p.policy", &text) else {
            continue;
        };
        let report = match verify(&policy.checked, &engine) {
            Ok(report) => report,
            Err(AnalysisError::Inexact { .. }) => continue,
            Err(e) => panic!("case {case}: {e}\n{text}"),
        };
        let only = &report.properties[0];
        assert_eq!(only.property, "only");
        let reference = Reference::new(&policy.checked);
        let namespace = |topic: &str, a: &str| topic == a || topic.starts_with(&format!("{a}/"));
        if let Some(example) = &only.counterexample {
            refuted += 1;
            let w = &example.request;
            let attrs: Vec<(&str, &str)> = w
                .attrs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let topic = w.topic.clone().expect("a topic");
            let i = ["publish", "retain", "subscribe", "receive"]
                .iter()
                .position(|a| *a == w.action)
                .expect("a topic action");
            assert!(
                verdict_allowed(&reference, &attrs, &w.client_id, request(i, &topic).0),
                "case {case}: {w:?}\n{text}"
            );
            assert!(
                !namespace(&topic, &w.attrs["a"]),
                "case {case}: {w:?}\n{text}"
            );
        } else {
            proved += 1;
            for _ in 0..300 {
                let a = rng.pick(&VALUES);
                let b = rng.pick(&VALUES);
                let c = rng.pick(&VALUES);
                let client = format!("u:{a}:{b}");
                let depth = 1 + rng.below(4);
                let topic: Vec<String> = (0..depth)
                    .map(|_| {
                        rng.pick(&TOPIC_LEVELS)
                            .replace("ATTR", a)
                            .replace("CLIENT", &client)
                    })
                    .collect();
                let topic = topic.join("/");
                let (req, name) = request(rng.below(4), &topic);
                if verdict_allowed(&reference, &[("a", a), ("b", b), ("c", c)], &client, req) {
                    assert!(
                        namespace(&topic, a),
                        "case {case}: verify missed {name} {topic} a={a} b={b}\n{text}"
                    );
                }
            }
        }
    }
    assert!(
        refuted >= 10 && proved >= 5,
        "refuted {refuted}, proved {proved}"
    );
}
