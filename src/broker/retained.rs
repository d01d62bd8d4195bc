//! Retained messages: the last retained PUBLISH per topic, bounded in count.
//!
//! An empty retained payload deletes the topic's message (MQTT-3.3.1-10). At the cap, a
//! message for a *new* topic is not stored (the caller still delivers it) and
//! [`Stored::Full`] says so. Lookup for a new subscription scans the store with the `$`
//! rule applied; every message found is still receive-checked by the subscriber's
//! connection before it is sent. This module must never decide who may see a message.

use crate::broker::message::Message;
use crate::broker::router::matches;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// What storing a retained message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    Stored,
    Deleted,
    /// The store is full and the topic is new: not retained.
    Full,
}

/// The retained-message store.
#[derive(Debug)]
pub struct RetainedStore {
    messages: HashMap<Arc<str>, Arc<Message>>,
    capacity: usize,
}

impl RetainedStore {
    pub fn new(capacity: usize) -> RetainedStore {
        RetainedStore {
            messages: HashMap::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Stores, replaces or (empty payload) deletes the retained message of its topic.
    pub fn store(&mut self, message: &Arc<Message>) -> Stored {
        if message.payload.is_empty() {
            self.messages.remove(&message.topic);
            return Stored::Deleted;
        }
        if self.messages.len() >= self.capacity && !self.messages.contains_key(&message.topic) {
            return Stored::Full;
        }
        self.messages.insert(message.topic.clone(), message.clone());
        Stored::Stored
    }

    /// The unexpired retained messages matching `filter` (without `$share/`).
    pub fn matching(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        self.messages
            .values()
            .filter(|m| !m.expired(now) && matches(filter, &m.topic))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::codec::{Properties, QoS};
    use bytes::Bytes;

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
        assert_eq!(store.store(&message("a", b"1")), Stored::Stored);
        assert_eq!(store.store(&message("a", b"2")), Stored::Stored);
        assert_eq!(store.store(&message("b", b"1")), Stored::Stored);
        assert_eq!(store.store(&message("c", b"1")), Stored::Full);
        assert_eq!(store.len(), 2);
        let now = Instant::now();
        assert_eq!(&store.matching("a", now)[0].payload[..], b"2");
        assert_eq!(store.store(&message("a", b"")), Stored::Deleted);
        assert!(store.matching("#", now).iter().all(|m| &*m.topic == "b"));
        assert_eq!(store.store(&message("c", b"1")), Stored::Stored);
        assert_eq!(store.store(&message("$SYS/x", b"1")), Stored::Full);
    }
}
