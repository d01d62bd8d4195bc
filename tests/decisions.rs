//! Decision tables over the shipped policies (`policies/*.policy`), as insta snapshots.
//!
//! Each table is computed from the list of requests written below — who asks (identity,
//! attributes, client id), what (connect, publish, retain, subscribe, receive) and on which
//! topic — never from the snapshot. Every row shows the verdict, the deciding rule (file:line
//! and text), the captures and, for denials without a rule, the reason. The snapshots were
//! checked row by row against the policies: a changed verdict is a security change and must
//! be reviewed as one. Each policy's `*.test.toml` file must also pass in full, through the
//! same runner `topicguard test` uses.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use topicguard::decide::{Explanation, reference};
use topicguard::{Engine, Identity, Policy, Request, Source};

/// Someone who connects: an identity of the policy, its attributes and its client id.
struct Principal {
    label: &'static str,
    kind: &'static str,
    attrs: &'static [(&'static str, &'static str)],
    client: &'static str,
}

#[derive(Clone, Copy)]
enum Act {
    Connect,
    Publish,
    Retain,
    Subscribe,
    Receive,
}

impl Act {
    fn name(self) -> &'static str {
        match self {
            Act::Connect => "connect",
            Act::Publish => "publish",
            Act::Retain => "retain",
            Act::Subscribe => "subscribe",
            Act::Receive => "receive",
        }
    }

    fn request(self, topic: &str) -> Request<'_> {
        match self {
            Act::Connect => Request::Connect,
            Act::Publish => Request::publish(topic),
            Act::Retain => Request::Publish {
                topic,
                retain: true,
            },
            Act::Subscribe => Request::subscribe(topic),
            Act::Receive => Request::receive(topic),
        }
    }
}

/// One request of a table. In `topic`, `{name}` is replaced by the client id of the
/// principal labelled `name` (so rows stay readable in this file).
struct Ask {
    who: &'static str,
    act: Act,
    topic: &'static str,
}

const fn ask(who: &'static str, act: Act, topic: &'static str) -> Ask {
    Ask { who, act, topic }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loads `policies/NAME` under a stable, relative name so snapshots cite `policies/NAME:LINE`.
fn load(name: &str) -> (Policy, Engine) {
    let path = manifest_dir().join("policies").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let source = Source::new(format!("policies/{name}"), text);
    let policy = Policy::from_source(&source)
        .unwrap_or_else(|d| panic!("{name} does not check:\n{}", d.render_plain()));
    assert!(
        policy.warnings.items.is_empty(),
        "{name} has warnings:\n{}",
        policy.warnings.render_plain()
    );
    let engine = Engine::new(&policy.checked).expect("the shipped policy compiles");
    (policy, engine)
}

/// Replaces `{label}` in a topic with that principal's client id.
fn expand(topic: &str, principals: &[Principal]) -> String {
    let mut out = topic.to_string();
    for p in principals {
        out = out.replace(&format!("{{{}}}", p.label), p.client);
    }
    assert!(
        !out.contains('{'),
        "unexpanded placeholder in `{topic}`: every `{{name}}` must be a principal label"
    );
    out
}

fn principal<'a>(principals: &'a [Principal], label: &str) -> &'a Principal {
    principals
        .iter()
        .find(|p| p.label == label)
        .unwrap_or_else(|| panic!("no principal labelled `{label}`"))
}

/// One decided row.
struct Row {
    who: &'static str,
    client: &'static str,
    act: &'static str,
    topic: String,
    explanation: Explanation,
}

fn decide_all(engine: &Engine, principals: &[Principal], asks: &[Ask]) -> Vec<Row> {
    asks.iter()
        .map(|a| {
            let p = principal(principals, a.who);
            let identity = Identity::asserted(p.kind, p.attrs.iter().copied());
            let session = engine.bind(&identity, p.client);
            let topic = expand(a.topic, principals);
            let explanation = engine.explain(&session, a.act.request(&topic));
            let request = a.act.request(&topic);
            assert_eq!(
                explanation.decision,
                engine.decide(&session, request),
                "explain and decide disagree on {} {} {topic}",
                p.label,
                a.act.name()
            );
            let oracle = reference::Reference::new(engine.checked());
            let binding = oracle.bind(&identity, p.client);
            let reference = oracle.decide(&binding, request);
            assert_eq!(
                (reference.verdict, reference.rule),
                (explanation.decision.verdict, explanation.decision.rule),
                "the reference interpreter disagrees on {} {} {topic}",
                p.label,
                a.act.name()
            );
            Row {
                who: p.label,
                client: p.client,
                act: a.act.name(),
                topic: if matches!(a.act, Act::Connect) {
                    "-".to_string()
                } else {
                    topic
                },
                explanation,
            }
        })
        .collect()
}

fn legend(out: &mut String, principals: &[Principal]) {
    let width = principals.iter().map(|p| p.label.len()).max().unwrap_or(0);
    out.push_str("principals:\n");
    for p in principals {
        let attrs: Vec<String> = p.attrs.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        let _ = writeln!(
            out,
            "  {:width$}  {} {{{}}}  client {:?}",
            p.label,
            p.kind,
            attrs.join(" "),
            p.client
        );
    }
    out.push('\n');
}

/// The second line of a row: the deciding rule, or why no rule decided; captures; detail.
fn because(e: &Explanation) -> String {
    let mut parts = Vec::new();
    match &e.deciding {
        Some(rule) => parts.push(format!("{} {}: {}", rule.effect, rule.loc, rule.text)),
        None => parts.push(format!("no rule: {}", e.decision.reason)),
    }
    let deciding = e.deciding.as_ref().map(|r| r.id);
    let also: Vec<String> = e
        .denies
        .iter()
        .chain(&e.allows)
        .filter(|r| Some(r.id) != deciding)
        .map(|r| format!("{} line {}", r.effect, r.loc.line))
        .collect();
    if !also.is_empty() {
        parts.push(format!("also matched {}", also.join(", ")));
    }
    if !e.captures.is_empty() {
        let shown: Vec<String> = e.captures.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("captures {}", shown.join(" ")));
    }
    if let Some(detail) = e
        .detail
        .as_ref()
        .filter(|d| **d != e.decision.reason.to_string())
    {
        parts.push(detail.clone());
    }
    parts.join(" | ")
}

