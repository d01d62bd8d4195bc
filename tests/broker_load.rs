//! The load generator (`topicguard::load`) against the broker, with 1,000-deep in-flight
//! windows: every message a publisher saw acknowledged is delivered, exactly once and in
//! order, whether the subscriber queues are roomy or far smaller than the windows (then
//! the publishers are back-pressured), at QoS 1 and 2, one-to-one and fanned out — and
//! the tool's own accounting sees a loss when there is one.

use crate::broker_harness::*;
use std::time::Duration;
use topicguard::broker::BrokerConfig;
use topicguard::load::{self, Login, Plan, Role, Summary, Topics};
use topicguard::mqtt::codec::{ProtocolVersion, QoS};

fn plan(broker: &TestBroker, run: &str, qos: QoS, topics: Topics) -> Plan {
    Plan {
        topics,
        ..plan_for(broker.addr, run, qos)
    }
}

pub(crate) fn plan_for(broker: std::net::SocketAddr, run: &str, qos: QoS) -> Plan {
    Plan {
        login: Login {
            broker,
            version: ProtocolVersion::V311,
            username: None,
            password: None,
        },
        role: Role::Both,
        run: run.into(),
        publishers: 4,
        first_publisher: 0,
        subscribers: 4,
        first_subscriber: 0,
        topic_publishers: 4,
        topics: Topics::Distinct,
        qos,
        payload: 32,
        window: 1_000,
        rate: None,
        duration: Duration::from_secs(30),
        messages: Some(12_000),
        drain: Duration::from_secs(2),
        client_prefix: "dev-".into(),
        topic_prefix: "dev".into(),
        broker_pid: None,
        progress: false,
        persistent_subscribers: false,
    }
}

/// Runs `plan` and requires every expected delivery delivered once, in order, with
/// every message acknowledged.
pub(crate) async fn nothing_lost(plan: Plan) -> Summary {
    let summary = tokio::time::timeout(Duration::from_secs(60), load::throughput(plan))
        .await
        .expect("the run ends")
        .expect("the run completes");
    let f = summary.figures();
    let t = &f.tally;
    let report = summary.render();
    assert!(f.errors.is_empty(), "{report}");
    assert_eq!(f.acked, f.sent, "every message acknowledged\n{report}");
    assert_eq!(t.acked_lost, 0, "{report}");
    assert_eq!(t.unacked_lost, 0, "{report}");
    assert_eq!((t.refused, t.refused_delivered), (0, 0), "{report}");
    assert_eq!(
        (t.duplicates, t.reordered, t.unexpected),
        (0, 0, 0),
        "{report}"
    );
    assert_eq!(t.delivered, t.expected, "{report}");
    summary
}

#[tokio::test]
async fn deep_windows_into_small_queues_lose_no_acknowledged_qos1_message() {
    let config = BrokerConfig {
        max_queued_messages: 100,
        ..test_config()
    };
    let metrics = config.observer.metrics().clone();
    let broker = TestBroker::with_config(config).await;
    // Ten publishers allowing 1,000 unacknowledged messages each, ten subscribers.
    let plan = Plan {
        publishers: 10,
        topic_publishers: 10,
        subscribers: 10,
        messages: Some(20_000),
        ..plan(&broker, "deep1", QoS::AtLeastOnce, Topics::Distinct)
    };
    let summary = nothing_lost(plan).await;
    assert_eq!(summary.figures().sent, 20_000);
    let text = metrics.render();
    assert!(
        !text.contains("topicguard_publishes_waited_total 0\n"),
        "the windows were deeper than the queues, so publishers must have waited:\n{text}"
    );
    broker.stop().await;
}

