//! The last will: authorized at CONNECT, authorized again when it is sent.
//!
//! After a loss other than a clean DISCONNECT, the will is published — at once, or (5.0)
//! after its Will Delay Interval or when the session ends, whichever is first, and only
//! if the client has not reconnected meanwhile (MQTT-3.1.3-9). A pending will carries its
//! publisher — the connection's [`Authorizer`]: the principal and client id that registered
//! it — and the publish is decided again for that publisher with the current policy before
//! it is routed: a policy change since CONNECT discards it (logged). A retained will is
//! stored with its publisher like any retained message. This module must never publish a
//! will the policy does not allow.

use crate::broker::authorize::Authorizer;
use crate::broker::message::{Message, forwardable};
use crate::broker::session::SessionSlot;
use crate::broker::state::Broker;
use crate::decide::Request;
use crate::mqtt::codec::Will;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Publishes `will` now or after its delay.
pub(super) fn publish_after_loss(
    broker: &Arc<Broker>,
    slot: &Arc<SessionSlot>,
    authorizer: Authorizer,
    will: Will,
) {
    let (delay, expiry, generation) = {
        let state = slot.state();
        let delay = will.properties.will_delay_interval.unwrap_or(0);
        (delay, state.expiry, state.generation)
    };
    let wait = delay.min(expiry);
    if wait == 0 {
        publish(broker, authorizer, will, &slot.client_id);
        return;
    }
    let (broker, slot) = (broker.clone(), slot.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(u64::from(wait))) => {}
            _ = broker.shutdown.cancelled() => return,
        }
        if broker.generation(&slot) == generation {
            publish(&broker, authorizer, will, &slot.client_id);
        }
    });
}

fn publish(broker: &Broker, mut authorizer: Authorizer, will: Will, client: &Arc<str>) {
    let request = Request::Publish {
        topic: &will.topic,
        retain: will.retain,
    };
    if !authorizer.decide(request).is_allowed() {
        tracing::info!(
            target: "topicguard::deny", client = %client, topic = %will.topic,
            "will discarded: the current policy no longer lets its publisher publish it"
        );
        return;
    }
    let expires_at = will
        .properties
        .message_expiry_interval
        .map(|secs| Instant::now() + Duration::from_secs(u64::from(secs)));
    let message = Arc::new(Message {
        topic: will.topic.into(),
        payload: will.payload,
        qos: will.qos,
        retain: will.retain,
        properties: forwardable(will.properties),
        expires_at,
        publisher: Some(client.clone()),
    });
    if message.retain {
        broker.retain(&message, authorizer.publisher());
    }
    let offered = broker.publish(&message);
    tracing::debug!(client = %client, topic = %message.topic, offered, "published will");
}
