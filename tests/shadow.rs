//! Device shadows against the real broker (issue 5): versions, delta, documents, the 409
//! version conflict, delete, persistence across a broker restart, and the policy keeping
//! every account to its own things. Clients are our own codec's test client; identities
//! come from the harness's test authenticator (user names such as `mobile:P1:A1:J1`).

use crate::broker_harness::{TestBroker, TestClient, test_config};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use topicguard::broker::BrokerConfig;
use topicguard::broker::codec::{ProtocolVersion, QoS, ReasonCode};

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
