//! The backend service runtime: subscribes to the requests addressed to its
//! service id on `c/<ns>/<pid>_<aid>/<sid>/<cid>/<rid>` and answers on
//! `c/<ns>/<pid>_<aid>/<cid>/<sid>/<rid>/<success|failure>`.
//!
//! A request whose payload is JSON succeeds (the answer echoes it); a multi-part request
//! (`seq`/`total`, see [`parts`]) is collected and answered once, when its last part
//! arrives; anything unreadable gets a `failure` with the reason. [`ServiceCore`] is the
//! logic without I/O; [`Service::subscribed`] tells when the broker has granted its
//! subscriptions, so a request published from then on reaches it. A service may also ask a
//! gateway ([`Service::ask`]): it publishes on `c/iot/<pid>_<aid>/<gateway cid>/<sid>/<rid>`
//! and awaits the gateway's answer on `c/iot/<pid>_<aid>/<sid>/<gateway cid>/<rid>/<outcome>`.
//! This module must never
//! decide who may send it requests: the policy already did before a request reached it.

use super::client::{Client, ClientOptions, Event};
use super::parts::{self, Assembly};
use super::{Backoff, Log};
use crate::mqtt::codec::QoS;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// How to run a service.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The broker's address.
    pub broker: String,
    /// The service id (`subject.CN` of its certificate).
    pub sid: String,
    /// The service's instance name, part of its client id.
    pub instance: String,
    /// The user name, if any.
    pub username: Option<String>,
    /// The password, if any.
    pub password: Option<Bytes>,
    /// TLS to the broker; `None` is plain TCP.
    pub tls: Option<super::tls::TlsClient>,
    /// Reconnect delays.
    pub backoff: Backoff,
}

impl ServiceConfig {
    pub(crate) fn client_id(&self) -> String {
        format!("svc:{}:{}", self.sid, self.instance)
    }
}

/// The service's logic, without I/O.
pub struct ServiceCore {
    sid: String,
    /// (requester, request id) → parts received.
    assemblies: HashMap<(String, String), Assembly>,
    log: Log,
}

/// A request topic's parts.
struct RequestTopic<'t> {
    namespace: &'t str,
    account: &'t str,
    requester: &'t str,
    request: &'t str,
}

fn parse_request<'t>(topic: &'t str, sid: &str) -> Option<RequestTopic<'t>> {
    match topic.split('/').collect::<Vec<_>>().as_slice() {
        ["c", namespace, account, s, requester, request] if *s == sid => Some(RequestTopic {
            namespace,
            account,
            requester,
            request,
        }),
        _ => None,
    }
}

impl ServiceCore {
    pub(crate) fn new(sid: &str, log: Log) -> ServiceCore {
        ServiceCore {
            sid: sid.to_string(),
            assemblies: HashMap::new(),
            log,
        }
    }

    /// The filter for requests addressed to this service.
    pub fn filter(&self) -> String {
        format!("c/+/+/{}/+/+", self.sid)
    }

    /// The filters for gateways' answers to this service's requests.
    pub fn answer_filters(&self) -> [String; 2] {
        ["success", "failure"].map(|outcome| format!("c/iot/+/{}/+/+/{outcome}", self.sid))
    }

    /// A request; returns the response topic and payload to publish, if any yet.
    pub fn on_request(&mut self, topic: &str, payload: &[u8]) -> Option<(String, Value)> {
        let request = parse_request(topic, &self.sid)?;
        let sid = self.sid.clone();
        let respond = |outcome: &str| {
            format!(
                "c/{}/{}/{}/{}/{}/{outcome}",
                request.namespace, request.account, request.requester, sid, request.request
            )
        };
        let (outcome, answer) = match self.answer(&request, payload) {
            None => return None,
            Some(Ok(answer)) => ("success", answer),
            Some(Err(error)) => ("failure", json!({"error": error})),
        };
        (self.log)(format!(
            "service {}: {} {} -> {outcome}",
            self.sid, request.requester, request.request
        ));
        Some((respond(outcome), answer))
    }

