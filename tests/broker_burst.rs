//! Bursts over a raw socket: a client writes CONNECT and 1,000 PUBLISH packets (then a
//! PINGREQ) in one `write`, at QoS 0, 1 and 2, over MQTT 3.1.1 and 5.0. Every packet must
//! be acknowledged in order and every message delivered to the subscriber in order: the
//! broker reads many frames per wake-up, and none of them may fall between two batches.

use crate::broker_harness::*;
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use topicguard::broker::BrokerConfig;
use topicguard::mqtt::codec::{
    Ack, CodecLimits, MqttCodec, Packet, Properties, ProtocolVersion, Publish, QoS,
};

/// Packets in the one write.
const BURST: u32 = 1_000;

fn encode(packet: Packet, version: ProtocolVersion, into: &mut BytesMut) {
    packet.encode(version, into).expect("encode");
}

/// CONNECT, `BURST` PUBLISH packets (payload: the sequence number) and a PINGREQ.
fn burst_bytes(version: ProtocolVersion, client_id: &str, topic: &str, qos: QoS) -> BytesMut {
    let mut bytes = BytesMut::new();
    let connect = connect_packet(version, client_id, None);
    encode(Packet::Connect(Box::new(connect)), version, &mut bytes);
    for seq in 0..BURST {
        let publish = Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            packet_id: if qos == QoS::AtMostOnce {
                0
            } else {
                packet_id(seq)
            },
            payload: Bytes::copy_from_slice(&seq.to_be_bytes()),
            properties: Properties::default(),
        };
        encode(Packet::Publish(publish), version, &mut bytes);
    }
    encode(Packet::PingReq, version, &mut bytes);
    bytes
}

fn packet_id(seq: u32) -> u16 {
    u16::try_from(seq + 1).expect("the burst fits in packet ids")
}

type Raw = Framed<TcpStream, MqttCodec>;

async fn next(client: &mut Raw, what: &str) -> Packet {
    match tokio::time::timeout(STEP, client.next()).await {
        Ok(Some(Ok(packet))) => packet,
        other => panic!("{what}: expected a packet, got {other:?}"),
    }
}

/// Reads the acknowledgements of the burst (completing QoS 2 with one write of PUBRELs),
/// then the PINGRESP, asserting each comes in order.
async fn expect_acknowledged(client: &mut Raw, qos: QoS) {
    let first_acks = |packet: &Packet| match (qos, packet) {
        (QoS::AtLeastOnce, Packet::PubAck(ack)) | (QoS::ExactlyOnce, Packet::PubRec(ack)) => {
            Some((ack.packet_id, ack.reason))
        }
        _ => None,
    };
    if qos != QoS::AtMostOnce {
        for seq in 0..BURST {
            let packet = next(client, "acknowledgement").await;
            let (id, reason) = first_acks(&packet).unwrap_or_else(|| {
                panic!("message {seq}: expected its acknowledgement, got {packet:?}")
            });
            assert_eq!(id, packet_id(seq), "acknowledgements out of order");
            assert!(!reason.is_failure(), "message {seq} refused: {reason:?}");
        }
    }
    if qos == QoS::ExactlyOnce {
        let mut rels = BytesMut::new();
        let version = client
            .codec()
            .version()
            .expect("client codec has a version");
        for seq in 0..BURST {
            encode(Packet::PubRel(Ack::new(packet_id(seq))), version, &mut rels);
        }
        client
            .get_mut()
            .write_all(&rels)
            .await
            .expect("write PUBRELs");
    }
    let (mut pong, mut comps) = (false, 0);
    while !pong || (qos == QoS::ExactlyOnce && comps < BURST) {
        match next(client, "PINGRESP or PUBCOMP").await {
            Packet::PingResp if !pong => pong = true,
            Packet::PubComp(ack) if qos == QoS::ExactlyOnce => {
                assert_eq!(ack.packet_id, packet_id(comps), "PUBCOMPs out of order");
                comps += 1;
            }
            other => panic!("expected PINGRESP or PUBCOMP, got {other:?}"),
        }
    }
}

