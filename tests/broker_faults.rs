//! Load and faults, short versions (the long soak is `scripts/soak`): 2,000 clients with
//! sustained QoS 1 traffic lose nothing and the broker's memory stays flat; a subscriber
//! that stops reading at the queue limit is handled by the queue rule (QoS 0 dropped, QoS 1
//! publishers waited for and refused, then the stall rule cuts the subscriber off) and
//! memory does not grow with what is published to it; a storm of 3,000 simultaneous
//! CONNECTs is served; sockets that go silent before CONNECT (past the connection limit)
//! or after it (a client gone without FIN) are closed by the connect timeout and the
//! keep-alive; an invalid policy file written under load is refused and the old policy
//! keeps serving with no message lost. Memory is read from a `topicguard serve`
//! child's /proc status (its own process); everything is on loopback and bounded.

use crate::broker_harness::{Next, TestBroker, TestClient, connect_packet, test_config};
use crate::broker_load::{nothing_lost, plan_for};
use crate::broker_reload::{line_with, listening_address, stderr_lines};
use crate::broker_tls::{Pki, SecureBroker, temp_dir};
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use topicguard::Policy;
use topicguard::broker::BrokerConfig;
use topicguard::broker::reload::PolicyReloader;
use topicguard::load::{self, Topics};
use topicguard::mqtt::codec::{Packet, ProtocolVersion, QoS, ReasonCode};

const DEV_POLICY: &str = "identity dev from anonymous {\n    client \"dev-{+cid}\"\n}\n\
    allow dev connect\nallow dev publish, subscribe, receive \"dev/#\"\n";

