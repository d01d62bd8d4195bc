//! Session state that outlives a connection: subscriptions, the message queue, QoS 1/2
//! messages in flight both ways — and the slot that hands it from one connection to the next.
//!
//! A [`SessionSlot`] exists per client id while the session exists. At most one
//! connection is *live* on it; a new CONNECT with the same client id kicks the live one
//! and waits for it to let go ([`SessionSlot::take_over`]) — the client-id takeover MQTT
//! requires (MQTT-3.1.4-2) — but only when it is the same [`Principal`]: the session's owner
//! is recorded when it is attached, and [`SessionSlot::owned_by_another`] tells the broker to
//! refuse anyone else while the session exists or a connection is live. The queue has a
//! bound (`max_queued_messages`) and two rules for it ([`SessionState::enqueue`]): a QoS 1/2
//! delivery of a client's PUBLISH is only offered once the broker checked that every
//! matching queue has room (`Broker::admit`; an online queue has room only under the
//! shallower `admission_depth`, [`SessionState::must_wait`]), and is then never dropped — so
//! a queue may pass its bound by the few messages admitted concurrently, one per broker
//! worker thread at most; anything else (QoS 0, and messages the broker originates: retained messages on
//! SUBSCRIBE, wills, shadow responses) is dropped, and counted, when the queue is full, and
//! QoS 0 is not queued for an offline session. Publishers waiting for room are woken through
//! [`SessionSlot::room`]. Locks here are `std` mutexes held only for short, non-async
//! sections. This module must never decide authorization, and never drop a queued message
//! to make room.

use crate::broker::message::Delivery;
use crate::broker::message::Stage;
use crate::broker::principal::Principal;
use crate::broker::router::Entry;
use crate::broker::store::{Op, Store, Ticket};
use crate::mqtt::codec::QoS;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// A message sent to the client and not yet acknowledged.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub(crate) packet_id: u16,
    pub(crate) delivery: Delivery,
    pub(crate) stage: Stage,
}

/// What happened to a delivery offered to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// The message is in the queue.
    Queued,
    /// Not queued: the queue was full and the delivery was not an admitted QoS 1/2 one.
    DroppedFull,
    /// Not queued: QoS 0 for an offline session.
    DroppedOffline,
    /// Not queued: the session has ended (nothing is owed to it).
    NoSession,
}

/// Whether a delivery was admitted by the broker's room check (see [`SessionState::enqueue`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// A QoS 1/2 PUBLISH the broker checked every matching queue for: queued even past
    /// the bound (a QoS 0 delivery of it is still dropped when the queue is full).
    Admitted,
    /// Anything else: queued only while the queue is under its bound.
    BestEffort,
}

/// The state of one session.
#[derive(Debug, Default)]
pub struct SessionState {
    /// False once the session ended (clean start, expiry): a resume then finds nothing.
    pub exists: bool,
    pub(crate) online: bool,
    /// The principal the session belongs to (set at every attach; cleared with the session).
    pub owner: Option<Principal>,
    /// Filter (as subscribed, `$share/` included) → subscription.
    pub subscriptions: HashMap<String, Entry>,
    pub(crate) queue: VecDeque<Delivery>,
    pub(crate) outgoing: VecDeque<Outgoing>,
    /// Incoming QoS 2 packet ids waiting for PUBREL (a B-tree: 24 bytes while empty,
    /// half a hash set's, and every operation still logarithmic).
    pub awaiting_release: BTreeSet<u16>,
    /// Session expiry in seconds (0: ends with the connection; `u32::MAX`: never).
    pub expiry: u32,
    /// Incremented at every attach, so timers can tell whether a client came back.
    pub generation: u64,
    /// Deliveries dropped because the queue was full (QoS 0 and broker-originated ones).
    pub dropped: u64,
    /// When its client left (Unix milliseconds); `None` while connected.
    pub offline_since: Option<u64>,
    /// Whether the store holds a record of this session (see `Broker::save_session`).
    pub stored: bool,
    last_packet_id: u16,
    /// The sequence number of the last delivery queued.
    last_seq: u64,
}

