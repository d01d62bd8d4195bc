//! `topicguard demo`: the whole mobile → service → gateway flow on one machine, printed step by step with
//! the policy decision and rule behind each step.
//!
//! [`prepare`] writes development-only credentials to a directory, following the policy's
//! trust labels: a CA and its empty CRL per label of the certificate identities (gateways
//! and services are issued by different CAs under the shipped policy), gateway certificates
//! for two accounts, a service certificate, a JWT for a mobile app and its label's JWKS, and
//! a broker certificate for 127.0.0.1 from a CA of its own. [`run`] then starts `topicguard
//! serve` as a child process with each label mapped to its files (TCP for the app's JWT, TLS
//! with client certificates for the gateways and the service) and drives the scenario with
//! the runtimes. Every expected
//! message is awaited with a bound; a step that does not happen fails the demo. This module
//! must never be used with real credentials, and never decides anything itself: the
//! decisions it prints are the engine's, the outcomes are the broker's.

use super::client::{Client, ClientOptions, Event};
use super::devices::Kind;
use super::gateway::{self, GatewayConfig};
use super::service::{self, Service, ServiceConfig};
use super::tls::TlsClient;
use super::{Backoff, Log};
use crate::check::{Checked, IdentityDef};
use crate::compile::CompileError;
use crate::decide::{Engine, Request, Verdict};
use crate::devcred::DevError;
use crate::devcred::policy::{self as dev_policy, PolicyCas};
use crate::devcred::{self as dev, DevAlg, DevCa, DevSigner, GatewaySpec};
use crate::identity::Identity;
use crate::mqtt::codec::QoS;
use crate::policy::{LoadError, Policy};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// How long any expected step may take.
const STEP: Duration = Duration::from_secs(10);

/// One gateway of the demo.
pub struct DemoGateway {
    /// The gateway's product id.
    pub pid: &'static str,
    /// The gateway's account id.
    pub aid: &'static str,
    /// The gateway's installation id.
    pub iid: &'static str,
}

/// The two accounts' gateways.
pub const GATEWAYS: [DemoGateway; 2] = [
    DemoGateway {
        pid: "P1",
        aid: "A1",
        iid: "0f8fad5b-d9cb-469f-a165-70867728950e",
    },
    DemoGateway {
        pid: "P2",
        aid: "B7",
        iid: "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    },
];

/// The mobile app's claims.
pub const MOBILE: (&str, &str, &str) = ("P1", "A1", "J1");

/// Why the demo stopped. The scenario's own steps (private helpers here) report in words,
/// as [`DemoError::Step`]; setting up reports what failed and where.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The policy does not load.
    #[error("policy {}: {error}", path.display())]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// Why it does not load.
        error: LoadError,
    },
    /// The policy does not compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The policy lacks an identity the demo plays.
    #[error("the demo needs the policy's `{0}` identity")]
    MissingIdentity(String),
    /// The credentials directory cannot be created.
    #[error("{}: {cause}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// A development credential cannot be made or written.
    #[error(transparent)]
    Credentials(#[from] DevError),
    /// The broker cannot start (no free port, the executable does not run or never listens).
    #[error("{0}")]
    Start(String),
    /// A step of the scenario did not happen, in the narrator's words.
    #[error("{0}")]
    Step(String),
}

impl DemoError {
    /// Whether the demo could not start (the policy, the credentials or the broker), as
    /// opposed to a step of the scenario that did not happen.
    pub fn is_setup(&self) -> bool {
        !matches!(self, DemoError::Step(_))
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), DevError> {
    dev::write_file(dir, name, text).map(|_| ())
}

fn identity<'c>(checked: &'c Checked, name: &str) -> Result<&'c IdentityDef, DemoError> {
    checked
        .identity(name)
        .map(|(_, def)| def)
        .ok_or_else(|| DemoError::MissingIdentity(name.to_string()))
}

