//! What an established connection re-validates after CONNECT: its subscriptions when the
//! policy is swapped, and the lifetime of the credential it authenticated with.
//!
//! After a reload every existing subscription is decided again with the new policy (the
//! same `subscribe` request, `$share/` included, that admitted it) and those now denied are
//! removed from the session and the router, one log line each. A connection whose JWT
//! `exp` passes is ended (5.0: DISCONNECT 0xA0 Maximum connect time; 3.1.1: closed).
//! This module must never add a subscription or extend a credential's lifetime.

use super::{Connection, Exit};
use crate::decide::Request;
use crate::mqtt::codec::ReasonCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// 5.0 reason 0xA0: "the maximum connection time authorized for this connection has been
/// exceeded" — the credential's lifetime.
pub(super) const CREDENTIAL_EXPIRED: ReasonCode = ReasonCode(0xA0);

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Removes the subscriptions the current policy no longer allows. With `always` false,
    /// only when the policy changed since the last call.
    pub(super) fn recheck_subscriptions(&mut self, always: bool) {
        if !self.authorizer.take_policy_change() && !always {
            return;
        }
        let filters: Vec<String> = self.slot.state().subscriptions.keys().cloned().collect();
        for filter in filters {
            if self
                .authorizer
                .decide(Request::subscribe(&filter))
                .is_allowed()
            {
                continue;
            }
            if self.broker.unsubscribe(&self.slot, &filter).0 {
                tracing::info!(
                    target: "topicguard::deny",
                    client = %self.client_id,
                    filter = %filter,
                    "subscription removed: the current policy no longer allows it"
                );
            }
        }
    }

    /// When the credential expires, as a tokio deadline (`None`: it does not, or too far
    /// ahead to represent).
    pub(super) fn credential_deadline(&self) -> Option<Instant> {
        let expires_at = self.authorizer.identity().expires_at?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let left = Duration::from_secs(expires_at.saturating_sub(now));
        // A far-future `exp` (from the token) may not fit in an Instant: then never.
        Instant::now().checked_add(left)
    }
}

/// The exit for a connection whose credential expired.
pub(super) fn credential_expired() -> Exit {
    Exit::protocol(
        CREDENTIAL_EXPIRED,
        "the client's credential (JWT exp) expired",
    )
}
