//! A client id belongs to one principal: with a client template that does not pin the
//! account (`client "app-{+dev}"`), a valid credential of another principal — another
//! account's JWT, or a certificate identity with the same attribute values — cannot take
//! over a live or persisted session's client id. It is refused with CONNACK 0x87 (3.1.1:
//! 5) and the owner's connection and session are untouched. The same principal, with a
//! fresh token, still takes its session over as MQTT requires. Real JWTs and certificates
//! through the real broker, with our packet-level client and the mosquitto clients.

use crate::broker_harness::{TestClient, connect_packet, mosquitto, test_config};
use crate::broker_tls::{Pki, SecureBroker, mosquitto_run};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use topicguard::devcred as dev;
use topicguard::mqtt::codec::{ConnAck, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode};
use topicguard::{Policy, Source};

/// Two identities whose client templates do not pin the account, sharing one template.
const POLICY: &str = r#"
identity app from jwt {
    issuer "https://idp.example.com/"
    audience "iot-platform"
    algorithms ES256
    trust "idp"
    pid = claim "pid"
    aid = claim "aid"
    client "app-{+dev}"
}
identity gw from certificate {
    trust "devices"
    pid = san.dirname.O
    aid = san.dirname.CN
    client "app-{+dev}"
}
allow app, gw connect
allow app, gw publish, subscribe, receive "acct/{pid}_{aid}/#"
"#;

fn policy() -> Policy {
    let source = Source::new("sessions.policy", POLICY);
    Policy::from_source(&source).unwrap_or_else(|d| panic!("the test policy checks: {d}"))
}

/// A token of account `pid`_`aid`, valid for `exp_in` seconds.
fn token(pki: &Pki, pid: &str, aid: &str, exp_in: u64) -> String {
    let now = dev::unix_now();
    let mut claims = dev::default_claims(now, "J1");
    claims["pid"] = Value::from(pid);
    claims["aid"] = Value::from(aid);
    claims["exp"] = Value::from(now + exp_in);
    pki.signer.sign(&claims).expect("sign a token")
}

/// Opens a connection presenting `token`; returns the client and its CONNACK.
async fn open(
    addr: SocketAddr,
    version: ProtocolVersion,
    client_id: &str,
    token: &str,
    persistent: bool,
) -> (TestClient, ConnAck) {
    let mut connect = connect_packet(version, client_id, Some("app"));
    connect.password = Some(token.as_bytes().to_vec().into());
    if persistent {
        connect.clean_start = false;
        if version == ProtocolVersion::V5 {
            connect.properties.session_expiry_interval = Some(300);
        }
    }
    TestClient::open(addr, connect).await
}

