//! Rendered documents, read by AWS's documented evaluation ([`super::eval`]), never allow
//! a request the engine denies — over generated policies, identities with AWS-special
//! attribute values, and requests around every rule. How often they deny what the engine
//! allows (narrowing) is counted and printed. `TOPICGUARD_AWS_SEED` replays another seed,
//! `TOPICGUARD_AWS_POLICIES` changes the number of generated policies,
//! `TOPICGUARD_AWS_SHOW_NARROWED=1` prints each narrowed request.

use super::eval::{Policies, allows};
use super::generate::{self, Ask, Rng};
use super::{ARN, target};
use std::collections::BTreeMap;
use topicguard::ast::Action;
use topicguard::aws::plan::Exactness;
use topicguard::aws::{RenderError, Rendered, document, render};
use topicguard::{Engine, Identity, Policy, Session, Source};

/// Requests asked per rendered session.
const ASKS: usize = 400;

/// What one session's requests showed.
#[derive(Default, Debug)]
pub struct Tally {
    pub asked: usize,
    /// The engine allowed.
    pub allowed: usize,
    /// The engine allowed and AWS did too.
    pub granted: usize,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.asked += other.asked;
        self.allowed += other.allowed;
        self.granted += other.granted;
    }

    /// Percentage of the engine's allows that AWS denies.
    pub fn narrowed_percent(&self) -> f64 {
        if self.allowed == 0 {
            return 0.0;
        }
        100.0 * (self.allowed - self.granted) as f64 / self.allowed as f64
    }
}

/// Everything a document must be for AWS to accept it.
pub fn check_documents(rendered: &Rendered) {
    let docs = &rendered.documents;
    assert!(
        docs.len() <= document::MAX_DOCUMENTS,
        "{} documents",
        docs.len()
    );
    for doc in docs {
        let text = serde_json::to_string(doc).unwrap();
        assert!(
            text.len() <= document::MAX_DOCUMENT_CHARS,
            "{} characters",
            text.len()
        );
        assert_eq!(doc.version, "2012-10-17");
        let mut sids = std::collections::HashSet::new();
        for st in &doc.statements {
            assert!(
                !st.sid.is_empty() && st.sid.chars().all(|c| c.is_ascii_alphanumeric()),
                "Sid {}",
                st.sid
            );
            assert!(
                sids.insert(st.sid.clone()),
                "Sid {} twice in one document",
                st.sid
            );
            assert!(!st.resources.is_empty());
            for r in &st.resources {
                assert!(r.starts_with(&format!("{ARN}:")), "resource {r}");
            }
        }
    }
}

/// Renders one session, asks `asks` generated requests of both the engine and AWS's
/// evaluation, and panics on any request AWS allows and the engine denies.
pub fn check_session(
    engine: &Engine,
    session: &Session,
    rng: &mut Rng,
    asks: usize,
    label: &str,
) -> Result<(Rendered, BTreeMap<Action, Tally>), RenderError> {
    let rendered = match render(engine, session, &target()) {
        Ok(r) => r,
        Err(
            e @ (RenderError::Rejected(_) | RenderError::ConnectDenied(_) | RenderError::Fit(_)),
        ) => {
            return Err(e);
        }
        Err(other) => panic!("{label}: rendering failed: {other}"),
    };
    check_documents(&rendered);
    let policies = Policies::parse(&serde_json::to_value(&rendered.documents).unwrap());
    let filtered = session
        .identity_id()
        .is_some_and(|id| engine.checked().identities[id.0 as usize].filtered_subscriptions);
    let mut tallies: BTreeMap<Action, Tally> = BTreeMap::new();
    let mut asked: Vec<Ask> = vec![Ask::Connect];
    for _ in 0..asks {
        asked.push(generate::ask(
            rng,
            engine.checked(),
            &session.attrs().to_map(),
        ));
    }
    for ask in asked {
        let engine_allows = engine.decide(session, ask.request()).is_allowed();
        let aws_allows = allows(&policies, ARN, &ask.aws(session.client_id()));
        let action = match &ask {
            Ask::Publish(_, true) => Action::Retain,
            other => other.request().action(),
        };
        if aws_allows && !engine_allows {
            panic!(
                "{label}: AWS would allow {ask:?} for {} ({}), which topicguard denies\ndocuments: {}",
                session.kind(),
                session.client_id(),
                serde_json::to_string_pretty(&rendered.documents).unwrap()
            );
        }
        let exact = rendered
            .exactness
            .iter()
            .any(|(a, e)| *a == action && *e == Exactness::Exact);
        let claims_exact = exact && matches!(action, Action::Publish | Action::Connect)
            || (exact && action == Action::Receive && !filtered);
        if claims_exact && engine_allows && !aws_allows {
            panic!(
                "{label}: {action} is certified exact, yet AWS denies {ask:?} that topicguard allows\ndocuments: {}",
                serde_json::to_string_pretty(&rendered.documents).unwrap()
            );
        }
        if show_narrowed() && engine_allows && !aws_allows {
            eprintln!(
                "narrowed: {ask:?} for {} ({})\n{label}\nnotes: {:#?}",
                session.kind(),
                session.client_id(),
                rendered.notes
            );
        }
        let tally = tallies.entry(action).or_default();
        tally.asked += 1;
        tally.allowed += usize::from(engine_allows);
        tally.granted += usize::from(engine_allows && aws_allows);
    }
    Ok((rendered, tallies))
}

