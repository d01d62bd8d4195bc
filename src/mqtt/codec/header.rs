//! The fixed header: packet type, flags, and the remaining length.
//!
//! [`parse`] reads at most 5 bytes and never looks at the body, so the caller can refuse
//! an oversized packet before buffering it. The remaining length must fit in 4 bytes and be
//! minimally encoded (MQTT-1.5.5-1); flags must be exactly what the spec fixes for the
//! packet type (MQTT-2.2.2-1/-2). This module must never allocate.

use super::error::CodecError;
use bytes::BufMut;
use std::fmt;

/// The largest remaining length 4 bytes can encode.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The fourteen MQTT control packet types (AUTH is 5.0 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The type named by the high nibble of the first byte; 0 is reserved.
    pub fn from_nibble(nibble: u8) -> Result<PacketType, CodecError> {
        use PacketType::*;
        Ok(match nibble {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            other => return Err(CodecError::ReservedPacketType(other)),
        })
    }

    /// The flags the spec fixes for this type, or `None` for PUBLISH (whose flags vary).
    pub fn fixed_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }

    /// True for packets only a server sends.
    pub fn is_server_to_client(self) -> bool {
        matches!(
            self,
            PacketType::ConnAck | PacketType::SubAck | PacketType::UnsubAck | PacketType::PingResp
        )
    }

    /// True for packets only a client sends.
    pub fn is_client_to_server(self) -> bool {
        matches!(
            self,
            PacketType::Connect
                | PacketType::Subscribe
                | PacketType::Unsubscribe
                | PacketType::PingReq
        )
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Auth => "AUTH",
        })
    }
}

/// A parsed fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    pub packet: PacketType,
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
    let packet = PacketType::from_nibble(first >> 4)?;
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
