//! The broker's counters and their Prometheus text rendering.
//!
//! Every counter is a relaxed atomic, bumped where the event happens (a connection
//! opened, a message accepted or sent, a decision, a message dropped); [`Metrics::render`]
//! writes them in the Prometheus text exposition format 0.0.4. The counters bumped for
//! every message (messages and bytes in and out, decisions) are kept once per
//! [`HotShard`], each on its own cache lines, and a thread bumps only its own shard: two
//! cores counting messages then never pass one cache line back and forth; a reading sums
//! the shards. This module must never lock, allocate on the hot path, or block.

use crate::ast::Action;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// How many copies of the per-message counters are kept (threads share them round-robin).
const SHARDS: usize = 8;

/// The counters bumped for every message, one copy per shard, aligned so that no two
/// shards share a cache line (128 bytes: adjacent-line prefetch pairs 64-byte lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct HotShard {
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Indexed by `Action as usize`, then 0 = allowed, 1 = denied.
    decisions: [[AtomicU64; 2]; Action::ALL.len()],
}

/// The shard a thread bumps: threads take shards round-robin when they first count.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|index| *index)
}

/// Counters for one broker.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_current: AtomicU64,
    connections_total: AtomicU64,
    /// Per-message counters, summed when read.
    hot: [HotShard; SHARDS],
    dropped_queue_full: AtomicU64,
    /// Retained messages dropped because their publisher lost the right to retain them.
    dropped_retained_revoked: AtomicU64,
    dropped_offline: AtomicU64,
    publishes_waited: AtomicU64,
    publishes_refused_queue_full: AtomicU64,
    subscribers_stalled: AtomicU64,
    /// Offline sessions ended because a QoS 1/2 message would have overflowed their queue.
    sessions_ended_offline_queue_full: AtomicU64,
    decision_log_dropped: AtomicU64,
    /// Policy reloads swapped in.
    policy_reloads_applied: AtomicU64,
    /// Policy reloads refused (the running policy kept).
    policy_reloads_rejected: AtomicU64,
}

