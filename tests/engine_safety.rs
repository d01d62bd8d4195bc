//! The engine fails closed and stays linear on hostile input.
//!
//! * A deny rule whose level holds a large set still bites: pattern levels are built once,
//!   when the policy is compiled, within a documented size limit, and a pattern too large
//!   to build is a compile error naming the rule, never a level that silently never matches.
//! * Client-id templates, pattern levels and explanations cost time linear in the input:
//!   the hostile inputs below took minutes with backtracking; here they must just finish.
//! * Set loading is not quadratic: a set of 100,000 values loads, compiles and decides.
//! * Denies always bite: under `subscriptions filtered` a `deny subscribe` rule also denies
//!   delivery, and a first level that starts with a capture never reaches a `$` topic.
//! * Templates where one level could belong to two accounts are refused or constrained.

use topicguard::check::ClientPiece;
use topicguard::compile::{CompileError, Limits};
use topicguard::decide::reference::Reference;
use topicguard::decide::{BindError, Reason};
use topicguard::{Decision, Engine, Identity, Policy, Request, Session, Source, Verdict};

const USER: &str =
    "identity u from jwt {\n    pid = claim \"pid\"\n    client \"c-{pid}\"\n}\nallow u connect\n";

fn load(text: &str) -> Policy {
    Policy::from_source(&Source::new("t.policy", text))
        .unwrap_or_else(|e| panic!("policy rejected:\n{}", e.render_plain()))
}

fn build(text: &str) -> Engine {
    Engine::new(&load(text).checked).unwrap_or_else(|e| panic!("{e}"))
}

fn user(engine: &Engine, pid: &str) -> Session {
    let session = engine.bind(
        &Identity::asserted("u", [("pid", pid)]),
        &format!("c-{pid}"),
    );
    assert_eq!(session.error(), None);
    session
}

