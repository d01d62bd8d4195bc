//! The broker at the packet level, over raw sockets and our own codec: the hostile inputs
//! of bad-inputs §8.4 and §8.6, keep-alive, takeover, session resume with messages in
//! flight, topic aliases, a policy swap, and graceful shutdown. Each test
//! ends by checking that the broker still serves a normal client.

use crate::broker_harness::*;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use topicguard::broker::BrokerConfig;
use topicguard::mqtt::codec::{Ack, Packet, Properties, ProtocolVersion, Publish, QoS, ReasonCode};

use ProtocolVersion::{V5, V311};

/// A CONNECT for the anonymous `dev` identity, encoded.
fn connect_bytes(version: ProtocolVersion, client_id: &str) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    Packet::Connect(Box::new(connect_packet(version, client_id, None)))
        .encode(version, &mut buf)
        .unwrap();
    buf.to_vec()
}

async fn still_serving(broker: &TestBroker) {
    let mut client = TestClient::connect(broker.addr, V5, "dev-alive", None).await;
    assert_eq!(
        client.subscribe("dev/alive", QoS::AtLeastOnce).await,
        ReasonCode::GRANTED_QOS_1
    );
    assert_eq!(
        client
            .publish("dev/alive", b"x", QoS::AtLeastOnce, false)
            .await,
        ReasonCode::SUCCESS
    );
    assert_eq!(&client.expect_publish().await.payload[..], b"x");
}

