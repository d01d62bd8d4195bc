//! One publisher: sends stamped messages on its topic at QoS 0, 1 or 2, keeping at most
//! `window` unacknowledged (QoS 1/2), paced to its share of the target rate if one is
//! given, and records every acknowledgement by sequence number.
//!
//! The loop writes whatever the window and the pacer allow in one flush, reads the
//! acknowledgements already arrived, and otherwise waits for the next acknowledgement, the
//! pacer or the stop signal. A QoS 1 message counts as accepted on a successful PUBACK, a
//! QoS 2 message on a successful PUBREC (then PUBREL/PUBCOMP free its window slot); a
//! failure reason (5.0) marks it refused. After the stop it waits (bounded) for what is
//! still in flight. A broker that closes the connection or stops answering ends the
//! publisher with the reason recorded in its ledger, not the run. Over MQTT 5 the window
//! never exceeds the broker's Receive Maximum. This module must never count a message as
//! acknowledged without the broker's acknowledgement.

use super::client::{self, Conn};
use super::ledger::PublisherLedger;
use super::stamp::{Stamp, now_nanos};
use super::{LoadError, Shared, wait};
use crate::mqtt::codec::{Ack, CodecError, Packet, Properties, Publish, QoS};
use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long a publisher waits for any acknowledgement, or for the broker to take a write,
/// before it gives up. Longer than the broker's default `queue_full_timeout` (60 s).
const ACK_WAIT: Duration = Duration::from_secs(90);
/// QoS 0 messages per write.
const QOS0_BATCH: usize = 64;

/// Runs publisher `id` to the end; never fails the run, records why it stopped instead.
pub(super) async fn run(shared: Arc<Shared>, id: u32) -> PublisherLedger {
    let mut ledger = PublisherLedger {
        id,
        ..PublisherLedger::default()
    };
    let client_id = format!("{}{}-pub-{id}", shared.plan.client_prefix, shared.plan.run);
    match client::open_with_ack(&shared.plan.login, &client_id).await {
        Err(error) => ledger.error = Some(error.to_string()),
        Ok((mut conn, connack)) => {
            let mut publisher = Publisher::new(&shared, id, &mut ledger);
            if let Some(maximum) = connack.properties.receive_maximum {
                publisher.window = publisher.window.min(usize::from(maximum.max(1)));
            }
            match publisher.publish(&mut conn).await {
                Ok(()) => client::disconnect(&mut conn).await,
                Err(error) => ledger.error = Some(error.to_string()),
            }
        }
    }
    ledger
}

/// Where an unacknowledged message is.
#[derive(Clone, Copy)]
enum Stage {
    /// QoS 1 awaiting PUBACK, or QoS 2 awaiting PUBREC.
    Sent(u64),
    /// QoS 2 awaiting PUBCOMP (already counted as accepted).
    Released,
}

struct Publisher<'a> {
    shared: &'a Shared,
    ledger: &'a mut PublisherLedger,
    topic: String,
    qos: QoS,
    window: usize,
    limit: u64,
    inflight: HashMap<u16, Stage>,
    last_id: u16,
    pacer: Pacer,
}

