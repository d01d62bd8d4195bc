//! What carrying the publisher with each retained message costs.
//!
//! `recheck/N`: the pass a policy reload makes over N retained messages, each from its own
//! gateway (the worst case: one bind per message), every one still allowed. `lookup`: a new
//! subscription's retained lookup over 100 matching messages, when every message was
//! already checked under the current policy (`checked`, the steady state) and when every
//! one must be checked again first (`unchecked`, right after a policy swap). Before timing,
//! the pass is checked to keep every message and the lookup to find all 100.
//!
//! Run: `cargo bench --bench retained`.

use arc_swap::ArcSwap;
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use topicguard::broker::message::Message;
use topicguard::broker::principal::{Principal, Publisher};
use topicguard::broker::state::Broker;
use topicguard::broker::{AnonymousAuthenticator, BrokerConfig, SharedEngine};
use topicguard::mqtt::codec::{Properties, QoS};
use topicguard::{Engine, Identity, Policy};

fn engine() -> Engine {
    let policy = Policy::load("policies/xfinity.policy").expect("policies/xfinity.policy loads");
    Engine::new(&policy.checked).expect("compiles")
}

/// Gateway `n`: its client id and its verified identity.
fn gateway(n: usize) -> (String, Identity) {
    let (pid, aid) = (format!("P{n}"), format!("A{n}"));
    let iid = format!("550e8400-e29b-41d4-a716-{n:012}");
    let client = format!("iot:{pid}_{aid}:adp:xhf:{iid}");
    let identity = Identity::asserted(
        "gateway",
        [
            ("pid", pid.as_str()),
            ("aid", aid.as_str()),
            ("model", "XB7"),
            ("serial", "S1"),
            ("uid_aid", aid.as_str()),
            ("iid", iid.as_str()),
            ("mac", "0011223344556677"),
        ],
    );
    (client, identity)
}

/// A broker holding `count` retained presence messages, one per gateway, none of them
/// checked yet under `engines`.
fn broker(count: usize, engines: SharedEngine) -> Broker {
    let config = BrokerConfig {
        max_retained_messages: count,
        ..BrokerConfig::default()
    };
    let broker = Broker::new(engines, config, Arc::new(AnonymousAuthenticator));
    for n in 0..count {
        let (client, identity) = gateway(n);
        let topic = format!("c/iot/P{n}_A{n}/{client}/presence");
        let message = Arc::new(Message {
            topic: topic.into(),
            payload: Bytes::from_static(b"online"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
            expires_at: None,
            publisher: Some(client.as_str().into()),
        });
        let publisher = Publisher {
            principal: Principal::new(identity),
            client_id: client.into(),
            authorized_under: 0,
        };
        broker.retain(&message, publisher);
    }
    broker
}

fn recheck(c: &mut Criterion) {
    let mut group = c.benchmark_group("recheck");
    for count in [100, 10_000] {
        let engines: SharedEngine = Arc::new(ArcSwap::from_pointee(engine()));
        let broker = broker(count, engines);
        let done = broker.recheck_retained();
        assert_eq!((done.kept, done.dropped), (count, 0));
        group.bench_with_input(BenchmarkId::from_parameter(count), &broker, |b, broker| {
            b.iter(|| black_box(broker.recheck_retained()))
        });
    }
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    let (first, second) = (Arc::new(engine()), Arc::new(engine()));
    let engines: SharedEngine = Arc::new(ArcSwap::new(first.clone()));
    let broker = broker(100, engines.clone());
    broker.recheck_retained();
    let filter = "c/iot/+/+/presence";
    assert_eq!(broker.retained_for(filter).len(), 100);
    group.bench_function("checked/100", |b| {
        b.iter(|| black_box(broker.retained_for(black_box(filter))))
    });
    let mut swap = [first, second].into_iter().cycle();
    group.bench_function("unchecked/100", |b| {
        b.iter(|| {
            engines.store(swap.next().expect("cycles"));
            black_box(broker.retained_for(black_box(filter)))
        })
    });
    group.finish();
}

criterion_group!(benches, recheck, lookup);
criterion_main!(benches);
