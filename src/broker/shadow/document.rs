//! One thing's shadow: desired and reported state, the computed delta, the version, and
//! the AWS-shaped JSON documents answered on `/accepted`, `/rejected`, `/delta` and
//! `/documents`.
//!
//! Requests are validated before they touch state (size, JSON, `state` node, nesting,
//! `version`, `clientToken`); a rejected request never changes the shadow. Merging follows
//! AWS: objects merge key by key, `null` deletes a key (or a whole section), anything else
//! replaces. Every accepted update or delete increments `version`; an update carrying a
//! version older than the current one is a 409 "Version conflict" (optimistic
//! locking). This module must never do I/O or know about topics or policies.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Largest request payload (AWS: 8 KiB).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Deepest nesting inside `desired` / `reported` (AWS: 6 levels).
pub const MAX_DEPTH: usize = 6;
/// Longest `clientToken` (AWS: 64 bytes).
pub const MAX_CLIENT_TOKEN: usize = 64;

/// A refused request: the AWS error document's code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub(crate) code: u16,
    pub(crate) message: String,
}

impl Rejection {
    pub(crate) fn new(code: u16, message: impl Into<String>) -> Rejection {
        Rejection {
            code,
            message: message.into(),
        }
    }

    /// `{"code", "message", "timestamp", "clientToken"?}`.
    pub fn document(&self, timestamp: u64, client_token: Option<&str>) -> Value {
        let mut doc = json!({"code": self.code, "message": self.message, "timestamp": timestamp});
        add_token(&mut doc, client_token);
        doc
    }
}

/// The stored shadow. A deleted shadow keeps its version (a tombstone), so a stale update
/// sent after a delete is still refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shadow {
    pub(crate) exists: bool,
    pub(crate) version: u64,
    #[serde(default)]
    pub(crate) desired: Map<String, Value>,
    #[serde(default)]
    pub(crate) reported: Map<String, Value>,
}

/// A validated update request.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    /// `None`: untouched; `Some(None)`: `null`, clear the section; `Some(Some(map))`: merge.
    pub desired: Option<Option<Map<String, Value>>>,
    pub(crate) reported: Option<Option<Map<String, Value>>>,
    pub(crate) version: Option<u64>,
    pub(crate) client_token: Option<String>,
}

/// The `clientToken` of a get/delete request (an empty payload has none).
pub fn client_token_of(payload: &[u8]) -> Result<Option<String>, Rejection> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let root = parse_object(payload)?;
    token(&root)
}

fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, Rejection> {
    if payload.len() > MAX_REQUEST_BYTES {
        return Err(Rejection::new(
            413,
            "The payload exceeds the maximum size allowed",
        ));
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Rejection::new(400, "Payload must be a JSON object")),
        Err(e) => Err(Rejection::new(400, format!("Invalid JSON: {e}"))),
    }
}

fn token(root: &Map<String, Value>) -> Result<Option<String>, Rejection> {
    match root.get("clientToken") {
        None => Ok(None),
        Some(Value::String(t)) if t.len() <= MAX_CLIENT_TOKEN => Ok(Some(t.clone())),
        Some(Value::String(_)) => Err(Rejection::new(
            400,
            format!("clientToken is longer than {MAX_CLIENT_TOKEN} bytes"),
        )),
        Some(_) => Err(Rejection::new(400, "clientToken must be a string")),
    }
}

impl Update {
    /// Validates an update request payload.
    pub fn parse(payload: &[u8]) -> Result<Update, Rejection> {
        let root = parse_object(payload)?;
        let client_token = token(&root)?;
        let state = match root.get("state") {
            Some(Value::Object(state)) => state,
            Some(_) => return Err(Rejection::new(400, "State node must be an object")),
            None => return Err(Rejection::new(400, "Missing required node: state")),
        };
        let version = match root.get("version") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| Rejection::new(400, "Invalid version: not a whole number"))?,
            ),
        };
        let desired = section(state, "desired")?;
        let reported = section(state, "reported")?;
        if desired.is_none() && reported.is_none() {
            return Err(Rejection::new(
                400,
                "State contains an invalid node: expected desired or reported",
            ));
        }
        Ok(Update {
            desired,
            reported,
            version,
            client_token,
        })
    }
}

type Section = Option<Option<Map<String, Value>>>;

