//! Device shadows against the real broker: versions, delta, documents, the 409
//! version conflict, delete, persistence across a broker restart, and the policy keeping
//! every account to its own things. Clients are our own codec's test client; identities
//! come from the harness's test authenticator (user names such as `mobile:P1:A1:J1`).

use crate::broker_harness::{TestBroker, TestClient, test_config};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use topicguard::broker::BrokerConfig;
use topicguard::mqtt::codec::{ProtocolVersion, QoS, ReasonCode};

const IID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
const LIGHT: &str = "$aws/things/P1_A1_light/shadow";

async fn gateway(broker: &TestBroker) -> TestClient {
    let id = format!("iot:P1_A1:adp:xhf:{IID}");
    let user = format!("gateway:P1:A1:{IID}");
    TestClient::connect(broker.addr, ProtocolVersion::V5, &id, Some(&user)).await
}

async fn mobile(broker: &TestBroker, aid: &str) -> TestClient {
    let id = format!("xfi:P1_{aid}:clt:J1");
    let user = format!("mobile:P1:{aid}:J1");
    TestClient::connect(broker.addr, ProtocolVersion::V5, &id, Some(&user)).await
}

async fn subscribe_all(client: &mut TestClient, base: &str, suffixes: &[&str]) {
    for suffix in suffixes {
        let code = client
            .subscribe(&format!("{base}/{suffix}"), QoS::AtLeastOnce)
            .await;
        assert_eq!(code, ReasonCode(1), "subscribe {base}/{suffix}");
    }
}

/// The next PUBLISH, which must be on `topic`, as JSON.
async fn expect_json(client: &mut TestClient, topic: &str) -> Value {
    let publish = client.expect_publish().await;
    assert_eq!(publish.topic, topic, "payload: {:?}", publish.payload);
    serde_json::from_slice(&publish.payload).expect("shadow responses are JSON")
}

