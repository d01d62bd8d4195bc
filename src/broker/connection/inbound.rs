//! Packets from the client after CONNECT: the PUBLISH and SUBSCRIBE authorization points,
//! the QoS handshakes, UNSUBSCRIBE, PINGREQ and DISCONNECT.
//!
//! PUBLISH: the topic alias is resolved first, the level cap applied, then the policy
//! decides the *resolved* topic with its retain flag. A denied QoS 1/2 publish gets
//! PUBACK/PUBREC 0x87 (5.0) or a plain acknowledgement (3.1.1, which cannot say no);
//! QoS 0 is dropped. An allowed message is offered to the broker and acknowledged only
//! once queued for every matching session, or made to wait ([`super::flow`]); while one
//! waits, later packets are held behind it in order. A QoS 2 message is routed on PUBLISH
//! and its id remembered until PUBREL; more than Receive Maximum unreleased ids is
//! DISCONNECT 0x93.
//! SUBSCRIBE: each filter is decided on its own (`$share/<g>/` is judged by the engine
//! without its prefix); a refused filter gets 0x80 (3.1.1) or 0x87/0x8F/0x97 (5.0) in its
//! SUBACK slot. Retained messages for granted filters are queued after the SUBACK and,
//! like every delivery, receive-checked when sent. This module must never route a
//! message or store a subscription the policy refused.

