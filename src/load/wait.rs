//! Bounded waits for the load tool: the bound on one handshake step ([`STEP`]) and a
//! timeout ([`within`]) that names what it waited for, so a broker that stops answering
//! ends the step with a [`LoadError::Timeout`]. Costs one timer per wait; nothing here may
//! wait without a bound.

use super::LoadError;
use std::time::Duration;

/// Bound on any single handshake step (connect, CONNACK, SUBACK).
pub const STEP: Duration = Duration::from_secs(10);

/// Waits at most `limit` for `future`.
pub async fn within<T>(
    what: &str,
    limit: Duration,
    future: impl Future<Output = T>,
) -> Result<T, LoadError> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| LoadError::Timeout {
            what: what.to_string(),
            after: limit,
        })
}
