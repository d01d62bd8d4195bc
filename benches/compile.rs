//! Load time: parse + check + compile of generated policies of 10 … 100,000 rules.
//!
//! `parse-check` times `Policy::from_source` alone, `compile` times `Engine::builder(policy.checked.clone())` on the
//! checked policy, `total` both (what a broker pays at start-up or reload). Peak memory
//! is measured outside criterion, in a fresh process per size, by
//! `cargo run --release --example compile_memory -- 100000`.
//!
//! Run: `cargo bench --bench compile` (sizes: `TOPICGUARD_BENCH_SIZES=10,100000`).

mod common;

use common::policy_gen;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use topicguard::{Engine, Policy, Source};

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

fn load_time(c: &mut Criterion) {
    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    for n in sizes() {
        let text = policy_gen::generate(n).text;
        let source = Source::new("generated.policy", text);
        let policy = common::load("generated.policy", source.text());
        g.bench_function(BenchmarkId::new("parse-check", n), |b| {
            b.iter(|| Policy::from_source(black_box(&source)).is_ok())
        });
        g.bench_function(BenchmarkId::new("compile", n), |b| {
            b.iter(|| {
                Engine::builder(black_box(&policy).checked.clone())
                    .build()
                    .is_ok()
            })
        });
        g.bench_function(BenchmarkId::new("total", n), |b| {
            b.iter(|| {
                let policy = Policy::from_source(black_box(&source)).ok()?;
                Engine::builder(policy.checked.clone()).build().ok()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, load_time);
criterion_main!(benches);
