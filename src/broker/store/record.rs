//! The byte layout of what the store keeps: a queued message, a session's metadata, a
//! retained message with its publisher, and the principal that owns or published them.
//!
//! Every record starts with [`RECORD_VERSION`]; fields follow in a fixed order, integers
//! little-endian, strings and byte strings prefixed by a `u32` length. Decoding checks every
//! length against what is left, every enum byte against its known values and every string for
//! UTF-8, and fails with a [`RecordError`] naming the field: a damaged or foreign record is an
//! error, never a panic and never a guess. Time is stored as wall-clock Unix milliseconds (an
//! `Instant` does not survive a restart). Costs: one copy of the payload per record. This
//! module must never do I/O or decide anything.

use crate::broker::message::{Delivery, Message};
use crate::broker::principal::{Principal, Publisher};
use crate::broker::router::Entry;
use crate::identity::{Identity, Provenance};
use crate::mqtt::codec::{Properties, QoS, RetainHandling, SubscriptionOptions};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The layout version every record starts with.
pub const RECORD_VERSION: u8 = 1;

/// A record that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct RecordError {
    pub(crate) field: &'static str,
    pub(crate) why: String,
}

fn bad(field: &'static str, why: impl Into<String>) -> RecordError {
    RecordError {
        field,
        why: why.into(),
    }
}

/// Wall-clock Unix milliseconds now.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Appends fields to a record.
pub struct Writer(pub Vec<u8>);

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    pub(crate) fn new() -> Writer {
        Writer(vec![RECORD_VERSION])
    }
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Every length the broker stores is bounded by its packet size limit.
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(v);
        self
    }
    pub(crate) fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
    fn opt<T>(&mut self, v: Option<T>, put: impl FnOnce(&mut Self, T)) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                put(self, v);
                self
            }
        }
    }
}

/// Reads fields of a record, each checked.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading a record, checking its version byte.
    pub fn new(data: &'a [u8]) -> Result<Reader<'a>, RecordError> {
        let mut reader = Reader { data };
        match reader.u8("version")? {
            RECORD_VERSION => Ok(reader),
            other => Err(bad(
                "version",
                format!("record layout {other}, this build reads {RECORD_VERSION}"),
            )),
        }
    }
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], RecordError> {
        if self.data.len() < n {
            return Err(bad(
                field,
                format!("needs {n} bytes, {} left", self.data.len()),
            ));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, RecordError> {
        Ok(self.array::<1>(field)?[0])
    }
    /// Reads a big-endian `u16`; `field` names it in an error.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], RecordError> {
        let len = self.u32(field)? as usize;
        self.take(field, len)
    }
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        let bytes = self.bytes(field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| bad(field, "not UTF-8"))
    }
    fn flag(&mut self, field: &'static str) -> Result<bool, RecordError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(bad(field, format!("flag byte {other}"))),
        }
    }
    fn opt<T>(
        &mut self,
        field: &'static str,
        get: impl FnOnce(&mut Self) -> Result<T, RecordError>,
    ) -> Result<Option<T>, RecordError> {
        match self.flag(field)? {
            false => Ok(None),
            true => get(self).map(Some),
        }
    }
    /// A count of following items, each at least `min_item` bytes: bounded by what is left.
    fn count(&mut self, field: &'static str, min_item: usize) -> Result<usize, RecordError> {
        let n = self.u32(field)? as usize;
        if n.saturating_mul(min_item) > self.data.len() {
            return Err(bad(
                field,
                format!("{n} items cannot fit in {} bytes", self.data.len()),
            ));
        }
        Ok(n)
    }
    /// Requires that nothing is left.
    pub fn end(&self) -> Result<(), RecordError> {
        match self.data.len() {
            0 => Ok(()),
            n => Err(bad("end", format!("{n} bytes after the last field"))),
        }
    }
}

fn qos_of(field: &'static str, byte: u8) -> Result<QoS, RecordError> {
    match byte {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        other => Err(bad(field, format!("QoS {other}"))),
    }
}

