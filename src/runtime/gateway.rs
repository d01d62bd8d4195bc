//! The residential gateway runtime: one MQTT connection with the client id
//! its identity implies (`iot:<pid>_<aid>:adp:xhf:<iid>`), a retained last will
//! `{"connected": false}` on its presence topic and a retained `{"connected": true}` once
//! connected, and a bridge for simulated devices whose state it reports to their shadows
//! (`$aws/things/<pid>_<aid>_<device>/shadow/...`).
//!
//! [`GatewayCore`] is the logic without I/O: on connect it announces presence, reports every
//! device and asks for each shadow (to catch desired state set while it was away), then sends
//! its device inventory to a service as a multi-part request (each part stamped with `seq`
//! and `total`) and logs the service's `success|failure` response. A delta (or a get) whose
//! version is not newer than the last one applied is stale and ignored. It also answers the
//! requests its service sends to it on `c/iot/<pid>_<aid>/<gateway cid>/<sid>/<rid>` with
//! `.../<sid>/<gateway cid>/<rid>/<success|failure>` (see [`GatewayCore::answer`]): the
//! requests it knows (`inventory`, `status`) succeed, any other fails; every answer carries
//! the request id. [`start`] drives the core with a [`Client`]. This module must never decide what the gateway may publish:
//! the broker's policy does.

use super::client::{Client, ClientOptions, ConnectionState, Event, Handle};
use super::devices::{Device, Kind};
use super::parts;
use super::{Backoff, Log};
use crate::mqtt::codec::{Properties, QoS, Will};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tokio::task::JoinHandle;

/// How to run a gateway.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// `host:port`.
    pub broker: String,
    /// The product id.
    pub pid: String,
    /// The account id.
    pub aid: String,
    /// The installation id (a UUID).
    pub iid: String,
    /// The user name, if any.
    pub username: Option<String>,
    /// The password (a token), if any.
    pub password: Option<Bytes>,
    /// TLS to the broker; `None` is plain TCP.
    pub tls: Option<super::tls::TlsClient>,
    /// The devices the gateway simulates.
    pub devices: Vec<Kind>,
    /// The service the inventory request goes to.
    pub service: String,
    /// Reconnect delays.
    pub backoff: Backoff,
}

impl GatewayConfig {
    pub(crate) fn client_id(&self) -> String {
        format!("iot:{}_{}:adp:xhf:{}", self.pid, self.aid, self.iid)
    }

    pub(crate) fn presence_topic(&self) -> String {
        format!(
            "c/iot/{}_{}/{}/presence",
            self.pid,
            self.aid,
            self.client_id()
        )
    }

    pub(crate) fn thing(&self, kind: Kind) -> String {
        format!("{}_{}_{}", self.pid, self.aid, kind.name())
    }
}

/// A publish the core asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Out {
    pub(crate) topic: String,
    pub(crate) payload: String,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
}

fn out(topic: String, payload: Value) -> Out {
    Out {
        topic,
        payload: payload.to_string(),
        qos: QoS::AtLeastOnce,
        retain: false,
    }
}

/// The gateway's logic, without I/O.
pub struct GatewayCore {
    config: GatewayConfig,
    devices: Vec<Device>,
    /// Thing name → the last shadow version applied.
    applied: HashMap<String, u64>,
    log: Log,
}

impl GatewayCore {
    pub(crate) fn new(config: GatewayConfig, log: Log) -> GatewayCore {
        let devices = config.devices.iter().map(|k| Device::new(*k)).collect();
        GatewayCore {
            config,
            devices,
            applied: HashMap::new(),
            log,
        }
    }

    /// The simulated device of this kind.
    pub fn device(&self, kind: Kind) -> Option<&Device> {
        self.devices.iter().find(|d| d.kind == kind)
    }

    fn shadow(&self, kind: Kind) -> String {
        format!("$aws/things/{}/shadow", self.config.thing(kind))
    }

    fn area(&self) -> String {
        format!("c/iot/{}_{}", self.config.pid, self.config.aid)
    }

    /// The filters to subscribe to (once; the client resubscribes after a reconnect).
    pub fn subscriptions(&self) -> Vec<String> {
        let mut filters = Vec::new();
        for kind in &self.config.devices {
            let base = self.shadow(*kind);
            for suffix in ["update/delta", "update/rejected", "get/accepted"] {
                filters.push(format!("{base}/{suffix}"));
            }
        }
        let responses = format!(
            "{}/{}/{}/+",
            self.area(),
            self.config.client_id(),
            self.config.service
        );
        filters.push(format!("{responses}/success"));
        filters.push(format!("{responses}/failure"));
        filters.push(self.requests_filter());
        filters
    }

    /// The filter for requests the configured service addresses to this gateway.
    pub fn requests_filter(&self) -> String {
        format!(
            "{}/{}/{}/+",
            self.area(),
            self.config.client_id(),
            self.config.service
        )
    }