fn not_authorized(version: ProtocolVersion) -> u8 {
    match version {
        ProtocolVersion::V5 => ReasonCode::NOT_AUTHORIZED.0,
        ProtocolVersion::V311 => 5,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_account_cannot_take_over_a_live_client_id() {
    let pki = Pki::generate("sessions-live");
    let broker = SecureBroker::with(&pki, policy(), test_config()).await;
    let (owner_token, other_token) = (token(&pki, "P1", "A1", 3600), token(&pki, "P2", "A2", 3600));
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let (mut owner, ack) = open(broker.tcp, version, "app-x", &owner_token, false).await;
        assert_eq!(ack.code, 0, "{version:?}: the owner connects");
        assert_eq!(owner.subscribe("acct/P1_A1/#", QoS::AtLeastOnce).await.0, 1);

        let (mut intruder, ack) = open(broker.tcp, version, "app-x", &other_token, false).await;
        assert_eq!(
            ack.code,
            not_authorized(version),
            "{version:?}: another account's valid token is refused the owner's client id"
        );
        assert_eq!(intruder.expect_closed().await, None, "{version:?}");

        // The owner was not kicked: its connection and subscription still deliver.
        let (mut sender, ack) = open(broker.tcp, version, "app-y", &owner_token, false).await;
        assert_eq!(ack.code, 0);
        assert_eq!(
            sender
                .publish("acct/P1_A1/t", b"still here", QoS::AtLeastOnce, false)
                .await
                .0,
            0
        );
        let got = owner.expect_publish().await;
        assert_eq!(
            (got.topic.as_str(), &got.payload[..]),
            ("acct/P1_A1/t", &b"still here"[..])
        );

        // The same principal with a fresh token takes the session over, as MQTT requires.
        let refreshed = token(&pki, "P1", "A1", 7200);
        let (_again, ack) = open(broker.tcp, version, "app-x", &refreshed, false).await;
        assert_eq!(ack.code, 0, "{version:?}: the owner's own takeover");
        let kicked = owner.expect_closed().await;
        let expected = (version == ProtocolVersion::V5).then_some(ReasonCode::SESSION_TAKEN_OVER);
        assert_eq!(kicked, expected, "{version:?}");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_session_stays_its_owners_until_it_ends() {
    let pki = Pki::generate("sessions-persisted");
    let broker = SecureBroker::with(&pki, policy(), test_config()).await;
    let (owner_token, other_token) = (token(&pki, "P1", "A1", 3600), token(&pki, "P2", "A2", 3600));
    let version = ProtocolVersion::V5;
    let (mut owner, ack) = open(broker.tcp, version, "app-p", &owner_token, true).await;
    assert_eq!((ack.code, ack.session_present), (0, false));
    assert_eq!(owner.subscribe("acct/P1_A1/#", QoS::AtLeastOnce).await.0, 1);
    owner
        .send(Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)))
        .await;
    assert_eq!(owner.expect_closed().await, None);

    for persistent in [false, true] {
        let (_, ack) = open(broker.tcp, version, "app-p", &other_token, persistent).await;
        assert_eq!(
            ack.code, 0x87,
            "another account may neither wipe (clean start) nor resume the offline session"
        );
    }
    let (mut sender, _) = open(broker.tcp, version, "app-q", &owner_token, false).await;
    assert_eq!(
        sender
            .publish("acct/P1_A1/t", b"queued", QoS::AtLeastOnce, false)
            .await
            .0,
        0
    );

    let (mut owner, ack) = open(broker.tcp, version, "app-p", &owner_token, true).await;
    assert_eq!(
        (ack.code, ack.session_present),
        (0, true),
        "the session survived"
    );
    let got = owner.expect_publish().await;
    assert_eq!(&got.payload[..], b"queued", "with what was queued for it");

    // Once the owner ends its session, the client id is free again.
    owner
        .send(Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)))
        .await;
    assert_eq!(owner.expect_closed().await, None);
    let (mut ended, ack) = open(broker.tcp, version, "app-p", &owner_token, false).await;
    assert_eq!((ack.code, ack.session_present), (0, false));
    ended
        .send(Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)))
        .await;
    assert_eq!(ended.expect_closed().await, None);
    let (_, ack) = open(broker.tcp, version, "app-p", &other_token, false).await;
    assert_eq!(
        ack.code, 0,
        "no session: the first principal to connect holds the id"
    );
    broker.stop().await;
}

