//! Rendering AWS IoT policy documents for one session of `policies/xfinity.policy`: the
//! mobile app (exact), the gateway and the service (narrowed, with notes).
//!
//! `cold` empties the automaton cache first, as a fresh `topicguard aws authorizer`
//! process does; `warm` keeps it, as a long-running process rendering the same policy
//! would. Run: `cargo bench --bench aws`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use topicguard::aws::{Target, lang, render};
use topicguard::{Engine, Identity, Policy};

fn sessions() -> Vec<(&'static str, Identity, &'static str)> {
    vec![
        (
            "mobile",
            Identity::asserted("mobile", [("pid", "P1"), ("aid", "A1"), ("jti", "J1")]),
            "xfi:P1_A1:clt:J1",
        ),
        (
            "gateway",
            Identity::asserted(
                "gateway",
                [
                    ("pid", "P1"),
                    ("aid", "A1"),
                    ("model", "M"),
                    ("serial", "S"),
                    ("uid_aid", "A1"),
                    ("iid", "550e8400-e29b-41d4-a716-446655440000"),
                    ("mac", "0123456789abcdef"),
                ],
            ),
            "iot:P1_A1:adp:xhf:550e8400-e29b-41d4-a716-446655440000",
        ),
        (
            "service",
            Identity::asserted("service", [("sid", "lights")]),
            "svc:lights:7",
        ),
    ]
}

fn render_documents(c: &mut Criterion) {
    let policy = Policy::load("policies/xfinity.policy").expect("shipped policy");
    let engine = Engine::builder(policy.checked.clone())
        .build()
        .expect("compiles");
    let target = Target::new("aws", "us-east-1", "123456789012").expect("target");
    let mut g = c.benchmark_group("aws-render");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    for (name, identity, client_id) in sessions() {
        let session = engine.bind(&identity, client_id);
        g.bench_function(BenchmarkId::new("cold", name), |b| {
            b.iter(|| {
                lang::clear_cache();
                render(&engine, black_box(&session), &target).is_ok()
            })
        });
        g.bench_function(BenchmarkId::new("warm", name), |b| {
            b.iter(|| render(&engine, black_box(&session), &target).is_ok())
        });
    }
    g.finish();
}

criterion_group!(benches, render_documents);
criterion_main!(benches);
