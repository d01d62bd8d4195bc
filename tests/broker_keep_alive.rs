//! Keep-alive 0 is legal MQTT ("no keep-alive mechanism"): by default the broker accepts
//! it as asked, from rumqttc (3.1.1) and paho-mqtt (3.1.1 and 5.0), and such a client then
//! publishes and receives as usual. With `allow_zero_keep_alive` off, the old cap applies:
//! 5.0 is told the maximum as Server Keep Alive and 3.1.1 is refused (0x02).

use crate::broker_harness::{TestBroker, TestClient, connect_packet, test_config};
use crate::broker_paho::{assert_cases, run_script};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet};
use std::time::Duration;
use topicguard::broker::BrokerConfig;
use topicguard::mqtt::codec::ProtocolVersion;

/// The next incoming packet rumqttc reports (bounded).
async fn next_incoming(events: &mut rumqttc::EventLoop) -> Packet {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let event = tokio::time::timeout_at(deadline, events.poll())
            .await
            .expect("rumqttc heard nothing within 5 s")
            .expect("the rumqttc connection failed");
        if let Event::Incoming(packet) = event {
            return packet;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_with_keep_alive_zero_connects_publishes_and_receives() {
    let broker = TestBroker::start().await;
    let mut options = MqttOptions::new("dev-rumqttc-ka0", "127.0.0.1", broker.addr.port());
    options.set_keep_alive(Duration::ZERO);
    let (client, mut events) = AsyncClient::new(options, 10);
    match next_incoming(&mut events).await {
        Packet::ConnAck(ack) => assert_eq!(ack.code, ConnectReturnCode::Success),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    client
        .subscribe("dev/ka0", rumqttc::QoS::AtLeastOnce)
        .await
        .expect("queue SUBSCRIBE");
    assert!(matches!(
        next_incoming(&mut events).await,
        Packet::SubAck(_)
    ));
    client
        .publish(
            "dev/ka0",
            rumqttc::QoS::AtLeastOnce,
            false,
            "no pings needed",
        )
        .await
        .expect("queue PUBLISH");
    let mut received = None;
    for _ in 0..4 {
        if let Packet::Publish(publish) = next_incoming(&mut events).await {
            received = Some(publish);
            break;
        }
    }
    let publish = received.expect("the message came back");
    assert_eq!(&publish.payload[..], b"no pings needed");
    broker.stop().await;
}

#[tokio::test]
async fn paho_with_keep_alive_zero_mqtt_311() {
    assert_cases(
        &run_script("keep_alive.py", "311").await,
        &["keep_alive_zero"],
    );
}

#[tokio::test]
async fn paho_with_keep_alive_zero_mqtt_5() {
    assert_cases(
        &run_script("keep_alive.py", "5").await,
        &["keep_alive_zero"],
    );
}

#[tokio::test]
async fn the_cap_still_applies_when_keep_alive_zero_is_turned_off() {
    let config = BrokerConfig {
        allow_zero_keep_alive: false,
        max_keep_alive: 60,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let mut asked = connect_packet(ProtocolVersion::V5, "dev-ka0", None);
    asked.keep_alive = 0;
    let (_, ack) = TestClient::open(broker.addr, asked.clone()).await;
    assert_eq!((ack.code, ack.properties.server_keep_alive), (0, Some(60)));
    asked.version = ProtocolVersion::V311;
    let (_, ack) = TestClient::open(broker.addr, asked).await;
    assert_eq!(ack.code, 2, "3.1.1 cannot be told a keep-alive: refused");
    broker.stop().await;
}

#[tokio::test]
async fn keep_alive_zero_is_accepted_as_asked_by_default() {
    assert!(BrokerConfig::default().allow_zero_keep_alive);
    let broker = TestBroker::start().await;
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let mut asked = connect_packet(version, "dev-ka0", None);
        asked.keep_alive = 0;
        let (_, ack) = TestClient::open(broker.addr, asked).await;
        assert_eq!(
            (ack.code, ack.properties.server_keep_alive),
            (0, None),
            "{version:?}"
        );
    }
    broker.stop().await;
}
