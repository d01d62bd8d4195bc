//! Durable broker state (`topicguard serve --data-dir`): what was acknowledged survives a
//! SIGKILL. A persistent subscriber goes offline, 1,000 QoS 1 messages are published and
//! acknowledged, the broker process is killed and restarted on the same directory under a
//! policy that revokes part of what was allowed: the subscriber gets every message it may
//! still receive (and none it may not), retained messages are back unless their publisher
//! may no longer publish them, and another principal still cannot take the session over.
//! Store files that are not a readable topicguard store stop the broker with an error
//! naming the file, never a panic, never a silent empty start.

use crate::broker_harness::{Next, TestClient, connect_packet};
use crate::broker_reload::{listening_address, stderr_lines};
use crate::broker_tls::{Pki, temp_dir};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use topicguard::broker::store::{FILE_NAME, SCHEMA_VERSION, Store};
use topicguard::devcred as dev;
use topicguard::mqtt::codec::{Ack, ConnAck, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode};

const IDENTITY: &str = r#"
identity app from jwt {
    issuer "https://idp.example.com/"
    audience "iot-platform"
    algorithms ES256
    trust "idp"
    pid = claim "pid"
    aid = claim "aid"
    client "app-{+dev}"
}
allow app connect
allow app publish, retain, subscribe, receive "acct/{pid}_{aid}/#"
"#;

/// What the restarted broker runs: receiving `secret/` and publishing `frozen/` revoked.
const REVOCATIONS: &str = r#"
deny app receive "acct/{pid}_{aid}/secret/#"
deny app publish "acct/{pid}_{aid}/frozen/#"
"#;

const MESSAGES: usize = 1000;

fn config(data: &Path) -> String {
    format!(
        "policy = \"broker.policy\"\npolicy_poll_ms = 600000\n\
         [[listener]]\nprotocol = \"tcp\"\nbind = \"127.0.0.1:0\"\n\
         [trust.idp]\njwks = \"jwks.json\"\n\
         [storage]\ndir = \"{}\"\n",
        data.display()
    )
}

/// A `topicguard serve` child process and its stderr lines.
struct Server {
    child: tokio::process::Child,
    /// Its log lines up to and including the one saying it listens.
    startup: Vec<String>,
    /// Kept so the child never writes to a closed pipe.
    _lines: tokio::sync::mpsc::Receiver<String>,
    addr: SocketAddr,
}

impl Server {
    async fn start(pki: &Pki, policy: &str, data: &Path) -> Server {
        std::fs::write(pki.dir.join("broker.policy"), policy).expect("write the policy");
        let file = pki.dir.join("topicguard.toml");
        std::fs::write(&file, config(data)).expect("write the config");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
            .args(["serve", "--config"])
            .arg(&file)
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start topicguard serve");
        let mut lines = stderr_lines(&mut child);
        let mut startup = Vec::new();
        let listening = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.recv().await {
                startup.push(line);
                if startup
                    .last()
                    .is_some_and(|l| l.contains("broker listening"))
                {
                    return true;
                }
            }
            false
        });
        let started = listening.await.unwrap_or(false);
        assert!(started, "serve did not start: {startup:#?}");
        let addr = listening_address(startup.last().expect("a line"));
        Server {
            child,
            startup,
            _lines: lines,
            addr,
        }
    }

    /// SIGKILL: no shutdown code runs.
    async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL the broker");
    }
}

fn token(pki: &Pki, pid: &str, aid: &str) -> String {
    let now = dev::unix_now();
    let mut claims = dev::default_claims(now, "J1");
    claims["pid"] = Value::from(pid);
    claims["aid"] = Value::from(aid);
    claims["exp"] = Value::from(now + 3600);
    pki.signer.sign(&claims).expect("sign a token")
}

async fn open(
    addr: SocketAddr,
    client_id: &str,
    token: &str,
    persistent: bool,
) -> (TestClient, ConnAck) {
    let mut connect = connect_packet(ProtocolVersion::V5, client_id, Some("app"));
    connect.password = Some(token.as_bytes().to_vec().into());
    if persistent {
        connect.clean_start = false;
        connect.properties.session_expiry_interval = Some(3600);
    }
    TestClient::open(addr, connect).await
}

/// Topic of message `i`: every tenth goes to `secret/`.
fn topic(i: usize) -> String {
    match i % 10 {
        0 => format!("acct/P1_A1/secret/{i}"),
        _ => format!("acct/P1_A1/open/{i}"),
    }
}

