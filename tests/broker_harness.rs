//! Shared harness for the broker tests: a broker on 127.0.0.1 port 0 with the xfinity
//! policy (plus an anonymous `dev` identity), a test authenticator that maps user names
//! such as `mobile:P1:A1:J1` to asserted identities, a small MQTT client built on our own
//! codec (for exact packet-level checks), raw sockets, and the mosquitto client binaries.
//! Everything here is bounded in time: no helper can wait forever.

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;
use topicguard::broker::{
    AnonymousAuthenticator, AuthError, Authenticator, BrokerConfig, Credentials, SharedEngine,
    serve,
};
use topicguard::mqtt::codec::{
    Ack, CodecLimits, ConnAck, Connect, MqttCodec, Packet, Properties, ProtocolVersion, Publish,
    QoS, ReasonCode, Subscribe, SubscribeFilter, SubscriptionOptions,
};
use topicguard::{Engine, Identity, Policy, Source};

/// How long any single expected event may take.
pub const STEP: Duration = Duration::from_secs(5);

/// Added to `policies/xfinity.policy` for the tests.
const EXTRA_RULES: &str = "
identity dev from anonymous {
    client \"dev-{+cid}\"
}
allow dev connect
@id(\"dev-topics\") allow dev publish, retain, subscribe, receive \"dev/#\"
identity watcher from anonymous {
    subscriptions filtered
    client \"watch-{+cid}\"
}
allow watcher connect
allow watcher subscribe \"c/iot/#\"
allow watcher receive \"c/iot/+/+/presence\"
deny watcher receive \"c/iot/P9_A9/#\"
";

pub fn test_policy() -> Policy {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/xfinity.policy");
    let base = std::fs::read_to_string(path).expect("read policies/xfinity.policy");
    let source = Source::new("xfinity+dev.policy", format!("{base}\n{EXTRA_RULES}"));
    Policy::from_source(&source).unwrap_or_else(|d| panic!("test policy does not check: {d}"))
}

/// `mobile:PID:AID:JTI`, `gateway:PID:AID:IID`, `service:SID`, `watcher` (a filtered
/// subscriber); no user name = the anonymous `dev` identity.
pub fn test_authenticator() -> Arc<dyn Authenticator> {
    Arc::new(
        |c: &Credentials<'_>, engine: &Engine| -> Result<Identity, AuthError> {
            let Some(user) = c.username else {
                return AnonymousAuthenticator.authenticate(c, engine);
            };
            let parts: Vec<&str> = user.split(':').collect();
            match parts.as_slice() {
                ["mobile", pid, aid, jti] => Ok(Identity::asserted(
                    "mobile",
                    [("pid", *pid), ("aid", *aid), ("jti", *jti)],
                )),
                ["gateway", pid, aid, iid] => Ok(Identity::asserted(
                    "gateway",
                    [
                        ("pid", *pid),
                        ("aid", *aid),
                        ("model", "XB7"),
                        ("serial", "S1"),
                        ("uid_aid", *aid),
                        ("iid", *iid),
                        ("mac", "0011223344556677"),
                    ],
                )),
                ["service", sid] => Ok(Identity::asserted("service", [("sid", *sid)])),
                ["watcher"] => Ok(Identity::asserted("watcher", [] as [(&str, &str); 0])),
                _ => Err(AuthError::BadCredentials(format!(
                    "unknown test user `{user}`"
                ))),
            }
        },
    )
}

/// Short deadlines so every test ends quickly.
pub fn test_config() -> BrokerConfig {
    BrokerConfig {
        connect_timeout: Duration::from_secs(2),
        takeover_timeout: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(2),
        write_timeout: Duration::from_secs(5),
        ..BrokerConfig::default()
    }
}

