//! The device shadow service inside the broker, on the AWS topic layout so existing habits
//! and SDKs carry over.
//!
//! After routing an *authorized* PUBLISH like any other, the connection hands it to
//! [`ShadowService::handle`], which acts only if its topic is exactly a request topic
//! (`$aws/things/<thing>/shadow/<get|update|delete>`). The service applies it to the thing's
//! [`document::Shadow`] (persisted by [`store`]) and returns an [`Answer`]: the caller waits
//! for the new version to be durable, then publishes the responses — `/accepted` or `/rejected`, and for updates
//! `/delta` and `/documents` — through the broker's router like any message, so every
//! delivery passes the subscriber's RECEIVE check. Which identity may publish requests for
//! which thing, and receive which responses, is the policy's business (thing names are per
//! account, `<pid>_<aid>_<device>`). This module must never bypass the router or decide
//! authorization itself.

pub mod document;
pub mod store;
pub mod topic;

use crate::broker::message::Message;
use crate::broker::store::Ticket;
use crate::mqtt::codec::{Properties, QoS};
use bytes::Bytes;
use document::{Rejection, Update};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use topic::Operation;

/// The shadow service: request handling over a [`store::Store`].
#[derive(Debug, Default)]
pub struct ShadowService {
    store: store::Store,
}

/// One response to publish.
type Response = (String, Value);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The responses to one request, to publish once `ticket` (the new version) is durable.
pub struct Answer {
    pub(crate) responses: Vec<Response>,
    pub(crate) ticket: Ticket,
}

impl Answer {
    /// Hands the responses to `publish` (the broker's router); the service never reaches
    /// into the broker's state itself.
    pub fn publish(self, mut publish: impl FnMut(&Arc<Message>)) {
        for (topic, document) in self.responses {
            let message = Message {
                topic: topic.into(),
                payload: Bytes::from(document.to_string()),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Properties::default(),
                expires_at: None,
                publisher: None,
            };
            publish(&Arc::new(message));
        }
    }
}

impl ShadowService {
    /// A service persisting under `dir` (one JSON file per thing), or in memory only.
    pub fn new(dir: Option<PathBuf>) -> ShadowService {
        ShadowService {
            store: store::Store::new(dir),
        }
    }

    /// A service keeping shadows in the broker's durable store.
    pub fn durable(durable: Arc<crate::broker::store::Store>) -> ShadowService {
        ShadowService {
            store: store::Store::durable(durable),
        }
    }

    /// Handles `topic` if it is a shadow request; `None` (and nothing done) if not.
    pub fn handle(&self, topic: &str, payload: &[u8]) -> Option<Answer> {
        let request = topic::parse_request(topic)?;
        let (responses, ticket) = self.respond_durably(request.thing, request.operation, payload);
        Some(Answer { responses, ticket })
    }

    /// The responses to one request, in publishing order.
    pub fn respond(&self, thing: &str, operation: Operation, payload: &[u8]) -> Vec<Response> {
        self.respond_durably(thing, operation, payload).0
    }

    /// The responses, and the ticket of the change in the durable store.
    fn respond_durably(
        &self,
        thing: &str,
        operation: Operation,
        payload: &[u8],
    ) -> (Vec<Response>, Ticket) {
        let timestamp = now_secs();
        let result = if topic::valid_thing_name(thing) {
            match operation {
                Operation::Get => self.get(thing, payload, timestamp),
                Operation::Update => self.update(thing, payload, timestamp),
                Operation::Delete => self.delete(thing, payload, timestamp),
            }
        } else {
            Err((Rejection::new(400, "Invalid thing name"), None))
        };
        match result {
            Ok(answer) => answer,
            Err((rejection, token)) => {
                let document = rejection.document(timestamp, token.as_deref());
                let rejected = vec![(topic::response(thing, operation, "rejected"), document)];
                (rejected, Ticket::NONE)
            }
        }
    }

    fn get(&self, thing: &str, payload: &[u8], ts: u64) -> Outcome {
        let token = document::client_token_of(payload).map_err(|r| (r, None))?;
        let shadow = self
            .store
            .lock()
            .get(thing)
            .map_err(|r| (r, token.clone()))?;
        if !shadow.exists {
            return Err((no_shadow(thing), token));
        }
        let doc = shadow.get_document(ts, token.as_deref());
        let accepted = vec![(topic::response(thing, Operation::Get, "accepted"), doc)];
        Ok((accepted, Ticket::NONE))
    }

