//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.
//!
//! Every filter is syntax-checked ([`crate::mqtt::topic::check_filter_syntax`]); a SUBSCRIBE or
//! UNSUBSCRIBE with no filter is a protocol error (MQTT-3.8.3-3, MQTT-3.10.3-2).
//! Subscription options: QoS 3 is malformed; in 3.1.1 the upper six bits are reserved
//! (MQTT-3.8.3-4), in 5.0 the upper two (MQTT-3-8.3-5), Retain Handling 3 is a protocol
//! error, and No Local on a `$share/` filter is a protocol error (MQTT-3.8.3-4 in 5.0).
//! Whether a filter is *allowed* is not decided here.

use super::error::CodecError;
use super::error::check_filter;
use super::properties::{Properties, PropertyContext};
use super::publish::read_packet_id;
use super::reason::ReasonCode;
use super::wire::{Reader, put_string};
use super::{DecodeContext, ProtocolVersion, QoS};
use crate::mqtt::topic::is_shared;
use bytes::{BufMut, BytesMut};

/// When retained messages are sent for a new subscription (5.0; 3.1.1 always sends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetainHandling {
    /// Send retained messages at subscribe time.
    OnSubscribe = 0,
    /// Send them only if the subscription did not exist.
    OnNewSubscription = 1,
    /// Never send them.
    Never = 2,
}

/// The options byte of one subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// The maximum QoS granted.
    pub qos: QoS,
    /// No Local (5.0): never deliver the subscriber's own messages.
    pub no_local: bool,
    /// Retain As Published (5.0): keep the retain flag on delivery.
    pub retain_as_published: bool,
    /// Retain Handling (5.0): when retained messages are sent.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with this QoS and every 5.0 option at its default.
    pub fn qos(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::OnSubscribe,
        }
    }

    fn decode(byte: u8, version: ProtocolVersion) -> Result<SubscriptionOptions, CodecError> {
        let reserved = match version {
            ProtocolVersion::V311 => 0xFC,
            ProtocolVersion::V5 => 0xC0,
        };
        if byte & reserved != 0 {
            return Err(CodecError::ReservedBits {
                field: "subscription options",
            });
        }
        let retain_handling = match (byte >> 4) & 0x03 {
            0 => RetainHandling::OnSubscribe,
            1 => RetainHandling::OnNewSubscription,
            2 => RetainHandling::Never,
            _ => return Err(CodecError::RetainHandlingThree),
        };
        Ok(SubscriptionOptions {
            qos: QoS::from_bits(byte & 0x03, "subscription QoS")?,
            no_local: byte & 0x04 != 0,
            retain_as_published: byte & 0x08 != 0,
            retain_handling,
        })
    }

    fn encode(&self, version: ProtocolVersion) -> u8 {
        let mut byte = self.qos as u8;
        if version == ProtocolVersion::V5 {
            byte |= u8::from(self.no_local) << 2;
            byte |= u8::from(self.retain_as_published) << 3;
            byte |= (self.retain_handling as u8) << 4;
        }
        byte
    }
}

/// One filter of a SUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// The topic filter.
    pub filter: String,
    /// Its options.
    pub options: SubscriptionOptions,
}

/// A SUBSCRIBE packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// The packet identifier.
    pub packet_id: u16,
    /// The filters, in order.
    pub filters: Vec<SubscribeFilter>,
    /// The 5.0 properties.
    pub properties: Properties,
}

/// SUBACK: one reason code per filter (3.1.1: 0, 1, 2 or 0x80).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    /// The packet identifier of the SUBSCRIBE.
    pub packet_id: u16,
    /// One reason code per filter, in order.
    pub reasons: Vec<ReasonCode>,
    /// The 5.0 properties.
    pub properties: Properties,
}

/// An UNSUBSCRIBE packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The packet identifier.
    pub packet_id: u16,
    /// The filters, in order.
    pub filters: Vec<String>,
    /// The 5.0 properties.
    pub properties: Properties,
}

/// UNSUBACK: 5.0 carries one reason code per filter; 3.1.1 none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    /// The packet identifier of the UNSUBSCRIBE.
    pub packet_id: u16,
    /// One reason code per filter (5.0; none in 3.1.1).
    pub reasons: Vec<ReasonCode>,
    /// The 5.0 properties.
    pub properties: Properties,
}

/// The head SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK share: the packet identifier, then
/// (5.0) the properties.
fn decode_head(
    r: &mut Reader,
    ctx: &DecodeContext,
    at: PropertyContext,
) -> Result<(u16, Properties), CodecError> {
    let packet_id = read_packet_id(r)?;
    Ok((packet_id, properties(r, ctx, at)?))
}

/// The entries up to the end of the packet, one `entry` at a time; none is a protocol
/// error (a SUBSCRIBE, SUBACK or UNSUBSCRIBE lists at least one).
fn decode_entries<T>(
    r: &mut Reader,
    mut entry: impl FnMut(&mut Reader) -> Result<T, CodecError>,
) -> Result<Vec<T>, CodecError> {
    let mut entries = Vec::new();
    while !r.is_empty() {
        entries.push(entry(r)?);
    }
    if entries.is_empty() {
        return Err(CodecError::NoTopicFilters { packet: r.packet() });
    }
    Ok(entries)
}

