//! CONNECT to CONNACK: the first authorization point.
//!
//! In order: a complete CONNECT within the deadline (anything else closes the socket; a
//! bad protocol level or name gets CONNACK 0x01 first); a client id (assigned if empty,
//! except 3.1.1 with a persistent session: 0x02; one no client template can take — a
//! topic separator, a wildcard, a control character, a leading `$` — gets 0x85, 3.1.1: 0x02); no enhanced authentication (0x8C);
//! keep-alive within bounds; the authenticator's verified identity; the policy's
//! `connect` decision for that identity and client id; the will's topic, authorized as a
//! publish (and retain). Only then is the session attached — taking it over from an older
//! connection of the same principal — and CONNACK sent. A client id whose session (live or
//! persisted) belongs to another principal is refused with 0x87 Not authorized (3.1.1: 5),
//! and that session and its connection are left untouched. A refused client learns only
//! the reason code; the log says why. This module must never attach a session before every
//! check has passed.

use super::Connection;
use crate::broker::auth::{AuthError, Credentials, Transport};
use crate::broker::authorize::Authorizer;
use crate::broker::state::Broker;
use crate::decide::{Reason, Request};
use crate::mqtt::codec::{ConnAck, Connect, Packet, Properties, ProtocolVersion, ReasonCode};
use crate::value::validate_client_id;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite};

use super::wire::Wire;

type Io<S> = Wire<S>;

/// Reads and authorizes CONNECT; returns the established connection, or `None` after
/// refusing (and closing) it.
pub(super) async fn establish<S>(
    mut wire: Io<S>,
    peer: SocketAddr,
    transport: &Transport,
    broker: Arc<Broker>,
) -> Option<Box<Connection<S>>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let connect = read_connect(&mut wire, peer, &broker).await?;
    let version = connect.version;
    match Admission::check(&connect, peer, transport, &broker) {
        Err((reason, why)) => {
            tracing::info!(target: "topicguard::deny", peer = %peer, client = %connect.client_id, reason = %reason, "CONNECT refused: {why}");
            refuse(&mut wire, version, reason).await;
            None
        }
        Ok(admission) => admission.attach(wire, *connect, peer, broker).await,
    }
}

async fn read_connect<S>(
    wire: &mut Io<S>,
    peer: SocketAddr,
    broker: &Broker,
) -> Option<Box<Connect>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let deadline = broker.config.connect_timeout;
    match tokio::time::timeout(deadline, wire.next()).await {
        Err(_) => {
            tracing::info!(peer = %peer, "closing: no complete CONNECT within {deadline:?}");
            None
        }
        Ok(None) => None,
        Ok(Some(Ok(Packet::Connect(connect)))) => Some(connect),
        Ok(Some(Ok(other))) => {
            tracing::info!(peer = %peer, "closing: first packet was {}", other.packet_type());
            None
        }
        Ok(Some(Err(error))) => {
            tracing::info!(peer = %peer, reason = %error.reason_code(), "closing before CONNECT completed: {error}");
            if error.answers_with_connack() {
                let code = ReasonCode::UNSUPPORTED_PROTOCOL_VERSION.connack_v311();
                let _ = wire.send(connack(code, false, Properties::default())).await;
            }
            None
        }
    }
}

fn connack(code: u8, session_present: bool, properties: Properties) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present,
        code,
        properties,
    })
}

async fn refuse<S>(wire: &mut Io<S>, version: ProtocolVersion, reason: ReasonCode)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let code = match version {
        ProtocolVersion::V5 => reason.0,
        ProtocolVersion::V311 => reason.connack_v311(),
    };
    let send = wire.send(connack(code, false, Properties::default()));
    let _ = tokio::time::timeout(Duration::from_secs(2), send).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), wire.close()).await;
}

type Refusal = (ReasonCode, String);

/// Everything decided about a CONNECT before the session is attached.
struct Admission {
    connection: u64,
    client_id: Arc<str>,
    assigned: bool,
    authorizer: Authorizer,
    keep_alive: u16,
    server_keep_alive: Option<u16>,
    expiry: u32,
    expiry_clamped: bool,
}

impl Admission {
    fn check(
        connect: &Connect,
        peer: SocketAddr,
        transport: &Transport,
        broker: &Broker,
    ) -> Result<Admission, Refusal> {
        let connection = broker.next_connection_id();
        let (client_id, assigned) = client_id(connect, connection)?;
        if connect.properties.authentication_method.is_some() {
            return Err((
                ReasonCode::BAD_AUTHENTICATION_METHOD,
                "enhanced authentication is not supported".into(),
            ));
        }
        let (keep_alive, server_keep_alive) = keep_alive(connect, broker)?;
        let authorizer = authorize(connect, &client_id, peer, transport, broker)?;
        let (expiry, expiry_clamped) = session_expiry(connect, broker);
        Ok(Admission {
            connection,
            client_id: client_id.into(),
            assigned,
            authorizer,
            keep_alive,
            server_keep_alive,
            expiry,
            expiry_clamped,
        })
    }

