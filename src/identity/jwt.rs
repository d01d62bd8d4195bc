//! JWT verification: a token and a `from jwt` identity block → a verified [`Identity`].
//!
//! [`JwtVerifier::verify`] closes what `jsonwebtoken` leaves open by default: the token
//! length is capped before any base64 or JSON decoding; the header's `alg` must be one the
//! identity's `algorithms` lists (`none` is never an algorithm; HS* verify only with an
//! explicit [`SharedSecret`]); a non-empty `crit` is rejected; keys come only from the
//! configured [`KeyStore`], chosen by `kid` (`jku`, `x5u`, `jwk`, `x5c` are never read);
//! `exp` is always required, `nbf` is validated, `iss` and `aud` are required whenever the
//! policy sets `issuer`/`audience` (and a token with an `aud` is refused when it sets none);
//! claims are decoded into a JSON object that refuses duplicate names, the registered claims
//! must have their RFC 7519 types ([`super::claims::check_registered`]), and every bound
//! claim must be a JSON string that passes [`validate_value`]. The keys are the identity's
//! own: those of its `trust` label (or the default keys when it has none). A configured
//! [`RevocationList`] refuses listed `jti`s. Every rejection is a [`JwtError`] saying why.
//! This module must never return an identity whose signature or claims it did not check.

use super::claims::{self, numeric_date};
use super::extract;
pub use super::jwt_error::{JwtError, MAX_TOKEN_BYTES};
use super::keys::{KeyMiss, KeyStore, RevocationList, SharedSecret};
use super::{Identity, Provenance};
use crate::ast::{AttrSource, IdentityKind};
use crate::check::{ClientPiece, IdentityDef, Require};
use crate::value::validate_value;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Header, Validation};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

/// Clock-skew allowance for `exp` and `nbf` when the policy sets no `leeway`.
pub const DEFAULT_LEEWAY_SECS: u64 = 5;
/// Algorithms allowed when the identity block has no `algorithms` line (never HMAC).
pub const DEFAULT_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// A problem with a `from jwt` identity block that prevents verifying with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    /// The identity is not verified from a JWT.
    #[error("identity `{0}` is not a `from jwt` identity")]
    NotJwt(String),
    /// An `algorithms` value is not a JWT algorithm.
    #[error("identity `{identity}`: `{value}` is not a JWT algorithm")]
    BadAlgorithm {
        /// The identity.
        identity: String,
        /// The value.
        value: String,
    },
    /// A `leeway` value is not a number of seconds.
    #[error("identity `{identity}`: `leeway {value}` is not a number of seconds")]
    BadLeeway {
        /// The identity.
        identity: String,
        /// The value.
        value: String,
    },
    /// An attribute bound from something other than a claim.
    #[error("identity `{identity}`: `{attr}` does not come from a claim")]
    NotAClaim {
        /// The identity.
        identity: String,
        /// The attribute.
        attr: String,
    },
}

/// Verification keys and lists shared by JWT identities.
#[derive(Clone, Debug)]
pub struct JwtKeys {
    /// The verification keys.
    pub store: Arc<KeyStore>,
    /// The HMAC secret, if HS* tokens are to be accepted at all.
    pub shared_secret: Option<SharedSecret>,
    /// Revoked token ids, when a revocation list is configured.
    pub revoked: Option<Arc<RevocationList>>,
}

impl JwtKeys {
    /// Keys without a revocation list.
    pub fn new(store: Arc<KeyStore>) -> JwtKeys {
        JwtKeys {
            store,
            shared_secret: None,
            revoked: None,
        }
    }
}

/// One claim the identity binds.
#[derive(Clone, Debug)]
enum ClaimUse {
    Bind {
        attr: String,
        claim: String,
    },
    Split {
        claim: String,
        pieces: Vec<ClientPiece>,
    },
}

/// A `from jwt` identity block ready to verify tokens with its own keys.
#[derive(Clone, Debug)]
pub struct JwtVerifier {
    identity: String,
    /// The `trust` label whose keys `keys` holds (`None`: the default keys).
    label: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
    algorithms: Vec<Algorithm>,
    validations: Vec<(Algorithm, Validation)>,
    claims: Vec<ClaimUse>,
    requires: Vec<Require>,
    keys: JwtKeys,
    max_token_bytes: usize,
}

