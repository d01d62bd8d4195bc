//! The accept loop: `serve` takes an already-bound listener and a shutdown signal.
//!
//! One task per connection (tracked, so shutdown can wait for them), at most
//! `max_connections` at once — at the cap the loop stops accepting and new clients wait
//! in the listen backlog, as in mini-redis. When `shutdown` resolves, the broker stops
//! accepting, tells every connection (5.0 clients get DISCONNECT 0x8B), and waits up to
//! `shutdown_grace` for them. Tests bind port 0 and pass a oneshot receiver. This module
//! must never handle packets itself.

use crate::broker::auth::{Authenticator, Transport};
use crate::broker::authorize::SharedEngine;
use crate::broker::config::BrokerConfig;
use crate::broker::connection;
use crate::broker::state::Broker;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

/// Runs the broker on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    engine: SharedEngine,
    config: BrokerConfig,
    authenticator: Arc<dyn Authenticator>,
    shutdown: impl Future,
) {
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let broker = Arc::new(Broker::new(engine, config, authenticator));
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "broker listening");
    }
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let broker = broker.clone();
        tracker.spawn(async move {
            connection::run(stream, peer, Transport::plain(), broker).await;
            drop(permit);
        });
    }
    tracing::info!("broker shutting down");
    broker.shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(broker.config.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period");
    }
}
