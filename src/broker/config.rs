//! Broker limits, each with a safe default and the rule applied when it is exceeded.
//!
//! Every resource a client can make the broker hold is bounded here, and every overflow
//! has one stated outcome (a reason code and a disconnect, a refusal, a publisher made to
//! wait, or a QoS 0 message dropped and counted) — never growing memory, and never
//! dropping a QoS 1/2 message once its publisher was told it was accepted. No setting here
//! can make the broker drop an acknowledged message: the knobs only choose how long to
//! wait before refusing or disconnecting. This module must never read files or the
//! environment: the CLI builds a [`BrokerConfig`] from `topicguard.toml`.

use crate::broker::observe::Observer;
use crate::mqtt::codec::CodecLimits;
use std::time::Duration;

/// The broker's limits. `BrokerConfig::default()` is what `topicguard serve` uses.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Largest packet accepted, fixed header included. Default 128 KiB of payload plus
    /// 4 KiB for topic and properties. Over it: DISCONNECT 0x95 (5.0) or close (3.1.1),
    /// decided from the fixed header before the body is buffered.
    pub max_packet_size: usize,
    /// User properties per property block. Over it: DISCONNECT 0x97 / close.
    pub max_user_properties: usize,
    /// Time from accepting a TCP connection to a complete CONNECT. Over it: close.
    pub connect_timeout: Duration,
    /// Largest keep-alive accepted, in seconds. A 5.0 client asking for more (or for 0
    /// when `allow_zero_keep_alive` is false) gets this value as Server Keep Alive; a 3.1.1
    /// client gets CONNACK 0x02 (as mosquitto does), since 3.1.1 cannot say otherwise.
    pub max_keep_alive: u16,
    /// Whether keep-alive 0 (the client sends nothing while idle and the broker never
    /// times it out) is accepted. On by default: it is legal MQTT and common in standard
    /// clients. Off, a 5.0 client asking for 0 is told `max_keep_alive` and a 3.1.1 client
    /// is refused (0x02). A connection that dies silently is then found only by TCP.
    pub allow_zero_keep_alive: bool,
    /// Outgoing QoS 1/2 messages awaiting acknowledgement per client (further capped by
    /// the client's Receive Maximum). Beyond it, messages wait in the queue.
    pub max_inflight: u16,
    /// Incoming QoS 2 messages awaiting PUBREL per client; announced as Receive Maximum.
    /// Over it: DISCONNECT 0x93 (5.0) or close (3.1.1).
    pub receive_maximum: u16,
    /// Messages queued per session (online or offline). A client's QoS 1/2 PUBLISH is
    /// acknowledged only once every matching queue has taken it; while an online session's
    /// queue is full, the PUBLISH waits unacknowledged and reading from its publisher
    /// pauses (after a few packets), other clients unaffected; past `queue_full_timeout`
    /// it is refused, delivered to nobody: 5.0 gets PUBACK/PUBREC 0x97 (Quota exceeded),
    /// 3.1.1, which has no negative acknowledgement, is disconnected with it
    /// unacknowledged. An *offline* session whose full queue a QoS 1/2 message would
    /// overflow is ended instead — its queued messages and subscriptions discarded,
    /// counted in `topicguard_sessions_ended_total{reason="offline_queue_full"}`, its
    /// client told session present 0 on return — and the message goes to everyone else:
    /// one absent subscriber never blocks a shared publisher. QoS 0 deliveries and the
    /// broker's own (retained messages on SUBSCRIBE, wills, shadow responses) are dropped
    /// and counted when the queue is full; QoS 0 is not queued for offline sessions.
    pub max_queued_messages: usize,
    /// Messages an *online* session may hold queued before a client's QoS 1/2 PUBLISH to
    /// it waits (the back-pressure above, applied early); capped by `max_queued_messages`.
    /// A shallow queue keeps latency low: a message waits behind at most this many others
    /// plus the in-flight window, instead of behind a full queue. Publishers are woken once
    /// the queue is down to three quarters of it, and a subscriber whose queue stays at it
    /// with nothing taken counts as stalled. Offline sessions keep `max_queued_messages`
    /// and its rule; QoS 0 and the broker's own messages are dropped only at
    /// `max_queued_messages`. Default 64: one delivery batch (measured in
    /// docs/performance-broker.md: no throughput lost against 128 or 1,000, a lower p99).
    pub admission_depth: usize,
    /// How long a QoS 1/2 PUBLISH may wait for room in an online subscriber's queue (at
    /// `admission_depth`).
    /// Over it: refused as above.
    pub queue_full_timeout: Duration,
    /// How long a subscriber's queue may stay at `admission_depth` (where publishers wait)
    /// with nothing taken from it (no
    /// acknowledgement freeing its in-flight window) before the subscriber is disconnected
    /// (5.0: DISCONNECT 0x97). Its session, if persistent, keeps every queued message.
    /// A subscriber that stops reading altogether is closed by `write_timeout` instead.
    pub stalled_subscriber_timeout: Duration,
    /// Levels in a topic or filter. Over it: PUBACK/PUBREC 0x90 or SUBACK 0x8F (5.0),
    /// silently dropped or SUBACK 0x80 (3.1.1).
    pub max_topic_levels: usize,
    /// Topic aliases a 5.0 client may define. Alias 0 or above: DISCONNECT 0x94.
    pub topic_alias_maximum: u16,
    /// Subscriptions per client. Over it: SUBACK 0x97 (5.0) / 0x80 (3.1.1) for that filter.
    pub max_subscriptions_per_client: usize,
    /// Concurrent connections. At the cap, new connections wait in the listen backlog.
    pub max_connections: usize,
    /// Retained topics. At the cap, a retained PUBLISH to a new topic is delivered but not
    /// retained, and a warning is logged.
    pub max_retained_messages: usize,
    /// Longest session expiry, in seconds; also the expiry of a 3.1.1 clean-session-false
    /// session. A 5.0 client asking for more is told this value in CONNACK.
    pub max_session_expiry: u32,
    /// How long a takeover waits for the old connection to close before taking its session.
    pub takeover_timeout: Duration,
    /// How long one write to a client may block before the connection is dropped.
    pub write_timeout: Duration,
    /// How long `serve` waits for connections to close after the shutdown signal.
    pub shutdown_grace: Duration,
    /// Where counters and (optionally) the JSON-lines decision log go; see `observe`.
    pub observer: Observer,
    /// FOR MEASUREMENT ONLY (`scripts/bench-broker`): deliver without the per-delivery
    /// RECEIVE check, to measure what that check costs. Never set in a real deployment:
    /// it lets clients receive topics the policy denies them.
    pub skip_receive_checks_for_measurement: bool,
    /// Where device shadows are persisted (one JSON file per thing) when there is no
    /// `store`; `None` keeps them in memory only.
    pub shadow_dir: Option<std::path::PathBuf>,
    /// The durable store (`serve --data-dir`): persistent sessions, their queued messages,
    /// retained messages and shadows survive a restart, and an acknowledgement waits until
    /// what it acknowledges is on disk (see `broker::store`). `None`: memory only.
    pub store: Option<std::sync::Arc<crate::broker::store::Store>>,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            max_packet_size: 128 * 1024 + 4096,
            max_user_properties: 32,
            connect_timeout: Duration::from_secs(10),
            max_keep_alive: 1200,
            allow_zero_keep_alive: true,
            max_inflight: 32,
            receive_maximum: 32,
            max_queued_messages: 1000,
            admission_depth: 64,
            queue_full_timeout: Duration::from_secs(60),
            stalled_subscriber_timeout: Duration::from_secs(30),
            max_topic_levels: 32,
            topic_alias_maximum: 16,
            max_subscriptions_per_client: 100,
            max_connections: 10_000,
            max_retained_messages: 10_000,
            max_session_expiry: 24 * 60 * 60,
            takeover_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            observer: Observer::new(),
            skip_receive_checks_for_measurement: false,
            shadow_dir: None,
            store: None,
        }
    }
}

impl BrokerConfig {
    pub(crate) fn codec_limits(&self) -> CodecLimits {
        CodecLimits {
            max_packet_size: self.max_packet_size,
            max_user_properties: self.max_user_properties,
        }
    }

    /// The queue depth at which a QoS 1/2 PUBLISH waits for an online session:
    /// `admission_depth`, at least 1 and at most `max_queued_messages`.
    pub fn admission_depth(&self) -> usize {
        let max = self.max_queued_messages.max(1);
        self.admission_depth.clamp(1, max)
    }

    /// Levels in `topic` (`a/b` has 2), counted without allocating.
    pub fn topic_levels(topic: &str) -> usize {
        topic.bytes().filter(|b| *b == b'/').count() + 1
    }

    /// True when a topic or filter has more levels than allowed.
    pub fn too_deep(&self, topic: &str) -> bool {
        BrokerConfig::topic_levels(topic) > self.max_topic_levels
    }
}
