//! Everything that can be wrong with bytes on the wire, one variant per problem.
//!
//! Each [`CodecError`] says what was wrong and where (the packet and the field), and maps
//! to the 5.0 reason code the connection closes with ([`CodecError::reason_code`]). The
//! codec never recovers from an error: the connection is closed after it.

use super::packet::PacketType;
use super::reason::ReasonCode;
use crate::mqtt::topic::{self, TopicError};

/// A packet that cannot be accepted, or could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("the remaining length uses more than 4 bytes")]
    RemainingLengthTooLong,
    #[error("the remaining length is not encoded in the minimum number of bytes")]
    RemainingLengthNotMinimal,
    #[error("{field} is a variable byte integer longer than 4 bytes or not minimally encoded")]
    BadVariableInteger { field: &'static str },
    #[error("packet type {0} is reserved")]
    ReservedPacketType(u8),
    #[error("{packet} has invalid fixed-header flags {flags:#06b}")]
    InvalidFlags { packet: PacketType, flags: u8 },
    #[error("{packet} of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        packet: PacketType,
        size: usize,
        max: usize,
    },
    #[error("{packet} ended inside {field}")]
    Truncated {
        packet: PacketType,
        field: &'static str,
    },
    #[error("{packet} has {extra} unexpected bytes after its last field")]
    TrailingBytes { packet: PacketType, extra: usize },
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("{field} contains the forbidden character U+{code:04X} at byte {offset}")]
    ForbiddenCharacter {
        field: &'static str,
        code: u32,
        offset: usize,
    },
    #[error("{field} is longer than 65,535 bytes")]
    StringTooLong { field: &'static str },
    #[error("the topic name {why}")]
    InvalidTopicName { why: TopicError },
    #[error("the topic filter `{filter}` {why}")]
    InvalidTopicFilter { filter: String, why: TopicError },
    #[error("{field} has QoS 3, which does not exist")]
    InvalidQos { field: &'static str },
    #[error("{field} has reserved bits set")]
    ReservedBits { field: &'static str },
    #[error("{packet} has packet identifier 0")]
    ZeroPacketIdentifier { packet: PacketType },
    #[error("{packet} carries unknown property id {id:#04x}")]
    UnknownProperty { packet: PacketType, id: u32 },
    #[error("{packet} carries property {name} more than once")]
    DuplicateProperty {
        packet: PacketType,
        name: &'static str,
    },
    #[error("property {name} is not allowed in {packet}")]
    PropertyNotAllowed {
        packet: PacketType,
        name: &'static str,
    },
    #[error("property {name} in {packet} has the invalid value {value}")]
    InvalidPropertyValue {
        packet: PacketType,
        name: &'static str,
        value: u32,
    },
    #[error("{packet} carries more than {max} user properties")]
    TooManyUserProperties { packet: PacketType, max: usize },
    #[error("protocol level {level} is not supported (only 4 = MQTT 3.1.1 and 5 = MQTT 5.0)")]
    UnsupportedProtocolVersion { level: u8 },
    #[error("the protocol name `{name}` is not `MQTT`")]
    BadProtocolName { name: String },
    #[error("the first packet must be CONNECT, got {packet}")]
    FirstPacketNotConnect { packet: PacketType },
    #[error("a second CONNECT on the same connection is a protocol error")]
    SecondConnect,
    #[error("{packet} is only sent by the {sender}, never to it")]
    WrongDirection {
        packet: PacketType,
        sender: &'static str,
    },
    #[error("{packet} lists no topic filters")]
    NoTopicFilters { packet: PacketType },
    #[error("subscription options set Retain Handling to 3, which is reserved")]
    RetainHandlingThree,
    #[error("a shared subscription (`$share/`) may not set No Local")]
    NoLocalOnSharedSubscription,
    #[error("CONNECT sets the password flag without the user name flag (MQTT 3.1.1)")]
    PasswordWithoutUsername,
    #[error("CONNECT sets will QoS or will retain without the will flag")]
    WillFlagsWithoutWill,
    #[error("{packet} carries reason code {code:#04x}, which it may not")]
    InvalidReasonCode { packet: PacketType, code: u8 },
    #[error("PUBLISH sent by a client may not carry a subscription identifier")]
    SubscriptionIdentifierFromClient,
    #[error("{packet} does not exist in MQTT 3.1.1")]
    NotInVersion { packet: PacketType },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks a PUBLISH or will topic name ([`topic::check_name_syntax`]); `allow_empty` when
/// a 5.0 topic alias stands in for it.
pub(super) fn check_name(name: &str, allow_empty: bool) -> Result<(), CodecError> {
    topic::check_name_syntax(name, allow_empty).map_err(|why| CodecError::InvalidTopicName { why })
}

/// Checks a SUBSCRIBE or UNSUBSCRIBE filter ([`topic::check_filter_syntax`]).
pub(super) fn check_filter(filter: &str) -> Result<(), CodecError> {
    topic::check_filter_syntax(filter).map_err(|why| CodecError::InvalidTopicFilter {
        filter: shorten(filter),
        why,
    })
}

/// The filter, cut to a readable length for error messages.
fn shorten(filter: &str) -> String {
    const MAX: usize = 64;
    if filter.len() <= MAX {
        return filter.to_string();
    }
    let mut end = MAX;
    while !filter.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &filter[..end])
}

impl CodecError {
    /// The 5.0 reason code a DISCONNECT (or CONNACK) for this error carries.
    pub fn reason_code(&self) -> ReasonCode {
        use CodecError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            UnsupportedProtocolVersion { .. } | BadProtocolName { .. } => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            TooManyUserProperties { .. } => ReasonCode::QUOTA_EXCEEDED,
            FirstPacketNotConnect { .. }
            | SecondConnect
            | WrongDirection { .. }
            | NoTopicFilters { .. }
            | NoLocalOnSharedSubscription
            | RetainHandlingThree
            | DuplicateProperty { .. }
            | PropertyNotAllowed { .. }
            | InvalidPropertyValue { .. }
            | SubscriptionIdentifierFromClient
            | ZeroPacketIdentifier { .. } => ReasonCode::PROTOCOL_ERROR,
            Io(_) => ReasonCode::UNSPECIFIED_ERROR,
            _ => ReasonCode::MALFORMED_PACKET,
        }
    }

    /// True when the peer may still get a CONNACK saying why (bad protocol level or name).
    pub fn answers_with_connack(&self) -> bool {
        matches!(
            self,
            CodecError::UnsupportedProtocolVersion { .. } | CodecError::BadProtocolName { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_filters_are_shortened_in_messages() {
        let filter = format!("{}#/x", "a/".repeat(100));
        let err = check_filter(&filter).unwrap_err().to_string();
        assert!(err.len() < 160, "{err}");
    }

    #[test]
    fn queue_filters_are_refused_like_a_decision_refuses_them() {
        let err = check_filter("$queue/a").unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::InvalidTopicFilter {
                    why: TopicError::UnsupportedShare,
                    ..
                }
            ),
            "{err}"
        );
    }
}