fn attrs_with(
    def: &IdentityDef,
    overrides: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, DevError> {
    let overrides = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    dev_policy::sample_attributes(def, &overrides)
}

/// Writes the development credentials for `checked` into `dir`; returns the `serve` flags
/// that map each trust label (or the default anchors) to its files.
pub fn prepare(dir: &Path, checked: &Checked) -> Result<Vec<String>, DemoError> {
    std::fs::create_dir_all(dir).map_err(|cause| DemoError::Directory {
        path: dir.to_path_buf(),
        cause,
    })?;
    let now = dev::unix_now();
    let cas = PolicyCas::new(checked, now)?;
    for (name, text) in cas.files()? {
        write(dir, &name, &text)?;
    }
    let broker_ca = DevCa::new("topicguard demo broker CA (development only)", now)?;
    write(dir, "server-ca.pem", &broker_ca.cert.pem())?;
    let server = dev::server_params(2, now)?;
    let (cert, key) = broker_ca.issue(&server)?;
    write(dir, "server.pem", &cert.pem())?;
    write(dir, "server-key.pem", &key.serialize_pem())?;
    let gateway = identity(checked, "gateway")?;
    let spec = GatewaySpec::default();
    for gw in &GATEWAYS {
        let attrs = attrs_with(
            gateway,
            &[
                ("pid", gw.pid),
                ("aid", gw.aid),
                ("iid", gw.iid),
                ("model", &spec.model),
                ("serial", &spec.serial),
                ("mac", &spec.mac),
            ],
        )?;
        let leaf = cas.issue(gateway, &attrs)?;
        write(dir, &format!("gateway-{}.pem", gw.aid), &leaf.chain_pem)?;
        write(dir, &format!("gateway-{}-key.pem", gw.aid), &leaf.key_pem)?;
    }
    let service = identity(checked, "service")?;
    let leaf = cas.issue(service, &attrs_with(service, &[("sid", "lights")])?)?;
    write(dir, "service.pem", &leaf.chain_pem)?;
    write(dir, "service-key.pem", &leaf.key_pem)?;
    let mobile = identity(checked, "mobile")?;
    let attrs = attrs_with(
        mobile,
        &[("pid", MOBILE.0), ("aid", MOBILE.1), ("jti", MOBILE.2)],
    )?;
    let claims = dev_policy::jwt_claims(mobile, &attrs, now)?;
    let signer = DevSigner::generate(DevAlg::ES256, "demo-key")?;
    write(dir, "token.jwt", &signer.sign(&claims)?)?;
    let jwks = dev_policy::jwks_file(mobile.trust_label());
    write(dir, &jwks, &dev::jwks(&[&signer]).to_string())?;
    let file = |name: String| dir.join(name).display().to_string();
    let mut flags = Vec::new();
    for label in cas.labels() {
        let (ca, crl) = (
            file(dev_policy::ca_file(label)),
            file(dev_policy::crl_file(label)),
        );
        match label {
            Some(label) => flags.extend([
                "--trust".to_string(),
                format!("{label}={ca}"),
                "--trust-crl".to_string(),
                format!("{label}={crl}"),
            ]),
            None => flags.extend(["--ca".to_string(), ca, "--crl".to_string(), crl]),
        }
    }
    match mobile.trust_label() {
        Some(label) => flags.extend(["--trust".to_string(), format!("{label}={}", file(jwks))]),
        None => flags.extend(["--jwks".to_string(), file(jwks)]),
    }
    Ok(flags)
}

/// Prints each step with the engine's decision for it.
struct Narrator {
    policy: Policy,
    engine: Engine,
    log: Log,
}

impl Narrator {
    fn step(&self, text: &str) {
        (self.log)(format!("\n== {text}"));
    }

    fn say(&self, text: String) {
        (self.log)(format!("   {text}"));
    }

    /// Prints the decision for `who` asking `request`; returns whether it is allowed.
    fn decision(&self, who: &Identity, client_id: &str, request: Request<'_>, what: &str) -> bool {
        let session = self.engine.bind(who, client_id);
        let decision = self.engine.decide(&session, request);
        let verdict = match decision.verdict {
            Verdict::Allowed => "ALLOWED",
            Verdict::ExplicitDeny => "EXPLICITLY DENIED",
            Verdict::ImplicitDeny => "DENIED (no rule allows it)",
        };
        let rule = decision.rule.map(|id| {
            let rule = self.policy.checked.rule(id);
            format!(" by {}: {}", rule.loc, rule.text())
        });
        self.say(format!(
            "policy: {what} -> {verdict}{}",
            rule.unwrap_or_default()
        ));
        decision.is_allowed()
    }
}

/// Waits for an event matching `want`, bounded.
async fn wait_for(
    events: &mut UnboundedReceiver<Event>,
    what: &str,
    want: impl Fn(&Event) -> bool,
) -> Result<Event, String> {
    let found = tokio::time::timeout(STEP, async {
        while let Some(event) = events.recv().await {
            if want(&event) {
                return Some(event);
            }
        }
        None
    });
    found
        .await
        .ok()
        .flatten()
        .ok_or_else(|| format!("the demo expected {what} within {STEP:?}, and it did not happen"))
}

fn message_on(event: &Event, topic: &str) -> Option<Value> {
    match event {
        Event::Message {
            topic: t, payload, ..
        } if t == topic => serde_json::from_slice(payload).ok(),
        _ => None,
    }
}

/// A free 127.0.0.1 port (bound then released).
fn free_port() -> Result<u16, String> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
    Ok(socket.local_addr().map_err(err)?.port())
}

