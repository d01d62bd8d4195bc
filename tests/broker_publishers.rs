//! Retained messages and wills carry their publisher: after a policy reload takes away a
//! publisher's right to publish and retain a topic, its retained message is no longer
//! delivered to new subscribers (who may still receive the topic), whether it was
//! published with the retain flag or left as a retained will; a retained message of a
//! publisher that keeps the right stays. A will still waiting for its delay is discarded
//! when the policy no longer lets its publisher publish it. Real certificates and JWTs,
//! real mosquitto clients, the real broker and reloader.

use crate::broker_harness::{TestClient, connect_packet, mosquitto, test_config, test_policy};
use crate::broker_tls::{GATEWAY_ID, MOBILE_ID, Pki, SecureBroker, mosquitto_run};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use topicguard::broker::reload::PolicyReloader;
use topicguard::mqtt::codec::{Packet, ProtocolVersion, QoS, Will};
use topicguard::{Engine, Policy};

const GATEWAY_RETAINS: &str =
    r#"allow gateway publish, retain "c/iot/{pid}_{aid}/{client}/presence""#;
const GATEWAY_PUBLISHES: &str = r#"allow gateway publish "c/iot/{pid}_{aid}/{client}/presence""#;
const MOBILE_REQUESTS: &str = r#"@id("mobile-requests") allow mobile publish "c/xfi/{pid}_{aid}/{sid in services}/{client}/{+rid}""#;
/// Lets the anonymous `dev` identity watch the mobile requests (where the wills go).
const DEV_WATCHES: &str = "allow dev subscribe, receive \"c/xfi/#\"\n";

/// The broker harness policy, and `dev` may watch the mobile requests.
fn base_policy_text() -> String {
    format!("{}\n{DEV_WATCHES}", test_policy().source().text())
}

/// The base policy with one line replaced.
fn policy_text(replace: &str, with: &str) -> String {
    let text = base_policy_text();
    assert!(text.contains(replace), "the test policy has `{replace}`");
    text.replace(replace, with)
}

/// A broker serving the harness policy from a file, and a reloader for that file.
async fn start(pki: &Pki) -> (SecureBroker, PolicyReloader, PathBuf) {
    let path = pki.dir.join("broker.policy");
    std::fs::write(&path, base_policy_text()).expect("write the policy");
    let policy = Policy::load(&path).expect("the policy loads");
    let broker = SecureBroker::with(pki, policy, test_config()).await;
    let reloader = PolicyReloader::new(
        &path,
        broker.engines.clone(),
        broker.broker.clone(),
        Some(broker.authenticator.clone()),
    );
    (broker, reloader, path)
}

fn presence() -> String {
    format!("c/iot/P1_A1/{GATEWAY_ID}/presence")
}

/// What a new mobile subscriber to its gateways' presence gets within `wait` seconds
/// (empty: nothing; `mosquitto_sub -W` then says "Timed out").
async fn mobile_sees_presence(pki: &Pki, addr: SocketAddr, wait: &str) -> String {
    let token = pki.token(3600);
    let args = [
        "-i",
        MOBILE_ID,
        "-u",
        "mobile",
        "-P",
        &token,
        "-t",
        "c/iot/P1_A1/+/presence",
        "-C",
        "1",
        "-W",
        wait,
    ];
    let (_, out) = mosquitto_run("mosquitto_sub", addr, &args).await;
    match out.trim() {
        "Timed out" => String::new(),
        received => received.to_string(),
    }
}

