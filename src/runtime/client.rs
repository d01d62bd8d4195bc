//! A small async MQTT 5.0 client on our own codec (client role), for the gateway, service
//! and mobile runtimes.
//!
//! [`Client::start`] spawns one task that owns the connection: it connects, resubscribes
//! when the broker kept no session, answers QoS 1/2 deliveries, sends keep-alive pings, and
//! on any failure reconnects with [`Backoff`], reporting every [`ConnectionState`] as an
//! [`Event`]. Commands (publish, subscribe, disconnect) go to the task over a channel and
//! are sent once connected; only an explicit disconnect sends DISCONNECT (when every
//! handle is dropped, as by a kill, the connection just ends and the broker publishes the
//! will). It connects over TCP or TLS ([`TlsClient`]: the broker verified
//! against a CA, optionally a client certificate); a JWT goes in `password`. This module must never panic on what
//! the broker sends, nor wait without a bound for a CONNACK.

use super::backoff::Backoff;
use super::tls::TlsClient;
use crate::mqtt::codec::{
    Ack, CodecLimits, Connect, Disconnect, MqttCodec, Packet, Properties, ProtocolVersion, Publish,
    QoS, ReasonCode, Subscribe, SubscribeFilter, SubscriptionOptions, Will,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

/// How long connecting (TCP + CONNECT/CONNACK) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection states a mobile MQTT SDK reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting for the first time.
    Connecting,
    /// Connected.
    Connected,
    /// Reconnecting after a lost connection.
    Reconnecting,
    /// The connection was lost.
    ConnectionLost,
    /// Connecting failed, with why.
    ConnectionError(String),
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionState::Connecting => f.write_str("Connecting"),
            ConnectionState::Connected => f.write_str("Connected"),
            ConnectionState::Reconnecting => f.write_str("Reconnecting"),
            ConnectionState::ConnectionLost => f.write_str("ConnectionLost"),
            ConnectionState::ConnectionError(e) => write!(f, "ConnectionError: {e}"),
        }
    }
}

/// What the client reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The connection state changed.
    State(ConnectionState),
    /// A message delivered by the broker.
    Message {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Bytes,
        /// Its retain flag.
        retain: bool,
    },
    /// The SUBACK reason for one filter (0..=2 granted QoS, 0x80+ refused).
    Subscribed {
        /// The filter.
        filter: String,
        /// The reason code granted or refused.
        reason: ReasonCode,
    },
    /// The final acknowledgement of a QoS 1/2 publish (0x87: not authorized).
    Published {
        /// The topic.
        topic: String,
        /// The reason code.
        reason: ReasonCode,
    },
    /// `max_attempts` consecutive attempts failed; the task has ended.
    GaveUp,
}

/// How to connect.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `host:port`.
    pub broker: String,
    pub(crate) client_id: String,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Bytes>,
    /// The will message, if any.
    pub will: Option<Will>,
    pub(crate) keep_alive: u16,
    pub(crate) clean_start: bool,
    /// Session expiry in seconds (0: the session ends with the connection).
    pub session_expiry: u32,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// TLS to the broker; `None` is plain TCP.
    pub tls: Option<TlsClient>,
}

impl ClientOptions {
    /// Options for `client_id` at `broker` (`host:port`), without credentials.
    pub fn new(broker: impl Into<String>, client_id: impl Into<String>) -> ClientOptions {
        ClientOptions {
            broker: broker.into(),
            client_id: client_id.into(),
            username: None,
            password: None,
            will: None,
            keep_alive: 30,
            clean_start: true,
            session_expiry: 0,
            backoff: Backoff::default(),
            tls: None,
        }
    }
}

#[derive(Debug)]
enum Command {
    Publish(Box<Publish>),
    Subscribe(String, QoS),
    Disconnect,
}

/// A cloneable way to give a running client commands.
#[derive(Clone, Debug)]
pub struct Handle {
    commands: mpsc::UnboundedSender<Command>,
}

impl Handle {
    /// Publishes once connected (QoS 1/2 report [`Event::Published`]).
    pub fn publish(&self, topic: &str, payload: impl Into<Bytes>, qos: QoS, retain: bool) {
        let publish = Publish {
            dup: false,
            qos,
            retain,
            topic: topic.to_string(),
            packet_id: 0,
            payload: payload.into(),
            properties: Properties::default(),
        };
        let _ = self.commands.send(Command::Publish(Box::new(publish)));
    }

    /// Subscribes once connected, and again after every reconnect without a session.
    pub fn subscribe(&self, filter: &str, qos: QoS) {
        let _ = self
            .commands
            .send(Command::Subscribe(filter.to_string(), qos));
    }
}

/// A running client.
pub struct Client {
    handle: Handle,
    task: JoinHandle<()>,
}

