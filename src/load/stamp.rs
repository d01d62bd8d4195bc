//! The stamp every load message carries at the start of its payload: when it was sent,
//! which run and publisher sent it, and its sequence number.
//!
//! Layout (big-endian): bytes 0..8 the send time in nanoseconds since the Unix epoch (the
//! wall clock, so publishers and subscribers may be separate processes on one machine),
//! 8..12 a tag of the run id, 12..16 the publisher id, 16..24 the sequence number (0, 1, …
//! per publisher). The rest of the payload is zeros. This module must never accept a
//! payload shorter than [`STAMP_LEN`] as a stamp.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes of the stamp; the smallest payload the load tool sends.
pub const STAMP_LEN: usize = 24;

/// What a load message says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub(crate) sent_at_nanos: u64,
    pub(crate) run: u32,
    pub(crate) publisher: u32,
    pub(crate) seq: u64,
}

impl Stamp {
    /// Writes the stamp into the start of `payload` (at least [`STAMP_LEN`] bytes).
    pub fn write(&self, payload: &mut [u8]) {
        payload[0..8].copy_from_slice(&self.sent_at_nanos.to_be_bytes());
        payload[8..12].copy_from_slice(&self.run.to_be_bytes());
        payload[12..16].copy_from_slice(&self.publisher.to_be_bytes());
        payload[16..24].copy_from_slice(&self.seq.to_be_bytes());
    }

    /// Reads a stamp; `None` if the payload is too short.
    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let field = |range: std::ops::Range<usize>| payload.get(range);
        Some(Stamp {
            sent_at_nanos: u64::from_be_bytes(field(0..8)?.try_into().ok()?),
            run: u32::from_be_bytes(field(8..12)?.try_into().ok()?),
            publisher: u32::from_be_bytes(field(12..16)?.try_into().ok()?),
            seq: u64::from_be_bytes(field(16..24)?.try_into().ok()?),
        })
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A 32-bit tag of a run id (FNV-1a), so a message of another run is recognised.
pub fn run_tag(run: &str) -> u32 {
    run.bytes().fold(0x811c_9dc5u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_and_short_payloads_are_not_stamps() {
        let stamp = Stamp {
            sent_at_nanos: now_nanos(),
            run: run_tag("r1"),
            publisher: 7,
            seq: 1 << 40,
        };
        let mut payload = vec![0u8; 64];
        stamp.write(&mut payload);
        assert_eq!(Stamp::read(&payload), Some(stamp));
        assert_eq!(Stamp::read(&payload[..STAMP_LEN - 1]), None);
        assert_ne!(run_tag("r1"), run_tag("r2"));
    }
}