/// `TOPICGUARD_AWS_SHOW_NARROWED=1` prints every request the engine allows and AWS would
/// not, with the policy and the notes.
fn show_narrowed() -> bool {
    std::env::var_os("TOPICGUARD_AWS_SHOW_NARROWED").is_some()
}

fn seed() -> u64 {
    std::env::var("TOPICGUARD_AWS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xA75_1D0C5)
}

fn policy_count() -> usize {
    std::env::var("TOPICGUARD_AWS_POLICIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40)
}

#[test]
fn generated_policies_never_grant_more_on_aws() {
    let seed = seed();
    let mut rng = Rng(seed);
    let mut total: BTreeMap<Action, Tally> = BTreeMap::new();
    let (mut rendered, mut invalid, mut rejected, mut too_big) = (0, 0, 0, 0);
    for n in 0..policy_count() {
        let text = generate::policy(&mut rng);
        let policy = match Policy::from_source(&Source::new("gen.policy", text.as_str())) {
            Ok(p) => p,
            Err(e) => {
                panic!("seed {seed} policy {n} does not check: {e}\n{text}");
            }
        };
        let engine = Engine::builder(policy.checked.clone())
            .build()
            .expect("compiles");
        for _ in 0..2 {
            let (identity, client_id) = generate::session(&mut rng, &policy.checked);
            let session = engine.bind(&identity, &client_id);
            let label = format!("seed {seed} policy {n}\n{text}");
            match check_session(&engine, &session, &mut rng, ASKS, &label) {
                Ok((_, tallies)) => {
                    rendered += 1;
                    for (action, t) in tallies {
                        total.entry(action).or_default().add(&t);
                    }
                }
                Err(RenderError::Fit(_)) => too_big += 1,
                Err(_) => rejected += 1,
            }
            invalid += usize::from(session.error().is_some());
        }
    }
    eprintln!(
        "generated policies: {rendered} sessions rendered; not rendered: {rejected} refused ({invalid} by the identity's own values), {too_big} beyond ten documents"
    );
    for (action, t) in &total {
        eprintln!(
            "  {action:<9} asked {:>6}  topicguard allowed {:>5}  AWS granted {:>5}  narrowed {:>5.1}%",
            t.asked,
            t.allowed,
            t.granted,
            t.narrowed_percent()
        );
    }
    assert!(
        rendered > policy_count() / 2,
        "too few sessions rendered: {rendered}"
    );
    let allowed: usize = total.values().map(|t| t.allowed).sum();
    assert!(
        allowed > 1000,
        "the generator must reach allowed requests ({allowed})"
    );
}

/// Renders one identity of a small policy.
fn rendered(text: &str, pid: &str, client_id: &str) -> (Engine, Session, Policies) {
    let policy = Policy::from_source(&Source::new("t.policy", text)).expect("valid policy");
    let engine = Engine::builder(policy.checked.clone())
        .build()
        .expect("compiles");
    let session = engine.bind(&Identity::asserted("m", [("pid", pid)]), client_id);
    let rendered = render(&engine, &session, &target()).expect("renders");
    check_documents(&rendered);
    let docs = serde_json::to_value(&rendered.documents).unwrap();
    (engine, session, Policies::parse(&docs))
}

const IDENTITY: &str =
    "identity m from jwt {\n    pid = claim \"pid\"\n    client \"m:{pid}\"\n}\nallow m connect\n";

fn aws(p: &Policies, ask: &super::eval::Ask) -> bool {
    allows(p, ARN, ask)
}

#[test]
fn attribute_values_and_set_values_are_never_wildcards_or_variables() {
    use super::eval::Ask::*;
    let text = format!(
        "{IDENTITY}set odd = \"${{iot:ClientId}}\", \"${{*}}\"\nallow m publish \"t/{{pid}}/x\"\nallow m receive \"v/{{w in odd}}\"\n"
    );
    for (pid, other) in [("*", "P1"), ("?", "Q"), ("{x}", "{y}"), ("*?*", "ab")] {
        let (_, _, p) = rendered(&text, pid, &format!("m:{pid}"));
        assert!(aws(&p, &Publish(format!("t/{pid}/x"), false)), "{pid}");
        assert!(
            !aws(&p, &Publish(format!("t/{other}/x"), false)),
            "{pid} widened to {other}"
        );
        assert!(!aws(&p, &Publish("t/a/b/x".to_string(), false)), "{pid}");
    }
    let (_, _, p) = rendered(&text, "P1", "m:P1");
    assert!(aws(&p, &Receive("v/${iot:ClientId}".into())));
    assert!(aws(&p, &Receive("v/${*}".into())));
    assert!(
        !aws(&p, &Receive("v/m:P1".into())),
        "a set value became a policy variable"
    );
    assert!(!aws(&p, &Receive("v/*".into())));
}

#[test]
fn one_free_level_is_never_several() {
    use super::eval::Ask::*;
    let text = format!(
        "{IDENTITY}allow m publish \"a/{{+r}}\"\nallow m subscribe, receive \"s/+/x\"\nallow m publish \"d/dev-{{+n}}/up\"\n"
    );
    let (engine, session, p) = rendered(&text, "P1", "m:P1");
    for ok in [
        Publish("a/r1".into(), false),
        Publish("a/".into(), false),
        Publish("d/dev-7/up".into(), false),
        Subscribe("s/+/x".into()),
        Subscribe("s/q/x".into()),
        Receive("s/q/x".into()),
    ] {
        assert!(aws(&p, &ok), "{ok:?}");
    }
    for bad in [
        Publish("a/r1/r2".into(), false),
        Publish("d/dev-7/x/up".into(), false),
        Subscribe("s/#".into()),
        Subscribe("s/+/+/x".into()),
        Subscribe("s/a/b/x".into()),
        Receive("s/a/b/x".into()),
        Receive("s/x".into()),
    ] {
        assert!(!aws(&p, &bad), "{bad:?} widened");
    }
    assert!(
        engine
            .decide(&session, topicguard::Request::subscribe("s/+/x"))
            .is_allowed()
    );
}

#[test]
fn deny_rules_bite_on_aws_too() {
    use super::eval::Ask::*;
    let text = format!(
        "{IDENTITY}allow m publish, subscribe, receive \"f/{{pid}}/+\"\ndeny any publish, subscribe, receive \"f/+/secret\"\n"
    );
    let (_, _, p) = rendered(&text, "P1", "m:P1");
    assert!(aws(&p, &Publish("f/P1/open".into(), false)));
    assert!(!aws(&p, &Publish("f/P1/secret".into(), false)));
    assert!(!aws(&p, &Receive("f/P1/secret".into())));
    assert!(aws(&p, &Subscribe("f/P1/open".into())));
    assert!(!aws(&p, &Subscribe("f/P1/secret".into())));
    assert!(
        !aws(&p, &Subscribe("f/P1/+".into())),
        "+ covers the denied topic"
    );
    assert!(!aws(&p, &Subscribe("f/P1/#".into())));
}

#[test]
fn what_aws_cannot_express_is_narrowed_with_a_note_never_widened() {
    let text = format!(
        "{IDENTITY}allow m publish \"r/{{pid}}/{{+rid}}\"\nallow m publish \"r/{{pid}}/{{+rid}}/{{ok|err}}\"\n"
    );
    let policy = Policy::from_source(&Source::new("t.policy", text.as_str())).unwrap();
    let engine = Engine::builder(policy.checked.clone()).build().unwrap();
    let session = engine.bind(&Identity::asserted("m", [("pid", "P1")]), "m:P1");
    let rendered = render(&engine, &session, &target()).unwrap();
    let publish = rendered
        .exactness
        .iter()
        .find(|(a, _)| *a == Action::Publish)
        .unwrap();
    assert_eq!(publish.1, Exactness::Narrowed);
    let note = rendered
        .notes
        .iter()
        .find(|n| n.rule.is_some() && n.action == Action::Publish)
        .expect("a note names the rule");
    assert!(note.text.contains("`r/P1/*` not granted"), "{}", note.text);
    assert!(note.text.contains("would also remove"), "{}", note.text);
    let p = Policies::parse(&serde_json::to_value(&rendered.documents).unwrap());
    use super::eval::Ask::Publish;
    assert!(aws(&p, &Publish("r/P1/a/ok".into(), false)));
    assert!(!aws(&p, &Publish("r/P1/a/b".into(), false)));
    assert!(
        !aws(&p, &Publish("r/P1/a".into(), false)),
        "narrowed, not widened"
    );
}

#[test]
fn huge_sets_and_overfull_policies_are_errors_naming_what_did_not_fit() {
    let values: Vec<String> = (0..1500).map(|i| format!("v{i}")).collect();
    let text = format!(
        "{IDENTITY}set big = {}\nallow m publish \"t/{{x in big}}\"\n",
        values.join(", ")
    );
    let policy = Policy::from_source(&Source::new("t.policy", text.as_str())).unwrap();
    let engine = Engine::builder(policy.checked.clone()).build().unwrap();
    let session = engine.bind(&Identity::asserted("m", [("pid", "P1")]), "m:P1");
    let error = render(&engine, &session, &target())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("t.policy:7:1") && error.contains("expands to more than"),
        "{error}"
    );
    let rules: String = (0..300)
        .map(|i| format!("allow m publish \"topic/number/{i}/for/{{pid}}/which/is/long\"\n"))
        .collect();
    let text = format!("{IDENTITY}{rules}");
    let policy = Policy::from_source(&Source::new("t.policy", text.as_str())).unwrap();
    let engine = Engine::builder(policy.checked.clone()).build().unwrap();
    let session = engine.bind(&Identity::asserted("m", [("pid", "P1")]), "m:P1");
    let error = render(&engine, &session, &target())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("documents") && error.contains("AWS IoT accepts 10"),
        "{error}"
    );
}