    /// If `topic` is a request addressed to this gateway, `(service, request id)`.
    fn parse_request<'t>(&self, topic: &'t str) -> Option<(&'t str, &'t str)> {
        let rest = topic.strip_prefix(&format!("{}/{}/", self.area(), self.config.client_id()))?;
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            [sid, rid] if !sid.is_empty() && !rid.is_empty() => Some((sid, rid)),
            _ => None,
        }
    }

    /// The answer to request `rid` from service `sid`: `success` with the gateway's
    /// `inventory` or `status`, `failure` for a request it does not know.
    pub fn answer(&self, sid: &str, rid: &str) -> Out {
        let (outcome, mut body) = match rid {
            "inventory" => {
                let things: Vec<Value> = self
                    .devices
                    .iter()
                    .map(|d| json!({"thing": self.config.thing(d.kind), "state": d.state}))
                    .collect();
                ("success", json!({"devices": things}))
            }
            "status" => (
                "success",
                json!({"connected": true, "devices": self.devices.len()}),
            ),
            _ => (
                "failure",
                json!({"error": format!("unknown request `{rid}`")}),
            ),
        };
        body["request"] = json!(rid);
        (self.log)(format!(
            "gateway {}: request {rid} from {sid} -> {outcome}",
            self.config.client_id()
        ));
        let topic = format!(
            "{}/{sid}/{}/{rid}/{outcome}",
            self.area(),
            self.config.client_id()
        );
        out(topic, body)
    }

    /// After CONNACK: presence, every device's reported state, a get per shadow, the inventory.
    pub fn on_connected(&self) -> Vec<Out> {
        let mut outs = vec![Out {
            retain: true,
            ..out(self.config.presence_topic(), json!({"connected": true}))
        }];
        for device in &self.devices {
            outs.push(self.report(device));
            outs.push(out(
                format!("{}/get", self.shadow(device.kind)),
                json!({"clientToken": "gw-sync"}),
            ));
        }
        let inventory: Vec<Value> = self
            .devices
            .iter()
            .map(|d| json!({"thing": self.config.thing(d.kind), "kind": d.kind.name(), "state": d.state}))
            .collect();
        let request = format!(
            "{}/{}/{}/inventory",
            self.area(),
            self.config.service,
            self.config.client_id()
        );
        outs.extend(
            parts::stamp(inventory)
                .into_iter()
                .map(|p| out(request.clone(), p)),
        );
        outs
    }

    fn report(&self, device: &Device) -> Out {
        let update = json!({"state": {"reported": device.state}, "clientToken": "gw-report"});
        out(format!("{}/update", self.shadow(device.kind)), update)
    }

    /// A delivered message; returns what to publish.
    pub fn on_message(&mut self, topic: &str, payload: &[u8]) -> Vec<Out> {
        if let Some((sid, rid)) = self.parse_request(topic) {
            return vec![self.answer(sid, rid)];
        }
        let Some(kind) = self
            .config
            .devices
            .iter()
            .copied()
            .find(|k| topic.starts_with(&format!("{}/", self.shadow(*k))))
        else {
            (self.log)(format!(
                "gateway {}: response on {topic}: {}",
                self.config.client_id(),
                String::from_utf8_lossy(payload)
            ));
            return Vec::new();
        };
        let Ok(document) = serde_json::from_slice::<Value>(payload) else {
            (self.log)(format!("gateway: ignored a non-JSON message on {topic}"));
            return Vec::new();
        };
        if topic.ends_with("/update/rejected") {
            (self.log)(format!(
                "gateway: shadow update of {} rejected: {document}",
                self.config.thing(kind)
            ));
            return Vec::new();
        }
        let delta = if topic.ends_with("/update/delta") {
            document.get("state")
        } else {
            document.pointer("/state/delta")
        };
        let version = document.get("version").and_then(Value::as_u64).unwrap_or(0);
        self.apply(kind, version, delta.and_then(Value::as_object))
    }

    /// Applies a desired delta of `version` unless it is stale; reports the device's state.
    fn apply(&mut self, kind: Kind, version: u64, delta: Option<&Map<String, Value>>) -> Vec<Out> {
        let thing = self.config.thing(kind);
        let last = self.applied.get(&thing).copied().unwrap_or(0);
        if version <= last {
            (self.log)(format!(
                "gateway: ignored stale version {version} of {thing} (applied {last})"
            ));
            return Vec::new();
        }
        self.applied.insert(thing.clone(), version);
        let Some(delta) = delta.filter(|d| !d.is_empty()) else {
            return Vec::new();
        };
        let Some(device) = self.devices.iter_mut().find(|d| d.kind == kind) else {
            return Vec::new();
        };
        match device.apply(delta) {
            Ok(()) => (self.log)(format!(
                "gateway: {thing} applied {} (version {version})",
                Value::Object(delta.clone())
            )),
            Err(why) => (self.log)(format!("gateway: {thing} refused version {version}: {why}")),
        }
        let device = device.clone();
        vec![self.report(&device)]
    }
}