#[tokio::test]
async fn malformed_first_packets_close_without_an_answer() {
    let broker = TestBroker::start().await;
    let cases: [(&str, &[u8]); 9] = [
        (
            "47: 5-byte remaining length",
            &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        ),
        ("47: non-minimal length", &[0x10, 0x8C, 0x00]),
        ("48: 268 435 455 declared", &[0x10, 0xFF, 0xFF, 0xFF, 0x7F]),
        ("49: PUBLISH first", &[0x30, 0x03, 0x00, 0x01, b'a']),
        ("49: PINGREQ first", &[0xC0, 0x00]),
        ("49: type 0", &[0x00, 0x00]),
        (
            "51: reserved CONNECT flag",
            &[
                0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x03, 0, 60, 0, 1, b'c',
            ],
        ),
        (
            "52: flags announce absent fields",
            &[
                0x10, 0x0C, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60, 0, 0,
            ],
        ),
        (
            "53: NUL in the client id",
            &[
                0x10, 0x0F, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 3, b'a', 0, b'b',
            ],
        ),
    ];
    for (case, bytes) in cases {
        let answer = raw_exchange(broker.addr, bytes).await;
        assert!(
            answer.is_empty(),
            "{case}: the broker answered {answer:02x?}"
        );
    }
    still_serving(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn unsupported_protocol_level_or_name_gets_connack_0x01() {
    let broker = TestBroker::start().await;
    for (level, name) in [(6u8, &b"MQTT"[..]), (3, b"MQIsdp"), (4, b"MQTX")] {
        let mut body = vec![0, name.len() as u8];
        body.extend_from_slice(name);
        body.extend_from_slice(&[level, 0x02, 0, 60, 0, 1, b'c']);
        let mut packet = vec![0x10, body.len() as u8];
        packet.extend_from_slice(&body);
        let answer = raw_exchange(broker.addr, &packet).await;
        assert_eq!(answer, [0x20, 0x02, 0x00, 0x01], "level {level}");
    }
    still_serving(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn protocol_errors_after_connect_close_with_the_reason_code() {
    let broker = TestBroker::start().await;
    let cases: [(&str, &[u8], u8); 6] = [
        (
            "50: second CONNECT",
            &[
                0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0, 1, b'c',
            ],
            0x82,
        ),
        (
            "54: QoS 3 option",
            &[0x82, 0x07, 0, 1, 0, 0, 1, b'a', 0x03],
            0x81,
        ),
        (
            "54: retain handling 3",
            &[0x82, 0x07, 0, 1, 0, 0, 1, b'a', 0x30],
            0x82,
        ),
        (
            "54: $share with no-local",
            &[
                0x82, 0x10, 0, 1, 0, 0, 10, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/',
                b'a', 0x04,
            ],
            0x82,
        ),
        (
            "55: CONNACK from a client",
            &[0x20, 0x03, 0x00, 0x00, 0x00],
            0x82,
        ),
        (
            "55: SUBACK from a client",
            &[0x90, 0x04, 0x00, 0x01, 0x00, 0x00],
            0x82,
        ),
    ];
    for (case, bytes, reason) in cases {
        let mut stream = connect_bytes(V5, "dev-bad");
        stream.extend_from_slice(bytes);
        let answer = raw_exchange(broker.addr, &stream).await;
        // CONNACK (success), then DISCONNECT with the reason code, then close.
        assert!(
            answer.len() > 4 && answer[0] == 0x20 && answer[3] == 0,
            "{case}: {answer:02x?}"
        );
        let tail = &answer[2 + answer[1] as usize..];
        assert_eq!(tail, [0xE0, 0x01, reason], "{case}");
    }
    // 3.1.1: the same violations close without DISCONNECT.
    let mut stream = connect_bytes(V311, "dev-bad");
    stream.extend_from_slice(&[0x82, 0x06, 0, 1, 0, 1, b'a', 0x03]);
    assert_eq!(
        raw_exchange(broker.addr, &stream).await,
        [0x20, 0x02, 0x00, 0x00]
    );
    still_serving(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn topics_and_filters_beyond_the_level_cap_are_refused_not_fatal() {
    let broker = TestBroker::start().await;
    let mut client = TestClient::connect(broker.addr, V5, "dev-deep", None).await;
    let deep = format!("dev/{}", "/".repeat(65_530));
    assert_eq!(
        client.publish(&deep, b"x", QoS::AtLeastOnce, false).await,
        ReasonCode::TOPIC_NAME_INVALID
    );
    let deep_filter = format!("dev/{}#", "+/".repeat(40));
    assert_eq!(
        client.subscribe(&deep_filter, QoS::AtMostOnce).await,
        ReasonCode::TOPIC_FILTER_INVALID
    );
    let mut old = TestClient::connect(broker.addr, V311, "dev-deep3", None).await;
    assert_eq!(
        old.subscribe(&deep_filter, QoS::AtMostOnce).await,
        ReasonCode(0x80)
    );
    client.send(Packet::PingReq).await;
    assert_eq!(client.recv().await, Some(Packet::PingResp));
    still_serving(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn oversized_packets_are_refused_from_the_header() {
    let config = BrokerConfig {
        max_packet_size: 1024,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let mut client = TestClient::connect(broker.addr, V5, "dev-big", None).await;
    let big = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "dev/big".into(),
        packet_id: 0,
        payload: Bytes::from(vec![7u8; 2000]),
        properties: Properties::default(),
    };
    client.send(Packet::Publish(big)).await;
    assert_eq!(
        client.expect_closed().await,
        Some(ReasonCode::PACKET_TOO_LARGE)
    );
    still_serving(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn connect_deadline_closes_idle_and_trickling_connections() {
    let config = BrokerConfig {
        connect_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let started = Instant::now();
    assert!(raw_exchange_open(broker.addr, &[]).await.is_empty());
    // 8 KiB declared, a few bytes sent: waits for the rest only until the deadline.
    assert!(
        raw_exchange_open(broker.addr, &[0x10, 0x80, 0x40, 0x00, 0x04])
            .await
            .is_empty()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    still_serving(&broker).await;
    broker.stop().await;
}

/// Like `raw_exchange`, but keeps the writing side open (a client that goes quiet).
async fn raw_exchange_open(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(STEP, stream.read_to_end(&mut answer))
        .await
        .expect("the broker kept an idle connection open")
        .ok();
    answer
}

#[tokio::test]
async fn keep_alive_bounds_and_timeout() {
    let config = BrokerConfig {
        max_keep_alive: 60,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let mut asked = connect_packet(V5, "dev-ka", None);
    asked.keep_alive = 65_535;
    let (_, ack) = TestClient::open(broker.addr, asked.clone()).await;
    assert_eq!((ack.code, ack.properties.server_keep_alive), (0, Some(60)));
    asked.version = V311;
    let (_, ack) = TestClient::open(broker.addr, asked).await;
    assert_eq!(
        ack.code, 2,
        "3.1.1 cannot be told a lower keep-alive: refused"
    );

    let mut quiet = connect_packet(V5, "dev-quiet", None);
    quiet.keep_alive = 1;
    let (mut client, ack) = TestClient::open(broker.addr, quiet).await;
    assert_eq!(ack.code, 0);
    let started = Instant::now();
    assert_eq!(
        client.expect_closed().await,
        Some(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    still_serving(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn unreleased_qos2_beyond_receive_maximum_disconnects_0x93() {
    let config = BrokerConfig {
        receive_maximum: 3,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let mut client = TestClient::connect(broker.addr, V5, "dev-flood", None).await;
    for id in 1..=4u16 {
        client
            .send(Packet::Publish(Publish {
                dup: false,
                qos: QoS::ExactlyOnce,
                retain: false,
                topic: "dev/flood".into(),
                packet_id: id,
                payload: Bytes::from_static(b"x"),
                properties: Properties::default(),
            }))
            .await;
        if id <= 3 {
            assert!(matches!(client.recv().await, Some(Packet::PubRec(a)) if a.packet_id == id));
        }
    }
    assert_eq!(
        client.expect_closed().await,
        Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
    );
    still_serving(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn takeover_closes_the_older_connection() {
    let broker = TestBroker::start().await;
    for (version, closed_with) in [(V5, Some(ReasonCode::SESSION_TAKEN_OVER)), (V311, None)] {
        let mut old = TestClient::connect(
            broker.addr,
            version,
            "xfi:P1_A1:clt:J1",
            Some("mobile:P1:A1:J1"),
        )
        .await;
        // The newer connection is a real client: mosquitto_pub with the same client id.
        mosquitto_pub(
            &broker,
            &[
                "-i",
                "xfi:P1_A1:clt:J1",
                "-u",
                "mobile:P1:A1:J1",
                "-t",
                "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1",
                "-m",
                "x",
                "-q",
                "1",
            ],
        )
        .await;
        assert_eq!(old.expect_closed().await, closed_with);
    }
    still_serving(&broker).await;
    broker.stop().await;
}

fn session_connect(client_id: &str, clean_start: bool) -> topicguard::mqtt::codec::Connect {
    let mut connect = connect_packet(V5, client_id, None);
    connect.clean_start = clean_start;
    connect.properties.session_expiry_interval = Some(60);
    connect
}

#[tokio::test]
async fn resumed_session_resends_unacknowledged_messages_with_dup() {
    let broker = TestBroker::start().await;
    let (mut sub, ack) = TestClient::open(broker.addr, session_connect("dev-sub", true)).await;
    assert!(!ack.session_present);
    assert_eq!(
        sub.subscribe("dev/t/#", QoS::AtLeastOnce).await,
        ReasonCode::GRANTED_QOS_1
    );
    let mut publisher = TestClient::connect(broker.addr, V311, "dev-pub", None).await;
    publisher
        .publish("dev/t/1", b"first", QoS::AtLeastOnce, false)
        .await;
    let Some(Packet::Publish(first)) = sub.recv().await else {
        panic!("no delivery")
    };
    assert!(!first.dup);
    drop(sub); // never acknowledged
    publisher
        .publish("dev/t/2", b"second", QoS::AtLeastOnce, false)
        .await;
    let (mut sub, ack) = TestClient::open(broker.addr, session_connect("dev-sub", false)).await;
    assert!(ack.session_present);
    let again = sub.expect_publish().await;
    assert_eq!(
        (again.dup, again.packet_id, &again.payload[..]),
        (true, first.packet_id, &b"first"[..])
    );
    let queued = sub.expect_publish().await;
    assert_eq!((queued.dup, &queued.payload[..]), (false, &b"second"[..]));
    // Clean start discards the session.
    drop(sub);
    let (_, ack) = TestClient::open(broker.addr, session_connect("dev-sub", true)).await;
    assert!(!ack.session_present);
    broker.stop().await;
}

#[tokio::test]
async fn topic_aliases_are_resolved_before_authorization() {
    let broker = TestBroker::start().await;
    let mut sub = TestClient::connect(broker.addr, V5, "dev-aliassub", None).await;
    sub.subscribe("dev/alias", QoS::AtMostOnce).await;
    let mut client = TestClient::connect(broker.addr, V5, "dev-alias", None).await;
    let aliased = |topic: &str, alias: u16, payload: &'static [u8]| {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            packet_id: 0,
            payload: Bytes::from_static(payload),
            properties: Properties {
                topic_alias: Some(alias),
                ..Properties::default()
            },
        })
    };
    client.send(aliased("dev/alias", 1, b"set")).await;
    client.send(aliased("", 1, b"used")).await;
    assert_eq!(&sub.expect_publish().await.payload[..], b"set");
    let used = sub.expect_publish().await;
    assert_eq!(
        (used.topic.as_str(), &used.payload[..]),
        ("dev/alias", &b"used"[..])
    );
    // An alias for a topic outside the rights is still judged by its topic.
    client
        .send(aliased("c/xfi/P1_A1/lights/x/r", 2, b"no"))
        .await;
    client.send(aliased("", 2, b"no")).await;
    assert_eq!(sub.recv_within(Duration::from_millis(200)).await, None);
    client.send(aliased("", 99, b"bad")).await;
    assert_eq!(
        client.expect_closed().await,
        Some(ReasonCode::TOPIC_ALIAS_INVALID)
    );
    broker.stop().await;
}

#[tokio::test]
async fn the_publish_that_defines_the_first_topic_alias_is_acknowledged_and_delivered() {
    // A connection holds no alias table until a client defines one: the QoS 1 PUBLISH
    // that creates it must be acknowledged and delivered like any other, and an alias used
    // before any was defined is refused, not resolved.
    let broker = TestBroker::start().await;
    let mut sub = TestClient::connect(broker.addr, V5, "dev-firstsub", None).await;
    sub.subscribe("dev/first", QoS::AtLeastOnce).await;
    let mut client = TestClient::connect(broker.addr, V5, "dev-first", None).await;
    let publish = |topic: &str, packet_id: u16, payload: &'static [u8]| {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.into(),
            packet_id,
            payload: Bytes::from_static(payload),
            properties: Properties {
                topic_alias: Some(1),
                ..Properties::default()
            },
        })
    };
    client.send(publish("dev/first", 7, b"defines")).await;
    match client.recv().await {
        Some(Packet::PubAck(ack)) => assert_eq!(ack.packet_id, 7),
        other => panic!("expected PUBACK 7, got {other:?}"),
    }
    let first = sub.expect_publish().await;
    assert_eq!(
        (first.topic.as_str(), &first.payload[..]),
        ("dev/first", &b"defines"[..])
    );
    client.send(publish("", 8, b"uses")).await;
    match client.recv().await {
        Some(Packet::PubAck(ack)) => assert_eq!(ack.packet_id, 8),
        other => panic!("expected PUBACK 8, got {other:?}"),
    }
    assert_eq!(&sub.expect_publish().await.payload[..], b"uses");

    let mut fresh = TestClient::connect(broker.addr, V5, "dev-fresh", None).await;
    fresh.send(publish("", 9, b"undefined")).await;
    assert_eq!(
        fresh.expect_closed().await,
        Some(ReasonCode::PROTOCOL_ERROR)
    );
    assert_eq!(sub.recv_within(Duration::from_millis(200)).await, None);
    broker.stop().await;
}

#[tokio::test]
async fn queued_messages_are_rechecked_after_a_policy_change() {
    let broker = TestBroker::start().await;
    let (mut sub, _) = TestClient::open(broker.addr, session_connect("dev-away", true)).await;
    sub.subscribe("dev/news", QoS::AtLeastOnce).await;
    drop(sub);
    let mut publisher = TestClient::connect(broker.addr, V5, "dev-news", None).await;
    publisher
        .publish("dev/news", b"queued", QoS::AtLeastOnce, false)
        .await;
    // The new policy no longer lets `dev` receive anything.
    let mut policy = test_policy();
    let text = policy.source().text().replace(
        "allow dev publish, retain, subscribe, receive \"dev/#\"",
        "allow dev publish, retain, subscribe \"dev/#\"",
    );
    policy =
        topicguard::Policy::from_source(&topicguard::Source::new("reloaded.policy", text)).unwrap();
    broker
        .engine
        .store(Arc::new(topicguard::Engine::new(&policy.checked).unwrap()));
    let (mut sub, ack) = TestClient::open(broker.addr, session_connect("dev-away", false)).await;
    assert!(ack.session_present);
    assert_eq!(sub.recv_within(Duration::from_millis(300)).await, None);
    broker.stop().await;
}

#[tokio::test]
async fn shutdown_tells_connected_clients() {
    let broker = TestBroker::start().await;
    let mut v5 = TestClient::connect(broker.addr, V5, "dev-bye5", None).await;
    let mut v311 = TestClient::connect(broker.addr, V311, "dev-bye3", None).await;
    broker.stop().await;
    assert_eq!(
        v5.expect_closed().await,
        Some(ReasonCode::SERVER_SHUTTING_DOWN)
    );
    assert_eq!(v311.expect_closed().await, None);
}

#[tokio::test]
async fn bad_credentials_and_unknown_client_ids_are_refused() {
    let broker = TestBroker::start().await;
    let (_, ack) = TestClient::open(broker.addr, connect_packet(V5, "x", Some("nobody"))).await;
    assert_eq!(ack.code, ReasonCode::BAD_USERNAME_OR_PASSWORD.0);
    let (_, ack) = TestClient::open(broker.addr, connect_packet(V311, "x", Some("nobody"))).await;
    assert_eq!(ack.code, 4);
    // The identity verifies but the client id does not match its template.
    let (_, ack) = TestClient::open(
        broker.addr,
        connect_packet(V5, "xfi:P1_A1:clt:OTHER", Some("mobile:P1:A1:J1")),
    )
    .await;
    assert_eq!(ack.code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID.0);
    // §8.5-57: a wildcard in an identity value never binds.
    let (_, ack) = TestClient::open(
        broker.addr,
        connect_packet(V5, "xfi:P1_A1:clt:J1", Some("mobile:#:A1:J1")),
    )
    .await;
    assert_eq!(ack.code, ReasonCode::NOT_AUTHORIZED.0);
    let mut empty = connect_packet(V311, "", None);
    empty.clean_start = false;
    let (_, ack) = TestClient::open(broker.addr, empty).await;
    assert_eq!(ack.code, 2);
    // A client id no template could ever take (a topic separator, a wildcard, a leading
    // `$`) is not valid, whatever the credential. (NUL is refused by the codec already.)
    for bad in [
        "xfi:P1_A1:clt:J/1",
        "xfi:P1_A1:clt:J#",
        "xfi:P1_A1:clt:+",
        "$xfi",
    ] {
        let (_, ack) = TestClient::open(
            broker.addr,
            connect_packet(V5, bad, Some("mobile:P1:A1:J1")),
        )
        .await;
        assert_eq!(
            ack.code,
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID.0,
            "{bad:?}"
        );
        let (_, ack) = TestClient::open(
            broker.addr,
            connect_packet(V311, bad, Some("mobile:P1:A1:J1")),
        )
        .await;
        assert_eq!(ack.code, 2, "{bad:?}");
    }
    still_serving(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn qos1_ack_is_required_before_more_than_the_window_is_sent() {
    let config = BrokerConfig {
        max_inflight: 2,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let mut sub = TestClient::connect(broker.addr, V5, "dev-window", None).await;
    sub.subscribe("dev/w", QoS::AtLeastOnce).await;
    let mut publisher = TestClient::connect(broker.addr, V5, "dev-wpub", None).await;
    for n in 0..4u8 {
        publisher
            .publish("dev/w", &[n], QoS::AtLeastOnce, false)
            .await;
    }
    let mut first = Vec::new();
    for _ in 0..2 {
        match sub.recv().await {
            Some(Packet::Publish(p)) => first.push(p),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        sub.recv_within(Duration::from_millis(200)).await,
        None,
        "window exceeded"
    );
    sub.send(Packet::PubAck(Ack::new(first[0].packet_id))).await;
    assert_eq!(&sub.expect_publish().await.payload[..], &[2]);
    broker.stop().await;
}

const GATEWAY: &str = "iot:P1_A1:adp:xhf:0f8fad5b-d9cb-469f-a165-70867728950e";
const GATEWAY_USER: &str = "gateway:P1:A1:0f8fad5b-d9cb-469f-a165-70867728950e";

fn gateway_with_delayed_will(delay: u32, clean_start: bool) -> topicguard::mqtt::codec::Connect {
    let mut connect = connect_packet(V5, GATEWAY, Some(GATEWAY_USER));
    connect.clean_start = clean_start;
    connect.properties.session_expiry_interval = Some(60);
    connect.will = Some(topicguard::mqtt::codec::Will {
        topic: format!("c/iot/P1_A1/{GATEWAY}/presence"),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(delay),
            ..Properties::default()
        },
    });
    connect
}

#[tokio::test]
async fn will_delay_is_honoured_and_cancelled_by_a_reconnect() {
    let broker = TestBroker::start().await;
    let mut app =
        TestClient::connect(broker.addr, V5, "xfi:P1_A1:clt:J1", Some("mobile:P1:A1:J1")).await;
    assert_eq!(
        app.subscribe("c/iot/P1_A1/+/presence", QoS::AtLeastOnce)
            .await,
        ReasonCode::GRANTED_QOS_1
    );
    // Lost, then back within the delay: no will.
    let (gateway, _) = TestClient::open(broker.addr, gateway_with_delayed_will(1, true)).await;
    drop(gateway);
    let (gateway, ack) = TestClient::open(broker.addr, gateway_with_delayed_will(1, false)).await;
    assert!(ack.session_present);
    assert_eq!(app.recv_within(Duration::from_millis(1500)).await, None);
    // Lost for good: the will comes after the delay, not before.
    drop(gateway);
    let lost = Instant::now();
    let will = app.expect_publish().await;
    assert_eq!(&will.payload[..], b"offline");
    assert!(
        lost.elapsed() >= Duration::from_millis(900),
        "{:?}",
        lost.elapsed()
    );
    broker.stop().await;
}