/// A broker running on 127.0.0.1 with an ephemeral port.
pub struct TestBroker {
    pub addr: SocketAddr,
    pub engine: SharedEngine,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        TestBroker::with_config(test_config()).await
    }

    pub async fn with_config(config: BrokerConfig) -> TestBroker {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let engine = Engine::new(&test_policy().checked).expect("compile the test policy");
        let engine: SharedEngine = Arc::new(ArcSwap::from_pointee(engine));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve(
            listener,
            engine.clone(),
            config,
            test_authenticator(),
            shutdown,
        ));
        TestBroker {
            addr,
            engine,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Signals shutdown and waits (bounded) for `serve` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("serve did not return after shutdown")
                .expect("serve panicked");
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

// ---- a client on our own codec --------------------------------------------------------

pub fn connect_packet(version: ProtocolVersion, client_id: &str, user: Option<&str>) -> Connect {
    Connect {
        version,
        clean_start: true,
        keep_alive: 30,
        client_id: client_id.into(),
        will: None,
        username: user.map(str::to_string),
        password: None,
        properties: Properties::default(),
    }
}

/// What [`TestClient::next_within`] saw.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a short-lived value, matched at once
pub enum Next {
    Packet(Packet),
    Quiet,
    Closed,
}

pub struct TestClient {
    framed: Framed<TcpStream, MqttCodec>,
    next_id: u16,
}

impl TestClient {
    /// Connects and returns the CONNACK, whatever its code.
    pub async fn open(addr: SocketAddr, connect: Connect) -> (TestClient, ConnAck) {
        let version = connect.version;
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the broker");
        let codec = MqttCodec::client(version, CodecLimits::default());
        let mut client = TestClient {
            framed: Framed::new(stream, codec),
            next_id: 0,
        };
        client.send(Packet::Connect(Box::new(connect))).await;
        match client.recv().await {
            Some(Packet::ConnAck(ack)) => (client, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects and requires success.
    pub async fn connect(
        addr: SocketAddr,
        version: ProtocolVersion,
        client_id: &str,
        user: Option<&str>,
    ) -> TestClient {
        let (client, ack) = TestClient::open(addr, connect_packet(version, client_id, user)).await;
        assert_eq!(ack.code, 0, "CONNACK for {client_id}: {ack:?}");
        client
    }

    pub async fn send(&mut self, packet: Packet) {
        tokio::time::timeout(STEP, self.framed.send(packet))
            .await
            .expect("send timed out")
            .expect("send failed");
    }

    /// The next packet; `None` when the broker closed the connection.
    pub async fn recv(&mut self) -> Option<Packet> {
        match tokio::time::timeout(STEP, self.framed.next()).await {
            Err(_) => panic!("no packet from the broker within {STEP:?}"),
            Ok(None) => None,
            Ok(Some(Ok(packet))) => Some(packet),
            Ok(Some(Err(e))) => panic!("client could not decode the broker's bytes: {e}"),
        }
    }

    /// Waits `quiet` and returns whatever arrived (`Err` if nothing did).
    pub async fn recv_within(&mut self, quiet: Duration) -> Option<Packet> {
        match tokio::time::timeout(quiet, self.framed.next()).await {
            Err(_) => None,
            Ok(None) => panic!("connection closed while waiting"),
            Ok(Some(result)) => Some(result.expect("decode")),
        }
    }

    /// Waits up to `quiet` for the next packet, telling a quiet connection from a closed
    /// one.
    pub async fn next_within(&mut self, quiet: Duration) -> Next {
        match tokio::time::timeout(quiet, self.framed.next()).await {
            Err(_) => Next::Quiet,
            Ok(None) | Ok(Some(Err(_))) => Next::Closed,
            Ok(Some(Ok(packet))) => Next::Packet(packet),
        }
    }

    /// Sends a PUBLISH without waiting for its acknowledgement; returns its packet id.
    pub async fn publish_no_wait(&mut self, topic: &str, payload: &[u8], qos: QoS) -> u16 {
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            self.next_packet_id()
        };
        let publish = Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            packet_id,
            payload: Bytes::copy_from_slice(payload),
            properties: Properties::default(),
        };
        self.send(Packet::Publish(publish)).await;
        packet_id
    }

    pub fn next_packet_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> ReasonCode {
        let id = self.next_packet_id();
        let subscribe = Subscribe {
            packet_id: id,
            filters: vec![SubscribeFilter {
                filter: filter.into(),
                options: SubscriptionOptions::qos(qos),
            }],
            properties: Properties::default(),
        };
        self.send(Packet::Subscribe(subscribe)).await;
        match self.recv().await {
            Some(Packet::SubAck(ack)) if ack.packet_id == id => ack.reasons[0],
            other => panic!("expected SUBACK {id}, got {other:?}"),
        }
    }

    /// Publishes and completes the QoS handshake; returns the PUBACK/PUBREC reason.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> ReasonCode {
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            self.next_packet_id()
        };
        let publish = Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into(),
            packet_id,
            payload: Bytes::copy_from_slice(payload),
            properties: Properties::default(),
        };
        self.send(Packet::Publish(publish)).await;
        match qos {
            QoS::AtMostOnce => ReasonCode::SUCCESS,
            QoS::AtLeastOnce => match self.recv().await {
                Some(Packet::PubAck(ack)) if ack.packet_id == packet_id => ack.reason,
                other => panic!("expected PUBACK, got {other:?}"),
            },
            QoS::ExactlyOnce => {
                let rec = match self.recv().await {
                    Some(Packet::PubRec(ack)) if ack.packet_id == packet_id => ack.reason,
                    other => panic!("expected PUBREC, got {other:?}"),
                };
                if !rec.is_failure() {
                    self.send(Packet::PubRel(Ack::new(packet_id))).await;
                    match self.recv().await {
                        Some(Packet::PubComp(ack)) if ack.packet_id == packet_id => {}
                        other => panic!("expected PUBCOMP, got {other:?}"),
                    }
                }
                rec
            }
        }
    }

    /// The next PUBLISH (acknowledging it if QoS 1; QoS 2 is left to the caller).
    pub async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Some(Packet::Publish(publish)) => {
                if publish.qos == QoS::AtLeastOnce {
                    self.send(Packet::PubAck(Ack::new(publish.packet_id))).await;
                }
                publish
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Reads until the broker closes; returns the DISCONNECT reason if one came first.
    pub async fn expect_closed(&mut self) -> Option<ReasonCode> {
        let mut reason = None;
        while let Some(packet) = self.recv().await {
            match packet {
                Packet::Disconnect(d) => reason = Some(d.reason),
                other => panic!("expected the connection to close, got {other:?}"),
            }
        }
        reason
    }
}

