//! The renderer's automata state topicguard's meaning a second time (`aws::model`); here
//! they are held to the engine: what the lower bound contains the engine allows, and what
//! the engine allows the upper bound contains — for generated policies and requests, and
//! for the shipped policies.

use super::generate::{self, Ask, Rng};
use topicguard::ast::{Action, Effect};
use topicguard::aws::proof::Bounds;
use topicguard::aws::shape::shapes;
use topicguard::{Engine, Policy, Session, Source};

/// The bounds the planner builds for `action`.
fn bounds(engine: &Engine, session: &Session, action: Action) -> Bounds {
    let checked = engine.checked();
    let id = session.identity_id().expect("a bound session");
    let get =
        |action, effect| shapes(checked, id, &session.attrs().to_map(), action, effect).unwrap();
    let filtered = checked.identities[id.0 as usize].filtered_subscriptions;
    let (allows, denies) = (get(action, Effect::Allow), get(action, Effect::Deny));
    match action {
        Action::Subscribe => Bounds::filters(&allows, &denies, filtered).unwrap(),
        Action::Receive if filtered => {
            Bounds::topics(&allows, &denies, &get(Action::Subscribe, Effect::Deny)).unwrap()
        }
        _ => Bounds::topics(&allows, &denies, &[]).unwrap(),
    }
}

/// Checks one request of `action` against both bounds.
fn bracket(engine: &Engine, session: &Session, bounds: &Bounds, ask: &Ask, label: &str) {
    let text = match ask {
        Ask::Publish(t, false) | Ask::Receive(t) | Ask::Subscribe(t) => t,
        _ => return,
    };
    if text.starts_with("$share/") {
        return; // never granted on AWS: judged as the rest by topicguard
    }
    let allowed = engine.decide(session, ask.request()).is_allowed();
    if bounds.surely_allowed(text) {
        assert!(
            allowed,
            "{label}: the lower bound holds {ask:?}, the engine denies it"
        );
    }
    if allowed {
        assert!(
            bounds.maybe_allowed(text),
            "{label}: the engine allows {ask:?}, the upper bound excludes it"
        );
    }
}

fn action_of(ask: &Ask) -> Option<Action> {
    match ask {
        Ask::Publish(_, false) => Some(Action::Publish),
        Ask::Receive(_) => Some(Action::Receive),
        Ask::Subscribe(_) => Some(Action::Subscribe),
        _ => None,
    }
}

fn check_policy(text: &str, rng: &mut Rng, sessions: usize, label: &str) -> usize {
    let Ok(policy) = Policy::from_source(&Source::new("gen.policy", text)) else {
        return 0;
    };
    let engine = Engine::builder(policy.checked.clone()).build().unwrap();
    let mut checked = 0;
    for _ in 0..sessions {
        let (identity, client_id) = generate::session(rng, &policy.checked);
        let session = engine.bind(&identity, &client_id);
        if session.error().is_some() {
            continue;
        }
        let all: Vec<Bounds> = [Action::Publish, Action::Receive, Action::Subscribe]
            .iter()
            .map(|a| bounds(&engine, &session, *a))
            .collect();
        for _ in 0..300 {
            let ask = generate::ask(rng, engine.checked(), &session.attrs().to_map());
            let Some(action) = action_of(&ask) else {
                continue;
            };
            let index = match action {
                Action::Publish => 0,
                Action::Receive => 1,
                _ => 2,
            };
            bracket(&engine, &session, &all[index], &ask, label);
            checked += 1;
        }
    }
    checked
}

#[test]
fn the_automata_bracket_the_engine_on_generated_policies() {
    let mut rng = Rng(0x0DE1_5EED);
    let mut checked = 0;
    for n in 0..40 {
        let text = generate::policy(&mut rng);
        checked += check_policy(&text, &mut rng, 2, &format!("policy {n}\n{text}"));
    }
    assert!(checked > 5_000, "{checked}");
}
