//! MQTT 5.0 properties: the typed set, and where each one may appear.
//!
//! [`Properties::decode`] accepts only known property ids, only in the packets the spec
//! lists for them, at most once unless the spec allows repeats (User Property, and
//! Subscription Identifier in PUBLISH), and only with valid values (booleans 0/1,
//! non-zero Receive Maximum, …). User properties are capped per packet so a peer cannot
//! make us store 65,535 pairs. This module must never accept a property it cannot name.

use super::error::CodecError;
use super::header::{put_variable, variable_len};
use super::wire::{Reader, put_binary, put_string, put_variable_u32};
use bytes::{BufMut, Bytes, BytesMut};

/// Where a property block sits; decides which ids are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyContext {
    /// CONNECT.
    Connect = 0,
    /// The will in CONNECT.
    Will = 1,
    /// CONNACK.
    ConnAck = 2,
    /// PUBLISH.
    Publish = 3,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    Ack = 4,
    /// SUBSCRIBE.
    Subscribe = 5,
    /// SUBACK.
    SubAck = 6,
    /// UNSUBSCRIBE.
    Unsubscribe = 7,
    /// UNSUBACK.
    UnsubAck = 8,
    /// DISCONNECT.
    Disconnect = 9,
    /// AUTH.
    Auth = 10,
}

const fn contexts(list: &[PropertyContext]) -> u16 {
    let mut mask = 0;
    let mut i = 0;
    while i < list.len() {
        mask |= 1 << list[i] as u16;
        i += 1;
    }
    mask
}

use PropertyContext as C;
const MESSAGE: u16 = contexts(&[C::Publish, C::Will]);
const REASON: u16 = contexts(&[
    C::ConnAck,
    C::Ack,
    C::SubAck,
    C::UnsubAck,
    C::Disconnect,
    C::Auth,
]);
const EVERYWHERE: u16 = 0x07FF;

/// (id, name, contexts where allowed)
const SPECS: &[(u8, &str, u16)] = &[
    (0x01, "Payload Format Indicator", MESSAGE),
    (0x02, "Message Expiry Interval", MESSAGE),
    (0x03, "Content Type", MESSAGE),
    (0x08, "Response Topic", MESSAGE),
    (0x09, "Correlation Data", MESSAGE),
    (
        0x0B,
        "Subscription Identifier",
        contexts(&[C::Publish, C::Subscribe]),
    ),
    (
        0x11,
        "Session Expiry Interval",
        contexts(&[C::Connect, C::ConnAck, C::Disconnect]),
    ),
    (0x12, "Assigned Client Identifier", contexts(&[C::ConnAck])),
    (0x13, "Server Keep Alive", contexts(&[C::ConnAck])),
    (
        0x15,
        "Authentication Method",
        contexts(&[C::Connect, C::ConnAck, C::Auth]),
    ),
    (
        0x16,
        "Authentication Data",
        contexts(&[C::Connect, C::ConnAck, C::Auth]),
    ),
    (0x17, "Request Problem Information", contexts(&[C::Connect])),
    (0x18, "Will Delay Interval", contexts(&[C::Will])),
    (
        0x19,
        "Request Response Information",
        contexts(&[C::Connect]),
    ),
    (0x1A, "Response Information", contexts(&[C::ConnAck])),
    (
        0x1C,
        "Server Reference",
        contexts(&[C::ConnAck, C::Disconnect]),
    ),
    (0x1F, "Reason String", REASON),
    (0x21, "Receive Maximum", contexts(&[C::Connect, C::ConnAck])),
    (
        0x22,
        "Topic Alias Maximum",
        contexts(&[C::Connect, C::ConnAck]),
    ),
    (0x23, "Topic Alias", contexts(&[C::Publish])),
    (0x24, "Maximum QoS", contexts(&[C::ConnAck])),
    (0x25, "Retain Available", contexts(&[C::ConnAck])),
    (0x26, "User Property", EVERYWHERE),
    (
        0x27,
        "Maximum Packet Size",
        contexts(&[C::Connect, C::ConnAck]),
    ),
    (
        0x28,
        "Wildcard Subscription Available",
        contexts(&[C::ConnAck]),
    ),
    (
        0x29,
        "Subscription Identifier Available",
        contexts(&[C::ConnAck]),
    ),
    (
        0x2A,
        "Shared Subscription Available",
        contexts(&[C::ConnAck]),
    ),
];

/// The largest Subscription Identifier (a variable byte integer).
pub const MAX_SUBSCRIPTION_IDENTIFIER: u32 = 268_435_455;

