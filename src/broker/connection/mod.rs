//! One task per client connection: CONNECT, then packets in and deliveries out until the
//! connection ends, then the will and the session hand-off.
//!
//! [`run`] reads CONNECT within the deadline and authorizes it ([`handshake`]), then
//! loops over: incoming packets ([`inbound`] — the PUBLISH and SUBSCRIBE authorization
//! points), queued deliveries ([`outbound`] — the per-delivery RECEIVE check), a PUBLISH
//! waiting for room in a full subscriber queue and the stall rule ([`flow`]), the
//! keep-alive deadline (paused while reading is), acknowledgements waiting for the store
//! ([`replies`]), a takeover kick, and server shutdown.
//! Every way out is an [`Exit`]; [`Connection::finish`] tells a 5.0 client why
//! (DISCONNECT with a reason code), publishes the will when the loss was not a clean
//! DISCONNECT ([`will`]), and detaches from the session. Replies to a read batch are
//! written with one flush ([`Connection::on_frames`]); rarely used, large handler states
//! are boxed so an idle connection's resident future stays small. This module must never
//! share mutable state except through [`Broker`] and the session slot, and never take a
//! frame from the stream it does not handle.

mod flow;
mod handshake;
mod inbound;
mod outbound;
mod replies;
mod revalidate;
mod will;
mod wire;

use crate::broker::auth::Transport;
use crate::broker::authorize::Authorizer;
use crate::broker::session::SessionSlot;
use crate::broker::state::Broker;
use crate::mqtt::codec::{
    CodecError, Disconnect, MqttCodec, Packet, ProtocolVersion, ReasonCode, Will,
};
use futures_util::FutureExt;
use futures_util::future::OptionFuture;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use wire::Wire;

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum Exit {
    /// The client sent DISCONNECT; 5.0 reason 0x04 asks for the will anyway.
    Disconnect {
        publish_will: bool,
    },
    /// We close because the client broke the protocol or a limit.
    Protocol {
        reason: ReasonCode,
        why: String,
    },
    KeepAliveTimeout,
    TakenOver,
    Shutdown,
    /// The network connection ended without DISCONNECT.
    Closed,
}

impl Exit {
    fn from_codec(error: CodecError) -> Exit {
        match error {
            CodecError::Io(_) => Exit::Closed,
            other => Exit::Protocol {
                reason: other.reason_code(),
                why: other.to_string(),
            },
        }
    }

    fn encoding(error: CodecError) -> Exit {
        Exit::protocol(
            ReasonCode::IMPLEMENTATION_SPECIFIC,
            format!("could not encode a packet: {error}"),
        )
    }

    pub(crate) fn protocol(reason: ReasonCode, why: impl Into<String>) -> Exit {
        Exit::Protocol {
            reason,
            why: why.into(),
        }
    }

    /// The reason code a 5.0 client is told, if any.
    fn disconnect_reason(&self) -> Option<ReasonCode> {
        match self {
            Exit::Protocol { reason, .. } => Some(*reason),
            Exit::KeepAliveTimeout => Some(ReasonCode::KEEP_ALIVE_TIMEOUT),
            Exit::TakenOver => Some(ReasonCode::SESSION_TAKEN_OVER),
            Exit::Shutdown => Some(ReasonCode::SERVER_SHUTTING_DOWN),
            Exit::Disconnect { .. } | Exit::Closed => None,
        }
    }

    /// Whether the will is published: on every loss except a normal DISCONNECT and
    /// the server's own shutdown.
    fn publishes_will(&self) -> bool {
        match self {
            Exit::Disconnect { publish_will } => *publish_will,
            Exit::Shutdown => false,
            _ => true,
        }
    }
}

/// An established, authorized connection.
pub(crate) struct Connection<S> {
    wire: Wire<S>,
    broker: Arc<Broker>,
    peer: SocketAddr,
    id: u64,
    version: ProtocolVersion,
    client_id: Arc<str>,
    slot: Arc<SessionSlot>,
    authorizer: Authorizer,
    /// Boxed: most clients set none, and a will is larger than the rest of this state.
    will: Option<Box<Will>>,
    /// The keep-alive in seconds (0: none).
    keep_alive: u16,
    /// Outgoing QoS 1/2 messages allowed in flight.
    inflight_limit: u16,
    /// The client's Maximum Packet Size (5.0).
    peer_max_packet: Option<u32>,
    /// Topic aliases the client defined (5.0); allocated at the first one, as most
    /// clients define none (boxed: 8 bytes here instead of a map's 48).
    #[allow(clippy::box_collection)]
    aliases: Option<Box<HashMap<u16, Arc<str>>>>,
    /// Session expiry asked for at CONNECT (a DISCONNECT may not raise it from 0).
    connect_expiry: u32,
    /// Back-pressure and the stall rule ([`flow`]).
    flow: flow::Flow,
    /// Replies waiting for the store to commit what they acknowledge ([`replies`]).
    pending: replies::Pending,
}

