//! A load generator for MQTT brokers on loopback that measures the broker, not itself.
//!
//! Every message carries a [`stamp`]: publisher id, sequence number and send time. Each
//! publisher records which sequences the broker acknowledged (or refused); each subscriber
//! records which it received, duplicates and reorderings, and a latency [`histogram`]. The
//! [`ledger`] tally then classifies every expected delivery: delivered, acknowledged but
//! lost (a broken QoS 1/2 promise), refused, or never acknowledged and lost (QoS 0 loss, or
//! in flight at the end). The tool reports its own CPU against the cores it may use
//! ([`usage`]), so a run says when the tool was the limit; given the broker's process id,
//! the broker's CPU too.
//!
//! [`throughput`] runs publishers, subscribers or both ([`Role`]): run them as separate
//! processes with one run id and merge their [`Summary`] files with [`Summary::combine`].
//! [`connections`] measures connects/s, holds idle connections, and churns connections
//! while reading the broker's memory. The CLI (`topicguard bench`) is a thin wrapper.
//! Costs: one bit per message per publisher and per subscriber, a 16 KiB histogram per
//! subscriber. This module must never talk to anything but the given broker address, and
//! every wait in it is bounded.

pub mod client;
pub mod connections;
pub mod histogram;
pub mod ledger;
mod publisher;
pub mod report;
mod run;
pub mod stamp;
mod subscriber;
pub mod tls;
pub mod usage;
pub mod wait;

pub use client::Login;
pub use report::Summary;
pub use run::{throughput, throughput_signalling};

use crate::mqtt::codec::QoS;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a load run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The broker refused or dropped something.
    #[error("{what}: {detail}")]
    Broker {
        /// What was being done.
        what: String,
        /// What happened.
        detail: String,
    },
    /// The broker did not answer in time.
    #[error("{what}: no answer within {after:?}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long it waited.
        after: Duration,
    },
    /// The plan is inconsistent.
    #[error("{0}")]
    Plan(String),
    /// The TLS client cannot be set up, or a handshake failed.
    #[error("{what}: {detail}")]
    Tls {
        /// The CA file, server name or connection at fault.
        what: String,
        /// What happened.
        detail: String,
    },
    /// A summary file cannot be read or written.
    #[error("{path}: {detail}")]
    Summary {
        /// The summary file.
        path: String,
        /// What happened.
        detail: String,
    },
}

/// Which clients this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Publishers and subscribers.
    Both,
    /// Publishers only.
    Publish,
    /// Subscribers only.
    Subscribe,
}

/// How topics are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topics {
    /// Publisher `p` sends on `bench/RUN/p`; subscriber `j` listens to `bench/RUN/(j mod N)`.
    Distinct,
    /// Everyone uses `bench/RUN/all`: each message fans out to every subscriber.
    Shared,
}

/// A throughput run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// How clients log in.
    pub login: Login,
    /// What this process runs.
    pub role: Role,
    /// Names the run in topics and client ids, and tags every payload; processes of one
    /// run share it.
    pub run: String,
    /// Publishers in this process, with ids `first_publisher..first_publisher+publishers`.
    pub publishers: usize,
    /// The id of this process's first publisher.
    pub first_publisher: u32,
    /// Subscribers in this process, numbered from `first_subscriber`.
    pub subscribers: usize,
    /// The id of this process's first subscriber.
    pub first_subscriber: usize,
    /// Publisher ids in the whole run (topics are spread over them).
    pub topic_publishers: usize,
    /// Which topics subscribers take.
    pub topics: Topics,
    /// The QoS of publishes and subscriptions.
    pub qos: QoS,
    /// Payload bytes (at least [`stamp::STAMP_LEN`]).
    pub payload: usize,
    /// Unacknowledged QoS 1/2 messages per publisher.
    pub window: usize,
    /// Total target rate (msg/s) over this process's publishers; `None`: as fast as taken.
    pub rate: Option<u64>,
    /// How long publishers send (unless `messages` is set).
    pub duration: Duration,
    /// Messages in total over this process's publishers, instead of `duration`.
    pub messages: Option<u64>,
    /// How long subscribers wait with nothing new before the run ends.
    pub drain: Duration,
    /// The start of every client id.
    pub client_prefix: String,
    /// The first topic level (`bench` by default): topics are `PREFIX/RUN/...`.
    pub topic_prefix: String,
    /// The broker's process id, to report its CPU.
    pub broker_pid: Option<u32>,
    /// Print a progress line to stderr each second.
    pub progress: bool,
    /// Subscribers keep their sessions (3.1.1 clean session 0, 5.0 a session expiry of an
    /// hour): with a durable store, every QoS 1/2 delivery to them is written to disk.
    pub persistent_subscribers: bool,
}