    fn answer(
        &mut self,
        request: &RequestTopic<'_>,
        payload: &[u8],
    ) -> Option<Result<Value, String>> {
        let body: Value = match serde_json::from_slice(payload) {
            Ok(body) => body,
            Err(e) => return Some(Err(format!("the request is not JSON: {e}"))),
        };
        let Some(stamp) = parts::parse(&body) else {
            return Some(Ok(json!({"service": self.sid, "request": body})));
        };
        let key = (request.requester.to_string(), request.request.to_string());
        let done = stamp.and_then(|(seq, total, part)| {
            self.assemblies
                .entry(key.clone())
                .or_default()
                .add(seq, total, part)
        });
        match done {
            Ok(None) => None,
            Ok(Some(all)) => {
                self.assemblies.remove(&key);
                Some(Ok(
                    json!({"service": self.sid, "parts": all.len(), "items": all}),
                ))
            }
            Err(error) => {
                self.assemblies.remove(&key);
                Some(Err(error.to_string()))
            }
        }
    }
}

/// A running service.
pub struct Service {
    client: Client,
    task: JoinHandle<()>,
    /// Becomes true once every subscription has been granted.
    subscribed: watch::Receiver<bool>,
    sid: String,
    /// Answer topic without its outcome → who awaits it.
    pending: Pending,
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<(String, Value)>>>>;

/// A gateway's answer to [`Service::ask`].
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// `success` or `failure`.
    pub outcome: String,
    /// The answer's body.
    pub body: Value,
}

/// If `topic` ends in `/success` or `/failure`, the awaited topic and the outcome.
fn split_outcome(topic: &str) -> Option<(&str, &str)> {
    let (awaited, outcome) = topic.rsplit_once('/')?;
    matches!(outcome, "success" | "failure").then_some((awaited, outcome))
}

impl Service {
    /// Waits up to `within` until the broker has granted the request subscription (before
    /// that, a request is routed to no one and lost); whether it did.
    pub async fn subscribed(&self, within: Duration) -> bool {
        let mut subscribed = self.subscribed.clone();
        let granted = tokio::time::timeout(within, subscribed.wait_for(|granted| *granted));
        matches!(granted.await, Ok(Ok(_)))
    }

    /// Sends request `rid` (payload `body`) to the gateway `gateway` (its client id) of
    /// account `account` (`<pid>_<aid>`) and waits up to `within` for its answer.
    pub async fn ask(
        &self,
        account: &str,
        gateway: &str,
        rid: &str,
        body: &Value,
        within: Duration,
    ) -> Result<Answer, NoAnswer> {
        let awaited = format!("c/iot/{account}/{}/{gateway}/{rid}", self.sid);
        let (tell, answer) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(awaited.clone(), tell);
        }
        let topic = format!("c/iot/{account}/{gateway}/{}/{rid}", self.sid);
        self.client
            .publish(&topic, body.to_string(), QoS::AtLeastOnce, false);
        let outcome = tokio::time::timeout(within, answer).await;
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&awaited);
        }
        match outcome {
            Ok(Ok((outcome, body))) => Ok(Answer { outcome, body }),
            _ => Err(NoAnswer {
                topic: awaited,
                within,
            }),
        }
    }

    /// Disconnects and waits for the service to end.
    pub async fn stop(self) {
        self.client.disconnect().await;
        self.task.abort();
    }
}

/// A request the gateway did not answer in time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no answer on {topic}/<success|failure> within {within:?}")]
pub struct NoAnswer {
    /// The topic the answer was awaited on (without its outcome level).
    pub topic: String,
    /// How long it was awaited.
    pub within: Duration,
}

