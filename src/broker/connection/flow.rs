//! Flow control on one connection: back-pressure on it as a publisher (a QoS 1/2 PUBLISH
//! waiting, unacknowledged, for room in a subscriber queue that holds `admission_depth`
//! messages, and the packets read behind it), and the stall rule for it as a subscriber.
//!
//! When [`Broker::admit`] answers `Wait`, the authorized message becomes the connection's
//! [`Waiting`] one and everything the client sends after it is held, in order, except what
//! answers our own traffic or needs no routing — PUBACK, PUBREC, PUBCOMP, PUBREL, PINGREQ —
//! which is handled at once: a client that also subscribes keeps its own queue moving, and
//! MQTT orders acknowledgements only within one packet type. Once [`HELD_PACKETS`] packets
//! or [`HELD_BYTES`] payload bytes are held, reading stops: further packets wait in the
//! client's socket (TCP back-pressure) and the keep-alive clock is paused. When the queue
//! has room the message is offered again, its publish decision re-made with the current
//! policy, then acknowledged, and the held packets are handled in order. If the full
//! queue's client goes away meanwhile, the offer after that ends its session (an offline
//! session whose queue would overflow is ended, see `Broker::admit`) and the message goes
//! to everyone else. A message still waiting after `queue_full_timeout` is refused:
//! delivered to nobody; 5.0 is told 0x97 (Quota exceeded), 3.1.1 is disconnected with it
//! unacknowledged. Other connections never wait for this one.
//!
//! As a subscriber, a connection whose queue is at the admission depth (where publishers
//! wait) and from which nothing is taken for
//! `stalled_subscriber_timeout` (its in-flight window stays full, unacknowledged) is
//! disconnected with 0x97; a persistent session keeps every queued message.
//!
//! Costs: while waiting, one boxed message and at most [`HELD_PACKETS`] decoded packets;
//! otherwise one pointer, one empty deque and a timestamp per connection. This module must
//! never acknowledge a message that was not queued for every matching session, nor
//! reorder a client's PUBLISH packets.

use super::{Connection, Exit};
use crate::broker::message::Message;
use crate::broker::session::SessionSlot;
use crate::broker::state::Admission;
use crate::broker::store::{Op, Ticket};
use crate::decide::Request;
use crate::mqtt::codec::{Ack, Packet, ProtocolVersion, QoS, ReasonCode};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// Packets held behind a waiting PUBLISH before reading from the client stops.
pub(super) const HELD_PACKETS: usize = 64;
/// Payload bytes held behind a waiting PUBLISH before reading from the client stops.
pub(super) const HELD_BYTES: usize = 64 * 1024;

/// A client's authorized QoS 1/2 message waiting for room in `slot`'s queue.
pub(super) struct Waiting {
    message: Arc<Message>,
    qos: QoS,
    packet_id: u16,
    /// The full queue that made it wait (the one to watch for room).
    slot: Arc<SessionSlot>,
    /// When it is refused if still waiting.
    deadline: Instant,
}

/// The flow-control state of one connection.
#[derive(Default)]
pub(super) struct Flow {
    waiting: Option<Box<Waiting>>,
    /// Packets read after the waiting one, in arrival order.
    held: VecDeque<Packet>,
    held_bytes: usize,
    /// Since when this connection's own queue has been full with nothing taken from it.
    stall_since: Option<Instant>,
}

impl Flow {
    pub(super) fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    /// Whether the connection may read another packet now.
    pub(super) fn reads_more(&self) -> bool {
        self.waiting.is_none() || (self.held.len() < HELD_PACKETS && self.held_bytes < HELD_BYTES)
    }

    /// Whether `packet` is handled at once even while a PUBLISH waits.
    fn answered_at_once(packet: &Packet) -> bool {
        matches!(
            packet,
            Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubComp(_)
                | Packet::PubRel(_)
                | Packet::PingReq
        )
    }

    /// Holds `packet` behind the waiting PUBLISH, or gives it back to be handled now.
    pub(super) fn hold(&mut self, packet: Packet) -> Option<Packet> {
        if self.waiting.is_none() || Flow::answered_at_once(&packet) {
            return Some(packet);
        }
        if let Packet::Publish(publish) = &packet {
            self.held_bytes += publish.payload.len();
        }
        self.held.push_back(packet);
        None
    }

