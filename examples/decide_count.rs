//! Repeats the benchmark requests for an instruction-count profile (callgrind).
//!
//! `cargo run --release --example decide_count -- POLICY [REQUEST] [TIMES]` binds the
//! benchmarks' mobile client on `xfinity` (`policies/xfinity.policy`) or on a generated
//! policy of N rules (`benches/common/policy_gen.rs`), checks every request's verdict like
//! the benches do, then decides REQUEST (a bench name such as `publish/allow`, `bind`, or
//! `all`) TIMES times (default 100,000); `scan-bind` binds with the linear scan of
//! `benches/common/scan.rs` instead (collect `*Scan::bind*`); `bind-wrong` and
//! `scan-bind-wrong` bind with a client id that differs from the template's in its last
//! byte (a refused connect); `scan-decide:REQUEST` (e.g. `scan-decide:subscribe/allow`)
//! decides REQUEST with the linear scan (collect `*scan_decide*`), so "topicguard ≤ the
//! scan" is a repeatable instruction comparison. Wall clock on a shared machine is noisy;
//! the instructions per decision are not:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect='*Engine::decide*' --toggle-collect='*Engine::bind*' \
//!     target/release/examples/decide_count xfinity publish/allow 10000
//! ```
//!
//! and divide the collected instruction count by TIMES. It measures; it never changes a
//! decision.

#[path = "../benches/common/mod.rs"]
mod common;

use common::policy_gen::{self, BenchRequest, CLIENT, Expect, Kind};
use std::hint::black_box;
use std::process::ExitCode;
use topicguard::ast::Action;
use topicguard::{Engine, Request, Verdict};

fn request(r: &BenchRequest) -> Request<'_> {
    match r.action {
        Kind::Connect => Request::Connect,
        Kind::Publish => Request::publish(&r.topic),
        Kind::Subscribe => Request::subscribe(&r.topic),
        Kind::Receive => Request::receive(&r.topic),
    }
}

/// The linear scan's decision, never inlined so that callgrind can collect exactly it.
#[inline(never)]
fn scan_decide(
    scan: &common::scan::Scan,
    session: &common::scan::ScanSession,
    action: Action,
    topic: &str,
) -> common::scan::ScanVerdict {
    scan.decide(black_box(session), black_box(action), black_box(topic))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(which) = args.first() else {
        eprintln!("usage: decide_count xfinity|RULES [REQUEST|bind|all] [TIMES]");
        return ExitCode::from(2);
    };
    let wanted = args.get(1).map_or("all", String::as_str);
    let times: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(100_000);
    let (policy, requests) = if which == "xfinity" {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/xfinity.policy");
        let text = std::fs::read_to_string(path).expect("policies/xfinity.policy is readable");
        (
            common::load("xfinity.policy", &text),
            policy_gen::xfinity_requests(),
        )
    } else {
        let Ok(n) = which.parse::<usize>() else {
            eprintln!("POLICY is `xfinity` or a number of rules");
            return ExitCode::from(2);
        };
        let generated = policy_gen::generate(n);
        let requests = generated.requests();
        (common::load("generated.policy", &generated.text), requests)
    };
    let engine = Engine::builder(policy.checked.clone())
        .build()
        .expect("benchmark policy compiles");
    let identity = common::mobile();
    let session = engine.bind(&identity, CLIENT);
    for r in &requests {
        let allowed = engine.decide(&session, request(r)).verdict == Verdict::Allowed;
        assert_eq!(allowed, r.expect == Expect::Allow, "{}", r.name);
    }
    // The refused connect's client id: the bound one with its last byte changed.
    let wrong = format!("{}X", &CLIENT[..CLIENT.len() - 1]);
    let refused = engine.bind(&identity, &wrong);
    assert!(refused.error().is_some(), "{wrong} is refused");
    let client = if wanted.ends_with("-wrong") {
        wrong.as_str()
    } else {
        CLIENT
    };
    if wanted == "scan-bind" || wanted == "scan-bind-wrong" {
        // The linear scan's bind, for the same-binary comparison
        // (`--toggle-collect='*Scan::bind*'`).
        let scan = common::scan::Scan::new(&policy.checked);
        for _ in 0..times {
            black_box(scan.bind(black_box(&identity), black_box(client)));
        }
    }
    if let Some(name) = wanted.strip_prefix("scan-decide:") {
        // The linear scan's decision, for the same-binary comparison
        // (`--toggle-collect='*scan_decide*'`); its verdict is checked like the engine's.
        let scan = common::scan::Scan::new(&policy.checked);
        let scan_session = scan.bind(&identity, CLIENT);
        let Some(r) = requests.iter().find(|r| r.name == name) else {
            eprintln!("no request named {name}");
            return ExitCode::from(2);
        };
        let action = match r.action {
            Kind::Connect => Action::Connect,
            Kind::Publish => Action::Publish,
            Kind::Subscribe => Action::Subscribe,
            Kind::Receive => Action::Receive,
        };
        let verdict = scan.decide(&scan_session, action, &r.topic);
        assert_eq!(verdict.allowed(), r.expect == Expect::Allow, "scan: {name}");
        for _ in 0..times {
            black_box(scan_decide(&scan, &scan_session, action, &r.topic));
        }
        return ExitCode::SUCCESS;
    }
    if wanted == "bind" || wanted == "bind-wrong" || wanted == "all" {
        for _ in 0..times {
            black_box(engine.bind(black_box(&identity), black_box(client)));
        }
    }
    for r in requests
        .iter()
        .filter(|r| wanted == "all" || r.name == wanted)
    {
        let req = request(r);
        for _ in 0..times {
            black_box(engine.decide(black_box(&session), black_box(req)));
        }
    }
    ExitCode::SUCCESS
}