/// Every 5.0 property; absent ones are `None` or empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    /// Payload Format Indicator (0x01): 1 when the payload is UTF-8.
    pub payload_format_indicator: Option<u8>,
    /// Message Expiry Interval (0x02), seconds.
    pub message_expiry_interval: Option<u32>,
    /// Content Type (0x03).
    pub content_type: Option<String>,
    /// Response Topic (0x08).
    pub response_topic: Option<String>,
    /// Correlation Data (0x09).
    pub correlation_data: Option<Bytes>,
    /// Subscription Identifiers (0x0B).
    pub subscription_identifiers: Vec<u32>,
    /// Session Expiry Interval (0x11), seconds.
    pub session_expiry_interval: Option<u32>,
    /// Assigned Client Identifier (0x12).
    pub assigned_client_identifier: Option<String>,
    /// Server Keep Alive (0x13), seconds.
    pub server_keep_alive: Option<u16>,
    /// Authentication Method (0x15).
    pub authentication_method: Option<String>,
    /// Authentication Data (0x16).
    pub authentication_data: Option<Bytes>,
    /// Request Problem Information (0x17).
    pub request_problem_information: Option<u8>,
    /// Will Delay Interval (0x18), seconds.
    pub will_delay_interval: Option<u32>,
    /// Request Response Information (0x19).
    pub request_response_information: Option<u8>,
    /// Response Information (0x1A).
    pub response_information: Option<String>,
    /// Server Reference (0x1C).
    pub server_reference: Option<String>,
    /// Reason String (0x1F).
    pub reason_string: Option<String>,
    /// Receive Maximum (0x21).
    pub receive_maximum: Option<u16>,
    /// Topic Alias Maximum (0x22).
    pub topic_alias_maximum: Option<u16>,
    /// Topic Alias (0x23).
    pub topic_alias: Option<u16>,
    /// Maximum QoS (0x24).
    pub maximum_qos: Option<u8>,
    /// Retain Available (0x25).
    pub retain_available: Option<u8>,
    /// User Properties (0x26), in order.
    pub user_properties: Vec<(String, String)>,
    /// Maximum Packet Size (0x27).
    pub maximum_packet_size: Option<u32>,
    /// Wildcard Subscription Available (0x28).
    pub wildcard_subscription_available: Option<u8>,
    /// Subscription Identifier Available (0x29).
    pub subscription_identifier_available: Option<u8>,
    /// Shared Subscription Available (0x2A).
    pub shared_subscription_available: Option<u8>,
}

fn name_of(id: u8) -> &'static str {
    SPECS
        .iter()
        .find(|s| s.0 == id)
        .map(|s| s.1)
        .unwrap_or("unknown")
}

fn set_once<T>(slot: &mut Option<T>, value: T, id: u8, r: &Reader) -> Result<(), CodecError> {
    if slot.is_some() {
        return Err(CodecError::DuplicateProperty {
            packet: r.packet(),
            name: name_of(id),
        });
    }
    *slot = Some(value);
    Ok(())
}

/// Values limited to a set (booleans, QoS 0/1) or required to be non-zero.
fn check_value(id: u8, value: u32, r: &Reader) -> Result<(), CodecError> {
    let valid = match id {
        0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => value <= 1,
        0x0B => (1..=MAX_SUBSCRIPTION_IDENTIFIER).contains(&value),
        0x21 | 0x23 | 0x27 => value != 0,
        _ => true,
    };
    if valid {
        Ok(())
    } else {
        Err(CodecError::InvalidPropertyValue {
            packet: r.packet(),
            name: name_of(id),
            value,
        })
    }
}

