//! What travels from a publisher to subscribers: an immutable [`Message`] shared by `Arc`,
//! and a per-subscriber [`Delivery`] (granted QoS, retain flag, subscription ids).
//!
//! Only the 5.0 properties the spec says to forward are kept (payload format, content
//! type, response topic, correlation data, user properties); the message expiry is kept as
//! a deadline and re-expressed as the remaining seconds when sent. This module must never
//! decide who receives a message.

use crate::mqtt::codec::{Properties, Publish, QoS};
use bytes::Bytes;
use smallvec::SmallVec;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A published message, as routed.
#[derive(Debug)]
pub struct Message {
    /// The topic name.
    pub topic: Arc<str>,
    /// The payload.
    pub payload: Bytes,
    /// The QoS it is delivered at (at most the subscription's).
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// Forwardable 5.0 properties (no alias, no subscription ids, no expiry).
    pub properties: Properties,
    /// When the message expires (5.0 message expiry), if ever.
    pub expires_at: Option<Instant>,
    /// The publishing client, for No Local.
    pub publisher: Option<Arc<str>>,
}

impl Message {
    /// Builds a message from a client's PUBLISH whose topic alias is already resolved.
    pub fn from_publish(publish: Publish, topic: Arc<str>, publisher: Arc<str>) -> Message {
        let expires_at = publish
            .properties
            .message_expiry_interval
            .map(|secs| Instant::now() + Duration::from_secs(u64::from(secs)));
        Message {
            topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: forwardable(publish.properties),
            expires_at,
            publisher: Some(publisher),
        }
    }

    /// True once the message expiry interval has passed.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The expiry interval left, in whole seconds rounded up.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        let left = self.expires_at?.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(u32::try_from(secs).unwrap_or(u32::MAX))
    }
}

/// Keeps the properties a server forwards to subscribers.
pub fn forwardable(p: Properties) -> Properties {
    Properties {
        payload_format_indicator: p.payload_format_indicator,
        content_type: p.content_type,
        response_topic: p.response_topic,
        correlation_data: p.correlation_data,
        user_properties: p.user_properties,
        ..Properties::default()
    }
}

/// One message on its way to one subscriber.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub(crate) message: Arc<Message>,
    /// min(message QoS, granted QoS).
    pub qos: QoS,
    /// The RETAIN flag to send.
    pub retain: bool,
    pub(crate) subscription_ids: SmallVec<[u32; 2]>,
    /// Its place in the session's queue (numbered when queued, from 1; 0 before): the key of
    /// its copy in the store when the session is persistent.
    pub seq: u64,
}

/// Where an outgoing QoS 1/2 message is in its handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// QoS 1 sent, waiting for PUBACK.
    AwaitAck,
    /// QoS 2 sent, waiting for PUBREC.
    AwaitRec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitComp,
}
