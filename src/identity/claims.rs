//! Registered JWT claims (RFC 7519 section 4.1): their types, and the unverified peek that
//! rules identities out before any signature is checked.
//!
//! [`check_registered`] runs on the claims of a token whose signature has verified, before
//! any of them is used: `iss`, `sub` and `jti` are one JSON string; `aud` is one string or a
//! non-empty array of strings; `exp`, `nbf` and `iat` are one NumericDate rule, a JSON
//! integer from 0 to [`MAX_NUMERIC_DATE`] (RFC 7519 allows fractions; topicguard refuses
//! them, so one integer comparison decides expiry, with no float rounding). `null` is not a
//! value of any of them. Anything else is a [`JwtError::RegisteredClaim`], never a coercion:
//! an `iss` array that contains the issuer is refused, not matched.
//!
//! [`Peek`] reads `iss` and `aud` from a token *without* verifying it, only so the
//! selection can skip identities whose `issuer` or `audience` the token cannot satisfy; a
//! skipped identity would have refused the token anyway, so the peek never decides who a
//! token binds as. This module never returns claims for use.

use super::jwt_error::{JwtError, MAX_TOKEN_BYTES};
use base64::Engine as _;
use serde_json::{Map, Value};

/// The largest NumericDate accepted: 9999-12-31T23:59:59Z.
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

const STRING_CLAIMS: [&str; 3] = ["iss", "sub", "jti"];
const DATE_CLAIMS: [&str; 3] = ["exp", "nbf", "iat"];

/// Checks the types of the registered claims present in `claims`.
pub fn check_registered(claims: &Map<String, Value>) -> Result<(), JwtError> {
    for name in STRING_CLAIMS {
        if let Some(value) = claims.get(name)
            && !value.is_string()
        {
            return Err(wrong_type(name, value, "one string"));
        }
    }
    if let Some(aud) = claims.get("aud") {
        let ok = match aud {
            Value::String(_) => true,
            Value::Array(items) => !items.is_empty() && items.iter().all(Value::is_string),
            _ => false,
        };
        if !ok {
            return Err(wrong_type(
                "aud",
                aud,
                "one string or a non-empty array of strings",
            ));
        }
    }
    for name in DATE_CLAIMS {
        if let Some(value) = claims.get(name)
            && numeric_date(value).is_none()
        {
            return Err(wrong_type(
                name,
                value,
                "a NumericDate: a JSON integer of seconds from 0 to 253402300799",
            ));
        }
    }
    Ok(())
}

/// A NumericDate under topicguard's rule, or `None`.
pub fn numeric_date(value: &Value) -> Option<u64> {
    value.as_u64().filter(|n| *n <= MAX_NUMERIC_DATE)
}

fn wrong_type(claim: &str, value: &Value, expected: &'static str) -> JwtError {
    JwtError::RegisteredClaim {
        claim: claim.to_string(),
        found: describe(value),
        expected,
    }
}

/// What a JSON value is, for messages (its kind, never its content).
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Number(n) if n.is_f64() => "a number with a fraction or exponent".to_string(),
        Value::Number(n) if n.is_i64() && !n.is_u64() => "a negative number".to_string(),
        Value::Number(n) if n.as_u64().is_some_and(|n| n > MAX_NUMERIC_DATE) => {
            "a number past 253402300799".to_string()
        }
        Value::Number(_) => "a number".to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Array(items) if items.is_empty() => "an empty array".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// `iss` and `aud` as an unverified token states them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Peek {
    pub(crate) iss: Option<Value>,
    pub(crate) aud: Option<Value>,
}

impl Peek {
    /// Reads the payload without verifying anything. Fails for a token no identity could
    /// accept: too long, not three parts, a payload that is not a base64url JSON object.
    pub fn read(token: &str) -> Result<Peek, JwtError> {
        let malformed = |reason: &str| JwtError::Malformed {
            reason: reason.to_string(),
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::TooLong {
                len: token.len(),
                max: MAX_TOKEN_BYTES,
            });
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [_, payload, _] = parts.as_slice() else {
            return Err(malformed("a JWT has exactly three dot-separated parts"));
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| malformed("the payload is not base64url"))?;
        let Ok(Value::Object(mut claims)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(malformed("the payload is not a JSON object"));
        };
        Ok(Peek {
            iss: claims.remove("iss"),
            aud: claims.remove("aud"),
        })
    }

