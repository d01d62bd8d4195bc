//! Request fields: the form-encoded or JSON body a broker POSTs, as name/value pairs.
//!
//! RabbitMQ sends `application/x-www-form-urlencoded`, EMQX sends JSON, mosquitto-go-auth
//! either. [`Fields::parse`] reads both into one flat list of strings and refuses what a
//! lenient parser would silently reinterpret: invalid UTF-8 (never replaced by U+FFFD, so
//! two different byte strings can never become the same client id), malformed `%` escapes,
//! a field given twice (which of the two would count?), more than [`MAX_FIELDS`] fields,
//! nested JSON values, and bodies whose media type is neither. Linear in the body;
//! allocation bounded by it. This module never decides anything: a [`FieldError`] becomes
//! a 4xx with a deny.

use std::borrow::Cow;
use std::fmt;

/// The longest value accepted for a field that keys a session (username, client id, vhost).
pub const MAX_KEY_FIELD_BYTES: usize = 1024;
/// The most fields a request may have (RabbitMQ sends at most ten): keeps the duplicate
/// check, which compares each name with the ones before it, linear in the body.
pub const MAX_FIELDS: usize = 32;

/// Why a request's fields could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The content type is not one the endpoint reads (the type, what was expected).
    #[error("unsupported content type `{0}` (expected {1})")]
    ContentType(String, &'static str),
    /// The body is not UTF-8.
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    /// A form field's percent-encoding is malformed.
    #[error("field `{name}`: malformed percent-encoding")]
    BadEscape {
        /// The field's name.
        name: String,
    },
    /// A JSON body is not a flat object of strings, numbers and booleans.
    #[error("the body is not a JSON object of strings, numbers and booleans: {0}")]
    BadJson(String),
    /// A field is given twice.
    #[error("field `{0}` is given more than once")]
    Duplicate(String),
    /// More fields than the limit.
    #[error("more than {MAX_FIELDS} fields")]
    TooMany,
    /// A required field is missing.
    #[error("required field `{0}` is missing")]
    Missing(&'static str),
    /// A required field is empty.
    #[error("field `{0}` is empty")]
    Empty(&'static str),
    /// A field is longer than its limit.
    #[error("field `{name}` is {len} bytes long (limit {max})")]
    TooLong {
        /// The field's name.
        name: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A field's value is not one the endpoint accepts.
    #[error("field `{name}` has an unsupported value `{value}`")]
    BadValue {
        /// The field's name.
        name: &'static str,
        /// The value.
        value: String,
    },
}

/// Which body encodings an endpoint accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-www-form-urlencoded` only.
    Form,
    /// `application/json` only.
    Json,
    /// Either, by the request's content type.
    FormOrJson,
}

impl Encoding {
    fn expected(self) -> &'static str {
        match self {
            Encoding::Form => "application/x-www-form-urlencoded",
            Encoding::Json => "application/json",
            Encoding::FormOrJson => "application/json or application/x-www-form-urlencoded",
        }
    }
}

/// The fields of one request, in body order, each name at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Fields<'a> {
    /// Reads a body of the given media type (`Content-Type`, parameters ignored).
    pub fn parse(
        content_type: Option<&str>,
        body: &'a [u8],
        accepted: Encoding,
    ) -> Result<Fields<'a>, FieldError> {
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        let is_form = media.as_deref() == Some("application/x-www-form-urlencoded");
        let is_json = media.as_deref() == Some("application/json");
        match accepted {
            Encoding::Form | Encoding::FormOrJson if is_form => Fields::form(body),
            Encoding::Json | Encoding::FormOrJson if is_json => Fields::json(body),
            _ => Err(FieldError::ContentType(
                media.unwrap_or_else(|| "(none)".into()),
                accepted.expected(),
            )),
        }
    }

    /// `a=1&b=x%2Fy`: `+` is a space, `%XX` a byte, the result must be UTF-8.
    pub fn form(body: &'a [u8]) -> Result<Fields<'a>, FieldError> {
        let text = std::str::from_utf8(body).map_err(|_| FieldError::NotUtf8)?;
        let mut fields = Fields::default();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name, name)?;
            let value = decode(value, &name)?;
            fields.push(name, value)?;
        }
        Ok(fields)
    }

    /// A flat JSON object; numbers and booleans become their JSON text.
    pub fn json(body: &'a [u8]) -> Result<Fields<'a>, FieldError> {
        let object: FlatObject =
            serde_json::from_slice(body).map_err(|e| FieldError::BadJson(e.to_string()))?;
        let mut fields = Fields::default();
        for (name, value) in object.0 {
            fields.push(Cow::Owned(name), Cow::Owned(value))?;
        }
        Ok(fields)
    }

    fn push(&mut self, name: Cow<'a, str>, value: Cow<'a, str>) -> Result<(), FieldError> {
        if self.pairs.len() >= MAX_FIELDS {
            return Err(FieldError::TooMany);
        }
        if self.pairs.iter().any(|(n, _)| *n == name) {
            return Err(FieldError::Duplicate(name.into_owned()));
        }
        self.pairs.push((name, value));
        Ok(())
    }

    /// The field's value, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The field's value; missing is an error (an empty value is returned as is).
    pub fn require(&self, name: &'static str) -> Result<&str, FieldError> {
        self.get(name).ok_or(FieldError::Missing(name))
    }

    /// A non-empty value of at most [`MAX_KEY_FIELD_BYTES`]: one that keys a session.
    pub fn key(&self, name: &'static str) -> Result<&str, FieldError> {
        let value = self.require(name)?;
        if value.is_empty() {
            return Err(FieldError::Empty(name));
        }
        if value.len() > MAX_KEY_FIELD_BYTES {
            return Err(FieldError::TooLong {
                name,
                len: value.len(),
                max: MAX_KEY_FIELD_BYTES,
            });
        }
        Ok(value)
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Percent-decodes one form component strictly.
fn decode<'a>(raw: &'a str, name: &str) -> Result<Cow<'a, str>, FieldError> {
    if !raw.contains(['%', '+']) {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let digit = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
                let (Some(high), Some(low)) = (digit(i + 1), digit(i + 2)) else {
                    return Err(FieldError::BadEscape {
                        name: name.to_string(),
                    });
                };
                out.push((high * 16 + low) as u8);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| FieldError::NotUtf8)
}