impl JwtVerifier {
    /// Reads the identity block's settings and bindings.
    pub fn new(def: &IdentityDef, keys: JwtKeys) -> Result<JwtVerifier, JwtConfigError> {
        if def.kind != IdentityKind::Jwt {
            return Err(JwtConfigError::NotJwt(def.name.clone()));
        }
        let one = |key: &str| def.setting_value(key).map(str::to_string);
        let leeway = match one("leeway") {
            None => DEFAULT_LEEWAY_SECS,
            Some(v) => v.parse().map_err(|_| JwtConfigError::BadLeeway {
                identity: def.name.clone(),
                value: v.clone(),
            })?,
        };
        let algorithms = algorithms(def)?;
        let mut verifier = JwtVerifier {
            identity: def.name.clone(),
            label: def.trust_label().map(str::to_string),
            issuer: one("issuer"),
            audience: one("audience"),
            leeway,
            algorithms,
            validations: Vec::new(),
            claims: claim_uses(def)?,
            requires: def.requires.clone(),
            keys,
            max_token_bytes: MAX_TOKEN_BYTES,
        };
        verifier.validations = verifier
            .algorithms
            .iter()
            .map(|alg| (*alg, verifier.validation(*alg)))
            .collect();
        Ok(verifier)
    }

    /// The policy identity this verifier produces.
    pub fn identity_name(&self) -> &str {
        &self.identity
    }

