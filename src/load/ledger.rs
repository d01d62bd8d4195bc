//! Per-publisher sequence accounting: what each publisher sent and had acknowledged, what
//! each subscriber received from each publisher, and the tally that classifies every
//! expected delivery.
//!
//! A publisher's [`PublisherLedger`] holds how many messages it sent (sequences 0..sent)
//! and the sets acknowledged as accepted and refused (a 5.0 failure reason). A
//! subscriber's [`SubscriberLedger`] holds, per publisher, the set received, duplicates
//! (a sequence seen again) and reorderings (a sequence older than one already seen), plus
//! the latency histogram. [`tally`] walks every (subscriber, expected publisher, sequence):
//! received; else acknowledged-lost (the broker accepted it and never delivered it — a
//! broker bug for QoS 1/2), refused, or unacknowledged-lost (in flight at the end, or any
//! QoS 0 loss). Sets are bitmaps (one bit per message) serialized as ranges. This module
//! must never guess: a sequence is only counted in one class.

use super::histogram::Histogram;
use super::stamp::Stamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A set of sequence numbers, as a bitmap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<(u64, u64)>", into = "Vec<(u64, u64)>")]
pub struct SeqSet {
    words: Vec<u64>,
    len: u64,
}

impl SeqSet {
    /// Adds `seq`; false if it was already there.
    pub fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let fresh = self.words[word] & (1 << bit) == 0;
        self.words[word] |= 1 << bit;
        self.len += u64::from(fresh);
        fresh
    }

    pub(crate) fn contains(&self, seq: u64) -> bool {
        let word = (seq / 64) as usize;
        self.words
            .get(word)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// True when the set holds no sequence number.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Members at or above `from`.
    pub fn count_from(&self, from: u64) -> u64 {
        (from..self.words.len() as u64 * 64)
            .filter(|s| self.contains(*s))
            .count() as u64
    }

    /// The set as half-open ranges, ascending.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for seq in (0..self.words.len() as u64 * 64).filter(|s| self.contains(*s)) {
            match ranges.last_mut() {
                Some((_, end)) if *end == seq => *end += 1,
                _ => ranges.push((seq, seq + 1)),
            }
        }
        ranges
    }
}

impl From<Vec<(u64, u64)>> for SeqSet {
    fn from(ranges: Vec<(u64, u64)>) -> SeqSet {
        let mut set = SeqSet::default();
        for (start, end) in ranges {
            for seq in start..end {
                set.insert(seq);
            }
        }
        set
    }
}

impl From<SeqSet> for Vec<(u64, u64)> {
    fn from(set: SeqSet) -> Vec<(u64, u64)> {
        set.ranges()
    }
}

/// What one publisher did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PublisherLedger {
    pub(crate) id: u32,
    /// Messages sent: sequences `0..sent`.
    pub sent: u64,
    /// Acknowledged as accepted (PUBACK, or PUBREC for QoS 2, without a failure reason).
    pub acked: SeqSet,
    /// Acknowledged with a failure reason (5.0): the broker refused them.
    pub refused: SeqSet,
    /// Why the publisher stopped early, if it did (e.g. the broker closed it).
    pub error: Option<String>,
}

/// What one subscriber saw from one publisher.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stream {
    pub(crate) received: SeqSet,
    pub(crate) duplicates: u64,
    /// Messages that arrived after a later one of the same publisher.
    pub reordered: u64,
    highest: Option<u64>,
}

/// What one subscriber saw.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SubscriberLedger {
    pub(crate) index: usize,
    /// The publisher ids whose every message this subscriber should receive.
    pub expects: Vec<u32>,
    pub(crate) streams: BTreeMap<u32, Stream>,
    /// Messages that were not this run's load messages.
    pub foreign: u64,
    /// Send-to-receive latency of first receipts, in µs.
    pub latency: Histogram,
    /// Wall-clock nanoseconds of the first and the last message received.
    pub first_ns: Option<u64>,
    pub(crate) last_ns: Option<u64>,
    pub(crate) error: Option<String>,
}

impl SubscriberLedger {
    pub(crate) fn new(index: usize, expects: Vec<u32>) -> SubscriberLedger {
        SubscriberLedger {
            index,
            expects,
            ..SubscriberLedger::default()
        }
    }

    /// Records a message of this run received at `now_ns`; true if it was new.
    pub fn record(&mut self, stamp: &Stamp, now_ns: u64) -> bool {
        self.first_ns.get_or_insert(now_ns);
        self.last_ns = Some(now_ns);
        let stream = self.streams.entry(stamp.publisher).or_default();
        if !stream.received.insert(stamp.seq) {
            stream.duplicates += 1;
            return false;
        }
        match stream.highest {
            Some(highest) if stamp.seq < highest => stream.reordered += 1,
            _ => stream.highest = Some(stamp.seq),
        }
        let micros = now_ns.saturating_sub(stamp.sent_at_nanos) / 1000;
        self.latency.record(micros);
        true
    }

