//! The broker over TLS with real clients: `mosquitto_pub`/`mosquitto_sub` with a client
//! certificate from a development PKI generated here, and with a JWT password; a
//! certificate from another CA, a revoked one, one from the services CA shaped like a
//! gateway's, or none where one is required is refused.
//!
//! Also the shared fixture of the transport tests ([`SecureBroker`]): a broker on
//! 127.0.0.1 port 0 with tcp, tls (optional and required client certificates), ws and wss
//! listeners, the [`IdentityAuthenticator`] with the anchors of xfinity's trust labels
//! (`devices` CA + CRL, `services` CA + CRL, `idp` JWKS), and the policy of the broker
//! harness (xfinity plus an anonymous `dev` identity).

use crate::broker_harness::{mosquitto, test_config, test_policy};
use arc_swap::ArcSwap;
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair, SanType};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use topicguard::broker::auth::IdentityAuthenticator;
use topicguard::broker::listener::tls::{self, ClientCertificates};
use topicguard::broker::listener::{Listener, Protocol, serve_listeners};
use topicguard::broker::state::Broker;
use topicguard::broker::{BrokerConfig, SharedEngine};
use topicguard::devcred::{self as dev, DevAlg, DevCa, DevSigner, GatewaySpec};
use topicguard::identity::anchors::TrustFiles;
use topicguard::identity::select::CredentialConfig;
use topicguard::identity::x509::TrustStore;
use topicguard::{Engine, Policy};

pub const GATEWAY_ID: &str = "iot:P1_A1:adp:xhf:550e8400-e29b-41d4-a716-446655440000";
pub const MOBILE_ID: &str = "xfi:P1_A1:clt:J1";

/// A fresh directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("topicguard-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

/// Development credentials written to a directory: the devices CA + CRL (`ca.pem`,
/// `crl.pem`, revoking serial 9) with a server certificate for 127.0.0.1, a gateway
/// certificate (serial 2) and a revoked gateway (serial 9); the services CA + CRL
/// (`services-ca.pem`, `services-crl.pem`) with a service certificate and a gateway-shaped
/// certificate (`sibling`); a gateway from a CA nobody trusts (`stranger`); and a JWT
/// signer whose JWKS is `jwks.json` (the `idp` label).
pub struct Pki {
    pub dir: PathBuf,
    pub signer: DevSigner,
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write a PKI file");
}