/// Appends a message (topic, payload, QoS, retain, forwardable properties, expiry deadline,
/// publishing client).
pub fn put_message(w: &mut Writer, m: &Message) {
    w.str(&m.topic)
        .bytes(&m.payload)
        .u8(m.qos as u8)
        .u8(u8::from(m.retain));
    let p = &m.properties;
    w.opt(p.payload_format_indicator, |w, v| {
        w.u8(v);
    });
    w.opt(p.content_type.as_deref(), |w, v| {
        w.str(v);
    });
    w.opt(p.response_topic.as_deref(), |w, v| {
        w.str(v);
    });
    w.opt(p.correlation_data.as_deref(), |w, v| {
        w.bytes(v);
    });
    w.u32(p.user_properties.len() as u32);
    for (k, v) in &p.user_properties {
        w.str(k).str(v);
    }
    let now = Instant::now();
    let deadline = m.expires_at.map(|at| {
        let left = at.saturating_duration_since(now).as_millis();
        unix_millis().saturating_add(u64::try_from(left).unwrap_or(u64::MAX))
    });
    w.opt(deadline, |w, v| {
        w.u64(v);
    });
    w.opt(m.publisher.as_deref(), |w, v| {
        w.str(v);
    });
}

/// Reads a message written by [`put_message`]; its expiry deadline becomes an `Instant`
/// again (a deadline already passed is kept as passed: the message is then never sent).
pub fn get_message(r: &mut Reader<'_>) -> Result<Message, RecordError> {
    let topic: Arc<str> = r.string("topic")?.into();
    let payload = Bytes::copy_from_slice(r.bytes("payload")?);
    let qos = qos_of("message qos", r.u8("message qos")?)?;
    let retain = r.flag("retain")?;
    let mut properties = Properties {
        payload_format_indicator: r.opt("payload format", |r| r.u8("payload format"))?,
        content_type: r.opt("content type", |r| r.string("content type"))?,
        response_topic: r.opt("response topic", |r| r.string("response topic"))?,
        correlation_data: r.opt("correlation data", |r| {
            r.bytes("correlation data").map(Bytes::copy_from_slice)
        })?,
        ..Properties::default()
    };
    let users = r.count("user properties", 8)?;
    for _ in 0..users {
        let key = r.string("user property name")?;
        let value = r.string("user property value")?;
        properties.user_properties.push((key, value));
    }
    let deadline = r.opt("expiry", |r| r.u64("expiry"))?;
    let now = Instant::now();
    let expires_at = deadline.map(|at| {
        let left = Duration::from_millis(at.saturating_sub(unix_millis()));
        now.checked_add(left).unwrap_or(now)
    });
    let publisher = r
        .opt("publisher", |r| r.string("publisher"))?
        .map(Arc::from);
    Ok(Message {
        topic,
        payload,
        qos,
        retain,
        properties,
        expires_at,
        publisher,
    })
}

/// A queued delivery: its QoS, retain flag and subscription ids, then the message.
pub fn delivery(d: &Delivery) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(d.qos as u8).u8(u8::from(d.retain));
    w.u32(d.subscription_ids.len() as u32);
    for id in &d.subscription_ids {
        w.u32(*id);
    }
    put_message(&mut w, &d.message);
    w.0
}

/// Reads a record written by [`delivery`]; `seq` is its key.
pub fn read_delivery(bytes: &[u8], seq: u64) -> Result<Delivery, RecordError> {
    let mut r = Reader::new(bytes)?;
    let qos = qos_of("delivery qos", r.u8("delivery qos")?)?;
    let retain = r.flag("delivery retain")?;
    let ids = r.count("subscription ids", 4)?;
    let mut subscription_ids = smallvec::SmallVec::new();
    for _ in 0..ids {
        subscription_ids.push(r.u32("subscription id")?);
    }
    let message = Arc::new(get_message(&mut r)?);
    r.end()?;
    Ok(Delivery {
        message,
        qos,
        retain,
        subscription_ids,
        seq,
    })
}

fn provenance_byte(p: Provenance) -> u8 {
    match p {
        Provenance::Jwt => 0,
        Provenance::Certificate => 1,
        Provenance::Anonymous => 2,
        Provenance::Asserted => 3,
    }
}