fn render(title: &str, principals: &[Principal], rows: &[Row]) -> String {
    let mut out = format!("{title}: {} decisions\n\n", rows.len());
    legend(&mut out, principals);
    let w_who = rows.iter().map(|r| r.who.len()).max().unwrap_or(0);
    let w_client = rows.iter().map(|r| r.client.len()).max().unwrap_or(0);
    let w_act = "subscribe".len();
    let w_topic = rows.iter().map(|r| r.topic.len()).max().unwrap_or(0);
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>3}  {:w_who$}  {:w_client$}  {:w_act$}  {:w_topic$}  {}",
            i + 1,
            r.who,
            r.client,
            r.act,
            r.topic,
            r.explanation.decision.verdict.to_string().to_uppercase()
        );
        let _ = writeln!(out, "     -> {}", because(&r.explanation));
    }
    out
}

/// Every case of `policies/NAME.test.toml` passes through the public runner.
fn policy_tests_pass(test_file: &str) -> usize {
    let path = manifest_dir().join("policies").join(test_file);
    let report = topicguard::testcases::run_file(&path)
        .unwrap_or_else(|e| panic!("{} cannot run: {e}", path.display()));
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {}: {}", r.loc, r.name, r.failures.join("; ")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed in {test_file}:\n{}",
        failures.len(),
        report.results.len(),
        failures.join("\n")
    );
    report.results.len()
}

/// Counts the verdicts of a table, so a test can insist that a table exercises all three.
fn verdicts(rows: &[Row]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in rows {
        *counts
            .entry(r.explanation.decision.verdict.to_string())
            .or_insert(0) += 1;
    }
    counts
}

fn table(policy: &str, principals: &[Principal], asks: &[Ask]) -> (String, Vec<Row>) {
    let (_policy, engine) = load(policy);
    let rows = decide_all(&engine, principals, asks);
    let counts = verdicts(&rows);
    assert_eq!(
        counts.len(),
        3,
        "{policy}: the table should hold allowed, explicit and implicit denials: {counts:?}"
    );
    (render(policy, principals, &rows), rows)
}

// ------------------------------------------------------------------------------- xfinity

