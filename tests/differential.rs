//! Randomized differential test: the compiled engine against the reference interpreter.
//!
//! A seeded generator writes random POLICY TEXT (so the parser and checker run too), binds
//! random identities and asks random requests; every decision of [`Engine::decide`] must
//! equal [`reference::decide`]'s: verdict and reason always, the deciding rule too except
//! for granted subscriptions, where any allow rule for `subscribe` of the identity that
//! matches some topic of the filter may be cited. A mismatch panics with everything
//! needed to reproduce it. Set `TOPICGUARD_DIFF_SEED` to replay another seed and
//! `TOPICGUARD_DIFF_POLICIES` to change the number of policies; `TOPICGUARD_DIFF_KEEP_GOING=1`
//! prints (up to 40) disagreements and fails at the end instead of at the first. This module never
//! decides anything itself: it only compares.

use std::fmt::Write as _;
use topicguard::ast::Effect;
use topicguard::check::Checked;
use topicguard::decide::{Reason, reference};
use topicguard::{Decision, Engine, Identity, Policy, Request, Session, Source, Verdict};

/// splitmix64: tiny, seedable, good enough to pick from lists.
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

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn range(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }
}

/// An identity block as generated, kept to bind sessions later.
struct IdentitySpec {
    name: String,
    /// Attributes the credential supplies (`pid`, `aid`).
    credential: Vec<&'static str>,
    /// Attributes the rules may use: credential, client captures and `client`.
    usable: Vec<&'static str>,
    /// The client template, as pieces: text, `{attr}` or `{+capture}`.
    client: Vec<ClientPart>,
}