/// Decrements `connections_current` when dropped.
pub struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections_current.fetch_sub(1, Ordering::Relaxed);
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Metrics {
    /// This thread's copy of the per-message counters.
    fn hot(&self) -> &HotShard {
        &self.hot[shard_index()]
    }

    /// The sum over the shards of one per-message counter.
    fn hot_sum(&self, counter: impl Fn(&HotShard) -> &AtomicU64) -> u64 {
        self.hot
            .iter()
            .map(|shard| counter(shard).load(Ordering::Relaxed))
            .sum()
    }

    /// Counts a new connection; the guard counts it closed.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        bump(&self.connections_total, 1);
        bump(&self.connections_current, 1);
        ConnectionGuard(self.clone())
    }

    /// An authorized PUBLISH accepted from a client (`bytes` of payload).
    pub fn message_in(&self, bytes: usize) {
        let hot = self.hot();
        bump(&hot.messages_in, 1);
        bump(&hot.bytes_in, bytes as u64);
    }

    /// A PUBLISH sent to a client (`bytes` of payload).
    pub fn message_out(&self, bytes: usize) {
        let hot = self.hot();
        bump(&hot.messages_out, 1);
        bump(&hot.bytes_out, bytes as u64);
    }

    pub(crate) fn decision(&self, action: Action, allowed: bool) {
        bump(
            &self.hot().decisions[action as usize][usize::from(!allowed)],
            1,
        );
    }

    /// A QoS 0 or broker-originated delivery not queued because the queue was full.
    pub fn dropped_queue_full(&self) {
        bump(&self.dropped_queue_full, 1);
    }

    /// A QoS 0 delivery not queued because the session is offline.
    pub fn dropped_offline(&self) {
        bump(&self.dropped_offline, 1);
    }

    /// A QoS 1/2 PUBLISH that had to wait (unacknowledged) for room in a subscriber queue.
    pub fn publish_waited(&self) {
        bump(&self.publishes_waited, 1);
    }

    /// A QoS 1/2 PUBLISH refused because an online subscriber's queue stayed full:
    /// delivered to nobody, never acknowledged as accepted.
    pub fn publish_refused_queue_full(&self) {
        bump(&self.publishes_refused_queue_full, 1);
    }

    /// A subscriber disconnected because its full queue made no progress.
    pub fn subscriber_stalled(&self) {
        bump(&self.subscribers_stalled, 1);
    }

    /// An offline session ended because a QoS 1/2 message would have overflowed its queue.
    pub fn session_ended_offline_queue_full(&self) {
        bump(&self.sessions_ended_offline_queue_full, 1);
    }

    /// A retained message dropped because its publisher may no longer retain it.
    pub fn retained_revoked(&self) {
        bump(&self.dropped_retained_revoked, 1);
    }

    /// A policy reload: swapped in (`applied`) or refused with the running policy kept.
    pub fn policy_reload(&self, applied: bool) {
        let counter = if applied {
            &self.policy_reloads_applied
        } else {
            &self.policy_reloads_rejected
        };
        bump(counter, 1);
    }

    /// Policy reloads so far (applied, rejected).
    pub fn policy_reloads(&self) -> (u64, u64) {
        (
            self.policy_reloads_applied.load(Ordering::Relaxed),
            self.policy_reloads_rejected.load(Ordering::Relaxed),
        )
    }

    /// A decision-log record dropped because the log's channel was full.
    pub fn decision_log_dropped(&self) -> u64 {
        self.decision_log_dropped.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Decisions counted so far for `action` (allowed, denied).
    pub fn decisions(&self, action: Action) -> (u64, u64) {
        let index = action as usize;
        (
            self.hot_sum(|shard| &shard.decisions[index][0]),
            self.hot_sum(|shard| &shard.decisions[index][1]),
        )
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let simple: [(&str, &str, &str, u64); 10] = [
            (
                "connections_current",
                "gauge",
                "Open client connections.",
                get(&self.connections_current),
            ),
            (
                "connections_total",
                "counter",
                "Client connections accepted.",
                get(&self.connections_total),
            ),
            (
                "messages_received_total",
                "counter",
                "Authorized PUBLISH packets accepted from clients.",
                self.hot_sum(|shard| &shard.messages_in),
            ),
            (
                "messages_sent_total",
                "counter",
                "PUBLISH packets sent to clients.",
                self.hot_sum(|shard| &shard.messages_out),
            ),
            (
                "bytes_received_total",
                "counter",
                "Payload bytes of accepted PUBLISH packets.",
                self.hot_sum(|shard| &shard.bytes_in),
            ),
            (
                "bytes_sent_total",
                "counter",
                "Payload bytes of PUBLISH packets sent.",
                self.hot_sum(|shard| &shard.bytes_out),
            ),
            (
                "publishes_waited_total",
                "counter",
                "QoS 1/2 PUBLISH packets held unacknowledged until a full subscriber queue had room.",
                get(&self.publishes_waited),
            ),
            (
                "publishes_refused_total",
                "counter",
                "QoS 1/2 PUBLISH packets refused (delivered to nobody) because an online subscriber's queue stayed full.",
                get(&self.publishes_refused_queue_full),
            ),
            (
                "subscribers_stalled_total",
                "counter",
                "Subscribers disconnected because their full queue made no progress.",
                get(&self.subscribers_stalled),
            ),
            (
                "decision_log_dropped_total",
                "counter",
                "Decision-log records dropped because the log channel was full.",
                get(&self.decision_log_dropped),
            ),
        ];
        for (name, kind, help, value) in simple {
            let _ = writeln!(
                out,
                "# HELP topicguard_{name} {help}\n# TYPE topicguard_{name} {kind}\ntopicguard_{name} {value}"
            );
        }
        out.push_str("# HELP topicguard_decisions_total Authorization decisions by action and verdict.\n# TYPE topicguard_decisions_total counter\n");
        for action in Action::ALL {
            let (allowed, denied) = self.decisions(action);
            let _ = writeln!(
                out,
                "topicguard_decisions_total{{action=\"{action}\",verdict=\"allowed\"}} {allowed}"
            );
            let _ = writeln!(
                out,
                "topicguard_decisions_total{{action=\"{action}\",verdict=\"denied\"}} {denied}"
            );
        }
        out.push_str("# HELP topicguard_messages_dropped_total QoS 0 or broker-originated deliveries not queued, by reason.\n# TYPE topicguard_messages_dropped_total counter\n");
        let _ = writeln!(
            out,
            "topicguard_messages_dropped_total{{reason=\"queue_full\"}} {}",
            get(&self.dropped_queue_full)
        );
        let _ = writeln!(
            out,
            "topicguard_messages_dropped_total{{reason=\"offline_qos0\"}} {}",
            get(&self.dropped_offline)
        );
        let _ = writeln!(
            out,
            "topicguard_messages_dropped_total{{reason=\"retained_revoked\"}} {}",
            get(&self.dropped_retained_revoked)
        );
        let _ = writeln!(
            out,
            "# HELP topicguard_sessions_ended_total Sessions the broker ended, by reason.\n# TYPE topicguard_sessions_ended_total counter\ntopicguard_sessions_ended_total{{reason=\"offline_queue_full\"}} {}",
            get(&self.sessions_ended_offline_queue_full)
        );
        let (applied, rejected) = self.policy_reloads();
        let _ = writeln!(
            out,
            "# HELP topicguard_policy_reloads_total Policy reloads by outcome (rejected: the running policy was kept).\n# TYPE topicguard_policy_reloads_total counter\ntopicguard_policy_reloads_total{{outcome=\"applied\"}} {applied}\ntopicguard_policy_reloads_total{{outcome=\"rejected\"}} {rejected}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_rendering() {
        let metrics = Arc::new(Metrics::default());
        let guard = metrics.connection_opened();
        metrics.message_in(64);
        metrics.message_out(64);
        metrics.message_out(10);
        metrics.decision(Action::Publish, true);
        metrics.decision(Action::Receive, false);
        metrics.dropped_queue_full();
        metrics.retained_revoked();
        metrics.policy_reload(false);
        metrics.publish_waited();
        metrics.session_ended_offline_queue_full();
        let text = metrics.render();
        assert!(
            text.contains("topicguard_connections_current 1\n"),
            "{text}"
        );
        assert!(text.contains("topicguard_bytes_sent_total 74\n"), "{text}");
        assert!(
            text.contains("topicguard_decisions_total{action=\"receive\",verdict=\"denied\"} 1\n")
        );
        assert!(
            text.contains("topicguard_decisions_total{action=\"publish\",verdict=\"allowed\"} 1\n")
        );
        assert!(text.contains("topicguard_messages_dropped_total{reason=\"queue_full\"} 1\n"));
        assert!(
            text.contains("topicguard_messages_dropped_total{reason=\"retained_revoked\"} 1\n")
        );
        assert!(text.contains("topicguard_policy_reloads_total{outcome=\"applied\"} 0\n"));
        assert!(text.contains("topicguard_policy_reloads_total{outcome=\"rejected\"} 1\n"));
        assert!(text.contains("topicguard_messages_dropped_total{reason=\"offline_qos0\"} 0\n"));
        assert!(text.contains("topicguard_publishes_waited_total 1\n"));
        assert!(text.contains("topicguard_publishes_refused_total 0\n"));
        assert!(
            text.contains("topicguard_sessions_ended_total{reason=\"offline_queue_full\"} 1\n")
        );
        drop(guard);
        assert!(
            metrics
                .render()
                .contains("topicguard_connections_current 0\n")
        );
        assert!(
            metrics
                .render()
                .contains("topicguard_connections_total 1\n")
        );
    }

    #[test]
    fn counts_from_many_threads_add_up_across_shards() {
        let metrics = Arc::new(Metrics::default());
        let threads: Vec<_> = (0..SHARDS * 2 + 1)
            .map(|_| {
                let metrics = metrics.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        metrics.message_in(3);
                        metrics.message_out(2);
                        metrics.decision(Action::Publish, true);
                        metrics.decision(Action::Receive, false);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("counting thread");
        }
        let messages = (SHARDS as u64 * 2 + 1) * 1000;
        let text = metrics.render();
        assert!(
            text.contains(&format!("topicguard_messages_received_total {messages}\n")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "topicguard_bytes_received_total {}\n",
            messages * 3
        )));
        assert!(text.contains(&format!("topicguard_bytes_sent_total {}\n", messages * 2)));
        assert_eq!(metrics.decisions(Action::Publish), (messages, 0));
        assert_eq!(metrics.decisions(Action::Receive), (0, messages));
    }

    #[test]
    fn shards_do_not_share_a_cache_line() {
        assert_eq!(std::mem::align_of::<HotShard>(), 128);
        assert_eq!(std::mem::size_of::<HotShard>() % 128, 0);
    }
}