/// The most packets handled from one read before the replies are flushed and queued
/// deliveries get their turn.
const READ_BATCH: usize = 64;

/// The deadlines a connection waits for, served by one timer (each timer is ~100 bytes of
/// every idle connection's task).
struct Timers {
    /// Keep-alive: while reading, 1.5 times the keep-alive after the last packet.
    keep_alive: Option<Instant>,
    /// When the client's credential expires.
    expiry: Option<Instant>,
    /// When a subscriber with a full queue counts as stalled.
    stall: Option<Instant>,
}

impl Timers {
    /// The earliest deadline, if any.
    fn next(&self) -> Option<Instant> {
        [self.keep_alive, self.expiry, self.stall]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Sleeps until `at`, or forever.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Serves one accepted stream until it closes.
///
/// The connection's whole state is moved into one heap allocation at once, so the task
/// that awaits this (whose size is the largest state of its own call tree, e.g. every
/// listener kind's handshake) only holds a pointer to it.
pub(crate) fn run<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    broker: Arc<Broker>,
) -> Pin<Box<impl Future<Output = ()> + Send>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    run_after(std::future::ready(Some((stream, transport))), peer, broker)
}

/// Serves the stream `upgrade` yields (a TLS handshake, say; `None`: it failed, and was
/// logged), as [`run`] does. The upgrade runs inside the connection's boxed start, so
/// nothing of it stays in the task once CONNECT is handled; the connection is counted
/// (`connections_current`) from when the upgrade completed.
pub(crate) fn run_after<S, U>(
    upgrade: U,
    peer: SocketAddr,
    broker: Arc<Broker>,
) -> Pin<Box<impl Future<Output = ()> + Send>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    U: Future<Output = Option<(S, Transport)>> + Send,
{
    let start = Box::new(Start {
        upgrade,
        peer,
        broker,
    });
    Box::pin(serve_stream(start))
}

/// What a connection starts from, boxed: an async fn keeps its arguments for its whole
/// life, so the task holds this pointer (freed after CONNECT) rather than the stream (or
/// the handshake that yields it), the peer address and the transport themselves.
struct Start<U> {
    upgrade: U,
    peer: SocketAddr,
    broker: Arc<Broker>,
}

