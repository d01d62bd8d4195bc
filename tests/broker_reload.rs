//! Policy reload on a running broker: a change to the policy file (seen by polling its
//! mtime) that no longer allows an existing subscription removes it — deliveries stop even
//! though `receive` is still allowed — and a file that does not load is rejected with its
//! `file:line`, the running policy kept.

use crate::broker_harness::{TestClient, test_config};
use crate::broker_tls::{Pki, SecureBroker};
use std::path::Path;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;
use topicguard::Policy;
use topicguard::broker::reload::PolicyReloader;
use topicguard::mqtt::codec::{Packet, ProtocolVersion, QoS};

const DEV: &str =
    "identity dev from anonymous {\n    client \"dev-{+cid}\"\n}\nallow dev connect\n";
const SUBSCRIBE_ALLOWED: &str = "allow dev publish, subscribe, receive \"dev/#\"\n";
const SUBSCRIBE_DENIED: &str =
    "allow dev publish, receive \"dev/#\"\nallow dev subscribe \"other/#\"\n";

/// Writes a policy and moves its mtime forward, so a poll always sees the change.
fn write_policy(path: &Path, rules: &str, bump: u64) {
    std::fs::write(path, format!("{DEV}{rules}")).expect("write the policy");
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    let when = SystemTime::now() + Duration::from_secs(bump);
    file.set_modified(when).expect("set mtime");
}

async fn start(name: &str) -> (Pki, SecureBroker, std::path::PathBuf) {
    let pki = Pki::generate(name);
    let path = pki.dir.join("broker.policy");
    write_policy(&path, SUBSCRIBE_ALLOWED, 0);
    let policy = Policy::load(&path).expect("the first policy loads");
    let broker = SecureBroker::with(&pki, policy, test_config()).await;
    (pki, broker, path)
}

async fn clients(broker: &SecureBroker) -> (TestClient, TestClient) {
    let mut sub = TestClient::connect(broker.tcp, ProtocolVersion::V5, "dev-sub", None).await;
    assert_eq!(sub.subscribe("dev/#", QoS::AtMostOnce).await.0, 0);
    let publisher = TestClient::connect(broker.tcp, ProtocolVersion::V5, "dev-pub", None).await;
    (sub, publisher)
}

