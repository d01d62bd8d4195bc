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
    /// The remaining length uses more than 4 bytes.
    #[error("the remaining length uses more than 4 bytes")]
    RemainingLengthTooLong,
    /// The remaining length is not minimally encoded.
    #[error("the remaining length is not encoded in the minimum number of bytes")]
    RemainingLengthNotMinimal,
    /// A variable byte integer is too long or not minimally encoded.
    #[error("{field} is a variable byte integer longer than 4 bytes or not minimally encoded")]
    BadVariableInteger {
        /// The field.
        field: &'static str,
    },
    /// The packet type is reserved (0).
    #[error("packet type {0} is reserved")]
    ReservedPacketType(u8),
    /// The fixed header's flags are invalid for the packet type.
    #[error("{packet} has invalid fixed-header flags {flags:#06b}")]
    InvalidFlags {
        /// The packet.
        packet: PacketType,
        /// The flags found.
        flags: u8,
    },
    /// The packet exceeds the maximum packet size.
    #[error("{packet} of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// The packet.
        packet: PacketType,
        /// Its size in bytes.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// The packet ends inside a field.
    #[error("{packet} ended inside {field}")]
    Truncated {
        /// The packet.
        packet: PacketType,
        /// The field.
        field: &'static str,
    },
    /// Bytes follow the packet's last field.
    #[error("{packet} has {extra} unexpected bytes after its last field")]
    TrailingBytes {
        /// The packet.
        packet: PacketType,
        /// How many bytes follow.
        extra: usize,
    },
    /// A string is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// A string holds a character MQTT forbids (U+0000, controls, non-characters).
    #[error("{field} contains the forbidden character U+{code:04X} at byte {offset}")]
    ForbiddenCharacter {
        /// The field.
        field: &'static str,
        /// The character's code point.
        code: u32,
        /// Its byte offset in the string.
        offset: usize,
    },
    /// A string is longer than 65,535 bytes.
    #[error("{field} is longer than 65,535 bytes")]
    StringTooLong {
        /// The field.
        field: &'static str,
    },
    /// The topic name is invalid.
    #[error("the topic name {why}")]
    InvalidTopicName {
        /// Why.
        why: TopicError,
    },
    /// A topic filter is invalid.
    #[error("the topic filter `{filter}` {why}")]
    InvalidTopicFilter {
        /// The topic filter.
        filter: String,
        /// Why.
        why: TopicError,
    },
    /// A QoS field is 3.
    #[error("{field} has QoS 3, which does not exist")]
    InvalidQos {
        /// The field.
        field: &'static str,
    },
    /// Reserved bits are set.
    #[error("{field} has reserved bits set")]
    ReservedBits {
        /// The field.
        field: &'static str,
    },
    /// A packet identifier is 0.
    #[error("{packet} has packet identifier 0")]
    ZeroPacketIdentifier {
        /// The packet.
        packet: PacketType,
    },
    /// A property id is unknown.
    #[error("{packet} carries unknown property id {id:#04x}")]
    UnknownProperty {
        /// The packet.
        packet: PacketType,
        /// The property id.
        id: u32,
    },
    /// A property that may occur once occurs twice.
    #[error("{packet} carries property {name} more than once")]
    DuplicateProperty {
        /// The packet.
        packet: PacketType,
        /// The property.
        name: &'static str,
    },
    /// A property is not allowed in the packet.
    #[error("property {name} is not allowed in {packet}")]
    PropertyNotAllowed {
        /// The packet.
        packet: PacketType,
        /// The property.
        name: &'static str,
    },
    /// A property has a value outside its range.
    #[error("property {name} in {packet} has the invalid value {value}")]
    InvalidPropertyValue {
        /// The packet.
        packet: PacketType,
        /// The property.
        name: &'static str,
        /// The value.
        value: u32,
    },
    /// More user properties than the limit.
    #[error("{packet} carries more than {max} user properties")]
    TooManyUserProperties {
        /// The packet.
        packet: PacketType,
        /// The limit.
        max: usize,
    },
    /// The protocol level is neither 4 (3.1.1) nor 5 (5.0).
    #[error("protocol level {level} is not supported (only 4 = MQTT 3.1.1 and 5 = MQTT 5.0)")]
    UnsupportedProtocolVersion {
        /// The protocol level found.
        level: u8,
    },
    /// The protocol name is not `MQTT`.
    #[error("the protocol name `{name}` is not `MQTT`")]
    BadProtocolName {
        /// The name found.
        name: String,
    },
    /// The first packet is not CONNECT.
    #[error("the first packet must be CONNECT, got {packet}")]
    FirstPacketNotConnect {
        /// The packet.
        packet: PacketType,
    },
    /// A second CONNECT.
    #[error("a second CONNECT on the same connection is a protocol error")]
    SecondConnect,
    /// A packet sent in the direction it never travels.
    #[error("{packet} is only sent by the {sender}, never to it")]
    WrongDirection {
        /// The packet.
        packet: PacketType,
        /// Who alone sends it (`client` or `server`).
        sender: &'static str,
    },
    /// SUBSCRIBE or UNSUBSCRIBE with no topic filter.
    #[error("{packet} lists no topic filters")]
    NoTopicFilters {
        /// The packet.
        packet: PacketType,
    },
    /// Retain Handling is 3 (reserved).
    #[error("subscription options set Retain Handling to 3, which is reserved")]
    RetainHandlingThree,
    /// A shared subscription sets No Local.
    #[error("a shared subscription (`$share/`) may not set No Local")]
    NoLocalOnSharedSubscription,
    /// A 3.1.1 CONNECT has a password without a user name.
    #[error("CONNECT sets the password flag without the user name flag (MQTT 3.1.1)")]
    PasswordWithoutUsername,
    /// CONNECT sets will QoS or retain without the will flag.
    #[error("CONNECT sets will QoS or will retain without the will flag")]
    WillFlagsWithoutWill,
    /// A reason code the packet may not carry.
    #[error("{packet} carries reason code {code:#04x}, which it may not")]
    InvalidReasonCode {
        /// The packet.
        packet: PacketType,
        /// The reason code.
        code: u8,
    },
    /// A client's PUBLISH carries a subscription identifier.
    #[error("PUBLISH sent by a client may not carry a subscription identifier")]
    SubscriptionIdentifierFromClient,
    /// The packet does not exist in MQTT 3.1.1.
    #[error("{packet} does not exist in MQTT 3.1.1")]
    NotInVersion {
        /// The packet.
        packet: PacketType,
    },
    /// Reading or writing the stream failed.
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
