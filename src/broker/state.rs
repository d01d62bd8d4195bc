//! The state all connections share, behind a narrow interface (the mini-redis `Db`).
//!
//! [`Broker`] owns the router, the session slots and the retained store. Connections call
//! [`Broker::admit`], [`Broker::publish`], [`Broker::subscribe`], [`Broker::attach`],
//! [`Broker::detach`] and never touch the tables directly. A client's QoS 1/2 PUBLISH goes
//! through [`Broker::admit`]: it is queued for every matching session only if each of
//! their queues has room, all or nothing, so an acknowledged message is never dropped and
//! a refused one was delivered to nobody. An *offline* session whose full queue the
//! message would overflow is ended first (its messages and subscriptions discarded,
//! counted, logged): an absent client never holds up the publishers it shares topics with.
//! Messages the broker originates (wills, shadow responses) go through
//! [`Broker::publish`], best effort. Lock order, to stay deadlock-free: the sessions map,
//! then a slot's live marker, then a slot's state, then the router or retained store;
//! no lock is held across an `.await`. With a durable store, each change to a persistent
//! session, its queue or the retained store is submitted to it under the same lock, and
//! the caller gets a ticket to wait on before acknowledging ([`durable`]: restoring and
//! recording sessions).
//!
//! Two rules keep principals apart here. A session belongs to the [`Principal`] that
//! created it: [`Broker::attach`] refuses another principal while the session exists or a
//! connection is live on it, and leaves both untouched. A retained message carries its
//! [`Publisher`]: after a policy change it is delivered only if that publisher may still
//! publish and retain it ([`Broker::recheck_retained`] drops the others at reload, and
//! [`Broker::retained_for`] re-checks any message not yet checked under the current
//! policy). This module never decides on its own: the connection asks the policy before
//! calling in and again for each delivery, and retained messages are re-checked through
//! [`PublisherCheck`].

use crate::broker::auth::Authenticator;
use crate::broker::authorize::{PublisherCheck, SharedEngine};
use crate::broker::config::BrokerConfig;
use crate::broker::message::{Delivery, Message};
use crate::broker::principal::{Principal, Publisher};
use crate::broker::retained::{Retained, RetainedStore, Stored};
use crate::broker::router::{ClientKey, Entry, Route, Router};
use crate::broker::session::{Enqueued, Offer, SessionSlot};
use crate::broker::store::{Op, Store, Ticket};
use crate::mqtt::codec::QoS;

mod durable;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Why [`Broker::attach`] refused a connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The client id's session (live or persisted) belongs to another principal.
    #[error("client id `{client_id}` has a session of another principal ({owner})")]
    OwnedByAnother {
        /// The client id.
        client_id: String,
        /// The principal that owns the session.
        owner: String,
    },
}

/// What [`Broker::recheck_retained`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetainedRecheck {
    /// Retained messages the new policy still lets their publisher retain.
    pub kept: usize,
    /// Retained messages dropped because it no longer does.
    pub dropped: usize,
}

/// The outcome of [`Broker::admit`].
pub enum Admission {
    /// Queued for this many sessions (zero if nobody subscribes); acknowledge it once the
    /// ticket is durable (copies for persistent sessions, the retained message).
    Queued(usize, Ticket),
    /// Nothing queued: this online session's queue is at the admission depth. Wait for room
    /// ([`SessionSlot::wait_for_room`]) and try again.
    Wait(Arc<SessionSlot>),
}

/// One session a message goes to, and what it gets.
struct Target {
    slot: Arc<SessionSlot>,
    delivery: Delivery,
}

impl Target {
    fn new(message: &Arc<Message>, route: Route, slot: Arc<SessionSlot>) -> Target {
        let delivery = Delivery {
            message: message.clone(),
            qos: message.qos.min(route.qos),
            retain: route.retain_as_published && message.retain,
            subscription_ids: route.subscription_ids,
            seq: 0,
        };
        Target { slot, delivery }
    }
}

