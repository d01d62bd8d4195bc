//! One criterion run timing topicguard, the linear scan, Cedar and Rego on one workload.
//!
//! Groups `base-20-services` (the xfinity mobile policy, 4 rules, services as a set),
//! `rules-1000` and `rules-10000` (one rule per service and action); in each, every engine
//! decides the same six requests (connect, publish, subscribe; allowed and denied). Each
//! timed call includes that engine's per-request work: for topicguard and the scan the
//! decision on a bound session (connect also binds), for Cedar building the context and
//! request, for Rego building the input document. Every verdict is checked first.
//!
//! Run from `bench/compare/`: `cargo bench` (filter: `cargo bench -- rules-1000/`).
//! Sizes: `COMPARE_SIZES=base,1000,10000` (the default).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use topicguard_compare::cedar::Cedar;
use topicguard_compare::native::{LinearScan, Topicguard};
use topicguard_compare::rego::Rego;
use topicguard_compare::workload::{CLIENT, Workload};

fn workloads() -> Vec<Workload> {
    let sizes = std::env::var("COMPARE_SIZES").unwrap_or_else(|_| "base,1000,10000".into());
    sizes
        .split(',')
        .filter_map(|s| match s.trim() {
            "base" => Some(Workload::base(20)),
            n => n.parse().ok().map(Workload::rules),
        })
        .collect()
}

fn compare(c: &mut Criterion) {
    for workload in workloads() {
        let tg = Topicguard::new(&workload.topicguard).expect("topicguard policy");
        let scan = LinearScan::new(&workload.topicguard).expect("topicguard policy");
        let cedar = Cedar::new(&workload.cedar).expect("cedar policy");
        let mut rego = Rego::new(&workload.rego).expect("rego policy");
        let (tg_s, scan_s) = (tg.bind(CLIENT), scan.bind(CLIENT));
        let cedar_s = cedar.bind(CLIENT).expect("cedar principal");
        let rego_s = rego.bind(CLIENT);
        let mut g = c.benchmark_group(&workload.name);
        if workload.rules >= 1_000 {
            g.sample_size(10);
            g.warm_up_time(Duration::from_millis(500));
        }
        for case in workload.cases() {
            let name = case.name;
            assert_eq!(tg.decide(&tg_s, &case), case.allow, "topicguard {name}");
            assert_eq!(scan.decide(&scan_s, &case), case.allow, "scan {name}");
            assert_eq!(
                cedar.decide(&cedar_s, &case),
                Ok(case.allow),
                "cedar {name}"
            );
            assert_eq!(rego.decide(&rego_s, &case), Ok(case.allow), "rego {name}");
            g.bench_function(BenchmarkId::new("topicguard", name), |b| {
                b.iter(|| tg.decide(black_box(&tg_s), black_box(&case)))
            });
            g.bench_function(BenchmarkId::new("linear-scan", name), |b| {
                b.iter(|| scan.decide(black_box(&scan_s), black_box(&case)))
            });
            g.bench_function(BenchmarkId::new("cedar", name), |b| {
                b.iter(|| cedar.decide(black_box(&cedar_s), black_box(&case)))
            });
            g.bench_function(BenchmarkId::new("rego", name), |b| {
                b.iter(|| rego.decide(black_box(&rego_s), black_box(&case)))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, compare);
criterion_main!(benches);
