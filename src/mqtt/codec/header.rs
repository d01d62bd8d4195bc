//! The fixed header: packet type, flags, and the remaining length.
//!
//! [`parse`] reads at most 5 bytes and never looks at the body, so the caller can refuse
//! an oversized packet before buffering it. The remaining length must fit in 4 bytes and be
//! minimally encoded (MQTT-1.5.5-1); flags must be exactly what the spec fixes for the
//! packet type (MQTT-2.2.2-1/-2). This module must never allocate.

use super::error::CodecError;
use super::packet::PacketType;
use bytes::BufMut;

/// The largest remaining length 4 bytes can encode.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// A parsed fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    pub(crate) packet: PacketType,
    /// The low nibble of the first byte.
    pub flags: u8,
    /// Bytes after the fixed header.
    pub remaining: usize,
    /// Bytes of the fixed header itself (2 to 5).
    pub header_len: usize,
}

impl FixedHeader {
    /// The whole packet's size in bytes.
    pub fn total_len(&self) -> usize {
        self.header_len + self.remaining
    }
}

/// Parses a fixed header from the start of `src`; `Ok(None)` means more bytes are needed.
pub fn parse(src: &[u8]) -> Result<Option<FixedHeader>, CodecError> {
    let Some(&first) = src.first() else {
        return Ok(None);
    };
    let packet =
        PacketType::from_nibble(first >> 4).ok_or(CodecError::ReservedPacketType(first >> 4))?;
    let flags = first & 0x0F;
    if packet.fixed_flags().is_some_and(|fixed| fixed != flags) {
        return Err(CodecError::InvalidFlags { packet, flags });
    }
    let Some((remaining, used)) = read_variable(&src[1..])? else {
        return Ok(None);
    };
    Ok(Some(FixedHeader {
        packet,
        flags,
        remaining,
        header_len: 1 + used,
    }))
}

/// Reads a remaining length: `Ok(None)` if incomplete, else the value and bytes used.
fn read_variable(src: &[u8]) -> Result<Option<(usize, usize)>, CodecError> {
    let mut value = 0usize;
    for index in 0..4 {
        let Some(&byte) = src.get(index) else {
            return Ok(None);
        };
        value |= usize::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            if index > 0 && byte == 0 {
                return Err(CodecError::RemainingLengthNotMinimal);
            }
            return Ok(Some((value, index + 1)));
        }
    }
    Err(CodecError::RemainingLengthTooLong)
}

/// Appends a variable byte integer (remaining length, property lengths, ids).
pub fn put_variable(dst: &mut impl BufMut, mut value: usize) {
    loop {
        let mut byte = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        dst.put_u8(byte);
        if value == 0 {
            return;
        }
    }
}

/// Bytes a variable byte integer takes.
pub fn variable_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_boundaries_round_trip() {
        for value in [
            0,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            MAX_REMAINING_LENGTH,
        ] {
            let mut buf = vec![0x30];
            put_variable(&mut buf, value);
            assert_eq!(buf.len() - 1, variable_len(value));
            let header = parse(&buf).unwrap().unwrap();
            assert_eq!(header.remaining, value);
            assert_eq!(header.header_len, buf.len());
        }
    }

    #[test]
    fn five_byte_and_non_minimal_lengths_are_refused() {
        let five = [0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
        assert!(matches!(
            parse(&five),
            Err(CodecError::RemainingLengthTooLong)
        ));
        let padded = [0x10, 0x85, 0x00];
        assert!(matches!(
            parse(&padded),
            Err(CodecError::RemainingLengthNotMinimal)
        ));
    }

    #[test]
    fn incomplete_header_asks_for_more() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[0x30]).unwrap(), None);
        assert_eq!(parse(&[0x30, 0x80]).unwrap(), None);
    }

    #[test]
    fn fixed_flags_are_enforced() {
        assert!(matches!(
            parse(&[0x80, 0x00]),
            Err(CodecError::InvalidFlags {
                packet: PacketType::Subscribe,
                flags: 0
            })
        ));
        assert!(matches!(
            parse(&[0xC1, 0x00]),
            Err(CodecError::InvalidFlags { .. })
        ));
        assert!(matches!(
            parse(&[0x00, 0x00]),
            Err(CodecError::ReservedPacketType(0))
        ));
    }
}
