//! Session state that outlives a connection: subscriptions, the message queue, QoS 1/2
//! messages in flight both ways — and the slot that hands it from one connection to the next.
//!
//! A [`SessionSlot`] exists per client id while the session exists. At most one
//! connection is *live* on it; a new CONNECT with the same client id kicks the live one
//! and waits for it to let go ([`SessionSlot::take_over`]) — the client-id takeover MQTT
//! requires — but only when it is the same [`Principal`]: the session's owner is recorded
//! when it is attached, and [`SessionSlot::owned_by_another`] tells the broker to refuse
//! anyone else while the session exists or a connection is live. The queue is bounded:
//! when full, the oldest queued message is dropped and counted; QoS 0 messages are not
//! queued for an offline session. Locks here are `std` mutexes held only for short,
//! non-async sections. This module must never decide authorization.

use crate::broker::codec::QoS;
use crate::broker::message::Delivery;
use crate::broker::principal::Principal;
use crate::broker::router::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Where an outgoing QoS 1/2 message is in its handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// QoS 1 sent, waiting for PUBACK.
    AwaitAck,
    /// QoS 2 sent, waiting for PUBREC.
    AwaitRec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitComp,
}

/// A message sent to the client and not yet acknowledged.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub packet_id: u16,
    pub delivery: Delivery,
    pub stage: Stage,
}

/// What happened to a delivery offered to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// Queued after dropping the oldest queued message (the queue was full).
    DroppedOldest,
    /// Not queued: QoS 0 for an offline session.
    DroppedOffline,
}

/// The state of one session.
#[derive(Debug, Default)]
pub struct SessionState {
    /// False once the session ended (clean start, expiry): a resume then finds nothing.
    pub exists: bool,
    pub online: bool,
    /// The principal the session belongs to (set at every attach; cleared with the session).
    pub owner: Option<Principal>,
    /// Filter (as subscribed, `$share/` included) → subscription.
    pub subscriptions: HashMap<String, Entry>,
    pub queue: VecDeque<Delivery>,
    pub outgoing: VecDeque<Outgoing>,
    /// Incoming QoS 2 packet ids waiting for PUBREL.
    pub awaiting_release: HashSet<u16>,
    /// Session expiry in seconds (0: ends with the connection; `u32::MAX`: never).
    pub expiry: u32,
    /// Incremented at every attach, so timers can tell whether a client came back.
    pub generation: u64,
    /// Messages dropped because the queue was full.
    pub dropped: u64,
    last_packet_id: u16,
}

impl SessionState {
    /// Offers a delivery, applying the queue bound.
    pub fn enqueue(&mut self, delivery: Delivery, max_queued: usize) -> Enqueued {
        if !self.online && delivery.qos == QoS::AtMostOnce {
            return Enqueued::DroppedOffline;
        }
        let mut outcome = Enqueued::Queued;
        while self.queue.len() >= max_queued.max(1) {
            self.queue.pop_front();
            self.dropped += 1;
            outcome = Enqueued::DroppedOldest;
        }
        self.queue.push_back(delivery);
        outcome
    }

    /// A packet id not used by any outgoing message. Requires `outgoing.len() < 65535`.
    pub fn next_packet_id(&mut self) -> u16 {
        loop {
            self.last_packet_id = self.last_packet_id.checked_add(1).unwrap_or(1);
            let id = self.last_packet_id;
            if !self.outgoing.iter().any(|o| o.packet_id == id) {
                return id;
            }
        }
    }

    /// Position of the outgoing message `id` in `stage`.
    pub fn find_outgoing(&self, id: u16, stage: Stage) -> Option<usize> {
        self.outgoing
            .iter()
            .position(|o| o.packet_id == id && o.stage == stage)
    }

    /// Forgets everything but the generation; returns the filters to unroute.
    pub fn clear(&mut self) -> Vec<String> {
        let filters = self.subscriptions.drain().map(|(f, _)| f).collect();
        self.queue.clear();
        self.outgoing.clear();
        self.awaiting_release.clear();
        self.exists = false;
        self.owner = None;
        filters
    }
}

struct Live {
    connection: u64,
    kick: CancellationToken,
}

/// The session of one client id, shared by its successive connections.
pub struct SessionSlot {
    pub client_id: Arc<str>,
    state: Mutex<SessionState>,
    /// Woken when a delivery is queued.
    pub wake: Notify,
    live: Mutex<Option<Live>>,
    released: Notify,
    /// Serializes attaches for this client id.
    pub(crate) attach_lock: tokio::sync::Mutex<()>,
    /// Attaches in progress; the slot is not removed from the broker while non-zero.
    pub(crate) attaching: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SessionSlot {
    pub fn new(client_id: Arc<str>) -> SessionSlot {
        SessionSlot {
            client_id,
            state: Mutex::new(SessionState::default()),
            wake: Notify::new(),
            live: Mutex::new(None),
            released: Notify::new(),
            attach_lock: tokio::sync::Mutex::new(()),
            attaching: AtomicUsize::new(0),
        }
    }

    /// The state, locked. Never hold it across an `.await`.
    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        lock(&self.state)
    }

    /// Queues a delivery and wakes the live connection.
    pub fn deliver(&self, delivery: Delivery, max_queued: usize) -> Enqueued {
        let outcome = self.state().enqueue(delivery, max_queued);
        if outcome != Enqueued::DroppedOffline {
            self.wake.notify_one();
        }
        outcome
    }

    pub fn is_live(&self) -> bool {
        lock(&self.live).is_some()
    }

