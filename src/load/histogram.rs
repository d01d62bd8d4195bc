//! A latency histogram in microseconds: exact below 64 µs, then 32 buckets per power of
//! two (at most ~3% relative error), mergeable across subscribers and processes.
//!
//! Recording is one index computation and an increment; the whole histogram is 16 KiB.
//! Percentiles use the nearest rank and report a bucket's midpoint; the maximum is kept
//! exactly. This module must never allocate per sample.

use serde::{Deserialize, Serialize};

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Enough for every `u64`: the last bucket ends at `u64::MAX`.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB as usize;

/// Counts of latencies (µs) per bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Sparse", into = "Sparse")]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn index(micros: u64) -> usize {
    if micros < 2 * SUB {
        return micros as usize;
    }
    let msb = 63 - micros.leading_zeros();
    let shift = msb - SUB_BITS;
    ((u64::from(shift) * SUB) + (micros >> shift)) as usize
}

/// The lowest and highest value of bucket `i`.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < 2 * SUB {
        return (i, i);
    }
    let shift = i / SUB - 1;
    let mantissa = i - shift * SUB;
    let low = mantissa << shift;
    (low, low + ((1u64 << shift) - 1))
}

impl Histogram {
    pub(crate) fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest recorded value, exactly.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The `p`th percentile (nearest rank), in µs; 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bounds(i);
                return (low + (high - low) / 2).min(self.max);
            }
        }
        self.max
    }
}

/// The serialized form: only non-empty buckets.
#[derive(Serialize, Deserialize)]
struct Sparse {
    buckets: Vec<(usize, u64)>,
    max: u64,
}

impl From<Histogram> for Sparse {
    fn from(h: Histogram) -> Sparse {
        let buckets = h
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i, *c))
            .collect();
        Sparse {
            buckets,
            max: h.max,
        }
    }
}

impl From<Sparse> for Histogram {
    fn from(s: Sparse) -> Histogram {
        let mut h = Histogram {
            max: s.max,
            ..Histogram::default()
        };
        for (i, count) in s.buckets.into_iter().filter(|(i, _)| *i < BUCKETS) {
            h.counts[i] += count;
            h.total += count;
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_line_with_small_relative_error() {
        let mut previous_high = None;
        for i in 0..BUCKETS {
            let (low, high) = bounds(i);
            assert!(low <= high);
            if let Some(previous) = previous_high {
                assert_eq!(low, previous + 1, "bucket {i} follows on");
            }
            assert_eq!(index(low), i);
            assert_eq!(index(high), i);
            assert!((high - low) as f64 <= low as f64 / 31.0, "bucket {i}");
            previous_high = Some(high);
        }
        assert_eq!(previous_high, Some(u64::MAX));
    }

    #[test]
    fn percentiles_merge_and_serialize() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for micros in 1..=100 {
            a.record(micros * 1000);
        }
        b.record(5_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 101);
        let p50 = a.percentile(50.0);
        assert!((49_000..=52_000).contains(&p50), "{p50}");
        assert_eq!(a.max(), 5_000_000);
        assert_eq!(a.percentile(100.0), 5_000_000);
        let json = serde_json::to_string(&a).unwrap();
        let back: Histogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert_eq!(Histogram::default().percentile(99.0), 0);
    }
}
