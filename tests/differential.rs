//! Randomized differential test: the compiled engine against the reference interpreter.
//!
//! A seeded generator ([`generate`], [`traffic`]) writes random POLICY TEXT (so the parser and checker run
//! too), makes credentials and client ids (extraction runs through the identity layer's
//! real splitter), and asks random requests. Two things must agree:
//! * binding: [`Engine::bind`] accepts exactly the identities and client ids
//!   [`Reference::bind`] accepts, with the same attributes and captures;
//! * every decision of [`Engine::decide`] equals [`Reference::decide`]'s: verdict and reason
//!   always, the deciding rule too except for granted subscriptions, where any allow rule
//!   for `subscribe` of the identity that matches some topic of the filter may be cited.
//!
//! A mismatch panics with everything needed to reproduce it. `TOPICGUARD_DIFF_SEED` replays
//! another seed, `TOPICGUARD_DIFF_POLICIES` changes the number of policies,
//! `TOPICGUARD_DIFF_KEEP_GOING=1` prints (up to 40) disagreements and fails at the end
//! instead of at the first. This module never decides anything itself: it only compares.

mod generate;
mod regressions;
mod traffic;

use generate::{GeneratedPolicy, Rng};
use topicguard::ast::{Action, Effect};
use topicguard::check::{Checked, LevelPattern, Piece};
use topicguard::decide::reference::{Binding, Reference, Refusal, topic::filter_to_judge};
use topicguard::decide::{Reason, Request};
use topicguard::{Decision, Engine, Identity, Policy, Session, Source, Verdict};
use traffic::{Ask, SessionSpec};

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

/// What one comparison found.
enum Outcome {
    Agreed,
    /// The reference gave up (too many representative topics): nothing to compare.
    ReferenceTooComplex,
    /// The engine ran out of its containment budget and denied (section 6.5: fail closed).
    EngineTooComplex,
}

/// Is `rule` an acceptable citation for a granted subscription of `filter`?
fn acceptable_grant(
    oracle: &Reference<'_>,
    bound: &Binding,
    filter: &str,
    cited: Decision,
) -> bool {
    let (Some(id), Some(bound)) = (cited.rule, bound.bound()) else {
        return false;
    };
    let rule = oracle.checked().rule(id);
    let of_identity = rule.effect == Effect::Allow
        && rule.applies_to(bound.identity)
        && rule.actions.contains(Action::Subscribe);
    let inner = filter_to_judge(filter).unwrap_or(filter);
    let topics = oracle.representatives(inner, &[id], &bound.attrs);
    let overlaps = topics.is_some_and(|topics| {
        topics
            .iter()
            .any(|(t, _)| oracle.rule_matches(id, t, &bound.attrs))
    });
    of_identity && overlaps
}

/// Both sides of one policy: the engine and the oracle.
struct Judges<'c> {
    engine: &'c Engine,
    oracle: Reference<'c>,
}

/// Compares one request; `Err` describes the disagreement.
fn compare(
    judges: &Judges<'_>,
    session: &Session,
    binding: &Binding,
    ask: &Ask,
) -> Result<Outcome, String> {
    compare_and_tell(judges, session, binding, ask).map(|(outcome, _)| outcome)
}

/// [`compare`], also giving the reference's decision.
fn compare_and_tell(
    judges: &Judges<'_>,
    session: &Session,
    binding: &Binding,
    ask: &Ask,
) -> Result<(Outcome, Decision), String> {
    let request = ask.request();
    let compiled = judges.engine.decide(session, request);
    let expected = judges.oracle.decide(binding, request);
    if expected.reason == Reason::TooComplex {
        return Ok((Outcome::ReferenceTooComplex, expected));
    }
    if compiled.reason == Reason::TooComplex && compiled.verdict == Verdict::ExplicitDeny {
        return Ok((Outcome::EngineTooComplex, expected));
    }
    let same_outcome = (compiled.verdict, compiled.reason) == (expected.verdict, expected.reason);
    let same_rule = match ask {
        Ask::Subscribe(filter) if expected.verdict == Verdict::Allowed => {
            acceptable_grant(&judges.oracle, binding, filter, compiled)
        }
        _ => compiled.rule == expected.rule,
    };
    if same_outcome && same_rule {
        return Ok((Outcome::Agreed, expected));
    }
    Err(format!("compiled:  {compiled:?}\nreference: {expected:?}"))
}

/// Compares the two bindings; `Err` describes the disagreement.
fn compare_binding(session: &Session, binding: &Binding) -> Result<(), String> {
    match (session.error(), binding) {
        (None, Binding::Bound(bound)) if session.attrs().to_map() == bound.attrs => Ok(()),
        (None, Binding::Bound(bound)) => Err(format!(
            "bound with different attributes:\ncompiled:  {:?}\nreference: {:?}",
            session.attrs(),
            bound.attrs
        )),
        (Some(_), Binding::Refused(_)) => Ok(()),
        (error, binding) => Err(format!(
            "binding disagrees:\ncompiled:  {error:?}\nreference: {binding:?}"
        )),
    }
}