async fn send(client: &mut TestClient, topic: &str, payload: Value) {
    let code = client
        .publish(
            topic,
            payload.to_string().as_bytes(),
            QoS::AtLeastOnce,
            false,
        )
        .await;
    assert_eq!(code, ReasonCode::SUCCESS, "publish {topic}");
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tg-shadow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn with_dir(dir: &Path) -> BrokerConfig {
    BrokerConfig {
        shadow_dir: Some(dir.to_path_buf()),
        ..test_config()
    }
}

#[tokio::test]
async fn versions_delta_documents_and_the_409_conflict() {
    let broker = TestBroker::start().await;
    let mut gw = gateway(&broker).await;
    let mut app = mobile(&broker, "A1").await;
    subscribe_all(
        &mut gw,
        LIGHT,
        &["update/accepted", "update/rejected", "update/delta"],
    )
    .await;
    subscribe_all(
        &mut app,
        LIGHT,
        &["update/accepted", "update/rejected", "update/documents"],
    )
    .await;

    send(
        &mut gw,
        &format!("{LIGHT}/update"),
        json!({"state": {"reported": {"on": false}}}),
    )
    .await;
    let accepted = expect_json(&mut gw, &format!("{LIGHT}/update/accepted")).await;
    assert_eq!(
        (accepted["version"].clone(), accepted["state"].clone()),
        (json!(1), json!({"reported": {"on": false}}))
    );
    assert_eq!(
        expect_json(&mut app, &format!("{LIGHT}/update/accepted")).await["version"],
        1
    );
    let docs = expect_json(&mut app, &format!("{LIGHT}/update/documents")).await;
    assert_eq!(docs["previous"], Value::Null);
    assert_eq!(
        docs["current"],
        json!({"state": {"reported": {"on": false}}, "version": 1})
    );

    let desired = json!({"state": {"desired": {"on": true}}, "version": 1, "clientToken": "t2"});
    send(&mut app, &format!("{LIGHT}/update"), desired).await;
    assert_eq!(
        expect_json(&mut gw, &format!("{LIGHT}/update/accepted")).await["version"],
        2
    );
    let delta = expect_json(&mut gw, &format!("{LIGHT}/update/delta")).await;
    assert_eq!(
        (delta["state"].clone(), delta["version"].clone()),
        (json!({"on": true}), json!(2))
    );
    assert_eq!(delta["clientToken"], "t2");
    assert_eq!(
        expect_json(&mut app, &format!("{LIGHT}/update/accepted")).await["version"],
        2
    );
    let docs = expect_json(&mut app, &format!("{LIGHT}/update/documents")).await;
    assert_eq!(docs["previous"]["version"], 1);
    assert_eq!(docs["current"]["state"]["desired"], json!({"on": true}));

    let stale = json!({"state": {"desired": {"on": false}}, "version": 1, "clientToken": "t3"});
    send(&mut app, &format!("{LIGHT}/update"), stale).await;
    let rejected = expect_json(&mut app, &format!("{LIGHT}/update/rejected")).await;
    assert_eq!(
        (rejected["code"].clone(), rejected["message"].clone()),
        (json!(409), json!("Version conflict"))
    );
    assert_eq!(rejected["clientToken"], "t3");
    assert_eq!(
        expect_json(&mut gw, &format!("{LIGHT}/update/rejected")).await["code"],
        409
    );

    send(
        &mut gw,
        &format!("{LIGHT}/update"),
        json!({"state": {"reported": {"on": true}}}),
    )
    .await;
    assert_eq!(
        expect_json(&mut gw, &format!("{LIGHT}/update/accepted")).await["version"],
        3
    );
    assert!(
        gw.recv_within(Duration::from_millis(200)).await.is_none(),
        "no delta once reported matches desired"
    );
    broker.stop().await;
}

#[tokio::test]
async fn delete_and_persistence_across_a_restart() {
    let dir = temp_dir("restart");
    let broker = TestBroker::with_config(with_dir(&dir)).await;
    let mut gw = gateway(&broker).await;
    subscribe_all(
        &mut gw,
        LIGHT,
        &[
            "update/accepted",
            "get/accepted",
            "get/rejected",
            "delete/accepted",
        ],
    )
    .await;
    send(
        &mut gw,
        &format!("{LIGHT}/update"),
        json!({"state": {"reported": {"on": true}}}),
    )
    .await;
    assert_eq!(
        expect_json(&mut gw, &format!("{LIGHT}/update/accepted")).await["version"],
        1
    );
    send(
        &mut gw,
        &format!("{LIGHT}/delete"),
        json!({"clientToken": "d1"}),
    )
    .await;
    let deleted = expect_json(&mut gw, &format!("{LIGHT}/delete/accepted")).await;
    assert_eq!(
        (deleted["version"].clone(), deleted["clientToken"].clone()),
        (json!(2), json!("d1"))
    );
    send(&mut gw, &format!("{LIGHT}/get"), json!({})).await;
    assert_eq!(
        expect_json(&mut gw, &format!("{LIGHT}/get/rejected")).await["code"],
        404
    );
    send(
        &mut gw,
        &format!("{LIGHT}/update"),
        json!({"state": {"reported": {"on": false}, "desired": {"on": true}}}),
    )
    .await;
    assert_eq!(
        expect_json(&mut gw, &format!("{LIGHT}/update/accepted")).await["version"],
        3
    );
    broker.stop().await;
    assert!(
        dir.join("P1_A1_light.json").is_file(),
        "the shadow file is written"
    );

    let broker = TestBroker::with_config(with_dir(&dir)).await;
    let mut gw = gateway(&broker).await;
    subscribe_all(&mut gw, LIGHT, &["get/accepted"]).await;
    send(
        &mut gw,
        &format!("{LIGHT}/get"),
        json!({"clientToken": "after-restart"}),
    )
    .await;
    let got = expect_json(&mut gw, &format!("{LIGHT}/get/accepted")).await;
    assert_eq!(got["version"], 3);
    assert_eq!(got["state"]["delta"], json!({"on": true}));
    assert_eq!(got["clientToken"], "after-restart");
    broker.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn another_account_can_neither_update_nor_watch_a_shadow() {
    let broker = TestBroker::start().await;
    let mut gw = gateway(&broker).await;
    let mut other = mobile(&broker, "A2").await;
    subscribe_all(
        &mut gw,
        LIGHT,
        &["update/accepted", "update/delta", "get/rejected"],
    )
    .await;
    for suffix in ["update/delta", "update/documents", "get/accepted"] {
        let code = other
            .subscribe(&format!("{LIGHT}/{suffix}"), QoS::AtLeastOnce)
            .await;
        assert_eq!(code, ReasonCode::NOT_AUTHORIZED, "{suffix}");
    }
    let sneaky = json!({"state": {"desired": {"on": true}}});
    let code = other
        .publish(
            &format!("{LIGHT}/update"),
            sneaky.to_string().as_bytes(),
            QoS::AtLeastOnce,
            false,
        )
        .await;
    assert_eq!(code, ReasonCode::NOT_AUTHORIZED);
    assert!(
        gw.recv_within(Duration::from_millis(200)).await.is_none(),
        "a denied request has no effect"
    );
    let forged = other
        .publish(
            &format!("{LIGHT}/update/delta"),
            b"{}",
            QoS::AtLeastOnce,
            false,
        )
        .await;
    assert_eq!(forged, ReasonCode::NOT_AUTHORIZED);
    send(&mut gw, &format!("{LIGHT}/get"), json!({})).await;
    let none = expect_json(&mut gw, &format!("{LIGHT}/get/rejected")).await;
    assert_eq!(none["code"], 404, "the denied update created no shadow");
    broker.stop().await;
}

/// A `topicguard serve` child process on a free 127.0.0.1 port, killed when dropped.
struct ServeProcess {
    child: tokio::process::Child,
    addr: std::net::SocketAddr,
}

impl ServeProcess {
    /// Starts `topicguard serve ARGS` and waits (bounded) until `addr` accepts.
    async fn start(args: &[&str], addr: std::net::SocketAddr) -> ServeProcess {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
            .arg("serve")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start topicguard serve");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return ServeProcess { child, addr };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("topicguard serve {args:?} did not listen on {addr}");
    }

    /// Connects the dev token's mobile app (xfi:P1_A1:clt:J1).
    async fn mobile(&self, token: &str) -> TestClient {
        let mut connect =
            crate::broker_harness::connect_packet(ProtocolVersion::V5, "xfi:P1_A1:clt:J1", None);
        connect.password = Some(bytes::Bytes::from(token.trim().to_string()));
        let (client, ack) = TestClient::open(self.addr, connect).await;
        assert_eq!(ack.code, 0, "CONNACK with the dev token: {ack:?}");
        client
    }

    /// Ends the broker abruptly (SIGKILL): only what was persisted survives.
    async fn kill(mut self) {
        self.child.start_kill().ok();
        let _ = self.child.wait().await;
    }
}

/// The mobile's `get` of the light's shadow on `serve` (then killed): topic and document.
async fn get_light(serve: ServeProcess, token: &str) -> (String, Value) {
    let mut app = serve.mobile(token).await;
    subscribe_all(&mut app, LIGHT, &["get/accepted", "get/rejected"]).await;
    send(&mut app, &format!("{LIGHT}/get"), json!({})).await;
    let answer = app.expect_publish().await;
    serve.kill().await;
    let document: Value = serde_json::from_slice(&answer.payload).expect("JSON");
    (answer.topic, document)
}

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// `topicguard serve` with `[shadows] dir` persists shadows, and a restarted `serve` given
/// the same directory with `--shadow-dir` reads them back; without either they are lost.
#[tokio::test]
async fn serve_keeps_shadows_across_a_restart_with_a_shadow_dir() {
    let dir = temp_dir("serve-restart");
    std::fs::create_dir_all(&dir).unwrap();
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(["dev", "token", "--out", &dir.display().to_string()])
        .output()
        .expect("dev token runs");
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    let token = std::fs::read_to_string(dir.join("token.jwt")).unwrap();
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/xfinity.policy");
    let addr = free_addr();
    let config = format!(
        "policy = {policy:?}\n[[listener]]\nprotocol = \"tcp\"\nbind = \"{addr}\"\n\
         [trust.idp]\njwks = \"jwks.json\"\n[shadows]\ndir = \"shadows\"\n"
    );
    std::fs::write(dir.join("topicguard.toml"), config).unwrap();
    let config = dir.join("topicguard.toml").display().to_string();
    let serve = ServeProcess::start(&["--config", &config], addr).await;
    let mut app = serve.mobile(&token).await;
    subscribe_all(&mut app, LIGHT, &["update/accepted"]).await;
    let desired = json!({"state": {"desired": {"on": true}}});
    send(&mut app, &format!("{LIGHT}/update"), desired).await;
    let accepted = expect_json(&mut app, &format!("{LIGHT}/update/accepted")).await;
    assert_eq!(accepted["version"], 1);
    serve.kill().await;
    let shadows = dir.join("shadows");
    assert!(shadows.join("P1_A1_light.json").is_file(), "persisted");

    let (jwks, shadows) = (dir.join("jwks.json"), shadows.display().to_string());
    let jwks = format!("idp={}", jwks.display());
    let addr = free_addr();
    let listen = format!("tcp://{addr}");
    let common = ["--policy", policy, "--listen", &listen, "--trust", &jwks];
    let flag = [&common[..], &["--shadow-dir", &shadows]].concat();
    let (topic, got) = get_light(ServeProcess::start(&flag, addr).await, &token).await;
    assert_eq!(topic, format!("{LIGHT}/get/accepted"), "{got}");
    assert_eq!(got["version"], 1);
    assert_eq!(got["state"]["desired"], json!({"on": true}));

    let addr = free_addr();
    let listen = format!("tcp://{addr}");
    let common = ["--policy", policy, "--listen", &listen, "--trust", &jwks];
    let (topic, got) = get_light(ServeProcess::start(&common, addr).await, &token).await;
    assert_eq!(
        (topic, got["code"].clone()),
        (format!("{LIGHT}/get/rejected"), json!(404)),
        "without a shadow directory a restarted broker starts empty"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `--data-dir`, shadows live in the broker's store: an accepted update survives a
/// SIGKILL, and the restarted broker serves the same version.
#[tokio::test]
async fn serve_keeps_shadows_in_its_data_directory_across_a_kill() {
    let dir = temp_dir("serve-data-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(["dev", "token", "--out", &dir.display().to_string()])
        .output()
        .expect("dev token runs");
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    let token = std::fs::read_to_string(dir.join("token.jwt")).unwrap();
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/xfinity.policy");
    let jwks = format!("idp={}", dir.join("jwks.json").display());
    let data = dir.join("data").display().to_string();
    let start = |addr: std::net::SocketAddr| {
        let listen = format!("tcp://{addr}");
        let args: Vec<String> = ["--policy", policy, "--listen", &listen, "--trust", &jwks]
            .iter()
            .map(|s| s.to_string())
            .chain(["--data-dir".to_string(), data.clone()])
            .collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ServeProcess::start(&args, addr).await
        }
    };
    let serve = start(free_addr()).await;
    let mut app = serve.mobile(&token).await;
    subscribe_all(&mut app, LIGHT, &["update/accepted"]).await;
    let desired = json!({"state": {"desired": {"on": true}}});
    send(&mut app, &format!("{LIGHT}/update"), desired).await;
    let accepted = expect_json(&mut app, &format!("{LIGHT}/update/accepted")).await;
    assert_eq!(accepted["version"], 1);
    serve.kill().await;
    assert!(dir.join("data/topicguard.redb").is_file(), "the store");

    let (topic, got) = get_light(start(free_addr()).await, &token).await;
    assert_eq!(topic, format!("{LIGHT}/get/accepted"), "{got}");
    assert_eq!(got["version"], 1);
    assert_eq!(got["state"]["desired"], json!({"on": true}));
    let _ = std::fs::remove_dir_all(&dir);
}