/// A `topicguard serve` child process on 127.0.0.1 with the `dev` policy.
struct Serve {
    child: tokio::process::Child,
    _lines: tokio::sync::mpsc::Receiver<String>,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Serve {
    async fn start(name: &str, limits: &str) -> Serve {
        let dir = temp_dir(name);
        std::fs::write(dir.join("dev.policy"), DEV_POLICY).expect("write the policy");
        let config = format!(
            "policy = \"dev.policy\"\n[[listener]]\nprotocol = \"tcp\"\nbind = \"127.0.0.1:0\"\n\
             [limits]\nmax_connections = 12000\n{limits}"
        );
        std::fs::write(dir.join("serve.toml"), config).expect("write the config");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
            .args(["serve", "--config"])
            .arg(dir.join("serve.toml"))
            .env("RUST_LOG", "warn,topicguard::broker::listener=info")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start topicguard serve");
        let mut lines = stderr_lines(&mut child);
        let addr = listening_address(&line_with(&mut lines, "broker listening").await);
        Serve {
            child,
            _lines: lines,
            addr,
            dir,
        }
    }

    /// The child's resident memory in KiB.
    fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("the broker runs");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("VmRSS");
        line.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("a number")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Memory may not grow by more than a quarter (plus 16 MiB of allocator slack) from
/// `early` to `late`: what grows with traffic is state never freed.
fn flat(early: u64, late: u64, what: &str) {
    assert!(
        late <= early + early / 4 + 16 * 1024,
        "{what}: RSS grew from {early} KiB to {late} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_qos1_from_2000_clients_loses_nothing_and_memory_stays_flat() {
    let serve = Serve::start("faults-sustained", "").await;
    let plan = load::Plan {
        publishers: 1000,
        subscribers: 1000,
        topic_publishers: 1000,
        topics: Topics::Distinct,
        window: 4,
        rate: Some(3000),
        messages: None,
        duration: Duration::from_secs(8),
        ..plan_for(serve.addr, "sustained", QoS::AtLeastOnce)
    };
    let sampling = CancellationToken::new();
    let samples = {
        let stop = sampling.clone();
        let pid = serve.child.id().expect("runs");
        tokio::spawn(async move {
            let started = Instant::now();
            let mut samples = Vec::new();
            while !stop.is_cancelled() {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let rss = status.lines().find(|l| l.starts_with("VmRSS:"));
                let kib = rss.and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok());
                samples.push((started.elapsed(), kib.unwrap_or(0)));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        })
    };
    let summary = nothing_lost(plan).await;
    sampling.cancel();
    let samples = samples.await.expect("the sampler ends");
    let peak = |from: u64, to: u64| {
        let (from, to) = (Duration::from_secs(from), Duration::from_secs(to));
        samples
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, kib)| *kib)
            .max()
    };
    let (early, late) = (
        peak(2, 5).expect("early samples"),
        peak(6, 9).expect("late samples"),
    );
    flat(
        early,
        late,
        &format!("sustained QoS 1, {} messages", summary.figures().sent),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_at_the_queue_limit_is_cut_off_and_grows_no_memory() {
    let limits = "max_queued_messages = 50\nqueue_full_timeout_secs = 1\nstalled_subscriber_timeout_secs = 4\n";
    let serve = Serve::start("faults-slow", limits).await;
    let mut slow = TestClient::connect(serve.addr, ProtocolVersion::V5, "dev-slow", None).await;
    assert_eq!(slow.subscribe("dev/slow", QoS::AtLeastOnce).await.0, 1);
    // From here `slow` reads nothing: 32 deliveries in flight unacknowledged, then 50
    // queued, and its queue is full.
    let mut publisher = TestClient::connect(serve.addr, ProtocolVersion::V5, "dev-pub", None).await;
    for i in 0..82u32 {
        let code = publisher
            .publish("dev/slow", &i.to_be_bytes(), QoS::AtLeastOnce, false)
            .await;
        assert_eq!(
            code,
            ReasonCode::SUCCESS,
            "message {i} fits window and queue"
        );
    }
    // QoS 0 towards the full queue is dropped (counted), never held in memory.
    let payload = vec![b'x'; 16 * 1024];
    for _ in 0..300 {
        publisher
            .publish("dev/slow", &payload, QoS::AtMostOnce, false)
            .await;
    }
    let early = serve.rss_kib();
    for _ in 0..1700 {
        publisher
            .publish("dev/slow", &payload, QoS::AtMostOnce, false)
            .await;
    }
    let late = serve.rss_kib();
    flat(
        early,
        late,
        "27 MB of QoS 0 towards a subscriber whose queue is full",
    );

    let mut healthy =
        TestClient::connect(serve.addr, ProtocolVersion::V5, "dev-healthy", None).await;
    assert_eq!(healthy.subscribe("dev/slow", QoS::AtLeastOnce).await.0, 1);
    let done = CancellationToken::new();
    let reader = tokio::spawn(read_qos1(healthy, done.clone()));
    // QoS 1 waits for the full online queue, is refused after queue_full_timeout, and is
    // taken again once the stall rule has cut the subscriber off.
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for i in 100..130u32 {
        let code = publisher
            .publish("dev/slow", &i.to_be_bytes(), QoS::AtLeastOnce, false)
            .await;
        match code {
            ReasonCode::SUCCESS => accepted.push(i),
            ReasonCode::QUOTA_EXCEEDED => refused += 1,
            other => panic!("PUBACK {other:?}"),
        }
        if accepted.len() >= 10 {
            break;
        }
    }
    assert!(
        refused > 0,
        "the online full queue made the publisher wait, then refused it"
    );
    assert!(
        accepted.len() >= 10,
        "once the subscriber is cut off, publishing goes on"
    );
    done.cancel();
    let got = reader.await.expect("the reader ends");
    assert_eq!(
        got, accepted,
        "the healthy subscriber gets every accepted message, in order"
    );
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Next::Closed = slow.next_within(Duration::from_secs(5)).await {
                return;
            }
        }
    });
    closed.await.expect("the stalled subscriber is cut off");
    flat(early, serve.rss_kib(), "after the stalled subscriber");
}

/// Reads everything (acknowledging QoS 1) until `done` and then two quiet seconds; returns the
/// QoS 1 payloads as numbers. Panics if the broker closes the connection.
async fn read_qos1(mut client: TestClient, done: CancellationToken) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match client.next_within(Duration::from_secs(2)).await {
            Next::Packet(Packet::Publish(p)) if p.qos == QoS::AtLeastOnce => {
                let ack = topicguard::mqtt::codec::Ack::new(p.packet_id);
                client.send(Packet::PubAck(ack)).await;
                got.push(u32::from_be_bytes(
                    p.payload[..].try_into().expect("4 bytes"),
                ));
            }
            Next::Packet(_) => {}
            Next::Quiet if done.is_cancelled() => return got,
            Next::Quiet => {}
            Next::Closed => panic!(
                "a subscriber that reads was disconnected after {} messages",
                got.len()
            ),
        }
    }
}