use super::{Connection, Exit};
use crate::broker::message::Stage;
use crate::broker::message::{Delivery, Message};
use crate::broker::router::Entry;
use crate::broker::session::{Enqueued, Offer, SessionState};
use crate::broker::store::{Op, Ticket, stage_byte};
use crate::decide::Request;
use crate::mqtt::codec::{
    Ack, Disconnect, Packet, ProtocolVersion, Publish, QoS, ReasonCode, RetainHandling, SubAck,
    Subscribe, SubscribeFilter, UnsubAck, Unsubscribe,
};
use crate::mqtt::topic::is_shared;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Handles one packet, or holds it behind a waiting PUBLISH. Replies are only queued
    /// (`feed`); the caller flushes them once the packets already read are handled
    /// (`Connection::on_frames`).
    pub(super) async fn handle(&mut self, packet: Packet) -> Result<(), Exit> {
        let Some(packet) = self.flow.hold(packet) else {
            return Ok(());
        };
        match packet {
            Packet::Publish(publish) => self.on_publish(publish).await,
            Packet::PubAck(ack) => {
                self.on_final_ack(ack.packet_id, Stage::AwaitAck);
                Ok(())
            }
            Packet::PubRec(ack) => self.on_pubrec(ack).await,
            Packet::PubRel(ack) => self.on_pubrel(ack).await,
            Packet::PubComp(ack) => {
                self.on_final_ack(ack.packet_id, Stage::AwaitComp);
                Ok(())
            }
            // Boxed: rare, and their state would otherwise size every connection's task.
            Packet::Subscribe(subscribe) => Box::pin(self.on_subscribe(subscribe)).await,
            Packet::Unsubscribe(unsubscribe) => Box::pin(self.on_unsubscribe(unsubscribe)).await,
            Packet::PingReq => self.reply(Packet::PingResp).await,
            Packet::Disconnect(disconnect) => Err(self.on_disconnect(disconnect)),
            Packet::Auth(_) => Err(Exit::protocol(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH received but no enhanced authentication was started",
            )),
            other => Err(Exit::protocol(
                ReasonCode::PROTOCOL_ERROR,
                format!("unexpected {} from a client", other.packet_type()),
            )),
        }
    }

    /// Resolves a 5.0 topic alias (MQTT-3.3.2-7..-12).
    fn resolve_topic(&mut self, publish: &Publish) -> Result<Arc<str>, Exit> {
        let Some(alias) = publish.properties.topic_alias else {
            return Ok(publish.topic.as_str().into());
        };
        if alias == 0 || alias > self.broker.config.topic_alias_maximum {
            return Err(Exit::protocol(
                ReasonCode::TOPIC_ALIAS_INVALID,
                format!(
                    "topic alias {alias} is outside 1..={}",
                    self.broker.config.topic_alias_maximum
                ),
            ));
        }
        if publish.topic.is_empty() {
            let defined = self.aliases.as_ref().and_then(|a| a.get(&alias));
            return defined.cloned().ok_or_else(|| {
                Exit::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    format!("topic alias {alias} was never defined"),
                )
            });
        }
        let topic: Arc<str> = publish.topic.as_str().into();
        let aliases = self.aliases.get_or_insert_with(Default::default);
        aliases.insert(alias, topic.clone());
        Ok(topic)
    }

    async fn on_publish(&mut self, publish: Publish) -> Result<(), Exit> {
        let topic = self.resolve_topic(&publish)?;
        let id = publish.packet_id;
        if publish.qos == QoS::ExactlyOnce {
            let (resent, full) = {
                let state = self.slot.state();
                let limit = usize::from(self.broker.config.receive_maximum.max(1));
                let resent = state.awaiting_release.contains(&id);
                (resent, !resent && state.awaiting_release.len() >= limit)
            };
            if resent {
                return self.reply(Packet::PubRec(Ack::new(id))).await;
            }
            if full {
                return Err(Exit::protocol(
                    ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                    "more unreleased QoS 2 messages than Receive Maximum",
                ));
            }
        }
        let qos = publish.qos;
        if self.broker.config.too_deep(&topic) {
            tracing::info!(target: "topicguard::deny", client = %self.client_id, topic = %topic, "publish refused: too many topic levels");
            return self.refuse(qos, id, ReasonCode::TOPIC_NAME_INVALID).await;
        }
        let request = Request::Publish {
            topic: &topic,
            retain: publish.retain,
        };
        if !self.authorizer.decide(request).is_allowed() {
            return self.refuse(qos, id, ReasonCode::NOT_AUTHORIZED).await;
        }
        let message = Arc::new(Message::from_publish(
            publish,
            topic,
            self.client_id.clone(),
        ));
        self.offer(message, qos, id, None).await
    }

    /// Acknowledges a refused publish without routing it: 5.0 hears `reason`, 3.1.1 (which
    /// cannot be told no) gets a plain acknowledgement.
    pub(super) async fn refuse(
        &mut self,
        qos: QoS,
        id: u16,
        reason: ReasonCode,
    ) -> Result<(), Exit> {
        let v5 = self.version == ProtocolVersion::V5;
        let ack = if v5 {
            Ack::with_reason(id, reason)
        } else {
            Ack::new(id)
        };
        match qos {
            QoS::AtMostOnce => Ok(()),
            QoS::AtLeastOnce => self.reply(Packet::PubAck(ack)).await,
            QoS::ExactlyOnce => {
                if !v5 {
                    self.slot.state().awaiting_release.insert(id);
                }
                self.reply(Packet::PubRec(ack)).await
            }
        }
    }

    fn on_final_ack(&mut self, id: u16, stage: Stage) {
        let mut state = self.slot.state();
        match state.find_outgoing(id, stage) {
            Some(index) => {
                if let Some(done) = state.outgoing.remove(index) {
                    self.forget_stored(&state, done.delivery.seq);
                }
            }
            None => {
                tracing::debug!(client = %self.client_id, id, "acknowledgement for an unknown packet id")
            }
        }
    }

    async fn on_pubrec(&mut self, ack: Ack) -> Result<(), Exit> {
        let id = ack.packet_id;
        let reply = {
            let mut state = self.slot.state();
            match state.find_outgoing(id, Stage::AwaitRec) {
                Some(index) if ack.reason.is_failure() => {
                    if let Some(done) = state.outgoing.remove(index) {
                        self.forget_stored(&state, done.delivery.seq);
                    }
                    None
                }
                Some(index) => {
                    state.outgoing[index].stage = Stage::AwaitComp;
                    let seq = state.outgoing[index].delivery.seq;
                    if let Some(store) = self.broker.store_for(&state) {
                        store.submit_one(Op::PutInflight {
                            client: self.slot.client_id.clone(),
                            seq,
                            packet_id: id,
                            stage: stage_byte(Stage::AwaitComp),
                        });
                    }
                    Some(Ack::new(id))
                }
                None if state.find_outgoing(id, Stage::AwaitComp).is_some() => Some(Ack::new(id)),
                None => Some(self.not_found(id)),
            }
        };
        match reply {
            Some(rel) => self.feed(Packet::PubRel(rel)).await,
            None => Ok(()),
        }
    }

    /// Releases an incoming QoS 2 id; PUBCOMP leaves once its removal is durable (a
    /// persistent session), so the id is never found stale after a restart and a new message
    /// reusing it mistaken for a resend.
    async fn on_pubrel(&mut self, ack: Ack) -> Result<(), Exit> {
        let id = ack.packet_id;
        let (known, ticket) = {
            let mut state = self.slot.state();
            let known = state.awaiting_release.remove(&id);
            let ticket = match self.broker.store_for(&state) {
                Some(store) if known => store.submit_one(Op::DeleteRelease {
                    client: self.slot.client_id.clone(),
                    packet_id: id,
                }),
                _ => Ticket::NONE,
            };
            (known, ticket)
        };
        let comp = if known {
            Ack::new(id)
        } else {
            self.not_found(id)
        };
        self.reply_after(ticket, Packet::PubComp(comp)).await
    }

    /// Deletes the store's copy of a delivery that is done with (acknowledged, refused,
    /// expired or not allowed), for a persistent session. Call with the state locked.
    pub(super) fn forget_stored(&self, state: &SessionState, seq: u64) {
        if let Some(store) = self.broker.store_for(state) {
            store.submit_one(Op::DeleteMessage {
                client: self.slot.client_id.clone(),
                seq,
            });
        }
    }

    fn not_found(&self, id: u16) -> Ack {
        match self.version {
            ProtocolVersion::V5 => Ack::with_reason(id, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND),
            ProtocolVersion::V311 => Ack::new(id),
        }
    }

    fn failure(&self, v5_reason: ReasonCode) -> ReasonCode {
        match self.version {
            ProtocolVersion::V5 => v5_reason,
            ProtocolVersion::V311 => ReasonCode::UNSPECIFIED_ERROR,
        }
    }

    async fn on_subscribe(&mut self, subscribe: Subscribe) -> Result<(), Exit> {
        let subscription_id = subscribe
            .properties
            .subscription_identifiers
            .first()
            .copied();
        let mut reasons = Vec::with_capacity(subscribe.filters.len());
        let mut retained_for = Vec::new();
        let mut ticket = Ticket::NONE;
        for filter in &subscribe.filters {
            let (reason, send_retained, durable) = self.subscribe_one(filter, subscription_id);
            if send_retained {
                retained_for.push(filter);
            }
            reasons.push(reason);
            ticket = ticket.max(durable);
        }
        let suback = SubAck {
            packet_id: subscribe.packet_id,
            reasons,
            properties: Default::default(),
        };
        self.reply_after(ticket, Packet::SubAck(suback)).await?;
        for filter in retained_for {
            self.queue_retained(filter, subscription_id);
        }
        Ok(())
    }

    /// Decides and stores one filter; returns its SUBACK code, whether retained messages
    /// are to be sent for it, and the ticket of its record in the store.
    fn subscribe_one(
        &mut self,
        filter: &SubscribeFilter,
        subscription_id: Option<u32>,
    ) -> (ReasonCode, bool, Ticket) {
        let text = filter.filter.as_str();
        if self.broker.config.too_deep(text) {
            tracing::info!(target: "topicguard::deny", client = %self.client_id, filter = text, "subscribe refused: too many topic levels");
            return (
                self.failure(ReasonCode::TOPIC_FILTER_INVALID),
                false,
                Ticket::NONE,
            );
        }
        let full = {
            let state = self.slot.state();
            !state.subscriptions.contains_key(text)
                && state.subscriptions.len() >= self.broker.config.max_subscriptions_per_client
        };
        if full {
            tracing::info!(target: "topicguard::deny", client = %self.client_id, filter = text, "subscribe refused: subscription limit reached");
            return (
                self.failure(ReasonCode::QUOTA_EXCEEDED),
                false,
                Ticket::NONE,
            );
        }
        if !self
            .authorizer
            .decide(Request::subscribe(text))
            .is_allowed()
        {
            return (
                self.failure(ReasonCode::NOT_AUTHORIZED),
                false,
                Ticket::NONE,
            );
        }
        let entry = Entry {
            options: filter.options,
            subscription_id,
        };
        let (replaced, ticket) = self.broker.subscribe(&self.slot, text, entry);
        let shared = is_shared(text);
        let send_retained = !shared
            && match filter.options.retain_handling {
                RetainHandling::OnSubscribe => true,
                RetainHandling::OnNewSubscription => !replaced,
                RetainHandling::Never => false,
            };
        (ReasonCode(filter.options.qos as u8), send_retained, ticket)
    }

    /// Queues the retained messages for a new subscription, as far as the queue has room
    /// (beyond it they are dropped and counted: they are not new publications).
    fn queue_retained(&mut self, filter: &SubscribeFilter, subscription_id: Option<u32>) {
        let max = self.broker.config.max_queued_messages;
        for message in self.broker.retained_for(&filter.filter) {
            let delivery = Delivery {
                qos: message.qos.min(filter.options.qos),
                message,
                retain: true,
                subscription_ids: subscription_id.into_iter().collect(),
                seq: 0,
            };
            let store = self.broker.store.as_deref();
            let (outcome, _) = self.slot.deliver(delivery, max, Offer::BestEffort, store);
            if outcome == Enqueued::DroppedFull {
                self.broker.config.observer.metrics().dropped_queue_full();
            }
        }
    }

    async fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Result<(), Exit> {
        let mut reasons = Vec::new();
        let mut ticket = Ticket::NONE;
        for filter in &unsubscribe.filters {
            let (existed, durable) = self.broker.unsubscribe(&self.slot, filter);
            ticket = ticket.max(durable);
            reasons.push(if existed {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::NO_SUBSCRIPTION_EXISTED
            });
        }
        if self.version == ProtocolVersion::V311 {
            reasons.clear();
        }
        let unsuback = UnsubAck {
            packet_id: unsubscribe.packet_id,
            reasons,
            properties: Default::default(),
        };
        self.reply_after(ticket, Packet::UnsubAck(unsuback)).await
    }

    fn on_disconnect(&mut self, disconnect: Disconnect) -> Exit {
        if let Some(asked) = disconnect.properties.session_expiry_interval {
            if self.connect_expiry == 0 && asked != 0 {
                return Exit::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "DISCONNECT set a session expiry after CONNECT set 0 (MQTT-3.14.2-2)",
                );
            }
            self.slot.state().expiry = asked.min(self.broker.config.max_session_expiry);
        }
        Exit::Disconnect {
            publish_will: disconnect.reason == ReasonCode::DISCONNECT_WITH_WILL,
        }
    }
}
