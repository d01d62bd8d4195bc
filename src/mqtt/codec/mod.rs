//! Our own MQTT 3.1.1 and 5.0 codec on `tokio_util::codec`, strict because it is the
//! security boundary.
//!
//! [`MqttCodec`] turns bytes into [`Packet`]s and back. Decoding is strict and total:
//! the fixed header is checked first ([`header`]: type, flags, a remaining length of at
//! most 4 minimally-encoded bytes), then the declared size against the maximum packet size
//! — *before* any body byte is buffered, and the declared length is never reserved up front
//! — then the body, field by field, with every string, topic, filter and property
//! validated. The codec also enforces packet order at the byte level: in the server role
//! the first packet must be CONNECT, a second CONNECT is refused, packets only a server
//! sends are refused, and AUTH does not exist in 3.1.1. Every failure is a typed
//! [`CodecError`] carrying the 5.0 reason code the connection closes with.
//!
//! This module must never decide authorization or touch broker state.

mod connect;
mod control;
mod error;
pub mod header;
mod packet;
mod properties;
mod publish;
mod reason;
mod subscribe;
mod wire;

pub use connect::{ConnAck, Connect, Will};
pub use control::{Auth, Disconnect};
pub use error::CodecError;
pub use packet::PacketType;
pub use properties::{MAX_SUBSCRIPTION_IDENTIFIER, Properties, PropertyContext};
pub use publish::{Ack, Publish};
pub use reason::ReasonCode;
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, SubscribeFilter, SubscriptionOptions, UnsubAck, Unsubscribe,
};

use bytes::{BufMut, Bytes, BytesMut};
use header::{FixedHeader, MAX_REMAINING_LENGTH, put_variable};
use tokio_util::codec::{Decoder, Encoder};
use wire::Reader;

/// The protocol level negotiated by CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte of CONNECT (4 or 5).
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }
}

/// Quality of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// QoS 0.
    AtMostOnce = 0,
    /// QoS 1.
    AtLeastOnce = 1,
    /// QoS 2.
    ExactlyOnce = 2,
}

impl QoS {
    pub(crate) fn from_bits(bits: u8, field: &'static str) -> Result<QoS, CodecError> {
        match bits {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            _ => Err(CodecError::InvalidQos { field }),
        }
    }
}

/// Which end of the connection this codec sits at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The broker: decodes what clients send.
    Server,
    /// A client (tests, tools): decodes what servers send.
    Client,
}

/// Every MQTT control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(Ack),
    /// PUBREC.
    PubRec(Ack),
    /// PUBREL.
    PubRel(Ack),
    /// PUBCOMP.
    PubComp(Ack),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (5.0).
    Auth(Auth),
}

impl Packet {
    pub(crate) fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// Encodes the whole packet (fixed header included) for `version`.
    /// A CONNECT always uses its own version.
    pub fn encode(&self, version: ProtocolVersion, dst: &mut BytesMut) -> Result<(), CodecError> {
        let mut body = BytesMut::new();
        let first = self.encode_body(version, &mut body)?;
        if body.len() > MAX_REMAINING_LENGTH {
            return Err(CodecError::PacketTooLarge {
                packet: self.packet_type(),
                size: body.len(),
                max: MAX_REMAINING_LENGTH,
            });
        }
        dst.reserve(5 + body.len());
        dst.put_u8(first);
        put_variable(dst, body.len());
        dst.extend_from_slice(&body);
        Ok(())
    }

    /// The encoded size in bytes (used to honour a peer's Maximum Packet Size).
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, CodecError> {
        let mut buf = BytesMut::new();
        self.encode(version, &mut buf)?;
        Ok(buf.len())
    }

    fn encode_body(&self, version: ProtocolVersion, b: &mut BytesMut) -> Result<u8, CodecError> {
        let kind = self.packet_type();
        let first = ((kind as u8) << 4) | kind.fixed_flags().unwrap_or(0);
        match self {
            Packet::Connect(c) => c.encode(b)?,
            Packet::ConnAck(c) => c.encode(version, b)?,
            Packet::Publish(p) => {
                p.encode(version, b)?;
                return Ok(p.first_byte());
            }
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                a.encode(version, b)?
            }
            Packet::Subscribe(s) => s.encode(version, b)?,
            Packet::SubAck(s) => s.encode(version, b)?,
            Packet::Unsubscribe(u) => u.encode(version, b)?,
            Packet::UnsubAck(u) => u.encode(version, b)?,
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(d) => d.encode(version, b)?,
            Packet::Auth(a) => a.encode(b)?,
        }
        Ok(first)
    }
}