/// Appends a principal: identity name, kind of proof, credential expiry, attributes.
pub fn put_principal(w: &mut Writer, p: &Principal) {
    let identity = p.identity();
    w.str(&identity.kind)
        .u8(provenance_byte(identity.provenance));
    w.opt(identity.expires_at, |w, v| {
        w.u64(v);
    });
    w.u32(identity.attrs.len() as u32);
    for (name, value) in &identity.attrs {
        w.str(name).str(value);
    }
}

pub(crate) fn get_principal(r: &mut Reader<'_>) -> Result<Principal, RecordError> {
    let kind = r.string("identity")?;
    let provenance = match r.u8("provenance")? {
        0 => Provenance::Jwt,
        1 => Provenance::Certificate,
        2 => Provenance::Anonymous,
        3 => Provenance::Asserted,
        other => return Err(bad("provenance", format!("kind of proof {other}"))),
    };
    let expires_at = r.opt("credential expiry", |r| r.u64("credential expiry"))?;
    let n = r.count("attributes", 8)?;
    let mut attrs = std::collections::BTreeMap::new();
    for _ in 0..n {
        let name = r.string("attribute name")?;
        let value = r.string("attribute value")?;
        attrs.insert(name, value);
    }
    Ok(Principal::new(Identity {
        kind,
        attrs,
        expires_at,
        provenance,
    }))
}

/// A retained message with its publisher.
pub fn retained(message: &Message, publisher: &Publisher) -> Vec<u8> {
    let mut w = Writer::new();
    put_principal(&mut w, &publisher.principal);
    w.str(&publisher.client_id);
    put_message(&mut w, message);
    w.0
}

/// Reads a record written by [`retained`]. The publisher counts as never authorized under
/// any engine, so it is checked again under the current policy before any delivery.
pub fn read_retained(bytes: &[u8]) -> Result<(Message, Publisher), RecordError> {
    let mut r = Reader::new(bytes)?;
    let principal = get_principal(&mut r)?;
    let client_id: Arc<str> = r.string("publisher client id")?.into();
    let message = get_message(&mut r)?;
    r.end()?;
    let publisher = Publisher {
        principal,
        client_id,
        authorized_under: 0,
    };
    Ok((message, publisher))
}

/// What a session record holds besides its queue.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMeta {
    pub(crate) owner: Principal,
    pub(crate) expiry: u32,
    /// When its client left (Unix milliseconds); `None` while connected.
    pub offline_since: Option<u64>,
    pub(crate) subscriptions: Vec<(String, Entry)>,
}

fn handling_byte(h: RetainHandling) -> u8 {
    match h {
        RetainHandling::OnSubscribe => 0,
        RetainHandling::OnNewSubscription => 1,
        RetainHandling::Never => 2,
    }
}

pub(crate) fn session(meta: &SessionMeta) -> Vec<u8> {
    let mut w = Writer::new();
    put_principal(&mut w, &meta.owner);
    w.u32(meta.expiry);
    w.opt(meta.offline_since, |w, v| {
        w.u64(v);
    });
    w.u32(meta.subscriptions.len() as u32);
    for (filter, entry) in &meta.subscriptions {
        let o = &entry.options;
        w.str(filter).u8(o.qos as u8).u8(u8::from(o.no_local));
        w.u8(u8::from(o.retain_as_published))
            .u8(handling_byte(o.retain_handling));
        w.opt(entry.subscription_id, |w, v| {
            w.u32(v);
        });
    }
    w.0
}

