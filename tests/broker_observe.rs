//! Observability end to end: a broker with an `Observer` (metrics + JSON-lines decision
//! log), driven by our test client; the metrics endpoint is scraped over 127.0.0.1 and
//! the decision log is read back line by line.

use crate::broker_harness::{STEP, TestBroker, TestClient, test_config};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use topicguard::broker::BrokerConfig;
use topicguard::broker::observe::{Observer, serve_metrics};
use topicguard::mqtt::codec::{ProtocolVersion, QoS, ReasonCode};

fn scratch_file(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "topicguard-{name}-{}-{nanos}.jsonl",
        std::process::id()
    ))
}

/// Sends one HTTP request and returns the whole response.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect to metrics");
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send request");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .expect("read response");
        String::from_utf8(response).expect("UTF-8 response")
    };
    tokio::time::timeout(STEP, exchange)
        .await
        .expect("metrics answer within STEP")
}

async fn start_metrics(observer: &Observer) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind metrics");
    let addr = listener.local_addr().expect("metrics address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = observer.metrics().clone();
    tokio::spawn(serve_metrics(listener, metrics, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// The value of one sample line (`name{labels} value`).
fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample `{series}` in:\n{text}"))
}

/// Reads the decision log until it has `count` lines (bounded by STEP).
async fn read_log(path: &PathBuf, count: usize) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
            .collect();
        if lines.len() >= count || tokio::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// dev-obs subscribes to dev/#, publishes to dev/a (allowed, delivered) and c/x (denied).
async fn drive(broker: &TestBroker) -> TestClient {
    let mut client = TestClient::connect(broker.addr, ProtocolVersion::V5, "dev-obs", None).await;
    assert_eq!(
        client.subscribe("dev/#", QoS::AtLeastOnce).await,
        ReasonCode::GRANTED_QOS_1
    );
    let ok = client
        .publish("dev/a", b"hello", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(ok, ReasonCode::SUCCESS);
    assert_eq!(&client.expect_publish().await.payload[..], b"hello");
    let denied = client.publish("c/x", b"no", QoS::AtLeastOnce, false).await;
    assert_eq!(denied, ReasonCode::NOT_AUTHORIZED);
    client
}

#[tokio::test]
async fn the_metrics_endpoint_counts_connections_messages_and_decisions() {
    let observer = Observer::new();
    let (metrics_addr, stop_metrics) = start_metrics(&observer).await;
    let config = BrokerConfig {
        observer: observer.clone(),
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let _client = drive(&broker).await;
    let response = http_get(metrics_addr, "/metrics").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("Content-Type: text/plain; version=0.0.4"),
        "{response}"
    );
    assert_eq!(sample(&response, "topicguard_connections_current"), 1);
    assert_eq!(sample(&response, "topicguard_connections_total"), 1);
    assert_eq!(sample(&response, "topicguard_messages_received_total"), 1);
    assert_eq!(sample(&response, "topicguard_messages_sent_total"), 1);
    assert_eq!(sample(&response, "topicguard_bytes_received_total"), 5);
    let decisions = |action: &str, verdict: &str| {
        let series =
            format!("topicguard_decisions_total{{action=\"{action}\",verdict=\"{verdict}\"}}");
        sample(&response, &series)
    };
    assert_eq!(decisions("connect", "allowed"), 1);
    assert_eq!(decisions("subscribe", "allowed"), 1);
    assert_eq!(decisions("publish", "allowed"), 1);
    assert_eq!(decisions("publish", "denied"), 1);
    assert_eq!(decisions("receive", "allowed"), 1);
    assert_eq!(decisions("receive", "denied"), 0);
    let missing = http_get(metrics_addr, "/other").await;
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing}"
    );
    let _ = stop_metrics.send(());
    broker.stop().await;
}

#[tokio::test]
async fn the_decision_log_has_one_json_line_per_decision() {
    let path = scratch_file("decisions");
    let observer = Observer::with_decision_log(&path).expect("open the decision log");
    let config = BrokerConfig {
        observer,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let _client = drive(&broker).await;
    let lines = read_log(&path, 5).await;
    let _ = std::fs::remove_file(&path);
    broker.stop().await;
    let summary: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| {
            let field = |k: &str| l[k].as_str().unwrap_or("-").to_string();
            (field("action"), field("topic"), field("verdict"))
        })
        .collect();
    let expected = [
        ("connect", "-", "allowed"),
        ("subscribe", "dev/#", "allowed"),
        ("publish", "dev/a", "allowed"),
        ("receive", "dev/a", "allowed"),
        ("publish", "c/x", "implicitly denied"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, t, v)| (a.to_string(), t.to_string(), v.to_string()))
        .collect();
    assert_eq!(summary, expected);
    for line in &lines {
        assert_eq!(line["client"], "dev-obs", "{line}");
        assert_eq!(line["identity"], "dev", "{line}");
        let time = line["time"].as_str().expect("time");
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{time}"
        );
        assert!(
            line["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{line}"
        );
    }
    let rule = lines[2]["rule"]
        .as_str()
        .expect("the allowing rule is named");
    assert!(rule.starts_with("xfinity+dev.policy:"), "{rule}");
    assert_eq!(
        lines[2]["label"], "dev-topics",
        "the rule's label is logged"
    );
    assert!(
        lines[4].get("rule").is_none(),
        "default deny has no rule: {}",
        lines[4]
    );
}