// ---- raw sockets ----------------------------------------------------------------------

/// Writes `bytes`, then reads whatever the broker answers until it closes the connection.
/// Panics if the broker keeps the connection open longer than `STEP`.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(STEP, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    });
    read.await.expect("the broker did not close the connection");
    answer
}

// ---- mosquitto clients ----------------------------------------------------------------

/// The path of a mosquitto client binary; fails the test (never skips) if it is missing.
/// The broker itself (`mosquitto`) lives in /usr/sbin, which is not always on PATH.
pub fn mosquitto(binary: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{binary}` is not installed: run scripts/install-test-deps.sh (apt-get install mosquitto mosquitto-clients)")
        })
}

/// Starts `mosquitto_sub` with `args`; killed when dropped.
pub fn spawn_sub(broker: &TestBroker, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(mosquitto("mosquitto_sub"))
        .args(["-h", "127.0.0.1", "-p", &broker.port()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn mosquitto_sub")
}

/// Starts `mosquitto_sub` with line-buffered output (through coreutils' `stdbuf`), so
/// its lines can be read while it runs; killed when dropped.
pub fn spawn_sub_line_buffered(broker: &TestBroker, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new("stdbuf")
        .arg("-oL")
        .arg(mosquitto("mosquitto_sub"))
        .args(["-h", "127.0.0.1", "-p", &broker.port()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn stdbuf mosquitto_sub (coreutils)")
}

/// Runs a mosquitto client to completion (bounded); returns (success, stdout, stderr).
pub async fn run_client(
    binary: &str,
    broker: &TestBroker,
    args: &[&str],
) -> (bool, String, String) {
    let child = tokio::process::Command::new(mosquitto(binary))
        .args(["-h", "127.0.0.1", "-p", &broker.port()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {binary}: {e}"));
    finish(child, binary).await
}

/// Waits (bounded) for a client process; returns (success, stdout, stderr).
pub async fn finish(child: tokio::process::Child, what: &str) -> (bool, String, String) {
    let output = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 15 s"))
        .expect("wait for client");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Publishes with `mosquitto_pub` and requires it to succeed.
pub async fn mosquitto_pub(broker: &TestBroker, args: &[&str]) {
    let (ok, out, err) = run_client("mosquitto_pub", broker, args).await;
    assert!(ok, "mosquitto_pub {args:?} failed: {out}{err}");
}

/// Publishes each argument list in turn (each `mosquitto_pub` waits for its
/// acknowledgement), repeating until `sub` exits; returns the subscriber's output.
/// Bounded: 40 rounds, then the subscriber must have finished.
pub async fn publish_until_received(
    broker: &TestBroker,
    mut sub: tokio::process::Child,
    publishes: &[&[&str]],
) -> (String, String) {
    for _ in 0..40 {
        if sub.try_wait().expect("poll mosquitto_sub").is_some() {
            break;
        }
        for args in publishes {
            mosquitto_pub(broker, args).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, out, err) = finish(sub, "mosquitto_sub").await;
    (out, err)
}

/// Reads a client's stdout until a line contains `needle` (bounded by `STEP`).
pub async fn wait_for_line(child: &mut tokio::process::Child, needle: &str) -> Vec<String> {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.as_mut().expect("stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(STEP, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no line containing `{needle}` in {seen:?}"
    );
    seen
}
