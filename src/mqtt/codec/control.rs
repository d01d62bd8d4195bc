//! DISCONNECT and AUTH (PINGREQ and PINGRESP have no body and live in the packet enum).
//!
//! A 3.1.1 DISCONNECT has no body. A 5.0 DISCONNECT or AUTH with remaining length 0
//! means reason 0x00; with 1 byte, a reason and no properties. AUTH does not exist in
//! 3.1.1 (the codec refuses it from the fixed header). This module never acts on them.

use super::error::CodecError;
use super::properties::{Properties, PropertyContext};
use super::reason::ReasonCode;
use super::wire::Reader;
use super::{DecodeContext, ProtocolVersion};
use bytes::{BufMut, BytesMut};

/// DISCONNECT, from either side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disconnect {
    /// Why the connection ends.
    pub reason: ReasonCode,
    /// The 5.0 properties.
    pub properties: Properties,
}

/// AUTH (5.0 enhanced authentication).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// The authentication step.
    pub reason: ReasonCode,
    /// The 5.0 properties.
    pub properties: Properties,
}

impl Disconnect {
    /// A DISCONNECT with this reason and no properties.
    pub fn new(reason: ReasonCode) -> Disconnect {
        Disconnect {
            reason,
            properties: Properties::default(),
        }
    }
}

const DISCONNECT_REASONS: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];

fn reason_and_properties(
    mut r: Reader,
    ctx: &DecodeContext,
    at: PropertyContext,
    allowed: &[u8],
) -> Result<(ReasonCode, Properties), CodecError> {
    if ctx.version == ProtocolVersion::V311 || r.is_empty() {
        r.finish()?;
        return Ok((ReasonCode::SUCCESS, Properties::default()));
    }
    let code = r.u8("reason code")?;
    if !allowed.contains(&code) {
        return Err(CodecError::InvalidReasonCode {
            packet: r.packet(),
            code,
        });
    }
    let properties = if r.is_empty() {
        Properties::default()
    } else {
        Properties::decode(&mut r, at, ctx.max_user_properties)?
    };
    r.finish()?;
    Ok((ReasonCode(code), properties))
}

fn encode_reason(
    reason: ReasonCode,
    properties: &Properties,
    b: &mut BytesMut,
) -> Result<(), CodecError> {
    if reason == ReasonCode::SUCCESS && properties.is_empty() {
        return Ok(());
    }
    b.put_u8(reason.0);
    if !properties.is_empty() {
        properties.encode(b)?;
    }
    Ok(())
}

impl Disconnect {
    pub(super) fn decode(r: Reader, ctx: &DecodeContext) -> Result<Disconnect, CodecError> {
        let (reason, properties) =
            reason_and_properties(r, ctx, PropertyContext::Disconnect, DISCONNECT_REASONS)?;
        Ok(Disconnect { reason, properties })
    }

    pub(super) fn encode(
        &self,
        version: ProtocolVersion,
        b: &mut BytesMut,
    ) -> Result<(), CodecError> {
        match version {
            ProtocolVersion::V311 => Ok(()),
            ProtocolVersion::V5 => encode_reason(self.reason, &self.properties, b),
        }
    }
}

impl Auth {
    pub(super) fn decode(r: Reader, ctx: &DecodeContext) -> Result<Auth, CodecError> {
        let (reason, properties) =
            reason_and_properties(r, ctx, PropertyContext::Auth, &[0x00, 0x18, 0x19])?;
        Ok(Auth { reason, properties })
    }

    pub(super) fn encode(&self, b: &mut BytesMut) -> Result<(), CodecError> {
        encode_reason(self.reason, &self.properties, b)
    }
}