async fn serve_stream<S, U>(start: Box<Start<U>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    U: Future<Output = Option<(S, Transport)>> + Send,
{
    // Boxed: the handshakes' state is large and needed once; inline, it would stay part
    // of every connection's resident state. The start (the transport: listener name,
    // client certificates) moves in and is dropped with it: only CONNECT needs it.
    let established = Box::pin(async move {
        let Start {
            upgrade,
            peer,
            broker,
        } = *start;
        let (stream, transport) = upgrade.await?;
        let open = broker.config.observer.metrics().connection_opened();
        let codec = MqttCodec::server(broker.config.codec_limits());
        let wire = Wire::new(stream, codec);
        let connection = handshake::establish(wire, peer, &transport, broker).await?;
        Some((connection, open))
    })
    .await;
    // The connection state is its own allocation, reached through one pointer here.
    if let Some((mut connection, _open)) = established {
        let exit = connection.serve_packets().await;
        Box::pin((*connection).finish(exit)).await;
    }
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn next_deadline(&self) -> Option<Instant> {
        let keep_alive = Duration::from_secs(self.keep_alive.into());
        (self.keep_alive > 0).then(|| Instant::now() + keep_alive.mul_f32(1.5))
    }

    async fn serve_packets(&mut self) -> Exit {
        self.recheck_subscriptions(true);
        if let Err(exit) = Box::pin(self.resume()).await {
            return exit;
        }
        let mut deadline = self.next_deadline();
        let expiry = self.credential_deadline();
        let admission_depth = self.broker.config.admission_depth();
        loop {
            // A takeover kicks through the slot and the server's shutdown is announced
            // to every slot (both wake `wake`): checked before every wait, in this order,
            // as the first branches of a biased select would be. No wait on a token of its
            // own: each would be part of every idle connection's task.
            if self.slot.kicked(self.id) {
                return Exit::TakenOver;
            }
            if self.broker.shutdown.is_cancelled() {
                return Exit::Shutdown;
            }
            self.recheck_subscriptions(false);
            // Boxed (allocated only when something is queued): the delivery path's
            // state would otherwise stay part of every idle connection.
            let queued = !self.slot.state().queue.is_empty();
            if queued && let Err(exit) = Box::pin(self.pump()).await {
                return exit;
            }
            let stall = self.stall_deadline();
            // While a PUBLISH waits and enough is held behind it, or too many replies wait
            // for the store, the client is not read (TCP back-pressure) and its keep-alive
            // clock does not run.
            let reading = self.flow.reads_more() && self.pending.reads_more();
            let timers = Timers {
                keep_alive: deadline.filter(|_| reading),
                expiry,
                stall,
            };
            let first_pending = self.pending.first();
            let store = first_pending.and(self.broker.store.clone());
            tokio::select! {
                biased;
                frame = self.wire.next_boxed(), if reading => {
                    deadline = self.next_deadline();
                    // Boxed, once per read batch, for the same reason.
                    if let Err(exit) = Box::pin(self.on_frames(frame)).await {
                        return exit;
                    }
                }
                // Boxed, and only while there is something to wait for: an idle
                // connection's task holds neither of the next two futures.
                Some(()) = OptionFuture::from(
                    self.flow.is_waiting().then(|| Box::pin(self.flow.retry_due(admission_depth)))
                ) => {
                    deadline = self.next_deadline();
                    if let Err(exit) = Box::pin(self.retry_waiting()).await {
                        return exit;
                    }
                }
                Some(committed) = OptionFuture::from(first_pending.map(|ticket| {
                    Box::pin(replies::committed(store.as_deref(), Some(ticket)))
                })) => {
                    if let Err(failure) = committed {
                        return replies::store_failed(failure);
                    }
                    if let Err(exit) = Box::pin(self.send_committed()).await {
                        return exit;
                    }
                }
                _ = self.slot.wake.notified() => {}
                _ = until(timers.next()) => {
                    if let Some(exit) = self.timer_exit(&timers) {
                        return exit;
                    }
                }
            }
        }
    }

    /// The exit a timer that fired stands for, checked in order: keep-alive, credential
    /// expiry, stalled subscriber.
    fn timer_exit(&self, timers: &Timers) -> Option<Exit> {
        let now = Instant::now();
        let passed = |at: Option<Instant>| at.is_some_and(|at| at <= now);
        if passed(timers.keep_alive) {
            Some(Exit::KeepAliveTimeout)
        } else if passed(timers.expiry) {
            Some(revalidate::credential_expired())
        } else if passed(timers.stall) {
            Some(self.stalled())
        } else {
            None
        }
    }

    /// When this connection counts as a stalled subscriber (see [`flow`]): its queue is
    /// where publishers wait (the admission depth).
    fn stall_deadline(&mut self) -> Option<Instant> {
        let full = {
            let (depth, max) = (
                self.broker.config.admission_depth(),
                self.broker.config.max_queued_messages,
            );
            self.slot.state().must_wait(depth, max)
        };
        let timeout = self.broker.config.stalled_subscriber_timeout;
        self.flow.stall_deadline(full, timeout)
    }

    /// Handles `first` and then every further frame that is already readable (at most
    /// [`READ_BATCH`] in all, and none once reading must pause for back-pressure), then
    /// flushes once: the acknowledgements and replies the handlers queued leave in one
    /// write, in the order the packets arrived. A frame is only taken from the stream when
    /// it will be handled: one taken is never dropped. Nothing is left unflushed while
    /// waiting for more input: the loop stops at the first frame that is not ready yet and
    /// flushes before returning.
    async fn on_frames(
        &mut self,
        first: Box<Option<Result<Packet, CodecError>>>,
    ) -> Result<(), Exit> {
        let mut frame = *first;
        let mut handled = 0;
        loop {
            match frame {
                None => return Err(Exit::Closed),
                Some(Err(error)) => return Err(Exit::from_codec(error)),
                Some(Ok(packet)) => self.handle(packet).await?,
            }
            handled += 1;
            if handled == READ_BATCH || !self.flow.reads_more() {
                break;
            }
            match self.wire.next().now_or_never() {
                Some(next) => frame = next,
                None => break,
            }
        }
        self.flush().await
    }

    /// Queues a packet for sending (bounded by the write timeout): waits until the write
    /// buffer has room (it is written out when over its limit), then encodes into it.
    /// Waiting before taking the packet keeps no second copy of it in this future.
    async fn feed(&mut self, packet: Packet) -> Result<(), Exit> {
        let timeout = self.broker.config.write_timeout;
        let ready = std::future::poll_fn(|cx| self.wire.poll_ready(cx));
        match tokio::time::timeout(timeout, ready).await {
            Ok(Ok(())) => {}
            Ok(Err(CodecError::Io(_))) | Err(_) => return Err(Exit::Closed),
            Ok(Err(error)) => return Err(Exit::encoding(error)),
        }
        match self.wire.start_send(packet) {
            Ok(()) => Ok(()),
            Err(CodecError::Io(_)) => Err(Exit::Closed),
            Err(error) => Err(Exit::encoding(error)),
        }
    }

    async fn flush(&mut self) -> Result<(), Exit> {
        let timeout = self.broker.config.write_timeout;
        match tokio::time::timeout(timeout, self.wire.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Exit::Closed),
        }
    }

    /// Sends one packet now.
    async fn send(&mut self, packet: Packet) -> Result<(), Exit> {
        self.feed(packet).await?;
        self.flush().await
    }

    async fn finish(mut self, exit: Exit) {
        self.log_exit(&exit);
        let reason = exit.disconnect_reason();
        if let Some(reason) = reason.filter(|_| self.version == ProtocolVersion::V5) {
            let _ = self.send(Packet::Disconnect(Disconnect::new(reason))).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.wire.close()).await;
        let will = self.will.take().filter(|_| exit.publishes_will());
        let connection = self.id;
        let (broker, slot) = (self.broker.clone(), self.slot.clone());
        if let Some(will) = will {
            will::publish_after_loss(&broker, &slot, self.authorizer, *will);
        }
        broker.detach(&slot, connection);
    }

    fn log_exit(&self, exit: &Exit) {
        match exit {
            Exit::Protocol { reason, why } => tracing::info!(
                client = %self.client_id, peer = %self.peer, reason = %reason,
                "closing connection: {why}"
            ),
            other => {
                tracing::debug!(client = %self.client_id, peer = %self.peer, "connection ended: {other:?}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::auth::AnonymousAuthenticator;
    use crate::decide::Engine;
    use crate::policy::Policy;
    use arc_swap::ArcSwap;

    /// The bytes every connection's task holds while it waits for input (the connection's
    /// state, [`Connection`], is a separate allocation with its own bound).
    const MAX_TASK_FUTURE_BYTES: usize = 480;

    /// The bytes of one connection's state.
    const MAX_CONNECTION_BYTES: usize = 480;

    fn broker() -> Arc<Broker> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/xfinity.policy");
        let policy = Policy::load(path).expect("policies/xfinity.policy loads");
        let engine = Engine::new(&policy.checked).expect("policies/xfinity.policy compiles");
        let engines = Arc::new(ArcSwap::from_pointee(engine));
        let config = crate::broker::config::BrokerConfig::default();
        Arc::new(Broker::new(
            engines,
            config,
            Arc::new(AnonymousAuthenticator),
        ))
    }

    #[test]
    fn connection_task_future_stays_small() {
        let (stream, _client) = tokio::io::duplex(64);
        let peer = SocketAddr::from(([127, 0, 0, 1], 1883));
        let future = run(stream, peer, Transport::default(), broker());
        let size = std::mem::size_of_val(&*future);
        println!("connection::run future: {size} bytes");
        assert!(
            size <= MAX_TASK_FUTURE_BYTES,
            "connection::run future is {size} bytes, over the {MAX_TASK_FUTURE_BYTES}-byte bound"
        );
    }

    #[test]
    fn connection_state_stays_small() {
        let size = std::mem::size_of::<Connection<tokio::net::TcpStream>>();
        println!("Connection<TcpStream>: {size} bytes");
        assert!(
            size <= MAX_CONNECTION_BYTES,
            "Connection is {size} bytes, over the {MAX_CONNECTION_BYTES}-byte bound"
        );
    }
}