fn section(state: &Map<String, Value>, name: &str) -> Result<Section, Rejection> {
    match state.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Object(map)) => {
            if depth(map) > MAX_DEPTH {
                return Err(Rejection::new(
                    400,
                    format!("JSON contains too many levels of nesting; maximum is {MAX_DEPTH}"),
                ));
            }
            Ok(Some(Some(map.clone())))
        }
        Some(_) => Err(Rejection::new(
            400,
            format!("{name} node must be an object"),
        )),
    }
}

/// Nesting depth of an object (`{}` and `{"a":1}` are 1). Parsing already bounds recursion.
fn depth(map: &Map<String, Value>) -> usize {
    1 + map
        .values()
        .filter_map(Value::as_object)
        .map(depth)
        .max()
        .unwrap_or(0)
}

/// Merges `patch` into `target`: objects key by key, `null` deletes.
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let slot = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(existing) = slot {
                    merge(existing, inner);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

fn apply_section(target: &mut Map<String, Value>, section: &Section) {
    match section {
        None => {}
        Some(None) => target.clear(),
        Some(Some(patch)) => merge(target, patch),
    }
}

/// The desired keys whose value differs from the reported one (recursively).
pub fn delta(desired: &Map<String, Value>, reported: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, want) in desired {
        match (want, reported.get(key)) {
            (Value::Object(w), Some(Value::Object(r))) => {
                let inner = delta(w, r);
                if !inner.is_empty() {
                    out.insert(key.clone(), Value::Object(inner));
                }
            }
            (w, Some(r)) if w == r => {}
            (w, _) => {
                out.insert(key.clone(), w.clone());
            }
        }
    }
    out
}

fn add_token(doc: &mut Value, client_token: Option<&str>) {
    if let (Some(t), Value::Object(map)) = (client_token, doc) {
        map.insert("clientToken".into(), Value::String(t.into()));
    }
}

impl Shadow {
    /// Applies an update; returns the new shadow, or the rejection (the shadow unchanged).
    pub fn updated(&self, update: &Update) -> Result<Shadow, Rejection> {
        if let Some(v) = update.version
            && v < self.version
        {
            return Err(Rejection::new(409, "Version conflict"));
        }
        let mut next = if self.exists {
            self.clone()
        } else {
            Shadow {
                version: self.version,
                ..Shadow::default()
            }
        };
        apply_section(&mut next.desired, &update.desired);
        apply_section(&mut next.reported, &update.reported);
        next.exists = true;
        next.version = self.version + 1;
        Ok(next)
    }

    /// The delete result: a tombstone one version on.
    pub fn deleted(&self) -> Shadow {
        Shadow {
            exists: false,
            version: self.version + 1,
            ..Shadow::default()
        }
    }

    pub(crate) fn delta(&self) -> Map<String, Value> {
        delta(&self.desired, &self.reported)
    }

    /// `{"desired", "reported"}` with empty sections left out.
    fn state(&self) -> Value {
        let mut state = Map::new();
        if !self.desired.is_empty() {
            state.insert("desired".into(), Value::Object(self.desired.clone()));
        }
        if !self.reported.is_empty() {
            state.insert("reported".into(), Value::Object(self.reported.clone()));
        }
        Value::Object(state)
    }

    /// The `/get/accepted` document: state with its delta, version, timestamp.
    pub fn get_document(&self, timestamp: u64, client_token: Option<&str>) -> Value {
        let mut state = self.state();
        let delta = self.delta();
        if let (false, Value::Object(map)) = (delta.is_empty(), &mut state) {
            map.insert("delta".into(), Value::Object(delta));
        }
        let mut doc = json!({"state": state, "version": self.version, "timestamp": timestamp});
        add_token(&mut doc, client_token);
        doc
    }

    /// `{"state", "version"}` as in `/documents`' previous and current.
    fn snapshot(&self) -> Value {
        if self.exists {
            json!({"state": self.state(), "version": self.version})
        } else {
            Value::Null
        }
    }
}

/// `/update/accepted`: the sections the request carried, the new version.
pub fn update_accepted(update: &Update, next: &Shadow, timestamp: u64) -> Value {
    let mut state = Map::new();
    for (name, section) in [("desired", &update.desired), ("reported", &update.reported)] {
        match section {
            None => {}
            Some(None) => {
                state.insert(name.into(), Value::Null);
            }
            Some(Some(map)) => {
                state.insert(name.into(), Value::Object(map.clone()));
            }
        }
    }
    let mut doc = json!({"state": state, "version": next.version, "timestamp": timestamp});
    add_token(&mut doc, update.client_token.as_deref());
    doc
}