    pub(crate) fn is_live_connection(&self, connection: u64) -> bool {
        lock(&self.live)
            .as_ref()
            .is_some_and(|l| l.connection == connection)
    }

    pub(crate) fn set_live(&self, connection: u64, kick: CancellationToken) {
        *lock(&self.live) = Some(Live { connection, kick });
    }

    /// Clears the live connection if it is `connection`; wakes a waiting takeover.
    pub(crate) fn release(&self, connection: u64) -> bool {
        let mut live = lock(&self.live);
        let mine = live.as_ref().is_some_and(|l| l.connection == connection);
        if mine {
            *live = None;
        }
        drop(live);
        self.released.notify_waiters();
        mine
    }

    /// Kicks the live connection, if any, and waits (bounded) until it lets go. After the
    /// timeout the old connection is forgotten: its later release finds itself not live.
    pub(crate) async fn take_over(&self, timeout: Duration) -> bool {
        let released = self.released.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        let kick = match lock(&self.live).as_ref() {
            None => return false,
            Some(live) => live.kick.clone(),
        };
        kick.cancel();
        if tokio::time::timeout(timeout, &mut released).await.is_err() {
            tracing::warn!(client = %self.client_id, "takeover: old connection did not close in time");
            *lock(&self.live) = None;
        }
        true
    }

    /// The owner, if the session exists or a connection is live on it and its owner is not
    /// `principal`. Conservative under races: a session seen live or existing at either
    /// look counts as held.
    pub(crate) fn owned_by_another(&self, principal: &Principal) -> Option<Principal> {
        let live = self.is_live();
        let state = self.state();
        let held = live || state.exists;
        match &state.owner {
            Some(owner) if held && owner != principal => Some(owner.clone()),
            _ => None,
        }
    }

    pub(crate) fn attaching(&self) -> usize {
        self.attaching.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::Properties;
    use crate::broker::message::Message;
    use bytes::Bytes;

    fn delivery(qos: QoS, n: u8) -> Delivery {
        Delivery {
            message: Arc::new(Message {
                topic: "t".into(),
                payload: Bytes::copy_from_slice(&[n]),
                qos,
                retain: false,
                properties: Properties::default(),
                expires_at: None,
                publisher: None,
            }),
            qos,
            retain: false,
            subscription_ids: Default::default(),
        }
    }

    #[test]
    fn full_queue_drops_the_oldest() {
        let mut state = SessionState {
            online: true,
            ..SessionState::default()
        };
        for n in 0..3 {
            assert_eq!(
                state.enqueue(delivery(QoS::AtLeastOnce, n), 3),
                Enqueued::Queued
            );
        }
        assert_eq!(
            state.enqueue(delivery(QoS::AtLeastOnce, 3), 3),
            Enqueued::DroppedOldest
        );
        let first: Vec<u8> = state.queue.iter().map(|d| d.message.payload[0]).collect();
        assert_eq!(first, [1, 2, 3]);
        assert_eq!(state.dropped, 1);
        state.online = false;
        assert_eq!(
            state.enqueue(delivery(QoS::AtMostOnce, 4), 3),
            Enqueued::DroppedOffline
        );
    }

    #[test]
    fn packet_ids_skip_ids_in_flight_and_zero() {
        let mut state = SessionState {
            last_packet_id: u16::MAX - 1,
            ..SessionState::default()
        };
        let d = delivery(QoS::AtLeastOnce, 0);
        state.outgoing.push_back(Outgoing {
            packet_id: 1,
            delivery: d,
            stage: Stage::AwaitAck,
        });
        assert_eq!(state.next_packet_id(), u16::MAX);
        assert_eq!(state.next_packet_id(), 2);
    }

    #[test]
    fn a_held_session_is_owned_by_its_principal_only() {
        use crate::identity::Identity;
        let principal = |pid: &str| Principal::new(Identity::asserted("app", [("pid", pid)]));
        let slot = SessionSlot::new("app-x".into());
        assert_eq!(
            slot.owned_by_another(&principal("P2")),
            None,
            "no session yet"
        );
        {
            let mut state = slot.state();
            state.exists = true;
            state.owner = Some(principal("P1"));
        }
        assert_eq!(slot.owned_by_another(&principal("P1")), None);
        assert_eq!(
            slot.owned_by_another(&principal("P2")),
            Some(principal("P1"))
        );
        // Offline but persisted, or live with its session just ended: still held.
        slot.state().online = false;
        assert!(slot.owned_by_another(&principal("P2")).is_some());
        slot.set_live(1, CancellationToken::new());
        slot.state().exists = false;
        assert!(slot.owned_by_another(&principal("P2")).is_some());
        // Neither live nor existing: free for anyone.
        slot.release(1);
        assert_eq!(slot.owned_by_another(&principal("P2")), None);
        assert!(slot.state().clear().is_empty());
        assert_eq!(slot.state().owner, None, "clearing forgets the owner");
    }

    #[tokio::test]
    async fn takeover_kicks_and_waits_for_release() {
        let slot = Arc::new(SessionSlot::new("c".into()));
        let kick = CancellationToken::new();
        slot.set_live(1, kick.clone());
        let old = {
            let slot = slot.clone();
            tokio::spawn(async move {
                kick.cancelled().await;
                slot.release(1)
            })
        };
        assert!(slot.take_over(Duration::from_secs(5)).await);
        assert!(old.await.unwrap());
        assert!(!slot.is_live());
        // A connection that never lets go is forgotten after the timeout.
        slot.set_live(2, CancellationToken::new());
        assert!(slot.take_over(Duration::from_millis(50)).await);
        assert!(!slot.is_live_connection(2));
        assert!(!slot.release(2));
    }
}
