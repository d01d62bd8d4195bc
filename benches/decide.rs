//! Decision latency: topicguard's automaton next to a naive linear scan of the same rules.
//!
//! Groups: `xfinity` (the shipped policy) and `rules-N` for generated policies of 10,
//! 1,000, 10,000 and 100,000 rules (see `common/policy_gen.rs`). In each, every request
//! kind (connect, publish, subscribe, receive; allowed and denied) is timed for
//! `topicguard` and for `linear-scan`, plus the per-connection `bind` (and a refused one,
//! `bind-wrong-client`: the client id one byte off the template). Before timing,
//! every request's verdict is checked against its expected verdict and against the scan,
//! so a benchmark can never time a wrong answer.
//!
//! Run: `cargo bench --bench decide` (filter with e.g. `-- rules-10000`). Sizes can be
//! narrowed with `TOPICGUARD_BENCH_SIZES=10,10000`.

mod common;

use common::policy_gen::{self, BenchRequest, CLIENT, Expect, Kind};
use common::scan::Scan;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use topicguard::ast::Action;
use topicguard::{Engine, Policy, Request, Verdict};

const SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];

fn sizes() -> Vec<usize> {
    match std::env::var("TOPICGUARD_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) => SIZES.to_vec(),
    }
}

fn action(kind: Kind) -> Action {
    match kind {
        Kind::Connect => Action::Connect,
        Kind::Publish => Action::Publish,
        Kind::Subscribe => Action::Subscribe,
        Kind::Receive => Action::Receive,
    }
}

fn request(r: &BenchRequest) -> Request<'_> {
    match r.action {
        Kind::Connect => Request::Connect,
        Kind::Publish => Request::publish(&r.topic),
        Kind::Subscribe => Request::subscribe(&r.topic),
        Kind::Receive => Request::receive(&r.topic),
    }
}

/// Times every request on one policy, for topicguard and the scan.
fn bench_policy(c: &mut Criterion, group: &str, policy: &Policy, requests: &[BenchRequest]) {
    let engine = Engine::builder(policy.checked.clone())
        .build()
        .expect("benchmark policy compiles");
    let scan = Scan::new(&policy.checked);
    let identity = common::mobile();
    let session = engine.bind(&identity, CLIENT);
    let scan_session = scan.bind(&identity, CLIENT);
    let mut g = c.benchmark_group(group);
    if policy.checked.rules.len() >= 10_000 {
        g.sample_size(20);
    }
    for r in requests {
        let req = request(r);
        let act = action(r.action);
        let decision = engine.decide(&session, req);
        let scanned = scan.decide(&scan_session, act, &r.topic);
        let want = r.expect == Expect::Allow;
        assert_eq!(
            decision.verdict == Verdict::Allowed,
            want,
            "{group} {}",
            r.name
        );
        assert_eq!(
            scanned.allowed(),
            want,
            "{group} {}: scan disagrees",
            r.name
        );
        g.bench_function(BenchmarkId::new("topicguard", r.name), |b| {
            b.iter(|| engine.decide(black_box(&session), black_box(req)))
        });
        g.bench_function(BenchmarkId::new("linear-scan", r.name), |b| {
            b.iter(|| scan.decide(black_box(&scan_session), act, black_box(&r.topic)))
        });
    }
    g.bench_function(BenchmarkId::new("topicguard", "bind"), |b| {
        b.iter(|| engine.bind(black_box(&identity), black_box(CLIENT)))
    });
    g.bench_function(BenchmarkId::new("linear-scan", "bind"), |b| {
        b.iter(|| scan.bind(black_box(&identity), black_box(CLIENT)))
    });
    // A refused connect: the client id differs from the template's in its last byte.
    let wrong = format!("{}X", &CLIENT[..CLIENT.len() - 1]);
    assert!(engine.bind(&identity, &wrong).error().is_some());
    g.bench_function(BenchmarkId::new("topicguard", "bind-wrong-client"), |b| {
        b.iter(|| engine.bind(black_box(&identity), black_box(&wrong)))
    });
    g.bench_function(BenchmarkId::new("linear-scan", "bind-wrong-client"), |b| {
        b.iter(|| scan.bind(black_box(&identity), black_box(&wrong)))
    });
    g.finish();
}

fn xfinity(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/xfinity.policy");
    let text = std::fs::read_to_string(path).expect("policies/xfinity.policy is readable");
    let policy = common::load("xfinity.policy", &text);
    bench_policy(c, "xfinity", &policy, &policy_gen::xfinity_requests());
}

fn generated(c: &mut Criterion) {
    for n in sizes() {
        let generated = policy_gen::generate(n);
        let policy = common::load("generated.policy", &generated.text);
        assert_eq!(policy.checked.rules.len(), generated.rules);
        bench_policy(c, &format!("rules-{n}"), &policy, &generated.requests());
    }
}

criterion_group!(benches, xfinity, generated);
criterion_main!(benches);