fn retained_revoked(broker: &SecureBroker) -> bool {
    let metrics = broker.broker.config.observer.metrics().render();
    metrics.contains("topicguard_messages_dropped_total{reason=\"retained_revoked\"} 1\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_takes_the_retain_right_away_drops_the_retained_message() {
    let pki = Pki::generate("retained-revoked");
    let (broker, mut reloader, path) = start(&pki).await;
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("gateway.pem"),
        pki.path("gateway-key.pem"),
    );
    let topic = presence();
    let args = [
        "--cafile", &ca, "--cert", &cert, "--key", &key, "-i", GATEWAY_ID, "-t", &topic, "-m",
        "online", "-r", "-q", "1",
    ];
    let (code, out) = mosquitto_run("mosquitto_pub", broker.tls, &args).await;
    assert_eq!(code, 0, "the gateway retains its presence: {out}");
    let mut dev = TestClient::connect(broker.tcp, ProtocolVersion::V5, "dev-pub", None).await;
    assert_eq!(
        dev.publish("dev/keep", b"kept", QoS::AtLeastOnce, true)
            .await
            .0,
        0
    );
    assert_eq!(mobile_sees_presence(&pki, broker.tcp, "5").await, "online");

    std::fs::write(&path, policy_text(GATEWAY_RETAINS, GATEWAY_PUBLISHES)).expect("write");
    let done = reloader.reload().expect("the new policy loads");
    assert_eq!(done.retained_dropped, 1, "only the gateway's message");
    assert_eq!(
        mobile_sees_presence(&pki, broker.tcp, "2").await,
        "",
        "the mobile may still receive presence, but the publisher may no longer retain it"
    );
    assert!(retained_revoked(&broker));
    let mut watcher = TestClient::connect(broker.tcp, ProtocolVersion::V5, "dev-sub", None).await;
    assert_eq!(watcher.subscribe("dev/#", QoS::AtLeastOnce).await.0, 1);
    let kept = watcher.expect_publish().await;
    assert_eq!(
        (kept.topic.as_str(), &kept.payload[..], kept.retain),
        ("dev/keep", &b"kept"[..], true),
        "a publisher that keeps the right keeps its retained message"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_will_is_dropped_when_its_publisher_loses_the_right() {
    let pki = Pki::generate("retained-will");
    let (broker, mut reloader, path) = start(&pki).await;
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("gateway.pem"),
        pki.path("gateway-key.pem"),
    );
    let topic = presence();
    let responses = format!("c/iot/P1_A1/{GATEWAY_ID}/lights/+/success");
    let mut gateway = tokio::process::Command::new("stdbuf")
        .arg("-oL")
        .arg(mosquitto("mosquitto_sub"))
        .args(["-h", "127.0.0.1", "-p", &broker.tls.port().to_string()])
        .args(["--cafile", &ca, "--cert", &cert, "--key", &key, "-d"])
        .args(["-i", GATEWAY_ID, "-t", &responses, "-W", "30"])
        .args(["--will-topic", &topic, "--will-payload", "offline"])
        .args(["--will-retain", "--will-qos", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn stdbuf mosquitto_sub (coreutils)");
    crate::broker_harness::wait_for_line(&mut gateway, "SUBACK").await;
    gateway.kill().await.expect("kill the gateway");
    let mut seen = String::new();
    for _ in 0..20 {
        seen = mobile_sees_presence(&pki, broker.tcp, "1").await;
        if seen == "offline" {
            break;
        }
    }
    assert_eq!(seen, "offline", "the will was published and retained");

    std::fs::write(&path, policy_text(GATEWAY_RETAINS, GATEWAY_PUBLISHES)).expect("write");
    assert_eq!(reloader.reload().expect("reload").retained_dropped, 1);
    assert_eq!(mobile_sees_presence(&pki, broker.tcp, "2").await, "");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_message_is_checked_again_before_delivery_under_a_newer_policy() {
    let pki = Pki::generate("retained-swap");
    let (broker, _reloader, _path) = start(&pki).await;
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("gateway.pem"),
        pki.path("gateway-key.pem"),
    );
    let topic = presence();
    let args = [
        "--cafile", &ca, "--cert", &cert, "--key", &key, "-i", GATEWAY_ID, "-t", &topic, "-m",
        "online", "-r", "-q", "1",
    ];
    assert_eq!(mosquitto_run("mosquitto_pub", broker.tls, &args).await.0, 0);
    // Swapped without the reloader's pass over the store (as when a retained publish
    // races a reload): the lookup itself authorizes the publisher again.
    let text = policy_text(GATEWAY_RETAINS, GATEWAY_PUBLISHES);
    let source = topicguard::Source::new("revoked.policy", text);
    let revoked = Policy::from_source(&source).expect("the policy checks");
    broker
        .engines
        .store(Arc::new(Engine::new(&revoked.checked).expect("compile")));
    assert_eq!(mobile_sees_presence(&pki, broker.tcp, "2").await, "");
    assert!(retained_revoked(&broker), "and dropped from the store");
    broker.stop().await;
}

/// A mobile connection (JWT) whose will — on its own request topic — waits `delay` s.
async fn mobile_with_will(pki: &Pki, addr: SocketAddr, delay: u32) -> TestClient {
    let mut connect = connect_packet(ProtocolVersion::V5, MOBILE_ID, Some("mobile"));
    connect.password = Some(pki.token(3600).into_bytes().into());
    connect.properties.session_expiry_interval = Some(60);
    let mut will = Will {
        topic: format!("c/xfi/P1_A1/lights/{MOBILE_ID}/r1"),
        payload: "gone".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    will.properties.will_delay_interval = Some(delay);
    connect.will = Some(will);
    let (client, ack) = TestClient::open(addr, connect).await;
    assert_eq!(ack.code, 0, "{ack:?}");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_will_is_discarded_when_its_publisher_loses_the_right() {
    let pki = Pki::generate("will-revoked");
    let (broker, mut reloader, path) = start(&pki).await;
    let mut watcher = TestClient::connect(broker.tcp, ProtocolVersion::V5, "dev-w", None).await;
    assert_eq!(watcher.subscribe("c/xfi/#", QoS::AtLeastOnce).await.0, 1);

    // Without a reload the will arrives after its delay.
    drop(mobile_with_will(&pki, broker.tcp, 1).await);
    let will = watcher.expect_publish().await;
    assert_eq!(&will.payload[..], b"gone");

    // A reload during the delay takes the publish right away: the will is discarded.
    drop(mobile_with_will(&pki, broker.tcp, 2).await);
    std::fs::write(&path, policy_text(MOBILE_REQUESTS, "")).expect("write");
    reloader.reload().expect("the new policy loads");
    let late = watcher.recv_within(Duration::from_secs(4)).await;
    assert!(
        !matches!(late, Some(Packet::Publish(_))),
        "a will its publisher may no longer publish was sent: {late:?}"
    );
    broker.stop().await;
}
