//! What one `topicguard authz` check costs inside the process, to decide whether a decision
//! cache could pay: the engine's decision alone, the session lookup around it, and the
//! whole RabbitMQ topic handler (form parsing, routing-key translation, lookup, decision).
//! The HTTP exchange around it is measured with wrk by scripts/bench-authz. Before timing,
//! it prints what a session costs in memory (resident growth over 20,000 logins).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use topicguard::authz::sessions::{BrokerKind, SessionKey};
use topicguard::authz::{Authz, Check, Delivery, rabbitmq};
use topicguard::devcred::{self as dev, DevAlg, DevSigner};
use topicguard::identity::jwt::JwtKeys;
use topicguard::identity::keys::{KeySet, KeyStore};
use topicguard::identity::select::CredentialConfig;
use topicguard::{Identity, Policy, Request};

const FORM: &str = "application/x-www-form-urlencoded";
const CLIENT: &str = "xfi:P1_A1:clt:J1";
const TOPIC: &str = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1";
const BODY: &str = "username=app&vhost=%2F&resource=topic&name=amq.topic&permission=write&tags=&routing_key=c.xfi.P1_A1.lights.xfi%3AP1_A1%3Aclt%3AJ1.r1&variable_map.client_id=xfi%3AP1_A1%3Aclt%3AJ1&variable_map.username=app&variable_map.vhost=%2F";

fn bench(c: &mut Criterion) {
    let policy = Policy::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/xfinity.policy"
    ))
    .expect("xfinity policy");
    let signer = DevSigner::generate(DevAlg::ES256, "bench").expect("signer");
    let jwks = dev::jwks(&[&signer]).to_string();
    let keys = KeySet::from_jwks(&jwks, "bench").expect("jwks");
    let credentials = CredentialConfig {
        jwt: Some(JwtKeys::new(Arc::new(KeyStore::fixed(keys)))),
        ..CredentialConfig::default()
    };
    let authz = Authz::new(&policy, credentials, 100_000).expect("authz");
    let now = dev::unix_now();
    let token = signer.sign(&dev::default_claims(now, "J1")).expect("token");
    let key = SessionKey::new(BrokerKind::RabbitMq, "app", CLIENT, "/");
    authz
        .authenticate(key.clone(), &token, now)
        .expect("authenticated");
    memory_per_session(&authz, &signer, now);
    let engine = authz.loaded().engine.clone();
    let identity = Identity::asserted("mobile", [("pid", "P1"), ("aid", "A1"), ("jti", "J1")]);
    let session = engine.bind(&identity, CLIENT);

    let mut group = c.benchmark_group("authz check");
    group.bench_function("engine decide (publish)", |b| {
        b.iter(|| engine.decide(black_box(&session), Request::publish(black_box(TOPIC))))
    });
    group.bench_function("session lookup + decide (publish)", |b| {
        let check = Check::Publish {
            topic: TOPIC,
            retain: false,
        };
        b.iter(|| authz.decide(black_box(&key), black_box(check), now))
    });
    group.bench_function(
        "session lookup + decide (subscribe, no delivery check)",
        |b| {
            let check = Check::Subscribe {
                filter: "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/+/success",
                delivery: Delivery::Unchecked,
            };
            b.iter(|| authz.decide(black_box(&key), black_box(check), now))
        },
    );
    group.bench_function("rabbitmq topic handler (parse + lookup + decide)", |b| {
        b.iter(|| {
            rabbitmq::handle(
                &authz,
                rabbitmq::Endpoint::Topic,
                Some(FORM),
                black_box(BODY.as_bytes()),
                now,
            )
        })
    });
    group.finish();
}

/// Resident memory growth per stored session, printed (not timed).
fn memory_per_session(authz: &Authz, signer: &DevSigner, now: u64) {
    const SESSIONS: usize = 20_000;
    let tokens: Vec<(String, String)> = (0..SESSIONS)
        .map(|i| {
            let jti = format!("J{i}");
            let client = format!("xfi:P1_A1:clt:{jti}");
            let token = signer.sign(&dev::default_claims(now, &jti)).expect("token");
            (client, token)
        })
        .collect();
    let before = resident_bytes();
    for (client, token) in &tokens {
        let key = SessionKey::new(BrokerKind::RabbitMq, "app", client, "/");
        authz.authenticate(key, token, now).expect("login");
    }
    let grown = resident_bytes().saturating_sub(before);
    println!(
        "memory: {} sessions held, resident memory grew {:.1} MB, {} bytes per session",
        authz.sessions().len(),
        grown as f64 / 1e6,
        grown / SESSIONS as u64
    );
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

criterion_group!(benches, bench);
criterion_main!(benches);
