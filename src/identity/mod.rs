//! Verified identities: the attributes a credential proves.
//!
//! An [`Identity`] names the policy identity it was verified as (`mobile`, `gateway`, ...)
//! and carries its attributes (`pid`, `aid`, ...). Attributes come from a verified JWT or
//! certificate (see the `jwt` and `x509` modules), or, for policy tests and the CLI, are
//! asserted by the operator with [`Identity::asserted`]. Every value is checked by
//! [`crate::value::validate_value`] when it is bound into a session; an identity never bypasses it.
//! [`select::Verifier`] is the entry point for credentials: it verifies a JWT or certificate
//! chain as each identity block of its kind would, each with its own trust anchors (its
//! `trust` label's keys or CA set, see [`anchors`]), binds it only if exactly one accepts
//! it, and returns only what [`jwt`] or [`x509`] verified.

pub mod anchors;
mod cert_error;
pub mod chain;
pub mod claims;
pub mod der;
pub mod extract;
pub mod files;
pub mod jwt;
mod jwt_error;
pub mod keys;
pub mod ocsp;
pub mod select;
mod signature;
pub mod x509;

use std::collections::BTreeMap;

/// Where an identity's attributes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provenance {
    /// Verified from a JWT signature and its claims.
    Jwt,
    /// Verified from a certificate chain.
    Certificate,
    /// No credential: an anonymous identity the policy declares.
    Anonymous,
    /// Stated by the operator (policy tests, `topicguard decide --attr`).
    Asserted,
}

/// An identity ready to be bound into a session.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// The policy identity name (`mobile`, `gateway`, ...).
    pub kind: String,
    /// The attribute values, by name.
    pub attrs: BTreeMap<String, String>,
    /// Expiry of the credential (Unix seconds), e.g. a JWT's `exp`.
    pub expires_at: Option<u64>,
    /// Where the identity came from (which credential, or asserted).
    pub provenance: Provenance,
}

impl Identity {
    /// An identity whose attributes the operator states (tests, CLI).
    pub fn asserted<K, V>(kind: &str, attrs: impl IntoIterator<Item = (K, V)>) -> Identity
    where
        K: Into<String>,
        V: Into<String>,
    {
        Identity {
            kind: kind.to_string(),
            attrs: attrs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            expires_at: None,
            provenance: Provenance::Asserted,
        }
    }

    /// The value of attribute `name`, if it has one.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }
}
