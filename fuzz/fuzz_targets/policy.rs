//! Policy text → parse → check → compile → decide, and the formatter's round trip.
//!
//! Asserts: no stage panics or runs away (libFuzzer's timeout and memory limit catch
//! super-linear cost); every diagnostic renders; `parse(format(ast)) == ast` with spans
//! aside, and formatting is idempotent; the low-memory loader (`Policy::from_source`,
//! which checks rule by rule) accepts exactly what `parse` + `check` accept; a compiled
//! policy decides connect, publish, retain, subscribe and receive for every identity
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use topicguard::diagnostic::Diagnostics;
use topicguard::{Engine, Identity, Policy, Request, Source};

/// Debug text of an AST with spans and templates' raw text left out: `format` writes each
/// template canonically (`{ sid in services }` becomes `{sid in services}`), so only the
/// template's parsed levels must survive the round trip.
fn without_spans(ast: &topicguard::ast::Policy) -> String {
    let text = format!("{ast:?}");
    let text = blank(&text, "Span { start: ", |rest| {
        rest.find('}').map(|close| close + 1)
    });
    blank(&text, "Template { text: \"", |rest| {
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => return Some(i + 1),
                _ => escaped = false,
            }
        }
        None
    })
}

/// `text` with each `marker` and what `end` says follows it left out.
fn blank(text: &str, marker: &str, end: impl Fn(&str) -> Option<usize>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at]);
        out.push_str(marker);
        let after = &rest[at + marker.len()..];
        let skip = end(after).expect("a closed Debug field");
        rest = &after[skip..];
    }
    out.push_str(rest);
    out
}

fn render(diagnostics: &Diagnostics) {
    let _ = diagnostics.render_plain();
    let _ = diagnostics.render_short();
    let _ = diagnostics.to_json();
}

fn round_trip(ast: &topicguard::ast::Policy) {
    let formatted = topicguard::fmt::format(ast);
    let again = topicguard::parse::parse(&Source::new("formatted.policy", formatted.clone()))
        .unwrap_or_else(|e| panic!("formatted text does not parse:\n{formatted}\n{e}"));
    assert_eq!(
        without_spans(&again),
        without_spans(ast),
        "parse(format(ast)) != ast:\n{formatted}"
    );
    assert_eq!(
        topicguard::fmt::format(&again),
        formatted,
        "format is not idempotent"
    );
}

fn decide_everything(policy: &Policy) {
    let Ok(engine) = Engine::new(&policy.checked) else {
        return;
    };
    let topics = [
        "a/b",
        "$SYS/x",
        "c/xfi/P1_A1/lights/c1/r1",
        "",
        "+",
        "a/b/c/d",
    ];
    let filters = ["#", "+/+", "a/#", "$share/g/a/+", "$SYS/#", "c/xfi/P1_A1/#"];
    for def in &engine.checked().identities {
        let attrs = ["pid", "aid", "sid", "iid", "mac", "jti"].map(|a| (a, "P1"));
        let identity = Identity::asserted(&def.name, attrs);
        for client_id in ["c", "xfi:P1_P1:clt:P1", ""] {
            let session = engine.bind(&identity, client_id);
            let _ = engine.decide(&session, Request::Connect);
            for topic in topics {
                let _ = engine.decide(&session, Request::publish(topic));
                let _ = engine.decide(
                    &session,
                    Request::Publish {
                        topic,
                        retain: true,
                    },
                );
                let _ = engine.decide(&session, Request::receive(topic));
            }
            for filter in filters {
                let _ = engine.decide(&session, Request::subscribe(filter));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = Source::from_bytes("fuzz.policy".to_string(), data.to_vec()) else {
        return;
    };
    let whole = topicguard::parse::parse(&source);
    let checked = match &whole {
        Ok(ast) => {
            round_trip(ast);
            match topicguard::check::check(&source, ast) {
                Ok(out) => {
                    render(&out.warnings);
                    true
                }
                Err(errors) => {
                    render(&errors);
                    false
                }
            }
        }
        Err(errors) => {
            render(errors);
            false
        }
    };
    match Policy::from_source(&source) {
        Ok(policy) => {
            assert!(
                checked,
                "the rule-by-rule loader accepts what parse + check refuse"
            );
            render(&policy.warnings);
            decide_everything(&policy);
        }
        Err(errors) => {
            assert!(
                !checked,
                "the rule-by-rule loader refuses what parse + check accept:\n{errors}"
            );
            render(&errors);
        }
    }
});
