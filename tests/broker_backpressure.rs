//! Back-pressure instead of loss: a QoS 1/2 PUBLISH is acknowledged only once every
//! matching subscriber queue has taken it. An online queue at the admission depth (a full
//! one when the depth is the queue bound) makes its publisher wait
//! (other clients keep flowing) and, past `queue_full_timeout`, refuses (5.0: 0x97; 3.1.1:
//! the publisher is disconnected, unacknowledged); a subscriber whose full queue makes no
//! progress is disconnected. An *offline* session whose full queue a message would overflow
//! is ended — its messages and subscriptions discarded, counted, its client told session
//! present 0 on return — and the message goes to everyone else: an absent subscriber never
//! blocks or disconnects a publisher. QoS 0 that meets a full queue is dropped and counted. In
//! every case, each message a publisher saw acknowledged is delivered to every session that
//! still exists.

use crate::broker_harness::*;
use std::time::Duration;
use topicguard::broker::BrokerConfig;
use topicguard::broker::observe::Metrics;
use topicguard::mqtt::codec::{Connect, Packet, ProtocolVersion, Publish, QoS, ReasonCode};

use ProtocolVersion::{V5, V311};

/// The value of one counter line (`name value`) in the metrics rendering.
fn counter(metrics: &Metrics, line: &str) -> u64 {
    let text = metrics.render();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no `{line}` in\n{text}"))
}