#[test]
fn shared_subscriptions_are_never_granted_by_a_pattern_that_reads_them_whole() {
    use super::eval::Ask::*;
    // AWS checks iot:Subscribe against the whole `$share/<group>/<filter>` string, while
    // topicguard judges the filter after the group: `$*/*` must not let `$share/g/x` through.
    let text = format!("{IDENTITY}allow m subscribe, receive \"${{+c}}/#\"\n");
    let (engine, session, p) = rendered(&text, "P1", "m:P1");
    assert!(aws(&p, &Subscribe("$foo/x".into())));
    for shared in ["$share/g/x", "$share/g/$x", "$queue/x", "$share/g/#"] {
        let engine_allows = engine
            .decide(&session, topicguard::Request::subscribe(shared))
            .is_allowed();
        assert!(
            !aws(&p, &Subscribe(shared.into())),
            "{shared} granted on AWS (topicguard allows it: {engine_allows})"
        );
    }
    assert!(!aws(&p, &Publish("$share/g/x".into(), false)));
    let both = format!(
        "{IDENTITY}allow m publish, subscribe \"#\"\nallow m publish, subscribe \"${{+c}}/#\"\n"
    );
    let (_, _, p) = rendered(&both, "P1", "m:P1");
    assert!(aws(&p, &Subscribe("a/b".into())) && aws(&p, &Subscribe("$x/b".into())));
    assert!(!aws(&p, &Subscribe("$share/g/x".into())));
    assert!(!aws(&p, &Publish("$share/g/x".into(), false)));
}