impl SessionState {
    /// Offers a delivery: an ended session takes nothing, an offline one no QoS 0; a full
    /// queue takes only an admitted QoS 1/2 delivery. Never drops a queued message.
    pub fn enqueue(&mut self, delivery: Delivery, max_queued: usize, offer: Offer) -> Enqueued {
        if !self.exists {
            return Enqueued::NoSession;
        }
        let qos0 = delivery.qos == QoS::AtMostOnce;
        if !self.online && qos0 {
            return Enqueued::DroppedOffline;
        }
        if self.is_full(max_queued) && (qos0 || offer == Offer::BestEffort) {
            self.dropped += 1;
            return Enqueued::DroppedFull;
        }
        self.last_seq += 1;
        self.queue.push_back(Delivery {
            seq: self.last_seq,
            ..delivery
        });
        Enqueued::Queued
    }

    /// Whether this session outlives its connection (and so, with a store, a restart).
    pub fn persistent(&self) -> bool {
        self.exists && self.expiry > 0
    }

    /// A session as the store had it: offline, owned, with its queue and in-flight
    /// messages in order.
    pub fn restored(
        owner: Principal,
        expiry: u32,
        offline_since: Option<u64>,
        queue: Vec<Delivery>,
        outgoing: Vec<Outgoing>,
        awaiting_release: BTreeSet<u16>,
    ) -> SessionState {
        let last_seq = queue
            .iter()
            .chain(outgoing.iter().map(|o| &o.delivery))
            .map(|d| d.seq)
            .max()
            .unwrap_or(0);
        let last_packet_id = outgoing.iter().map(|o| o.packet_id).max().unwrap_or(0);
        SessionState {
            exists: true,
            owner: Some(owner),
            queue: queue.into(),
            outgoing: outgoing.into(),
            awaiting_release,
            expiry,
            offline_since,
            stored: true,
            last_packet_id,
            last_seq,
            ..SessionState::default()
        }
    }

    /// Whether the queue has reached its bound (an ended session is never full: it takes
    /// nothing, so nobody waits for it).
    pub fn is_full(&self, max_queued: usize) -> bool {
        self.exists && self.queue.len() >= max_queued.max(1)
    }

    /// Whether a client's QoS 1/2 message must wait before it is queued here: an online
    /// session holding `admission_depth` messages (the broker's early back-pressure), an
    /// offline one at its bound (`max_queued`, where `Broker::admit` ends it instead).
    pub fn must_wait(&self, admission_depth: usize, max_queued: usize) -> bool {
        let bound = if self.online {
            admission_depth.min(max_queued)
        } else {
            max_queued
        };
        self.is_full(bound)
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
    /// Their memory is released, not kept as capacity: a slot may live on for a reconnect.
    pub fn clear(&mut self) -> Vec<String> {
        let filters = std::mem::take(&mut self.subscriptions)
            .into_keys()
            .collect();
        self.queue = VecDeque::new();
        self.outgoing = VecDeque::new();
        self.awaiting_release = BTreeSet::new();
        self.exists = false;
        self.owner = None;
        self.offline_since = None;
        filters
    }
}

/// The connection currently live on a slot.
struct Live {
    connection: u64,
    /// Set by a takeover: the connection must end (it is woken through `wake`).
    kicked: bool,
}

/// The session of one client id, shared by its successive connections.
pub struct SessionSlot {
    pub(crate) client_id: Arc<str>,
    state: Mutex<SessionState>,
    /// Woken when a delivery is queued, and when the live connection is kicked: the
    /// connection re-checks both.
    pub wake: Notify,
    /// Woken (all waiters) when the queue may have room again, the session went offline
    /// or ended, or the live connection let go: publishers waiting for room re-check (see
    /// [`SessionSlot::wait_for_room`]), and so does a takeover waiting for the release.
    room: Notify,
    /// Publishers currently waiting on `room`; nobody is woken while it is zero.
    room_waiters: AtomicUsize,
    live: Mutex<Option<Live>>,
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
    pub(crate) fn new(client_id: Arc<str>) -> SessionSlot {
        SessionSlot::with_state(client_id, SessionState::default())
    }