#[derive(Clone)]
enum ClientPart {
    Text(String),
    Attr(&'static str),
    Capture(&'static str),
}

struct GeneratedPolicy {
    text: String,
    identities: Vec<IdentitySpec>,
}

fn identity(rng: &mut Rng, index: usize, out: &mut String) -> IdentitySpec {
    let kind = rng.pick(&["jwt", "certificate", "anonymous"]);
    let name = format!("id{index}");
    let mut credential = Vec::new();
    if kind != "anonymous" {
        for attr in ["pid", "aid"] {
            if rng.chance(60) {
                credential.push(attr);
            }
        }
    }
    let mut client = vec![ClientPart::Text(format!("c{index}"))];
    for attr in &credential {
        if rng.chance(50) {
            client.push(ClientPart::Text(":".into()));
            client.push(ClientPart::Attr(attr));
        }
    }
    let mut captures = Vec::new();
    if kind == "anonymous" && rng.chance(60) {
        captures.push("pid");
    }
    if rng.chance(50) {
        captures.push("inst");
    }
    for capture in &captures {
        client.push(ClientPart::Text(":".into()));
        client.push(ClientPart::Capture(capture));
    }
    let _ = writeln!(out, "identity {name} from {kind} {{");
    if kind != "anonymous" {
        let _ = writeln!(out, "    trust \"t{index}\"");
    }
    for attr in &credential {
        let source = match (kind, *attr) {
            ("jwt", a) => format!("claim \"{a}\""),
            (_, "pid") => "san.dirname.O".to_string(),
            _ => "san.dirname.CN".to_string(),
        };
        let _ = writeln!(out, "    {attr} = {source}");
    }
    if rng.chance(30) {
        let _ = writeln!(out, "    subscriptions filtered");
    }
    let _ = writeln!(out, "    client \"{}\"", client_template(&client));
    let _ = writeln!(out, "}}");
    let mut usable: Vec<&'static str> = credential.iter().chain(&captures).copied().collect();
    usable.push("client");
    IdentitySpec {
        name,
        credential,
        usable,
        client,
    }
}

fn client_template(parts: &[ClientPart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            ClientPart::Text(t) => t.clone(),
            ClientPart::Attr(a) => format!("{{{a}}}"),
            ClientPart::Capture(c) => format!("{{+{c}}}"),
        })
        .collect()
}

const SET_VALUES: &[&str] = &["a", "b", "$s", "p1", "p1_x", "c"];

/// One template level. `attrs`: what every identity of the rule binds; `sets`: defined sets.
fn level(rng: &mut Rng, attrs: &[&str], sets: &[&str]) -> String {
    loop {
        let choice = match rng.below(17) {
            0 => "a".to_string(),
            1 => "b".to_string(),
            2 => "$s".to_string(),
            3 => "p1".to_string(),
            4 => "p1_x".to_string(),
            5 => String::new(),
            6 | 7 => "+".to_string(),
            8 => "{+x}".to_string(),
            9 if attrs.contains(&"pid") => "{pid}".to_string(),
            10 if attrs.contains(&"pid") => "{pid}_x".to_string(),
            11 => "x{+c}".to_string(),
            12 if attrs.contains(&"pid") => "{+c}_{pid}".to_string(),
            13 if !sets.is_empty() => format!("{{v in {}}}", rng.pick(sets)),
            14 => "{a|b}".to_string(),
            15 => "{a|$s}".to_string(),
            16 => "{client}".to_string(),
            _ => continue,
        };
        return choice;
    }
}

fn template(rng: &mut Rng, attrs: &[&str], sets: &[&str]) -> String {
    let count = rng.range(1, 4);
    let mut levels: Vec<String> = (0..count).map(|_| level(rng, attrs, sets)).collect();
    if rng.chance(30) {
        let last = levels.len() - 1;
        levels[last] = "#".to_string();
    }
    levels.join("/")
}

fn rule(rng: &mut Rng, identities: &[IdentitySpec], sets: &[&str], out: &mut String) {
    let effect = if rng.chance(35) { "deny" } else { "allow" };
    let who: Vec<usize> = if rng.chance(30) {
        (0..identities.len()).collect()
    } else {
        let chosen: Vec<usize> = (0..identities.len()).filter(|_| rng.chance(50)).collect();
        if chosen.is_empty() {
            vec![rng.below(identities.len())]
        } else {
            chosen
        }
    };
    let attrs: Vec<&str> = ["pid", "aid", "client"]
        .into_iter()
        .filter(|a| who.iter().all(|&i| identities[i].usable.contains(a)))
        .collect();
    let who_text = if who.len() == identities.len() && rng.chance(70) {
        "any".to_string()
    } else {
        let names: Vec<&str> = who.iter().map(|&i| identities[i].name.as_str()).collect();
        names.join(", ")
    };
    if rng.chance(8) {
        let _ = writeln!(out, "{effect} {who_text} connect");
        return;
    }
    let mut actions: Vec<&str> = Vec::new();
    for (action, percent) in [
        ("publish", 40),
        ("retain", 25),
        ("subscribe", 55),
        ("receive", 35),
    ] {
        if rng.chance(percent) {
            actions.push(action);
        }
    }
    if actions.is_empty() {
        actions.push(rng.pick(&["publish", "subscribe", "receive"]));
    }
    let template = template(rng, &attrs, sets);
    let _ = writeln!(
        out,
        "{effect} {who_text} {} \"{template}\"",
        actions.join(", ")
    );
}

fn policy(rng: &mut Rng) -> GeneratedPolicy {
    let mut text = String::new();
    let identities: Vec<IdentitySpec> = (0..rng.range(1, 3))
        .map(|i| identity(rng, i, &mut text))
        .collect();
    let mut sets = Vec::new();
    for name in ["s", "t"] {
        if rng.chance(40) {
            let mut values: Vec<&str> = SET_VALUES
                .iter()
                .copied()
                .filter(|_| rng.chance(40))
                .collect();
            if values.is_empty() {
                values.push(rng.pick(SET_VALUES));
            }
            let _ = writeln!(text, "set {name} = {}", values.join(", "));
            sets.push(name);
        }
    }
    for _ in 0..rng.range(1, 14) {
        rule(rng, &identities, &sets, &mut text);
    }
    GeneratedPolicy { text, identities }
}

const ATTR_VALUES: &[&str] = &["P1", "a", "b", "p1", "x", "A1"];
const BAD_VALUES: &[&str] = &["a/b", "+", "", "$s", "#"];
const INSTANCES: &[&str] = &["7", "a", "x_1"];

/// A verified identity for one of the policy's identities, sometimes invalid.
struct SessionSpec {
    kind: String,
    attrs: Vec<(String, String)>,
    client_id: String,
}

fn session_spec(rng: &mut Rng, identities: &[IdentitySpec]) -> SessionSpec {
    let spec = &identities[rng.below(identities.len())];
    let value = |rng: &mut Rng| -> String {
        if rng.chance(4) {
            rng.pick(BAD_VALUES).to_string()
        } else {
            rng.pick(ATTR_VALUES).to_string()
        }
    };
    let attrs: Vec<(String, String)> = spec
        .credential
        .iter()
        .map(|a| (a.to_string(), value(rng)))
        .collect();
    let mut client_id = String::new();
    for part in &spec.client {
        match part {
            ClientPart::Text(t) => client_id.push_str(t),
            ClientPart::Attr(a) => {
                let bound = attrs.iter().find(|(k, _)| k == a).map(|(_, v)| v.as_str());
                client_id.push_str(bound.unwrap_or(""));
            }
            ClientPart::Capture("pid") => client_id.push_str(&value(rng)),
            ClientPart::Capture(_) => client_id.push_str(rng.pick(INSTANCES)),
        }
    }
    if rng.chance(3) {
        client_id.push('z');
    }
    let kind = if rng.chance(2) {
        "nobody".to_string()
    } else {
        spec.name.clone()
    };
    SessionSpec {
        kind,
        attrs,
        client_id,
    }
}

/// Topic levels: the policy alphabet, renderings of attributes, pattern matches, misses.
fn topic_level(rng: &mut Rng, session: &SessionSpec) -> String {
    let attr = |i: usize| {
        session
            .attrs
            .get(i)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    match rng.below(22) {
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
        18 => "zz".into(),
        19 => "a_x".into(),
        20 => "x_a".into(),
        _ => "A1".into(),
    }
}

fn topic(rng: &mut Rng, session: &SessionSpec) -> String {
    if rng.chance(3) {
        return rng.pick(&["", "a/+", "#", "a/#", "a\u{0}b"]).to_string();
    }
    let count = rng.pick(&[1, 1, 2, 2, 2, 3, 3, 4, 5]);
    let levels: Vec<String> = (0..count).map(|_| topic_level(rng, session)).collect();
    levels.join("/")
}

fn filter(rng: &mut Rng, session: &SessionSpec) -> String {
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
            ])
            .to_string();
    }
    let count = rng.pick(&[1, 1, 2, 2, 2, 3, 3, 4]);
    let mut levels: Vec<String> = (0..count)
        .map(|_| {
            if rng.chance(35) {
                "+".to_string()
            } else {
                topic_level(rng, session)
            }
        })
        .collect();
    if rng.chance(35) {
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
enum Ask {
    Connect,
    Publish(String, bool),
    Subscribe(String),
    Receive(String),
}

impl Ask {
    fn request(&self) -> Request<'_> {
        match self {
            Ask::Connect => Request::Connect,
            Ask::Publish(topic, retain) => Request::Publish {
                topic,
                retain: *retain,
            },
            Ask::Subscribe(filter) => Request::subscribe(filter),
            Ask::Receive(topic) => Request::receive(topic),
        }
    }
}