/// Starts `exe serve` and waits until both ports accept.
async fn start_broker(
    exe: &Path,
    policy: &Path,
    dir: &Path,
    anchors: &[String],
    ports: (u16, u16),
) -> Result<tokio::process::Child, String> {
    let (tcp, tls) = ports;
    let log = std::fs::File::create(dir.join("broker.log")).map_err(err)?;
    let child = tokio::process::Command::new(exe)
        .arg("serve")
        .arg("--policy")
        .arg(policy)
        .args([
            "--listen",
            &format!("tcp://127.0.0.1:{tcp}"),
            "--listen",
            &format!("tls://127.0.0.1:{tls}"),
        ])
        .args(anchors)
        .arg("--cert")
        .arg(dir.join("server.pem"))
        .arg("--key")
        .arg(dir.join("server-key.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {} serve: {e}", exe.display()))?;
    for _ in 0..100 {
        let up = tokio::net::TcpStream::connect(("127.0.0.1", tcp))
            .await
            .is_ok()
            && tokio::net::TcpStream::connect(("127.0.0.1", tls))
                .await
                .is_ok();
        if up {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "the broker did not start; see {}",
        dir.join("broker.log").display()
    ))
}

/// Where things are.
pub struct DemoSetup {
    /// The `topicguard` executable to run `serve` with.
    pub exe: PathBuf,
    /// The policy file the broker enforces and the narration decides with.
    pub policy: PathBuf,
    /// Where the development credentials are written.
    pub dir: PathBuf,
}

fn fast() -> Backoff {
    Backoff {
        min: Duration::from_millis(100),
        max: Duration::from_secs(1),
        max_attempts: Some(10),
    }
}

/// Runs the whole scenario; `Err` says what could not start or which step did not happen.
pub async fn run(setup: &DemoSetup, log: Log) -> Result<(), DemoError> {
    let policy = Policy::load(&setup.policy).map_err(|error| DemoError::Policy {
        path: setup.policy.clone(),
        error,
    })?;
    let engine = Engine::new(&policy.checked)?;
    let narrator = Narrator {
        policy,
        engine,
        log: log.clone(),
    };
    narrator.step("development credentials (development only!)");
    let anchors = prepare(&setup.dir, &narrator.policy.checked)?;
    narrator.say(format!("a CA and CRL per trust label, broker certificate, 2 gateway certificates, service certificate, mobile JWT + JWKS in {}", setup.dir.display()));
    narrator.say(format!(
        "each identity verifies only with its own anchors: {}",
        anchors.join(" ")
    ));
    let (tcp, tls_port) = (
        free_port().map_err(DemoError::Start)?,
        free_port().map_err(DemoError::Start)?,
    );
    let mut broker = start_broker(
        &setup.exe,
        &setup.policy,
        &setup.dir,
        &anchors,
        (tcp, tls_port),
    )
    .await
    .map_err(DemoError::Start)?;
    narrator.say(format!("broker: tcp://127.0.0.1:{tcp} (JWT), tls://127.0.0.1:{tls_port} (client certificates), policy {}", setup.policy.display()));
    let result = scenario(&narrator, &setup.dir, tcp, tls_port).await;
    let _ = broker.kill().await;
    result.map_err(DemoError::Step)
}

fn tls_for(dir: &Path, name: &str) -> Result<TlsClient, String> {
    TlsClient::new(
        &dir.join("server-ca.pem"),
        Some((
            &dir.join(format!("{name}.pem")),
            &dir.join(format!("{name}-key.pem")),
        )),
    )
    .map_err(err)
}