/// The reference interpreter's decision for the identity and client id `session` was bound
/// with: the credential attributes are the session's, without `client` and the client
/// template's captures (the reference binds those itself).
fn oracle(engine: &Engine, session: &Session, request: Request<'_>) -> Decision {
    let checked = engine.checked();
    let captures: Vec<&str> = checked
        .identity(session.kind())
        .map(|(_, def)| {
            def.client
                .iter()
                .filter_map(|piece| match piece {
                    ClientPiece::Capture(name) => Some(name.as_str()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let credential = session
        .attrs()
        .iter()
        .filter(|(name, _)| *name != "client" && !captures.contains(name));
    let identity = Identity::asserted(session.kind(), credential);
    let reference = Reference::new(checked);
    let binding = reference.bind(&identity, session.client_id());
    reference.decide(&binding, request)
}

/// The engine's decision, after checking that the reference interpreter agrees.
fn decide(engine: &Engine, session: &Session, request: Request<'_>) -> Decision {
    let decision = engine.decide(session, request);
    let oracle = oracle(engine, session, request);
    assert_eq!(
        decision, oracle,
        "engine and reference disagree on {request:?}"
    );
    decision
}

/// `set big = v0000000000000000000, v0000000000000000001, ...`
fn big_set(count: usize) -> String {
    let values: Vec<String> = (0..count).map(|i| format!("v{i:019}")).collect();
    format!("set big = {}\n", values.join(", "))
}

// ---------------------------------------------------------------- a deny always bites

#[test]
fn a_deny_on_a_level_with_a_large_set_matches() {
    for template in [
        "t/{pid}_{v in big}",
        "t/{+a}_{v in big}",
        "t/{v in big}_{pid}",
        "t/x{v in big}",
    ] {
        let engine = build(&format!(
            "{USER}{}deny u publish \"{template}\"\nallow u publish \"#\"\n",
            big_set(10_000)
        ));
        let session = user(&engine, "P1");
        let topic = match template {
            "t/{v in big}_{pid}" => "t/v0000000000000009999_P1".to_string(),
            "t/x{v in big}" => "t/xv0000000000000000000".to_string(),
            _ => "t/P1_v0000000000000000000".to_string(),
        };
        let denied = engine.decide(&session, Request::publish(&topic));
        assert_eq!(denied.verdict, Verdict::ExplicitDeny, "{template}: {topic}");
        let other = engine.decide(&session, Request::publish("t/P1_v9"));
        assert_eq!(other.verdict, Verdict::Allowed, "{template}");
    }
}

#[test]
fn the_documented_set_size_compiles_and_decides() {
    let values: Vec<String> = (0..100_000).map(|i| format!("v{i}")).collect();
    let text = format!(
        "{USER}set big = {}\ndeny u publish \"t/{{pid}}_{{v in big}}\"\ndeny u publish \"s/{{+a}}_{{v in big}}\"\nallow u publish \"#\"\n",
        values.join(", ")
    );
    let engine = build(&text);
    let session = user(&engine, "P1");
    for topic in ["t/P1_v99999", "s/x_y_v0", "s/_v54321"] {
        let decision = engine.decide(&session, Request::publish(topic));
        assert_eq!(decision.verdict, Verdict::ExplicitDeny, "{topic}");
    }
    for topic in ["t/P2_v99999", "t/P1_v100000", "s/x_v", "s/v0"] {
        let decision = engine.decide(&session, Request::publish(topic));
        assert_eq!(decision.verdict, Verdict::Allowed, "{topic}");
    }
}

#[test]
fn a_pattern_too_large_to_build_is_a_compile_error_naming_the_rule() {
    let text = format!(
        "{USER}{}allow u publish \"#\"\ndeny u publish \"t/{{+a}}_{{v in big}}\"\n",
        big_set(2_000)
    );
    let policy = load(&text);
    let limits = Limits {
        max_pattern_bytes: 64 << 10,
        ..Limits::default()
    };
    match Engine::builder(policy.checked.clone())
        .limits(limits)
        .build()
    {
        Err(e @ CompileError::PatternTooLarge { .. }) => {
            let message = e.to_string();
            assert!(message.starts_with("t.policy:8:1:"), "{message}");
            assert!(message.contains(&(64usize << 10).to_string()), "{message}");
            let diagnostic = e.to_diagnostic();
            assert_eq!(diagnostic.code, "compile::pattern-too-large");
            assert_eq!(
                policy.source().loc(diagnostic.span.start).to_string(),
                "t.policy:8:1"
            );
        }
        other => panic!("expected a pattern-too-large error, got {other:?}"),
    }
    // A lone set needs no pattern, whatever its size.
    let lone = format!(
        "{USER}{}deny u publish \"t/{{pid}}_{{v in big}}\"\n",
        big_set(2_000)
    );
    let limits = Limits {
        max_pattern_bytes: 64 << 10,
        ..Limits::default()
    };
    assert!(
        Engine::builder((load(&lone).checked).clone())
            .limits(limits)
            .build()
            .is_ok()
    );
}

#[test]
fn each_session_fills_in_its_own_attributes_around_a_shared_pattern() {
    let engine = build(&format!(
        "{USER}{}deny u publish \"t/{{pid}}_{{+a}}_{{v in big}}\"\nallow u publish \"#\"\n",
        big_set(1_000)
    ));
    let sessions: Vec<Session> = (0..2_000)
        .map(|i| user(&engine, &format!("P{i}")))
        .collect();
    for (i, session) in sessions.iter().enumerate() {
        let own = format!("t/P{i}_x_v0000000000000000007");
        let decision = engine.decide(session, Request::publish(&own));
        assert_eq!(decision.verdict, Verdict::ExplicitDeny, "{own}");
        let other = format!("t/P{}_x_v0000000000000000007", i + 1);
        assert!(
            engine
                .decide(session, Request::publish(&other))
                .is_allowed()
        );
    }
}

// ---------------------------------------------------------------- linear time

#[test]
fn hostile_client_ids_are_matched_in_linear_time() {
    let engine = build(
        "identity a from anonymous {\n    client \"m{+c0}:{+c1}:{+c2}:{+c3}:{+c4}.\"\n}\nallow a connect\n",
    );
    let anonymous = Identity::asserted("a", [] as [(&str, &str); 0]);
    let hostile = format!("m{}x", ":".repeat(200));
    let session = engine.bind(&anonymous, &hostile);
    assert!(matches!(
        session.error(),
        Some(BindError::ClientIdMismatch { .. })
    ));
    for fill in [":", "a:", "::a", "ü:"] {
        let id: String = format!("m{}", fill.repeat(254 / fill.len()));
        let session = engine.bind(&anonymous, &format!("{id}."));
        let decision = engine.decide(&session, Request::Connect);
        let oracle = oracle(&engine, &session, Request::Connect);
        assert_eq!(decision, oracle);
    }
    let session = engine.bind(&anonymous, "m1:2:3:4:5:6.");
    assert_eq!(session.error(), None);
    assert_eq!(session.attrs().get("c4"), Some("5:6"));
}

/// A template of text and attributes only is matched part by part in place: every client
/// id one byte or character away from the right one (cut at any byte, a byte changed,
/// dropped or added, a character whose UTF-8 shares its first byte with the template's)
/// is refused with the template's own error text, and the right one binds.
#[test]
fn client_ids_that_almost_match_a_template_without_captures_are_refused() {
    let engine = build(
        "identity u from jwt {\n    pid = claim \"pid\"\n    aid = claim \"aid\"\n\
         \x20   client \"m·{pid}_{aid}:x\"\n}\nallow u connect\nallow u publish \"t/{client}\"\n",
    );
    let identity = Identity::asserted("u", [("pid", "P1"), ("aid", "A_1")]);
    let right = "m·P1_A_1:x";
    assert_eq!(engine.bind(&identity, right).error(), None);
    let bytes = right.as_bytes();
    let mut near: Vec<Vec<u8>> = Vec::new();
    for at in 0..=bytes.len() {
        near.push(bytes[..at].to_vec());
        let mut added = bytes.to_vec();
        added.insert(at, b'x');
        near.push(added);
        if at < bytes.len() {
            let mut dropped = bytes.to_vec();
            dropped.remove(at);
            near.push(dropped);
            let mut changed = bytes.to_vec();
            changed[at] ^= 1;
            near.push(changed);
        }
    }
    // `¸` is C2 B8, `·` is C2 B7: the same first byte.
    near.push("m¸P1_A_1:x".into());
    near.push("m·P1_A_1:x ".into());
    near.push("m·P1_A_1:xm·P1_A_1:x".into());
    let mut refused = 0;
    for id in near {
        // A cut inside `·` is not UTF-8, so no client id.
        let Ok(id) = String::from_utf8(id) else {
            continue;
        };
        if id == right {
            continue;
        }
        let session = engine.bind(&identity, &id);
        assert_eq!(
            engine.decide(&session, Request::Connect).verdict,
            Verdict::ExplicitDeny,
            "{id:?}"
        );
        match session.error() {
            Some(error @ BindError::ClientIdMismatch { .. }) => {
                assert_eq!(
                    error.to_string(),
                    format!("client id `{id}` does not match the template `m·{{pid}}_{{aid}}:x`")
                );
                refused += 1;
            }
            // Edits that make it no client id at all (empty, or a `/` from `.` ^ 1).
            Some(BindError::BadValue { attr, .. }) => assert_eq!(attr, "client", "{id:?}"),
            other => panic!("{id:?}: {other:?}"),
        }
    }
    assert!(refused > 30, "{refused}");
}

#[test]
fn hostile_levels_against_pattern_levels_finish() {
    let engine = build(&format!(
        "{USER}{}deny u publish, receive \"t/{{+a}}:{{+b}}:{{+c}}:{{+d}}:{{+e}}.\"\n\
         deny u publish \"u/{{+a}}_{{v in big}}\"\nallow u publish, receive \"#\"\n",
        big_set(1_000)
    ));
    let session = user(&engine, "P1");
    let long = ":".repeat(60_000);
    let colons = format!("t/{long}x");
    let decision = engine.decide(&session, Request::publish(&colons));
    assert_eq!(decision.verdict, Verdict::Allowed);
    let explanation = engine.explain(&session, Request::receive(&colons));
    assert_eq!(explanation.decision.verdict, Verdict::Allowed);
    let matching = format!("t/{long}.");
    let explanation = engine.explain(&session, Request::publish(&matching));
    assert_eq!(explanation.decision.verdict, Verdict::ExplicitDeny);
    assert!(
        explanation
            .captures
            .iter()
            .any(|(k, v)| k == "e" && v.len() > 50_000)
    );
    // The reference interpreter took seconds on one 300-character level.
    let short = format!("t/{}x", ":".repeat(300));
    let oracle = oracle(&engine, &session, Request::publish(&short));
    assert_eq!(oracle, engine.decide(&session, Request::publish(&short)));
    let underscores = format!("u/{}v000000000000000000", "_v".repeat(30_000));
    let decision = engine.decide(&session, Request::publish(&underscores));
    assert_eq!(decision.verdict, Verdict::Allowed);
    let explanation = engine.explain(&session, Request::publish(&underscores));
    assert_eq!(explanation.decision.verdict, Verdict::Allowed);
}

#[test]
fn a_hundred_thousand_set_values_load_check_and_compile() {
    let values: Vec<String> = (0..100_000).map(|i| format!("value-{i}")).collect();
    let mut text = format!("{USER}set big = {}\n", values.join(", "));
    for i in 0..200 {
        text.push_str(&format!("allow u publish \"s{i}/{{v in big}}\"\n"));
    }
    let alternatives: Vec<String> = (0..500).map(|i| format!("a{i}")).collect();
    text.push_str(&format!(
        "allow u publish \"alt/{{{}}}\"\n",
        alternatives.join("|")
    ));
    let policy = Policy::from_source(&Source::new("t.policy", text.as_str()))
        .unwrap_or_else(|e| panic!("{}", e.render_plain()));
    assert!(policy.warnings.items.is_empty(), "{}", policy.warnings);
    let engine = Engine::builder(policy.checked.clone())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        engine.automaton().set_count(),
        2,
        "one set, one list of alternatives"
    );
    let session = user(&engine, "P1");
    assert!(
        engine
            .decide(&session, Request::publish("s199/value-99999"))
            .is_allowed()
    );
    assert!(
        engine
            .decide(&session, Request::publish("alt/a499"))
            .is_allowed()
    );
    assert!(
        !engine
            .decide(&session, Request::publish("s0/value-100000"))
            .is_allowed()
    );

    let partner = format!(
        "identity g from jwt {{\n    pid = claim \"pid\"\n    require pid in big\n    client \"g-{{pid}}\"\n}}\nset big = {}\n",
        values.join(", ")
    );
    let engine = build(&partner);
    for (pid, bound) in [("value-99999", true), ("value-0", true), ("value-x", false)] {
        let session = engine.bind(
            &Identity::asserted("g", [("pid", pid)]),
            &format!("g-{pid}"),
        );
        assert_eq!(session.error().is_none(), bound, "{pid}");
    }
}

// ---------------------------------------------------------------- denies always bite

const OPERATOR: &str = "identity op from anonymous {\n    subscriptions filtered\n    client \"op-{+n}\"\n}\nallow op connect\n";

#[test]
fn a_filtered_delivery_is_denied_by_a_deny_subscribe_rule() {
    let engine = build(&format!(
        "{OPERATOR}allow op subscribe, receive \"site/#\"\ndeny op subscribe \"site/+/secret/#\"\n"
    ));
    let session = engine.bind(&Identity::asserted("op", [] as [(&str, &str); 0]), "op-1");
    let granted = decide(&engine, &session, Request::subscribe("site/#"));
    assert_eq!(granted.reason, Reason::FilteredSubscription);
    let secret = decide(&engine, &session, Request::receive("site/a/secret/k"));
    assert_eq!(secret.verdict, Verdict::ExplicitDeny);
    assert_eq!(
        engine.checked().rule(secret.rule.expect("a rule")).loc.line,
        7
    );
    let explanation = engine.explain(&session, Request::receive("site/a/secret/k"));
    assert_eq!(explanation.denies.len(), 1);
    assert!(
        explanation
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("deny subscribe"),
        "{explanation}"
    );
    let open = decide(&engine, &session, Request::receive("site/a/open"));
    assert_eq!(open.verdict, Verdict::Allowed);
    // Contained identities are unaffected: their filters never cover a denied topic.
    let contained = build(
        "identity c from anonymous {\n    client \"c-{+n}\"\n}\nallow c subscribe, receive \"site/#\"\ndeny c subscribe \"site/+/secret/#\"\n",
    );
    let session = contained.bind(&Identity::asserted("c", [] as [(&str, &str); 0]), "c-1");
    assert!(decide(&contained, &session, Request::receive("site/a/secret/k")).is_allowed());
    assert_eq!(
        decide(&contained, &session, Request::subscribe("site/#")).verdict,
        Verdict::ExplicitDeny
    );
}

#[test]
fn a_level_starting_with_a_capture_never_reaches_a_dollar_topic() {
    for template in ["{+c}$SYS/#", "{+c}SYS/#", "{+c}/#", "{+c}_{pid}/#"] {
        let engine = build(&format!(
            "{USER}allow u publish, subscribe, receive \"{template}\"\n"
        ));
        let session = user(&engine, "P1");
        for topic in ["$SYS/x", "$SYS", "$P1/x", "$_P1/x"] {
            for request in [Request::publish(topic), Request::receive(topic)] {
                let decision = decide(&engine, &session, request);
                assert!(!decision.is_allowed(), "{template} {request:?}");
            }
        }
        for filter in ["$SYS/#", "$SYS/x", "$P1/#"] {
            let decision = decide(&engine, &session, Request::subscribe(filter));
            assert!(!decision.is_allowed(), "{template} subscribe {filter}");
        }
    }
    let engine = build(&format!("{USER}allow u publish \"{{+c}}$SYS/#\"\n"));
    let session = user(&engine, "P1");
    assert!(decide(&engine, &session, Request::publish("a$SYS/x")).is_allowed());
    let engine = build(&format!("{USER}allow u publish \"$SYS/{{+c}}x\"\n"));
    let session = user(&engine, "P1");
    assert!(decide(&engine, &session, Request::publish("$SYS/$x")).is_allowed());
}

// ---------------------------------------------------------------- one level, one account

#[test]
fn an_attribute_between_captures_or_sets_is_refused() {
    for template in [
        "t/{+a}:{pid}:{+b}",
        "t/{a|b}_{pid}_{+c}",
        "t/{+a}_x{pid}y_{c|d}",
    ] {
        let errors = match Policy::from_source(&Source::new(
            "t.policy",
            format!("{USER}allow u publish \"{template}\"\n"),
        )) {
            Ok(_) => panic!("{template} accepted"),
            Err(d) => d,
        };
        let codes: Vec<&str> = errors.errors().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["check::ambiguous-template"], "{template}");
        assert!(
            errors
                .render_plain()
                .contains("capture or a set on each side")
        );
    }
    for template in [
        "t/{pid}:{+a}:{+b}",
        "t/{+a}:{+b}:{pid}",
        "t/{pid}_{+a}_{pid}",
    ] {
        load(&format!("{USER}allow u publish \"{template}\"\n"));
    }
}

#[test]
fn attributes_after_the_last_capture_keep_one_split() {
    let engine = build(
        "identity u from jwt {\n    pid = claim \"pid\"\n    aid = claim \"aid\"\n    client \"c-{pid}\"\n}\n\
         allow u publish \"t/{+x}_{pid}_{aid}\"\n",
    );
    let bind = |pid: &str, aid: &str| {
        engine.bind(
            &Identity::asserted("u", [("pid", pid), ("aid", aid)]),
            &format!("c-{pid}"),
        )
    };
    // (P, A_B) and (A, B) would both own `t/z_P_A_B`: `aid` may not contain `_`.
    assert_eq!(
        bind("P", "A_B").error(),
        Some(&BindError::SeparatorInValue {
            attr: "aid".into(),
            separator: '_',
        })
    );
    let session = bind("A", "B");
    assert!(decide(&engine, &session, Request::publish("t/z_P_A_B")).is_allowed());
    assert!(!decide(&engine, &session, Request::publish("t/z_P_A_C")).is_allowed());
}

/// An identity with more attributes than a session keeps inline: every slot piece is
/// filled by its attribute's index, from the first name to the last.
#[test]
fn an_identity_with_many_attributes_binds_each_into_its_slot() {
    let names: Vec<String> = (0..40).map(|i| format!("a{i:02}")).collect();
    let binds: String = names
        .iter()
        .map(|n| format!("    {n} = claim \"{n}\"\n"))
        .collect();
    let level: Vec<String> = names.iter().rev().map(|n| format!("{{{n}}}")).collect();
    let engine = build(&format!(
        "identity u from jwt {{\n{binds}    client \"c-{{a00}}-{{+rest}}\"\n}}\n\
         allow u publish \"t/{}/{{client}}/{{rest}}\"\n",
        level.join(".")
    ));
    let attrs: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), n.to_uppercase()))
        .collect();
    let session = engine.bind(&Identity::asserted("u", attrs.clone()), "c-A00-r 1");
    assert_eq!(session.error(), None);
    assert_eq!(session.attrs().len(), 42);
    assert_eq!(session.attrs().get("a39"), Some("A39"));
    assert_eq!(session.attrs().get("rest"), Some("r 1"));
    let values: Vec<String> = names.iter().rev().map(|n| n.to_uppercase()).collect();
    let topic = format!("t/{}/c-A00-r 1/r 1", values.join("."));
    assert!(decide(&engine, &session, Request::publish(&topic)).is_allowed());
    let swapped = topic.replacen("A39.A38", "A38.A39", 1);
    assert!(!decide(&engine, &session, Request::publish(&swapped)).is_allowed());
    // One attribute left out: the first missing one is named, as before.
    let partial: Vec<(String, String)> = attrs
        .iter()
        .filter(|(n, _)| n != "a17" && n != "a30")
        .cloned()
        .collect();
    let session = engine.bind(&Identity::asserted("u", partial), "c-A00-r 1");
    assert_eq!(
        session.error(),
        Some(&BindError::MissingAttribute { attr: "a17".into() })
    );
}