/// Connects a service and answers requests until stopped.
pub fn start(config: ServiceConfig, log: Log) -> Service {
    let mut options = ClientOptions::new(config.broker.clone(), config.client_id());
    options.username = config.username.clone();
    options.password = config.password.clone();
    options.tls = config.tls.clone();
    options.backoff = config.backoff;
    let (client, events) = Client::start(options);
    let core = ServiceCore::new(&config.sid, log.clone());
    let mut filters = vec![core.filter()];
    filters.extend(core.answer_filters());
    for filter in &filters {
        client.subscribe(filter, QoS::AtLeastOnce);
    }
    let (granted, subscribed) = watch::channel(false);
    let pending = Pending::default();
    let run = Run {
        core,
        handle: client.handle(),
        id: config.client_id(),
        log,
        wanted: filters.into_iter().collect(),
        granted,
        pending: pending.clone(),
    };
    let task = tokio::spawn(run.drive(events));
    Service {
        client,
        task,
        subscribed,
        sid: config.sid,
        pending,
    }
}

/// The service's event loop state.
struct Run {
    core: ServiceCore,
    handle: super::client::Handle,
    id: String,
    log: Log,
    /// Filters not granted yet.
    wanted: HashSet<String>,
    granted: watch::Sender<bool>,
    pending: Pending,
}

impl Run {
    async fn drive(mut self, mut events: tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let id = self.id.clone();
        while let Some(event) = events.recv().await {
            match event {
                Event::State(state) => (self.log)(format!("service {id}: {state}")),
                Event::Subscribed { filter, reason } if !reason.is_failure() => {
                    self.wanted.remove(&filter);
                    if self.wanted.is_empty() {
                        let _ = self.granted.send(true);
                    }
                }
                Event::Subscribed { filter, reason } => (self.log)(format!(
                    "service {id}: subscribe to {filter} refused (reason 0x{:02x})",
                    reason.0
                )),
                Event::Message { topic, payload, .. } => self.on_message(&topic, &payload),
                Event::Published { topic, reason } if reason.is_failure() => (self.log)(format!(
                    "service {id}: publish to {topic} refused (reason 0x{:02x})",
                    reason.0
                )),
                _ => {}
            }
        }
    }

    /// An awaited answer goes to its asker; anything else is a request to answer.
    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        if let Some((awaited, outcome)) = split_outcome(topic) {
            let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(awaited));
            if let Some(waiter) = waiter {
                let body = serde_json::from_slice(payload)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into()));
                (self.log)(format!("service {}: answer on {topic}", self.id));
                let _ = waiter.send((outcome.to_string(), body));
                return;
            }
        }
        if let Some((topic, answer)) = self.core.on_request(topic, payload) {
            self.handle
                .publish(&topic, answer.to_string(), QoS::AtLeastOnce, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_single_and_multi_part_requests() {
        let mut core = ServiceCore::new("lights", Arc::new(|_| {}));
        let (topic, answer) = core
            .on_request("c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1", br#"{"on":true}"#)
            .unwrap();
        assert_eq!(topic, "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/r1/success");
        assert_eq!(answer["request"], json!({"on": true}));
        let bad = core
            .on_request("c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r2", b"{")
            .unwrap();
        assert!(bad.0.ends_with("/r2/failure"));
        assert!(core.on_request("c/xfi/P1_A1/locks/x/r3", b"{}").is_none());
        let request = "c/iot/P1_A1/lights/gw/inventory";
        assert!(
            core.on_request(request, br#"{"seq":2,"total":2,"part":"b"}"#)
                .is_none()
        );
        let (topic, answer) = core
            .on_request(request, br#"{"seq":1,"total":2,"part":"a"}"#)
            .unwrap();
        assert_eq!(topic, "c/iot/P1_A1/gw/lights/inventory/success");
        assert_eq!(answer["items"], json!(["a", "b"]));
    }

    #[test]
    fn answers_are_told_apart_from_requests() {
        let core = ServiceCore::new("lights", Arc::new(|_| {}));
        assert_eq!(
            core.answer_filters(),
            ["c/iot/+/lights/+/+/success", "c/iot/+/lights/+/+/failure"]
        );
        assert_eq!(
            split_outcome("c/iot/P1_A1/lights/gw/status/failure"),
            Some(("c/iot/P1_A1/lights/gw/status", "failure"))
        );
        assert_eq!(split_outcome("c/iot/P1_A1/lights/gw/status"), None);
    }
}