fn server_params(now: u64) -> CertificateParams {
    let mut params = dev::leaf_params(5, now);
    params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

fn issue(ca: &DevCa, dir: &Path, name: &str, params: &CertificateParams) {
    let (cert, key): (_, KeyPair) = ca.issue(params).expect("issue a certificate");
    write(dir, &format!("{name}.pem"), &cert.pem());
    write(dir, &format!("{name}-key.pem"), &key.serialize_pem());
}

impl Pki {
    pub fn generate(name: &str) -> Pki {
        let dir = temp_dir(name);
        let now = dev::unix_now();
        let ca = DevCa::new("test CA", now).expect("CA");
        let other = DevCa::new("other CA", now).expect("other CA");
        write(&dir, "ca.pem", &ca.cert.pem());
        let crl = ca.crl(now - 60, now + 86_400, &[9]).expect("CRL");
        write(&dir, "crl.pem", &crl.pem().expect("CRL PEM"));
        let spec = GatewaySpec::default();
        issue(&ca, &dir, "server", &server_params(now));
        issue(&ca, &dir, "gateway", &dev::gateway_params(&spec, 2, now));
        issue(&ca, &dir, "revoked", &dev::gateway_params(&spec, 9, now));
        issue(
            &other,
            &dir,
            "stranger",
            &dev::gateway_params(&spec, 2, now),
        );
        let services = DevCa::new("test services CA", now).expect("services CA");
        write(&dir, "services-ca.pem", &services.cert.pem());
        let services_crl = services.crl(now - 60, now + 86_400, &[]).expect("CRL");
        write(
            &dir,
            "services-crl.pem",
            &services_crl.pem().expect("CRL PEM"),
        );
        issue(
            &services,
            &dir,
            "service",
            &dev::service_params("lights", 3, now),
        );
        issue(
            &services,
            &dir,
            "sibling",
            &dev::gateway_params(&spec, 4, now),
        );
        let signer = DevSigner::generate(DevAlg::ES256, "k1").expect("signer");
        let jwks = serde_json::to_string(&dev::jwks(&[&signer])).expect("JWKS");
        write(&dir, "jwks.json", &jwks);
        Pki { dir, signer }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A mobile JWT for P1/A1/J1 expiring `exp_in` seconds from now (negative: expired).
    pub fn token(&self, exp_in: i64) -> String {
        let now = dev::unix_now();
        let mut claims = dev::default_claims(now, "J1");
        claims["pid"] = Value::from("P1");
        claims["aid"] = Value::from("A1");
        claims["exp"] = Value::from(now.saturating_add_signed(exp_in));
        self.signer.sign(&claims).expect("sign")
    }

    /// The anchor files of xfinity's trust labels.
    pub fn trust_files(&self) -> TrustFiles {
        let mut trust = TrustFiles::default();
        let file = |name: &str| self.dir.join(name);
        for (label, name) in [
            ("devices", "ca.pem"),
            ("services", "services-ca.pem"),
            ("idp", "jwks.json"),
        ] {
            trust.add_trust(label, &file(name)).expect("an anchor file");
        }
        trust.add_crl("devices", &file("crl.pem")).expect("CRL");
        trust
            .add_crl("services", &file("services-crl.pem"))
            .expect("CRL");
        trust
    }

    fn credentials(&self) -> (CredentialConfig, Vec<Arc<TrustStore>>) {
        let config = self.trust_files().load().expect("the anchors load");
        let stores = config.certificate_stores();
        (config, stores)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A broker with every kind of listener.
pub struct SecureBroker {
    pub tcp: SocketAddr,
    pub tls: SocketAddr,
    pub tls_required: SocketAddr,
    pub ws: SocketAddr,
    pub wss: SocketAddr,
    pub engines: SharedEngine,
    pub broker: Arc<Broker>,
    pub authenticator: Arc<IdentityAuthenticator>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

async fn bind(protocol: Protocol) -> (Listener, SocketAddr) {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = socket.local_addr().expect("address");
    (Listener { socket, protocol }, addr)
}

impl SecureBroker {
    pub async fn start(pki: &Pki) -> SecureBroker {
        SecureBroker::with(pki, test_policy(), test_config()).await
    }

    pub async fn with(pki: &Pki, policy: Policy, config: BrokerConfig) -> SecureBroker {
        let engine = Engine::new(&policy.checked).expect("compile");
        let engines: SharedEngine = Arc::new(ArcSwap::from_pointee(engine));
        let (credentials, trust) = pki.credentials();
        let authenticator = Arc::new(
            IdentityAuthenticator::new(credentials, engines.clone()).expect("authenticator"),
        );
        let (cert, key) = (pki.dir.join("server.pem"), pki.dir.join("server-key.pem"));
        let acceptor = |mode| tls::acceptor(&cert, &key, mode, trust.clone()).expect("TLS");
        let (tcp, tcp_addr) = bind(Protocol::Tcp).await;
        let (tls, tls_addr) = bind(Protocol::Tls(acceptor(ClientCertificates::Optional))).await;
        let (req, req_addr) = bind(Protocol::Tls(acceptor(ClientCertificates::Required))).await;
        let (ws, ws_addr) = bind(Protocol::Ws).await;
        let (wss, wss_addr) = bind(Protocol::Wss(acceptor(ClientCertificates::Optional))).await;
        let broker = Arc::new(Broker::new(engines.clone(), config, authenticator.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = vec![tcp, tls, req, ws, wss];
        let task = tokio::spawn(serve_listeners(listeners, broker.clone(), async move {
            let _ = stopped.await;
        }));
        SecureBroker {
            tcp: tcp_addr,
            tls: tls_addr,
            tls_required: req_addr,
            ws: ws_addr,
            wss: wss_addr,
            engines,
            broker,
            authenticator,
            stop: Some(stop),
            task,
        }
    }

    /// Shuts down and waits (bounded) for the listeners to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("serve_listeners did not return after shutdown")
            .expect("serve_listeners panicked");
    }
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs a mosquitto client against `addr` (bounded); returns (exit code, stdout+stderr).
pub async fn mosquitto_run(binary: &str, addr: SocketAddr, args: &[&str]) -> (i32, String) {
    let child = tokio::process::Command::new(mosquitto(binary))
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {binary}: {e}"));
    let output = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{binary} did not finish within 15 s"))
        .expect("wait for the client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

fn presence_topic() -> String {
    format!("c/iot/P1_A1/{GATEWAY_ID}/presence")
}

/// The gateway publishes its retained presence over TLS with its certificate.
async fn publish_presence(pki: &Pki, addr: SocketAddr, cert: &str, payload: &str) -> (i32, String) {
    let (ca, cert_file, key) = (
        pki.path("ca.pem"),
        pki.path(&format!("{cert}.pem")),
        pki.path(&format!("{cert}-key.pem")),
    );
    let topic = presence_topic();
    let args = [
        "--cafile", &ca, "--cert", &cert_file, "--key", &key, "-i", GATEWAY_ID, "-t", &topic, "-m",
        payload, "-r", "-q", "1",
    ];
    mosquitto_run("mosquitto_pub", addr, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_certificate_and_a_mobile_jwt_work_over_tls_with_mosquitto() {
    let pki = Pki::generate("tls-ok");
    let broker = SecureBroker::start(&pki).await;
    for addr in [broker.tls, broker.tls_required] {
        let (code, out) = publish_presence(&pki, addr, "gateway", "online").await;
        assert_eq!(code, 0, "gateway publish over TLS: {out}");
    }
    for version in ["tlsv1.2", "tlsv1.3"] {
        let (ca, cert, key) = (
            pki.path("ca.pem"),
            pki.path("gateway.pem"),
            pki.path("gateway-key.pem"),
        );
        let args = [
            "--tls-version",
            version,
            "--cafile",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "-i",
            GATEWAY_ID,
            "-t",
            &presence_topic(),
            "-m",
            "x",
        ];
        let (code, out) = mosquitto_run("mosquitto_pub", broker.tls, &args).await;
        assert_eq!(code, 0, "{version}: {out}");
    }
    let token = pki.token(3600);
    let ca = pki.path("ca.pem");
    for version in ["mqttv311", "mqttv5"] {
        let args = [
            "-V",
            version,
            "--cafile",
            &ca,
            "-i",
            MOBILE_ID,
            "-u",
            "mobile",
            "-P",
            &token,
            "-t",
            "c/iot/P1_A1/+/presence",
            "-v",
            "-C",
            "1",
            "-W",
            "5",
        ];
        let (code, out) = mosquitto_run("mosquitto_sub", broker.tls, &args).await;
        assert_eq!(code, 0, "mobile subscribe with a JWT ({version}): {out}");
        assert_eq!(out.trim(), format!("{} online", presence_topic()));
    }
    // The mobile's own publish space is allowed; the gateway's is not (5.0 PUBACK 0x87).
    let mine = format!("c/xfi/P1_A1/lights/{MOBILE_ID}/r1");
    let args = [
        "-V", "mqttv5", "--cafile", &ca, "-i", MOBILE_ID, "-u", "m", "-P", &token, "-t", &mine,
        "-m", "on", "-q", "1",
    ];
    assert_eq!(mosquitto_run("mosquitto_pub", broker.tls, &args).await.0, 0);
    let theirs = presence_topic();
    let args = [
        "-V", "mqttv5", "--cafile", &ca, "-i", MOBILE_ID, "-u", "m", "-P", &token, "-t", &theirs,
        "-m", "x", "-q", "1",
    ];
    let (_, out) = mosquitto_run("mosquitto_pub", broker.tls, &args).await;
    assert!(
        out.contains("Not authorized"),
        "a mobile must not publish the gateway's presence: {out}"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_revoked_sibling_or_missing_certificate_is_refused_and_the_broker_goes_on() {
    let pki = Pki::generate("tls-bad");
    let broker = SecureBroker::start(&pki).await;
    for cert in ["stranger", "revoked", "sibling"] {
        let (code, out) = publish_presence(&pki, broker.tls, cert, "x").await;
        assert_ne!(code, 0, "the {cert} certificate must be refused: {out}");
    }
    // The sibling passes the TLS handshake (the services CA is configured) but binds as no
    // identity: `gateway` trusts only the devices CA, and it is not a service certificate.
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("sibling.pem"),
        pki.path("sibling-key.pem"),
    );
    let args = [
        "-V", "mqttv5", "--cafile", &ca, "--cert", &cert, "--key", &key, "-i", GATEWAY_ID, "-t",
        "x", "-m", "x",
    ];
    let (code, out) = mosquitto_run("mosquitto_pub", broker.tls, &args).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.to_lowercase().contains("not authori"),
        "CONNACK 0x87: {out}"
    );
    let (service, service_key) = (pki.path("service.pem"), pki.path("service-key.pem"));
    let args = [
        "--cafile",
        &ca,
        "--cert",
        &service,
        "--key",
        &service_key,
        "-i",
        "svc:lights:1",
        "-t",
        "c/iot/P1_A1/iot:x/lights/r1",
        "-m",
        "x",
    ];
    let (code, out) = mosquitto_run("mosquitto_pub", broker.tls, &args).await;
    assert_eq!(code, 0, "the service certificate binds as `service`: {out}");
    let ca = pki.path("ca.pem");
    let topic = presence_topic();
    let args = ["--cafile", &ca, "-i", "dev-1", "-t", "dev/x", "-m", "x"];
    let (code, out) = mosquitto_run("mosquitto_pub", broker.tls_required, &args).await;
    assert_ne!(
        code, 0,
        "no certificate on a listener that requires one: {out}"
    );
    // Without a certificate the optional listener falls back to the anonymous `dev`
    // identity, which may not publish the gateway's presence.
    let (code, _) = mosquitto_run("mosquitto_pub", broker.tls, &args).await;
    assert_eq!(code, 0, "anonymous dev identity over TLS");
    let args = [
        "-V", "mqttv5", "--cafile", &ca, "-i", "dev-1", "-t", &topic, "-m", "x", "-q", "1",
    ];
    let (_, out) = mosquitto_run("mosquitto_pub", broker.tls, &args).await;
    assert!(
        out.contains("Not authorized"),
        "dev may not publish presence: {out}"
    );
    let (code, out) = publish_presence(&pki, broker.tls, "gateway", "still-up").await;
    assert_eq!(code, 0, "the broker still serves good clients: {out}");
    broker.stop().await;
}

/// Runs `topicguard ARGS` to completion (bounded).
fn topicguard_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(args)
        .output()
        .expect("the topicguard binary runs")
}

/// Waits (bounded) until `port` on 127.0.0.1 accepts a TCP connection.
async fn accepts(port: u16) -> bool {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// `topicguard dev pki --policy` writes a broker certificate signed by a broker CA, so
/// `topicguard serve` takes it as is and mosquitto verifies it with `--cafile
/// server-ca.pem`, by name and by IP; the gateway's certificate binds through the `devices`
/// label's CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_pki_server_certificate_serves_tls_to_mosquitto() {
    let dir = temp_dir("dev-pki-serve");
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/xfinity.policy");
    let out = dir.display().to_string();
    let made = topicguard_cli(&["dev", "pki", "--policy", policy, "--out", &out]);
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    let file = |name: &str| dir.join(name).display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("tls://127.0.0.1:{port}");
    let devices = |name: &str| format!("devices={}", file(name));
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(["serve", "--policy", policy, "--listen", &listen])
        .args(["--trust", &devices("ca-devices.pem")])
        .args(["--trust-crl", &devices("crl-devices.pem")])
        .args([
            "--cert",
            &file("server.pem"),
            "--key",
            &file("server-key.pem"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start topicguard serve");
    assert!(accepts(port).await, "serve did not listen on {listen}");
    let (ca, cert, key) = (
        file("server-ca.pem"),
        file("gateway.pem"),
        file("gateway-key.pem"),
    );
    let filter = "$aws/things/P1_A1_light/shadow/update/delta";
    for host in ["localhost", "127.0.0.1"] {
        let mut sub = tokio::process::Command::new(mosquitto("mosquitto_sub"));
        sub.args(["-h", host, "-p", &port.to_string(), "--cafile", &ca])
            .args(["--cert", &cert, "--key", &key, "-i", GATEWAY_ID])
            .args(["-t", filter, "-q", "1", "-E", "-d"])
            .kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(15), sub.output())
            .await
            .expect("mosquitto_sub finished within 15 s")
            .expect("mosquitto_sub runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(0), "-h {host}: {text}");
        assert!(text.contains("CONNACK"), "-h {host}: {text}");
        assert!(text.contains("SUBACK"), "-h {host}: {text}");
    }
    serve.start_kill().ok();
    let _ = serve.wait().await;
    std::fs::remove_dir_all(&dir).ok();
}
