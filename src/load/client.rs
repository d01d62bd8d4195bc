//! The load tool's MQTT connections: our own codec over TCP, CONNECT/CONNACK and
//! SUBSCRIBE/SUBACK, every step bounded in time.
//!
//! This module must never talk to anything but the given broker address, and never wait
//! without a bound.

use super::LoadError;
use super::wait::{STEP, within};
use crate::mqtt::codec::{
    CodecLimits, ConnAck, Connect, Disconnect, MqttCodec, Packet, Properties, ProtocolVersion, QoS,
    ReasonCode, Subscribe, SubscribeFilter, SubscriptionOptions,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// One MQTT connection over plain TCP.
pub type Conn = Framed<TcpStream, MqttCodec>;

/// One MQTT connection over TLS (idle mode's `--tls-ca`).
pub type TlsConn = Framed<tokio_rustls::client::TlsStream<TcpStream>, MqttCodec>;

/// Who connects, and how.
#[derive(Clone, Debug)]
pub struct Login {
    /// The broker's address.
    pub broker: SocketAddr,
    /// The MQTT version to speak.
    pub version: ProtocolVersion,
    /// The user name, if any.
    pub username: Option<String>,
    /// The password, if any.
    pub password: Option<String>,
}

fn broker_error(what: &str, detail: impl ToString) -> LoadError {
    LoadError::Broker {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

/// The next packet, within `limit`.
pub async fn next_packet<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Framed<S, MqttCodec>,
    what: &str,
    limit: Duration,
) -> Result<Packet, LoadError> {
    match within(what, limit, conn.next()).await? {
        Some(Ok(packet)) => Ok(packet),
        Some(Err(error)) => Err(broker_error(what, error)),
        None => Err(broker_error(what, "the broker closed the connection")),
    }
}

/// Sends one packet now.
pub async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Framed<S, MqttCodec>,
    what: &str,
    packet: Packet,
) -> Result<(), LoadError> {
    within(what, STEP, conn.send(packet))
        .await?
        .map_err(|e| broker_error(what, e))
}

/// Opens a connection and completes CONNECT/CONNACK (clean start).
pub async fn open(login: &Login, client_id: &str) -> Result<Conn, LoadError> {
    Ok(open_with_ack(login, client_id).await?.0)
}

/// Opens a connection whose session outlives it (clean start 0, 5.0 session expiry of an
/// hour).
pub async fn open_persistent(login: &Login, client_id: &str) -> Result<Conn, LoadError> {
    Ok(open_session(login, client_id, false).await?.0)
}

/// Opens a connection; returns it with the broker's CONNACK (5.0: its limits).
pub async fn open_with_ack(login: &Login, client_id: &str) -> Result<(Conn, ConnAck), LoadError> {
    open_session(login, client_id, true).await
}

async fn open_session(
    login: &Login,
    client_id: &str,
    clean_start: bool,
) -> Result<(Conn, ConnAck), LoadError> {
    let what = format!("connect {client_id}");
    let stream = tcp(login, &what).await?;
    mqtt_connect(stream, login, client_id, clean_start, &what).await
}

/// Opens a TLS connection (verifying the broker with `tls`) and completes CONNECT/CONNACK
/// (clean start).
pub async fn open_tls(
    login: &Login,
    tls: &super::tls::TlsLogin,
    client_id: &str,
) -> Result<TlsConn, LoadError> {
    let what = format!("connect {client_id}");
    let stream = tls.handshake(tcp(login, &what).await?, &what).await?;
    Ok(mqtt_connect(stream, login, client_id, true, &what).await?.0)
}

async fn tcp(login: &Login, what: &str) -> Result<TcpStream, LoadError> {
    let stream = within(what, STEP, TcpStream::connect(login.broker))
        .await?
        .map_err(|e| broker_error(what, e))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// CONNECT/CONNACK on an open stream.
async fn mqtt_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    login: &Login,
    client_id: &str,
    clean_start: bool,
    what: &str,
) -> Result<(Framed<S, MqttCodec>, ConnAck), LoadError> {
    let codec = MqttCodec::client(login.version, CodecLimits::default());
    let mut conn = Framed::new(stream, codec);
    let connect = Connect {
        version: login.version,
        clean_start,
        keep_alive: 600,
        client_id: client_id.into(),
        will: None,
        username: login.username.clone(),
        password: login.password.clone().map(|p| Bytes::from(p.into_bytes())),
        properties: Properties {
            session_expiry_interval: (!clean_start && login.version == ProtocolVersion::V5)
                .then_some(3600),
            ..Properties::default()
        },
    };
    send(&mut conn, what, Packet::Connect(Box::new(connect))).await?;
    match next_packet(&mut conn, what, STEP).await? {
        Packet::ConnAck(ack) if ack.code == 0 => Ok((conn, ack)),
        Packet::ConnAck(ack) => Err(broker_error(
            what,
            format!("refused with CONNACK code {:#04x}", ack.code),
        )),
        other => Err(broker_error(
            what,
            format!("expected CONNACK, got {}", other.packet_type()),
        )),
    }
}

/// Subscribes to one filter and requires it granted.
pub async fn subscribe(conn: &mut Conn, filter: &str, qos: QoS) -> Result<(), LoadError> {
    let subscribe = Subscribe {
        packet_id: 1,
        filters: vec![SubscribeFilter {
            filter: filter.into(),
            options: SubscriptionOptions::qos(qos),
        }],
        properties: Properties::default(),
    };
    let what = format!("subscribe {filter}");
    send(conn, &what, Packet::Subscribe(subscribe)).await?;
    match next_packet(conn, &what, STEP).await? {
        Packet::SubAck(ack) if ack.reasons.iter().all(|r| !r.is_failure()) => Ok(()),
        other => Err(broker_error(&what, format!("refused: {other:?}"))),
    }
}

/// Sends DISCONNECT (best effort, bounded).
pub async fn disconnect(conn: &mut Conn) {
    let packet = Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS));
    let _ = send(conn, "disconnect", packet).await;
}