pub(crate) fn read_session(bytes: &[u8]) -> Result<SessionMeta, RecordError> {
    let mut r = Reader::new(bytes)?;
    let owner = get_principal(&mut r)?;
    let expiry = r.u32("session expiry")?;
    let offline_since = r.opt("offline since", |r| r.u64("offline since"))?;
    let n = r.count("subscriptions", 9)?;
    let mut subscriptions = Vec::with_capacity(n);
    for _ in 0..n {
        let filter = r.string("filter")?;
        let qos = qos_of("subscription qos", r.u8("subscription qos")?)?;
        let no_local = r.flag("no local")?;
        let retain_as_published = r.flag("retain as published")?;
        let retain_handling = match r.u8("retain handling")? {
            0 => RetainHandling::OnSubscribe,
            1 => RetainHandling::OnNewSubscription,
            2 => RetainHandling::Never,
            other => return Err(bad("retain handling", format!("value {other}"))),
        };
        let subscription_id = r.opt("subscription id", |r| r.u32("subscription id"))?;
        let options = SubscriptionOptions {
            qos,
            no_local,
            retain_as_published,
            retain_handling,
        };
        let entry = Entry {
            options,
            subscription_id,
        };
        subscriptions.push((filter, entry));
    }
    r.end()?;
    Ok(SessionMeta {
        owner,
        expiry,
        offline_since,
        subscriptions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            topic: "a/b".into(),
            payload: Bytes::from_static(b"payload"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Properties {
                content_type: Some("text/plain".into()),
                correlation_data: Some(Bytes::from_static(b"c")),
                user_properties: vec![("k".into(), "v".into())],
                ..Properties::default()
            },
            expires_at: Some(Instant::now() + Duration::from_secs(60)),
            publisher: Some("pub-1".into()),
        }
    }

    fn owner() -> Principal {
        let mut identity = Identity::asserted("mobile", [("pid", "P1"), ("jti", "J1")]);
        identity.provenance = Provenance::Jwt;
        identity.expires_at = Some(1_900_000_000);
        Principal::new(identity)
    }

    #[test]
    fn records_read_back_what_was_written() {
        let d = Delivery {
            message: Arc::new(message()),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: [3, 9].into_iter().collect(),
            seq: 0,
        };
        let back = read_delivery(&delivery(&d), 42).expect("decodes");
        assert_eq!(
            (back.qos, back.seq, &back.subscription_ids[..]),
            (QoS::AtLeastOnce, 42, &[3, 9][..])
        );
        let m = &back.message;
        assert_eq!(
            (&*m.topic, &m.payload[..], m.qos, m.retain),
            ("a/b", &b"payload"[..], QoS::ExactlyOnce, true)
        );
        assert_eq!(
            m.properties.user_properties,
            [("k".to_string(), "v".to_string())]
        );
        assert_eq!(m.publisher.as_deref(), Some("pub-1"));
        let left = m.remaining_expiry(Instant::now()).expect("an expiry");
        assert!((58..=60).contains(&left), "{left}");
        let publisher = Publisher {
            principal: owner(),
            client_id: "c1".into(),
            authorized_under: 7,
        };
        let (message, publisher) = read_retained(&retained(&message(), &publisher)).unwrap();
        assert_eq!(publisher.principal, owner());
        assert_eq!(
            (&*publisher.client_id, publisher.authorized_under),
            ("c1", 0)
        );
        assert_eq!(&*message.topic, "a/b");
        let meta = SessionMeta {
            owner: owner(),
            expiry: 300,
            offline_since: Some(5),
            subscriptions: vec![(
                "$share/g/a/#".into(),
                Entry {
                    options: SubscriptionOptions::qos(QoS::ExactlyOnce),
                    subscription_id: Some(4),
                },
            )],
        };
        assert_eq!(read_session(&session(&meta)), Ok(meta));
    }

    #[test]
    fn damaged_records_are_errors_naming_the_field() {
        let meta = SessionMeta {
            owner: owner(),
            expiry: 1,
            offline_since: None,
            subscriptions: Vec::new(),
        };
        let bytes = session(&meta);
        for cut in 0..bytes.len() {
            assert!(read_session(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut future = bytes.clone();
        future[0] = RECORD_VERSION + 1;
        assert_eq!(read_session(&future).unwrap_err().field, "version");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(read_session(&longer).unwrap_err().field, "end");
        // A huge count is refused before anything is allocated for it.
        let mut w = Writer::new();
        put_principal(&mut w, &owner());
        w.u32(1).u8(0).u32(u32::MAX);
        assert_eq!(read_session(&w.0).unwrap_err().field, "subscriptions");
        let d = Delivery {
            message: Arc::new(message()),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: Default::default(),
            seq: 0,
        };
        let mut bytes = delivery(&d);
        bytes[1] = 7;
        assert_eq!(read_delivery(&bytes, 1).unwrap_err().field, "delivery qos");
    }
}
