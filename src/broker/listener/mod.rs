//! Listeners: plain TCP, TLS, WebSocket and secure WebSocket, all feeding the one
//! connection task.
//!
//! A [`Listener`] is a bound socket and a [`Protocol`]. [`serve_listeners`] runs one accept
//! loop per listener over a shared [`Broker`]: at most `max_connections` connections in all
//! (at the cap, loops stop accepting and clients wait in the backlog); each accepted socket
//! gets its own task, which does the TLS handshake and/or WebSocket upgrade within the
//! CONNECT deadline, records what it established in a [`Transport`] (the verified client
//! chain, a WebSocket token), and hands the resulting byte stream to the connection task.
//! On shutdown the loops stop, connections are told and awaited for `shutdown_grace`.
//! This module must never look inside MQTT packets: it only adapts streams.

pub mod tls;
pub mod ws;

use crate::broker::auth::Transport;
use crate::broker::connection;
use crate::broker::state::Broker;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How a listener's connections carry MQTT.
#[derive(Clone)]
pub enum Protocol {
    /// Plain MQTT over TCP.
    Tcp,
    /// MQTT over TLS.
    Tls(TlsAcceptor),
    /// MQTT over WebSocket.
    Ws,
    /// MQTT over WebSocket over TLS.
    Wss(TlsAcceptor),
}

impl Protocol {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Tls(_) => "tls",
            Protocol::Ws => "ws",
            Protocol::Wss(_) => "wss",
        }
    }
}

/// A bound socket and how to speak on it.
pub struct Listener {
    /// The bound socket.
    pub socket: TcpListener,
    /// What the socket speaks.
    pub protocol: Protocol,
}

/// Runs `broker` on every listener until `shutdown` resolves.
pub async fn serve_listeners(listeners: Vec<Listener>, broker: Arc<Broker>, shutdown: impl Future) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections.max(1)));
    broker.start_restored_expiries();
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let mut loops = Vec::new();
    for listener in listeners {
        let accept = accept_loop(
            listener,
            broker.clone(),
            limit.clone(),
            tracker.clone(),
            stop.clone(),
        );
        loops.push(tokio::spawn(accept));
    }
    shutdown.await;
    tracing::info!("broker shutting down");
    stop.cancel();
    for accept in loops {
        let _ = accept.await;
    }
    broker.shut_down();
    tracker.close();
    if tokio::time::timeout(broker.config.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period");
    }
}

async fn accept_loop(
    listener: Listener,
    broker: Arc<Broker>,
    limit: Arc<Semaphore>,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    let name = listener.protocol.name();
    if let Ok(address) = listener.socket.local_addr() {
        tracing::info!(%address, listener = name, "broker listening");
    }
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.socket.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, listener = name, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let task = connection_task(stream, peer, listener.protocol.clone(), broker.clone());
        tracker.spawn(holding(task, permit));
    }
}

/// The task spawned per connection: runs it, holding its place under `max_connections`.
async fn holding(task: Pin<Box<dyn Future<Output = ()> + Send>>, permit: OwnedSemaphorePermit) {
    task.await;
    drop(permit);
}

/// A connection's whole work as one boxed future, so the spawned task (whose cell is part
/// of every idle connection) holds only a pointer and the permit: plain TCP goes straight
/// to the connection, and TLS's handshake runs inside the connection's own start (freed
/// once CONNECT is handled); WebSockets first complete their upgrade ([`websocket`]).
fn connection_task(
    stream: TcpStream,
    peer: SocketAddr,
    protocol: Protocol,
    broker: Arc<Broker>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    let transport = Transport {
        listener: Arc::from(protocol.name()),
        ..Transport::default()
    };
    match protocol {
        Protocol::Tcp => connection::run(stream, peer, transport, broker),
        Protocol::Tls(acceptor) => {
            let deadline = broker.config.connect_timeout;
            let upgrade = async move {
                let mut transport = transport;
                let tls = tls_handshake(&acceptor, stream, peer, deadline, &mut transport).await?;
                Some((tls, transport))
            };
            connection::run_after(upgrade, peer, broker)
        }
        Protocol::Ws => Box::pin(websocket(stream, peer, None, transport, broker)),
        Protocol::Wss(acceptor) => {
            Box::pin(websocket(stream, peer, Some(acceptor), transport, broker))
        }
    }
}