/// A credential with thousands of attributes, or with huge values, is refused or bound in
/// time linear in its size.
#[test]
fn a_credential_with_thousands_of_attributes_or_huge_values_finishes() {
    let engine = build(&format!(
        "{USER}allow u publish \"t/{{pid}}.{{pid}}/{{client}}\"\n"
    ));
    let mut attrs: Vec<(String, String)> = (0..5_000)
        .map(|i| (format!("x{i}"), "v".to_string()))
        .collect();
    attrs.push(("pid".into(), "P".into()));
    let session = engine.bind(&Identity::asserted("u", attrs), "c-P");
    assert!(matches!(
        session.error(),
        Some(BindError::UndeclaredAttribute { .. })
    ));
    // A huge value is refused by the value grammar before anything is rendered.
    let huge = "p".repeat(1 << 20);
    let session = engine.bind(
        &Identity::asserted("u", [("pid", huge.as_str())]),
        &format!("c-{huge}"),
    );
    assert!(matches!(
        session.error(),
        Some(BindError::BadValue { attr, .. }) if attr == "pid"
    ));
    // The longest value its client id allows (`c-` and 254 bytes, the longest client id)
    // is rendered into each of its slot's pieces.
    let longest = "p".repeat(254);
    let session = engine.bind(
        &Identity::asserted("u", [("pid", longest.as_str())]),
        &format!("c-{longest}"),
    );
    assert_eq!(session.error(), None);
    assert_eq!(session.attrs().get("pid").map(str::len), Some(254));
    let topic = format!("t/{longest}.{longest}/c-{longest}");
    assert!(decide(&engine, &session, Request::publish(&topic)).is_allowed());
}