/// Reads PUBACKs until none comes for `quiet`; returns (packet id, reason) in order.
async fn acks_until_quiet(client: &mut TestClient, quiet: Duration) -> Vec<(u16, ReasonCode)> {
    let mut acks = Vec::new();
    loop {
        match client.next_within(quiet).await {
            Next::Packet(Packet::PubAck(ack)) => acks.push((ack.packet_id, ack.reason)),
            Next::Quiet => return acks,
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
}

/// Reads exactly `count` PUBACKs (each within `STEP`).
async fn acks(client: &mut TestClient, count: usize) -> Vec<(u16, ReasonCode)> {
    let mut acks = Vec::new();
    while acks.len() < count {
        match client.next_within(STEP).await {
            Next::Packet(Packet::PubAck(ack)) => acks.push((ack.packet_id, ack.reason)),
            other => panic!(
                "expected PUBACK {} of {count}, got {other:?}",
                acks.len() + 1
            ),
        }
    }
    acks
}

/// The next PUBLISH, not acknowledged.
async fn publish_of(client: &mut TestClient) -> Publish {
    match client.next_within(STEP).await {
        Next::Packet(Packet::Publish(publish)) => publish,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// A CONNECT asking for a session that outlives the connection.
fn persistent(version: ProtocolVersion, client_id: &str, clean_start: bool) -> Connect {
    let mut connect = connect_packet(version, client_id, None);
    connect.clean_start = clean_start;
    if version == V5 {
        connect.properties.session_expiry_interval = Some(300);
    }
    connect
}

/// Leaves with DISCONNECT and waits until the broker closed the connection.
async fn leave(mut client: TestClient) {
    let disconnect = topicguard::mqtt::codec::Disconnect::new(ReasonCode::SUCCESS);
    client.send(Packet::Disconnect(disconnect)).await;
    assert_eq!(client.expect_closed().await, None);
}

/// Receives `count` messages, acknowledging each; returns their one-byte payloads.
async fn receive(client: &mut TestClient, count: usize) -> Vec<u8> {
    let mut got = Vec::new();
    for _ in 0..count {
        got.push(client.expect_publish().await.payload[0]);
    }
    got
}

#[tokio::test]
async fn a_full_queue_makes_a_qos1_publisher_wait_instead_of_dropping() {
    let config = BrokerConfig {
        max_inflight: 1,
        max_queued_messages: 3,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let mut sub = TestClient::connect(broker.addr, V5, "dev-slow", None).await;
    sub.subscribe("dev/q", QoS::AtLeastOnce).await;
    let mut publisher = TestClient::connect(broker.addr, V5, "dev-fast", None).await;
    for n in 0..10u8 {
        publisher
            .publish_no_wait("dev/q", &[n], QoS::AtLeastOnce)
            .await;
    }
    let first = acks_until_quiet(&mut publisher, Duration::from_millis(300)).await;
    assert_eq!(
        first,
        (1..=4)
            .map(|id| (id, ReasonCode::SUCCESS))
            .collect::<Vec<_>>(),
        "one in flight and three queued are acknowledged; the rest wait unacknowledged"
    );
    let got = receive(&mut sub, 10).await;
    assert_eq!(
        got,
        (0..10).collect::<Vec<u8>>(),
        "nothing dropped, in order"
    );
    let rest = acks(&mut publisher, 6).await;
    assert_eq!(
        rest,
        (5..=10)
            .map(|id| (id, ReasonCode::SUCCESS))
            .collect::<Vec<_>>()
    );
    assert_eq!(sub.recv_within(Duration::from_millis(200)).await, None);
    broker.stop().await;
}

#[tokio::test]
async fn a_slow_subscriber_makes_a_qos1_publisher_wait_at_the_admission_depth() {
    let config = BrokerConfig {
        max_inflight: 1,
        admission_depth: 4,
        ..test_config()
    };
    assert_eq!(config.max_queued_messages, 1000, "far above the depth");
    let broker = TestBroker::with_config(config).await;
    let mut sub = TestClient::connect(broker.addr, V5, "dev-deep", None).await;
    sub.subscribe("dev/deep", QoS::AtLeastOnce).await;
    let mut publisher = TestClient::connect(broker.addr, V5, "dev-topdeep", None).await;
    for n in 0..40u8 {
        publisher
            .publish_no_wait("dev/deep", &[n], QoS::AtLeastOnce)
            .await;
    }
    let first = acks_until_quiet(&mut publisher, Duration::from_millis(300)).await;
    assert_eq!(
        first,
        (1..=5)
            .map(|id| (id, ReasonCode::SUCCESS))
            .collect::<Vec<_>>(),
        "one in flight and four queued (the admission depth) are acknowledged; the rest wait"
    );
    assert_eq!(
        receive(&mut sub, 40).await,
        (0..40).collect::<Vec<u8>>(),
        "every message, acknowledged or waiting, delivered in order"
    );
    let rest = acks(&mut publisher, 35).await;
    assert_eq!(
        rest,
        (6..=40)
            .map(|id| (id, ReasonCode::SUCCESS))
            .collect::<Vec<_>>()
    );
    assert_eq!(sub.recv_within(Duration::from_millis(200)).await, None);
    broker.stop().await;
}

#[tokio::test]
async fn qos0_is_dropped_at_the_queue_bound_not_at_the_admission_depth() {
    let config = BrokerConfig {
        max_inflight: 1,
        max_queued_messages: 6,
        admission_depth: 2,
        ..test_config()
    };
    let metrics = config.observer.metrics().clone();
    let broker = TestBroker::with_config(config).await;
    let mut sub = TestClient::connect(broker.addr, V5, "dev-q0deep", None).await;
    sub.subscribe("dev/q0deep", QoS::AtLeastOnce).await;
    let mut publisher = TestClient::connect(broker.addr, V5, "dev-q0dpub", None).await;
    for n in 0..3u8 {
        publisher
            .publish_no_wait("dev/q0deep", &[n], QoS::AtLeastOnce)
            .await;
    }
    // One in flight, two queued: the queue is at the admission depth.
    assert_eq!(acks(&mut publisher, 3).await.len(), 3);
    // QoS 0 neither waits nor is dropped there: it fills the queue to its bound (6), and
    // only the one past it is dropped.
    for n in 3..8u8 {
        publisher
            .publish_no_wait("dev/q0deep", &[n], QoS::AtMostOnce)
            .await;
    }
    let dropped = "topicguard_messages_dropped_total{reason=\"queue_full\"}";
    let deadline = tokio::time::Instant::now() + STEP;
    while counter(&metrics, dropped) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counter(&metrics, dropped), 1);
    assert_eq!(counter(&metrics, "topicguard_publishes_waited_total"), 0);
    assert_eq!(receive(&mut sub, 7).await, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(sub.recv_within(Duration::from_millis(200)).await, None);
    broker.stop().await;
}

#[tokio::test]
async fn an_offline_session_keeps_its_queue_bound_not_the_admission_depth() {
    let config = BrokerConfig {
        max_queued_messages: 5,
        admission_depth: 2,
        ..test_config()
    };
    let metrics = config.observer.metrics().clone();
    let broker = TestBroker::with_config(config).await;
    let (mut away, _) = TestClient::open(broker.addr, persistent(V5, "dev-offdeep", true)).await;
    away.subscribe("dev/offdeep", QoS::AtLeastOnce).await;
    leave(away).await;
    let mut publisher = TestClient::connect(broker.addr, V311, "dev-tooffdeep", None).await;
    for n in 0..5u8 {
        // Each acknowledged within STEP: an offline session never makes a publisher wait.
        let reason = publisher
            .publish("dev/offdeep", &[n], QoS::AtLeastOnce, false)
            .await;
        assert_eq!(reason, ReasonCode::SUCCESS);
    }
    assert_eq!(sessions_ended(&metrics), 0, "five fit its bound");
    assert_eq!(counter(&metrics, "topicguard_publishes_waited_total"), 0);
    let (mut back, ack) = TestClient::open(broker.addr, persistent(V5, "dev-offdeep", false)).await;
    assert!(ack.session_present);
    assert_eq!(receive(&mut back, 5).await, [0, 1, 2, 3, 4]);
    broker.stop().await;
}

#[tokio::test]
async fn qos0_meeting_a_full_queue_is_dropped_and_counted_without_waiting() {
    let config = BrokerConfig {
        max_inflight: 1,
        max_queued_messages: 3,
        ..test_config()
    };
    let metrics = config.observer.metrics().clone();
    let broker = TestBroker::with_config(config).await;
    let mut sub = TestClient::connect(broker.addr, V5, "dev-q0sub", None).await;
    sub.subscribe("dev/q0", QoS::AtLeastOnce).await;
    let mut publisher = TestClient::connect(broker.addr, V5, "dev-q0pub", None).await;
    for n in 0..4u8 {
        publisher
            .publish_no_wait("dev/q0", &[n], QoS::AtLeastOnce)
            .await;
    }
    assert_eq!(acks(&mut publisher, 4).await.len(), 4);
    // The queue is full: QoS 0 is dropped at once, and counted.
    for n in 4..6u8 {
        publisher
            .publish_no_wait("dev/q0", &[n], QoS::AtMostOnce)
            .await;
    }
    // A QoS 1 message behind them waits for room.
    publisher
        .publish_no_wait("dev/q0", &[6], QoS::AtLeastOnce)
        .await;
    assert!(
        acks_until_quiet(&mut publisher, Duration::from_millis(300))
            .await
            .is_empty()
    );
    let dropped = "topicguard_messages_dropped_total{reason=\"queue_full\"}";
    assert_eq!(counter(&metrics, dropped), 2);
    assert_eq!(counter(&metrics, "topicguard_publishes_waited_total"), 1);
    assert_eq!(receive(&mut sub, 5).await, [0, 1, 2, 3, 6]);
    assert_eq!(acks(&mut publisher, 1).await, [(5, ReasonCode::SUCCESS)]);
    broker.stop().await;
}

/// The value of `topicguard_sessions_ended_total{reason="offline_queue_full"}`.
fn sessions_ended(metrics: &Metrics) -> u64 {
    counter(
        metrics,
        "topicguard_sessions_ended_total{reason=\"offline_queue_full\"}",
    )
}

/// Receives (acknowledging) until `count` messages came; returns their four-byte payloads.
fn receive_all(mut client: TestClient, count: u32) -> tokio::task::JoinHandle<Vec<u32>> {
    tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..count {
            let payload = client.expect_publish().await.payload;
            got.push(u32::from_be_bytes(payload[..4].try_into().unwrap()));
        }
        got
    })
}

#[tokio::test]
async fn a_stalled_subscriber_is_disconnected_and_its_offline_full_queue_then_ends_its_session() {
    let config = BrokerConfig {
        max_inflight: 2,
        max_queued_messages: 5,
        stalled_subscriber_timeout: Duration::from_millis(400),
        ..test_config()
    };
    let metrics = config.observer.metrics().clone();
    let broker = TestBroker::with_config(config).await;
    let (mut stuck, _) = TestClient::open(broker.addr, persistent(V5, "dev-stuck", true)).await;
    stuck.subscribe("dev/stuck", QoS::AtLeastOnce).await;
    let mut publisher = TestClient::connect(broker.addr, V5, "dev-pstuck", None).await;
    for n in 0..20u8 {
        publisher
            .publish_no_wait("dev/stuck", &[n], QoS::AtLeastOnce)
            .await;
    }
    // While that publisher waits, a pair not sharing the subscriber keeps flowing.
    let mut other_sub = TestClient::connect(broker.addr, V5, "dev-osub", None).await;
    other_sub.subscribe("dev/other", QoS::AtLeastOnce).await;
    let mut other_pub = TestClient::connect(broker.addr, V311, "dev-opub", None).await;
    for n in 0..20u8 {
        let reason = other_pub
            .publish("dev/other", &[n], QoS::AtLeastOnce, false)
            .await;
        assert_eq!(reason, ReasonCode::SUCCESS);
        assert_eq!(other_sub.expect_publish().await.payload[0], n);
    }
    // The stalled subscriber reads its two in-flight deliveries, never acknowledges them,
    // and is disconnected with Quota exceeded.
    assert_eq!(publish_of(&mut stuck).await.payload[0], 0);
    assert_eq!(publish_of(&mut stuck).await.payload[0], 1);
    assert_eq!(
        stuck.expect_closed().await,
        Some(ReasonCode::QUOTA_EXCEEDED)
    );
    // The waiting message then finds the session offline with a full queue: the session
    // ends and every message is accepted; nothing is refused.
    let answers = acks(&mut publisher, 20).await;
    assert!(
        answers
            .iter()
            .all(|(_, reason)| *reason == ReasonCode::SUCCESS),
        "{answers:?}"
    );
    assert_eq!(counter(&metrics, "topicguard_subscribers_stalled_total"), 1);
    assert_eq!(counter(&metrics, "topicguard_publishes_refused_total"), 0);
    assert_eq!(sessions_ended(&metrics), 1);
    // Back again: no session, nothing owed, no subscription left.
    let (mut back, ack) = TestClient::open(broker.addr, persistent(V5, "dev-stuck", false)).await;
    assert!(!ack.session_present, "the session was ended");
    assert_eq!(back.recv_within(Duration::from_millis(200)).await, None);
    let reason = publisher
        .publish("dev/stuck", &[99], QoS::AtLeastOnce, false)
        .await;
    assert_eq!(reason, ReasonCode::SUCCESS);
    assert_eq!(back.recv_within(Duration::from_millis(200)).await, None);
    broker.stop().await;
}

#[tokio::test]
async fn an_offline_full_queue_never_blocks_a_311_publisher_and_ends_its_session() {
    let config = BrokerConfig {
        max_queued_messages: 3,
        ..test_config()
    };
    let metrics = config.observer.metrics().clone();
    let broker = TestBroker::with_config(config).await;
    // 3.1.1 has no session expiry: clean session false is what makes it persistent.
    let (mut away, _) = TestClient::open(broker.addr, persistent(V311, "dev-away", false)).await;
    away.subscribe("dev/away", QoS::AtLeastOnce).await;
    leave(away).await;
    let mut present = TestClient::connect(broker.addr, V311, "dev-present", None).await;
    present.subscribe("dev/away", QoS::AtLeastOnce).await;
    let present = receive_all(present, 10);
    let mut publisher = TestClient::connect(broker.addr, V311, "dev-toaway", None).await;
    for n in 0..10u32 {
        // Each is acknowledged within STEP: the absent subscriber never holds it up, and
        // the connection is never closed.
        let reason = publisher
            .publish("dev/away", &n.to_be_bytes(), QoS::AtLeastOnce, false)
            .await;
        assert_eq!(reason, ReasonCode::SUCCESS);
    }
    assert_eq!(present.await.unwrap(), (0..10).collect::<Vec<u32>>());
    assert_eq!(
        sessions_ended(&metrics),
        1,
        "ended once, at the fourth message"
    );
    assert_eq!(counter(&metrics, "topicguard_publishes_refused_total"), 0);
    let (mut back, ack) = TestClient::open(broker.addr, persistent(V311, "dev-away", false)).await;
    assert!(!ack.session_present, "the session was ended");
    assert_eq!(back.recv_within(Duration::from_millis(200)).await, None);
    broker.stop().await;
}

#[tokio::test]
async fn an_offline_session_takes_up_to_its_bound_then_ends_and_the_rest_flows_to_everyone_else() {
    let config = test_config();
    let metrics = config.observer.metrics().clone();
    let broker = TestBroker::with_config(config).await;
    let (mut away, _) = TestClient::open(broker.addr, persistent(V5, "dev-off", true)).await;
    away.subscribe("dev/off", QoS::AtLeastOnce).await;
    leave(away).await;
    let total = 1_100u32;
    let mut present = TestClient::connect(broker.addr, V5, "dev-onl", None).await;
    present.subscribe("dev/off", QoS::AtLeastOnce).await;
    let present = receive_all(present, total);
    // A 5.0 publisher keeping 32 (the broker's Receive Maximum) in flight.
    let mut publisher = TestClient::connect(broker.addr, V5, "dev-tooff", None).await;
    let (mut sent, mut answers) = (0u32, Vec::new());
    while answers.len() < total as usize {
        while sent < total && (sent - answers.len() as u32) < 32 {
            publisher
                .publish_no_wait("dev/off", &sent.to_be_bytes(), QoS::AtLeastOnce)
                .await;
            sent += 1;
        }
        answers.extend(acks(&mut publisher, 1).await);
    }
    assert!(
        answers.iter().all(|(_, r)| *r == ReasonCode::SUCCESS),
        "every message accepted"
    );
    assert_eq!(
        present.await.unwrap(),
        (0..total).collect::<Vec<u32>>(),
        "the other subscriber gets every message, in order"
    );
    assert_eq!(sessions_ended(&metrics), 1);
    let (mut back, ack) = TestClient::open(broker.addr, persistent(V5, "dev-off", false)).await;
    assert!(
        !ack.session_present,
        "its queue overflowed: the session was ended"
    );
    assert_eq!(back.recv_within(Duration::from_millis(200)).await, None);
    broker.stop().await;
}

#[tokio::test]
async fn an_online_full_queue_still_refuses_after_the_timeout() {
    let config = BrokerConfig {
        max_inflight: 1,
        max_queued_messages: 1,
        queue_full_timeout: Duration::from_millis(300),
        stalled_subscriber_timeout: Duration::from_secs(30),
        ..test_config()
    };
    let metrics = config.observer.metrics().clone();
    let broker = TestBroker::with_config(config).await;
    let mut slow = TestClient::connect(broker.addr, V5, "dev-slowon", None).await;
    slow.subscribe("dev/slowon", QoS::AtLeastOnce).await;
    // One in flight, one queued: the third waits, then is refused (5.0: 0x97).
    let mut v5 = TestClient::connect(broker.addr, V5, "dev-v5pub", None).await;
    for n in 0..3u8 {
        v5.publish_no_wait("dev/slowon", &[n], QoS::AtLeastOnce)
            .await;
    }
    let answers = acks(&mut v5, 3).await;
    assert_eq!(
        answers,
        [
            (1, ReasonCode::SUCCESS),
            (2, ReasonCode::SUCCESS),
            (3, ReasonCode::QUOTA_EXCEEDED)
        ]
    );
    // 3.1.1 cannot be told no: disconnected, unacknowledged.
    let mut v311 = TestClient::connect(broker.addr, V311, "dev-311pub", None).await;
    v311.publish_no_wait("dev/slowon", &[3], QoS::AtLeastOnce)
        .await;
    assert!(matches!(v311.next_within(STEP).await, Next::Closed));
    assert_eq!(counter(&metrics, "topicguard_publishes_refused_total"), 2);
    assert_eq!(
        sessions_ended(&metrics),
        0,
        "an online session is never ended"
    );
    assert_eq!(publish_of(&mut slow).await.payload[0], 0);
    broker.stop().await;
}

#[tokio::test]
async fn a_shared_group_delivers_past_a_member_whose_queue_is_full() {
    let config = BrokerConfig {
        max_inflight: 1,
        max_queued_messages: 2,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let mut stuck = TestClient::connect(broker.addr, V5, "dev-gstuck", None).await;
    stuck.subscribe("$share/g/dev/sh", QoS::AtLeastOnce).await;
    let mut worker = TestClient::connect(broker.addr, V5, "dev-gworker", None).await;
    worker.subscribe("$share/g/dev/sh", QoS::AtLeastOnce).await;
    let mut publisher = TestClient::connect(broker.addr, V5, "dev-gpub", None).await;
    let receiving = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(Packet::Publish(p)) = worker.recv_within(Duration::from_millis(500)).await {
            worker
                .send(Packet::PubAck(topicguard::mqtt::codec::Ack::new(
                    p.packet_id,
                )))
                .await;
            got.push(p.payload[0]);
        }
        got
    });
    for n in 0..20u8 {
        // Each is acknowledged within STEP: the stuck member never holds the group up.
        let reason = publisher
            .publish("dev/sh", &[n], QoS::AtLeastOnce, false)
            .await;
        assert_eq!(reason, ReasonCode::SUCCESS);
    }
    let mut to_stuck = Vec::new();
    while let Next::Packet(Packet::Publish(p)) = stuck.next_within(Duration::from_millis(200)).await
    {
        to_stuck.push(p.payload[0]);
    }
    let to_worker = receiving.await.unwrap();
    assert!(
        to_stuck.len() <= 1,
        "in flight to the stuck member: {to_stuck:?}"
    );
    assert!(!to_worker.is_empty());
    let mut all: Vec<u8> = to_stuck.into_iter().chain(to_worker).collect();
    let queued_for_stuck = 20 - all.len();
    assert!(
        queued_for_stuck <= 2,
        "at most its queue bound waits for the stuck member"
    );
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len() + queued_for_stuck, 20);
    broker.stop().await;
}