impl Client {
    /// Starts the connection task; events arrive on the returned receiver.
    pub fn start(options: ClientOptions) -> (Client, mpsc::UnboundedReceiver<Event>) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (events, event_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(options, command_rx, events));
        let handle = Handle { commands };
        (Client { handle, task }, event_rx)
    }

    /// A handle for publishing and subscribing from elsewhere.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    pub(crate) fn publish(&self, topic: &str, payload: impl Into<Bytes>, qos: QoS, retain: bool) {
        self.handle.publish(topic, payload, qos, retain);
    }

    /// Subscribes to `filter` (and again after each reconnect).
    pub fn subscribe(&self, filter: &str, qos: QoS) {
        self.handle.subscribe(filter, qos);
    }

    /// Sends DISCONNECT (no last will) and waits up to two seconds for the task to end.
    pub async fn disconnect(self) {
        let _ = self.handle.commands.send(Command::Disconnect);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }

    /// Drops the connection without DISCONNECT, as a crash or a network loss would: the
    /// broker publishes the last will. (Dropping the `Client` and every [`Handle`] does
    /// the same; only [`Client::disconnect`] says goodbye.)
    pub fn kill(self) {
        self.task.abort();
    }
}

type Events = mpsc::UnboundedSender<Event>;
/// A byte stream to the broker: TCP or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Link = Framed<Box<dyn Io>, MqttCodec>;

/// TCP, then the TLS handshake if configured.
async fn dial(options: &ClientOptions) -> Result<Box<dyn Io>, String> {
    let stream = TcpStream::connect(&options.broker)
        .await
        .map_err(|e| format!("cannot reach {}: {e}", options.broker))?;
    let _ = stream.set_nodelay(true);
    let Some(tls) = &options.tls else {
        return Ok(Box::new(stream));
    };
    let name = TlsClient::server_name(&options.broker).map_err(|e| e.to_string())?;
    let stream = tls
        .connector
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS handshake with {}: {e}", options.broker))?;
    Ok(Box::new(stream))
}

fn emit(events: &Events, state: ConnectionState) {
    let _ = events.send(Event::State(state));
}

async fn run(
    options: ClientOptions,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: Events,
) {
    let mut subscriptions: Vec<(String, QoS)> = Vec::new();
    let mut failures = 0u32;
    let mut first_attempt = true;
    loop {
        let state = if first_attempt {
            ConnectionState::Connecting
        } else {
            ConnectionState::Reconnecting
        };
        first_attempt = false;
        emit(&events, state);
        match open(&options).await {
            Ok((link, session_present)) => {
                failures = 0;
                emit(&events, ConnectionState::Connected);
                let mut session = Session::new(link, &events, options.keep_alive);
                let resubscribe = if session_present {
                    Vec::new()
                } else {
                    subscriptions.clone()
                };
                let end = session
                    .run(resubscribe, &mut commands, &mut subscriptions)
                    .await;
                if end == End::Stopped {
                    return;
                }
                emit(&events, ConnectionState::ConnectionLost);
            }
            Err(error) => {
                failures += 1;
                emit(&events, ConnectionState::ConnectionError(error));
                if !options.backoff.may_retry(failures) {
                    let _ = events.send(Event::GaveUp);
                    return;
                }
            }
        }
        if commands.is_closed() {
            return; // nobody can use the client any more: do not reconnect for no one
        }
        tokio::time::sleep(options.backoff.delay(failures.max(1))).await;
    }
}

/// TCP connect, CONNECT, CONNACK; returns the link and whether a session was present.
async fn open(options: &ClientOptions) -> Result<(Link, bool), String> {
    let attempt = async {
        let stream = dial(options).await?;
        let mut link = Framed::new(
            stream,
            MqttCodec::client(ProtocolVersion::V5, CodecLimits::default()),
        );
        let mut properties = Properties::default();
        if options.session_expiry > 0 {
            properties.session_expiry_interval = Some(options.session_expiry);
        }
        let connect = Connect {
            version: ProtocolVersion::V5,
            clean_start: options.clean_start,
            keep_alive: options.keep_alive,
            client_id: options.client_id.clone(),
            will: options.will.clone(),
            username: options.username.clone(),
            password: options.password.clone(),
            properties,
        };
        link.send(Packet::Connect(Box::new(connect)))
            .await
            .map_err(|e| format!("sending CONNECT: {e}"))?;
        match link.next().await {
            Some(Ok(Packet::ConnAck(ack))) if ack.code == 0 => Ok((link, ack.session_present)),
            Some(Ok(Packet::ConnAck(ack))) => Err(format!(
                "the broker refused CONNECT with reason 0x{:02x}",
                ack.code
            )),
            Some(Ok(other)) => Err(format!("expected CONNACK, got {:?}", other.packet_type())),
            Some(Err(e)) => Err(format!("undecodable CONNACK: {e}")),
            None => Err("the broker closed the connection during CONNECT".into()),
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no CONNACK from {} within {CONNECT_TIMEOUT:?}",
                options.broker
            ))
        })
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    Stopped,
    Lost,
}

