//! One subscriber: receives the run's messages, completes each QoS handshake, and records
//! every stamp in its ledger (per-publisher sequences, duplicates, reorderings, latency).
//!
//! Frames already readable are handled together and their acknowledgements leave in one
//! flush, so the subscriber keeps up with the broker on one core. It runs until told to
//! stop; a broker that closes the connection ends it with the reason recorded. This
//! module must never acknowledge a message it did not decode.

use super::client::{self, Conn};
use super::ledger::SubscriberLedger;
use super::stamp::{Stamp, now_nanos};
use super::{LoadError, Shared, wait};
use crate::mqtt::codec::{Ack, CodecError, Packet, QoS};
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Connects subscriber `index` and subscribes it to its filter.
pub(super) async fn connect(shared: &Shared, index: usize) -> Result<Conn, LoadError> {
    let plan = &shared.plan;
    let client_id = format!("{}{}-sub-{index}", plan.client_prefix, plan.run);
    let mut conn = match plan.persistent_subscribers {
        true => client::open_persistent(&plan.login, &client_id).await?,
        false => client::open(&plan.login, &client_id).await?,
    };
    client::subscribe(&mut conn, &plan.filter_for(index), plan.qos).await?;
    Ok(conn)
}

/// Receives until the stop signal; returns the ledger.
pub(super) async fn run(shared: Arc<Shared>, index: usize, mut conn: Conn) -> SubscriberLedger {
    let mut ledger = SubscriberLedger::new(index, shared.plan.expected_publishers(index));
    if let Err(error) = receive(&shared, &mut conn, &mut ledger).await {
        ledger.error = Some(error.to_string());
    }
    client::disconnect(&mut conn).await;
    ledger
}

async fn receive(
    shared: &Shared,
    conn: &mut Conn,
    ledger: &mut SubscriberLedger,
) -> Result<(), LoadError> {
    loop {
        let frame = match conn.next().now_or_never() {
            Some(frame) => frame,
            None => {
                wait::within("acknowledge", wait::STEP, conn.flush())
                    .await?
                    .map_err(|e| error("acknowledge", e))?;
                tokio::select! {
                    frame = conn.next() => frame,
                    _ = shared.stop_receiving.cancelled() => return Ok(()),
                }
            }
        };
        on_frame(shared, conn, ledger, frame)?;
    }
}

fn on_frame(
    shared: &Shared,
    conn: &mut Conn,
    ledger: &mut SubscriberLedger,
    frame: Option<Result<Packet, CodecError>>,
) -> Result<(), LoadError> {
    let reply = match frame {
        None => return Err(error("subscriber", "the broker closed the connection")),
        Some(Err(e)) => return Err(error("subscriber", e)),
        Some(Ok(Packet::Publish(publish))) => {
            let now = now_nanos();
            match Stamp::read(&publish.payload).filter(|s| s.run == shared.run_tag) {
                Some(stamp) if ledger.record(&stamp, now) => {
                    shared.received.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {}
                None => ledger.foreign += 1,
            }
            match publish.qos {
                QoS::AtMostOnce => None,
                QoS::AtLeastOnce => Some(Packet::PubAck(Ack::new(publish.packet_id))),
                QoS::ExactlyOnce => Some(Packet::PubRec(Ack::new(publish.packet_id))),
            }
        }
        Some(Ok(Packet::PubRel(rel))) => Some(Packet::PubComp(Ack::new(rel.packet_id))),
        Some(Ok(Packet::Disconnect(disconnect))) => {
            let why = format!("the broker disconnected it: {}", disconnect.reason);
            return Err(error("subscriber", why));
        }
        Some(Ok(_)) => None,
    };
    if let Some(reply) = reply {
        conn.start_send_unpin(reply)
            .map_err(|e| error("acknowledge", e))?;
    }
    Ok(())
}

fn error(what: &str, detail: impl ToString) -> LoadError {
    LoadError::Broker {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}