impl<'a> Publisher<'a> {
    fn new(shared: &'a Shared, id: u32, ledger: &'a mut PublisherLedger) -> Publisher<'a> {
        let plan = &shared.plan;
        Publisher {
            topic: plan.topic_for(id),
            qos: plan.qos,
            window: plan.window.clamp(1, 65_000),
            limit: plan.quota(id).unwrap_or(u64::MAX),
            inflight: HashMap::new(),
            last_id: 0,
            pacer: Pacer::new(plan.rate, plan.publishers),
            shared,
            ledger,
        }
    }

    fn sending(&self) -> bool {
        self.ledger.sent < self.limit && !self.shared.stop_publishing.is_cancelled()
    }

    /// How many more may be sent now, window-wise.
    fn room(&self) -> usize {
        match (self.sending(), self.qos) {
            (false, _) => 0,
            (true, QoS::AtMostOnce) => QOS0_BATCH,
            (true, _) => self.window.saturating_sub(self.inflight.len()),
        }
    }

    async fn publish(&mut self, conn: &mut Conn) -> Result<(), LoadError> {
        loop {
            if !self.sending() && self.inflight.is_empty() {
                return Ok(());
            }
            let room = self.room();
            let allowed = self.pacer.take(room);
            let left = usize::try_from(self.limit - self.ledger.sent).unwrap_or(usize::MAX);
            let batch = allowed.min(left);
            if batch > 0 {
                self.send_batch(conn, batch).await?;
                while let Some(frame) = conn.next().now_or_never() {
                    self.on_frame(conn, frame)?;
                }
                self.flush(conn).await?;
                continue;
            }
            let waiting_for_pacer = self.sending() && room > 0;
            tokio::select! {
                frame = conn.next(), if !self.inflight.is_empty() => {
                    self.on_frame(conn, frame)?;
                    self.flush(conn).await?;
                }
                _ = self.pacer.ready(), if waiting_for_pacer => {}
                _ = self.shared.stop_publishing.cancelled(), if self.sending() => {}
                _ = tokio::time::sleep(ACK_WAIT) => {
                    return Err(LoadError::Timeout {
                        what: format!("{} acknowledgements", self.inflight.len()),
                        after: ACK_WAIT,
                    });
                }
            }
        }
    }

    fn next_packet_id(&mut self) -> u16 {
        loop {
            self.last_id = self.last_id.checked_add(1).unwrap_or(1);
            if !self.inflight.contains_key(&self.last_id) {
                return self.last_id;
            }
        }
    }

    async fn send_batch(&mut self, conn: &mut Conn, batch: usize) -> Result<(), LoadError> {
        for _ in 0..batch {
            let seq = self.ledger.sent;
            let packet_id = match self.qos {
                QoS::AtMostOnce => 0,
                _ => self.next_packet_id(),
            };
            let mut payload = vec![0u8; self.shared.plan.payload];
            let stamp = Stamp {
                sent_at_nanos: now_nanos(),
                run: self.shared.run_tag,
                publisher: self.ledger.id,
                seq,
            };
            stamp.write(&mut payload);
            let publish = Publish {
                dup: false,
                qos: self.qos,
                retain: false,
                topic: self.topic.clone(),
                packet_id,
                payload: Bytes::from(payload),
                properties: Properties::default(),
            };
            wait::within("publish", ACK_WAIT, conn.feed(Packet::Publish(publish)))
                .await?
                .map_err(|e| broker_error("publish", e))?;
            if self.qos != QoS::AtMostOnce {
                self.inflight.insert(packet_id, Stage::Sent(seq));
            }
            self.ledger.sent += 1;
        }
        self.shared.sent.fetch_add(batch as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn flush(&mut self, conn: &mut Conn) -> Result<(), LoadError> {
        wait::within("publish", ACK_WAIT, conn.flush())
            .await?
            .map_err(|e| broker_error("publish", e))
    }

    /// Records one packet from the broker (replies are fed, flushed by the caller).
    fn on_frame(
        &mut self,
        conn: &mut Conn,
        frame: Option<Result<Packet, CodecError>>,
    ) -> Result<(), LoadError> {
        let packet = match frame {
            Some(Ok(packet)) => packet,
            Some(Err(error)) => return Err(broker_error("publisher", error)),
            None => {
                return Err(broker_error(
                    "publisher",
                    "the broker closed the connection",
                ));
            }
        };
        match packet {
            Packet::PubAck(ack) => {
                if let Some(Stage::Sent(seq)) = self.inflight.remove(&ack.packet_id) {
                    self.settle(seq, ack.reason.is_failure());
                }
            }
            Packet::PubRec(ack) => match self.inflight.get(&ack.packet_id).copied() {
                Some(Stage::Sent(seq)) if ack.reason.is_failure() => {
                    self.inflight.remove(&ack.packet_id);
                    self.settle(seq, true);
                }
                Some(Stage::Sent(seq)) => {
                    self.inflight.insert(ack.packet_id, Stage::Released);
                    self.settle(seq, false);
                    let rel = Packet::PubRel(Ack::new(ack.packet_id));
                    conn.start_send_unpin(rel)
                        .map_err(|e| broker_error("PUBREL", e))?;
                }
                _ => {}
            },
            Packet::PubComp(ack) => {
                self.inflight.remove(&ack.packet_id);
            }
            Packet::Disconnect(disconnect) => {
                return Err(broker_error(
                    "publisher",
                    format!("the broker disconnected it: {}", disconnect.reason),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn settle(&mut self, seq: u64, refused: bool) {
        if refused {
            self.ledger.refused.insert(seq);
        } else {
            self.ledger.acked.insert(seq);
            self.shared.acked.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn broker_error(what: &str, detail: impl ToString) -> LoadError {
    LoadError::Broker {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

/// Paces one publisher to its share of the target rate: `per_tick` messages per tick.
struct Pacer {
    per_tick: Option<usize>,
    ticker: tokio::time::Interval,
    left: usize,
}

impl Pacer {
    fn new(rate: Option<u64>, publishers: usize) -> Pacer {
        let share = rate.map(|r| r as f64 / publishers.max(1) as f64);
        // At least 100 per second: ticks of 10 ms; below, one message per tick.
        let (per_tick, tick) = match share {
            Some(per_second) if per_second >= 100.0 => (
                Some((per_second / 100.0).round() as usize),
                Duration::from_millis(10),
            ),
            Some(per_second) => (Some(1), Duration::from_secs_f64(1.0 / per_second.max(0.01))),
            None => (None, Duration::from_secs(1)),
        };
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Pacer {
            per_tick,
            ticker,
            left: 0,
        }
    }

    /// How many of `want` may go now.
    fn take(&mut self, want: usize) -> usize {
        if self.per_tick.is_none() {
            return want;
        }
        let granted = want.min(self.left);
        self.left -= granted;
        granted
    }

    /// Waits for the next tick and refills.
    async fn ready(&mut self) {
        match self.per_tick {
            Some(per_tick) => {
                self.ticker.tick().await;
                self.left = per_tick;
            }
            None => std::future::pending().await,
        }
    }
}