// ---------------------------------------------------------------- client ids interoperate

#[test]
fn client_ids_may_hold_spaces_and_utf8() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/building.policy");
    let engine = Engine::builder(
        (Policy::load(path).unwrap_or_else(|e| panic!("{e}")))
            .checked
            .clone(),
    )
    .build()
    .unwrap_or_else(|e| panic!("{e}"));
    let lobby = Identity::asserted("lobby", [] as [(&str, &str); 0]);
    let session = engine.bind(&lobby, "lobby-hall ü 2");
    assert_eq!(session.error(), None);
    assert_eq!(session.attrs().get("screen"), Some("hall ü 2"));
    assert!(decide(&engine, &session, Request::Connect).is_allowed());
    let notices = Request::subscribe("bld/B1/public/notices/+");
    assert!(decide(&engine, &session, notices).is_allowed());

    let engine = build(
        "identity a from anonymous {\n    client \"{+n}-app\"\n}\nallow a connect\n\
         allow a publish \"c/{client}/{n}/x\"\n",
    );
    let anonymous = Identity::asserted("a", [] as [(&str, &str); 0]);
    let session = engine.bind(&anonymous, "my phone ü-app");
    let own = Request::publish("c/my phone ü-app/my phone ü/x");
    assert!(decide(&engine, &session, own).is_allowed());
    for (id, attr) in [
        ("$SYS-app", "client"),
        ("a/b-app", "client"),
        ("+-app", "client"),
        ("a#-app", "client"),
        ("a\u{0}-app", "client"),
        ("a\u{1b}[2J-app", "client"),
    ] {
        let session = engine.bind(&anonymous, id);
        match session.error() {
            Some(BindError::BadValue { attr: bad, .. }) => assert_eq!(bad, attr, "{id:?}"),
            other => panic!("{id:?}: {other:?}"),
        }
        assert_eq!(
            decide(&engine, &session, Request::Connect).verdict,
            Verdict::ExplicitDeny
        );
    }
    // A captured part may not start with `$` either: it may become a whole topic level.
    let engine = build(
        "identity a from anonymous {\n    client \"app:{+n}\"\n}\nallow a connect\nallow a publish \"{n}/x\"\n",
    );
    let session = engine.bind(&anonymous, "app:$SYS");
    assert!(matches!(
        session.error(),
        Some(BindError::BadValue { attr, .. }) if attr == "n"
    ));
    assert!(!decide(&engine, &session, Request::publish("$SYS/x")).is_allowed());
}