    /// Whether a verifier with this `issuer` and `audience` could accept the token: the
    /// same tests the verifier makes on the verified claims (one string `iss` equal to the
    /// issuer; `aud` holding the audience; no `aud` when the identity sets no audience).
    pub fn fits(&self, issuer: Option<&str>, audience: Option<&str>) -> bool {
        let issuer_fits = match issuer {
            None => true,
            Some(expected) => self.iss.as_ref().and_then(Value::as_str) == Some(expected),
        };
        let audience_fits = match (audience, &self.aud) {
            (None, aud) => aud.is_none(),
            (Some(_), None) => false,
            (Some(expected), Some(Value::String(aud))) => aud == expected,
            (Some(expected), Some(Value::Array(items))) => {
                items.iter().any(|item| item.as_str() == Some(expected))
            }
            (Some(_), Some(_)) => false,
        };
        issuer_fits && audience_fits
    }

    /// The `iss` for messages: escaped, at most 64 characters, or `(none)`.
    pub fn issuer_text(&self) -> String {
        shown(self.iss.as_ref())
    }

    /// The `aud` for messages: escaped, at most 64 characters, or `(none)`.
    pub fn audience_text(&self) -> String {
        shown(self.aud.as_ref())
    }
}

fn shown(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "(none)".to_string();
    };
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let mut out: String = text.chars().take(64).flat_map(char::escape_debug).collect();
    if text.chars().count() > 64 {
        out.push('…');
    }
    format!("`{out}`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(claims: Value) -> Result<(), JwtError> {
        check_registered(claims.as_object().expect("an object"))
    }

    #[test]
    fn registered_claims_have_one_type_each() {
        let ok = [
            json!({"iss": "i", "sub": "s", "jti": "j", "aud": "a", "exp": 1, "nbf": 0, "iat": 5}),
            json!({"aud": ["a", "b"], "exp": MAX_NUMERIC_DATE}),
            json!({}),
        ];
        for claims in ok {
            assert_eq!(check(claims.clone()), Ok(()), "{claims}");
        }
        let bad = [
            json!({"iss": ["https://idp/"]}),
            json!({"iss": 7}),
            json!({"iss": null}),
            json!({"sub": 42}),
            json!({"jti": ["J1"]}),
            json!({"aud": []}),
            json!({"aud": ["a", 1]}),
            json!({"aud": {"a": 1}}),
            json!({"aud": null}),
            json!({"exp": 1.5}),
            json!({"exp": 1e9}),
            json!({"exp": -1}),
            json!({"exp": "1800000000"}),
            json!({"exp": MAX_NUMERIC_DATE + 1}),
            json!({"nbf": "now"}),
            json!({"iat": true}),
        ];
        for claims in bad {
            assert!(
                matches!(check(claims.clone()), Err(JwtError::RegisteredClaim { .. })),
                "{claims}"
            );
        }
    }

    #[test]
    fn the_peek_is_exactly_the_verifier_tests() {
        let peek = |iss: Value, aud: Option<Value>| Peek {
            iss: Some(iss),
            aud,
        };
        let one = peek(json!("I"), Some(json!("A")));
        assert!(one.fits(Some("I"), Some("A")));
        assert!(one.fits(None, Some("A")));
        assert!(!one.fits(Some("I"), None), "an aud needs an audience");
        assert!(!one.fits(Some("J"), Some("A")));
        let array_iss = peek(json!(["I"]), Some(json!(["B", "A"])));
        assert!(!array_iss.fits(Some("I"), Some("A")), "iss is one string");
        assert!(array_iss.fits(None, Some("A")));
        assert!(peek(json!("I"), None).fits(Some("I"), None));
    }

    #[test]
    fn the_peek_refuses_what_no_identity_could_accept() {
        assert!(matches!(Peek::read("a.b"), Err(JwtError::Malformed { .. })));
        assert!(matches!(
            Peek::read("a.!!.c"),
            Err(JwtError::Malformed { .. })
        ));
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(Peek::read(&long), Err(JwtError::TooLong { .. })));
        let array = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("[1]");
        assert!(matches!(
            Peek::read(&format!("h.{array}.s")),
            Err(JwtError::Malformed { .. })
        ));
    }
}