/// Completes the WebSocket listeners' handshakes — TLS first for `wss` — within the
/// CONNECT deadline, and runs the connection on the resulting stream. The handshakes are
/// boxed so their state lives on the heap only while they run, not in every idle
/// connection's task.
async fn websocket(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    mut transport: Transport,
    broker: Arc<Broker>,
) {
    let deadline = broker.config.connect_timeout;
    let Some(acceptor) = tls else {
        return Box::pin(over_websocket(stream, peer, deadline, transport, broker)).await;
    };
    let started = tokio::time::Instant::now();
    let handshake = tls_handshake(&acceptor, stream, peer, deadline, &mut transport);
    let Some(tls) = Box::pin(handshake).await else {
        return;
    };
    let left = deadline.saturating_sub(started.elapsed());
    Box::pin(over_websocket(tls, peer, left, transport, broker)).await
}

/// Upgrades `stream` to a WebSocket within `deadline` and runs the connection over it.
async fn over_websocket<S>(
    stream: S,
    peer: SocketAddr,
    deadline: Duration,
    mut transport: Transport,
    broker: Arc<Broker>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let max_packet = broker.config.max_packet_size;
    let upgrade = ws_upgrade(stream, peer, deadline, max_packet, &mut transport);
    let Some(ws) = Box::pin(upgrade).await else {
        return;
    };
    connection::run(ws, peer, transport, broker).await
}

async fn tls_handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Duration,
    transport: &mut Transport,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
        Err(_) => {
            tracing::info!(%peer, "closing: no TLS handshake within {deadline:?}");
            None
        }
        Ok(Err(error)) => {
            tracing::info!(target: "topicguard::deny", %peer, "TLS handshake failed: {error}");
            None
        }
        Ok(Ok(tls)) => {
            let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
            transport.peer_certificates = chain.to_vec();
            Some(tls)
        }
    }
}

async fn ws_upgrade<S>(
    stream: S,
    peer: SocketAddr,
    deadline: Duration,
    max_packet: usize,
    transport: &mut Transport,
) -> Option<ws::WsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match tokio::time::timeout(deadline, ws::accept(stream, max_packet)).await {
        Err(_) => {
            tracing::info!(%peer, "closing: no WebSocket upgrade within {deadline:?}");
            None
        }
        Ok(Err(error)) => {
            tracing::info!(%peer, "WebSocket upgrade failed: {error}");
            None
        }
        Ok(Ok((ws, token))) => {
            transport.bearer_token = token;
            Some(ws)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::auth::AnonymousAuthenticator;
    use crate::broker::config::BrokerConfig;
    use crate::decide::Engine;
    use crate::policy::Policy;
    use arc_swap::ArcSwap;

    /// The bytes of the future each connection's spawned task holds (tokio's task cell
    /// around it is part of every idle connection).
    const MAX_SPAWNED_FUTURE_BYTES: usize = 72;

    #[tokio::test]
    async fn the_spawned_task_holds_only_the_boxed_connection_and_its_permit() {
        let policy = Policy::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies/xfinity.policy"
        ))
        .expect("policies/xfinity.policy loads");
        let engine = Engine::new(&policy.checked).expect("compiles");
        let broker = Arc::new(Broker::new(
            Arc::new(ArcSwap::from_pointee(engine)),
            BrokerConfig::default(),
            Arc::new(AnonymousAuthenticator),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let ((stream, peer), _client) =
            tokio::join!(async { listener.accept().await.expect("accept") }, async {
                client.await.expect("connect")
            });
        let permit = Arc::new(Semaphore::new(1)).acquire_owned().await.unwrap();
        let task = holding(connection_task(stream, peer, Protocol::Tcp, broker), permit);
        let size = std::mem::size_of_val(&task);
        println!("spawned connection task future: {size} bytes");
        assert!(
            size <= MAX_SPAWNED_FUTURE_BYTES,
            "{size} bytes, over the {MAX_SPAWNED_FUTURE_BYTES}-byte bound"
        );
    }
}
