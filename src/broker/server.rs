//! The single-listener entry point: `serve` takes an already-bound TCP listener and a
//! shutdown signal (tests bind port 0 and pass a oneshot receiver).
//!
//! It builds the shared [`Broker`] and runs the accept loop of
//! [`listener::serve_listeners`](crate::broker::listener::serve_listeners) — one task per
//! connection (tracked, so shutdown can wait for them), at most `max_connections` at once
//! (at the cap new clients wait in the listen backlog, as in mini-redis); on shutdown the
//! broker stops accepting, tells every connection (5.0 clients get DISCONNECT 0x8B) and
//! waits up to `shutdown_grace`. TLS and WebSocket listeners go through `serve_listeners`
//! directly. This module must never handle packets itself.

use crate::broker::auth::Authenticator;
use crate::broker::authorize::SharedEngine;
use crate::broker::config::BrokerConfig;
use crate::broker::listener::{Listener, Protocol, serve_listeners};
use crate::broker::state::Broker;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Runs the broker on `listener` (plain MQTT over TCP) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    engine: SharedEngine,
    config: BrokerConfig,
    authenticator: Arc<dyn Authenticator>,
    shutdown: impl Future,
) {
    let broker = Arc::new(Broker::new(engine, config, authenticator));
    let listener = Listener {
        socket: listener,
        protocol: Protocol::Tcp,
    };
    serve_listeners(vec![listener], broker, shutdown).await;
}
