//! MQTT reason codes (5.0) and their 3.1.1 CONNACK / SUBACK equivalents.
//!
//! A [`ReasonCode`] is the byte a 5.0 peer sees in CONNACK, PUBACK, SUBACK, DISCONNECT…
//! 3.1.1 has only the six CONNACK return codes and the SUBACK failure byte 0x80;
//! [`ReasonCode::connack_v311`] maps to them. This module must never decide anything:
//! it only names codes.

use std::fmt;

/// One MQTT 5.0 reason code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReasonCode(pub u8);

impl ReasonCode {
    /// 0x00 Success (also Normal disconnection and Granted QoS 0).
    pub const SUCCESS: ReasonCode = ReasonCode(0x00);
    /// 0x01 Granted QoS 1.
    pub const GRANTED_QOS_1: ReasonCode = ReasonCode(0x01);
    /// 0x02 Granted QoS 2.
    pub const GRANTED_QOS_2: ReasonCode = ReasonCode(0x02);
    /// 0x04 Disconnect with Will Message.
    pub const DISCONNECT_WITH_WILL: ReasonCode = ReasonCode(0x04);
    /// 0x10 No matching subscribers.
    pub const NO_MATCHING_SUBSCRIBERS: ReasonCode = ReasonCode(0x10);
    /// 0x11 No subscription existed.
    pub const NO_SUBSCRIPTION_EXISTED: ReasonCode = ReasonCode(0x11);
    /// 0x18 Continue authentication.
    pub const CONTINUE_AUTHENTICATION: ReasonCode = ReasonCode(0x18);
    /// 0x19 Re-authenticate.
    pub const REAUTHENTICATE: ReasonCode = ReasonCode(0x19);
    /// 0x80 Unspecified error.
    pub const UNSPECIFIED_ERROR: ReasonCode = ReasonCode(0x80);
    /// 0x81 Malformed Packet.
    pub const MALFORMED_PACKET: ReasonCode = ReasonCode(0x81);
    /// 0x82 Protocol Error.
    pub const PROTOCOL_ERROR: ReasonCode = ReasonCode(0x82);
    /// 0x83 Implementation specific error.
    pub const IMPLEMENTATION_SPECIFIC: ReasonCode = ReasonCode(0x83);
    /// 0x84 Unsupported Protocol Version.
    pub const UNSUPPORTED_PROTOCOL_VERSION: ReasonCode = ReasonCode(0x84);
    /// 0x85 Client Identifier not valid.
    pub const CLIENT_IDENTIFIER_NOT_VALID: ReasonCode = ReasonCode(0x85);
    /// 0x86 Bad User Name or Password.
    pub const BAD_USERNAME_OR_PASSWORD: ReasonCode = ReasonCode(0x86);
    /// 0x87 Not authorized.
    pub const NOT_AUTHORIZED: ReasonCode = ReasonCode(0x87);
    /// 0x88 Server unavailable.
    pub const SERVER_UNAVAILABLE: ReasonCode = ReasonCode(0x88);
    /// 0x89 Server busy.
    pub const SERVER_BUSY: ReasonCode = ReasonCode(0x89);
    /// 0x8B Server shutting down.
    pub const SERVER_SHUTTING_DOWN: ReasonCode = ReasonCode(0x8B);
    /// 0x8C Bad authentication method.
    pub const BAD_AUTHENTICATION_METHOD: ReasonCode = ReasonCode(0x8C);
    /// 0x8D Keep Alive timeout.
    pub const KEEP_ALIVE_TIMEOUT: ReasonCode = ReasonCode(0x8D);
    /// 0x8E Session taken over.
    pub const SESSION_TAKEN_OVER: ReasonCode = ReasonCode(0x8E);
    /// 0x8F Topic Filter invalid.
    pub const TOPIC_FILTER_INVALID: ReasonCode = ReasonCode(0x8F);
    /// 0x90 Topic Name invalid.
    pub const TOPIC_NAME_INVALID: ReasonCode = ReasonCode(0x90);
    /// 0x91 Packet Identifier in use.
    pub const PACKET_IDENTIFIER_IN_USE: ReasonCode = ReasonCode(0x91);
    /// 0x92 Packet Identifier not found.
    pub const PACKET_IDENTIFIER_NOT_FOUND: ReasonCode = ReasonCode(0x92);
    /// 0x93 Receive Maximum exceeded.
    pub const RECEIVE_MAXIMUM_EXCEEDED: ReasonCode = ReasonCode(0x93);
    /// 0x94 Topic Alias invalid.
    pub const TOPIC_ALIAS_INVALID: ReasonCode = ReasonCode(0x94);
    /// 0x95 Packet too large.
    pub const PACKET_TOO_LARGE: ReasonCode = ReasonCode(0x95);
    /// 0x97 Quota exceeded.
    pub const QUOTA_EXCEEDED: ReasonCode = ReasonCode(0x97);
    /// 0x99 Payload format invalid.
    pub const PAYLOAD_FORMAT_INVALID: ReasonCode = ReasonCode(0x99);
    /// 0x9B QoS not supported.
    pub const QOS_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9B);
    /// 0x9E Shared Subscriptions not supported.
    pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: ReasonCode = ReasonCode(0x9E);

    /// True for the failure codes (0x80 and above).
    pub fn is_failure(self) -> bool {
        self.0 >= 0x80
    }

    /// The 3.1.1 CONNACK return code closest to this 5.0 code.
    pub fn connack_v311(self) -> u8 {
        match self {
            ReasonCode::SUCCESS => 0x00,
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => 0x01,
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => 0x02,
            ReasonCode::SERVER_UNAVAILABLE
            | ReasonCode::SERVER_BUSY
            | ReasonCode::SERVER_SHUTTING_DOWN => 0x03,
            ReasonCode::BAD_USERNAME_OR_PASSWORD | ReasonCode::BAD_AUTHENTICATION_METHOD => 0x04,
            _ => 0x05,
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x}", self.0)
    }
}