/// Publishes every message at QoS 1, 100 in flight, and requires every PUBACK to be 0.
async fn publish_all(publisher: &mut TestClient) {
    for window in (0..MESSAGES).collect::<Vec<_>>().chunks(100) {
        let mut ids = BTreeSet::new();
        for &i in window {
            ids.insert(
                publisher
                    .publish_no_wait(&topic(i), i.to_string().as_bytes(), QoS::AtLeastOnce)
                    .await,
            );
        }
        while !ids.is_empty() {
            match publisher.recv().await {
                Some(Packet::PubAck(ack)) => {
                    assert_eq!(ack.reason, ReasonCode::SUCCESS, "PUBACK {}", ack.packet_id);
                    assert!(
                        ids.remove(&ack.packet_id),
                        "unexpected PUBACK {}",
                        ack.packet_id
                    );
                }
                other => panic!("expected PUBACK, got {other:?}"),
            }
        }
    }
}

/// Receives until nothing arrives for a while; returns the topics (acknowledging each).
async fn receive_all(sub: &mut TestClient) -> Vec<String> {
    let mut topics = Vec::new();
    loop {
        let packet = match sub.next_within(Duration::from_secs(3)).await {
            Next::Packet(packet) => packet,
            Next::Quiet => break,
            Next::Closed => panic!("closed after {} messages", topics.len()),
        };
        match packet {
            Packet::Publish(p) => {
                if p.qos == QoS::AtLeastOnce {
                    sub.send(Packet::PubAck(Ack::new(p.packet_id))).await;
                }
                topics.push(p.topic.to_string());
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    topics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_and_are_rechecked_under_the_current_policy() {
    let pki = Pki::generate("durable-sigkill");
    let data = pki.dir.join("data");
    let (owner, other) = (token(&pki, "P1", "A1"), token(&pki, "P2", "A2"));
    let server = Server::start(&pki, IDENTITY, &data).await;

    let (mut sub, ack) = open(server.addr, "app-sub", &owner, true).await;
    assert_eq!(ack.code, 0);
    assert_eq!(sub.subscribe("acct/P1_A1/#", QoS::AtLeastOnce).await.0, 1);
    sub.send(Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)))
        .await;
    drop(sub);

    let (mut retainer, ack) = open(server.addr, "app-ret", &other, false).await;
    assert_eq!(ack.code, 0);
    for (topic, body) in [("acct/P2_A2/keep", "k"), ("acct/P2_A2/frozen/x", "f")] {
        let code = retainer
            .publish(topic, body.as_bytes(), QoS::AtLeastOnce, true)
            .await;
        assert_eq!(code, ReasonCode::SUCCESS, "retain {topic}");
    }
    let (mut publisher, ack) = open(server.addr, "app-pub", &owner, false).await;
    assert_eq!(ack.code, 0);
    publish_all(&mut publisher).await;
    server.kill().await;

    let server = Server::start(&pki, &format!("{IDENTITY}{REVOCATIONS}"), &data).await;
    let restored = server
        .startup
        .iter()
        .find(|l| l.contains("store: restored"));
    let restored = restored.expect("the restore is logged");
    assert!(
        restored.contains("sessions=1") && restored.contains("retained_dropped=1"),
        "{restored}"
    );

    // The session is still P1's: P2's valid token is refused its client id.
    let (_intruder, ack) = open(server.addr, "app-sub", &other, true).await;
    assert_eq!(
        ack.code,
        ReasonCode::NOT_AUTHORIZED.0,
        "another principal takes over a restored session"
    );

    let (mut sub, ack) = open(server.addr, "app-sub", &owner, true).await;
    assert_eq!(
        (ack.code, ack.session_present),
        (0, true),
        "the session was restored"
    );
    let received = receive_all(&mut sub).await;
    let expected: Vec<String> = (0..MESSAGES)
        .map(topic)
        .filter(|t| !t.contains("/secret/"))
        .collect();
    assert_eq!(
        received.len(),
        expected.len(),
        "every message still allowed, once"
    );
    assert_eq!(received, expected, "in publishing order, none revoked");

    // The restored subscription still routes new messages.
    let (mut publisher, _) = open(server.addr, "app-pub", &owner, false).await;
    assert_eq!(
        publisher
            .publish("acct/P1_A1/open/new", b"n", QoS::AtLeastOnce, false)
            .await,
        ReasonCode::SUCCESS
    );
    assert_eq!(
        sub.expect_publish().await.topic.as_str(),
        "acct/P1_A1/open/new"
    );

    let (mut reader, _) = open(server.addr, "app-read", &other, false).await;
    assert_eq!(
        reader.subscribe("acct/P2_A2/#", QoS::AtLeastOnce).await.0,
        1
    );
    let retained = receive_all(&mut reader).await;
    assert_eq!(
        retained,
        ["acct/P2_A2/keep"],
        "retained back, the revoked one dropped"
    );
    server.kill().await;
}

/// A data directory holding `bytes` as its store file.
fn data_dir_with(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::write(dir.join(FILE_NAME), bytes).expect("write the store file");
    dir
}

/// Opening `dir` fails with a message naming the file and containing `what`.
fn refused(dir: &Path, what: &str) {
    let file = dir.join(FILE_NAME).display().to_string();
    let error = Store::open(dir)
        .expect_err("a bad store is refused")
        .to_string();
    assert!(error.contains(&file), "names the file: {error}");
    assert!(error.contains(what), "says `{what}`: {error}");
    // Nothing was started over it.
    assert!(std::fs::metadata(dir.join(FILE_NAME)).is_ok());
}

/// A store with one session record in it, closed.
fn real_store(name: &str) -> (PathBuf, Vec<u8>) {
    let dir = temp_dir(name);
    let store = Store::open(&dir).expect("a new store");
    drop(store);
    let bytes = std::fs::read(dir.join(FILE_NAME)).expect("read it");
    (dir, bytes)
}

#[test]
fn store_files_that_are_not_a_readable_topicguard_store_are_refused_by_name() {
    let random: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    refused(
        &data_dir_with("store-random", &random),
        "not a redb database",
    );
    refused(&data_dir_with("store-empty", b""), "empty");
    let (_, bytes) = real_store("store-real");
    refused(
        &data_dir_with("store-header-cut", &bytes[..5]),
        "not a redb database",
    );
    let cut = data_dir_with("store-cut", &bytes[..bytes.len() / 2]);
    let error = Store::open(&cut)
        .expect_err("a truncated store is refused")
        .to_string();
    assert!(
        error.contains(&cut.join(FILE_NAME).display().to_string()),
        "{error}"
    );

    let foreign = temp_dir("store-foreign");
    {
        let db = redb::Database::create(foreign.join(FILE_NAME)).expect("another program's redb");
        let txn = db.begin_write().unwrap();
        let table: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("inventory");
        txn.open_table(table).unwrap().insert("apples", 3).unwrap();
        txn.commit().unwrap();
    }
    refused(&foreign, "not a topicguard store");

    let (future, _) = real_store("store-future");
    {
        let db = redb::Database::open(future.join(FILE_NAME)).expect("our store");
        let txn = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
        txn.open_table(meta)
            .unwrap()
            .insert("schema", SCHEMA_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    refused(&future, "newer topicguard");
}

#[test]
fn a_store_already_open_is_refused() {
    let dir = temp_dir("store-twice");
    let first = Store::open(&dir).expect("the first opens");
    let error = Store::open(&dir)
        .expect_err("a second broker on the directory")
        .to_string();
    assert!(error.contains("already open"), "{error}");
    drop(first);
    Store::open(&dir).expect("free again once the first is closed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_record_is_refused_naming_its_table_and_key() {
    let (dir, _) = real_store("store-bad-record");
    {
        let db = redb::Database::open(dir.join(FILE_NAME)).expect("our store");
        let txn = db.begin_write().unwrap();
        let sessions: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("sessions");
        txn.open_table(sessions)
            .unwrap()
            .insert("app-x", &[1u8, 0, 0][..])
            .unwrap();
        txn.commit().unwrap();
    }
    refused(&dir, "table `sessions`, key `app-x`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_with_the_stores_error_and_never_starts_empty() {
    let pki = Pki::generate("durable-serve-bad");
    let data = data_dir_with(
        "durable-serve-bad-data",
        b"not a database, a note someone left here",
    );
    std::fs::write(pki.dir.join("broker.policy"), IDENTITY).expect("write the policy");
    let file = pki.dir.join("topicguard.toml");
    std::fs::write(&file, config(&data)).expect("write the config");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(["serve", "--config"])
        .arg(&file)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("serve stops by itself")
        .expect("run serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve refuses to start: {stderr}");
    assert!(
        stderr.contains(&data.join(FILE_NAME).display().to_string())
            && stderr.contains("not a redb database"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&data);
}