// ---------------------------------------------------------------- pattern levels, sampled

/// splitmix64, seeded: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Levels mixing text, attributes, captures, sets and alternatives, as the first and as a
/// later topic level, decided by the compiled engine and by the definition
/// (`check::matches`, through the reference interpreter) on levels built from the same
/// alphabet. Templates the checker refuses are skipped (and counted).
#[test]
fn pattern_levels_agree_with_the_definition() {
    const PIECES: &[&str] = &[
        "{pid}", "{aid}", "{client}", "{+c}", "{+d}", "{v in s}", "{a|b_c}", "_", "-", "x", "$",
        ":", "ü",
    ];
    const TOKENS: &[&str] = &[
        "P1", "A1", "a", "b_c", "_", "-", "x", "$", ":", "ü", "c-P1", "$x", "ab", "",
    ];
    let mut rng = Rng(0x5eed);
    let (mut compared, mut refused, mut matched) = (0, 0, 0);
    for _ in 0..400 {
        let count = 1 + rng.next() % 5;
        let level: String = (0..count).map(|_| rng.pick(PIECES)).collect();
        let text = format!(
            "identity u from jwt {{\n    pid = claim \"pid\"\n    aid = claim \"aid\"\n    client \"c-{{pid}}\"\n}}\n\
             set s = a, b_c, $x, ab\n\
             allow u publish \"t/{level}\"\ndeny u publish \"t/{level}x\"\nallow u publish, receive \"{level}/d\"\n"
        );
        let Ok(policy) = Policy::from_source(&Source::new("t.policy", text.as_str())) else {
            refused += 1;
            continue;
        };
        let engine = Engine::builder(policy.checked.clone())
            .build()
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        for (pid, aid) in [("P1", "A1"), ("a", "b"), ("x", "a")] {
            let session = engine.bind(
                &Identity::asserted("u", [("pid", pid), ("aid", aid)]),
                &format!("c-{pid}"),
            );
            for _ in 0..40 {
                let n = 1 + rng.next() % 4;
                let level: String = (0..n).map(|_| rng.pick(TOKENS)).collect();
                for topic in [format!("t/{level}"), format!("{level}/d")] {
                    for request in [Request::publish(&topic), Request::receive(&topic)] {
                        let ours = engine.decide(&session, request);
                        let oracle = oracle(&engine, &session, request);
                        assert_eq!(ours, oracle, "{request:?}, pid={pid} aid={aid}\n{text}");
                        compared += 1;
                        matched += usize::from(ours.rule.is_some());
                    }
                }
            }
        }
    }
    assert!(compared > 50_000, "{compared} decisions compared");
    assert!(matched > 5_000, "only {matched} decisions matched a rule");
    assert!(refused < 200, "{refused} of 400 templates refused");
}

