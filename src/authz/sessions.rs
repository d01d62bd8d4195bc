//! The session table: the identity each connected client authenticated with, on this node.
//!
//! A broker authenticates a client once (CONNECT) and then asks about each publish and
//! subscribe with only what identifies the connection: username, client id and, on
//! RabbitMQ, the vhost. The table maps exactly that [`SessionKey`] to the verified
//! identity and its bound [`Session`], so a later check is decided for the identity that
//! authenticated, never for what a request claims.
//!
//! Bounds and eviction: at most `capacity` entries (split over shards, each with its own
//! lock). A credential's expiry (JWT `exp`) evicts its entry: lookups of an expired entry
//! remove it and report [`Lookup::Expired`], and every insert first drops the expired
//! entries. When the table is full the entry that expires soonest is evicted. Only a
//! successful authentication inserts or replaces an entry; nothing else ever writes here,
//! so a failed authentication can never evict or replace a live session. Lookups cost one
//! hash (SipHash with a per-process key: client ids are chosen by clients) and one
//! uncontended lock on the common path. This module never verifies or decides anything.

use crate::decide::Session;
use crate::identity::Identity;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

/// Which broker protocol a session was authenticated through (sessions never cross).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BrokerKind {
    /// RabbitMQ.
    RabbitMq,
    /// EMQX.
    Emqx,
    /// mosquitto-go-auth.
    GoAuth,
}

/// What a broker sends back on every check to say which connection it is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub(crate) broker: BrokerKind,
    pub(crate) username: Box<str>,
    pub(crate) client_id: Box<str>,
    /// RabbitMQ's virtual host; empty for brokers without one.
    pub vhost: Box<str>,
}

impl SessionKey {
    /// The key of one broker's client session.
    pub fn new(broker: BrokerKind, username: &str, client_id: &str, vhost: &str) -> SessionKey {
        SessionKey {
            broker,
            username: username.into(),
            client_id: client_id.into(),
            vhost: vhost.into(),
        }
    }
}

/// An authenticated connection.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The verified identity, kept to bind it again after a policy reload.
    pub identity: Identity,
    /// The identity bound to the engine of `generation`.
    pub session: Session,
    /// The policy generation `session` was bound with.
    pub generation: u64,
    /// Whether that policy still lets this identity connect.
    pub connect_allowed: bool,
}

impl Entry {
    fn expiry(&self) -> u64 {
        self.identity.expires_at.unwrap_or(u64::MAX)
    }
}

/// The result of a lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<R> {
    /// The session, bound by the current engine.
    Found(R),
    /// No live session has this key.
    Missing,
    /// The session's credential expired; the entry is gone.
    Expired,
}

/// A bounded, sharded map from [`SessionKey`] to [`Entry`].
pub struct SessionTable {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<SessionKey, (Entry, u64), RandomState>,
    /// (expiry, insertion number) → key: the next entry to evict comes first.
    by_expiry: BTreeMap<(u64, u64), SessionKey>,
    inserted: u64,
}

impl Shard {
    fn remove(&mut self, key: &SessionKey) -> Option<Entry> {
        let (entry, seq) = self.entries.remove(key)?;
        self.by_expiry.remove(&(entry.expiry(), seq));
        Some(entry)
    }

    /// Drops entries whose credential expired at or before `now`.
    fn drop_expired(&mut self, now: u64) -> usize {
        let mut dropped = 0;
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
            dropped += 1;
        }
        dropped
    }

    /// Evicts the entry that expires soonest.
    fn evict_one(&mut self) -> bool {
        match self.by_expiry.pop_first() {
            Some((_, key)) => self.entries.remove(&key).is_some(),
            None => false,
        }
    }
}

/// Shards for a table of this capacity: one below 4,096 (so small caps are exact).
fn shard_count(capacity: usize) -> usize {
    if capacity >= 4096 { 64 } else { 1 }
}

impl SessionTable {
    /// A table holding at most `capacity` sessions (rounded up to a multiple of the shard
    /// count); at least one.
    pub fn new(capacity: usize) -> SessionTable {
        let shards = shard_count(capacity);
        SessionTable {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.max(1).div_ceil(shards),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &SessionKey) -> std::sync::MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(key) as usize) % self.shards.len();
        // A panic while holding a shard lock cannot leave an entry half-written (every
        // mutation is a single map operation), so a poisoned lock is still consistent.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Inserts or replaces the session for `key`; returns how many entries were evicted
    /// (expired ones, then the soonest to expire while the shard is full).
    pub fn insert(&self, key: SessionKey, entry: Entry, now: u64) -> usize {
        let mut shard = self.shard(&key);
        shard.remove(&key);
        let mut evicted = shard.drop_expired(now);
        while shard.entries.len() >= self.per_shard && shard.evict_one() {
            evicted += 1;
        }
        shard.inserted += 1;
        let seq = shard.inserted;
        shard.by_expiry.insert((entry.expiry(), seq), key.clone());
        shard.entries.insert(key, (entry, seq));
        evicted
    }

