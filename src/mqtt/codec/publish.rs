//! PUBLISH and its acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP).
//!
//! The PUBLISH fixed-header flags carry DUP, QoS and RETAIN: QoS 3 is malformed
//! (MQTT-3.3.1-4) and DUP with QoS 0 is malformed (MQTT-3.3.1-2). A packet identifier is
//! present only for QoS 1 and 2 and is never 0 (MQTT-2.2.1-3). A client's PUBLISH may not
//! carry a Subscription Identifier (MQTT-3.3.4-6). The topic may be empty only when a 5.0
//! Topic Alias stands for it; resolving the alias is the connection's job, not this one's.

use super::error::CodecError;
use super::error::check_name;
use super::packet::PacketType;
use super::properties::{Properties, PropertyContext};
use super::reason::ReasonCode;
use super::wire::{Reader, put_string};
use super::{DecodeContext, ProtocolVersion, QoS, Role};
use bytes::{BufMut, Bytes, BytesMut};

/// A PUBLISH packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The DUP flag: a redelivery.
    pub dup: bool,
    /// The QoS.
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// The topic name.
    pub topic: String,
    /// 0 for QoS 0; never 0 otherwise.
    pub packet_id: u16,
    /// The payload.
    pub payload: Bytes,
    /// The 5.0 properties.
    pub properties: Properties,
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP: a packet id, a reason (5.0), properties (5.0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The packet identifier acknowledged.
    pub packet_id: u16,
    /// The reason code (5.0; success in 3.1.1).
    pub reason: ReasonCode,
    /// The 5.0 properties.
    pub properties: Properties,
}

impl Ack {
    /// A successful acknowledgement of `packet_id`.
    pub fn new(packet_id: u16) -> Ack {
        Ack::with_reason(packet_id, ReasonCode::SUCCESS)
    }

    pub(crate) fn with_reason(packet_id: u16, reason: ReasonCode) -> Ack {
        Ack {
            packet_id,
            reason,
            properties: Properties::default(),
        }
    }
}

pub(super) fn read_packet_id(r: &mut Reader) -> Result<u16, CodecError> {
    match r.u16("packet identifier")? {
        0 => Err(CodecError::ZeroPacketIdentifier { packet: r.packet() }),
        id => Ok(id),
    }
}

impl Publish {
    pub(super) fn decode(
        mut r: Reader,
        flags: u8,
        ctx: &DecodeContext,
    ) -> Result<Publish, CodecError> {
        let qos = QoS::from_bits((flags >> 1) & 0x03, "PUBLISH QoS")?;
        let dup = flags & 0x08 != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(CodecError::InvalidFlags {
                packet: PacketType::Publish,
                flags,
            });
        }
        let topic = r.string("topic name")?;
        let packet_id = match qos {
            QoS::AtMostOnce => 0,
            _ => read_packet_id(&mut r)?,
        };
        let properties = match ctx.version {
            ProtocolVersion::V5 => {
                Properties::decode(&mut r, PropertyContext::Publish, ctx.max_user_properties)?
            }
            ProtocolVersion::V311 => Properties::default(),
        };
        check_name(&topic, properties.topic_alias.is_some())?;
        if ctx.role == Role::Server && !properties.subscription_identifiers.is_empty() {
            return Err(CodecError::SubscriptionIdentifierFromClient);
        }
        Ok(Publish {
            dup,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            packet_id,
            payload: r.rest(),
            properties,
        })
    }

    pub(super) fn first_byte(&self) -> u8 {
        0x30 | (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain)
    }

    pub(super) fn encode(
        &self,
        version: ProtocolVersion,
        b: &mut BytesMut,
    ) -> Result<(), CodecError> {
        put_string(b, &self.topic, "topic name")?;
        if self.qos != QoS::AtMostOnce {
            b.put_u16(self.packet_id);
        }
        if version == ProtocolVersion::V5 {
            self.properties.encode(b)?;
        }
        b.extend_from_slice(&self.payload);
        Ok(())
    }
}

fn reason_allowed(packet: PacketType, code: u8) -> bool {
    match packet {
        PacketType::PubAck | PacketType::PubRec => {
            matches!(
                code,
                0x00 | 0x10 | 0x80 | 0x83 | 0x87 | 0x90 | 0x91 | 0x97 | 0x99
            )
        }
        _ => matches!(code, 0x00 | 0x92),
    }
}

impl Ack {
    pub(super) fn decode(mut r: Reader, ctx: &DecodeContext) -> Result<Ack, CodecError> {
        let packet_id = read_packet_id(&mut r)?;
        let mut ack = Ack::new(packet_id);
        if ctx.version == ProtocolVersion::V5 && !r.is_empty() {
            let code = r.u8("reason code")?;
            if !reason_allowed(r.packet(), code) {
                return Err(CodecError::InvalidReasonCode {
                    packet: r.packet(),
                    code,
                });
            }
            ack.reason = ReasonCode(code);
            if !r.is_empty() {
                ack.properties =
                    Properties::decode(&mut r, PropertyContext::Ack, ctx.max_user_properties)?;
            }
        }
        r.finish()?;
        Ok(ack)
    }

    pub(super) fn encode(
        &self,
        version: ProtocolVersion,
        b: &mut BytesMut,
    ) -> Result<(), CodecError> {
        b.put_u16(self.packet_id);
        let plain = self.reason == ReasonCode::SUCCESS && self.properties.is_empty();
        if version == ProtocolVersion::V5 && !plain {
            b.put_u8(self.reason.0);
            if !self.properties.is_empty() {
                self.properties.encode(b)?;
            }
        }
        Ok(())
    }
}
