//! The runtimes against the real broker: the client's connection states and
//! bounded backoff, reconnect after a takeover, and the platform flow — a service,
//! a gateway bridging devices into their shadows, a mobile app setting desired state and
//! making a request, a stale update refused with 409, and the gateway's last will when it
//! is killed. Identities come from the harness's test authenticator (TCP, no TLS/JWT).

use crate::broker_harness::{STEP, TestBroker, TestClient};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use topicguard::mqtt::codec::{ProtocolVersion, QoS};
use topicguard::runtime::devices::Kind;
use topicguard::runtime::gateway::{self, GatewayConfig};
use topicguard::runtime::mobile::{self, MobileConfig, Operation};
use topicguard::runtime::service::{self, ServiceConfig};
use topicguard::runtime::{Backoff, Client, ClientOptions, ConnectionState, Event, Log};

const IID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

fn fast() -> Backoff {
    Backoff {
        min: Duration::from_millis(20),
        max: Duration::from_millis(50),
        max_attempts: Some(3),
    }
}

fn recorder() -> (Log, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    (Arc::new(move |line| sink.lock().unwrap().push(line)), lines)
}

/// Waits (bounded) until a logged line contains `needle`.
async fn logged(lines: &Arc<Mutex<Vec<String>>>, needle: &str) {
    let found = tokio::time::timeout(STEP, async {
        while !lines.lock().unwrap().iter().any(|l| l.contains(needle)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    if found.await.is_err() {
        panic!(
            "no log line contains {needle:?}: {:#?}",
            lines.lock().unwrap()
        );
    }
}

async fn next_state(events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> Event {
    loop {
        let event = tokio::time::timeout(STEP, events.recv())
            .await
            .expect("an event in time")
            .expect("events open");
        if matches!(event, Event::State(_) | Event::GaveUp) {
            return event;
        }
    }
}

#[tokio::test]
async fn states_and_bounded_backoff_when_the_broker_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut options = ClientOptions::new(addr.to_string(), "dev-backoff");
    options.backoff = fast();
    let (_client, mut events) = Client::start(options);
    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(match next_state(&mut events).await {
            Event::State(ConnectionState::ConnectionError(_)) => "ConnectionError".to_string(),
            Event::State(state) => state.to_string(),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(
        seen,
        [
            "Connecting",
            "ConnectionError",
            "Reconnecting",
            "ConnectionError",
            "Reconnecting",
            "ConnectionError",
            "GaveUp"
        ]
    );
}

#[tokio::test]
async fn a_lost_connection_is_reported_and_reconnected() {
    let broker = TestBroker::start().await;
    let mut options = ClientOptions::new(broker.addr.to_string(), "dev-runtime");
    options.backoff = fast();
    let (client, mut events) = Client::start(options);
    client.subscribe("dev/echo", QoS::AtLeastOnce);
    assert_eq!(
        next_state(&mut events).await,
        Event::State(ConnectionState::Connecting)
    );
    assert_eq!(
        next_state(&mut events).await,
        Event::State(ConnectionState::Connected)
    );
    let thief = TestClient::connect(broker.addr, ProtocolVersion::V5, "dev-runtime", None).await;
    assert_eq!(
        next_state(&mut events).await,
        Event::State(ConnectionState::ConnectionLost)
    );
    assert_eq!(
        next_state(&mut events).await,
        Event::State(ConnectionState::Reconnecting)
    );
    assert_eq!(
        next_state(&mut events).await,
        Event::State(ConnectionState::Connected)
    );
    drop(thief);
    loop {
        match tokio::time::timeout(STEP, events.recv())
            .await
            .expect("a SUBACK")
            .expect("open")
        {
            Event::Subscribed { filter, reason } => {
                assert_eq!(
                    (filter.as_str(), reason.0),
                    ("dev/echo", 1),
                    "resubscribed after the reconnect"
                );
                break;
            }
            other => eprintln!("event {other:?}"),
        }
    }
    let mut other = TestClient::connect(broker.addr, ProtocolVersion::V5, "dev-other", None).await;
    other
        .publish("dev/echo", b"after reconnect", QoS::AtLeastOnce, false)
        .await;
    let message = loop {
        match tokio::time::timeout(STEP, events.recv())
            .await
            .expect("a message")
            .expect("open")
        {
            Event::Message { topic, payload, .. } => break (topic, payload),
            other => eprintln!("event {other:?}"),
        }
    };
    assert_eq!(message.0, "dev/echo");
    assert_eq!(&message.1[..], b"after reconnect");
    client.disconnect().await;
    broker.stop().await;
}

fn gateway_config(broker: &TestBroker) -> GatewayConfig {
    GatewayConfig {
        broker: broker.addr.to_string(),
        pid: "P1".into(),
        aid: "A1".into(),
        iid: IID.into(),
        username: Some(format!("gateway:P1:A1:{IID}")),
        password: None,
        tls: None,
        devices: Kind::all().to_vec(),
        service: "lights".into(),
        backoff: fast(),
    }
}

fn mobile_config(broker: &TestBroker, aid: &str) -> MobileConfig {
    MobileConfig {
        broker: broker.addr.to_string(),
        pid: "P1".into(),
        aid: aid.into(),
        jti: "J1".into(),
        username: Some(format!("mobile:P1:{aid}:J1")),
        password: None,
        tls: None,
        backoff: fast(),
        timeout: STEP,
    }
}

async fn json_on(client: &mut TestClient, topic: &str) -> Value {
    loop {
        let publish = client.expect_publish().await;
        if publish.topic == topic {
            return serde_json::from_slice(&publish.payload).expect("JSON");
        }
    }
}

#[tokio::test]
async fn the_flow_service_gateway_mobile_409_and_last_will() {
    let broker = TestBroker::start().await;
    let (log, lines) = recorder();
    let mut watcher = TestClient::connect(
        broker.addr,
        ProtocolVersion::V5,
        "xfi:P1_A1:clt:W1",
        Some("mobile:P1:A1:W1"),
    )
    .await;
    watcher
        .subscribe("c/iot/P1_A1/+/presence", QoS::AtLeastOnce)
        .await;
    watcher
        .subscribe(
            "$aws/things/P1_A1_light/shadow/update/documents",
            QoS::AtLeastOnce,
        )
        .await;
    let service = service::start(
        ServiceConfig {
            broker: broker.addr.to_string(),
            sid: "lights".into(),
            instance: "1".into(),
            username: Some("service:lights".into()),
            password: None,
            tls: None,
            backoff: fast(),
        },
        log.clone(),
    );
    logged(&lines, "service svc:lights:1: Connected").await;
    assert!(service.subscribed(STEP).await, "the service's SUBACK");
    let gw = gateway::start(gateway_config(&broker), log.clone());
    let presence = format!("c/iot/P1_A1/iot:P1_A1:adp:xhf:{IID}/presence");
    assert_eq!(
        json_on(&mut watcher, &presence).await,
        json!({"connected": true})
    );
    logged(&lines, "/inventory/success").await;

    let set = Operation::SetDesired {
        device: "light".into(),
        desired: r#"{"on":true}"#.into(),
        version: None,
    };
    let answer = mobile::run(mobile_config(&broker, "A1"), set, log.clone())
        .await
        .expect("desired state accepted");
    assert!(answer.topic.ends_with("/update/accepted"), "{answer:?}");
    logged(&lines, "gateway: P1_A1_light applied {\"on\":true}").await;
    let reported = loop {
        let docs = json_on(
            &mut watcher,
            "$aws/things/P1_A1_light/shadow/update/documents",
        )
        .await;
        if docs["current"]["state"]["reported"]["on"] == json!(true) {
            break docs;
        }
    };
    assert_eq!(reported["current"]["state"]["desired"]["on"], json!(true));

    let stale = Operation::SetDesired {
        device: "light".into(),
        desired: r#"{"on":false}"#.into(),
        version: Some(1),
    };
    let answer = mobile::run(mobile_config(&broker, "A1"), stale, log.clone())
        .await
        .expect("an answer");
    assert!(answer.topic.ends_with("/update/rejected"), "{answer:?}");
    let rejected: Value = serde_json::from_str(&answer.payload).unwrap();
    assert_eq!(
        (rejected["code"].clone(), rejected["message"].clone()),
        (json!(409), json!("Version conflict"))
    );

    let request = Operation::Request {
        sid: "lights".into(),
        rid: "r1".into(),
        payload: r#"{"scene":"evening"}"#.into(),
    };
    let answer = mobile::run(mobile_config(&broker, "A1"), request, log.clone())
        .await
        .expect("service answers");
    assert_eq!(
        answer.topic,
        "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/r1/success"
    );

    let other = Operation::GetShadow {
        device: "light".into(),
    };
    let answer = mobile::run(mobile_config(&broker, "A2"), other, log.clone())
        .await
        .expect("an answer for its own account");
    assert!(
        answer.topic.starts_with("$aws/things/P1_A2_light/"),
        "account A2 only ever reaches its own things"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&answer.payload).unwrap()["code"],
        404
    );

    gw.kill();
    assert_eq!(
        json_on(&mut watcher, &presence).await,
        json!({"connected": false}),
        "the last will"
    );
    service.stop().await;
    broker.stop().await;
}

// ---- TLS: the runtime client verifies the broker and presents a client certificate ----

mod tls {
    use super::*;
    use rcgen::{ExtendedKeyUsagePurpose, SanType};
    use std::path::PathBuf;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::crypto::ring;
    use tokio_rustls::rustls::server::WebPkiClientVerifier;
    use tokio_rustls::rustls::{RootCertStore, ServerConfig};
    use topicguard::devcred::{DevCa, leaf_params, unix_now};
    use topicguard::runtime::tls::TlsClient;

    struct Pki {
        dir: PathBuf,
        acceptor: TlsAcceptor,
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
    fn make_pki(name: &str) -> Pki {
        let dir =
            std::env::temp_dir().join(format!("tg-runtime-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let now = unix_now();
        let ca = DevCa::new("topicguard test CA", now).unwrap();
        let mut server = leaf_params(2, now);
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
        let (server_cert, server_key) = ca.issue(&server).unwrap();
        let (client_cert, client_key) = ca.issue(&leaf_params(3, now)).unwrap();
        for (file, pem) in [
            ("ca.pem", ca.cert.pem()),
            ("client.pem", client_cert.pem()),
            ("client.key", client_key.serialize_pem()),
        ] {
            std::fs::write(dir.join(file), pem).unwrap();
        }
        let provider = Arc::new(ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert.der().clone()).unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert.der().clone()], key)
            .unwrap();
        Pki {
            dir,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }

    /// Terminates TLS on an ephemeral port and forwards each connection to the broker.
    async fn tls_front(
        acceptor: TlsAcceptor,
        broker: std::net::SocketAddr,
    ) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let (Ok(mut tls), Ok(mut upstream)) =
                        (acceptor.accept(tcp).await, TcpStream::connect(broker).await)
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn the_client_connects_over_tls_with_its_certificate_and_refuses_an_unknown_broker() {
        let broker = TestBroker::start().await;
        let pki = make_pki("ok");
        let front = tls_front(pki.acceptor.clone(), broker.addr).await;
        let tls = TlsClient::new(
            &pki.dir.join("ca.pem"),
            Some((&pki.dir.join("client.pem"), &pki.dir.join("client.key"))),
        )
        .unwrap();
        let mut options = ClientOptions::new(front.to_string(), "dev-tls");
        options.tls = Some(tls);
        options.backoff = fast();
        let (client, mut events) = Client::start(options);
        client.subscribe("dev/tls", QoS::AtLeastOnce);
        assert_eq!(
            next_state(&mut events).await,
            Event::State(ConnectionState::Connecting)
        );
        assert_eq!(
            next_state(&mut events).await,
            Event::State(ConnectionState::Connected)
        );
        loop {
            if let Event::Subscribed { reason, .. } = tokio::time::timeout(STEP, events.recv())
                .await
                .unwrap()
                .unwrap()
            {
                assert_eq!(reason.0, 1);
                break;
            }
        }
        let mut other =
            TestClient::connect(broker.addr, ProtocolVersion::V5, "dev-plain", None).await;
        other
            .publish("dev/tls", b"through TLS", QoS::AtLeastOnce, false)
            .await;
        loop {
            if let Event::Message { topic, payload, .. } = tokio::time::timeout(STEP, events.recv())
                .await
                .unwrap()
                .unwrap()
            {
                assert_eq!(
                    (topic.as_str(), &payload[..]),
                    ("dev/tls", &b"through TLS"[..])
                );
                break;
            }
        }
        client.disconnect().await;

        let stranger = make_pki("stranger");
        let wrong = TlsClient::new(&stranger.dir.join("ca.pem"), None).unwrap();
        let mut options = ClientOptions::new(front.to_string(), "dev-tls-2");
        options.tls = Some(wrong);
        options.backoff = Backoff {
            max_attempts: Some(1),
            ..fast()
        };
        let (_client, mut events) = Client::start(options);
        assert_eq!(
            next_state(&mut events).await,
            Event::State(ConnectionState::Connecting)
        );
        match next_state(&mut events).await {
            Event::State(ConnectionState::ConnectionError(e)) => {
                assert!(e.contains("TLS handshake"), "{e}")
            }
            other => panic!("expected a TLS ConnectionError, got {other:?}"),
        }
        for dir in [&pki.dir, &stranger.dir] {
            let _ = std::fs::remove_dir_all(dir);
        }
        broker.stop().await;
    }
}

/// `topicguard demo`'s scenario end to end: the real `topicguard serve` (TLS with client
/// certificates, JWT), generated development credentials, the runtimes; every step's
/// outcome and the policy decision printed for it. Multi-threaded like the command, so the
/// killed gateway's task can still be running when it is killed (step 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_every_step_with_its_decision() {
    use topicguard::runtime::demo::{self, DemoSetup};
    let dir = std::env::temp_dir().join(format!("tg-demo-test-{}", std::process::id()));
    let setup = DemoSetup {
        exe: env!("CARGO_BIN_EXE_topicguard").into(),
        policy: concat!(env!("CARGO_MANIFEST_DIR"), "/policies/xfinity.policy").into(),
        dir: dir.clone(),
    };
    let (log, lines) = recorder();
    let outcome = demo::run(&setup, log).await;
    let text = lines.lock().unwrap().join("\n");
    assert!(outcome.is_ok(), "{outcome:?}\n{text}");
    for expected in [
        "policy: mobile xfi:P1_A1:clt:J1 connects (JWT) -> ALLOWED by ",
        "service svc:lights:1 subscribed to the requests addressed to it",
        "mobile received c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/r1/success",
        "policy: service svc:lights:1 publishes c/iot/P1_A1/iot:P1_A1:adp:xhf:",
        "/lights/status -> ALLOWED by ",
        "service received the gateway's success: ",
        "\"request\":\"status\"",
        "gateway: P1_A1_light applied {\"on\":true}",
        "reported {\"brightness\":100,\"on\":true}",
        "reported {\"mode\":\"heat\",\"setpoint\":23}",
        "code 409 \"Version conflict\"",
        "publishes $aws/things/P2_B7_light/shadow/update -> DENIED (no rule allows it)",
        "broker answered PUBACK 0x87 (not authorized)",
        "broker answered SUBACK 0x87 (not authorized)",
        "/presence: {\"connected\":false}",
        "mobile received (missed while offline) c/iot/P1_A1/",
        "mobile received (missed while offline) $aws/things/P1_A1_light/shadow/update/documents",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `topicguard mobile` command against the test broker: states, the answer, exit codes.
#[tokio::test]
async fn the_mobile_command_prints_states_and_the_answer() {
    let broker = TestBroker::start().await;
    let run = |args: Vec<String>| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
            .args(args)
            .kill_on_drop(true)
            .output()
    };
    let base = |aid: &str| -> Vec<String> {
        let user = format!("mobile:P1:{aid}:J1");
        let broker = broker.addr.to_string();
        [
            "mobile",
            "--broker",
            &broker,
            "--username",
            &user,
            "--pid",
            "P1",
            "--aid",
            aid,
            "--jti",
            "J1",
            "--timeout",
            "5",
        ]
        .map(String::from)
        .to_vec()
    };
    let mut set = base("A1");
    set.extend(["set", "light", r#"{"on":true}"#].map(String::from));
    let out = tokio::time::timeout(Duration::from_secs(20), run(set))
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("mobile: Connecting\nmobile: Connected\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("$aws/things/P1_A1_light/shadow/update/accepted {"),
        "{stdout}"
    );
    let mut get = base("A2");
    get.extend(["get", "light"].map(String::from));
    let out = tokio::time::timeout(Duration::from_secs(20), run(get))
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "account A2 has no light shadow: {stdout}"
    );
    assert!(
        stdout.contains("$aws/things/P1_A2_light/shadow/get/rejected {\"code\":404"),
        "{stdout}"
    );
    let mut bad = base("A1");
    bad.extend(["--cert", "x.pem", "--key", "x.key", "get", "light"].map(String::from));
    let out = tokio::time::timeout(Duration::from_secs(20), run(bad))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cert/--key need --ca"));
    broker.stop().await;
}

/// A gateway reads its pid, aid and iid from its certificate the way the policy does.
#[test]
fn a_gateway_reads_its_principal_from_its_certificate() {
    let dir = std::env::temp_dir().join(format!("tg-gateway-cert-{}", std::process::id()));
    let policy = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/xfinity.policy"
    ));
    let checked = topicguard::Policy::load(policy).unwrap().checked;
    topicguard::runtime::demo::prepare(&dir, &checked).unwrap();
    let attrs = gateway::attributes_from_certificate(
        policy,
        "gateway",
        &dir.join("gateway-B7.pem"),
        &dir.join("ca-devices.pem"),
    )
    .unwrap();
    let gw = &topicguard::runtime::demo::GATEWAYS[1];
    assert_eq!(
        (
            attrs["pid"].as_str(),
            attrs["aid"].as_str(),
            attrs["iid"].as_str()
        ),
        (gw.pid, gw.aid, gw.iid)
    );
    let wrong = gateway::attributes_from_certificate(
        policy,
        "mobile",
        &dir.join("gateway-B7.pem"),
        &dir.join("ca-devices.pem"),
    );
    assert!(
        matches!(
            wrong,
            Err(gateway::CertAttributesError::Config(
                topicguard::identity::x509::CertConfigError::NotCertificate(ref name)
            )) if name == "mobile"
        ),
        "mobile is a JWT identity: {wrong:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A connected client with a last will on `dev/will/<n>`, subscribed to `dev/flood`.
async fn client_with_will(
    broker: &TestBroker,
    n: usize,
) -> (Client, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let mut options = ClientOptions::new(broker.addr.to_string(), format!("dev-will-{n}"));
    options.will = Some(topicguard::mqtt::codec::Will {
        topic: format!("dev/will/{n}"),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    options.backoff = fast();
    let (client, mut events) = Client::start(options);
    client.subscribe("dev/flood", QoS::AtMostOnce);
    loop {
        let event = tokio::time::timeout(STEP, events.recv()).await;
        match event.expect("the SUBACK in time").expect("events open") {
            Event::Subscribed { .. } => return (client, events),
            Event::GaveUp => panic!("the client could not connect"),
            _ => {}
        }
    }
}

/// Whether the watcher receives the will of client `n` within `STEP`.
async fn will_arrives(watcher: &mut TestClient, n: usize) -> bool {
    use topicguard::mqtt::codec::{Ack, Packet};
    let topic = format!("dev/will/{n}");
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match watcher.recv_within(left).await {
            None => return false,
            Some(Packet::Publish(publish)) => {
                if publish.qos == QoS::AtLeastOnce {
                    watcher
                        .send(Packet::PubAck(Ack::new(publish.packet_id)))
                        .await;
                }
                if publish.topic == topic {
                    return true;
                }
            }
            Some(_) => {}
        }
    }
}

/// `Client::kill` while the client's task is busy on another worker thread (a flood of
/// deliveries keeps it running): the broker must still see a loss, never a DISCONNECT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_busy_client_always_leaves_its_last_will() {
    let broker = TestBroker::start().await;
    let mut watcher =
        TestClient::connect(broker.addr, ProtocolVersion::V5, "dev-watch", None).await;
    watcher.subscribe("dev/will/+", QoS::AtLeastOnce).await;
    let mut flooder =
        TestClient::connect(broker.addr, ProtocolVersion::V5, "dev-flood", None).await;
    let flood = tokio::spawn(async move {
        loop {
            flooder
                .publish("dev/flood", &[7u8; 512], QoS::AtMostOnce, false)
                .await;
            tokio::task::yield_now().await;
        }
    });
    let mut lost = Vec::new();
    for n in 0..20 {
        let (client, _events) = client_with_will(&broker, n).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        client.kill();
        if !will_arrives(&mut watcher, n).await {
            lost.push(n);
        }
    }
    flood.abort();
    assert!(
        lost.is_empty(),
        "no last will after kill in rounds {lost:?}"
    );
    broker.stop().await;
}

/// Dropping every handle of a connected client (what `kill` does while the task may still
/// run) ends the connection without DISCONNECT: the broker publishes the will.
#[tokio::test]
async fn a_client_whose_handles_are_all_dropped_leaves_its_last_will() {
    let broker = TestBroker::start().await;
    let mut watcher =
        TestClient::connect(broker.addr, ProtocolVersion::V5, "dev-watch", None).await;
    watcher.subscribe("dev/will/+", QoS::AtLeastOnce).await;
    let (client, mut events) = client_with_will(&broker, 1).await;
    drop(client);
    assert!(
        will_arrives(&mut watcher, 1).await,
        "the will was discarded"
    );
    let ended = tokio::time::timeout(STEP, async { while events.recv().await.is_some() {} });
    assert!(ended.await.is_ok(), "the client's task did not end");
    broker.stop().await;
}

/// A service whose CONNECT is refused is never reported subscribed.
#[tokio::test]
async fn a_refused_service_is_never_reported_subscribed() {
    let broker = TestBroker::start().await;
    let (log, lines) = recorder();
    let config = ServiceConfig {
        broker: broker.addr.to_string(),
        sid: "lights".into(),
        instance: "1".into(),
        username: Some("mobile:P1:A1:J1".into()),
        password: None,
        tls: None,
        backoff: fast(),
    };
    let service = service::start(config, log);
    logged(&lines, "refused CONNECT").await;
    assert!(!service.subscribed(Duration::from_millis(200)).await);
    service.stop().await;
    broker.stop().await;
}

/// A service asks the gateway: the gateway answers `success` for a request it
/// knows and `failure` for one it does not, each with the request id; a mobile of another
/// account cannot send a request to that gateway (PUBACK 0x87) and the gateway never sees it.
#[tokio::test]
async fn a_service_asks_the_gateway_and_another_accounts_mobile_cannot() {
    use topicguard::mqtt::codec::ReasonCode;
    let broker = TestBroker::start().await;
    let (log, lines) = recorder();
    let config = ServiceConfig {
        broker: broker.addr.to_string(),
        sid: "lights".into(),
        instance: "1".into(),
        username: Some("service:lights".into()),
        password: None,
        tls: None,
        backoff: fast(),
    };
    let service = service::start(config, log.clone());
    assert!(service.subscribed(STEP).await, "the service's SUBACKs");
    let gw = gateway::start(gateway_config(&broker), log.clone());
    // The inventory's answer arrives after the gateway's subscriptions were granted.
    logged(&lines, "/inventory/success").await;
    let gateway_id = format!("iot:P1_A1:adp:xhf:{IID}");
    let status = service
        .ask("P1_A1", &gateway_id, "status", &json!({}), STEP)
        .await
        .expect("the gateway's answer");
    assert_eq!(status.outcome, "success");
    assert_eq!(status.body["request"], json!("status"));
    assert_eq!(status.body["devices"], json!(3));
    let unknown = service
        .ask("P1_A1", &gateway_id, "reboot", &json!({}), STEP)
        .await
        .expect("the gateway's answer");
    assert_eq!(unknown.outcome, "failure");
    assert_eq!(unknown.body["request"], json!("reboot"));

    let mut intruder = TestClient::connect(
        broker.addr,
        ProtocolVersion::V5,
        "xfi:P1_A2:clt:J1",
        Some("mobile:P1:A2:J1"),
    )
    .await;
    let request = format!("c/iot/P1_A1/{gateway_id}/lights/intrusion");
    let reason = intruder
        .publish(&request, b"{}", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(reason, ReasonCode::NOT_AUTHORIZED);
    // A request the gateway does get, sent after the refused one, is answered; the refused one never was.
    let after = service
        .ask("P1_A1", &gateway_id, "inventory", &json!({}), STEP)
        .await
        .expect("the gateway's answer");
    assert_eq!(after.outcome, "success");
    assert!(
        !lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("intrusion")),
        "{:#?}",
        lines.lock().unwrap()
    );
    gw.stop().await;
    service.stop().await;
    broker.stop().await;
}