impl Plan {
    /// The topic publisher `id` sends on.
    pub fn topic_for(&self, id: u32) -> String {
        match self.topics {
            Topics::Shared => format!("{}/{}/all", self.topic_prefix, self.run),
            Topics::Distinct => format!("{}/{}/{id}", self.topic_prefix, self.run),
        }
    }

    /// The publisher ids whose every message subscriber `index` should receive.
    pub fn expected_publishers(&self, index: usize) -> Vec<u32> {
        let n = self.topic_publishers.max(1);
        match self.topics {
            Topics::Shared => (0..n as u32).collect(),
            Topics::Distinct => vec![(index % n) as u32],
        }
    }

    /// The filter subscriber `index` subscribes to.
    pub fn filter_for(&self, index: usize) -> String {
        match self.topics {
            Topics::Shared => self.topic_for(0),
            Topics::Distinct => self.topic_for(self.expected_publishers(index)[0]),
        }
    }

    /// Messages publisher `id` sends when `messages` is set.
    pub fn quota(&self, id: u32) -> Option<u64> {
        let total = self.messages?;
        let n = self.publishers.max(1) as u64;
        let index = u64::from(id - self.first_publisher);
        Some(total / n + u64::from(index < total % n))
    }

    /// Checks what no run can do without.
    pub fn validate(&self) -> Result<(), LoadError> {
        let fail = |why: &str| Err(LoadError::Plan(why.to_string()));
        if self.payload < stamp::STAMP_LEN {
            return fail("the payload must hold the 24-byte stamp");
        }
        if self.role != Role::Subscribe && self.publishers == 0 {
            return fail("publishing needs at least one publisher");
        }
        if self.role != Role::Publish && self.subscribers == 0 {
            return fail("subscribing needs at least one subscriber");
        }
        let last = u64::from(self.first_publisher) + self.publishers as u64;
        if self.role != Role::Subscribe && last > self.topic_publishers as u64 {
            return fail("publisher ids must lie below --topic-publishers");
        }
        Ok(())
    }
}

/// What the tasks of one run share.
pub(crate) struct Shared {
    pub plan: Plan,
    pub run_tag: u32,
    pub stop_publishing: CancellationToken,
    pub stop_receiving: CancellationToken,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub received: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn plan(topics: Topics) -> Plan {
        Plan {
            login: Login {
                broker: "127.0.0.1:1".parse().unwrap(),
                version: crate::mqtt::codec::ProtocolVersion::V311,
                username: None,
                password: None,
            },
            role: Role::Both,
            run: "r".into(),
            publishers: 3,
            first_publisher: 0,
            subscribers: 4,
            first_subscriber: 0,
            topic_publishers: 3,
            topics,
            qos: QoS::AtLeastOnce,
            payload: 64,
            window: 32,
            rate: None,
            duration: Duration::from_secs(1),
            messages: Some(10),
            drain: Duration::from_secs(1),
            client_prefix: "bench-".into(),
            topic_prefix: "bench".into(),
            broker_pid: None,
            progress: false,
            persistent_subscribers: false,
        }
    }

    #[test]
    fn topics_quotas_and_expectations_line_up() {
        let distinct = plan(Topics::Distinct);
        assert_eq!(distinct.filter_for(4), "bench/r/1");
        assert_eq!(distinct.expected_publishers(4), [1]);
        let quotas: Vec<u64> = (0..3).map(|id| distinct.quota(id).unwrap()).collect();
        assert_eq!(quotas, [4, 3, 3]);
        let shared = plan(Topics::Shared);
        assert_eq!(shared.filter_for(2), "bench/r/all");
        assert_eq!(shared.expected_publishers(2), [0, 1, 2]);
        assert!(distinct.validate().is_ok());
        let short = Plan {
            payload: 8,
            ..plan(Topics::Distinct)
        };
        assert!(short.validate().is_err());
        let outside = Plan {
            first_publisher: 2,
            ..plan(Topics::Distinct)
        };
        assert!(outside.validate().is_err());
    }
}