/// The verified identity a session spec stands for; `None` when the credential itself
/// would be refused (its value does not split by the extraction template).
fn credential(checked: &Checked, spec: &SessionSpec) -> Option<Identity> {
    let Some(raw) = &spec.raw else {
        return Some(Identity::asserted(&spec.kind, spec.attrs.iter().cloned()));
    };
    let (_, def) = checked.identity(&spec.kind)?;
    let (_, pieces) = def.extracts.first()?;
    let parts = topicguard::identity::extract::split(raw, pieces).ok()?;
    Some(Identity::asserted(&spec.kind, parts))
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
    large_set_policies: usize,
    sessions: usize,
    refused_sessions: usize,
    refused_credentials: usize,
    requests: usize,
    subscribes: usize,
    allowed: usize,
    explicit: usize,
    implicit: usize,
    reference_too_complex: usize,
    engine_too_complex: usize,
    /// Only counted with `TOPICGUARD_DIFF_KEEP_GOING` set (else the first one panics).
    mismatches: usize,
    coverage: Coverage,
}

/// How often the generator reached what an attacker would try, so that a generator
/// that stops reaching it fails the test instead of passing quietly.
#[derive(Default, Debug)]
struct Coverage {
    /// Sessions bound with a 256-byte attribute value.
    longest_values_bound: usize,
    /// Sessions refused for a 257-byte value.
    too_long_values_refused: usize,
    /// Sessions bound with client-template captures.
    captures_bound: usize,
    /// Decisions by a rule with a set of 1,000 values or more: allowed, denied.
    large_set: (usize, usize),
    /// Decisions by a rule with two variable pieces in one level (`{pid}_{aid}`,
    /// `{pid}-{v in s}`, `{+a}:{pid}:{+b}`): allowed, denied.
    mixed_levels: (usize, usize),
    /// Allowed requests on a `$` topic or filter.
    dollar_allowed: usize,
    /// `$share/g/...#` subscriptions decided by a rule.
    shared_hash_decided: usize,
    /// Subscriptions to a filter without wildcards (decided by the engine's publish-style
    /// walk, not its containment search) decided by a rule: allowed, denied.
    wildcard_free_decided: (usize, usize),
    /// Subscriptions to a filter whose only wildcards are `+` levels (decided by the
    /// engine's level-by-level loop, not its general containment search, unless the
    /// identity has `subscriptions filtered`) decided by a rule: allowed, denied.
    plus_levels_decided: (usize, usize),
}

impl Coverage {
    fn binding(&mut self, binding: &Binding) {
        match binding {
            Binding::Bound(bound) => {
                self.longest_values_bound += bound.attrs.values().any(|v| v.len() == 256) as usize;
                let captured = ["inst", "dev"].iter().any(|c| bound.attrs.contains_key(*c));
                self.captures_bound += captured as usize;
            }
            Binding::Refused(Refusal::BadValue { why, .. }) => {
                self.too_long_values_refused += why.contains("longer") as usize;
            }
            Binding::Refused(_) => {}
        }
    }

    fn decision(&mut self, checked: &Checked, ask: &Ask, decision: Decision) {
        let Some(rule) = decision.rule.map(|id| checked.rule(id)) else {
            return;
        };
        let allowed = decision.verdict == Verdict::Allowed;
        let count = |pair: &mut (usize, usize)| {
            if allowed { pair.0 += 1 } else { pair.1 += 1 }
        };
        let levels = rule.topic.iter().flat_map(|t| &t.levels);
        let pieces: Vec<&[Piece]> = levels
            .filter_map(|l| match l {
                LevelPattern::Pieces(p) => Some(&**p),
                _ => None,
            })
            .collect();
        let large = |p: &Piece| matches!(p, Piece::OneOf { values, .. } if values.len() >= 1_000);
        if pieces.iter().any(|p| p.iter().any(large)) {
            count(&mut self.large_set);
        }
        let variable = |p: &&Piece| !matches!(p, Piece::Text(_));
        if pieces
            .iter()
            .any(|p| p.iter().filter(variable).count() >= 2)
        {
            count(&mut self.mixed_levels);
        }
        let text = match ask {
            Ask::Publish(t, _) | Ask::Receive(t) | Ask::Subscribe(t) => t.as_str(),
            Ask::Connect => "",
        };
        let judged = filter_to_judge(text).unwrap_or(text);
        self.dollar_allowed += (allowed && judged.starts_with('$')) as usize;
        let shared_hash = text.starts_with("$share/") && text.ends_with('#');
        self.shared_hash_decided += (matches!(ask, Ask::Subscribe(_)) && shared_hash) as usize;
        let wildcard_free = !judged.contains(['+', '#']);
        if matches!(ask, Ask::Subscribe(_)) && wildcard_free {
            count(&mut self.wildcard_free_decided);
        }
        let plus_levels = judged.contains('+') && !judged.contains('#');
        if matches!(ask, Ask::Subscribe(_)) && plus_levels {
            count(&mut self.plus_levels_decided);
        }
    }