#[tokio::test]
async fn deep_windows_lose_no_acknowledged_qos2_message() {
    // 3.1.1 cannot learn the broker's limit on unreleased QoS 2 messages (Receive
    // Maximum, 32 by default, over it the connection is closed): raise it to the window.
    let config = BrokerConfig {
        receive_maximum: 1_000,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let plan = Plan {
        messages: Some(6_000),
        ..plan(&broker, "deep2", QoS::ExactlyOnce, Topics::Distinct)
    };
    nothing_lost(plan).await;
    broker.stop().await;
}

#[tokio::test]
async fn deep_windows_fanned_out_lose_nothing_over_mqtt5() {
    // Over 5.0 the tool keeps its window within the broker's Receive Maximum: raise it.
    let config = BrokerConfig {
        max_queued_messages: 200,
        receive_maximum: 1_000,
        ..test_config()
    };
    let broker = TestBroker::with_config(config).await;
    let mut plan = Plan {
        publishers: 2,
        topic_publishers: 2,
        subscribers: 3,
        messages: Some(4_000),
        ..plan(&broker, "fan", QoS::AtLeastOnce, Topics::Shared)
    };
    plan.login.version = ProtocolVersion::V5;
    let summary = nothing_lost(plan).await;
    assert_eq!(summary.figures().tally.expected, 3 * 4_000);
    broker.stop().await;
}

#[tokio::test]
async fn separate_publisher_and_subscriber_runs_combine_into_one_accounting() {
    let broker = TestBroker::start().await;
    let base = Plan {
        publishers: 2,
        topic_publishers: 2,
        subscribers: 2,
        messages: Some(2_000),
        window: 100,
        ..plan(&broker, "split", QoS::AtLeastOnce, Topics::Distinct)
    };
    let (subscribed, ready) = tokio::sync::oneshot::channel();
    let subscriber_plan = Plan {
        role: Role::Subscribe,
        drain: Duration::from_millis(500),
        ..base.clone()
    };
    let subscribing = tokio::spawn(load::throughput_signalling(
        subscriber_plan,
        Some(subscribed),
    ));
    tokio::time::timeout(STEP, ready)
        .await
        .expect("subscribed in time")
        .expect("the subscribing run signals");
    let publishing = load::throughput(Plan {
        role: Role::Publish,
        ..base
    })
    .await
    .expect("publishers run");
    let subscribing = subscribing.await.unwrap().expect("subscribers run");
    assert!(publishing.subscribers.is_empty() && subscribing.publishers.is_empty());
    let all = Summary::combine(vec![publishing, subscribing]).expect("one run");
    let t = all.figures().tally;
    assert_eq!(
        (t.expected, t.delivered, t.acked_lost),
        (2_000, 2_000, 0),
        "{}",
        all.render()
    );
    assert_eq!(all.processes.len(), 2);
    broker.stop().await;
}

/// Debian's mosquitto with a tiny queue and in-flight window drops QoS 1 messages it has
/// acknowledged: the tool must see that as acknowledged loss and say so.
#[tokio::test]
async fn the_tool_reports_the_acknowledged_loss_of_a_broker_that_drops() {
    let mosquitto = mosquitto_broker(&["max_inflight_messages 1", "max_queued_messages 2"]).await;
    let plan = Plan {
        login: Login {
            broker: mosquitto.addr,
            version: ProtocolVersion::V311,
            username: None,
            password: None,
        },
        publishers: 2,
        topic_publishers: 2,
        subscribers: 2,
        messages: Some(4_000),
        drain: Duration::from_millis(500),
        client_prefix: "bench-".into(),
        topic_prefix: "bench".into(),
        ..plan_for(mosquitto.addr, "drops", QoS::AtLeastOnce)
    };
    let summary = load::throughput(plan).await.expect("the run completes");
    let f = summary.figures();
    assert_eq!(
        f.acked,
        4_000,
        "mosquitto acknowledged everything: {}",
        summary.render()
    );
    assert!(
        f.tally.acked_lost > 0,
        "and lost some: {}",
        summary.render()
    );
    assert_eq!(f.tally.delivered + f.tally.acked_lost, f.tally.expected);
    assert!(summary.broke_a_promise());
    let result = summary.render();
    assert!(
        result.contains(&format!("acked_lost={} ", f.tally.acked_lost)),
        "{result}"
    );
}

/// A `mosquitto` broker process on a free loopback port with extra config lines; killed
/// when dropped.
struct Mosquitto {
    addr: std::net::SocketAddr,
    _child: tokio::process::Child,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn mosquitto_broker(extra: &[&str]) -> Mosquitto {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let dir = std::env::temp_dir().join(format!(
        "tg-mosquitto-{}-{}",
        std::process::id(),
        addr.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\n{}\n",
        addr.port(),
        extra.join("\n")
    );
    std::fs::write(dir.join("mosquitto.conf"), config).unwrap();
    let child = tokio::process::Command::new(mosquitto("mosquitto"))
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start mosquitto");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Mosquitto {
                addr,
                _child: child,
                _dir: TempDir(dir),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mosquitto did not listen on {addr}");
}

/// `topicguard bench` (the CLI over `topicguard::load`) keeps the `RESULT` line scripts
/// read, adds the loss columns, and exits 2 with a clear error for an unusable summary.
#[tokio::test]
async fn the_bench_command_reports_a_result_line_scripts_can_read() {
    let broker = TestBroker::start().await;
    let addr = broker.addr.to_string();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args([
            "bench",
            "--broker",
            &addr,
            "--client-prefix",
            "dev-",
            "--topic-prefix",
            "dev",
            "--publishers",
            "2",
            "--subscribers",
            "2",
            "--qos",
            "1",
            "--messages",
            "200",
            "--drain",
            "500ms",
        ])
        .output();
    let result = result_line(run).await;
    let result = result.as_str();
    for key in [
        "RESULT mode=throughput qos=1 ",
        " sent=200 ",
        " received=200 ",
        " send_rate=",
        " receive_rate=",
        " p50_ms=",
        " p99_ms=",
        " acked_lost=0 ",
        " unacked_lost=0 ",
        " tool_limited=",
    ] {
        assert!(result.contains(key), "no `{key}` in {result}");
    }
    let missing = tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(["bench", "--combine", "/nonexistent/summary.json"])
        .output()
        .await
        .expect("bench runs");
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("/nonexistent/summary.json"), "{stderr}");
    broker.stop().await;
}

/// `topicguard bench --connects` runs the given number of handshakes at the given
/// concurrency and reports the broker's CPU (here the test process, which runs the broker)
/// and connects per broker CPU-second; a concurrency of 0 is a usage error.
#[tokio::test]
async fn the_connects_mode_reports_its_concurrency_and_the_brokers_cpu() {
    let broker = TestBroker::start().await;
    let addr = broker.addr.to_string();
    let pid = std::process::id().to_string();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(["bench", "--broker", &addr, "--client-prefix", "dev-"])
        .args([
            "--connects",
            "40",
            "--concurrency",
            "4",
            "--broker-pid",
            &pid,
        ])
        .output();
    let result = result_line(run).await;
    let result = result.as_str();
    for key in [
        "RESULT mode=connects count=40 concurrency=4 rate=",
        " tool_cpu=",
        " tool_limited=",
        " others_cpu=",
    ] {
        assert!(result.contains(key), "no `{key}` in {result}");
    }
    let broker_cpu = result
        .split(' ')
        .find_map(|field| field.strip_prefix("broker_cpu="))
        .expect("a broker_cpu field");
    assert!(broker_cpu.parse::<f64>().is_ok(), "{result}");
    let zero = tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args([
            "bench",
            "--broker",
            &addr,
            "--connects",
            "10",
            "--concurrency",
            "0",
        ])
        .output()
        .await
        .expect("bench runs");
    assert_eq!(zero.status.code(), Some(2));
    broker.stop().await;
}

/// Waits (at most a minute) for a `topicguard bench` run that must succeed, and returns
/// the last line it printed (its `RESULT` line).
async fn result_line(
    run: impl std::future::Future<Output = std::io::Result<std::process::Output>>,
) -> String {
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("bench ends")
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    stdout.lines().last().unwrap_or_default().to_string()
}