    /// A slot holding `state` (a session restored from the store).
    pub fn with_state(client_id: Arc<str>, state: SessionState) -> SessionSlot {
        SessionSlot {
            client_id,
            state: Mutex::new(state),
            wake: Notify::new(),
            room: Notify::new(),
            room_waiters: AtomicUsize::new(0),
            live: Mutex::new(None),
            attach_lock: tokio::sync::Mutex::new(()),
            attaching: AtomicUsize::new(0),
        }
    }

    /// The state, locked. Never hold it across an `.await`.
    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        lock(&self.state)
    }

    /// Queues a delivery and wakes the live connection. With a store and a persistent
    /// session, a QoS 1/2 delivery is also submitted to the store (while the state is
    /// locked, so it is on its way before anyone can take it); the ticket says when it is
    /// durable.
    pub fn deliver(
        &self,
        delivery: Delivery,
        max_queued: usize,
        offer: Offer,
        store: Option<&Store>,
    ) -> (Enqueued, Ticket) {
        let mut state = self.state();
        let outcome = state.enqueue(delivery, max_queued, offer);
        let mut ticket = Ticket::NONE;
        if outcome == Enqueued::Queued {
            if let Some(store) = store.filter(|_| state.persistent())
                && let Some(queued) = state.queue.back().filter(|d| d.qos != QoS::AtMostOnce)
            {
                ticket = store.submit_one(Op::PutMessage {
                    client: self.client_id.clone(),
                    seq: queued.seq,
                    record: crate::broker::store::record::delivery(queued),
                });
            }
            drop(state);
            self.wake.notify_one();
        }
        (outcome, ticket)
    }

    /// Resolves once this queue is under `admission_depth`, the session is offline or
    /// ended, or (possibly) something changed: the caller checks again. Registered before
    /// checking, so a wake-up between the check and the wait is never lost.
    pub async fn wait_for_room(&self, admission_depth: usize) {
        let notified = self.room.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        self.room_waiters.fetch_add(1, Ordering::AcqRel);
        let _waiting = RoomWaiter(self);
        let changed = {
            let state = self.state();
            !state.online || !state.is_full(admission_depth)
        };
        if !changed {
            notified.await;
        }
    }

    /// Wakes the publishers waiting for room, if any (after a delivery was taken from the
    /// queue, or the session went offline or ended).
    pub fn wake_room_waiters(&self) {
        if self.room_waiters.load(Ordering::Acquire) > 0 {
            self.room.notify_waiters();
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        lock(&self.live).is_some()
    }

    pub(crate) fn is_live_connection(&self, connection: u64) -> bool {
        lock(&self.live)
            .as_ref()
            .is_some_and(|l| l.connection == connection)
    }

    pub(crate) fn set_live(&self, connection: u64) {
        *lock(&self.live) = Some(Live {
            connection,
            kicked: false,
        });
    }

    /// Whether `connection` must end: it was kicked by a takeover, or is no longer the live
    /// connection (a takeover that timed out forgot it). The connection checks this before
    /// every wait, and is woken through [`SessionSlot::wake`] when it changes.
    pub(crate) fn kicked(&self, connection: u64) -> bool {
        !lock(&self.live)
            .as_ref()
            .is_some_and(|l| l.connection == connection && !l.kicked)
    }

    /// Clears the live connection if it is `connection`; wakes a waiting takeover (and,
    /// spuriously, publishers waiting for room, who re-check).
    pub(crate) fn release(&self, connection: u64) -> bool {
        let mut live = lock(&self.live);
        let mine = live.as_ref().is_some_and(|l| l.connection == connection);
        if mine {
            *live = None;
        }
        drop(live);
        self.room.notify_waiters();
        mine
    }

    /// Kicks the live connection, if any, and waits (bounded) until it lets go. After the
    /// timeout the old connection is forgotten: its later release finds itself not live.
    pub(crate) async fn take_over(&self, timeout: Duration) -> bool {
        let old = match lock(&self.live).as_mut() {
            None => return false,
            Some(live) => {
                live.kicked = true;
                live.connection
            }
        };
        // A permit if the connection is not waiting now: it sees the kick at its next wait.
        self.wake.notify_one();
        if tokio::time::timeout(timeout, self.released(old))
            .await
            .is_err()
        {
            tracing::warn!(client = %self.client_id, "takeover: old connection did not close in time");
            *lock(&self.live) = None;
        }
        true
    }

    /// Resolves once `connection` is no longer live. Registered before each check, so a
    /// release between the check and the wait is never missed; other wake-ups of `room`
    /// only cause another check.
    async fn released(&self, connection: u64) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.is_live_connection(connection) {
                return;
            }
            notified.await;
        }
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

/// Counts one publisher waiting on [`SessionSlot::room`] while it lives.
struct RoomWaiter<'a>(&'a SessionSlot);