const GW_ATTRS: &[(&str, &str)] = &[
    ("pid", "P1"),
    ("aid", "A1"),
    ("model", "XB7"),
    ("serial", "S123"),
    ("uid_aid", "A1"),
    ("iid", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
    ("mac", "0123456789abcdef"),
];

const XFINITY_PRINCIPALS: &[Principal] = &[
    Principal {
        label: "mob",
        kind: "mobile",
        attrs: &[("pid", "P1"), ("aid", "A1"), ("jti", "J1")],
        client: "xfi:P1_A1:clt:J1",
    },
    Principal {
        label: "mob2",
        kind: "mobile",
        attrs: &[("pid", "P1"), ("aid", "A1"), ("jti", "J2")],
        client: "xfi:P1_A1:clt:J2",
    },
    Principal {
        label: "mob-A2",
        kind: "mobile",
        attrs: &[("pid", "P1"), ("aid", "A2"), ("jti", "J7")],
        client: "xfi:P1_A2:clt:J7",
    },
    Principal {
        label: "mob-jti?",
        kind: "mobile",
        attrs: &[("pid", "P1"), ("aid", "A1"), ("jti", "J1")],
        client: "xfi:P1_A1:clt:J2",
    },
    Principal {
        label: "mob-pid?",
        kind: "mobile",
        attrs: &[("pid", "P1"), ("aid", "A1"), ("jti", "J1")],
        client: "xfi:P2_A1:clt:J1",
    },
    Principal {
        label: "mob-P/1",
        kind: "mobile",
        attrs: &[("pid", "P/1"), ("aid", "A1"), ("jti", "J1")],
        client: "xfi:P/1_A1:clt:J1",
    },
    Principal {
        label: "mob-+",
        kind: "mobile",
        attrs: &[("pid", "+"), ("aid", "A1"), ("jti", "J1")],
        client: "xfi:+_A1:clt:J1",
    },
    Principal {
        label: "mob-#",
        kind: "mobile",
        attrs: &[("pid", "P1"), ("aid", "#"), ("jti", "J1")],
        client: "xfi:P1_#:clt:J1",
    },
    Principal {
        label: "mob-empty",
        kind: "mobile",
        attrs: &[("pid", "P1"), ("aid", "A1"), ("jti", "")],
        client: "xfi:P1_A1:clt:",
    },
    Principal {
        label: "gw",
        kind: "gateway",
        attrs: GW_ATTRS,
        client: "iot:P1_A1:adp:xhf:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    },
    Principal {
        label: "gw-iid?",
        kind: "gateway",
        attrs: GW_ATTRS,
        client: "iot:P1_A1:adp:xhf:00000000-0000-0000-0000-000000000000",
    },
    Principal {
        label: "gw-uid?",
        kind: "gateway",
        attrs: &[
            ("pid", "P1"),
            ("aid", "A1"),
            ("model", "XB7"),
            ("serial", "S123"),
            ("uid_aid", "A2"),
            ("iid", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
            ("mac", "0123456789abcdef"),
        ],
        client: "iot:P1_A1:adp:xhf:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    },
    Principal {
        label: "gw-mac?",
        kind: "gateway",
        attrs: &[
            ("pid", "P1"),
            ("aid", "A1"),
            ("model", "XB7"),
            ("serial", "S123"),
            ("uid_aid", "A1"),
            ("iid", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
            ("mac", "0123456789ABCDEF"),
        ],
        client: "iot:P1_A1:adp:xhf:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    },
    Principal {
        label: "gw-iid-I1",
        kind: "gateway",
        attrs: &[
            ("pid", "P1"),
            ("aid", "A1"),
            ("model", "XB7"),
            ("serial", "S123"),
            ("uid_aid", "A1"),
            ("iid", "I1"),
            ("mac", "0123456789abcdef"),
        ],
        client: "iot:P1_A1:adp:xhf:I1",
    },
    Principal {
        label: "svc",
        kind: "service",
        attrs: &[("sid", "lights")],
        client: "svc:lights:7",
    },
    Principal {
        label: "svc-locks",
        kind: "service",
        attrs: &[("sid", "locks")],
        client: "svc:locks:1",
    },
    Principal {
        label: "svc-noinst",
        kind: "service",
        attrs: &[("sid", "lights")],
        client: "svc:lights:",
    },
    Principal {
        label: "svc-as-locks",
        kind: "service",
        attrs: &[("sid", "lights")],
        client: "svc:locks:7",
    },
    Principal {
        label: "root",
        kind: "admin",
        attrs: &[],
        client: "root",
    },
];

const XFINITY_ASKS: &[Ask] = &[
    // connect: exact client ids, valid attribute values
    ask("mob", Act::Connect, ""),
    ask("mob-A2", Act::Connect, ""),
    ask("mob-jti?", Act::Connect, ""),
    ask("mob-pid?", Act::Connect, ""),
    ask("mob-P/1", Act::Connect, ""),
    ask("mob-+", Act::Connect, ""),
    ask("mob-#", Act::Connect, ""),
    ask("mob-empty", Act::Connect, ""),
    ask("gw", Act::Connect, ""),
    ask("gw-iid?", Act::Connect, ""),
    ask("gw-uid?", Act::Connect, ""),
    ask("gw-mac?", Act::Connect, ""),
    ask("gw-iid-I1", Act::Connect, ""),
    ask("svc", Act::Connect, ""),
    ask("svc-noinst", Act::Connect, ""),
    ask("svc-as-locks", Act::Connect, ""),
    ask("root", Act::Connect, ""),
    // a rejected session stays rejected for every request
    ask("mob-+", Act::Publish, "c/xfi/+_A1/lights/{mob-+}/r1"),
    ask(
        "mob-#",
        Act::Subscribe,
        "c/xfi/P1_#/{mob-#}/lights/r1/success",
    ),
    ask("mob-jti?", Act::Publish, "c/xfi/P1_A1/lights/{mob-jti?}/r1"),
    // mobile publish: requests in its own namespace, to the services in the set
    ask("mob", Act::Publish, "c/xfi/P1_A1/lights/{mob}/r1"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/thermostat/{mob}/set"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/locks/{mob}/unlock"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/cameras/{mob}/snap"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/garage/{mob}/open"),
    ask("mob", Act::Publish, "c/xfi/P1_A2/lights/{mob}/r1"),
    ask("mob", Act::Publish, "c/xfi/P2_A1/lights/{mob}/r1"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/lights/{mob2}/r1"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/lights/{mob}"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/lights/{mob}/r1/x"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/lights/{mob}/"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/{mob}/lights/r1/success"),
    ask("mob", Act::Publish, "c/iot/P1_A1/lights/{mob}/r1"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/admin/{mob}/r1"),
    ask("mob", Act::Publish, "c/xfi/P1_A1/lights/{mob}/+"),
    ask("mob", Act::Retain, "c/xfi/P1_A1/lights/{mob}/r1"),
    ask("mob-A2", Act::Publish, "c/xfi/P1_A2/lights/{mob-A2}/r1"),
    ask("mob-A2", Act::Publish, "c/xfi/P1_A1/lights/{mob-A2}/r1"),
    // mobile subscribe: containment
    ask("mob", Act::Subscribe, "c/xfi/P1_A1/{mob}/lights/r1/success"),
    ask("mob", Act::Subscribe, "c/xfi/P1_A1/{mob}/locks/+/failure"),
    ask("mob", Act::Subscribe, "c/xfi/P1_A1/{mob}/lights/+/+"),
    ask("mob", Act::Subscribe, "c/xfi/P1_A1/{mob}/+/+/success"),
    ask("mob", Act::Subscribe, "c/xfi/P1_A1/{mob}/lights/#"),
    ask("mob", Act::Subscribe, "c/xfi/P1_A1/{mob}/#"),
    ask("mob", Act::Subscribe, "c/xfi/P1_A1/#"),
    ask("mob", Act::Subscribe, "#"),
    ask("mob", Act::Subscribe, "c/xfi/P1_A1/+/lights/r1/success"),
    ask("mob", Act::Subscribe, "c/xfi/P1_A2/{mob}/lights/r1/success"),
    ask(
        "mob",
        Act::Subscribe,
        "c/xfi/P1_A1/{mob2}/lights/r1/success",
    ),
    ask(
        "mob",
        Act::Subscribe,
        "$share/phones/c/xfi/P1_A1/{mob}/lights/+/success",
    ),
    ask("mob", Act::Subscribe, "$share/phones/c/xfi/P1_A1/#"),
    ask(
        "mob",
        Act::Subscribe,
        "$queue/c/xfi/P1_A1/{mob}/lights/r1/success",
    ),
    ask("mob", Act::Subscribe, "$SYS/#"),
    ask("mob", Act::Subscribe, "c/xfi/P1_A1/{mob}/lights/r+/success"),
    ask("mob", Act::Subscribe, "c/iot/P1_A1/+/presence"),
    ask("mob", Act::Subscribe, "c/iot/P1_A1/{gw}/presence"),
    ask("mob", Act::Subscribe, "c/iot/P1_A2/+/presence"),
    ask("mob", Act::Subscribe, "c/iot/P1_A1/#"),
    // mobile receive: checked per delivery
    ask("mob", Act::Receive, "c/xfi/P1_A1/{mob}/lights/r1/success"),
    ask("mob", Act::Receive, "c/xfi/P1_A1/{mob}/cameras/r2/failure"),
    ask("mob", Act::Receive, "c/xfi/P1_A1/{mob}/lights/r1/pending"),
    ask("mob", Act::Receive, "c/xfi/P1_A1/{mob}/garage/r1/success"),
    ask("mob", Act::Receive, "c/xfi/P1_A1/{mob2}/lights/r1/success"),
    ask("mob", Act::Receive, "c/xfi/P1_A2/{mob}/lights/r1/success"),
    ask("mob", Act::Receive, "c/iot/P1_A1/{gw}/presence"),
    ask("mob", Act::Receive, "c/xfi/P1_A1/lights/{mob}/r1"),
    ask(
        "mob-A2",
        Act::Receive,
        "c/xfi/P1_A1/{mob}/lights/r1/success",
    ),
    // gateway
    ask("gw", Act::Publish, "c/iot/P1_A1/thermostat/{gw}/report"),
    ask("gw", Act::Publish, "c/iot/P1_A1/billing/{gw}/report"),
    ask("gw", Act::Publish, "c/iot/P1_A2/thermostat/{gw}/report"),
    ask("gw", Act::Publish, "c/xfi/P1_A1/thermostat/{gw}/report"),
    ask("gw", Act::Publish, "c/iot/P1_A1/{gw}/presence"),
    ask("gw", Act::Retain, "c/iot/P1_A1/{gw}/presence"),
    ask("gw", Act::Retain, "c/iot/P1_A1/thermostat/{gw}/report"),
    ask("gw", Act::Retain, "c/iot/P1_A1/{gw-iid?}/presence"),
    ask("gw", Act::Publish, "c/iot/P1_A1/admin/{gw}/report"),
    ask("gw", Act::Subscribe, "c/iot/P1_A1/{gw}/lights/+/success"),
    ask("gw", Act::Subscribe, "c/iot/P1_A1/{gw}/#"),
    ask("gw", Act::Subscribe, "c/iot/P1_A1/+/presence"),
    ask("gw", Act::Receive, "c/iot/P1_A1/{gw}/locks/r9/failure"),
    ask("gw", Act::Receive, "c/xfi/P1_A1/{mob}/locks/r9/failure"),
    // services
    ask("svc", Act::Subscribe, "c/+/+/lights/+/+"),
    ask(
        "svc",
        Act::Subscribe,
        "$share/lights-workers/c/+/+/lights/+/+",
    ),
    ask("svc", Act::Subscribe, "c/xfi/P1_A1/lights/+/+"),
    ask("svc", Act::Subscribe, "c/+/+/locks/+/+"),
    ask("svc", Act::Subscribe, "c/+/+/+/+/+"),
    ask("svc", Act::Subscribe, "c/#"),
    ask("svc", Act::Subscribe, "+/+/+/lights/+/+"),
    ask("svc", Act::Subscribe, "c/+/+/lights/+/#"),
    ask("svc", Act::Receive, "c/xfi/P1_A1/lights/{mob}/r1"),
    ask("svc", Act::Receive, "c/iot/P2_A7/lights/{gw}/r1"),
    ask("svc", Act::Receive, "c/xfi/P1_A1/locks/{mob}/r1"),
    ask("svc", Act::Receive, "c/xfi/P1_A1/{mob}/lights/r1/success"),
    ask("svc", Act::Publish, "c/xfi/P1_A1/{mob}/lights/r1/success"),
    ask("svc", Act::Publish, "c/iot/P1_A1/{gw}/lights/r1/failure"),
    ask("svc", Act::Publish, "c/xfi/P1_A1/{mob}/lights/r1/pending"),
    ask("svc", Act::Publish, "c/xfi/P1_A1/{mob}/locks/r1/success"),
    ask("svc", Act::Publish, "c/xfi/P1_A1/lights/{mob}/r1"),
    ask("svc", Act::Publish, "c/xfi/P1_A1/admin/lights/r1/success"),
    ask("svc", Act::Retain, "c/xfi/P1_A1/{mob}/lights/r1/success"),
    ask(
        "svc-locks",
        Act::Publish,
        "c/xfi/P1_A1/{mob}/locks/r1/success",
    ),
    ask("svc-locks", Act::Receive, "c/xfi/P1_A1/lights/{mob}/r1"),
    ask("root", Act::Subscribe, "#"),
];

#[test]
fn xfinity_decision_table() {
    let (table, rows) = table("xfinity.policy", XFINITY_PRINCIPALS, XFINITY_ASKS);
    assert!(rows.len() >= 100, "{} rows", rows.len());
    insta::assert_snapshot!("xfinity", table);
}

#[test]
fn xfinity_policy_tests_pass() {
    assert!(policy_tests_pass("xfinity.test.toml") >= 60);
}

// --------------------------------------------------------------------------------- fleet

const VIN1: &str = "1HGCM82633A004352";

const FLEET_PRINCIPALS: &[Principal] = &[
    Principal {
        label: "veh",
        kind: "vehicle",
        attrs: &[("fleet", "F1"), ("vin", VIN1), ("uri_vin", VIN1)],
        client: "veh:F1:1HGCM82633A004352",
    },
    Principal {
        label: "veh2",
        kind: "vehicle",
        attrs: &[
            ("fleet", "F1"),
            ("vin", "5YJ3E1EA7KF317000"),
            ("uri_vin", "5YJ3E1EA7KF317000"),
        ],
        client: "veh:F1:5YJ3E1EA7KF317000",
    },
    Principal {
        label: "veh-F2",
        kind: "vehicle",
        attrs: &[
            ("fleet", "F2"),
            ("vin", "WDBRF61J43F123456"),
            ("uri_vin", "WDBRF61J43F123456"),
        ],
        client: "veh:F2:WDBRF61J43F123456",
    },
    Principal {
        label: "veh-uri?",
        kind: "vehicle",
        attrs: &[
            ("fleet", "F1"),
            ("vin", VIN1),
            ("uri_vin", "5YJ3E1EA7KF317000"),
        ],
        client: "veh:F1:1HGCM82633A004352",
    },
    Principal {
        label: "veh-cid?",
        kind: "vehicle",
        attrs: &[("fleet", "F1"), ("vin", VIN1), ("uri_vin", VIN1)],
        client: "veh:F1:5YJ3E1EA7KF317000",
    },
    Principal {
        label: "dsp",
        kind: "dispatch",
        attrs: &[("fleet", "F1"), ("desk", "north")],
        client: "dsp:F1:north:a",
    },
    Principal {
        label: "dsp-F2",
        kind: "dispatch",
        attrs: &[("fleet", "F2"), ("desk", "south")],
        client: "dsp:F2:south:b",
    },
    Principal {
        label: "dsp-cid?",
        kind: "dispatch",
        attrs: &[("fleet", "F1"), ("desk", "north")],
        client: "dsp:F2:north:a",
    },
    Principal {
        label: "drv",
        kind: "driver",
        attrs: &[("fleet", "F1"), ("vin", VIN1), ("sub", "d-100")],
        client: "drv:F1:d-100:phone1",
    },
    Principal {
        label: "drv-sub?",
        kind: "driver",
        attrs: &[("fleet", "F1"), ("vin", VIN1), ("sub", "d-100")],
        client: "drv:F1:d-200:phone1",
    },
    Principal {
        label: "drv-vin+",
        kind: "driver",
        attrs: &[("fleet", "F1"), ("vin", "+"), ("sub", "d-100")],
        client: "drv:F1:d-100:phone1",
    },
    Principal {
        label: "drv-vin/",
        kind: "driver",
        attrs: &[("fleet", "F1"), ("vin", "1HG/CM"), ("sub", "d-100")],
        client: "drv:F1:d-100:phone1",
    },
    Principal {
        label: "drv-fleet#",
        kind: "driver",
        attrs: &[("fleet", "#"), ("vin", VIN1), ("sub", "d-100")],
        client: "drv:#:d-100:phone1",
    },
    Principal {
        label: "drv-fleet''",
        kind: "driver",
        attrs: &[("fleet", ""), ("vin", VIN1), ("sub", "d-100")],
        client: "drv::d-100:phone1",
    },
];

const FLEET_ASKS: &[Ask] = &[
    // connect
    ask("veh", Act::Connect, ""),
    ask("veh-uri?", Act::Connect, ""),
    ask("veh-cid?", Act::Connect, ""),
    ask("dsp", Act::Connect, ""),
    ask("dsp-cid?", Act::Connect, ""),
    ask("drv", Act::Connect, ""),
    ask("drv-sub?", Act::Connect, ""),
    ask("drv-vin+", Act::Connect, ""),
    ask("drv-vin/", Act::Connect, ""),
    ask("drv-fleet#", Act::Connect, ""),
    ask("drv-fleet''", Act::Connect, ""),
    ask("drv-vin+", Act::Subscribe, "fleet/F1/vehicles/+/status"),
    // vehicle: telemetry and status under its own VIN
    ask(
        "veh",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/gps",
    ),
    ask(
        "veh",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/speed",
    ),
    ask(
        "veh",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/cabin",
    ),
    ask(
        "veh",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/tyres",
    ),
    ask(
        "veh",
        Act::Publish,
        "fleet/F1/vehicles/5YJ3E1EA7KF317000/telemetry/gps",
    ),
    ask(
        "veh",
        Act::Publish,
        "fleet/F2/vehicles/1HGCM82633A004352/telemetry/gps",
    ),
    ask(
        "veh",
        Act::Retain,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/gps",
    ),
    ask(
        "veh",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/status",
    ),
    ask(
        "veh",
        Act::Retain,
        "fleet/F1/vehicles/1HGCM82633A004352/status",
    ),
    ask(
        "veh",
        Act::Retain,
        "fleet/F1/vehicles/5YJ3E1EA7KF317000/status",
    ),
    // vehicle: commands addressed to it, and its acks
    ask(
        "veh",
        Act::Subscribe,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/lock/+",
    ),
    ask(
        "veh",
        Act::Subscribe,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/+/+",
    ),
    ask(
        "veh",
        Act::Subscribe,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/#",
    ),
    ask("veh", Act::Subscribe, "fleet/F1/vehicles/+/cmd/lock/+"),
    ask(
        "veh",
        Act::Receive,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/immobilize/q7",
    ),
    ask(
        "veh",
        Act::Receive,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/selfdestruct/q7",
    ),
    ask(
        "veh",
        Act::Receive,
        "fleet/F1/vehicles/5YJ3E1EA7KF317000/cmd/lock/q7",
    ),
    ask(
        "veh",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/ack/q7/accepted",
    ),
    ask(
        "veh",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/ack/q7/done",
    ),
    ask(
        "veh",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/ack/q7/maybe",
    ),
    ask(
        "veh",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/unlock/q8",
    ),
    ask(
        "veh",
        Act::Subscribe,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/cabin",
    ),
    ask(
        "veh",
        Act::Receive,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/gps",
    ),
    // dispatch: its whole fleet
    ask("dsp", Act::Subscribe, "fleet/F1/vehicles/+/telemetry/gps"),
    ask(
        "dsp",
        Act::Subscribe,
        "fleet/F1/vehicles/5YJ3E1EA7KF317000/telemetry/fuel",
    ),
    ask("dsp", Act::Subscribe, "fleet/F1/vehicles/+/telemetry/+"),
    ask("dsp", Act::Subscribe, "fleet/F1/vehicles/+/telemetry/cabin"),
    ask("dsp", Act::Subscribe, "fleet/F1/vehicles/+/status"),
    ask("dsp", Act::Subscribe, "fleet/F1/vehicles/+/ack/+/+"),
    ask(
        "dsp",
        Act::Subscribe,
        "$share/dispatchers/fleet/F1/vehicles/+/ack/+/+",
    ),
    ask("dsp", Act::Subscribe, "fleet/F1/vehicles/+/ack/#"),
    ask("dsp", Act::Subscribe, "fleet/F1/#"),
    ask("dsp", Act::Subscribe, "fleet/F2/vehicles/+/status"),
    ask("dsp", Act::Subscribe, "fleet/+/vehicles/+/status"),
    ask(
        "dsp",
        Act::Receive,
        "fleet/F1/vehicles/5YJ3E1EA7KF317000/telemetry/gps",
    ),
    ask(
        "dsp",
        Act::Receive,
        "fleet/F1/vehicles/5YJ3E1EA7KF317000/telemetry/cabin",
    ),
    ask(
        "dsp",
        Act::Receive,
        "fleet/F2/vehicles/WDBRF61J43F123456/telemetry/gps",
    ),
    ask(
        "dsp",
        Act::Publish,
        "fleet/F1/vehicles/5YJ3E1EA7KF317000/cmd/immobilize/q1",
    ),
    ask(
        "dsp",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/route/q2",
    ),
    ask(
        "dsp",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/selfdestruct/q3",
    ),
    ask(
        "dsp",
        Act::Publish,
        "fleet/F2/vehicles/WDBRF61J43F123456/cmd/lock/q4",
    ),
    ask(
        "dsp",
        Act::Retain,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/lock/q5",
    ),
    ask(
        "dsp",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/gps",
    ),
    ask(
        "dsp-F2",
        Act::Publish,
        "fleet/F2/vehicles/WDBRF61J43F123456/cmd/lock/q4",
    ),
    ask("dsp-F2", Act::Subscribe, "fleet/F1/vehicles/+/status"),
    // driver: the assigned vehicle only
    ask(
        "drv",
        Act::Subscribe,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/gps",
    ),
    ask(
        "drv",
        Act::Subscribe,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/+",
    ),
    ask(
        "drv",
        Act::Subscribe,
        "fleet/F1/vehicles/1HGCM82633A004352/status",
    ),
    ask(
        "drv",
        Act::Subscribe,
        "fleet/F1/vehicles/1HGCM82633A004352/ack/+/+",
    ),
    ask(
        "drv",
        Act::Subscribe,
        "fleet/F1/vehicles/1HGCM82633A004352/#",
    ),
    ask(
        "drv",
        Act::Subscribe,
        "fleet/F1/vehicles/5YJ3E1EA7KF317000/status",
    ),
    ask("drv", Act::Subscribe, "fleet/F1/vehicles/+/status"),
    ask(
        "drv",
        Act::Subscribe,
        "$share/g/fleet/F1/vehicles/1HGCM82633A004352/status",
    ),
    ask(
        "drv",
        Act::Receive,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/fuel",
    ),
    ask(
        "drv",
        Act::Receive,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/cabin",
    ),
    ask(
        "drv",
        Act::Receive,
        "fleet/F1/vehicles/5YJ3E1EA7KF317000/telemetry/fuel",
    ),
    ask(
        "drv",
        Act::Receive,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/lock/q1",
    ),
    ask(
        "drv",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/lock/q9",
    ),
    ask(
        "drv",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/horn/q9",
    ),
    ask(
        "drv",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/immobilize/q9",
    ),
    ask(
        "drv",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/route/q9",
    ),
    ask(
        "drv",
        Act::Publish,
        "fleet/F1/vehicles/5YJ3E1EA7KF317000/cmd/unlock/q9",
    ),
    ask(
        "drv",
        Act::Publish,
        "fleet/F1/vehicles/1HGCM82633A004352/telemetry/gps",
    ),
    ask(
        "drv",
        Act::Retain,
        "fleet/F1/vehicles/1HGCM82633A004352/cmd/lock/q9",
    ),
    ask("drv", Act::Subscribe, "$SYS/#"),
];

#[test]
fn fleet_decision_table() {
    let (table, rows) = table("fleet.policy", FLEET_PRINCIPALS, FLEET_ASKS);
    assert!(rows.len() >= 50, "{} rows", rows.len());
    insta::assert_snapshot!("fleet", table);
}

#[test]
fn fleet_policy_tests_pass() {
    assert!(policy_tests_pass("fleet.test.toml") >= 40);
}

// ------------------------------------------------------------------------------ building

const T1: &str = "3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10";
const T2: &str = "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d";

const BUILDING_PRINCIPALS: &[Principal] = &[
    Principal {
        label: "dev",
        kind: "device",
        attrs: &[
            ("building", "B1"),
            ("tenant", T1),
            ("floor", "12"),
            ("cn_tenant", T1),
            ("device", "thermo-1201"),
        ],
        client: "3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10_thermo-1201",
    },
    Principal {
        label: "dev-T2",
        kind: "device",
        attrs: &[
            ("building", "B1"),
            ("tenant", T2),
            ("floor", "3"),
            ("cn_tenant", T2),
            ("device", "co2-0301"),
        ],
        client: "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d_co2-0301",
    },
    Principal {
        label: "dev-cn?",
        kind: "device",
        attrs: &[
            ("building", "B1"),
            ("tenant", T1),
            ("floor", "12"),
            ("cn_tenant", T2),
            ("device", "thermo-1201"),
        ],
        client: "3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10_thermo-1201",
    },
    Principal {
        label: "dev-acme",
        kind: "device",
        attrs: &[
            ("building", "B1"),
            ("tenant", "acme"),
            ("floor", "12"),
            ("cn_tenant", "acme"),
            ("device", "thermo-1201"),
        ],
        client: "acme_thermo-1201",
    },
    Principal {
        label: "dev-cid?",
        kind: "device",
        attrs: &[
            ("building", "B1"),
            ("tenant", T1),
            ("floor", "12"),
            ("cn_tenant", T1),
            ("device", "thermo-1201"),
        ],
        client: "3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10_thermo-1202",
    },
    Principal {
        label: "app",
        kind: "tenant_app",
        attrs: &[("building", "B1"), ("tenant", T1), ("user", "u-42")],
        client: "app:u-42:ios-1",
    },
    Principal {
        label: "app-T2",
        kind: "tenant_app",
        attrs: &[("building", "B1"), ("tenant", T2), ("user", "u-77")],
        client: "app:u-77:web",
    },
    Principal {
        label: "app-cid?",
        kind: "tenant_app",
        attrs: &[("building", "B1"), ("tenant", T1), ("user", "u-42")],
        client: "app:u-43:ios-1",
    },
    Principal {
        label: "app-user#",
        kind: "tenant_app",
        attrs: &[("building", "B1"), ("tenant", T1), ("user", "#")],
        client: "app:#:ios-1",
    },
    Principal {
        label: "ops",
        kind: "operator",
        attrs: &[("building", "B1"), ("user", "o-1")],
        client: "ops:B1:o-1",
    },
    Principal {
        label: "ops-cid?",
        kind: "operator",
        attrs: &[("building", "B1"), ("user", "o-1")],
        client: "ops:B2:o-1",
    },
    Principal {
        label: "ops-B/1",
        kind: "operator",
        attrs: &[("building", "B/1"), ("user", "o-1")],
        client: "ops:B/1:o-1",
    },
    Principal {
        label: "lobby",
        kind: "lobby",
        attrs: &[],
        client: "lobby-3",
    },
    Principal {
        label: "lobby-bare",
        kind: "lobby",
        attrs: &[],
        client: "lobby-",
    },
    Principal {
        label: "lobby-attr",
        kind: "lobby",
        attrs: &[("building", "B1")],
        client: "lobby-3",
    },
];

const BUILDING_ASKS: &[Ask] = &[
    // connect
    ask("dev", Act::Connect, ""),
    ask("dev-cn?", Act::Connect, ""),
    ask("dev-acme", Act::Connect, ""),
    ask("dev-cid?", Act::Connect, ""),
    ask("app", Act::Connect, ""),
    ask("app-cid?", Act::Connect, ""),
    ask("app-user#", Act::Connect, ""),
    ask("ops", Act::Connect, ""),
    ask("ops-cid?", Act::Connect, ""),
    ask("ops-B/1", Act::Connect, ""),
    ask("lobby", Act::Connect, ""),
    ask("lobby-bare", Act::Connect, ""),
    ask("lobby-attr", Act::Connect, ""),
    // device: its readings, its commands
    ask(
        "dev",
        Act::Publish,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/temperature",
    ),
    ask(
        "dev",
        Act::Publish,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/occupancy",
    ),
    ask(
        "dev",
        Act::Publish,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/noise",
    ),
    ask(
        "dev",
        Act::Publish,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/13/thermo-1201/temperature",
    ),
    ask(
        "dev",
        Act::Publish,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1202/temperature",
    ),
    ask(
        "dev",
        Act::Publish,
        "bld/B1/a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d/12/thermo-1201/temperature",
    ),
    ask(
        "dev",
        Act::Retain,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/temperature",
    ),
    ask(
        "dev",
        Act::Subscribe,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/cmd/setpoint",
    ),
    ask(
        "dev",
        Act::Subscribe,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/cmd/+",
    ),
    ask(
        "dev",
        Act::Receive,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/cmd/reboot",
    ),
    ask(
        "dev",
        Act::Receive,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1202/cmd/reboot",
    ),
    // device: its own shadow only
    ask("dev", Act::Publish, "$aws/things/{dev}/shadow/update"),
    ask("dev", Act::Publish, "$aws/things/{dev}/shadow/get"),
    ask("dev", Act::Publish, "$aws/things/{dev}/shadow/delete"),
    ask("dev", Act::Publish, "$aws/things/{dev-T2}/shadow/update"),
    ask(
        "dev",
        Act::Subscribe,
        "$aws/things/{dev}/shadow/update/accepted",
    ),
    ask(
        "dev",
        Act::Subscribe,
        "$aws/things/{dev}/shadow/get/rejected",
    ),
    ask(
        "dev",
        Act::Subscribe,
        "$aws/things/{dev}/shadow/update/delta",
    ),
    ask("dev", Act::Subscribe, "$aws/things/{dev}/shadow/+/accepted"),
    ask("dev", Act::Subscribe, "$aws/things/{dev}/shadow/#"),
    ask("dev", Act::Subscribe, "+/things/{dev}/shadow/update/delta"),
    ask("dev", Act::Subscribe, "#"),
    ask("dev", Act::Receive, "$aws/things/{dev}/shadow/update/delta"),
    ask(
        "dev",
        Act::Receive,
        "$aws/things/{dev-T2}/shadow/update/delta",
    ),
    // tenant app: its tenant, every floor
    ask(
        "app",
        Act::Subscribe,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/+/+/temperature",
    ),
    ask(
        "app",
        Act::Subscribe,
        "$share/dash/bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/+/+/co2",
    ),
    ask(
        "app",
        Act::Subscribe,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/+/+/+",
    ),
    ask(
        "app",
        Act::Subscribe,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/#",
    ),
    ask(
        "app",
        Act::Subscribe,
        "bld/B1/a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d/+/+/temperature",
    ),
    ask("app", Act::Subscribe, "bld/B1/+/+/+/temperature"),
    ask(
        "app",
        Act::Receive,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/occupancy",
    ),
    ask(
        "app",
        Act::Receive,
        "bld/B1/a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d/3/co2-0301/co2",
    ),
    ask(
        "app",
        Act::Receive,
        "bld/B2/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/co2",
    ),
    ask(
        "app",
        Act::Publish,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/cmd/setpoint",
    ),
    ask(
        "app",
        Act::Publish,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/cmd/mode",
    ),
    ask(
        "app",
        Act::Publish,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/cmd/reboot",
    ),
    ask(
        "app",
        Act::Publish,
        "bld/B1/a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d/3/co2-0301/cmd/setpoint",
    ),
    ask(
        "app",
        Act::Publish,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/temperature",
    ),
    ask(
        "app",
        Act::Retain,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/cmd/setpoint",
    ),
    // tenant app: the shadows of its tenant's things
    ask("app", Act::Publish, "$aws/things/{dev}/shadow/update"),
    ask("app", Act::Publish, "$aws/things/{dev-T2}/shadow/update"),
    ask(
        "app",
        Act::Publish,
        "$aws/things/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/shadow/update",
    ),
    ask(
        "app",
        Act::Publish,
        "$aws/things/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10_/shadow/update",
    ),
    ask(
        "app",
        Act::Subscribe,
        "$aws/things/{dev}/shadow/update/accepted",
    ),
    ask(
        "app",
        Act::Subscribe,
        "$aws/things/{dev}/shadow/update/documents",
    ),
    ask(
        "app",
        Act::Subscribe,
        "$aws/things/{dev}/shadow/update/delta",
    ),
    ask(
        "app",
        Act::Subscribe,
        "$aws/things/+/shadow/update/accepted",
    ),
    ask("app", Act::Receive, "$aws/things/{dev}/shadow/get/rejected"),
    ask(
        "app",
        Act::Receive,
        "$aws/things/{dev-T2}/shadow/get/accepted",
    ),
    ask("app-T2", Act::Publish, "$aws/things/{dev-T2}/shadow/get"),
    ask("app-T2", Act::Publish, "$aws/things/{dev}/shadow/get"),
    ask(
        "app-T2",
        Act::Receive,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/co2",
    ),
    // operator: filtered subscriptions, $SYS
    ask("ops", Act::Subscribe, "bld/B1/#"),
    ask("ops", Act::Subscribe, "#"),
    ask("ops", Act::Subscribe, "$share/ops/bld/B1/+/+/+/occupancy"),
    ask("ops", Act::Subscribe, "bld/B1/+/+/+/occupancy"),
    ask(
        "ops",
        Act::Subscribe,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/occupancy",
    ),
    ask("ops", Act::Subscribe, "bld/B1/+/+/+/temperature"),
    ask("ops", Act::Subscribe, "bld/B2/#"),
    ask("ops", Act::Subscribe, "$SYS/#"),
    ask("ops", Act::Subscribe, "$SYS/broker/clients/connected"),
    ask("ops", Act::Subscribe, "+/broker/#"),
    ask("ops", Act::Subscribe, "$aws/things/+/shadow/#"),
    ask(
        "ops",
        Act::Receive,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/temperature",
    ),
    ask(
        "ops",
        Act::Receive,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/occupancy",
    ),
    ask("ops", Act::Receive, "bld/B1/public/notices/fire-drill"),
    ask(
        "ops",
        Act::Receive,
        "bld/B2/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/temperature",
    ),
    ask("ops", Act::Receive, "$SYS/broker/load/bytes/received"),
    ask(
        "ops",
        Act::Receive,
        "$aws/things/{dev}/shadow/update/accepted",
    ),
    ask(
        "ops",
        Act::Publish,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/cmd/reboot",
    ),
    ask(
        "ops",
        Act::Publish,
        "bld/B2/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/cmd/reboot",
    ),
    ask("ops", Act::Retain, "bld/B1/public/notices/fire-drill"),
    ask(
        "ops",
        Act::Retain,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/cmd/mode",
    ),
    ask("ops", Act::Publish, "$SYS/broker/clients/connected"),
    // lobby screens
    ask("lobby", Act::Subscribe, "bld/B1/public/notices/+"),
    ask("lobby", Act::Subscribe, "bld/+/public/notices/+"),
    ask("lobby", Act::Subscribe, "bld/B1/public/notices/#"),
    ask("lobby", Act::Subscribe, "+/+/public/notices/+"),
    ask("lobby", Act::Receive, "bld/B1/public/notices/fire-drill"),
    ask(
        "lobby",
        Act::Receive,
        "bld/B1/3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0a9f10/12/thermo-1201/temperature",
    ),
    ask("lobby", Act::Publish, "bld/B1/public/notices/fire-drill"),
    ask("lobby-bare", Act::Subscribe, "bld/B1/public/notices/+"),
];

#[test]
fn building_decision_table() {
    let (table, rows) = table("building.policy", BUILDING_PRINCIPALS, BUILDING_ASKS);
    assert!(rows.len() >= 50, "{} rows", rows.len());
    insta::assert_snapshot!("building", table);
}

#[test]
fn building_policy_tests_pass() {
    assert!(policy_tests_pass("building.test.toml") >= 40);
}

#[test]
fn the_tables_hold_at_least_150_decisions() {
    let total = XFINITY_ASKS.len() + FLEET_ASKS.len() + BUILDING_ASKS.len();
    assert!(total >= 150, "{total} decisions");
}
