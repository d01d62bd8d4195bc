//! The shipped policies on AWS: every identity of `policies/*.policy` rendered (snapshots of
//! the documents and notes, read like code), held to the engine over generated requests,
//! with the share of the engine's allows that AWS denies printed per identity and action.

use super::exactness::{Tally, check_documents, check_session};
use super::generate::Rng;
use std::fmt::Write as _;
use topicguard::ast::Action;
use topicguard::aws::plan::Exactness;
use topicguard::aws::{Rendered, render};
use topicguard::{Engine, Identity, Policy, Session};

const TENANT: &str = "7d444840-9dc0-11d1-b245-5ffdce74fad2";
const IID: &str = "550e8400-e29b-41d4-a716-446655440000";

/// One identity of a shipped policy: its attributes and client id.
struct Case {
    policy: &'static str,
    identity: &'static str,
    attrs: &'static [(&'static str, &'static str)],
    client_id: &'static str,
}

const CASES: &[Case] = &[
    Case {
        policy: "xfinity",
        identity: "mobile",
        attrs: &[("pid", "P1"), ("aid", "A1"), ("jti", "J1")],
        client_id: "xfi:P1_A1:clt:J1",
    },
    Case {
        policy: "xfinity",
        identity: "gateway",
        attrs: &[
            ("pid", "P1"),
            ("aid", "A1"),
            ("model", "M"),
            ("serial", "S"),
            ("uid_aid", "A1"),
            ("iid", IID),
            ("mac", "0123456789abcdef"),
        ],
        client_id: "iot:P1_A1:adp:xhf:550e8400-e29b-41d4-a716-446655440000",
    },
    Case {
        policy: "xfinity",
        identity: "service",
        attrs: &[("sid", "lights")],
        client_id: "svc:lights:7",
    },
    Case {
        policy: "fleet",
        identity: "vehicle",
        attrs: &[("fleet", "F1"), ("vin", "V1"), ("uri_vin", "V1")],
        client_id: "veh:F1:V1",
    },
    Case {
        policy: "fleet",
        identity: "dispatch",
        attrs: &[("fleet", "F1"), ("desk", "D1")],
        client_id: "dsp:F1:D1:1",
    },
    Case {
        policy: "fleet",
        identity: "driver",
        attrs: &[("fleet", "F1"), ("vin", "V1"), ("sub", "S1")],
        client_id: "drv:F1:S1:phone",
    },
    Case {
        policy: "building",
        identity: "device",
        attrs: &[
            ("building", "B1"),
            ("tenant", TENANT),
            ("floor", "F3"),
            ("cn_tenant", TENANT),
            ("device", "thermo"),
        ],
        client_id: "7d444840-9dc0-11d1-b245-5ffdce74fad2_thermo",
    },
    Case {
        policy: "building",
        identity: "tenant_app",
        attrs: &[("building", "B1"), ("tenant", TENANT), ("user", "U1")],
        client_id: "app:U1:i1",
    },
    Case {
        policy: "building",
        identity: "operator",
        attrs: &[("building", "B1"), ("user", "U2")],
        client_id: "ops:B1:U2",
    },
    Case {
        policy: "building",
        identity: "lobby",
        attrs: &[],
        client_id: "lobby-hall",
    },
];

fn session(case: &Case) -> (Engine, Session) {
    let policy = Policy::load(format!("policies/{}.policy", case.policy)).expect("shipped policy");
    let engine = Engine::builder(policy.checked.clone())
        .build()
        .expect("compiles");
    let identity = Identity::asserted(case.identity, case.attrs.iter().copied());
    let session = engine.bind(&identity, case.client_id);
    assert!(session.error().is_none(), "{:?}", session.error());
    (engine, session)
}

/// The documents and notes as reviewable text: one line per resource.
fn describe(engine: &Engine, rendered: &Rendered) -> String {
    let mut out = format!("ARN prefix: {}\n", super::ARN);
    for (i, doc) in rendered.documents.iter().enumerate() {
        let size = serde_json::to_string(doc).unwrap().len();
        let _ = writeln!(out, "document {} ({size} characters)", i + 1);
        for st in &doc.statements {
            let _ = writeln!(out, "  {} {} {}", st.sid, st.effect, st.action);
            for r in &st.resources {
                let tail = r.strip_prefix(super::ARN).unwrap_or(r);
                let _ = writeln!(out, "    {}", tail.trim_start_matches(':'));
            }
        }
    }
    let _ = writeln!(out, "exactness:");
    for (action, exactness) in &rendered.exactness {
        let _ = writeln!(out, "  {action}: {exactness:?}");
    }
    if !rendered.notes.is_empty() {
        let _ = writeln!(out, "notes:");
    }
    for note in &rendered.notes {
        let rule = note
            .rule
            .map(|id| format!("line {}: ", engine.checked().rule(id).loc.line))
            .unwrap_or_default();
        let _ = writeln!(out, "  {}: {rule}{}", note.action, note.text);
    }
    out
}

#[test]
fn shipped_policies_render_and_read_as_snapshots() {
    for case in CASES {
        let (engine, session) = session(case);
        let rendered = render(&engine, &session, &super::target()).expect("renders");
        check_documents(&rendered);
        insta::assert_snapshot!(
            format!("{}_{}", case.policy, case.identity),
            describe(&engine, &rendered)
        );
    }
}

#[test]
fn shipped_policies_never_grant_more_on_aws_and_narrowing_is_measured() {
    let mut rng = Rng(0x0541_BBED);
    let mut lines = Vec::new();
    for case in CASES {
        let (engine, session) = session(case);
        let label = format!("{}.policy {}", case.policy, case.identity);
        let (rendered, tallies) =
            check_session(&engine, &session, &mut rng, 4000, &label).expect("renders");
        for (action, tally) in &tallies {
            let exactness = rendered
                .exactness
                .iter()
                .find(|(a, _)| a == action)
                .map(|(_, e)| *e);
            lines.push(line(case, *action, tally, exactness));
        }
    }
    eprintln!("policy    identity    action    asked  allowed  granted  narrowed  proved");
    for l in lines {
        eprintln!("{l}");
    }
}

fn line(case: &Case, action: Action, t: &Tally, e: Option<Exactness>) -> String {
    format!(
        "{:<9} {:<11} {:<9} {:>5} {:>8} {:>8} {:>8.1}%  {}",
        case.policy,
        case.identity,
        action.to_string(),
        t.asked,
        t.allowed,
        t.granted,
        t.narrowed_percent(),
        e.map_or("-".to_string(), |e| format!("{e:?}"))
    )
}

#[test]
fn the_mobile_app_renders_exactly() {
    let (engine, session) = session(&CASES[0]);
    let rendered = render(&engine, &session, &super::target()).unwrap();
    assert!(rendered.is_exact(), "{:?}", rendered.notes);
    assert!(rendered.notes.is_empty());
}