/// `mosquitto_sub`/`mosquitto_pub` over 3.1.1 as `app-*` with a JWT password.
fn jwt_args<'a>(client_id: &'a str, token: &'a str) -> Vec<&'a str> {
    vec!["-V", "mqttv311", "-i", client_id, "-u", "app", "-P", token]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clean_session_false_keeps_the_session_from_another_account() {
    let pki = Pki::generate("sessions-mosquitto");
    let broker = SecureBroker::with(&pki, policy(), test_config()).await;
    let (owner_token, other_token) = (token(&pki, "P1", "A1", 3600), token(&pki, "P2", "A2", 3600));
    let subscribe_once = ["-c", "-q", "1", "-E"];

    let mut args = jwt_args("app-m", &owner_token);
    args.extend(["-t", "acct/P1_A1/#"]);
    args.extend(subscribe_once);
    let (code, out) = mosquitto_run("mosquitto_sub", broker.tcp, &args).await;
    assert_eq!(code, 0, "the owner creates a persistent session: {out}");

    let mut args = jwt_args("app-m", &other_token);
    args.extend(["-t", "acct/P2_A2/#"]);
    args.extend(subscribe_once);
    let (code, out) = mosquitto_run("mosquitto_sub", broker.tcp, &args).await;
    assert_ne!(code, 0, "another account resuming the session: {out}");
    assert!(
        out.to_lowercase().contains("not authori"),
        "CONNACK 5: {out}"
    );
    let mut args = jwt_args("app-m", &other_token);
    args.extend(["-t", "acct/P2_A2/t", "-m", "x"]);
    let (code, out) = mosquitto_run("mosquitto_pub", broker.tcp, &args).await;
    assert_ne!(code, 0, "another account with a clean session: {out}");
    assert!(
        out.to_lowercase().contains("not authori"),
        "CONNACK 5: {out}"
    );

    let mut args = jwt_args("app-n", &owner_token);
    args.extend(["-t", "acct/P1_A1/t", "-m", "kept for you", "-q", "1"]);
    let (code, out) = mosquitto_run("mosquitto_pub", broker.tcp, &args).await;
    assert_eq!(code, 0, "{out}");
    let mut args = jwt_args("app-m", &owner_token);
    args.extend(["-t", "acct/P1_A1/#", "-c", "-q", "1", "-C", "1", "-W", "5"]);
    let (code, out) = mosquitto_run("mosquitto_sub", broker.tcp, &args).await;
    assert_eq!(
        (code, out.trim()),
        (0, "kept for you"),
        "the owner's session was kept"
    );
    broker.stop().await;
}

/// Lines of a child's stdout, read in the background.
fn stdout_lines(child: &mut tokio::process::Child) -> tokio::sync::mpsc::Receiver<String> {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (send, receive) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if send.send(line).await.is_err() {
                break;
            }
        }
    });
    receive
}

/// Waits (bounded) for a line containing `needle`.
async fn line_with(lines: &mut tokio::sync::mpsc::Receiver<String>, needle: &str) {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.recv().await {
            if line.contains(needle) {
                return true;
            }
        }
        false
    });
    assert!(
        matches!(found.await, Ok(true)),
        "no line containing `{needle}`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_attributes_under_another_identity_are_another_principal() {
    let pki = Pki::generate("sessions-identity");
    let broker = SecureBroker::with(&pki, policy(), test_config()).await;
    // The gateway certificate (O=P1, CN=A1) holds app-g over TLS.
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("gateway.pem"),
        pki.path("gateway-key.pem"),
    );
    let mut holder = tokio::process::Command::new("stdbuf")
        .arg("-oL")
        .arg(mosquitto("mosquitto_sub"))
        .args(["-h", "127.0.0.1", "-p", &broker.tls.port().to_string()])
        .args(["--cafile", &ca, "--cert", &cert, "--key", &key, "-d"])
        .args([
            "-i",
            "app-g",
            "-t",
            "acct/P1_A1/#",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "15",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn stdbuf mosquitto_sub (coreutils)");
    let mut lines = stdout_lines(&mut holder);
    line_with(&mut lines, "SUBACK").await;

    // A JWT of the same account (P1/A1) under the `app` identity is another principal.
    let token = token(&pki, "P1", "A1", 3600);
    let (_, ack) = open(broker.tcp, ProtocolVersion::V5, "app-g", &token, false).await;
    assert_eq!(
        ack.code, 0x87,
        "the certificate identity's client id is refused"
    );
    let (mut sender, _) = open(broker.tcp, ProtocolVersion::V5, "app-s", &token, false).await;
    let sent = sender
        .publish("acct/P1_A1/t", b"for the gateway", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(sent.0, 0);
    line_with(&mut lines, "for the gateway").await;
    broker.stop().await;
}