    /// The `issuer` setting, if any.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The `audience` setting, if any.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The `trust` label this identity's keys come from.
    pub fn trust_label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The keys it verifies with.
    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    /// Lowers the token length cap (it can never be raised above [`MAX_TOKEN_BYTES`]).
    pub fn with_max_token_bytes(mut self, max: usize) -> JwtVerifier {
        self.max_token_bytes = max.min(MAX_TOKEN_BYTES);
        self
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = true;
        let mut required = vec!["exp"];
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        if let Some(aud) = &self.audience {
            v.set_audience(&[aud]);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// Verifies a token and returns the identity it proves.
    pub fn verify(&self, token: &str) -> Result<Identity, JwtError> {
        if token.len() > self.max_token_bytes {
            return Err(JwtError::TooLong {
                len: token.len(),
                max: self.max_token_bytes,
            });
        }
        if token.split('.').count() != 3 {
            return Err(malformed("a JWT has exactly three dot-separated parts"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| header_error(token, &e))?;
        self.check_header(&header)?;
        let claims = self.verify_signature_and_claims(token, &header)?;
        self.identity_from(claims)
    }

    fn check_header(&self, header: &Header) -> Result<(), JwtError> {
        if !self.algorithms.contains(&header.alg) {
            return Err(JwtError::AlgorithmNotAllowed {
                alg: format!("{:?}", header.alg),
                identity: self.identity.clone(),
                allowed: self
                    .algorithms
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if let Some(crit) = &header.crit
            && !crit.is_empty()
        {
            return Err(JwtError::CriticalHeader {
                names: crit.clone(),
            });
        }
        Ok(())
    }

    fn verify_signature_and_claims(
        &self,
        token: &str,
        header: &Header,
    ) -> Result<Claims, JwtError> {
        let validation = self
            .validations
            .iter()
            .find(|(a, _)| *a == header.alg)
            .map(|(_, v)| v)
            .ok_or_else(|| malformed("no validation for the header algorithm"))?;
        let decode = |key: &DecodingKey| {
            jsonwebtoken::decode::<Claims>(token, key, validation)
                .map(|data| data.claims)
                .map_err(|e| self.decode_error(token, e))
        };
        if header.alg.family() == AlgorithmFamily::Hmac {
            let secret =
                self.keys
                    .shared_secret
                    .as_ref()
                    .ok_or_else(|| JwtError::HmacWithoutSecret {
                        alg: format!("{:?}", header.alg),
                    })?;
            return decode(&secret.decoding_key());
        }
        let kid = header.kid.as_deref();
        let store = &self.keys.store;
        let set = store.current();
        let entry = match set.find(kid, header.alg) {
            Err(KeyMiss::UnknownKid) => {
                let reloaded = store.reload_for_unknown_kid();
                let set = store.current();
                return match set.find(kid, header.alg) {
                    Ok(entry) => decode(&entry.key),
                    Err(miss) => Err(self.key_miss(kid, header.alg, miss, reloaded)),
                };
            }
            other => other,
        };
        match entry {
            Ok(entry) => decode(&entry.key),
            Err(miss) => Err(self.key_miss(kid, header.alg, miss, false)),
        }
    }

    fn key_miss(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        miss: KeyMiss,
        reloaded: bool,
    ) -> JwtError {
        let kid = shown(kid.unwrap_or(""));
        match miss {
            KeyMiss::UnknownKid => JwtError::UnknownKid {
                kid,
                reload: if reloaded {
                    "the key set was reloaded once"
                } else {
                    "no reload: the last one was within the cooldown"
                },
            },
            KeyMiss::NoKidAmbiguous { candidates } => JwtError::AmbiguousKey {
                alg: format!("{alg:?}"),
                candidates,
            },
            KeyMiss::WrongAlgorithm { key_family } => JwtError::KeyAlgorithmMismatch {
                kid,
                alg: format!("{alg:?}"),
                key_family,
            },
        }
    }

    fn decode_error(&self, token: &str, error: jsonwebtoken::errors::Error) -> JwtError {
        match error.into_kind() {
            ErrorKind::InvalidSignature => JwtError::BadSignature,
            ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidEddsaKey => JwtError::BadKey {
                reason: "not a key of the header's algorithm".to_string(),
            },
            ErrorKind::InvalidRsaKey(reason) => JwtError::BadKey { reason },
            ErrorKind::InvalidAlgorithm => JwtError::BadKey {
                reason: "the key does not fit the header's algorithm".to_string(),
            },
            ErrorKind::MissingRequiredClaim(claim) => missing_or_mistyped(token, claim),
            ErrorKind::InvalidClaimFormat(claim) => JwtError::ClaimFormat { claim },
            ErrorKind::ExpiredSignature => JwtError::Expired {
                leeway: self.leeway,
            },
            ErrorKind::ImmatureSignature => JwtError::NotYetValid {
                leeway: self.leeway,
            },
            ErrorKind::InvalidIssuer => JwtError::WrongIssuer {
                expected: self.issuer.clone().unwrap_or_default(),
            },
            ErrorKind::InvalidAudience => match &self.audience {
                Some(aud) => JwtError::WrongAudience {
                    expected: aud.clone(),
                },
                None => JwtError::UnexpectedAudience,
            },
            ErrorKind::Json(e) => json_error(&e.to_string()),
            other => malformed(&format!("{other:?}")),
        }
    }

    fn identity_from(&self, claims: Claims) -> Result<Identity, JwtError> {
        let map = claims.0;
        claims::check_registered(&map)?;
        let exp = map
            .get("exp")
            .and_then(numeric_date)
            .ok_or_else(|| JwtError::ClaimFormat {
                claim: "exp".to_string(),
            })?;
        if let Some(revoked) = &self.keys.revoked {
            let jti = map
                .get("jti")
                .and_then(Value::as_str)
                .ok_or(JwtError::NoJti)?;
            if revoked.contains(jti) {
                return Err(JwtError::Revoked { jti: shown(jti) });
            }
        }
        let mut attrs = BTreeMap::new();
        for claim_use in &self.claims {
            match claim_use {
                ClaimUse::Bind { attr, claim } => {
                    let value = claim_string(&map, claim, attr)?;
                    attrs.insert(attr.clone(), value.to_string());
                }
                ClaimUse::Split { claim, pieces } => {
                    let value = claim_string(&map, claim, "a split")?;
                    let parts = extract::split(value, pieces).map_err(|error| JwtError::Split {
                        claim: claim.clone(),
                        template: crate::check::template_text(pieces),
                        error,
                    })?;
                    attrs.extend(parts);
                }
            }
        }
        extract::check_requires(&self.requires, &attrs).map_err(JwtError::Require)?;
        Ok(Identity {
            kind: self.identity.clone(),
            attrs,
            expires_at: Some(exp),
            provenance: Provenance::Jwt,
        })
    }
}

fn algorithms(def: &IdentityDef) -> Result<Vec<Algorithm>, JwtConfigError> {
    match def.setting("algorithms") {
        None => Ok(DEFAULT_ALGORITHMS.to_vec()),
        Some(values) => values
            .iter()
            .map(|v| {
                Algorithm::from_str(v).map_err(|_| JwtConfigError::BadAlgorithm {
                    identity: def.name.clone(),
                    value: v.clone(),
                })
            })
            .collect(),
    }
}

fn claim_uses(def: &IdentityDef) -> Result<Vec<ClaimUse>, JwtConfigError> {
    let not_claim = |attr: &str| JwtConfigError::NotAClaim {
        identity: def.name.clone(),
        attr: attr.to_string(),
    };
    let mut uses = Vec::new();
    for (attr, source) in &def.binds {
        match source {
            AttrSource::Claim { name, .. } => uses.push(ClaimUse::Bind {
                attr: attr.clone(),
                claim: name.clone(),
            }),
            AttrSource::Field { .. } => return Err(not_claim(attr)),
        }
    }
    for (source, pieces) in &def.extracts {
        match source {
            AttrSource::Claim { name, .. } => uses.push(ClaimUse::Split {
                claim: name.clone(),
                pieces: pieces.clone(),
            }),
            AttrSource::Field { path, .. } => return Err(not_claim(path)),
        }
    }
    Ok(uses)
}

/// A bound claim: present, a JSON string, and a valid attribute value.
fn claim_string<'m>(
    map: &'m Map<String, Value>,
    claim: &str,
    attr: &str,
) -> Result<&'m str, JwtError> {
    let value = map.get(claim).ok_or_else(|| JwtError::MissingAttrClaim {
        claim: claim.to_string(),
        attr: attr.to_string(),
    })?;
    let text = value.as_str().ok_or_else(|| JwtError::ClaimNotString {
        claim: claim.to_string(),
        attr: attr.to_string(),
        found: json_kind(value),
    })?;
    validate_value(text).map_err(|e| JwtError::BadClaimValue {
        claim: claim.to_string(),
        attr: attr.to_string(),
        reason: e.to_string(),
    })?;
    Ok(text)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn malformed(reason: &str) -> JwtError {
    JwtError::Malformed {
        reason: reason.to_string(),
    }
}

/// At most 64 characters of untrusted text, escaped, for messages.
fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(64).flat_map(char::escape_debug).collect();
    if text.chars().count() > 64 {
        out.push('…');
    }
    format!("`{out}`")
}

fn json_error(message: &str) -> JwtError {
    if let Some(rest) = message.strip_prefix(DUPLICATE_CLAIM) {
        let claim = rest.split('`').next().unwrap_or("").to_string();
        return JwtError::DuplicateClaim { claim };
    }
    if message.starts_with("duplicate field `") {
        let claim = message.split('`').nth(1).unwrap_or("").to_string();
        return JwtError::DuplicateClaim { claim };
    }
    malformed(&format!("claims are not a JSON object: {message}"))
}

/// `jsonwebtoken` reports a registered claim of the wrong type (`"exp": "never"`) as missing.
/// Its signature has been verified by then, so the payload is read to tell the two apart.
fn missing_or_mistyped(token: &str, claim: String) -> JwtError {
    let present = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|claims| claims.get(&claim).is_some_and(|v| !v.is_null()));
    if present {
        JwtError::ClaimFormat { claim }
    } else {
        JwtError::MissingClaim { claim }
    }
}

/// A precise reason for a header `jsonwebtoken` could not parse (`alg: none`, ...).
fn header_error(token: &str, error: &jsonwebtoken::errors::Error) -> JwtError {
    let segment = token.split('.').next().unwrap_or("");
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment) else {
        return malformed("the header is not base64url");
    };
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&bytes) else {
        return malformed("the header is not a JSON object");
    };
    match header.get("alg") {
        None => malformed("the header has no `alg`"),
        Some(Value::String(alg)) if alg.eq_ignore_ascii_case("none") || alg.is_empty() => {
            JwtError::AlgNone { alg: alg.clone() }
        }
        Some(Value::String(alg)) if Algorithm::from_str(alg).is_err() => {
            JwtError::UnknownAlgorithm { alg: shown(alg) }
        }
        Some(_) => malformed(&format!("bad header: {error}")),
    }
}

const DUPLICATE_CLAIM: &str = "duplicate claim `";

/// A claims object whose names are unique (serde_json would keep the last duplicate).
struct Claims(Map<String, Value>);

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UniqueMap;
        impl<'de> Visitor<'de> for UniqueMap {
            type Value = Claims;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of claims")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Claims, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!("{DUPLICATE_CLAIM}{key}`")));
                    }
                    map.insert(key, value);
                }
                Ok(Claims(map))
            }
        }
        deserializer.deserialize_map(UniqueMap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_claims_are_refused() {
        let err = serde_json::from_str::<Claims>(r#"{"pid":"P1","pid":"P2"}"#)
            .err()
            .map(|e| json_error(&e.to_string()));
        assert_eq!(
            err,
            Some(JwtError::DuplicateClaim {
                claim: "pid".to_string()
            })
        );
    }

    #[test]
    fn untrusted_text_in_messages_is_short_and_escaped() {
        assert_eq!(shown("a\nb"), "`a\\nb`");
        assert_eq!(shown(&"k".repeat(100)).chars().count(), 64 + 3);
    }

    #[test]
    fn alg_none_is_named_precisely() {
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let token = format!("{header}.e30.");
        let err = jsonwebtoken::decode_header(&token).unwrap_err();
        assert_eq!(
            header_error(&token, &err),
            JwtError::AlgNone {
                alg: "none".to_string()
            }
        );
    }
}
