//! The mobile client runtime: connects as `xfi:<pid>_<aid>:clt:<jti>`,
//! reports its connection states, and performs one operation — a service request answered
//! on its response topic, a desired-state update of one of its account's shadows, or a
//! shadow get — waiting a bounded time for the answer. This module must never decide what
//! the app may do; a refusal by the broker's policy is reported as such.

use super::client::{Client, ClientOptions, Event};
use super::{Backoff, Log};
use crate::mqtt::codec::QoS;
use bytes::Bytes;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// How to connect a mobile client.
#[derive(Clone, Debug)]
pub struct MobileConfig {
    /// The broker's address.
    pub broker: String,
    /// The product id.
    pub pid: String,
    /// The account id.
    pub aid: String,
    /// The token id (`jti`), part of the client id.
    pub jti: String,
    /// The user name, if any.
    pub username: Option<String>,
    /// The password (a token), if any.
    pub password: Option<Bytes>,
    /// TLS to the broker; `None` is plain TCP.
    pub tls: Option<super::tls::TlsClient>,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// How long to wait for connecting and for each answer.
    pub timeout: Duration,
}

impl MobileConfig {
    pub(crate) fn client_id(&self) -> String {
        format!("xfi:{}_{}:clt:{}", self.pid, self.aid, self.jti)
    }
}

/// What to do.
#[derive(Clone, Debug)]
pub enum Operation {
    /// A request to service `sid` with request id `rid`.
    Request {
        /// The service id.
        sid: String,
        /// The request id.
        rid: String,
        /// The request body.
        payload: String,
    },
    /// A desired-state update of `device`'s shadow, optionally carrying the version it saw.
    SetDesired {
        /// The device.
        device: String,
        /// The desired state as JSON.
        desired: String,
        /// The shadow version to update, if any.
        version: Option<u64>,
    },
    /// Read `device`'s shadow.
    GetShadow {
        /// The device.
        device: String,
    },
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The topic the answer came on.
    pub topic: String,
    /// The answer's payload.
    pub payload: String,
}

/// Why an operation did not get an answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MobileError {
    /// The connection failed.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The broker refused a subscription or publish.
    #[error("the broker refused {what} (reason 0x{reason:02x}): the policy does not allow it")]
    Refused {
        /// What was refused.
        what: String,
        /// The reason code.
        reason: u8,
    },
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The topics to wait on, and the request to publish.
fn plan(config: &MobileConfig, operation: &Operation) -> (Vec<String>, String, String) {
    let area = format!("{}_{}", config.pid, config.aid);
    let cid = config.client_id();
    match operation {
        Operation::Request { sid, rid, payload } => {
            let base = format!("c/xfi/{area}/{cid}/{sid}/{rid}");
            let request = format!("c/xfi/{area}/{sid}/{cid}/{rid}");
            (
                vec![format!("{base}/success"), format!("{base}/failure")],
                request,
                payload.clone(),
            )
        }
        Operation::SetDesired {
            device,
            desired,
            version,
        } => {
            let base = format!("$aws/things/{area}_{device}/shadow/update");
            let version = version
                .map(|v| format!(",\"version\":{v}"))
                .unwrap_or_default();
            let payload = format!("{{\"state\":{{\"desired\":{desired}}}{version}}}");
            (
                vec![format!("{base}/accepted"), format!("{base}/rejected")],
                base,
                payload,
            )
        }
        Operation::GetShadow { device } => {
            let base = format!("$aws/things/{area}_{device}/shadow/get");
            (
                vec![format!("{base}/accepted"), format!("{base}/rejected")],
                base,
                "{}".into(),
            )
        }
    }
}

/// Connects, performs `operation`, waits for its answer, disconnects.
pub async fn run(
    config: MobileConfig,
    operation: Operation,
    log: Log,
) -> Result<Answer, MobileError> {
    let mut options = ClientOptions::new(config.broker.clone(), config.client_id());
    options.username = config.username.clone();
    options.password = config.password.clone();
    options.tls = config.tls.clone();
    options.backoff = config.backoff;
    let (client, mut events) = Client::start(options);
    let (answers, request, payload) = plan(&config, &operation);
    for filter in &answers {
        client.subscribe(filter, QoS::AtLeastOnce);
    }
    client.publish(&request, payload, QoS::AtLeastOnce, false);
    let result = tokio::time::timeout(config.timeout, wait(&mut events, &answers, &log))
        .await
        .unwrap_or(Err(MobileError::Timeout(config.timeout)));
    client.disconnect().await;
    result
}

async fn wait(
    events: &mut UnboundedReceiver<Event>,
    answers: &[String],
    log: &Log,
) -> Result<Answer, MobileError> {
    while let Some(event) = events.recv().await {
        match event {
            Event::State(state) => log(format!("mobile: {state}")),
            Event::GaveUp => return Err(MobileError::Connect("gave up reconnecting".into())),
            Event::Subscribed { filter, reason }
            | Event::Published {
                topic: filter,
                reason,
            } if reason.is_failure() => {
                return Err(MobileError::Refused {
                    what: filter,
                    reason: reason.0,
                });
            }
            Event::Message { topic, payload, .. } if answers.contains(&topic) => {
                let payload = String::from_utf8_lossy(&payload).into_owned();
                return Ok(Answer { topic, payload });
            }
            _ => {}
        }
    }
    Err(MobileError::Connect("the client stopped".into()))
}