/// The shared broker state.
pub struct Broker {
    pub(crate) engines: SharedEngine,
    /// The configuration the broker runs with.
    pub config: BrokerConfig,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    /// Cancelled when the server shuts down, only through [`Broker::shut_down`], which
    /// also wakes the connections (they check it only when woken).
    pub(crate) shutdown: CancellationToken,
    router: RwLock<Router>,
    sessions: Mutex<HashMap<ClientKey, Arc<SessionSlot>>>,
    retained: RwLock<RetainedStore>,
    next_connection: AtomicU64,
    /// The device shadow service (`$aws/things/<thing>/shadow/...`).
    pub shadows: crate::broker::shadow::ShadowService,
    /// The durable store, if any (`config.store`).
    pub store: Option<Arc<Store>>,
    /// Restored offline sessions whose expiry timers start with the listeners.
    restored_expiries: Mutex<Vec<(Arc<SessionSlot>, u32)>>,
}

/// Session-map capacity always kept (below it, shrinking is not worth a rehash).
const SESSIONS_KEPT_CAPACITY: usize = 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Broker {
    /// A broker with this configuration, engine and observer.
    pub fn new(
        engines: SharedEngine,
        config: BrokerConfig,
        authenticator: Arc<dyn Authenticator>,
    ) -> Broker {
        let retained = RetainedStore::new(config.max_retained_messages);
        let store = config.store.clone();
        let shadows = match &store {
            Some(store) => crate::broker::shadow::ShadowService::durable(store.clone()),
            None => crate::broker::shadow::ShadowService::new(config.shadow_dir.clone()),
        };
        let broker = Broker {
            shadows,
            engines,
            config,
            authenticator,
            shutdown: CancellationToken::new(),
            router: RwLock::new(Router::new()),
            sessions: Mutex::new(HashMap::new()),
            retained: RwLock::new(retained),
            next_connection: AtomicU64::new(1),
            store,
            restored_expiries: Mutex::new(Vec::new()),
        };
        if let Some(snapshot) = broker.store.as_ref().and_then(|s| s.take_snapshot()) {
            broker.restore(snapshot);
        }
        broker
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts the broker's shutdown: cancels [`Broker::shutdown`] and wakes every
    /// session's connection, which checks it before each wait (so no connection holds a
    /// wait on the token of its own).
    pub fn shut_down(&self) {
        self.shutdown.cancel();
        self.wake_all();
    }

    /// Wakes every session's connection, so each re-checks its subscriptions after a
    /// policy swap (see `reload`), or sees a shutdown.
    pub fn wake_all(&self) {
        for slot in lock(&self.sessions).values() {
            slot.wake.notify_one();
        }
    }

    /// Sessions currently known (online or offline).
    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Routes an authorized client message, all or nothing: if a matching session's queue
    /// is full for a QoS 1/2 delivery (an online one at `admission_depth`, see
    /// [`crate::broker::session::SessionState::must_wait`]), nothing is queued and the answer names it. The
    /// retained store is updated only when the message is queued, with its `publisher`
    /// (built only for a retained message).
    pub fn admit(
        &self,
        message: &Arc<Message>,
        publisher: impl FnOnce() -> Publisher,
    ) -> Admission {
        let targets = self.targets_without_overflow(message);
        let (depth, max) = (
            self.config.admission_depth(),
            self.config.max_queued_messages,
        );
        for target in targets.iter().filter(|t| t.delivery.qos != QoS::AtMostOnce) {
            if target.slot.state().must_wait(depth, max) {
                return Admission::Wait(target.slot.clone());
            }
        }
        let mut ticket = Ticket::NONE;
        if message.retain {
            ticket = self.retain_durably(message, publisher()).1;
        }
        let mut queued = 0;
        for target in &targets {
            let (taken, durable) = self.enqueue(target, Offer::Admitted);
            queued += usize::from(taken);
            ticket = ticket.max(durable);
        }
        Admission::Queued(queued, ticket)
    }

    /// The targets of a client's message once every offline session whose queue it would
    /// overflow has been ended (see [`Broker::end_overflowing`]). Bounded: each round ends
    /// a session or stops.
    fn targets_without_overflow(&self, message: &Arc<Message>) -> Vec<Target> {
        let max = self.config.max_queued_messages;
        let mut rounds = 0;
        loop {
            let targets = self.targets(message);
            let overflowing = targets.iter().find(|t| {
                let state = t.slot.state();
                t.delivery.qos != QoS::AtMostOnce && !state.online && state.is_full(max)
            });
            match overflowing {
                Some(target) if rounds <= targets.len() => {
                    rounds += 1;
                    let slot = target.slot.clone();
                    drop(targets);
                    self.end_overflowing(&slot);
                }
                _ => return targets,
            }
        }
    }

    /// Ends an offline session whose full queue a QoS 1/2 message would overflow: its
    /// queued messages and subscriptions are discarded, counted and logged, so that one
    /// absent client never blocks or disconnects the publishers it shares topics with. Its
    /// client learns it on return (CONNACK session present 0). Does nothing if the session
    /// came back online or has room by now.
    fn end_overflowing(&self, slot: &Arc<SessionSlot>) {
        let max = self.config.max_queued_messages;
        let discarded = {
            let mut state = slot.state();
            if state.online || !state.is_full(max) {
                return;
            }
            let discarded = state.queue.len() + state.outgoing.len();
            self.end_session(&slot.client_id, &mut state);
            discarded
        };
        self.config
            .observer
            .metrics()
            .session_ended_offline_queue_full();
        tracing::warn!(
            client = %slot.client_id,
            discarded,
            "session ended: offline with a full queue ({max} messages); its queued messages and subscriptions are discarded"
        );
        slot.wake_room_waiters();
        self.remove_if_idle(slot);
    }

    /// Routes a message the broker originates (a will, a shadow response), best effort: a
    /// full queue drops it, counted. Returns the number of sessions that queued it.
    pub fn publish(&self, message: &Arc<Message>) -> usize {
        let targets = self.targets(message);
        targets
            .iter()
            .filter(|target| self.enqueue(target, Offer::BestEffort).0)
            .count()
    }

    /// Queues one delivery (and its copy in the store for a persistent session); counts
    /// and logs (throttled) a drop.
    fn enqueue(&self, target: &Target, offer: Offer) -> (bool, Ticket) {
        let max = self.config.max_queued_messages;
        let metrics = self.config.observer.metrics();
        let store = self.store.as_deref();
        let (outcome, ticket) = target
            .slot
            .deliver(target.delivery.clone(), max, offer, store);
        let queued = match outcome {
            Enqueued::Queued => true,
            Enqueued::NoSession => false,
            Enqueued::DroppedOffline => {
                metrics.dropped_offline();
                false
            }
            Enqueued::DroppedFull => {
                metrics.dropped_queue_full();
                let dropped = target.slot.state().dropped;
                if dropped == 1 || dropped % 1000 == 0 {
                    tracing::warn!(client = %target.slot.client_id, dropped, "queue full: dropped a QoS 0 or broker-originated message");
                }
                false
            }
        };
        (queued, ticket)
    }

    /// The sessions a message goes to and what each gets: one per ordinary route (No
    /// Local applied), one per shared group (the first member that can take it).
    fn targets(&self, message: &Arc<Message>) -> Vec<Target> {
        let routes = self
            .router
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .route(&message.topic);
        if routes.is_empty() {
            return Vec::new();
        }
        let slots: Vec<Option<Arc<SessionSlot>>> = {
            let sessions = lock(&self.sessions);
            routes
                .iter()
                .map(|r| sessions.get(&r.client).cloned())
                .collect()
        };
        let mut targets = Vec::with_capacity(routes.len());
        let mut candidates = routes.into_iter().zip(slots).peekable();
        while let Some((route, slot)) = candidates.next() {
            let Some(group) = route.group else {
                let own = message.publisher.as_ref() == Some(&route.client);
                match slot {
                    Some(slot) if !(own && self.no_local(&slot, &message.topic)) => {
                        targets.push(Target::new(message, route, slot));
                    }
                    _ => {}
                }
                continue;
            };
            let mut members = vec![(route, slot)];
            while let Some(member) = candidates.next_if(|(r, _)| r.group == Some(group)) {
                members.push(member);
            }
            if let Some(target) = self.pick_member(message, members) {
                targets.push(target);
            }
        }
        targets
    }

    /// The shared-group member to deliver to: the first (round-robin order) that is online
    /// with room (under the admission depth), else the first with room, else the
    /// round-robin pick.
    fn pick_member(
        &self,
        message: &Arc<Message>,
        members: Vec<(Route, Option<Arc<SessionSlot>>)>,
    ) -> Option<Target> {
        let (depth, max) = (
            self.config.admission_depth(),
            self.config.max_queued_messages,
        );
        let mut present = members
            .into_iter()
            .filter_map(|(route, slot)| Some((route, slot?)));
        let first = present.next()?;
        // Stops at the first online member with room: usually the round-robin pick.
        let mut fallback: Option<(Route, Arc<SessionSlot>)> = None;
        for (route, slot) in std::iter::once(first.clone()).chain(present) {
            let (online, full) = {
                let state = slot.state();
                (state.online, state.must_wait(depth, max))
            };
            match (online, full) {
                (true, false) => return Some(Target::new(message, route, slot)),
                (false, false) if fallback.is_none() => fallback = Some((route, slot)),
                _ => {}
            }
        }
        let (route, slot) = fallback.unwrap_or(first);
        Some(Target::new(message, route, slot))
    }

    /// True if any of the client's matching non-shared subscriptions sets No Local.
    fn no_local(&self, slot: &SessionSlot, topic: &str) -> bool {
        slot.state().subscriptions.iter().any(|(filter, entry)| {
            entry.options.no_local
                && !filter.starts_with("$share/")
                && crate::mqtt::topic::matches(filter, topic)
        })
    }

    /// Stores (or deletes) a retained message, with the publisher the policy allowed to
    /// retain it.
    pub fn retain(&self, message: &Arc<Message>, publisher: Publisher) -> Stored {
        self.retain_durably(message, publisher).0
    }

    /// [`Broker::retain`], also in the store (submitted under the retained store's lock, so
    /// the store sees retains of one topic in the order they happened); returns the ticket.
    fn retain_durably(&self, message: &Arc<Message>, publisher: Publisher) -> (Stored, Ticket) {
        let record = self
            .store
            .as_ref()
            .map(|_| crate::broker::store::record::retained(message, &publisher));
        let mut retained = self.retained.write().unwrap_or_else(|p| p.into_inner());
        let stored = retained.store(message, publisher);
        let topic = message.topic.clone();
        let op = match (stored, record) {
            (Stored::Stored, Some(record)) => Some(Op::PutRetained { topic, record }),
            (Stored::Deleted, Some(_)) => Some(Op::DeleteRetained { topic }),
            _ => None,
        };
        let ticket = match (op, &self.store) {
            (Some(op), Some(store)) => store.submit_one(op),
            _ => Ticket::NONE,
        };
        drop(retained);
        if stored == Stored::Full {
            tracing::warn!(topic = %message.topic, "retained store full: message delivered but not retained");
        }
        (stored, ticket)
    }

    /// Retained messages matching a (non-shared) filter whose publishers may still publish
    /// and retain them. A message not yet checked under the current policy (retained while
    /// a reload was in progress) is checked now, and dropped if its publisher lost the right.
    pub fn retained_for(&self, filter: &str) -> Vec<Arc<Message>> {
        let found = self
            .retained
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .matching(filter, Instant::now());
        let current = self.engines.load().id();
        let (checked, unchecked): (Vec<Retained>, Vec<Retained>) = found
            .into_iter()
            .partition(|r| r.publisher.authorized_under == current);
        let mut messages: Vec<Arc<Message>> = checked.into_iter().map(|r| r.message).collect();
        if !unchecked.is_empty() {
            let check = PublisherCheck::new(self.engines.load_full());
            messages.extend(self.reauthorize(unchecked, check).0);
        }
        messages
    }

    /// Authorizes every retained message again for its publisher under the current policy
    /// and drops those it no longer allows (one log line each). Run after a policy swap.
    pub fn recheck_retained(&self) -> RetainedRecheck {
        let all = self
            .retained
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .all();
        let check = PublisherCheck::new(self.engines.load_full());
        let (kept, dropped) = self.reauthorize(all, check);
        RetainedRecheck {
            kept: kept.len(),
            dropped,
        }
    }

    /// Decides each retained message for its publisher (outside the store's lock), then
    /// drops the denied ones and marks the others as checked under `check`'s engine.
    fn reauthorize(
        &self,
        entries: Vec<Retained>,
        mut check: PublisherCheck,
    ) -> (Vec<Arc<Message>>, usize) {
        let mut allowed = Vec::with_capacity(entries.len());
        let mut denied = Vec::new();
        for entry in entries {
            let decision = check.may_retain(&entry.publisher, &entry.message.topic);
            if decision.is_allowed() {
                allowed.push(entry);
            } else {
                let rule = check.rule_location(&decision);
                denied.push((entry, decision.reason.to_string(), rule));
            }
        }
        let engine = check.engine_id();
        let mut store = self.retained.write().unwrap_or_else(|p| p.into_inner());
        for entry in &allowed {
            store.reauthorized(entry, engine);
        }
        let mut dropped = 0;
        for (entry, reason, rule) in &denied {
            if store.remove(entry) {
                if let Some(durable) = &self.store {
                    let topic = entry.message.topic.clone();
                    durable.submit_one(Op::DeleteRetained { topic });
                }
                dropped += 1;
                self.config.observer.metrics().retained_revoked();
                let publisher = &entry.publisher;
                tracing::info!(
                    target: "topicguard::deny",
                    topic = %entry.message.topic,
                    client = %publisher.client_id,
                    publisher = %publisher.principal,
                    rule = %rule,
                    reason = %reason,
                    "retained message dropped: its publisher may no longer publish and retain it"
                );
            }
        }
        drop(store);
        let kept = allowed.into_iter().map(|r| r.message).collect();
        (kept, dropped)
    }

    /// Adds a subscription to the router and the session; true if it replaced one. The
    /// ticket says when a persistent session's new subscriptions are durable.
    pub fn subscribe(&self, slot: &SessionSlot, filter: &str, entry: Entry) -> (bool, Ticket) {
        let mut state = slot.state();
        state
            .subscriptions
            .insert(filter.to_string(), entry.clone());
        let ticket = self.save_session(&slot.client_id, &mut state);
        let replaced = self
            .router
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .subscribe(&slot.client_id, filter, entry);
        (replaced, ticket)
    }

    /// Removes a subscription; true if it existed (with the ticket of the change).
    pub fn unsubscribe(&self, slot: &SessionSlot, filter: &str) -> (bool, Ticket) {
        let mut state = slot.state();
        let existed = state.subscriptions.remove(filter).is_some();
        let mut ticket = Ticket::NONE;
        if existed {
            ticket = self.save_session(&slot.client_id, &mut state);
            self.router
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .unsubscribe(&slot.client_id, filter);
        }
        (existed, ticket)
    }

    /// Makes `connection` the live connection of `client_id`'s session, taking it over
    /// from an older connection of the same principal. Returns the slot and whether a
    /// session was resumed. Refuses (touching nothing) when the session — live or
    /// persisted — belongs to another principal.
    /// A new slot shares `client_id` with the sessions map (one copy of the text).
    pub async fn attach(
        &self,
        client_id: &Arc<str>,
        principal: &Principal,
        clean_start: bool,
        expiry: u32,
        connection: u64,
    ) -> Result<(Arc<SessionSlot>, bool), AttachError> {
        let slot = {
            let mut sessions = lock(&self.sessions);
            let slot = sessions
                .entry(client_id.clone())
                .or_insert_with(|| Arc::new(SessionSlot::new(client_id.clone())))
                .clone();
            slot.attaching.fetch_add(1, Ordering::AcqRel);
            slot
        };
        let guard = slot.attach_lock.lock().await;
        if let Some(owner) = slot.owned_by_another(principal) {
            drop(guard);
            slot.attaching.fetch_sub(1, Ordering::AcqRel);
            self.remove_if_idle(&slot);
            return Err(AttachError::OwnedByAnother {
                client_id: client_id.to_string(),
                owner: owner.to_string(),
            });
        }
        slot.take_over(self.config.takeover_timeout).await;
        let present = {
            let mut state = slot.state();
            if clean_start || !state.exists {
                self.end_session(&slot.client_id, &mut state);
            }
            let present = state.exists;
            state.owner = Some(principal.clone());
            state.exists = true;
            state.online = true;
            state.expiry = expiry;
            state.offline_since = None;
            state.generation += 1;
            self.save_session(&slot.client_id, &mut state);
            present
        };
        slot.wake_room_waiters();
        slot.set_live(connection);
        drop(guard);
        slot.attaching.fetch_sub(1, Ordering::AcqRel);
        Ok((slot, present))
    }

    fn unroute(&self, client: &ClientKey, filters: Vec<String>) {
        if filters.is_empty() {
            return;
        }
        let mut router = self.router.write().unwrap_or_else(|p| p.into_inner());
        for filter in filters {
            router.unsubscribe(client, &filter);
        }
    }

    /// Ends `connection`'s hold on its session: ends the session (expiry 0) or starts its
    /// expiry timer. Does nothing if another connection took the session over.
    pub fn detach(self: &Arc<Self>, slot: &Arc<SessionSlot>, connection: u64) {
        if !slot.is_live_connection(connection) {
            return;
        }
        let (expiry, generation) = {
            let mut state = slot.state();
            state.online = false;
            state.offline_since = Some(crate::broker::store::record::unix_millis());
            if state.expiry == 0 {
                self.end_session(&slot.client_id, &mut state);
            } else {
                self.save_session(&slot.client_id, &mut state);
            }
            (state.expiry, state.generation)
        };
        slot.release(connection);
        // Publishers waiting for this queue re-check: it is now offline (or gone).
        slot.wake_room_waiters();
        if expiry == 0 {
            self.remove_if_idle(slot);
        } else if expiry != u32::MAX {
            self.schedule_expiry(slot.clone(), generation, expiry);
        }
    }

    fn schedule_expiry(self: &Arc<Self>, slot: Arc<SessionSlot>, generation: u64, secs: u32) {
        let broker = Arc::clone(self);
        tokio::spawn(async move {
            let wait = tokio::time::sleep(Duration::from_secs(u64::from(secs)));
            tokio::select! {
                _ = wait => {}
                _ = broker.shutdown.cancelled() => return,
            }
            {
                let mut state = slot.state();
                if state.generation != generation || state.online {
                    return;
                }
                broker.end_session(&slot.client_id, &mut state);
            }
            slot.wake_room_waiters();
            tracing::debug!(client = %slot.client_id, "session expired");
            broker.remove_if_idle(&slot);
        });
    }

    /// Forgets a slot that has no session, no live connection and no attach in progress.
    /// The map gives back its capacity once it is mostly empty, so a burst of clients
    /// does not leave its size behind (rehashing then costs O(len), amortized O(1)).
    fn remove_if_idle(&self, slot: &Arc<SessionSlot>) {
        let mut sessions = lock(&self.sessions);
        let same = sessions
            .get(&slot.client_id)
            .is_some_and(|s| Arc::ptr_eq(s, slot));
        if same && slot.attaching() == 0 && !slot.is_live() && !slot.state().exists {
            sessions.remove(&slot.client_id);
            let len = sessions.len();
            if sessions.capacity() > SESSIONS_KEPT_CAPACITY && len * 4 < sessions.capacity() {
                sessions.shrink_to(len * 2);
            }
        }
    }

    /// The generation of a session, if its slot is still the current one.
    pub fn generation(&self, slot: &SessionSlot) -> u64 {
        slot.state().generation
    }
}