/// A JSON object whose values are scalars, keys in order, duplicates kept (to refuse them).
struct FlatObject(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for FlatObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FlatVisitor)
    }
}

struct FlatVisitor;

impl<'de> serde::de::Visitor<'de> for FlatVisitor {
    type Value = FlatObject;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object whose values are strings, numbers or booleans")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FlatObject, A::Error> {
        let mut pairs = Vec::new();
        while let Some((name, value)) = map.next_entry::<String, serde_json::Value>()? {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "field `{name}` is {}, not a string, number or boolean",
                        kind(&other)
                    )));
                }
            };
            pairs.push((name, text));
        }
        Ok(FlatObject(pairs))
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
        _ => "a scalar",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode_strictly() {
        let f = Fields::form(b"username=u1&client_id=xfi%3AP1_A1%3Aclt%3AJ1&vhost=%2F&tags=&x=a+b")
            .unwrap();
        assert_eq!(f.get("client_id"), Some("xfi:P1_A1:clt:J1"));
        assert_eq!(f.get("vhost"), Some("/"));
        assert_eq!(f.get("tags"), Some(""));
        assert_eq!(f.get("x"), Some("a b"));
        assert_eq!(f.get("missing"), None);
        for bad in [&b"a=%zz"[..], b"a=%4", b"a=%", b"a=%+1", b"a=%-1"] {
            assert!(
                matches!(Fields::form(bad), Err(FieldError::BadEscape { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(Fields::form(b"a=%ff"), Err(FieldError::NotUtf8));
        assert_eq!(Fields::form(b"a=\xff"), Err(FieldError::NotUtf8));
        assert_eq!(
            Fields::form(b"client_id=A&client_id=B"),
            Err(FieldError::Duplicate("client_id".into()))
        );
        assert_eq!(
            Fields::form(b"client%5Fid=A&client_id=B"),
            Err(FieldError::Duplicate("client_id".into())),
            "an escaped name is the same name"
        );
    }

    #[test]
    fn json_fields_are_flat_and_unique() {
        let f = Fields::json(br#"{"clientid":"c1","acc":4,"retain":false}"#).unwrap();
        assert_eq!(f.get("acc"), Some("4"));
        assert_eq!(f.get("retain"), Some("false"));
        assert_eq!(f.len(), 3);
        assert_eq!(
            Fields::json(br#"{"topic":"a","topic":"b"}"#),
            Err(FieldError::Duplicate("topic".into()))
        );
        for bad in [
            &br#"{"topic":["a"]}"#[..],
            br#"{"topic":null}"#,
            br#"{"topic":{"x":1}}"#,
            br#"["topic"]"#,
            b"",
            b"{",
        ] {
            assert!(
                matches!(Fields::json(bad), Err(FieldError::BadJson(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_media_type_picks_the_parser_and_others_are_refused() {
        let form = Some("application/x-www-form-urlencoded; charset=utf-8");
        assert!(Fields::parse(form, b"a=1", Encoding::Form).is_ok());
        assert!(Fields::parse(form, b"a=1", Encoding::Json).is_err());
        let json = Some("Application/JSON");
        assert!(Fields::parse(json, br#"{"a":"1"}"#, Encoding::FormOrJson).is_ok());
        assert!(matches!(
            Fields::parse(None, b"a=1", Encoding::FormOrJson),
            Err(FieldError::ContentType(..))
        ));
        assert!(Fields::parse(Some("text/plain"), b"a=1", Encoding::Form).is_err());
    }

    #[test]
    fn the_number_of_fields_is_bounded() {
        let many: Vec<String> = (0..=MAX_FIELDS).map(|i| format!("f{i}=x")).collect();
        assert_eq!(
            Fields::form(many.join("&").as_bytes()),
            Err(FieldError::TooMany)
        );
        assert!(Fields::form(many[..MAX_FIELDS].join("&").as_bytes()).is_ok());
        let json: Vec<String> = (0..=MAX_FIELDS).map(|i| format!("\"f{i}\":1")).collect();
        let body = format!("{{{}}}", json.join(","));
        assert_eq!(Fields::json(body.as_bytes()), Err(FieldError::TooMany));
    }

    #[test]
    fn key_fields_are_bounded_and_non_empty() {
        let long = format!("u={}", "x".repeat(MAX_KEY_FIELD_BYTES + 1));
        let f = Fields::form(long.as_bytes()).unwrap();
        assert!(matches!(f.key("u"), Err(FieldError::TooLong { .. })));
        let f = Fields::form(b"u=").unwrap();
        assert_eq!(f.key("u"), Err(FieldError::Empty("u")));
        assert_eq!(f.key("v"), Err(FieldError::Missing("v")));
    }
}