impl Drop for RoomWaiter<'_> {
    fn drop(&mut self) {
        self.0.room_waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::message::Message;
    use crate::mqtt::codec::Properties;
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
            seq: 0,
        }
    }

    fn payloads(state: &SessionState) -> Vec<u8> {
        state.queue.iter().map(|d| d.message.payload[0]).collect()
    }

    #[test]
    fn a_full_queue_never_drops_what_it_holds() {
        let mut state = SessionState {
            online: true,
            exists: true,
            ..SessionState::default()
        };
        for n in 0..3 {
            let outcome = state.enqueue(delivery(QoS::AtLeastOnce, n), 3, Offer::BestEffort);
            assert_eq!(outcome, Enqueued::Queued);
        }
        assert!(state.is_full(3));
        // Full: QoS 0 and best-effort deliveries are refused, the queue is untouched.
        let qos0 = state.enqueue(delivery(QoS::AtMostOnce, 3), 3, Offer::Admitted);
        let best = state.enqueue(delivery(QoS::AtLeastOnce, 4), 3, Offer::BestEffort);
        assert_eq!((qos0, best), (Enqueued::DroppedFull, Enqueued::DroppedFull));
        assert_eq!(payloads(&state), [0, 1, 2]);
        assert_eq!(state.dropped, 2);
        // An admitted QoS 1 delivery is queued past the bound.
        let admitted = state.enqueue(delivery(QoS::AtLeastOnce, 5), 3, Offer::Admitted);
        assert_eq!(admitted, Enqueued::Queued);
        assert_eq!(payloads(&state), [0, 1, 2, 5]);
        state.online = false;
        let offline = state.enqueue(delivery(QoS::AtMostOnce, 6), 9, Offer::Admitted);
        assert_eq!(offline, Enqueued::DroppedOffline);
        state.clear();
        let ended = state.enqueue(delivery(QoS::AtLeastOnce, 7), 9, Offer::Admitted);
        assert_eq!(ended, Enqueued::NoSession);
        assert!(!state.is_full(0), "an ended session is never waited for");
    }

    #[test]
    fn online_queues_admit_up_to_the_depth_offline_ones_up_to_the_bound() {
        let mut state = SessionState {
            online: true,
            exists: true,
            ..SessionState::default()
        };
        for n in 0..4 {
            assert!(!state.must_wait(4, 10), "{n} queued: room");
            state.enqueue(delivery(QoS::AtLeastOnce, n), 10, Offer::Admitted);
        }
        assert!(state.must_wait(4, 10), "online at the depth: wait");
        assert!(state.must_wait(20, 4), "the depth never exceeds the bound");
        assert!(!state.is_full(10), "not full: QoS 0 still fits");
        state.online = false;
        assert!(!state.must_wait(4, 10), "offline: the bound applies");
        assert!(state.must_wait(4, 4));
        state.clear();
        assert!(
            !state.must_wait(0, 0),
            "an ended session is never waited for"
        );
    }

    #[tokio::test]
    async fn a_waiting_publisher_is_woken_when_room_is_made() {
        let slot = Arc::new(SessionSlot::new("s".into()));
        {
            let mut state = slot.state();
            state.exists = true;
            state.online = true;
            state.enqueue(delivery(QoS::AtLeastOnce, 0), 1, Offer::Admitted);
        }
        let waiter = tokio::spawn({
            let slot = slot.clone();
            async move { slot.wait_for_room(1).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the queue is still full");
        slot.state().queue.pop_front();
        slot.wake_room_waiters();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(slot.room_waiters.load(Ordering::Acquire), 0);
    }

    /// The bytes of one session slot: part of every idle connection.
    const MAX_SLOT_BYTES: usize = 368;

    #[test]
    fn session_slot_stays_small() {
        let size = std::mem::size_of::<SessionSlot>();
        println!("SessionSlot: {size} bytes");
        assert!(
            size <= MAX_SLOT_BYTES,
            "SessionSlot is {size} bytes, over the {MAX_SLOT_BYTES}-byte bound"
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
        slot.set_live(1);
        slot.state().exists = false;
        assert!(slot.owned_by_another(&principal("P2")).is_some());
        // Neither live nor existing: free for anyone.
        slot.release(1);
        assert_eq!(slot.owned_by_another(&principal("P2")), None);
        assert!(slot.state().clear().is_empty());
        assert_eq!(slot.state().owner, None, "clearing forgets the owner");
    }

    /// An old connection as the connection task runs it: waits on `wake` until kicked,
    /// then lets go.
    fn old_connection(slot: &Arc<SessionSlot>, id: u64) -> tokio::task::JoinHandle<bool> {
        let slot = slot.clone();
        tokio::spawn(async move {
            while !slot.kicked(id) {
                slot.wake.notified().await;
            }
            slot.release(id)
        })
    }

    #[tokio::test]
    async fn takeover_kicks_and_waits_for_release() {
        let slot = Arc::new(SessionSlot::new("c".into()));
        slot.set_live(1);
        let old = old_connection(&slot, 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!old.is_finished(), "not kicked yet: the connection waits");
        assert!(slot.take_over(Duration::from_secs(5)).await);
        assert!(old.await.unwrap());
        assert!(!slot.is_live());
        // A connection that never lets go is forgotten after the timeout, and then counts
        // as kicked.
        slot.set_live(2);
        assert!(!slot.kicked(2));
        assert!(slot.take_over(Duration::from_millis(50)).await);
        assert!(!slot.is_live_connection(2));
        assert!(slot.kicked(2));
        assert!(!slot.release(2));
    }

    #[tokio::test]
    async fn a_kick_while_the_connection_is_busy_is_seen_at_its_next_wait() {
        let slot = Arc::new(SessionSlot::new("c".into()));
        slot.set_live(7);
        // The kick lands before the connection waits on `wake`: the permit it leaves
        // ends the wait at once.
        let takeover = tokio::spawn({
            let slot = slot.clone();
            async move { slot.take_over(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(slot.kicked(7));
        tokio::time::timeout(Duration::from_secs(5), slot.wake.notified())
            .await
            .expect("the kick left a permit");
        assert!(slot.release(7));
        assert!(takeover.await.unwrap());
    }

    #[tokio::test]
    async fn room_wake_ups_do_not_end_a_takeover_early() {
        let slot = Arc::new(SessionSlot::new("c".into()));
        slot.set_live(3);
        let takeover = tokio::spawn({
            let slot = slot.clone();
            async move { slot.take_over(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        slot.room_waiters.fetch_add(1, Ordering::AcqRel);
        slot.wake_room_waiters();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !takeover.is_finished(),
            "room was made; the old connection is still live"
        );
        assert!(slot.is_live_connection(3));
        slot.room_waiters.fetch_sub(1, Ordering::AcqRel);
        assert!(slot.release(3));
        assert!(takeover.await.unwrap());
    }
}
