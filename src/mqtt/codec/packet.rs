//! The fourteen MQTT control packet types and what the spec fixes for each: the flags of
//! its fixed header and which side may send it. This module must never depend on the
//! rest of the codec: errors and headers name packets by it.

use std::fmt;

/// The fourteen MQTT control packet types (AUTH is 5.0 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// CONNECT.
    Connect = 1,
    /// CONNACK.
    ConnAck = 2,
    /// PUBLISH.
    Publish = 3,
    /// PUBACK.
    PubAck = 4,
    /// PUBREC.
    PubRec = 5,
    /// PUBREL.
    PubRel = 6,
    /// PUBCOMP.
    PubComp = 7,
    /// SUBSCRIBE.
    Subscribe = 8,
    /// SUBACK.
    SubAck = 9,
    /// UNSUBSCRIBE.
    Unsubscribe = 10,
    /// UNSUBACK.
    UnsubAck = 11,
    /// PINGREQ.
    PingReq = 12,
    /// PINGRESP.
    PingResp = 13,
    /// DISCONNECT.
    Disconnect = 14,
    /// AUTH (5.0).
    Auth = 15,
}

impl PacketType {
    /// The type named by the high nibble of the first byte; `None` for 0 (reserved) or a
    /// value past 15.
    pub fn from_nibble(nibble: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match nibble {
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
            _ => return None,
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