fn ask(rng: &mut Rng, session: &SessionSpec) -> Ask {
    match rng.below(20) {
        0 => Ask::Connect,
        1..=5 => Ask::Publish(topic(rng, session), rng.chance(35)),
        6..=8 => Ask::Receive(topic(rng, session)),
        _ => Ask::Subscribe(filter(rng, session)),
    }
}

/// What one comparison found.
enum Outcome {
    Agreed,
    /// The reference gave up (too many representative topics): nothing to compare.
    ReferenceTooComplex,
}

/// Is `rule` an acceptable citation for a granted subscription of `filter`?
fn acceptable_grant(checked: &Checked, session: &Session, filter: &str, rule: Decision) -> bool {
    let (Some(id), Some(identity)) = (rule.rule, session.identity_id()) else {
        return false;
    };
    let cited = checked.rule(id);
    let of_identity = cited.effect == Effect::Allow
        && cited.applies_to(identity)
        && cited.actions.contains(topicguard::ast::Action::Subscribe);
    let inner = topicguard::decide::split_shared(filter).map_or(filter, |(_, f)| f);
    let topics = reference::representatives(inner, &[cited], session.attrs());
    let pattern = cited.topic.as_ref();
    let overlaps = topics.is_some_and(|topics| {
        topics.iter().any(|(t, _)| {
            pattern.is_some_and(|p| {
                topicguard::check::matches::match_topic(p, t, session.attrs()).is_some()
            })
        })
    });
    of_identity && overlaps
}