fn gateway_config(dir: &Path, tls_port: u16, gw: &DemoGateway) -> Result<GatewayConfig, String> {
    Ok(GatewayConfig {
        broker: format!("127.0.0.1:{tls_port}"),
        pid: gw.pid.into(),
        aid: gw.aid.into(),
        iid: gw.iid.into(),
        username: None,
        password: None,
        tls: Some(tls_for(dir, &format!("gateway-{}", gw.aid))?),
        devices: Kind::all().to_vec(),
        service: "lights".into(),
        backoff: fast(),
    })
}

fn gateway_identity(gw: &DemoGateway) -> Identity {
    let spec = GatewaySpec::default();
    Identity::asserted(
        "gateway",
        [
            ("pid", gw.pid),
            ("aid", gw.aid),
            ("model", spec.model.as_str()),
            ("serial", spec.serial.as_str()),
            ("uid_aid", gw.aid),
            ("iid", gw.iid),
            ("mac", spec.mac.as_str()),
        ],
    )
}

/// The mobile app's connection: JWT over TCP, persistent session.
fn mobile_client(
    dir: &Path,
    tcp: u16,
    clean_start: bool,
) -> Result<(Client, UnboundedReceiver<Event>), String> {
    let token = std::fs::read_to_string(dir.join("token.jwt")).map_err(err)?;
    let mut options = ClientOptions::new(format!("127.0.0.1:{tcp}"), mobile_id());
    options.password = Some(Bytes::from(token.trim().to_string()));
    options.clean_start = clean_start;
    options.session_expiry = 300;
    options.backoff = fast();
    Ok(Client::start(options))
}

fn mobile_id() -> String {
    format!("xfi:{}_{}:clt:{}", MOBILE.0, MOBILE.1, MOBILE.2)
}

fn mobile_identity() -> Identity {
    Identity::asserted(
        "mobile",
        [("pid", MOBILE.0), ("aid", MOBILE.1), ("jti", MOBILE.2)],
    )
}