/// `/update/delta`: published when the update touched `desired` and a difference remains.
pub fn delta_document(update: &Update, next: &Shadow, timestamp: u64) -> Option<Value> {
    let delta = next.delta();
    if update.desired.is_none() || delta.is_empty() {
        return None;
    }
    let mut doc = json!({"state": delta, "version": next.version, "timestamp": timestamp});
    add_token(&mut doc, update.client_token.as_deref());
    Some(doc)
}

/// `/update/documents`: the shadow before and after.
pub fn documents(
    previous: &Shadow,
    current: &Shadow,
    timestamp: u64,
    client_token: Option<&str>,
) -> Value {
    let mut doc = json!({
        "previous": previous.snapshot(),
        "current": current.snapshot(),
        "timestamp": timestamp,
    });
    add_token(&mut doc, client_token);
    doc
}

/// `/delete/accepted`.
pub fn delete_accepted(next: &Shadow, timestamp: u64, client_token: Option<&str>) -> Value {
    let mut doc = json!({"version": next.version, "timestamp": timestamp});
    add_token(&mut doc, client_token);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(text: &str) -> Update {
        Update::parse(text.as_bytes()).expect("valid update")
    }

    #[test]
    fn versions_increment_and_delta_is_the_difference() {
        let s0 = Shadow::default();
        let s1 = s0
            .updated(&update(r#"{"state":{"desired":{"on":true,"level":5}}}"#))
            .unwrap();
        assert_eq!((s1.exists, s1.version), (true, 1));
        let s2 = s1
            .updated(&update(r#"{"state":{"reported":{"on":true,"level":3}}}"#))
            .unwrap();
        assert_eq!(s2.version, 2);
        assert_eq!(Value::Object(s2.delta()), json!({"level": 5}));
        let s3 = s2
            .updated(&update(r#"{"state":{"desired":{"level":null}}}"#))
            .unwrap();
        assert!(s3.delta().is_empty());
        assert_eq!(Value::Object(s3.desired.clone()), json!({"on": true}));
    }

    #[test]
    fn stale_version_is_a_409_and_leaves_the_shadow_unchanged() {
        let s = Shadow {
            exists: true,
            version: 4,
            ..Shadow::default()
        };
        let stale = update(r#"{"state":{"desired":{"on":true}},"version":3}"#);
        assert_eq!(
            s.updated(&stale),
            Err(Rejection::new(409, "Version conflict"))
        );
        let current = update(r#"{"state":{"desired":{"on":true}},"version":4}"#);
        assert_eq!(s.updated(&current).map(|n| n.version), Ok(5));
    }

    #[test]
    fn nested_objects_merge_and_nested_delta() {
        let s = Shadow::default()
            .updated(&update(
                r#"{"state":{"desired":{"c":{"r":1,"g":2}},"reported":{"c":{"r":1,"g":0}}}}"#,
            ))
            .unwrap();
        assert_eq!(Value::Object(s.delta()), json!({"c": {"g": 2}}));
    }

    #[test]
    fn bad_requests_are_rejected_with_400_or_413() {
        for (payload, code) in [
            ("not json", 400),
            ("[]", 400),
            (r#"{"version":1}"#, 400),
            (r#"{"state":5}"#, 400),
            (r#"{"state":{}}"#, 400),
            (r#"{"state":{"desired":3}}"#, 400),
            (r#"{"state":{"desired":{}},"version":-1}"#, 400),
            (r#"{"state":{"desired":{}},"clientToken":7}"#, 400),
            (
                r#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}}"#,
                400,
            ),
        ] {
            let got = Update::parse(payload.as_bytes()).map(|_| ());
            assert_eq!(got.map_err(|r| r.code), Err(code), "{payload}");
        }
        let big = format!(
            r#"{{"state":{{"desired":{{"x":"{}"}}}}}}"#,
            "a".repeat(9000)
        );
        assert_eq!(Update::parse(big.as_bytes()).map_err(|r| r.code), Err(413));
    }

    #[test]
    fn delete_keeps_the_version_as_a_tombstone() {
        let s = Shadow::default()
            .updated(&update(r#"{"state":{"reported":{"on":false}}}"#))
            .unwrap();
        let gone = s.deleted();
        assert_eq!((gone.exists, gone.version), (false, 2));
        let again = gone
            .updated(&update(r#"{"state":{"reported":{"on":true}}}"#))
            .unwrap();
        assert_eq!((again.exists, again.version), (true, 3));
        assert_eq!(documents(&gone, &again, 0, None)["previous"], Value::Null);
    }
}