/// Receives `BURST` messages, completing each QoS handshake, and returns their sequence
/// numbers in arrival order.
async fn receive_all(mut sub: TestClient) -> Vec<u32> {
    let mut seen = Vec::with_capacity(BURST as usize);
    while seen.len() < BURST as usize {
        let publish = match sub.recv().await {
            Some(Packet::Publish(publish)) => publish,
            Some(Packet::PubRel(rel)) => {
                sub.send(Packet::PubComp(Ack::new(rel.packet_id))).await;
                continue;
            }
            other => panic!(
                "subscriber: expected PUBLISH after {} messages, got {other:?}",
                seen.len()
            ),
        };
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => sub.send(Packet::PubAck(Ack::new(publish.packet_id))).await,
            QoS::ExactlyOnce => sub.send(Packet::PubRec(Ack::new(publish.packet_id))).await,
        }
        let seq: [u8; 4] = publish.payload[..]
            .try_into()
            .expect("a 4-byte sequence number");
        seen.push(u32::from_be_bytes(seq));
    }
    seen
}

async fn burst_is_acknowledged_and_delivered_in_order(version: ProtocolVersion, qos: QoS) {
    // A queue deep enough for the whole burst: QoS 0 messages may be dropped (counted) when
    // a subscriber's queue is full, and a QoS 1/2 PUBLISH at the admission depth waits (its
    // PINGREQ then answered ahead of it); this test is about framing, not those rules.
    // Likewise room for the whole burst of unreleased QoS 2 messages (Receive Maximum).
    let config = BrokerConfig {
        max_queued_messages: 2 * BURST as usize,
        admission_depth: 2 * BURST as usize,
        receive_maximum: 2 * BURST as u16,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let tag = format!("{}-{}", version.level(), qos as u8);
    let topic = format!("dev/burst/{tag}");
    let mut sub = TestClient::connect(broker.addr, version, &format!("dev-bsub-{tag}"), None).await;
    sub.subscribe(&topic, qos).await;
    let receiving = tokio::spawn(receive_all(sub));

    let mut stream = TcpStream::connect(broker.addr).await.expect("connect");
    let bytes = burst_bytes(version, &format!("dev-bpub-{tag}"), &topic, qos);
    stream
        .write_all(&bytes)
        .await
        .expect("one write of the whole burst");
    let mut publisher = Framed::new(stream, MqttCodec::client(version, CodecLimits::default()));
    match next(&mut publisher, "CONNACK").await {
        Packet::ConnAck(ack) => assert_eq!(ack.code, 0, "{ack:?}"),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    expect_acknowledged(&mut publisher, qos).await;
    let seen = tokio::time::timeout(4 * STEP, receiving)
        .await
        .expect("every message delivered in time")
        .expect("the subscriber task");
    let expected: Vec<u32> = (0..BURST).collect();
    assert_eq!(
        seen, expected,
        "{version:?} QoS {qos:?}: delivered out of order or not at all"
    );
    let _ = publisher.close().await;
    broker.stop().await;
}

#[tokio::test]
async fn a_qos0_burst_of_1000_is_delivered_in_order_v311() {
    burst_is_acknowledged_and_delivered_in_order(ProtocolVersion::V311, QoS::AtMostOnce).await;
}

#[tokio::test]
async fn a_qos1_burst_of_1000_is_acknowledged_and_delivered_in_order_v311() {
    burst_is_acknowledged_and_delivered_in_order(ProtocolVersion::V311, QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn a_qos2_burst_of_1000_is_acknowledged_and_delivered_in_order_v311() {
    burst_is_acknowledged_and_delivered_in_order(ProtocolVersion::V311, QoS::ExactlyOnce).await;
}

#[tokio::test]
async fn a_qos0_burst_of_1000_is_delivered_in_order_v5() {
    burst_is_acknowledged_and_delivered_in_order(ProtocolVersion::V5, QoS::AtMostOnce).await;
}

#[tokio::test]
async fn a_qos1_burst_of_1000_is_acknowledged_and_delivered_in_order_v5() {
    burst_is_acknowledged_and_delivered_in_order(ProtocolVersion::V5, QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn a_qos2_burst_of_1000_is_acknowledged_and_delivered_in_order_v5() {
    burst_is_acknowledged_and_delivered_in_order(ProtocolVersion::V5, QoS::ExactlyOnce).await;
}