/// Writes the shared head: the packet identifier, then (5.0) the properties.
fn encode_head(
    packet_id: u16,
    properties: &Properties,
    version: ProtocolVersion,
    b: &mut BytesMut,
) -> Result<(), CodecError> {
    b.put_u16(packet_id);
    if version == ProtocolVersion::V5 {
        properties.encode(b)?;
    }
    Ok(())
}

/// A reason code of a SUBACK or UNSUBACK, refused unless `allowed`.
fn decode_reason(
    r: &mut Reader,
    field: &'static str,
    allowed: impl Fn(u8) -> bool,
) -> Result<ReasonCode, CodecError> {
    let code = r.u8(field)?;
    if !allowed(code) {
        return Err(CodecError::InvalidReasonCode {
            packet: r.packet(),
            code,
        });
    }
    Ok(ReasonCode(code))
}

/// One topic filter, syntax-checked.
fn decode_filter(r: &mut Reader) -> Result<String, CodecError> {
    let filter = r.string("topic filter")?;
    check_filter(&filter)?;
    Ok(filter)
}

fn properties(
    r: &mut Reader,
    ctx: &DecodeContext,
    at: PropertyContext,
) -> Result<Properties, CodecError> {
    match ctx.version {
        ProtocolVersion::V5 => Properties::decode(r, at, ctx.max_user_properties),
        ProtocolVersion::V311 => Ok(Properties::default()),
    }
}

impl Subscribe {
    pub(super) fn decode(mut r: Reader, ctx: &DecodeContext) -> Result<Subscribe, CodecError> {
        let (packet_id, properties) = decode_head(&mut r, ctx, PropertyContext::Subscribe)?;
        let filters = decode_entries(&mut r, |r| {
            let filter = decode_filter(r)?;
            let options = SubscriptionOptions::decode(r.u8("subscription options")?, ctx.version)?;
            if options.no_local && is_shared(&filter) {
                return Err(CodecError::NoLocalOnSharedSubscription);
            }
            Ok(SubscribeFilter { filter, options })
        })?;
        Ok(Subscribe {
            packet_id,
            filters,
            properties,
        })
    }

    pub(super) fn encode(
        &self,
        version: ProtocolVersion,
        b: &mut BytesMut,
    ) -> Result<(), CodecError> {
        encode_head(self.packet_id, &self.properties, version, b)?;
        for f in &self.filters {
            put_string(b, &f.filter, "topic filter")?;
            b.put_u8(f.options.encode(version));
        }
        Ok(())
    }
}

fn suback_code_allowed(version: ProtocolVersion, code: u8) -> bool {
    match version {
        ProtocolVersion::V311 => matches!(code, 0x00 | 0x01 | 0x02 | 0x80),
        ProtocolVersion::V5 => matches!(
            code,
            0x00 | 0x01 | 0x02 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91 | 0x97 | 0x9E | 0xA1 | 0xA2
        ),
    }
}

impl SubAck {
    pub(super) fn decode(mut r: Reader, ctx: &DecodeContext) -> Result<SubAck, CodecError> {
        let (packet_id, properties) = decode_head(&mut r, ctx, PropertyContext::SubAck)?;
        let reasons = decode_entries(&mut r, |r| {
            decode_reason(r, "SUBACK reason code", |code| {
                suback_code_allowed(ctx.version, code)
            })
        })?;
        Ok(SubAck {
            packet_id,
            reasons,
            properties,
        })
    }

    pub(super) fn encode(
        &self,
        version: ProtocolVersion,
        b: &mut BytesMut,
    ) -> Result<(), CodecError> {
        encode_head(self.packet_id, &self.properties, version, b)?;
        for reason in &self.reasons {
            b.put_u8(reason.0);
        }
        Ok(())
    }
}

impl Unsubscribe {
    pub(super) fn decode(mut r: Reader, ctx: &DecodeContext) -> Result<Unsubscribe, CodecError> {
        let (packet_id, properties) = decode_head(&mut r, ctx, PropertyContext::Unsubscribe)?;
        let filters = decode_entries(&mut r, decode_filter)?;
        Ok(Unsubscribe {
            packet_id,
            filters,
            properties,
        })
    }

    pub(super) fn encode(
        &self,
        version: ProtocolVersion,
        b: &mut BytesMut,
    ) -> Result<(), CodecError> {
        encode_head(self.packet_id, &self.properties, version, b)?;
        for filter in &self.filters {
            put_string(b, filter, "topic filter")?;
        }
        Ok(())
    }
}

impl UnsubAck {
    pub(super) fn decode(mut r: Reader, ctx: &DecodeContext) -> Result<UnsubAck, CodecError> {
        let (packet_id, properties) = decode_head(&mut r, ctx, PropertyContext::UnsubAck)?;
        let mut reasons = Vec::new();
        if ctx.version == ProtocolVersion::V5 {
            while !r.is_empty() {
                reasons.push(decode_reason(&mut r, "UNSUBACK reason code", |code| {
                    matches!(code, 0x00 | 0x11 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91)
                })?);
            }
        }
        r.finish()?;
        Ok(UnsubAck {
            packet_id,
            reasons,
            properties,
        })
    }

    pub(super) fn encode(
        &self,
        version: ProtocolVersion,
        b: &mut BytesMut,
    ) -> Result<(), CodecError> {
        encode_head(self.packet_id, &self.properties, version, b)?;
        if version == ProtocolVersion::V5 {
            for reason in &self.reasons {
                b.put_u8(reason.0);
            }
        }
        Ok(())
    }
}
