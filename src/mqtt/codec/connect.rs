//! CONNECT (with its will) and CONNACK.
//!
//! CONNECT is where the protocol version is learned: protocol name `MQTT` with level 4
//! (3.1.1) or 5 (5.0); anything else is [`CodecError::UnsupportedProtocolVersion`] or
//! [`CodecError::BadProtocolName`], which the server answers with a CONNACK before closing.
//! Flag consistency is strict: the reserved bit must be 0 (MQTT-3.1.2-3), will QoS and
//! will retain need the will flag (MQTT-3.1.2-11/-13/-15), a 3.1.1 password needs a user
//! name (MQTT-3.1.2-22), and every field the flags announce must be present, with no
//! bytes left over. This module must never judge credentials: that is authentication.

use super::error::CodecError;
use super::error::check_name;
use super::properties::{Properties, PropertyContext};
use super::wire::{Reader, put_binary, put_string};
use super::{DecodeContext, ProtocolVersion, QoS};
use bytes::{BufMut, Bytes, BytesMut};

/// A CONNECT packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The protocol version.
    pub version: ProtocolVersion,
    /// 3.1.1 Clean Session / 5.0 Clean Start.
    pub clean_start: bool,
    /// Seconds; 0 disables keep-alive.
    pub keep_alive: u16,
    /// The client id (may be empty).
    pub client_id: String,
    /// The will message, if any.
    pub will: Option<Will>,
    /// The user name, if any.
    pub username: Option<String>,
    /// The password, if any.
    pub password: Option<Bytes>,
    /// The 5.0 properties.
    pub properties: Properties,
}

/// The last will carried in CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// The will's topic.
    pub topic: String,
    /// The will's payload.
    pub payload: Bytes,
    /// The will's QoS.
    pub qos: QoS,
    /// The will's retain flag.
    pub retain: bool,
    /// The will's 5.0 properties.
    pub properties: Properties,
}

/// A CONNACK packet. `code` is a 3.1.1 return code or a 5.0 reason code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    /// The server has a session for the client.
    pub session_present: bool,
    /// The return code (3.1.1) or reason code (5.0).
    pub code: u8,
    /// The 5.0 properties.
    pub properties: Properties,
}

const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

fn read_version(r: &mut Reader) -> Result<ProtocolVersion, CodecError> {
    let name = r.binary("protocol name")?;
    let level = r.u8("protocol level")?;
    match (&name[..], level) {
        (b"MQTT", 4) => Ok(ProtocolVersion::V311),
        (b"MQTT", 5) => Ok(ProtocolVersion::V5),
        (b"MQTT" | b"MQIsdp", _) => Err(CodecError::UnsupportedProtocolVersion { level }),
        _ => Err(CodecError::BadProtocolName {
            name: String::from_utf8_lossy(&name).chars().take(32).collect(),
        }),
    }
}

fn check_flags(flags: u8, version: ProtocolVersion) -> Result<(), CodecError> {
    if flags & RESERVED != 0 {
        return Err(CodecError::ReservedBits {
            field: "CONNECT flags",
        });
    }
    let will_qos = (flags >> 3) & 0x03;
    if flags & WILL == 0 && (will_qos != 0 || flags & WILL_RETAIN != 0) {
        return Err(CodecError::WillFlagsWithoutWill);
    }
    if will_qos == 3 {
        return Err(CodecError::InvalidQos { field: "will QoS" });
    }
    if version == ProtocolVersion::V311 && flags & PASSWORD != 0 && flags & USERNAME == 0 {
        return Err(CodecError::PasswordWithoutUsername);
    }
    Ok(())
}

impl Connect {
    pub(super) fn decode(mut r: Reader, ctx: &DecodeContext) -> Result<Connect, CodecError> {
        let version = read_version(&mut r)?;
        let flags = r.u8("CONNECT flags")?;
        check_flags(flags, version)?;
        let keep_alive = r.u16("keep alive")?;
        let properties = match version {
            ProtocolVersion::V5 => {
                Properties::decode(&mut r, PropertyContext::Connect, ctx.max_user_properties)?
            }
            ProtocolVersion::V311 => Properties::default(),
        };
        let client_id = r.string("client identifier")?;
        let will = if flags & WILL != 0 {
            Some(Will::decode(&mut r, flags, version, ctx)?)
        } else {
            None
        };
        let username = (flags & USERNAME != 0)
            .then(|| r.string("user name"))
            .transpose()?;
        let password = (flags & PASSWORD != 0)
            .then(|| r.binary("password"))
            .transpose()?;
        r.finish()?;
        Ok(Connect {
            version,
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    pub(super) fn encode(&self, b: &mut BytesMut) -> Result<(), CodecError> {
        put_string(b, "MQTT", "protocol name")?;
        b.put_u8(self.version.level());
        b.put_u8(self.flags());
        b.put_u16(self.keep_alive);
        if self.version == ProtocolVersion::V5 {
            self.properties.encode(b)?;
        }
        put_string(b, &self.client_id, "client identifier")?;
        if let Some(will) = &self.will {
            if self.version == ProtocolVersion::V5 {
                will.properties.encode(b)?;
            }
            put_string(b, &will.topic, "will topic")?;
            put_binary(b, &will.payload, "will payload")?;
        }
        if let Some(username) = &self.username {
            put_string(b, username, "user name")?;
        }
        if let Some(password) = &self.password {
            put_binary(b, password, "password")?;
        }
        Ok(())
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_start {
            flags |= CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= WILL | ((will.qos as u8) << 3);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        flags
    }
}

impl Will {
    fn decode(
        r: &mut Reader,
        flags: u8,
        version: ProtocolVersion,
        ctx: &DecodeContext,
    ) -> Result<Will, CodecError> {
        let properties = match version {
            ProtocolVersion::V5 => {
                Properties::decode(r, PropertyContext::Will, ctx.max_user_properties)?
            }
            ProtocolVersion::V311 => Properties::default(),
        };
        let topic = r.string("will topic")?;
        check_name(&topic, false)?;
        let payload = r.binary("will payload")?;
        Ok(Will {
            topic,
            payload,
            qos: QoS::from_bits((flags >> 3) & 0x03, "will QoS")?,
            retain: flags & WILL_RETAIN != 0,
            properties,
        })
    }
}

impl ConnAck {
    pub(super) fn decode(mut r: Reader, ctx: &DecodeContext) -> Result<ConnAck, CodecError> {
        let flags = r.u8("CONNACK flags")?;
        if flags & 0xFE != 0 {
            return Err(CodecError::ReservedBits {
                field: "CONNACK flags",
            });
        }
        let code = r.u8("CONNACK code")?;
        if ctx.version == ProtocolVersion::V311 && code > 5 {
            return Err(CodecError::InvalidReasonCode {
                packet: r.packet(),
                code,
            });
        }
        let properties = match ctx.version {
            ProtocolVersion::V5 => {
                Properties::decode(&mut r, PropertyContext::ConnAck, ctx.max_user_properties)?
            }
            ProtocolVersion::V311 => Properties::default(),
        };
        r.finish()?;
        Ok(ConnAck {
            session_present: flags & 1 != 0,
            code,
            properties,
        })
    }

    pub(super) fn encode(
        &self,
        version: ProtocolVersion,
        b: &mut BytesMut,
    ) -> Result<(), CodecError> {
        b.put_u8(u8::from(self.session_present));
        b.put_u8(self.code);
        if version == ProtocolVersion::V5 {
            self.properties.encode(b)?;
        }
        Ok(())
    }
}