    /// Attaches the session and sends CONNACK; refuses (and closes) when the client id's
    /// session belongs to another principal.
    async fn attach<S>(
        self,
        mut wire: Io<S>,
        connect: Connect,
        peer: SocketAddr,
        broker: Arc<Broker>,
    ) -> Option<Box<Connection<S>>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let attached = broker
            .attach(
                &self.client_id,
                self.authorizer.principal(),
                connect.clean_start,
                self.expiry,
                self.connection,
            )
            .await;
        let (slot, present) = match attached {
            Ok(attached) => attached,
            Err(refused) => {
                tracing::info!(
                    target: "topicguard::deny", peer = %peer, client = %self.client_id,
                    principal = %self.authorizer.principal(), reason = %ReasonCode::NOT_AUTHORIZED,
                    "CONNECT refused: {refused}"
                );
                refuse(&mut wire, connect.version, ReasonCode::NOT_AUTHORIZED).await;
                return None;
            }
        };
        let properties = self.connack_properties(&connect, &broker);
        let _ = wire.send(connack(0, present, properties)).await;
        tracing::debug!(client = %self.client_id, peer = %peer, session_present = present, "connected");
        let client_receive_max = connect.properties.receive_maximum.unwrap_or(u16::MAX);
        Some(Box::new(Connection {
            wire,
            peer,
            id: self.connection,
            version: connect.version,
            // The slot's copy: one per session, however often it is resumed.
            client_id: slot.client_id.clone(),
            slot,
            authorizer: self.authorizer,
            will: connect.will.map(Box::new),
            keep_alive: self.keep_alive,
            inflight_limit: broker.config.max_inflight.min(client_receive_max).max(1),
            peer_max_packet: connect.properties.maximum_packet_size,
            aliases: None,
            connect_expiry: self.expiry,
            flow: Default::default(),
            pending: Default::default(),
            broker,
        }))
    }

    fn connack_properties(&self, connect: &Connect, broker: &Broker) -> Properties {
        if connect.version != ProtocolVersion::V5 {
            return Properties::default();
        }
        let config = &broker.config;
        Properties {
            assigned_client_identifier: self.assigned.then(|| self.client_id.to_string()),
            server_keep_alive: self.server_keep_alive,
            session_expiry_interval: self.expiry_clamped.then_some(self.expiry),
            receive_maximum: Some(config.receive_maximum.max(1)),
            maximum_packet_size: u32::try_from(config.max_packet_size).ok(),
            topic_alias_maximum: Some(config.topic_alias_maximum),
            retain_available: Some(1),
            wildcard_subscription_available: Some(1),
            subscription_identifier_available: Some(1),
            shared_subscription_available: Some(1),
            ..Properties::default()
        }
    }
}

fn client_id(connect: &Connect, connection: u64) -> Result<(String, bool), Refusal> {
    if !connect.client_id.is_empty() {
        return match validate_client_id(&connect.client_id) {
            Ok(()) => Ok((connect.client_id.clone(), false)),
            Err(error) => Err((
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                format!("client id no template can take: {error}"),
            )),
        };
    }
    if connect.version == ProtocolVersion::V311 && !connect.clean_start {
        return Err((
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            "empty client id with a persistent session (MQTT-3.1.3-8)".into(),
        ));
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Ok((format!("auto-{connection:x}-{nanos:x}"), true))
}

/// The keep-alive to enforce, and the Server Keep Alive to announce (5.0).
fn keep_alive(connect: &Connect, broker: &Broker) -> Result<(u16, Option<u16>), Refusal> {
    let config = &broker.config;
    let asked = connect.keep_alive;
    let acceptable = asked <= config.max_keep_alive && (asked > 0 || config.allow_zero_keep_alive);
    if acceptable {
        return Ok((asked, None));
    }
    match connect.version {
        ProtocolVersion::V5 => Ok((config.max_keep_alive, Some(config.max_keep_alive))),
        ProtocolVersion::V311 => Err((
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            format!(
                "keep-alive {asked}s is outside 1..={}s and 3.1.1 cannot be told otherwise",
                config.max_keep_alive
            ),
        )),
    }
}

/// Authentication, then the `connect` decision, then the will.
fn authorize(
    connect: &Connect,
    client_id: &str,
    peer: SocketAddr,
    transport: &Transport,
    broker: &Broker,
) -> Result<Authorizer, Refusal> {
    let credentials = Credentials {
        client_id,
        username: connect.username.as_deref(),
        password: connect.password.as_deref(),
        peer,
        transport,
    };
    let identity = broker
        .authenticator
        .authenticate(&credentials, &broker.engines.load())
        .map_err(|error| match &error {
            AuthError::BadCredentials(_) => {
                (ReasonCode::BAD_USERNAME_OR_PASSWORD, error.to_string())
            }
            AuthError::NotAuthorized(_) => (ReasonCode::NOT_AUTHORIZED, error.to_string()),
        })?;
    let mut authorizer = Authorizer::bind(broker.engines.clone(), identity, client_id)
        .observed(broker.config.observer.clone());
    let decision = authorizer.decide(Request::Connect);
    if !decision.is_allowed() {
        let reason = match decision.reason {
            Reason::ClientIdMismatch => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            _ => ReasonCode::NOT_AUTHORIZED,
        };
        return Err((reason, format!("connect denied: {}", decision.reason)));
    }
    if let Some(will) = &connect.will {
        if broker.config.too_deep(&will.topic) {
            return Err((
                ReasonCode::TOPIC_NAME_INVALID,
                "the will topic has too many levels".into(),
            ));
        }
        let request = Request::Publish {
            topic: &will.topic,
            retain: will.retain,
        };
        if !authorizer.decide(request).is_allowed() {
            return Err((
                ReasonCode::NOT_AUTHORIZED,
                format!("will on `{}` denied", will.topic),
            ));
        }
    }
    Ok(authorizer)
}

/// The session expiry to apply, and whether it was lowered from what the client asked.
fn session_expiry(connect: &Connect, broker: &Broker) -> (u32, bool) {
    let max = broker.config.max_session_expiry;
    match connect.version {
        ProtocolVersion::V311 if connect.clean_start => (0, false),
        ProtocolVersion::V311 => (max, false),
        ProtocolVersion::V5 => {
            let asked = connect.properties.session_expiry_interval.unwrap_or(0);
            (asked.min(max), asked > max)
        }
    }
}