/// Limits the decoder enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecLimits {
    /// Largest whole packet accepted, fixed header included.
    pub max_packet_size: usize,
    /// Most user properties in one property block.
    pub max_user_properties: usize,
}

impl Default for CodecLimits {
    fn default() -> CodecLimits {
        CodecLimits {
            max_packet_size: 128 * 1024 + 4096,
            max_user_properties: 32,
        }
    }
}

/// What body decoding needs to know.
pub(crate) struct DecodeContext {
    pub version: ProtocolVersion,
    pub role: Role,
    pub max_user_properties: usize,
}

/// The `tokio_util` codec for one connection.
#[derive(Clone, Debug)]
pub struct MqttCodec {
    role: Role,
    version: Option<ProtocolVersion>,
    limits: CodecLimits,
}

impl MqttCodec {
    /// A broker-side codec: the version is learned from CONNECT.
    pub fn server(limits: CodecLimits) -> MqttCodec {
        MqttCodec {
            role: Role::Server,
            version: None,
            limits,
        }
    }

    /// A client-side codec speaking `version`.
    pub fn client(version: ProtocolVersion, limits: CodecLimits) -> MqttCodec {
        MqttCodec {
            role: Role::Client,
            version: Some(version),
            limits,
        }
    }

    /// The negotiated version, once CONNECT was decoded.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// The limits the codec enforces.
    pub fn limits(&self) -> CodecLimits {
        self.limits
    }

    /// Refuses a packet from its fixed header alone: direction, order, version.
    fn admit(&self, packet: PacketType) -> Result<(), CodecError> {
        let (wrong, sender) = match self.role {
            Role::Server => (packet.is_server_to_client(), "server"),
            Role::Client => (packet.is_client_to_server(), "client"),
        };
        if wrong {
            return Err(CodecError::WrongDirection { packet, sender });
        }
        match (self.role, self.version, packet) {
            (Role::Server, None, PacketType::Connect) => Ok(()),
            (Role::Server, None, _) => Err(CodecError::FirstPacketNotConnect { packet }),
            (Role::Server, Some(_), PacketType::Connect) => Err(CodecError::SecondConnect),
            (_, Some(ProtocolVersion::V311), PacketType::Auth) => {
                Err(CodecError::NotInVersion { packet })
            }
            _ => Ok(()),
        }
    }

    fn decode_body(&self, header: FixedHeader, body: Bytes) -> Result<Packet, CodecError> {
        let r = Reader::new(body, header.packet);
        let ctx = DecodeContext {
            version: self.version.unwrap_or(ProtocolVersion::V311),
            role: self.role,
            max_user_properties: self.limits.max_user_properties,
        };
        Ok(match header.packet {
            PacketType::Connect => Packet::Connect(Box::new(Connect::decode(r, &ctx)?)),
            PacketType::ConnAck => Packet::ConnAck(ConnAck::decode(r, &ctx)?),
            PacketType::Publish => Packet::Publish(Publish::decode(r, header.flags, &ctx)?),
            PacketType::PubAck => Packet::PubAck(Ack::decode(r, &ctx)?),
            PacketType::PubRec => Packet::PubRec(Ack::decode(r, &ctx)?),
            PacketType::PubRel => Packet::PubRel(Ack::decode(r, &ctx)?),
            PacketType::PubComp => Packet::PubComp(Ack::decode(r, &ctx)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(r, &ctx)?),
            PacketType::SubAck => Packet::SubAck(SubAck::decode(r, &ctx)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(r, &ctx)?),
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(r, &ctx)?),
            PacketType::PingReq => {
                r.finish()?;
                Packet::PingReq
            }
            PacketType::PingResp => {
                r.finish()?;
                Packet::PingResp
            }
            PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(r, &ctx)?),
            PacketType::Auth => Packet::Auth(Auth::decode(r, &ctx)?),
        })
    }
}

impl Decoder for MqttCodec {
    type Item = Packet;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        let Some(header) = header::parse(src)? else {
            return Ok(None);
        };
        self.admit(header.packet)?;
        let size = header.total_len();
        if size > self.limits.max_packet_size {
            return Err(CodecError::PacketTooLarge {
                packet: header.packet,
                size,
                max: self.limits.max_packet_size,
            });
        }
        if src.len() < size {
            return Ok(None);
        }
        let frame = src.split_to(size).freeze();
        let packet = self.decode_body(header, frame.slice(header.header_len..))?;
        if let Packet::Connect(connect) = &packet {
            self.version = Some(connect.version);
        }
        Ok(Some(packet))
    }
}

impl Encoder<Packet> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
        let version = match &packet {
            Packet::Connect(connect) => connect.version,
            _ => self.version.unwrap_or(ProtocolVersion::V311),
        };
        packet.encode(version, dst)
    }
}