impl Properties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }

    /// Reads a property block (length prefix included).
    pub fn decode(
        r: &mut Reader,
        context: PropertyContext,
        max_user_properties: usize,
    ) -> Result<Properties, CodecError> {
        let len = r.variable("property length")? as usize;
        let mut block = r.sub(len, "properties")?;
        let mut props = Properties::default();
        while !block.is_empty() {
            let raw_id = block.variable("property identifier")?;
            let packet = block.packet();
            let spec = SPECS.iter().find(|s| u32::from(s.0) == raw_id);
            let Some(&(id, name, allowed)) = spec else {
                return Err(CodecError::UnknownProperty { packet, id: raw_id });
            };
            if allowed & (1 << context as u16) == 0 {
                return Err(CodecError::PropertyNotAllowed { packet, name });
            }
            props.read_one(id, &mut block, context)?;
            if props.user_properties.len() > max_user_properties {
                return Err(CodecError::TooManyUserProperties {
                    packet,
                    max: max_user_properties,
                });
            }
        }
        Ok(props)
    }

    fn read_one(
        &mut self,
        id: u8,
        r: &mut Reader,
        context: PropertyContext,
    ) -> Result<(), CodecError> {
        let name = name_of(id);
        match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
                let value = r.u8(name)?;
                check_value(id, u32::from(value), r)?;
                let slot = self.byte_slot(id);
                set_once(slot, value, id, r)
            }
            0x02 | 0x11 | 0x18 | 0x27 => {
                let value = r.u32(name)?;
                check_value(id, value, r)?;
                let slot = self.u32_slot(id);
                set_once(slot, value, id, r)
            }
            0x13 | 0x21 | 0x22 | 0x23 => {
                let value = r.u16(name)?;
                check_value(id, u32::from(value), r)?;
                let slot = self.u16_slot(id);
                set_once(slot, value, id, r)
            }
            0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => {
                let value = r.string(name)?;
                let slot = self.string_slot(id);
                set_once(slot, value, id, r)
            }
            0x09 | 0x16 => {
                let value = r.binary(name)?;
                let slot = if id == 0x09 {
                    &mut self.correlation_data
                } else {
                    &mut self.authentication_data
                };
                set_once(slot, value, id, r)
            }
            0x0B => {
                let value = r.variable(name)?;
                check_value(id, value, r)?;
                let repeats = context == PropertyContext::Publish;
                if !repeats && !self.subscription_identifiers.is_empty() {
                    return Err(CodecError::DuplicateProperty {
                        packet: r.packet(),
                        name,
                    });
                }
                self.subscription_identifiers.push(value);
                Ok(())
            }
            _ => {
                let key = r.string("user property name")?;
                let value = r.string("user property value")?;
                self.user_properties.push((key, value));
                Ok(())
            }
        }
    }

    fn byte_slot(&mut self, id: u8) -> &mut Option<u8> {
        match id {
            0x01 => &mut self.payload_format_indicator,
            0x17 => &mut self.request_problem_information,
            0x19 => &mut self.request_response_information,
            0x24 => &mut self.maximum_qos,
            0x25 => &mut self.retain_available,
            0x28 => &mut self.wildcard_subscription_available,
            0x29 => &mut self.subscription_identifier_available,
            _ => &mut self.shared_subscription_available,
        }
    }

    fn u32_slot(&mut self, id: u8) -> &mut Option<u32> {
        match id {
            0x02 => &mut self.message_expiry_interval,
            0x11 => &mut self.session_expiry_interval,
            0x18 => &mut self.will_delay_interval,
            _ => &mut self.maximum_packet_size,
        }
    }

    fn u16_slot(&mut self, id: u8) -> &mut Option<u16> {
        match id {
            0x13 => &mut self.server_keep_alive,
            0x21 => &mut self.receive_maximum,
            0x22 => &mut self.topic_alias_maximum,
            _ => &mut self.topic_alias,
        }
    }

    fn string_slot(&mut self, id: u8) -> &mut Option<String> {
        match id {
            0x03 => &mut self.content_type,
            0x08 => &mut self.response_topic,
            0x12 => &mut self.assigned_client_identifier,
            0x15 => &mut self.authentication_method,
            0x1A => &mut self.response_information,
            0x1C => &mut self.server_reference,
            _ => &mut self.reason_string,
        }
    }

    /// Writes the property block with its length prefix.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), CodecError> {
        let mut block = BytesMut::new();
        self.encode_body(&mut block)?;
        put_variable(dst, block.len());
        dst.extend_from_slice(&block);
        Ok(())
    }

    /// Size of the block including its length prefix (used to size packets).
    pub fn encoded_len(&self) -> Result<usize, CodecError> {
        let mut block = BytesMut::new();
        self.encode_body(&mut block)?;
        Ok(variable_len(block.len()) + block.len())
    }

    fn encode_body(&self, b: &mut BytesMut) -> Result<(), CodecError> {
        let bytes = [
            (0x01, self.payload_format_indicator),
            (0x17, self.request_problem_information),
            (0x19, self.request_response_information),
            (0x24, self.maximum_qos),
            (0x25, self.retain_available),
            (0x28, self.wildcard_subscription_available),
            (0x29, self.subscription_identifier_available),
            (0x2A, self.shared_subscription_available),
        ];
        for (id, value) in bytes {
            if let Some(v) = value {
                b.put_u8(id);
                b.put_u8(v);
            }
        }
        let words = [
            (0x02, self.message_expiry_interval),
            (0x11, self.session_expiry_interval),
            (0x18, self.will_delay_interval),
            (0x27, self.maximum_packet_size),
        ];
        for (id, value) in words {
            if let Some(v) = value {
                b.put_u8(id);
                b.put_u32(v);
            }
        }
        let shorts = [
            (0x13, self.server_keep_alive),
            (0x21, self.receive_maximum),
            (0x22, self.topic_alias_maximum),
            (0x23, self.topic_alias),
        ];
        for (id, value) in shorts {
            if let Some(v) = value {
                b.put_u8(id);
                b.put_u16(v);
            }
        }
        self.encode_variable_parts(b)
    }

    fn encode_variable_parts(&self, b: &mut BytesMut) -> Result<(), CodecError> {
        let strings = [
            (0x03, &self.content_type),
            (0x08, &self.response_topic),
            (0x12, &self.assigned_client_identifier),
            (0x15, &self.authentication_method),
            (0x1A, &self.response_information),
            (0x1C, &self.server_reference),
            (0x1F, &self.reason_string),
        ];
        for (id, value) in strings {
            if let Some(v) = value {
                b.put_u8(id);
                put_string(b, v, name_of(id))?;
            }
        }
        for (id, value) in [
            (0x09, &self.correlation_data),
            (0x16, &self.authentication_data),
        ] {
            if let Some(v) = value {
                b.put_u8(id);
                put_binary(b, v, name_of(id))?;
            }
        }
        for id in &self.subscription_identifiers {
            b.put_u8(0x0B);
            put_variable_u32(b, *id);
        }
        for (key, value) in &self.user_properties {
            b.put_u8(0x26);
            put_string(b, key, "user property name")?;
            put_string(b, value, "user property value")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::codec::PacketType;

    fn decode(bytes: &[u8], context: PropertyContext) -> Result<Properties, CodecError> {
        let mut r = Reader::new(Bytes::copy_from_slice(bytes), PacketType::Publish);
        Properties::decode(&mut r, context, 4)
    }

    #[test]
    fn round_trip_of_every_publish_property() {
        let props = Properties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(60),
            content_type: Some("text/plain".into()),
            response_topic: Some("r/1".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            subscription_identifiers: vec![1, 268_435_455],
            topic_alias: Some(3),
            user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
            ..Properties::default()
        };
        let mut buf = BytesMut::new();
        props.encode(&mut buf).unwrap();
        assert_eq!(buf.len(), props.encoded_len().unwrap());
        assert_eq!(decode(&buf, PropertyContext::Publish).unwrap(), props);
    }

    #[test]
    fn unknown_duplicate_misplaced_and_invalid_are_refused() {
        assert!(matches!(
            decode(&[2, 0x7F, 0], PropertyContext::Publish),
            Err(CodecError::UnknownProperty { id: 0x7F, .. })
        ));
        assert!(matches!(
            decode(&[4, 0x01, 0, 0x01, 1], PropertyContext::Publish),
            Err(CodecError::DuplicateProperty { .. })
        ));
        assert!(matches!(
            decode(&[3, 0x21, 0, 5], PropertyContext::Publish),
            Err(CodecError::PropertyNotAllowed { .. })
        ));
        assert!(matches!(
            decode(&[3, 0x21, 0, 0], PropertyContext::Connect),
            Err(CodecError::InvalidPropertyValue { value: 0, .. })
        ));
        assert!(matches!(
            decode(&[2, 0x01, 2], PropertyContext::Publish),
            Err(CodecError::InvalidPropertyValue { value: 2, .. })
        ));
        assert!(matches!(
            decode(&[4, 0x0B, 1, 0x0B, 2], PropertyContext::Subscribe),
            Err(CodecError::DuplicateProperty { .. })
        ));
    }

    #[test]
    fn user_properties_are_capped() {
        let mut bytes = vec![5 * 5];
        for _ in 0..5 {
            bytes.extend_from_slice(&[0x26, 0, 0, 0, 0]);
        }
        assert!(matches!(
            decode(&bytes, PropertyContext::Publish),
            Err(CodecError::TooManyUserProperties { max: 4, .. })
        ));
    }

    #[test]
    fn block_longer_than_packet_is_truncated() {
        assert!(matches!(
            decode(&[9, 0x01, 0], PropertyContext::Publish),
            Err(CodecError::Truncated { .. })
        ));
    }
}