/// Reads a raw socket until the broker closes it (bounded); false if it stays open.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = vec![0; 64 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_all).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_3000_simultaneous_connects_is_served() {
    let config = BrokerConfig {
        max_connections: 4000,
        connect_timeout: Duration::from_secs(20),
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let addr = broker.addr;
    let storm: Vec<_> = (0..3000)
        .map(|i| {
            tokio::spawn(async move {
                let connect =
                    connect_packet(ProtocolVersion::V311, &format!("dev-storm-{i}"), None);
                let opened = tokio::time::timeout(Duration::from_secs(60), async {
                    let stream = TcpStream::connect(addr).await.ok()?;
                    let codec = topicguard::mqtt::codec::MqttCodec::client(
                        ProtocolVersion::V311,
                        Default::default(),
                    );
                    let mut framed = tokio_util::codec::Framed::new(stream, codec);
                    use futures_util::{SinkExt, StreamExt};
                    framed.send(Packet::Connect(Box::new(connect))).await.ok()?;
                    match framed.next().await {
                        Some(Ok(Packet::ConnAck(ack))) => Some((ack.code, framed)),
                        _ => None,
                    }
                });
                opened.await.ok().flatten()
            })
        })
        .collect();
    let mut held = Vec::new();
    for task in storm {
        let (code, conn) = task
            .await
            .expect("no task panics")
            .expect("every CONNECT answered");
        assert_eq!(code, 0);
        held.push(conn);
    }
    // Everyone else is still served while 3,000 connections are held.
    let mut sub = TestClient::connect(addr, ProtocolVersion::V5, "dev-after-sub", None).await;
    assert_eq!(sub.subscribe("dev/after", QoS::AtLeastOnce).await.0, 1);
    let mut publisher = TestClient::connect(addr, ProtocolVersion::V5, "dev-after-pub", None).await;
    assert_eq!(
        publisher
            .publish("dev/after", b"m", QoS::AtLeastOnce, false)
            .await,
        ReasonCode::SUCCESS
    );
    assert_eq!(&sub.expect_publish().await.payload[..], b"m");
    drop(held);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_open_sockets_are_closed_by_the_broker() {
    let config = BrokerConfig {
        connect_timeout: Duration::from_secs(1),
        max_connections: 300,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    // Sockets that never send CONNECT, past the connection limit: closed by the connect
    // timeout, and a real client gets in once they are.
    let mut silent = Vec::new();
    for _ in 0..320 {
        silent.push(TcpStream::connect(broker.addr).await.expect("TCP connect"));
    }
    let mut late = TestClient::connect(broker.addr, ProtocolVersion::V5, "dev-late", None).await;
    assert_eq!(late.subscribe("dev/x", QoS::AtMostOnce).await.0, 0);
    for stream in &mut silent {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "a silent socket is closed"
        );
    }

    // A client that connected with keep-alive 1 and then vanished (nothing sent, no FIN):
    // closed after one and a half keep-alives.
    let mut connect = connect_packet(ProtocolVersion::V311, "dev-vanished", None);
    connect.keep_alive = 1;
    let (vanished, ack) = TestClient::open(broker.addr, connect).await;
    assert_eq!(ack.code, 0);
    let mut vanished = vanished;
    assert!(
        matches!(
            vanished.next_within(Duration::from_secs(10)).await,
            Next::Closed
        ),
        "keep-alive closes a vanished client"
    );

    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_policy_written_under_load_keeps_the_old_one_serving_and_loses_nothing() {
    let pki = Pki::generate("faults-reload");
    let path = pki.dir.join("broker.policy");
    std::fs::write(&path, DEV_POLICY).expect("write the policy");
    let policy = Policy::load(&path).expect("the policy loads");
    let broker = SecureBroker::with(&pki, policy, test_config()).await;
    let stop = CancellationToken::new();
    let reloader = PolicyReloader::new(
        &path,
        broker.engines.clone(),
        broker.broker.clone(),
        Some(broker.authenticator.clone()),
    );
    tokio::spawn(reloader.run(Duration::from_millis(100), stop.clone()));
    let plan = load::Plan {
        publishers: 8,
        subscribers: 8,
        topic_publishers: 8,
        window: 16,
        rate: Some(2000),
        messages: None,
        duration: Duration::from_secs(4),
        ..plan_for(broker.tcp, "reload", QoS::AtLeastOnce)
    };
    let run = tokio::spawn(nothing_lost(plan));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut file = std::fs::File::create(&path).expect("replace the policy");
    file.write_all(b"identity dev from anonymous {\n    client \"dev-{+cid}\"\nallow dev conne")
        .expect("write");
    drop(file);
    let metrics = broker.broker.config.observer.metrics();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.policy_reloads().1 == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metrics.policy_reloads(),
        (0, 1),
        "the invalid file is refused, once"
    );
    let summary = run.await.expect("the load run ends");
    assert!(summary.figures().sent > 0);
    stop.cancel();
}