    fn next_held(&mut self) -> Option<Packet> {
        let packet = self.held.pop_front()?;
        if let Packet::Publish(publish) = &packet {
            self.held_bytes -= publish.payload.len();
        }
        Some(packet)
    }

    /// Something was taken from this connection's queue: it is not stalled.
    pub(super) fn progressed(&mut self) {
        self.stall_since = None;
    }

    /// When this connection counts as a stalled subscriber, given whether its queue is
    /// full now.
    pub(super) fn stall_deadline(
        &mut self,
        queue_full: bool,
        timeout: std::time::Duration,
    ) -> Option<Instant> {
        if !queue_full {
            self.stall_since = None;
            return None;
        }
        Some(*self.stall_since.get_or_insert_with(Instant::now) + timeout)
    }

    /// Resolves when the waiting message is due another try: its queue may have room, its
    /// session went offline or ended, or its deadline passed. Never, if nothing waits.
    pub(super) async fn retry_due(&self, admission_depth: usize) {
        let Some(waiting) = &self.waiting else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = waiting.slot.wait_for_room(admission_depth) => {}
            _ = tokio::time::sleep_until(waiting.deadline) => {}
        }
    }
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Offers an authorized message to the broker and acknowledges it once queued; or
    /// makes it wait (`deadline`: since its first wait), or refuses it.
    pub(super) async fn offer(
        &mut self,
        message: Arc<Message>,
        qos: QoS,
        packet_id: u16,
        deadline: Option<Instant>,
    ) -> Result<(), Exit> {
        let slot = match self.broker.admit(&message, || self.authorizer.publisher()) {
            Admission::Queued(_, ticket) => {
                return self.accepted(&message, qos, packet_id, ticket).await;
            }
            Admission::Wait(slot) => slot,
        };
        let deadline = deadline.unwrap_or_else(|| {
            self.broker.config.observer.metrics().publish_waited();
            Instant::now() + self.broker.config.queue_full_timeout
        });
        if Instant::now() >= deadline {
            return self.refuse_full(qos, packet_id, &slot, "stayed full").await;
        }
        self.flow.waiting = Some(Box::new(Waiting {
            message,
            qos,
            packet_id,
            slot,
            deadline,
        }));
        Ok(())
    }

    /// A message queued for every matching session: count it, let the shadow service see
    /// it, acknowledge it once `ticket` (its copies in the store) is durable.
    async fn accepted(
        &mut self,
        message: &Message,
        qos: QoS,
        id: u16,
        ticket: Ticket,
    ) -> Result<(), Exit> {
        let metrics = self.broker.config.observer.metrics();
        metrics.message_in(message.payload.len());
        // An authorized shadow request: the shadow service answers through the router,
        // once the new version is durable.
        if let Some(answer) = self.broker.shadows.handle(&message.topic, &message.payload) {
            if let Some(store) = &self.broker.store {
                store
                    .durable(answer.ticket)
                    .await
                    .map_err(super::replies::store_failed)?;
            }
            let broker = &self.broker;
            answer.publish(|m| {
                broker.publish(m);
            });
        }
        match qos {
            QoS::AtMostOnce => Ok(()),
            QoS::AtLeastOnce => self.reply_after(ticket, Packet::PubAck(Ack::new(id))).await,
            QoS::ExactlyOnce => {
                let ticket = {
                    let mut state = self.slot.state();
                    state.awaiting_release.insert(id);
                    match self.broker.store_for(&state) {
                        Some(store) => ticket.max(store.submit_one(Op::PutRelease {
                            client: self.slot.client_id.clone(),
                            packet_id: id,
                        })),
                        None => ticket,
                    }
                };
                self.reply_after(ticket, Packet::PubRec(Ack::new(id))).await
            }
        }
    }

    /// Refuses a message because `slot`'s queue is full: 5.0 hears 0x97; 3.1.1 cannot be
    /// told no, so its connection ends with the message unacknowledged.
    async fn refuse_full(
        &mut self,
        qos: QoS,
        id: u16,
        slot: &SessionSlot,
        why: &str,
    ) -> Result<(), Exit> {
        self.broker
            .config
            .observer
            .metrics()
            .publish_refused_queue_full();
        tracing::info!(client = %self.client_id, subscriber = %slot.client_id, "publish refused: the subscriber's full queue {why}");
        if self.version == ProtocolVersion::V311 {
            return Err(Exit::protocol(
                ReasonCode::QUOTA_EXCEEDED,
                format!(
                    "publish refused: subscriber {}'s full queue {why}",
                    slot.client_id
                ),
            ));
        }
        self.refuse(qos, id, ReasonCode::QUOTA_EXCEEDED).await
    }

    /// Tries the waiting message again (re-deciding its publish with the current policy),
    /// then handles the held packets until one has to wait, and flushes the replies.
    pub(super) async fn retry_waiting(&mut self) -> Result<(), Exit> {
        if let Some(waiting) = self.flow.waiting.take() {
            let Waiting {
                message,
                qos,
                packet_id,
                deadline,
                ..
            } = *waiting;
            let request = Request::Publish {
                topic: &message.topic,
                retain: message.retain,
            };
            if self.authorizer.decide(request).is_allowed() {
                self.offer(message, qos, packet_id, Some(deadline)).await?;
            } else {
                self.refuse(qos, packet_id, ReasonCode::NOT_AUTHORIZED)
                    .await?;
            }
        }
        while !self.flow.is_waiting() {
            let Some(packet) = self.flow.next_held() else {
                break;
            };
            self.handle(packet).await?;
        }
        self.flush().await
    }

    /// Disconnects this connection as a stalled subscriber.
    pub(super) fn stalled(&self) -> Exit {
        self.broker.config.observer.metrics().subscriber_stalled();
        Exit::protocol(
            ReasonCode::QUOTA_EXCEEDED,
            format!(
                "stalled subscriber: its queue stayed full with nothing taken for {:?}",
                self.broker.config.stalled_subscriber_timeout
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::codec::{Disconnect, Properties, Publish};
    use bytes::Bytes;

    fn publish(bytes: usize) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "t".into(),
            packet_id: 1,
            payload: Bytes::from(vec![0; bytes]),
            properties: Properties::default(),
        })
    }

    fn waiting() -> Box<Waiting> {
        Box::new(Waiting {
            message: Arc::new(Message {
                topic: "t".into(),
                payload: Bytes::new(),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Properties::default(),
                expires_at: None,
                publisher: None,
            }),
            qos: QoS::AtLeastOnce,
            packet_id: 1,
            slot: Arc::new(SessionSlot::new("s".into())),
            deadline: Instant::now(),
        })
    }

    #[test]
    fn packets_are_held_in_order_only_while_a_publish_waits() {
        let mut flow = Flow::default();
        assert!(
            flow.hold(publish(1)).is_some(),
            "nothing waits: handled now"
        );
        flow.waiting = Some(waiting());
        assert!(flow.hold(Packet::PingReq).is_some(), "answered at once");
        assert!(flow.hold(Packet::PubAck(Ack::new(7))).is_some());
        assert!(flow.hold(publish(10)).is_none());
        assert!(
            flow.hold(Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)))
                .is_none()
        );
        assert_eq!(flow.held_bytes, 10);
        assert!(matches!(flow.next_held(), Some(Packet::Publish(_))));
        assert!(matches!(flow.next_held(), Some(Packet::Disconnect(_))));
        assert_eq!(flow.held_bytes, 0);
    }

    #[test]
    fn reading_stops_at_the_held_bounds() {
        let waiting_flow = || Flow {
            waiting: Some(waiting()),
            ..Flow::default()
        };
        let mut flow = waiting_flow();
        for _ in 0..HELD_PACKETS - 1 {
            flow.hold(publish(1));
            assert!(flow.reads_more());
        }
        flow.hold(publish(1));
        assert!(!flow.reads_more(), "packet bound");
        let mut flow = waiting_flow();
        flow.hold(publish(HELD_BYTES));
        assert!(!flow.reads_more(), "byte bound");
    }

    #[test]
    fn the_stall_clock_runs_only_while_the_queue_is_full() {
        let mut flow = Flow::default();
        let timeout = std::time::Duration::from_secs(30);
        assert_eq!(flow.stall_deadline(false, timeout), None);
        let first = flow.stall_deadline(true, timeout).expect("armed");
        assert_eq!(
            flow.stall_deadline(true, timeout),
            Some(first),
            "not re-armed"
        );
        flow.progressed();
        let second = flow.stall_deadline(true, timeout).expect("re-armed");
        assert!(second >= first);
        assert_eq!(flow.stall_deadline(false, timeout), None);
    }
}