/// A running gateway.
pub struct Gateway {
    client: Client,
    task: JoinHandle<()>,
}

impl Gateway {
    /// Disconnects cleanly (no last will).
    pub async fn stop(self) {
        self.client.disconnect().await;
        self.task.abort();
    }

    /// Drops the connection abruptly, as a crash would: the broker publishes the last will.
    pub fn kill(self) {
        self.client.kill();
        self.task.abort();
    }
}

/// Connects a gateway and runs it until stopped or killed.
pub fn start(config: GatewayConfig, log: Log) -> Gateway {
    let mut options = ClientOptions::new(config.broker.clone(), config.client_id());
    options.username = config.username.clone();
    options.password = config.password.clone();
    options.tls = config.tls.clone();
    options.backoff = config.backoff;
    options.will = Some(Will {
        topic: config.presence_topic(),
        payload: Bytes::from_static(br#"{"connected": false}"#),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::default(),
    });
    let (client, events) = Client::start(options);
    let mut core = GatewayCore::new(config, log);
    for filter in core.subscriptions() {
        client.subscribe(&filter, QoS::AtLeastOnce);
    }
    let handle = client.handle();
    let task = tokio::spawn(async move { drive(&mut core, events, handle).await });
    Gateway { client, task }
}

async fn drive(
    core: &mut GatewayCore,
    mut events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    handle: Handle,
) {
    let id = core.config.client_id();
    while let Some(event) = events.recv().await {
        let outs = match event {
            Event::State(state) => {
                (core.log)(format!("gateway {id}: {state}"));
                if state == ConnectionState::Connected {
                    core.on_connected()
                } else {
                    Vec::new()
                }
            }
            Event::Message { topic, payload, .. } => core.on_message(&topic, &payload),
            Event::Published { topic, reason } if reason.is_failure() => {
                (core.log)(format!(
                    "gateway {id}: publish to {topic} refused (reason 0x{:02x})",
                    reason.0
                ));
                Vec::new()
            }
            Event::Subscribed { filter, reason } if reason.is_failure() => {
                (core.log)(format!(
                    "gateway {id}: subscribe to {filter} refused (reason 0x{:02x})",
                    reason.0
                ));
                Vec::new()
            }
            Event::GaveUp => {
                (core.log)(format!("gateway {id}: gave up reconnecting"));
                Vec::new()
            }
            _ => Vec::new(),
        };
        for o in outs {
            handle.publish(&o.topic, o.payload, o.qos, o.retain);
        }
    }
}

/// Why a gateway's attributes cannot be read from its certificate, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CertAttributesError {
    /// The policy does not load.
    #[error("{}: {error}", path.display())]
    Policy {
        /// The policy file.
        path: std::path::PathBuf,
        /// Why it does not load.
        error: crate::policy::LoadError,
    },
    /// The policy declares no identity of that name.
    #[error("{} declares no identity `{identity}`", path.display())]
    NoIdentity {
        /// The policy file.
        path: std::path::PathBuf,
        /// The identity asked for.
        identity: String,
    },
    /// The CA file cannot be used.
    #[error(transparent)]
    Trust(#[from] crate::identity::x509::TrustError),
    /// The identity is not verified from a certificate, or names an unknown field.
    #[error(transparent)]
    Config(#[from] crate::identity::x509::CertConfigError),
    /// The certificate file cannot be read as PEM.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The certificate file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The certificate file holds no certificate.
    #[error("{}: no certificate", path.display())]
    NoCertificate {
        /// The certificate file.
        path: std::path::PathBuf,
    },
    /// The identity's fields cannot be read from the certificate.
    #[error("{}: {error}", path.display())]
    Extract {
        /// The certificate file.
        path: std::path::PathBuf,
        /// Why.
        error: Box<crate::identity::x509::X509Error>,
    },
}

/// The attributes the policy's `identity` block reads from the certificate in `cert` (PEM,
/// leaf first) — what the broker will bind at CONNECT, so the gateway can use the client
/// id and topics its certificate implies. The chain is not verified here; the broker does.
pub fn attributes_from_certificate(
    policy: &std::path::Path,
    identity: &str,
    cert: &std::path::Path,
    ca: &std::path::Path,
) -> Result<std::collections::BTreeMap<String, String>, CertAttributesError> {
    use crate::identity::x509::{CertVerifier, TrustStore};
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let loaded =
        crate::policy::Policy::load(policy).map_err(|error| CertAttributesError::Policy {
            path: policy.to_path_buf(),
            error,
        })?;
    let def = loaded
        .checked
        .identities
        .iter()
        .find(|d| *d.name == *identity)
        .ok_or_else(|| CertAttributesError::NoIdentity {
            path: policy.to_path_buf(),
            identity: identity.to_string(),
        })?;
    let trust = TrustStore::from_pem_files(&[ca], &[])?;
    let verifier = CertVerifier::new(def, std::sync::Arc::new(trust))?;
    let pem = |e: rustls_pki_types::pem::Error| CertAttributesError::Pem {
        path: cert.to_path_buf(),
        reason: e.to_string(),
    };
    let leaf = CertificateDer::pem_file_iter(cert)
        .map_err(pem)?
        .next()
        .ok_or_else(|| CertAttributesError::NoCertificate {
            path: cert.to_path_buf(),
        })?
        .map_err(pem)?;
    verifier
        .extract(leaf.as_ref())
        .map_err(|error| CertAttributesError::Extract {
            path: cert.to_path_buf(),
            error: Box::new(error),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn core() -> (GatewayCore, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let log: Log = Arc::new(move |line| sink.lock().unwrap().push(line));
        let config = GatewayConfig {
            broker: "127.0.0.1:1".into(),
            pid: "P1".into(),
            aid: "A1".into(),
            iid: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            username: None,
            password: None,
            tls: None,
            devices: Kind::all().to_vec(),
            service: "lights".into(),
            backoff: Backoff::default(),
        };
        (GatewayCore::new(config, log), lines)
    }

    #[test]
    fn connect_announces_presence_reports_and_sends_a_stamped_inventory() {
        let (core, _) = core();
        let outs = core.on_connected();
        assert_eq!(
            outs[0].topic,
            "c/iot/P1_A1/iot:P1_A1:adp:xhf:0f8fad5b-d9cb-469f-a165-70867728950e/presence"
        );
        assert!(outs[0].retain);
        assert_eq!(outs[1].topic, "$aws/things/P1_A1_light/shadow/update");
        let parts: Vec<Value> = outs
            .iter()
            .filter(|o| o.topic.ends_with("/inventory"))
            .map(|o| serde_json::from_str(&o.payload).unwrap())
            .collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            (parts[2]["seq"].clone(), parts[2]["total"].clone()),
            (json!(3), json!(3))
        );
    }

    #[test]
    fn answers_known_requests_with_success_and_unknown_ones_with_failure() {
        let (mut core, lines) = core();
        let gw = "iot:P1_A1:adp:xhf:0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(core.requests_filter(), format!("c/iot/P1_A1/{gw}/lights/+"));
        let outs = core.on_message(&format!("c/iot/P1_A1/{gw}/lights/status"), b"{}");
        assert_eq!(outs.len(), 1);
        assert_eq!(
            outs[0].topic,
            format!("c/iot/P1_A1/lights/{gw}/status/success")
        );
        let body: Value = serde_json::from_str(&outs[0].payload).unwrap();
        assert_eq!(
            (body["request"].clone(), body["devices"].clone()),
            (json!("status"), json!(3))
        );
        let outs = core.on_message(&format!("c/iot/P1_A1/{gw}/lights/reboot"), b"{}");
        assert_eq!(
            outs[0].topic,
            format!("c/iot/P1_A1/lights/{gw}/reboot/failure")
        );
        let body: Value = serde_json::from_str(&outs[0].payload).unwrap();
        assert_eq!(body["request"], json!("reboot"));
        // A response to the gateway's own request (one level deeper) is not a request.
        let response = format!("c/iot/P1_A1/{gw}/lights/inventory/success");
        assert!(core.on_message(&response, b"{}").is_empty());
        assert!(
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("reboot from lights -> failure"))
        );
    }

    #[test]
    fn deltas_apply_once_and_stale_versions_are_ignored() {
        let (mut core, lines) = core();
        let delta = br#"{"state":{"on":true},"version":5}"#;
        let outs = core.on_message("$aws/things/P1_A1_light/shadow/update/delta", delta);
        assert_eq!(outs.len(), 1);
        assert_eq!(core.device(Kind::Light).unwrap().state["on"], json!(true));
        let stale = br#"{"state":{"on":false},"version":4}"#;
        assert!(
            core.on_message("$aws/things/P1_A1_light/shadow/update/delta", stale)
                .is_empty()
        );
        assert_eq!(core.device(Kind::Light).unwrap().state["on"], json!(true));
        assert!(
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("ignored stale version 4"))
        );
        let got = br#"{"state":{"delta":{"setpoint":23}},"version":2}"#;
        assert_eq!(
            core.on_message("$aws/things/P1_A1_thermostat/shadow/get/accepted", got)
                .len(),
            1
        );
        assert_eq!(
            core.device(Kind::Thermostat).unwrap().state["setpoint"],
            json!(23)
        );
    }
}