/// One live connection.
struct Session<'e> {
    link: Link,
    events: &'e Events,
    next_id: u16,
    /// Packet id → topic of our QoS 1/2 publishes, or filter of our subscribes.
    pending: HashMap<u16, String>,
    keep_alive: Duration,
}

impl<'e> Session<'e> {
    fn new(link: Link, events: &'e Events, keep_alive: u16) -> Session<'e> {
        Session {
            link,
            events,
            next_id: 0,
            pending: HashMap::new(),
            keep_alive: Duration::from_secs(u64::from(keep_alive.max(2)) / 2),
        }
    }

    fn packet_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    async fn run(
        &mut self,
        resubscribe: Vec<(String, QoS)>,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        subscriptions: &mut Vec<(String, QoS)>,
    ) -> End {
        for (filter, qos) in resubscribe {
            if self.send_subscribe(filter, qos).await.is_err() {
                return End::Lost;
            }
        }
        let mut ping = tokio::time::interval(self.keep_alive);
        ping.tick().await;
        loop {
            let step = tokio::select! {
                packet = self.link.next() => match packet {
                    Some(Ok(packet)) => self.on_packet(packet).await,
                    _ => Err(()),
                },
                command = commands.recv() => match command {
                    Some(Command::Disconnect) => {
                        let _ = self.link.send(Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS))).await;
                        return End::Stopped;
                    }
                    // Every handle is gone: the client was killed (its task may still be
                    // running on another worker until the abort lands) or dropped. Say no
                    // goodbye: a DISCONNECT here would make the broker discard the will.
                    None => return End::Stopped,
                    Some(command) => self.on_command(command, subscriptions).await,
                },
                _ = ping.tick() => self.link.send(Packet::PingReq).await.map_err(|_| ()),
            };
            if step.is_err() {
                return End::Lost;
            }
        }
    }

    async fn on_command(
        &mut self,
        command: Command,
        subscriptions: &mut Vec<(String, QoS)>,
    ) -> Result<(), ()> {
        match command {
            Command::Publish(mut publish) => {
                if publish.qos != QoS::AtMostOnce {
                    publish.packet_id = self.packet_id();
                    self.pending
                        .insert(publish.packet_id, publish.topic.clone());
                }
                self.link
                    .send(Packet::Publish(*publish))
                    .await
                    .map_err(|_| ())
            }
            Command::Subscribe(filter, qos) => {
                subscriptions.retain(|(f, _)| *f != filter);
                subscriptions.push((filter.clone(), qos));
                self.send_subscribe(filter, qos).await
            }
            Command::Disconnect => Ok(()),
        }
    }

    async fn send_subscribe(&mut self, filter: String, qos: QoS) -> Result<(), ()> {
        let packet_id = self.packet_id();
        self.pending.insert(packet_id, filter.clone());
        let subscribe = Subscribe {
            packet_id,
            filters: vec![SubscribeFilter {
                filter,
                options: SubscriptionOptions::qos(qos),
            }],
            properties: Properties::default(),
        };
        self.link
            .send(Packet::Subscribe(subscribe))
            .await
            .map_err(|_| ())
    }

    fn finished(&mut self, packet_id: u16, reason: ReasonCode) {
        if let Some(topic) = self.pending.remove(&packet_id) {
            let _ = self.events.send(Event::Published { topic, reason });
        }
    }

    async fn on_packet(&mut self, packet: Packet) -> Result<(), ()> {
        let reply = match packet {
            Packet::Publish(publish) => self.on_publish(publish),
            Packet::PubAck(ack) | Packet::PubComp(ack) => {
                self.finished(ack.packet_id, ack.reason);
                None
            }
            Packet::PubRec(ack) if ack.reason.is_failure() => {
                self.finished(ack.packet_id, ack.reason);
                None
            }
            Packet::PubRec(ack) => Some(Packet::PubRel(Ack::new(ack.packet_id))),
            Packet::PubRel(ack) => Some(Packet::PubComp(Ack::new(ack.packet_id))),
            Packet::SubAck(ack) => {
                if let (Some(filter), Some(reason)) =
                    (self.pending.remove(&ack.packet_id), ack.reasons.first())
                {
                    let _ = self.events.send(Event::Subscribed {
                        filter,
                        reason: *reason,
                    });
                }
                None
            }
            Packet::Disconnect(_) => return Err(()),
            _ => None,
        };
        match reply {
            Some(packet) => self.link.send(packet).await.map_err(|_| ()),
            None => Ok(()),
        }
    }

    fn on_publish(&mut self, publish: Publish) -> Option<Packet> {
        let reply = match publish.qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(Packet::PubAck(Ack::new(publish.packet_id))),
            QoS::ExactlyOnce => Some(Packet::PubRec(Ack::new(publish.packet_id))),
        };
        let _ = self.events.send(Event::Message {
            topic: publish.topic,
            payload: publish.payload,
            retain: publish.retain,
        });
        reply
    }
}