async fn scenario(n: &Narrator, dir: &Path, tcp: u16, tls_port: u16) -> Result<(), String> {
    let app = mobile_identity();
    let app_id = mobile_id();
    let light = "$aws/things/P1_A1_light/shadow";
    let thermostat = "$aws/things/P1_A1_thermostat/shadow";
    let gw1_id = format!("iot:P1_A1:adp:xhf:{}", GATEWAYS[0].iid);
    let presence = format!("c/iot/P1_A1/{gw1_id}/presence");

    n.step("1. the service, the mobile app and two gateways of two accounts connect");
    n.decision(
        &Identity::asserted("service", [("sid", "lights")]),
        "svc:lights:1",
        Request::Connect,
        "service svc:lights:1 connects (TLS + service certificate)",
    );
    let svc = service::start(
        ServiceConfig {
            broker: format!("127.0.0.1:{tls_port}"),
            sid: "lights".into(),
            instance: "1".into(),
            username: None,
            password: None,
            tls: Some(tls_for(dir, "service")?),
            backoff: fast(),
        },
        n.log.clone(),
    );
    n.decision(
        &app,
        &app_id,
        Request::Connect,
        &format!("mobile {app_id} connects (JWT)"),
    );
    let (mobile, mut events) = mobile_client(dir, tcp, true)?;
    let responses = format!("c/xfi/P1_A1/{app_id}/lights/+/success");
    let filters = [
        "c/iot/P1_A1/+/presence".to_string(),
        format!("{light}/update/documents"),
        format!("{light}/update/accepted"),
        format!("{light}/update/rejected"),
        format!("{thermostat}/update/documents"),
        responses.clone(),
    ];
    for filter in &filters {
        n.decision(
            &app,
            &app_id,
            Request::subscribe(filter),
            &format!("mobile subscribes {filter}"),
        );
        mobile.subscribe(filter, QoS::AtLeastOnce);
    }
    for _ in &filters {
        wait_for(&mut events, "the SUBACKs", |e| {
            matches!(e, Event::Subscribed { .. })
        })
        .await?;
    }
    let mut gateways = Vec::new();
    for gw in &GATEWAYS {
        let id = format!("iot:{}_{}:adp:xhf:{}", gw.pid, gw.aid, gw.iid);
        n.decision(
            &gateway_identity(gw),
            &id,
            Request::Connect,
            &format!("gateway {id} connects (TLS + device certificate)"),
        );
        gateways.push(gateway::start(
            gateway_config(dir, tls_port, gw)?,
            n.log.clone(),
        ));
    }
    // The service's SUBSCRIBE races the mobile's request of step 2 (under load its TLS
    // handshake can finish last): a request routed before the grant reaches no one.
    if !svc.subscribed(STEP).await {
        return Err(format!(
            "the demo expected the service's subscription within {STEP:?}, and it did not happen"
        ));
    }
    n.say("service svc:lights:1 subscribed to the requests addressed to it".into());
    let seen = wait_for(&mut events, "gateway 1's presence", |e| {
        message_on(e, &presence).is_some()
    })
    .await?;
    n.say(format!(
        "mobile received {presence}: {}",
        message_on(&seen, &presence).unwrap_or_default()
    ));

    n.step("2. the app asks the lights service; the service answers success");
    let request = format!("c/xfi/P1_A1/lights/{app_id}/r1");
    n.decision(
        &app,
        &app_id,
        Request::publish(&request),
        &format!("mobile publishes {request}"),
    );
    mobile.publish(&request, r#"{"scene":"evening"}"#, QoS::AtLeastOnce, false);
    let answer = format!("c/xfi/P1_A1/{app_id}/lights/r1/success");
    wait_for(&mut events, "the service's success response", |e| {
        message_on(e, &answer).is_some()
    })
    .await?;
    n.say(format!("mobile received {answer}"));

    n.step("2b. the lights service asks gateway 1 for its status; the gateway answers success");
    service_asks_gateway(n, &svc, &gw1_id).await?;

    n.step("3. turn the light on (desired state); the gateway applies the delta and reports");
    shadow_step(
        n,
        &mobile,
        &mut events,
        light,
        json!({"on": true}),
        None,
        "/on",
    )
    .await?;

    n.step("4. thermostat set point 23");
    shadow_step(
        n,
        &mobile,
        &mut events,
        thermostat,
        json!({"setpoint": 23}),
        None,
        "/setpoint",
    )
    .await?;

    n.step("5. a stale update (version 1) is rejected with 409");
    let update = format!("{light}/update");
    n.decision(
        &app,
        &app_id,
        Request::publish(&update),
        &format!("mobile publishes {update} with version 1"),
    );
    mobile.publish(
        &update,
        json!({"state": {"desired": {"on": false}}, "version": 1}).to_string(),
        QoS::AtLeastOnce,
        false,
    );
    let rejected = format!("{light}/update/rejected");
    let event = wait_for(&mut events, "the 409 rejection", |e| {
        message_on(e, &rejected).is_some()
    })
    .await?;
    let doc = message_on(&event, &rejected).unwrap_or_default();
    n.say(format!(
        "mobile received {rejected}: code {} \"{}\"",
        doc["code"],
        doc["message"].as_str().unwrap_or("")
    ));
    if doc["code"] != json!(409) {
        return Err(format!("expected a 409, got {doc}"));
    }

    n.step("6. cross-account attempts are denied");
    cross_account(n, &mobile, &mut events).await?;

    n.step("7. gateway 1 is killed: its last will is delivered");
    gateways.remove(0).kill();
    let will = wait_for(&mut events, "the last will", |e| {
        message_on(e, &presence) == Some(json!({"connected": false}))
    })
    .await?;
    n.decision(
        &app,
        &app_id,
        Request::receive(&presence),
        "mobile receives the will",
    );
    n.say(format!(
        "mobile received {presence}: {}",
        message_on(&will, &presence).unwrap_or_default()
    ));

    n.step("8. the app goes offline; gateway 1 comes back and reports while the app is away");
    mobile.disconnect().await;
    drop(events);
    let back = gateway::start(gateway_config(dir, tls_port, &GATEWAYS[0])?, n.log.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;

    n.step(
        "9. the app reconnects to its persistent session and receives the QoS 1 messages it missed",
    );
    let (mobile, mut events) = mobile_client(dir, tcp, false)?;
    let missed = wait_for(&mut events, "the missed presence", |e| {
        message_on(e, &presence) == Some(json!({"connected": true}))
    })
    .await?;
    n.say(format!(
        "mobile received (missed while offline) {presence}: {}",
        message_on(&missed, &presence).unwrap_or_default()
    ));
    let docs = format!("{light}/update/documents");
    wait_for(&mut events, "the missed shadow documents", |e| {
        message_on(e, &docs).is_some()
    })
    .await?;
    n.say(format!("mobile received (missed while offline) {docs}"));

    n.step("done: every step happened as the policy said");
    mobile.disconnect().await;
    back.stop().await;
    for gw in gateways {
        gw.stop().await;
    }
    svc.stop().await;
    Ok(())
}

/// The service sends a `status` request to gateway 1 and awaits its `success` answer.
async fn service_asks_gateway(n: &Narrator, svc: &Service, gw1_id: &str) -> Result<(), String> {
    let request = format!("c/iot/P1_A1/{gw1_id}/lights/status");
    n.decision(
        &Identity::asserted("service", [("sid", "lights")]),
        "svc:lights:1",
        Request::publish(&request),
        &format!("service svc:lights:1 publishes {request}"),
    );
    let answer_topic = format!("c/iot/P1_A1/lights/{gw1_id}/status/success");
    n.decision(
        &gateway_identity(&GATEWAYS[0]),
        gw1_id,
        Request::publish(&answer_topic),
        &format!("gateway publishes {answer_topic}"),
    );
    let answer = svc
        .ask("P1_A1", gw1_id, "status", &json!({}), STEP)
        .await
        .map_err(err)?;
    n.say(format!(
        "service received the gateway's {}: {}",
        answer.outcome, answer.body
    ));
    if answer.outcome != "success" {
        return Err(format!(
            "expected the gateway's success, got {}",
            answer.outcome
        ));
    }
    Ok(())
}

/// Sets desired state, waits for it to be accepted and for the gateway's report.
async fn shadow_step(
    n: &Narrator,
    mobile: &Client,
    events: &mut UnboundedReceiver<Event>,
    shadow: &str,
    desired: Value,
    version: Option<u64>,
    field: &str,
) -> Result<(), String> {
    let update = format!("{shadow}/update");
    n.decision(
        &mobile_identity(),
        &mobile_id(),
        Request::publish(&update),
        &format!("mobile publishes {update} desired {desired}"),
    );
    let mut request = json!({"state": {"desired": desired.clone()}});
    if let Some(v) = version {
        request["version"] = json!(v);
    }
    mobile.publish(&update, request.to_string(), QoS::AtLeastOnce, false);
    let docs = format!("{shadow}/update/documents");
    let wanted = desired.pointer(field).cloned();
    let reported = wait_for(events, "the gateway's report", |e| {
        message_on(e, &docs).is_some_and(|d| {
            d.pointer(&format!("/current/state/reported{field}"))
                .cloned()
                == wanted
        })
    })
    .await?;
    let doc = message_on(&reported, &docs).unwrap_or_default();
    n.say(format!(
        "mobile received {docs}: version {}, reported {}",
        doc["current"]["version"], doc["current"]["state"]["reported"]
    ));
    Ok(())
}

async fn cross_account(
    n: &Narrator,
    mobile: &Client,
    events: &mut UnboundedReceiver<Event>,
) -> Result<(), String> {
    let (app, app_id) = (mobile_identity(), mobile_id());
    let other = "$aws/things/P2_B7_light/shadow/update";
    let allowed = n.decision(
        &app,
        &app_id,
        Request::publish(other),
        &format!("mobile (account P1_A1) publishes {other}"),
    );
    mobile.publish(
        other,
        r#"{"state":{"desired":{"on":true}}}"#,
        QoS::AtLeastOnce,
        false,
    );
    let refused = wait_for(
        events,
        "the broker's refusal",
        |e| matches!(e, Event::Published { topic, .. } if topic == other),
    )
    .await?;
    if let Event::Published { reason, .. } = refused {
        n.say(format!(
            "broker answered PUBACK 0x{:02x}{}",
            reason.0,
            if reason.is_failure() {
                " (not authorized)"
            } else {
                ""
            }
        ));
        if allowed || !reason.is_failure() {
            return Err("a cross-account publish was not refused".into());
        }
    }
    let filter = "$aws/things/P2_B7_light/shadow/update/delta";
    n.decision(
        &app,
        &app_id,
        Request::subscribe(filter),
        &format!("mobile subscribes {filter}"),
    );
    mobile.subscribe(filter, QoS::AtLeastOnce);
    let refused = wait_for(
        events,
        "the SUBACK",
        |e| matches!(e, Event::Subscribed { filter: f, .. } if f == filter),
    )
    .await?;
    if let Event::Subscribed { reason, .. } = refused {
        n.say(format!(
            "broker answered SUBACK 0x{:02x}{}",
            reason.0,
            if reason.is_failure() {
                " (not authorized)"
            } else {
                ""
            }
        ));
        if !reason.is_failure() {
            return Err("a cross-account subscribe was granted".into());
        }
    }
    Ok(())
}
