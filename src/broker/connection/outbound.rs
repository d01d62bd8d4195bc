//! Deliveries to the client: the RECEIVE authorization point and outgoing QoS 1/2 flow.
//!
//! [`Connection::pump`] takes queued deliveries in order while the in-flight window
//! (min of our limit and the client's Receive Maximum) has room, drops expired ones,
//! asks the policy whether this client may *receive* the topic — for every delivery,
//! including retained messages and messages queued while the client was away — and only
//! then assigns a packet id and sends. A message larger than the client's Maximum Packet
//! Size is dropped (MQTT-3.1.2-25). On a resumed session, [`Connection::resume`] resends
//! unacknowledged PUBLISHes (DUP set, receive-checked again) and pending PUBRELs. This
//! module must never send a message the policy does not let this client receive.

use super::{Connection, Exit};
use crate::broker::message::Delivery;
use crate::broker::message::Stage;
use crate::broker::session::Outgoing;
use crate::broker::store::{Op, Ticket, stage_byte};
use crate::decide::Request;
use crate::mqtt::codec::{Ack, Packet, Properties, ProtocolVersion, Publish, QoS};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

/// Deliveries prepared (and their store records awaited) together before they are sent.
const PUMP_BATCH: usize = 64;

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// The next queued delivery the in-flight window allows. Taking one is progress (see
    /// the stall rule in `flow`) and may make room publishers are waiting for: they are
    /// woken once the queue is down to three quarters of the admission depth (where they
    /// wait), so a queue many publishers wait for refills in batches instead of waking
    /// them all per message.
    fn take_next(&mut self) -> Option<Delivery> {
        let depth = self.broker.config.admission_depth();
        let low_water = depth - depth / 4;
        let (delivery, room) = {
            let mut state = self.slot.state();
            let front = state.queue.front()?;
            let limit = usize::from(self.inflight_limit);
            if front.qos != QoS::AtMostOnce && state.outgoing.len() >= limit {
                return None;
            }
            let delivery = state.queue.pop_front();
            (delivery, state.queue.len() <= low_water)
        };
        self.flow.progressed();
        if room {
            self.slot.wake_room_waiters();
        }
        delivery
    }

    /// Whether this client may receive the delivery now.
    fn may_receive(&mut self, delivery: &Delivery, now: Instant) -> bool {
        !delivery.message.expired(now)
            && (self.broker.config.skip_receive_checks_for_measurement
                || self
                    .authorizer
                    .decide(Request::receive(&delivery.message.topic))
                    .is_allowed())
    }

    /// Sends every deliverable queued message, in batches: a batch's QoS 2 packet ids for a
    /// persistent session are made durable (one commit) before any of it is sent, so a
    /// restart resends each with the packet id the client already saw.
    pub(super) async fn pump(&mut self) -> Result<(), Exit> {
        let mut sent = false;
        loop {
            let mut batch = Vec::new();
            let mut ticket = Ticket::NONE;
            while batch.len() < PUMP_BATCH {
                let Some(delivery) = self.take_next() else {
                    break;
                };
                if let Some((publish, bytes, durable)) = self.prepare(delivery) {
                    batch.push((publish, bytes));
                    ticket = ticket.max(durable);
                }
            }
            if batch.is_empty() {
                break;
            }
            if let Some(store) = self.broker.store.clone() {
                store
                    .durable(ticket)
                    .await
                    .map_err(super::replies::store_failed)?;
            }
            for (publish, bytes) in batch {
                self.feed(publish).await?;
                self.broker.config.observer.metrics().message_out(bytes);
                sent = true;
            }
        }
        if sent {
            self.flush().await?;
        }
        Ok(())
    }

    /// The PUBLISH for one delivery taken from the queue, tracked if QoS 1/2, with its
    /// payload size and the ticket to wait for before sending it; `None` when it is not
    /// sent (expired, not allowed, too large for the client), and then done with.
    fn prepare(&mut self, delivery: Delivery) -> Option<(Packet, usize, Ticket)> {
        let now = Instant::now();
        if !self.may_receive(&delivery, now) {
            let state = self.slot.state();
            self.forget_stored(&state, delivery.seq);
            return None;
        }
        let (packet_id, ticket) = self.track(&delivery);
        let publish = self.publish_packet(&delivery, packet_id, false, now);
        if !self.fits_peer(&publish) {
            self.untrack(packet_id);
            let state = self.slot.state();
            self.forget_stored(&state, delivery.seq);
            return None;
        }
        Some((publish, delivery.message.payload.len(), ticket))
    }

    /// Records a QoS 1/2 delivery as in flight (in the store too, for a persistent session);
    /// returns its packet id (0 for QoS 0) and, for QoS 2, the ticket of its record.
    fn track(&mut self, delivery: &Delivery) -> (u16, Ticket) {
        let stage = match delivery.qos {
            QoS::AtMostOnce => return (0, Ticket::NONE),
            QoS::AtLeastOnce => Stage::AwaitAck,
            QoS::ExactlyOnce => Stage::AwaitRec,
        };
        let mut state = self.slot.state();
        let packet_id = state.next_packet_id();
        state.outgoing.push_back(Outgoing {
            packet_id,
            delivery: delivery.clone(),
            stage,
        });
        let ticket = match self.broker.store_for(&state) {
            Some(store) => store.submit_one(Op::PutInflight {
                client: self.slot.client_id.clone(),
                seq: delivery.seq,
                packet_id,
                stage: stage_byte(stage),
            }),
            None => Ticket::NONE,
        };
        // A QoS 1 resend after a restart may carry a new packet id: at least once allows it.
        let wait = if stage == Stage::AwaitRec {
            ticket
        } else {
            Ticket::NONE
        };
        (packet_id, wait)
    }

    fn untrack(&mut self, packet_id: u16) {
        if packet_id != 0 {
            self.slot
                .state()
                .outgoing
                .retain(|o| o.packet_id != packet_id);
        }
    }

    fn fits_peer(&self, packet: &Packet) -> bool {
        let Some(max) = self.peer_max_packet.map(|m| m as usize) else {
            return true;
        };
        let fits = packet.encoded_len(self.version).is_ok_and(|len| len <= max);
        if !fits {
            tracing::debug!(client = %self.client_id, max, "dropped a message larger than the client's maximum packet size");
        }
        fits
    }

    fn publish_packet(
        &self,
        delivery: &Delivery,
        packet_id: u16,
        dup: bool,
        now: Instant,
    ) -> Packet {
        let message = &delivery.message;
        let properties = match self.version {
            ProtocolVersion::V311 => Properties::default(),
            ProtocolVersion::V5 => Properties {
                message_expiry_interval: message.remaining_expiry(now),
                subscription_identifiers: delivery.subscription_ids.to_vec(),
                ..message.properties.clone()
            },
        };
        Packet::Publish(Publish {
            dup,
            qos: delivery.qos,
            retain: delivery.retain,
            topic: message.topic.to_string(),
            packet_id,
            payload: message.payload.clone(),
            properties,
        })
    }

    /// Resends what a resumed session left in flight, re-checking each PUBLISH.
    pub(super) async fn resume(&mut self) -> Result<(), Exit> {
        let pending: Vec<Outgoing> = self.slot.state().outgoing.iter().cloned().collect();
        let now = Instant::now();
        for outgoing in pending {
            let packet = match outgoing.stage {
                Stage::AwaitComp => Packet::PubRel(Ack::new(outgoing.packet_id)),
                _ if !self.may_receive(&outgoing.delivery, now) => {
                    self.untrack(outgoing.packet_id);
                    let state = self.slot.state();
                    self.forget_stored(&state, outgoing.delivery.seq);
                    continue;
                }
                _ => self.publish_packet(&outgoing.delivery, outgoing.packet_id, true, now),
            };
            self.feed(packet).await?;
        }
        self.flush().await
    }
}