/// A `+` in a subscription meets a node with hundreds of publish-only branches. Searching
/// for a deny visits only branches that hold a subscribe deny, and checking coverage only
/// those that hold a subscribe allow, so a budget far below the branch count still
/// decides, and a deny in one branch among them still bites.
#[test]
fn a_plus_subscription_skips_branches_without_subscribe_rules() {
    let mut text = format!("{USER}allow u subscribe \"d/{{pid}}/own/+\"\n");
    for i in 0..500 {
        text.push_str(&format!("allow u publish \"d/{{pid}}/svc{i}/x\"\n"));
    }
    let budget = Limits {
        subscribe_budget: 60,
        ..Limits::default()
    };
    let engine = |text: &str| {
        Engine::builder(load(text).checked.clone())
            .limits(budget.clone())
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let open = engine(&text);
    let session = user(&open, "P1");
    let other = decide(&open, &session, Request::subscribe("d/P1/+/x"));
    assert_eq!(
        (other.verdict, other.reason),
        (Verdict::ImplicitDeny, Reason::NoRuleMatched)
    );
    assert!(decide(&open, &session, Request::subscribe("d/P1/own/+")).is_allowed());
    text.push_str("deny u subscribe \"d/{pid}/svc250/x\"\n");
    let guarded = engine(&text);
    let session = user(&guarded, "P1");
    let denied = decide(&guarded, &session, Request::subscribe("d/P1/+/x"));
    assert_eq!(
        (denied.verdict, denied.reason),
        (Verdict::ExplicitDeny, Reason::Rules)
    );
    assert_eq!(
        guarded
            .checked()
            .rule(denied.rule.expect("a rule"))
            .loc
            .line,
        507
    );
}

/// A trailing `#` meets a subtree of five hundred branches that each hold a subscribe deny:
/// the deny search visits each branch once; past a small budget the subscription is denied
/// as too complex (never allowed), within the default one the first deny bites. A filter of
/// a hundred `+` levels and a `#` against a chain of `+` rules, and a `#` over every one of
/// them, finish too, with the same answer as the reference interpreter.
#[test]
fn a_hash_subscription_over_many_deny_branches_stays_within_its_budget() {
    let mut text = format!("{USER}allow u subscribe \"d/{{pid}}/#\"\n");
    for i in 0..500 {
        text.push_str(&format!("deny u subscribe \"d/{{pid}}/svc{i}/x\"\n"));
    }
    let small = Limits {
        subscribe_budget: 100,
        ..Limits::default()
    };
    let tight = Engine::builder(load(&text).checked.clone())
        .limits(small)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let session = user(&tight, "P1");
    // The reference interpreter has no budget: only the engine is asked.
    let refused = tight.decide(&session, Request::subscribe("d/P1/#"));
    assert_eq!(
        (refused.verdict, refused.reason),
        (Verdict::ExplicitDeny, Reason::TooComplex)
    );
    let engine = build(&text);
    let session = user(&engine, "P1");
    let denied = decide(&engine, &session, Request::subscribe("d/P1/#"));
    assert_eq!(
        (denied.verdict, denied.reason),
        (Verdict::ExplicitDeny, Reason::Rules)
    );
    assert_eq!(
        engine.checked().rule(denied.rule.expect("a rule")).loc.line,
        7
    );
    assert!(decide(&engine, &session, Request::subscribe("d/P2/#")).verdict != Verdict::Allowed);

    let chain = format!("{}#", "+/".repeat(100));
    let mut text = format!("{USER}allow u subscribe \"{chain}\"\n");
    for depth in [1, 50, 99] {
        text.push_str(&format!("allow u subscribe \"{}x\"\n", "+/".repeat(depth)));
    }
    text.push_str(&format!("deny u subscribe \"{}stop\"\n", "+/".repeat(100)));
    let wide = Limits {
        max_topic_levels: 1_000,
        max_template_levels: 1_000,
        ..Limits::default()
    };
    let engine = Engine::builder(load(&text).checked.clone())
        .limits(wide)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let session = user(&engine, "P1");
    for filter in [
        chain.as_str(),
        "#",
        "+/#",
        &format!("{}#", "+/".repeat(120)),
    ] {
        let request = Request::subscribe(filter);
        assert_eq!(
            decide(&engine, &session, request),
            oracle(&engine, &session, request),
            "{filter}"
        );
    }
}
