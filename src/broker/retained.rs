//! Retained messages: the last retained PUBLISH per topic, bounded in count, each with the
//! [`Publisher`] that retained it.
//!
//! An empty retained payload deletes the topic's message (MQTT-3.3.1-10). At the cap, a
//! message for a *new* topic is not stored (the caller still delivers it) and
//! [`Stored::Full`] says so. Lookup for a new subscription scans the store with the `$`
//! rule applied. The publisher is kept so the broker can authorize the message again when
//! the policy changes (see `Broker::recheck_retained`); every message found is also
//! receive-checked by the subscriber's connection before it is sent. Each entry costs the
//! message plus two shared pointers. This module must never decide who may see a message.

use crate::broker::message::Message;
use crate::broker::principal::Publisher;
use crate::mqtt::topic::matches;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// What storing a retained message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// A retained message was stored.
    Stored,
    /// The retained message was deleted (empty payload).
    Deleted,
    /// The store is full and the topic is new: not retained.
    Full,
}

/// A retained message and who retained it.
#[derive(Clone, Debug)]
pub struct Retained {
    pub(crate) message: Arc<Message>,
    pub(crate) publisher: Publisher,
}

/// The retained-message store.
#[derive(Debug)]
pub struct RetainedStore {
    messages: HashMap<Arc<str>, Retained>,
    capacity: usize,
}

impl RetainedStore {
    pub(crate) fn new(capacity: usize) -> RetainedStore {
        RetainedStore {
            messages: HashMap::new(),
            capacity,
        }
    }

    /// The number of retained messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when no message is retained.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Stores, replaces or (empty payload) deletes the retained message of its topic.
    pub fn store(&mut self, message: &Arc<Message>, publisher: Publisher) -> Stored {
        if message.payload.is_empty() {
            self.messages.remove(&message.topic);
            return Stored::Deleted;
        }
        if self.messages.len() >= self.capacity && !self.messages.contains_key(&message.topic) {
            return Stored::Full;
        }
        let retained = Retained {
            message: message.clone(),
            publisher,
        };
        self.messages.insert(message.topic.clone(), retained);
        Stored::Stored
    }

    /// The unexpired retained messages matching `filter` (without `$share/`).
    pub fn matching(&self, filter: &str, now: Instant) -> Vec<Retained> {
        self.messages
            .values()
            .filter(|r| !r.message.expired(now) && matches(filter, &r.message.topic))
            .cloned()
            .collect()
    }

    /// Every retained message, for re-authorizing them all.
    pub fn all(&self) -> Vec<Retained> {
        self.messages.values().cloned().collect()
    }

    /// Removes `retained` if it is still its topic's message (not replaced meanwhile).
    pub fn remove(&mut self, retained: &Retained) -> bool {
        let topic = &retained.message.topic;
        let same = self
            .messages
            .get(topic)
            .is_some_and(|r| Arc::ptr_eq(&r.message, &retained.message));
        if same {
            self.messages.remove(topic);
        }
        same
    }

    /// Records that `retained`, if still stored, was authorized again under `engine`.
    pub fn reauthorized(&mut self, retained: &Retained, engine: u64) {
        if let Some(current) = self.messages.get_mut(&retained.message.topic)
            && Arc::ptr_eq(&current.message, &retained.message)
        {
            current.publisher.authorized_under = engine;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::principal::Principal;
    use crate::identity::Identity;
    use crate::mqtt::codec::{Properties, QoS};
    use bytes::Bytes;

    fn publisher() -> Publisher {
        Publisher {
            principal: Principal::new(Identity::asserted("dev", [("a", "1")])),
            client_id: "dev-1".into(),
            authorized_under: 1,
        }
    }

    fn message(topic: &str, payload: &'static [u8]) -> Arc<Message> {
        Arc::new(Message {
            topic: topic.into(),
            payload: Bytes::from_static(payload),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Properties::default(),
            expires_at: None,
            publisher: None,
        })
    }

    #[test]
    fn store_replace_delete_and_cap() {
        let mut store = RetainedStore::new(2);
        let mut put = |m: Arc<Message>| store.store(&m, publisher());
        assert_eq!(put(message("a", b"1")), Stored::Stored);
        assert_eq!(put(message("a", b"2")), Stored::Stored);
        assert_eq!(put(message("b", b"1")), Stored::Stored);
        assert_eq!(put(message("c", b"1")), Stored::Full);
        assert_eq!(store.len(), 2);
        let now = Instant::now();
        assert_eq!(&store.matching("a", now)[0].message.payload[..], b"2");
        assert_eq!(
            store.store(&message("a", b""), publisher()),
            Stored::Deleted
        );
        let found = store.matching("#", now);
        assert!(found.iter().all(|r| &*r.message.topic == "b"));
        assert_eq!(
            store.store(&message("c", b"1"), publisher()),
            Stored::Stored
        );
        assert_eq!(
            store.store(&message("$SYS/x", b"1"), publisher()),
            Stored::Full
        );
    }

    #[test]
    fn remove_and_reauthorize_touch_only_the_same_message() {
        let mut store = RetainedStore::new(4);
        store.store(&message("a", b"old"), publisher());
        let old = store.all().remove(0);
        store.store(&message("a", b"new"), publisher());
        assert!(!store.remove(&old), "a newer message for the topic stays");
        store.reauthorized(&old, 7);
        let new = store.all().remove(0);
        assert_eq!(
            new.publisher.authorized_under, 1,
            "the newer one is untouched"
        );
        store.reauthorized(&new, 7);
        assert_eq!(store.all()[0].publisher.authorized_under, 7);
        assert!(store.remove(&new));
        assert!(store.is_empty());
    }
}