    /// Every count above `least` (per run of about 2,000 policies).
    fn check(&self, least: usize) {
        let counts = [
            self.longest_values_bound,
            self.too_long_values_refused,
            self.captures_bound,
            self.large_set.0,
            self.large_set.1,
            self.mixed_levels.0,
            self.mixed_levels.1,
            self.dollar_allowed,
            self.shared_hash_decided,
            self.wildcard_free_decided.0,
            self.wildcard_free_decided.1,
            self.plus_levels_decided.0,
            self.plus_levels_decided.1,
        ];
        assert!(
            counts.iter().all(|&c| c >= least),
            "too little reached: {self:?}"
        );
    }
}

impl Tally {
    fn disagree(&mut self, report: String) {
        if std::env::var_os("TOPICGUARD_DIFF_KEEP_GOING").is_none() {
            panic!("{report}");
        }
        self.mismatches += 1;
        if self.mismatches <= 40 {
            println!("{report}\n");
        }
    }
}

fn describe(seed: u64, generated: &GeneratedPolicy, spec: &SessionSpec) -> String {
    let shown = if generated.big > 0 {
        let cut: Vec<&str> = generated
            .text
            .lines()
            .map(|l| {
                if l.starts_with("set big") {
                    "set big = v0000, ... (see the seed)"
                } else {
                    l
                }
            })
            .collect();
        cut.join("\n") + "\n"
    } else {
        generated.text.clone()
    };
    let client: String = spec.client_id.chars().take(300).collect();
    format!(
        "compiled and reference disagree (seed {seed:#x}, large set of {})\n--- policy ---\n{shown}--- identity ---\n{} {:?} raw {:?} client id {client:?} ({} bytes)",
        generated.big,
        spec.kind,
        spec.attrs,
        spec.raw,
        spec.client_id.len()
    )
}

fn run_policy(rng: &mut Rng, seed: u64, tally: &mut Tally) {
    let generated = generate::policy(rng);
    let Some(engine) = compile(&generated.text) else {
        tally.rejected_policies += 1;
        return;
    };
    tally.policies += 1;
    tally.large_set_policies += (generated.big > 0) as usize;
    let judges = Judges {
        engine: &engine,
        oracle: Reference::new(engine.checked()),
    };
    let no_attrs = std::collections::BTreeMap::new();
    for _ in 0..4 {
        let spec = traffic::session(rng, &generated);
        let Some(identity) = credential(engine.checked(), &spec) else {
            tally.refused_credentials += 1;
            continue;
        };
        let session = engine.bind(&identity, &spec.client_id);
        let binding = judges.oracle.bind(&identity, &spec.client_id);
        tally.sessions += 1;
        tally.refused_sessions += session.error().is_some() as usize;
        tally.coverage.binding(&binding);
        if let Err(problem) = compare_binding(&session, &binding) {
            tally.disagree(format!("{}\n{problem}", describe(seed, &generated, &spec)));
        }
        for _ in 0..12 {
            let context = traffic::Context {
                policy: &generated,
                session: &spec,
                attrs: binding.bound().map_or(&no_attrs, |b| &b.attrs),
            };
            let ask = traffic::ask(rng, &context);
            match compare_and_tell(&judges, &session, &binding, &ask) {
                Ok((outcome, expected)) => {
                    tally.coverage.decision(engine.checked(), &ask, expected);
                    match outcome {
                        Outcome::Agreed => {}
                        Outcome::ReferenceTooComplex => tally.reference_too_complex += 1,
                        Outcome::EngineTooComplex => tally.engine_too_complex += 1,
                    }
                }
                Err(problem) => {
                    let shown = format!("{ask:?}").chars().take(400).collect::<String>();
                    tally.disagree(format!(
                        "{}\n--- request ---\n{shown}\n{problem}",
                        describe(seed, &generated, &spec)
                    ));
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
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    for _ in 0..policies {
        run_policy(&mut rng, seed, &mut tally);
    }
    println!("{tally:?}");
    assert_eq!(tally.mismatches, 0, "disagreements: {tally:?}");
    let compared = tally.requests - tally.reference_too_complex - tally.engine_too_complex;
    assert!(
        tally.policies * 10 >= policies as usize * 9,
        "too many generated policies were rejected: {tally:?}"
    );
    assert!(
        tally.reference_too_complex * 200 <= tally.requests,
        "the reference gave up too often: {tally:?}"
    );
    assert!(
        tally.engine_too_complex * 1000 <= tally.requests,
        "the engine gave up too often: {tally:?}"
    );
    if policies >= 2_000 {
        assert!(compared >= 100_000, "only {compared} requests compared");
        assert!(
            tally.large_set_policies >= 40,
            "too few large sets: {tally:?}"
        );
        tally.coverage.check(20);
    }
    let refused = tally.refused_sessions;
    assert!(
        refused * 10 >= tally.sessions && refused * 2 <= tally.sessions,
        "refused sessions should be common but not the rule: {tally:?}"
    );
    for count in [tally.allowed, tally.explicit, tally.implicit] {
        assert!(count * 20 >= tally.requests, "a verdict is rare: {tally:?}");
    }
}