    /// Runs `f` on the live session for `key`; an expired one is removed instead.
    pub fn with<R>(
        &self,
        key: &SessionKey,
        now: u64,
        f: impl FnOnce(&mut Entry) -> R,
    ) -> Lookup<R> {
        let mut shard = self.shard(key);
        let expired = match shard.entries.get_mut(key) {
            None => return Lookup::Missing,
            Some((entry, _)) if entry.expiry() > now => return Lookup::Found(f(entry)),
            Some(_) => true,
        };
        if expired {
            shard.remove(key);
        }
        Lookup::Expired
    }

    /// Removes the session for `key`, if any.
    pub fn remove(&self, key: &SessionKey) -> bool {
        self.shard(key).remove(key).is_some()
    }

    /// How many sessions are held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).entries.len())
            .sum()
    }

    /// True when no session is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most sessions this table holds.
    pub fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::Engine;
    use crate::policy::Policy;
    use crate::source::Source;

    fn engine() -> Engine {
        let source = Source::new(
            "t.policy",
            "identity user from jwt {\n  uid = claim \"uid\"\n  client \"{uid}\"\n}\nallow user connect\n",
        );
        Engine::builder((Policy::from_source(&source).unwrap()).checked.clone())
            .build()
            .unwrap()
    }

    fn entry(engine: &Engine, uid: &str, expires_at: Option<u64>) -> Entry {
        let mut identity = Identity::asserted("user", [("uid", uid)]);
        identity.expires_at = expires_at;
        Entry {
            session: engine.bind(&identity, uid),
            identity,
            generation: 1,
            connect_allowed: true,
        }
    }

    fn key(client: &str) -> SessionKey {
        SessionKey::new(BrokerKind::RabbitMq, "u", client, "/")
    }

    fn uid(table: &SessionTable, client: &str, now: u64) -> Lookup<String> {
        table.with(&key(client), now, |e| {
            e.identity.attr("uid").unwrap().to_string()
        })
    }

    #[test]
    fn lookups_find_only_the_exact_key() {
        let engine = engine();
        let table = SessionTable::new(10);
        table.insert(key("a"), entry(&engine, "a", None), 0);
        assert_eq!(uid(&table, "a", 0), Lookup::Found("a".into()));
        assert_eq!(uid(&table, "b", 0), Lookup::Missing);
        let other_broker = SessionKey::new(BrokerKind::Emqx, "u", "a", "/");
        assert_eq!(table.with(&other_broker, 0, |_| ()), Lookup::Missing);
        let other_vhost = SessionKey::new(BrokerKind::RabbitMq, "u", "a", "/other");
        assert_eq!(table.with(&other_vhost, 0, |_| ()), Lookup::Missing);
    }

    #[test]
    fn an_expired_session_is_removed_at_lookup_and_at_insert() {
        let engine = engine();
        let table = SessionTable::new(10);
        table.insert(key("a"), entry(&engine, "a", Some(100)), 0);
        table.insert(key("b"), entry(&engine, "b", Some(200)), 0);
        assert_eq!(uid(&table, "a", 99), Lookup::Found("a".into()));
        assert_eq!(uid(&table, "a", 100), Lookup::Expired);
        assert_eq!(uid(&table, "a", 0), Lookup::Missing, "gone for good");
        assert_eq!(table.insert(key("c"), entry(&engine, "c", None), 250), 1);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_full_table_evicts_the_session_expiring_soonest() {
        let engine = engine();
        let table = SessionTable::new(3);
        table.insert(key("late"), entry(&engine, "late", Some(900)), 0);
        table.insert(key("soon"), entry(&engine, "soon", Some(300)), 0);
        table.insert(key("never"), entry(&engine, "never", None), 0);
        assert_eq!(
            table.insert(key("new"), entry(&engine, "new", Some(500)), 0),
            1
        );
        assert_eq!(uid(&table, "soon", 0), Lookup::Missing);
        for live in ["late", "never", "new"] {
            assert_eq!(uid(&table, live, 0), Lookup::Found(live.into()));
        }
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn replacing_a_session_keeps_one_entry_and_the_new_expiry() {
        let engine = engine();
        let table = SessionTable::new(2);
        table.insert(key("a"), entry(&engine, "a", Some(100)), 0);
        table.insert(key("a"), entry(&engine, "a2", Some(1000)), 0);
        assert_eq!(table.len(), 1);
        assert_eq!(uid(&table, "a", 500), Lookup::Found("a2".into()));
        table.insert(key("b"), entry(&engine, "b", None), 0);
        assert_eq!(table.len(), 2, "the old expiry index entry is gone too");
        assert!(table.remove(&key("a")));
        assert!(!table.remove(&key("a")));
    }

    #[test]
    fn large_tables_are_sharded_and_stay_bounded() {
        let engine = engine();
        let table = SessionTable::new(5000);
        assert_eq!(table.capacity(), 5056);
        for i in 0..6000 {
            let id = format!("c{i}");
            table.insert(key(&id), entry(&engine, &id, Some(1000 + i)), 0);
        }
        assert!(table.len() <= table.capacity());
        assert_eq!(uid(&table, "c5999", 0), Lookup::Found("c5999".into()));
    }
}