    fn update(&self, thing: &str, payload: &[u8], ts: u64) -> Outcome {
        let update = Update::parse(payload).map_err(|r| (r, None))?;
        let token = update.client_token.clone();
        let (previous, next, ticket) = {
            let mut store = self.store.lock();
            let previous = store.get(thing).map_err(|r| (r, token.clone()))?;
            let next = previous.updated(&update).map_err(|r| (r, token.clone()))?;
            let ticket = store
                .put(thing, next.clone())
                .map_err(|r| (r, token.clone()))?;
            (previous, next, ticket)
        };
        let mut out = vec![(
            topic::response(thing, Operation::Update, "accepted"),
            document::update_accepted(&update, &next, ts),
        )];
        if let Some(delta) = document::delta_document(&update, &next, ts) {
            out.push((topic::response(thing, Operation::Update, "delta"), delta));
        }
        let documents = document::documents(&previous, &next, ts, token.as_deref());
        out.push((
            topic::response(thing, Operation::Update, "documents"),
            documents,
        ));
        Ok((out, ticket))
    }

    fn delete(&self, thing: &str, payload: &[u8], ts: u64) -> Outcome {
        let token = document::client_token_of(payload).map_err(|r| (r, None))?;
        let (next, ticket) = {
            let mut store = self.store.lock();
            let previous = store.get(thing).map_err(|r| (r, token.clone()))?;
            if !previous.exists {
                return Err((no_shadow(thing), token));
            }
            let next = previous.deleted();
            let ticket = store
                .put(thing, next.clone())
                .map_err(|r| (r, token.clone()))?;
            (next, ticket)
        };
        let doc = document::delete_accepted(&next, ts, token.as_deref());
        let accepted = vec![(topic::response(thing, Operation::Delete, "accepted"), doc)];
        Ok((accepted, ticket))
    }
}

/// Responses and the ticket of the change, or a rejection with the request's client token
/// if it had a readable one.
type Outcome = Result<(Vec<Response>, Ticket), (Rejection, Option<String>)>;

fn no_shadow(thing: &str) -> Rejection {
    Rejection::new(404, format!("No shadow exists with name: '{thing}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(responses: &[Response]) -> Vec<String> {
        responses.iter().map(|(t, _)| t.clone()).collect()
    }

    #[test]
    fn update_then_get_then_delete() {
        let service = ShadowService::new(None);
        let out = service.respond(
            "T",
            Operation::Update,
            br#"{"state":{"desired":{"on":true}},"clientToken":"c1"}"#,
        );
        assert_eq!(
            topics(&out),
            [
                "$aws/things/T/shadow/update/accepted",
                "$aws/things/T/shadow/update/delta",
                "$aws/things/T/shadow/update/documents"
            ]
        );
        assert_eq!(out[1].1["state"], serde_json::json!({"on": true}));
        assert_eq!(out[1].1["clientToken"], "c1");
        let got = service.respond("T", Operation::Get, b"");
        assert_eq!(got[0].1["version"], 1);
        assert_eq!(got[0].1["state"]["delta"]["on"], true);
        let deleted = service.respond("T", Operation::Delete, b"");
        assert_eq!(topics(&deleted), ["$aws/things/T/shadow/delete/accepted"]);
        let missing = service.respond("T", Operation::Get, br#"{"clientToken":"c2"}"#);
        assert_eq!(missing[0].0, "$aws/things/T/shadow/get/rejected");
        assert_eq!(missing[0].1["code"], 404);
        assert_eq!(missing[0].1["clientToken"], "c2");
    }

    #[test]
    fn conflicts_and_bad_names_are_rejected() {
        let service = ShadowService::new(None);
        service.respond("T", Operation::Update, br#"{"state":{"reported":{"a":1}}}"#);
        service.respond("T", Operation::Update, br#"{"state":{"reported":{"a":2}}}"#);
        let stale = service.respond(
            "T",
            Operation::Update,
            br#"{"state":{"desired":{"a":3}},"version":1}"#,
        );
        assert_eq!(stale[0].0, "$aws/things/T/shadow/update/rejected");
        assert_eq!(stale[0].1["code"], 409);
        assert_eq!(stale[0].1["message"], "Version conflict");
        let bad = service.respond("a.b", Operation::Get, b"");
        assert_eq!(bad[0].1["code"], 400);
    }
}