/// Compares one request; `Err` describes the disagreement.
fn compare(engine: &Engine, session: &Session, ask: &Ask) -> Result<Outcome, String> {
    let request = ask.request();
    let compiled = engine.decide(session, request);
    let expected = reference::decide(engine.checked(), session, request);
    if expected.reason == Reason::TooComplex {
        return Ok(Outcome::ReferenceTooComplex);
    }
    let same_outcome = (compiled.verdict, compiled.reason) == (expected.verdict, expected.reason);
    let same_rule = match ask {
        Ask::Subscribe(filter) if expected.verdict == Verdict::Allowed => {
            acceptable_grant(engine.checked(), session, filter, compiled)
        }
        _ => compiled.rule == expected.rule,
    };
    if same_outcome && same_rule {
        Ok(Outcome::Agreed)
    } else {
        Err(format!("compiled:  {compiled:?}\nreference: {expected:?}"))
    }
}

fn bind(engine: &Engine, spec: &SessionSpec) -> Session {
    let identity = Identity::asserted(&spec.kind, spec.attrs.iter().cloned());
    engine.bind(&identity, &spec.client_id)
}

fn compile(text: &str) -> Option<Engine> {
    let source = Source::new("generated.policy", text.to_string());
    let policy = Policy::from_source(&source).ok()?;
    Engine::new(&policy.checked).ok()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Counts of what a run did.
#[derive(Default, Debug)]
struct Tally {
    policies: usize,
    rejected_policies: usize,
    requests: usize,
    subscribes: usize,
    allowed: usize,
    explicit: usize,
    implicit: usize,
    reference_too_complex: usize,
    /// Only counted with `TOPICGUARD_DIFF_KEEP_GOING` set (else the first one panics).
    mismatches: usize,
}

fn run_policy(rng: &mut Rng, seed: u64, tally: &mut Tally) {
    let generated = policy(rng);
    let Some(engine) = compile(&generated.text) else {
        tally.rejected_policies += 1;
        return;
    };
    tally.policies += 1;
    for _ in 0..4 {
        let spec = session_spec(rng, &generated.identities);
        let session = bind(&engine, &spec);
        for _ in 0..12 {
            let ask = ask(rng, &spec);
            match compare(&engine, &session, &ask) {
                Ok(Outcome::Agreed) => {}
                Ok(Outcome::ReferenceTooComplex) => tally.reference_too_complex += 1,
                Err(problem) => {
                    let report = format!(
                        "compiled and reference disagree (seed {seed:#x})\n--- policy ---\n{}--- identity ---\n{} {:?} client id {:?}\n--- request ---\n{ask:?}\n{problem}",
                        generated.text, spec.kind, spec.attrs, spec.client_id
                    );
                    if std::env::var_os("TOPICGUARD_DIFF_KEEP_GOING").is_none() {
                        panic!("{report}");
                    }
                    tally.mismatches += 1;
                    if tally.mismatches <= 40 {
                        println!("{report}\n");
                    }
                }
            }
            tally.requests += 1;
            tally.subscribes += matches!(ask, Ask::Subscribe(_)) as usize;
            match engine.decide(&session, ask.request()).verdict {
                Verdict::Allowed => tally.allowed += 1,
                Verdict::ExplicitDeny => tally.explicit += 1,
                Verdict::ImplicitDeny => tally.implicit += 1,
            }
        }
    }
}

#[test]
fn compiled_engine_agrees_with_the_reference_interpreter() {
    let seed = env_number("TOPICGUARD_DIFF_SEED", 0x7090_6A4D);
    let policies = env_number("TOPICGUARD_DIFF_POLICIES", 2_200);
    println!("differential seed {seed:#x}, {policies} policies");
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    for _ in 0..policies {
        run_policy(&mut rng, seed, &mut tally);
    }
    println!("{tally:?}");
    assert_eq!(tally.mismatches, 0, "disagreements: {tally:?}");
    let compared = tally.requests - tally.reference_too_complex;
    assert!(
        tally.policies * 10 >= policies as usize * 9,
        "too many generated policies were rejected: {tally:?}"
    );
    assert!(
        tally.reference_too_complex * 200 <= tally.requests,
        "the reference gave up too often: {tally:?}"
    );
    if policies >= 2_000 {
        assert!(compared >= 100_000, "only {compared} requests compared");
    }
    for count in [tally.allowed, tally.explicit, tally.implicit] {
        assert!(count * 20 >= tally.requests, "a verdict is rare: {tally:?}");
    }
}

/// Cases the randomized test once found (compiled-engine bugs, since fixed), each with a
/// neighbouring case that was always right, replayed with the verdict and rule the
/// semantics require.
struct Regression {
    policy: &'static str,
    ask: Replay,
    verdict: Verdict,
    rule: Option<u32>,
}

enum Replay {
    Subscribe(&'static str),
}

/// One identity `u`, `subscriptions filtered` when `FILTERED` precedes the rules.
fn regression_policy(rules: &str) -> String {
    let (filtered, rules) = match rules.strip_prefix("FILTERED\n") {
        Some(rest) => ("    subscriptions filtered\n", rest),
        None => ("", rules),
    };
    format!("identity u from anonymous {{\n{filtered}    client \"c\"\n}}\n{rules}")
}

const REGRESSIONS: &[Regression] = &[
    // `+` alone never matches the empty topic, which is the only topic `/#` shares with it.
    Regression {
        policy: "FILTERED\nallow u subscribe \"/#\"\n",
        ask: Replay::Subscribe("+"),
        verdict: Verdict::ImplicitDeny,
        rule: None,
    },
    Regression {
        policy: "deny u subscribe \"/#\"\nallow u subscribe \"+\"\n",
        ask: Replay::Subscribe("+"),
        verdict: Verdict::Allowed,
        rule: Some(1),
    },
    // A template of one empty level matches only the empty topic: it never matches.
    Regression {
        policy: "deny u subscribe \"\"\n",
        ask: Replay::Subscribe("+/#"),
        verdict: Verdict::ImplicitDeny,
        rule: None,
    },
    Regression {
        policy: "deny u subscribe \"\"\nallow u subscribe \"#\"\n",
        ask: Replay::Subscribe("#"),
        verdict: Verdict::Allowed,
        rule: Some(1),
    },
    // Filtered: a topic that is allowed and denied is not allowed.
    Regression {
        policy: "FILTERED\ndeny u subscribe \"a/b\"\nallow u subscribe \"a/b\"\n",
        ask: Replay::Subscribe("a/+"),
        verdict: Verdict::ImplicitDeny,
        rule: None,
    },
    Regression {
        policy: "FILTERED\ndeny u subscribe \"a/b\"\nallow u subscribe \"a/+\"\n",
        ask: Replay::Subscribe("a/+"),
        verdict: Verdict::Allowed,
        rule: Some(1),
    },
    // `a/#` is `a` and everything below it: two rules may cover it together.
    Regression {
        policy: "allow u subscribe \"a\"\nallow u subscribe \"a/+/#\"\n",
        ask: Replay::Subscribe("a/#"),
        verdict: Verdict::Allowed,
        rule: Some(0),
    },
    Regression {
        policy: "allow u subscribe \"a\"\nallow u subscribe \"a/+/+/#\"\n",
        ask: Replay::Subscribe("a/#"),
        verdict: Verdict::ImplicitDeny,
        rule: None,
    },
    Regression {
        policy: "FILTERED\ndeny u subscribe \"a\"\ndeny u subscribe \"a/+/#\"\n",
        ask: Replay::Subscribe("a/#"),
        verdict: Verdict::ExplicitDeny,
        rule: Some(0),
    },
    // Filtered, all denied: the first deny of the topic no rule names, not the shallowest.
    Regression {
        policy: "FILTERED\ndeny u subscribe \"a/+\"\ndeny u subscribe \"a/#\"\n",
        ask: Replay::Subscribe("a/+"),
        verdict: Verdict::ExplicitDeny,
        rule: Some(0),
    },
    // A leading `#` never reaches a `$` topic.
    Regression {
        policy: "allow u subscribe \"#\"\n",
        ask: Replay::Subscribe("$s/#"),
        verdict: Verdict::ImplicitDeny,
        rule: None,
    },
];

#[test]
fn regression_cases_agree() {
    for (i, case) in REGRESSIONS.iter().enumerate() {
        let policy = regression_policy(case.policy);
        let engine = compile(&policy).unwrap_or_else(|| panic!("case {i}: policy rejected"));
        let spec = SessionSpec {
            kind: "u".to_string(),
            attrs: Vec::new(),
            client_id: "c".to_string(),
        };
        let session = bind(&engine, &spec);
        let ask = match case.ask {
            Replay::Subscribe(filter) => Ask::Subscribe(filter.to_string()),
        };
        if let Err(problem) = compare(&engine, &session, &ask) {
            panic!("regression case {i} ({ask:?}) disagrees:\n{policy}\n{problem}");
        }
        let decision = engine.decide(&session, ask.request());
        let want = (case.verdict, case.rule.map(topicguard::check::RuleId));
        assert_eq!(
            (decision.verdict, decision.rule),
            want,
            "regression case {i} ({ask:?}):\n{policy}"
        );
    }
}
