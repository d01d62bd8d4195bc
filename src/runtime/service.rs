//! The backend service runtime (seed paper 5): subscribes to the requests addressed to its
//! service id on `c/<ns>/<pid>_<aid>/<sid>/<cid>/<rid>` and answers on
//! `c/<ns>/<pid>_<aid>/<cid>/<sid>/<rid>/<success|failure>`.
//!
//! A request whose payload is JSON succeeds (the answer echoes it); a multi-part request
//! (`seq`/`total`, see [`parts`]) is collected and answered once, when its last part
//! arrives; anything unreadable gets a `failure` with the reason. [`ServiceCore`] is the
//! logic without I/O; [`Service::subscribed`] tells when the broker has granted its
//! subscription, so a request published from then on reaches it. This module must never
//! decide who may send it requests: the policy already did before a request reached it.

use super::client::{Client, ClientOptions, Event};
use super::parts::{self, Assembly};
use super::{Backoff, Log};
use crate::broker::codec::QoS;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to run a service.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub broker: String,
    /// The service id (`subject.CN` of its certificate).
    pub sid: String,
    pub instance: String,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    /// TLS to the broker; `None` is plain TCP.
    pub tls: Option<super::tls::TlsClient>,
    pub backoff: Backoff,
}

impl ServiceConfig {
    pub fn client_id(&self) -> String {
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
    pub fn new(sid: &str, log: Log) -> ServiceCore {
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
                Some(Err(error))
            }
        }
    }
}

/// A running service.
pub struct Service {
    client: Client,
    task: JoinHandle<()>,
    /// Becomes true at the first granted SUBACK.
    subscribed: watch::Receiver<bool>,
}

impl Service {
    /// Waits up to `within` until the broker has granted the request subscription (before
    /// that, a request is routed to no one and lost); whether it did.
    pub async fn subscribed(&self, within: Duration) -> bool {
        let mut subscribed = self.subscribed.clone();
        let granted = tokio::time::timeout(within, subscribed.wait_for(|granted| *granted));
        matches!(granted.await, Ok(Ok(_)))
    }

    pub async fn stop(self) {
        self.client.disconnect().await;
        self.task.abort();
    }
}

/// Connects a service and answers requests until stopped.
pub fn start(config: ServiceConfig, log: Log) -> Service {
    let mut options = ClientOptions::new(config.broker.clone(), config.client_id());
    options.username = config.username.clone();
    options.password = config.password.clone();
    options.tls = config.tls.clone();
    options.backoff = config.backoff;
    let (client, mut events) = Client::start(options);
    let mut core = ServiceCore::new(&config.sid, log.clone());
    client.subscribe(&core.filter(), QoS::AtLeastOnce);
    let handle = client.handle();
    let id = config.client_id();
    let (granted, subscribed) = watch::channel(false);
    let task = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                Event::State(state) => log(format!("service {id}: {state}")),
                Event::Subscribed { reason, .. } if !reason.is_failure() => {
                    let _ = granted.send(true);
                }
                Event::Subscribed { filter, reason } => log(format!(
                    "service {id}: subscribe to {filter} refused (reason 0x{:02x})",
                    reason.0
                )),
                Event::Message { topic, payload, .. } => {
                    if let Some((topic, answer)) = core.on_request(&topic, &payload) {
                        handle.publish(&topic, answer.to_string(), QoS::AtLeastOnce, false);
                    }
                }
                Event::Published { topic, reason } if reason.is_failure() => log(format!(
                    "service {id}: publish to {topic} refused (reason 0x{:02x})",
                    reason.0
                )),
                _ => {}
            }
        }
    });
    Service {
        client,
        task,
        subscribed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
}