/// Publishes once and says whether the subscriber got it within `wait`.
async fn delivered(sub: &mut TestClient, publisher: &mut TestClient, wait: Duration) -> bool {
    publisher
        .publish("dev/a", b"m", QoS::AtMostOnce, false)
        .await;
    matches!(sub.recv_within(wait).await, Some(Packet::Publish(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_change_removes_subscriptions_no_longer_allowed() {
    let (_pki, broker, path) = start("reload-poll").await;
    let reloader = PolicyReloader::new(
        &path,
        broker.engines.clone(),
        broker.broker.clone(),
        Some(broker.authenticator.clone()),
    );
    let stop = CancellationToken::new();
    tokio::spawn(reloader.run(Duration::from_millis(100), stop.clone()));
    let (mut sub, mut publisher) = clients(&broker).await;
    assert!(delivered(&mut sub, &mut publisher, Duration::from_secs(2)).await);
    let before = broker.engines.load_full();
    write_policy(&path, SUBSCRIBE_DENIED, 5);
    let swapped = async {
        while std::sync::Arc::ptr_eq(&before, &broker.engines.load_full()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), swapped)
        .await
        .expect("the poll must pick up the changed file");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut stopped = false;
    while !stopped && tokio::time::Instant::now() < deadline {
        stopped = !delivered(&mut sub, &mut publisher, Duration::from_millis(500)).await;
    }
    assert!(stopped, "deliveries must stop after the reload");
    for _ in 0..3 {
        let late = delivered(&mut sub, &mut publisher, Duration::from_millis(200)).await;
        assert!(!late, "the subscription was removed, not filtered");
    }
    assert_eq!(sub.subscribe("dev/#", QoS::AtMostOnce).await.0, 0x87);
    stop.cancel();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_policy_file_is_rejected_and_the_old_policy_kept() {
    let (_pki, broker, path) = start("reload-bad").await;
    let mut reloader = PolicyReloader::new(
        &path,
        broker.engines.clone(),
        broker.broker.clone(),
        Some(broker.authenticator.clone()),
    );
    let (mut sub, mut publisher) = clients(&broker).await;
    write_policy(&path, "allow dev frobnicate \"dev/#\"\n", 1);
    let error = reloader
        .reload()
        .expect_err("a bad file must be rejected")
        .to_string();
    let at = format!("{}:5:", path.display());
    assert!(
        error.contains(&at),
        "the error names file:line ({at}): {error}"
    );
    assert!(delivered(&mut sub, &mut publisher, Duration::from_secs(2)).await);
    write_policy(&path, SUBSCRIBE_ALLOWED, 2);
    let done = reloader.reload().expect("a good file reloads");
    assert_eq!(done.rules, 2);
    assert!(delivered(&mut sub, &mut publisher, Duration::from_secs(2)).await);
    broker.stop().await;
}

/// Lines of a child's stderr, read in the background.
pub(crate) fn stderr_lines(
    child: &mut tokio::process::Child,
) -> tokio::sync::mpsc::Receiver<String> {
    use tokio::io::AsyncBufReadExt;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (send, receive) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if send.send(line).await.is_err() {
                break;
            }
        }
    });
    receive
}

/// Reads lines until one contains `needle` (bounded); returns it.
pub(crate) async fn line_with(
    lines: &mut tokio::sync::mpsc::Receiver<String>,
    needle: &str,
) -> String {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.recv().await {
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    });
    match found.await {
        Ok(Some(line)) => line,
        other => panic!("no log line containing `{needle}`: {other:?}"),
    }
}

pub(crate) fn listening_address(line: &str) -> std::net::SocketAddr {
    let text = line
        .split("address=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next());
    text.and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no address in `{line}`"))
}

const SERVE_CONFIG: &str = r#"
policy = "broker.policy"
policy_poll_ms = 600000
[[listener]]
protocol = "tls"
bind = "127.0.0.1:0"
client_certificates = "optional"
[tls]
certificate = "server.pem"
key = "server-key.pem"
[trust.idp]
jwks = "jwks.json"
[trust.devices]
ca = ["ca.pem"]
crl = ["crl.pem"]
[trust.services]
ca = ["services-ca.pem"]
crl = ["services-crl.pem"]
[limits]
connect_timeout_secs = 5
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topicguard_serve_runs_from_a_config_file_and_reloads_on_sighup() {
    use crate::broker_tls::{GATEWAY_ID, MOBILE_ID, mosquitto_run};
    let pki = Pki::generate("serve-cli");
    let xfinity = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/xfinity.policy");
    let policy_path = pki.dir.join("broker.policy");
    std::fs::copy(xfinity, &policy_path).expect("copy the policy");
    let config = pki.dir.join("topicguard.toml");
    std::fs::write(&config, SERVE_CONFIG).expect("write the config");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start topicguard serve");
    let mut lines = stderr_lines(&mut child);
    let tls = listening_address(&line_with(&mut lines, "broker listening").await);
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("gateway.pem"),
        pki.path("gateway-key.pem"),
    );
    let topic = format!("c/iot/P1_A1/{GATEWAY_ID}/presence");
    let args = [
        "--cafile", &ca, "--cert", &cert, "--key", &key, "-i", GATEWAY_ID, "-t", &topic, "-m",
        "up", "-r",
    ];
    let (code, out) = mosquitto_run("mosquitto_pub", tls, &args).await;
    assert_eq!(code, 0, "gateway over TLS: {out}");
    let token = pki.token(3600);
    let args = [
        "--cafile",
        &ca,
        "-i",
        MOBILE_ID,
        "-u",
        "m",
        "-P",
        &token,
        "-t",
        "c/iot/P1_A1/+/presence",
        "-C",
        "1",
        "-W",
        "5",
    ];
    let (code, out) = mosquitto_run("mosquitto_sub", tls, &args).await;
    assert_eq!((code, out.trim()), (0, "up"), "mobile with a JWT over TLS");
    std::fs::write(&policy_path, "allow nobody frobnicate\n").expect("break the policy");
    let pid = child.id().expect("the server runs").to_string();
    // The shell's built-in `kill`: no procps needed.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -HUP {pid}")])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "send SIGHUP");
    let rejected = line_with(&mut lines, "policy reload (SIGHUP) rejected").await;
    assert!(
        rejected.contains("broker.policy:1:"),
        "file:line in {rejected}"
    );
    let (code, out) = mosquitto_run("mosquitto_sub", tls, &args).await;
    assert_eq!((code, out.trim()), (0, "up"), "the old policy still serves");
    child.kill().await.expect("stop the server");
}
