//! The broker's side of the durable store (`serve --data-dir`): taking in what the store
//! held at start (sessions offline with their queues and in-flight messages, subscriptions
//! routed again, retained messages decided again for their publishers), and recording a
//! session's changes. Called with the session's state locked, so records reach the store in
//! the order the state changed. Costs: one submission per session change. This module must
//! never decide authorization: what it restores is checked by the broker like anything new.

use super::{Broker, lock};
use crate::broker::session::{Outgoing, SessionSlot, SessionState};
use crate::broker::store::record::{self, SessionMeta};
use crate::broker::store::{Op, Snapshot, Store, Ticket};
use std::sync::Arc;

impl Broker {
    /// Takes in what the store had: every persistent session (offline, its subscriptions
    /// routed again, its queue and in-flight messages as they were) and every retained
    /// message, then re-checks the retained messages against the current policy. Queued
    /// messages are receive-checked when sent, and subscriptions when their client returns,
    /// like any other.
    pub(super) fn restore(&self, snapshot: Snapshot) {
        let now = crate::broker::store::record::unix_millis();
        let (mut sessions, mut expired) = (0, 0);
        for restored in snapshot.sessions {
            let meta = restored.meta;
            // A session that was online when the broker stopped went offline then.
            let since = meta.offline_since.unwrap_or(now);
            let left_ms = u64::from(meta.expiry)
                .saturating_mul(1000)
                .saturating_sub(now.saturating_sub(since));
            let client = restored.client_id;
            if meta.expiry != u32::MAX && left_ms == 0 {
                expired += 1;
                if let Some(store) = &self.store {
                    store.submit_one(Op::DeleteSession { client });
                }
                continue;
            }
            let outgoing = restored
                .outgoing
                .into_iter()
                .map(|(packet_id, stage, delivery)| Outgoing {
                    packet_id,
                    delivery,
                    stage,
                })
                .collect();
            let mut state = SessionState::restored(
                meta.owner,
                meta.expiry,
                Some(since),
                restored.queue,
                outgoing,
                restored.awaiting_release.into_iter().collect(),
            );
            {
                let mut router = self.router.write().unwrap_or_else(|p| p.into_inner());
                for (filter, entry) in meta.subscriptions {
                    router.subscribe(&client, &filter, entry.clone());
                    state.subscriptions.insert(filter, entry);
                }
            }
            let slot = Arc::new(SessionSlot::with_state(client.clone(), state));
            if meta.expiry != u32::MAX {
                let secs = u32::try_from(left_ms.div_ceil(1000)).unwrap_or(u32::MAX);
                lock(&self.restored_expiries).push((slot.clone(), secs));
            }
            lock(&self.sessions).insert(client, slot);
            sessions += 1;
        }
        let retained = snapshot.retained.len();
        {
            let mut store = self.retained.write().unwrap_or_else(|p| p.into_inner());
            for (message, publisher) in snapshot.retained {
                store.store(&Arc::new(message), publisher);
            }
        }
        let recheck = self.recheck_retained();
        tracing::info!(
            sessions,
            expired,
            retained,
            retained_dropped = recheck.dropped,
            "store: restored"
        );
    }

    /// Starts the expiry timers of restored offline sessions (needs the runtime).
    pub fn start_restored_expiries(self: &Arc<Self>) {
        let restored = std::mem::take(&mut *lock(&self.restored_expiries));
        for (slot, secs) in restored {
            let generation = slot.state().generation;
            self.schedule_expiry(slot, generation, secs);
        }
    }

    /// Records the session's current state in the store (a persistent session), or removes
    /// it (one that is no longer persistent). Call with the state locked, so records reach
    /// the store in the order the state changed. Returns the ticket to wait for.
    pub(crate) fn save_session(&self, client: &Arc<str>, state: &mut SessionState) -> Ticket {
        let Some(store) = &self.store else {
            return Ticket::NONE;
        };
        if state.persistent() {
            let Some(op) = session_op(client, state) else {
                return Ticket::NONE;
            };
            state.stored = true;
            return store.submit_one(op);
        }
        if std::mem::take(&mut state.stored) {
            return store.submit_one(Op::DeleteSession {
                client: client.clone(),
            });
        }
        Ticket::NONE
    }

    /// Ends a session: forgets its subscriptions, queue and in-flight state, in memory and
    /// in the store. Call with the state locked.
    pub(super) fn end_session(&self, client: &Arc<str>, state: &mut SessionState) {
        self.unroute(client, state.clear());
        self.save_session(client, state);
    }

    /// The store, if `state` is a session whose messages it keeps.
    pub(crate) fn store_for(&self, state: &SessionState) -> Option<&Store> {
        self.store.as_deref().filter(|_| state.persistent())
    }
}

/// The session record of `state`, if it has an owner.
fn session_op(client: &Arc<str>, state: &SessionState) -> Option<Op> {
    let owner = state.owner.clone()?;
    let meta = SessionMeta {
        owner,
        expiry: state.expiry,
        offline_since: state.offline_since,
        subscriptions: state
            .subscriptions
            .iter()
            .map(|(f, e)| (f.clone(), e.clone()))
            .collect(),
    };
    Some(Op::PutSession {
        client: client.clone(),
        record: record::session(&meta),
    })
}