    /// Unique messages received.
    pub fn received(&self) -> u64 {
        self.streams.values().map(|s| s.received.len()).sum()
    }
}

/// Every expected delivery, classified.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Deliveries expected: each expected publisher's sent messages, per subscriber.
    pub expected: u64,
    /// Messages delivered (each once).
    pub delivered: u64,
    /// Accepted by the broker (acknowledged) and never delivered.
    pub acked_lost: u64,
    /// Never acknowledged as accepted and never delivered (QoS 0 loss, or in flight).
    pub unacked_lost: u64,
    /// Refused by the broker (5.0 failure reason) and not delivered.
    pub refused: u64,
    /// Delivered although refused (a broker bug: a refusal must mean "to nobody").
    pub refused_delivered: u64,
    /// Deliveries of a message already delivered.
    pub duplicates: u64,
    /// Messages delivered after a later one of the same publisher.
    pub reordered: u64,
    /// Received but not expected: another publisher's, a sequence never sent, or foreign.
    pub unexpected: u64,
}

/// Classifies every expected delivery.
pub fn tally(publishers: &[PublisherLedger], subscribers: &[SubscriberLedger]) -> Tally {
    let by_id: BTreeMap<u32, &PublisherLedger> = publishers.iter().map(|p| (p.id, p)).collect();
    let mut t = Tally::default();
    let empty = Stream::default();
    for sub in subscribers {
        t.unexpected += sub.foreign;
        for (id, stream) in &sub.streams {
            t.duplicates += stream.duplicates;
            t.reordered += stream.reordered;
            match by_id.get(id).filter(|_| sub.expects.contains(id)) {
                None => t.unexpected += stream.received.len(),
                Some(publisher) => t.unexpected += stream.received.count_from(publisher.sent),
            }
        }
        for id in &sub.expects {
            let Some(publisher) = by_id.get(id) else {
                continue;
            };
            let stream = sub.streams.get(id).unwrap_or(&empty);
            classify(publisher, stream, &mut t);
        }
    }
    t
}

fn classify(publisher: &PublisherLedger, stream: &Stream, t: &mut Tally) {
    t.expected += publisher.sent;
    for seq in 0..publisher.sent {
        let refused = publisher.refused.contains(seq);
        match (stream.received.contains(seq), refused) {
            (true, true) => t.refused_delivered += 1,
            (true, false) => t.delivered += 1,
            (false, true) => t.refused += 1,
            (false, false) if publisher.acked.contains(seq) => t.acked_lost += 1,
            (false, false) => t.unacked_lost += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(publisher: u32, seq: u64) -> Stamp {
        Stamp {
            sent_at_nanos: 0,
            run: 1,
            publisher,
            seq,
        }
    }

    #[test]
    fn sets_round_trip_through_ranges() {
        let mut set = SeqSet::default();
        for seq in [0, 1, 2, 5, 64, 65, 200] {
            assert!(set.insert(seq));
        }
        assert!(!set.insert(2));
        assert_eq!(set.len(), 7);
        assert_eq!(set.ranges(), [(0, 3), (5, 6), (64, 66), (200, 201)]);
        assert_eq!(SeqSet::from(set.ranges()), set);
        assert_eq!(set.count_from(64), 3);
    }

    #[test]
    fn every_expected_delivery_lands_in_exactly_one_class() {
        let mut acked = SeqSet::default();
        let mut refused = SeqSet::default();
        for seq in 0..6 {
            acked.insert(seq);
        }
        refused.insert(7);
        let publisher = PublisherLedger {
            id: 3,
            sent: 10,
            acked,
            refused,
            error: None,
        };
        let mut sub = SubscriberLedger::new(0, vec![3]);
        for seq in [0, 1, 3, 2, 2, 8] {
            sub.record(&stamp(3, seq), 1_000);
        }
        sub.record(&stamp(3, 42), 1_000);
        sub.record(&stamp(9, 0), 1_000);
        let t = tally(&[publisher], &[sub]);
        assert_eq!(
            t,
            Tally {
                expected: 10,
                delivered: 5,
                acked_lost: 2,   // 4 and 5
                unacked_lost: 2, // 6 and 9
                refused: 1,      // 7
                refused_delivered: 0,
                duplicates: 1,
                reordered: 1,
                unexpected: 2, // 42 (never sent) and publisher 9 (not expected)
            }
        );
    }
}
