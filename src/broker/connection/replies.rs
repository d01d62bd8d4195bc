//! Replies that wait for the store: an acknowledgement leaves only once what it
//! acknowledges is durable, and replies leave in the order their requests came.
//!
//! [`Connection::reply_after`] sends a reply at once when its ticket is already committed
//! (always, without a store) and nothing is waiting before it; otherwise the reply joins
//! [`Pending`], a queue in arrival order. Every reply to the client — PUBACK, PUBREC,
//! PUBCOMP, SUBACK, UNSUBACK, PINGRESP — goes through here, so a refusal or a PINGRESP never
//! overtakes an acknowledgement still waiting for its commit (MQTT orders acknowledgements).
//! The connection keeps reading meanwhile: the store's group commit sees many messages per
//! `fsync`. At [`MAX_PENDING`] waiting replies, reading pauses (a slow disk pushes back on
//! the publisher through TCP). If the store fails, the connection ends with the waiting
//! replies unsent: nothing is acknowledged that is not durable. Costs: one empty deque per
//! connection. This module must never send an acknowledgement before its ticket commits.

use super::{Connection, Exit};
use crate::broker::store::{Store, StoreFailed, Ticket};
use crate::mqtt::codec::{Packet, ReasonCode};
use std::collections::VecDeque;
use tokio::io::{AsyncRead, AsyncWrite};

/// Replies waiting for their commit before reading from the client pauses.
pub(super) const MAX_PENDING: usize = 1024;

/// Replies waiting, in arrival order, each with the ticket it waits for.
#[derive(Default)]
pub(super) struct Pending(VecDeque<(Ticket, Packet)>);

impl Pending {
    /// Whether the connection may read more requests.
    pub(super) fn reads_more(&self) -> bool {
        self.0.len() < MAX_PENDING
    }

    /// The ticket the first waiting reply needs.
    pub(super) fn first(&self) -> Option<Ticket> {
        self.0.front().map(|(ticket, _)| *ticket)
    }
}

/// Resolves when `ticket` is durable in `store` (or the store failed); never without a
/// ticket.
pub(super) async fn committed(
    store: Option<&Store>,
    ticket: Option<Ticket>,
) -> Result<(), StoreFailed> {
    match (store, ticket) {
        (Some(store), Some(ticket)) => store.durable(ticket).await,
        (None, Some(_)) => Ok(()),
        _ => std::future::pending().await,
    }
}

/// The exit for a connection whose acknowledgements can no longer be made durable.
pub(super) fn store_failed(failure: StoreFailed) -> Exit {
    Exit::protocol(
        ReasonCode::UNSPECIFIED_ERROR,
        format!("nothing more can be acknowledged: {failure}"),
    )
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Sends `packet` once `ticket` is durable, after every reply waiting before it.
    pub(super) async fn reply_after(&mut self, ticket: Ticket, packet: Packet) -> Result<(), Exit> {
        let durable = match &self.broker.store {
            Some(store) => store.is_durable(ticket),
            None => true,
        };
        if durable && self.pending.0.is_empty() {
            return self.feed(packet).await;
        }
        self.pending.0.push_back((ticket, packet));
        Ok(())
    }

    /// A reply that needs no commit of its own (it still waits behind earlier ones).
    pub(super) async fn reply(&mut self, packet: Packet) -> Result<(), Exit> {
        self.reply_after(Ticket::NONE, packet).await
    }

    /// Sends, in order, every waiting reply whose ticket is durable now.
    pub(super) async fn send_committed(&mut self) -> Result<(), Exit> {
        let Some(store) = self.broker.store.clone() else {
            while let Some((_, packet)) = self.pending.0.pop_front() {
                self.feed(packet).await?;
            }
            return self.flush().await;
        };
        while let Some((ticket, _)) = self.pending.0.front() {
            if !store.is_durable(*ticket) {
                break;
            }
            if let Some((_, packet)) = self.pending.0.pop_front() {
                self.feed(packet).await?;
            }
        }
        self.flush().await
    }
}
