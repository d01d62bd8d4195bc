//! Who acts in the broker: the [`Principal`] a session belongs to, and the [`Publisher`] a
//! retained message or a pending will carries.
//!
//! A principal is a verified identity as the authenticator returned it: the policy identity
//! name, the kind of proof (JWT, certificate, anonymous) and **every** attribute value the
//! credential proved. Two connections are the same principal only if all of these are
//! equal. Nothing is left out — not even per-token attributes such as a bound `jti` claim:
//! a policy that binds such a value gives each token its own rights, so each token is its
//! own principal (pin the value in the client template, as `policies/xfinity.policy` does
//! with `jti`, and each token also gets its own client id). The credential's expiry is not
//! part of the principal: a refreshed token for the same attributes is the same principal.
//! Captures of the client template are not part of it either: they are read from the
//! client id, which is the same for every connection of a session.
//!
//! Holding a principal costs one `Arc` clone: the identity is shared, never copied. This
//! module must never decide authorization: it only says who is who.

use crate::identity::{Identity, Provenance};
use std::fmt;
use std::sync::Arc;

/// A verified identity, compared by everything its credential proved.
#[derive(Clone, Debug)]
pub struct Principal(Arc<Identity>);

impl Principal {
    /// The principal of a verified identity.
    pub fn new(identity: Identity) -> Principal {
        Principal(Arc::new(identity))
    }

    pub(crate) fn identity(&self) -> &Identity {
        &self.0
    }

    /// True if `other` is the same principal: same identity name, same kind of proof and
    /// the same attributes with the same values (the credential's expiry aside).
    pub fn same_as(&self, other: &Principal) -> bool {
        let (a, b) = (self.identity(), other.identity());
        Arc::ptr_eq(&self.0, &other.0)
            || (a.kind == b.kind && a.provenance == b.provenance && a.attrs == b.attrs)
    }
}

impl PartialEq for Principal {
    fn eq(&self, other: &Principal) -> bool {
        self.same_as(other)
    }
}

impl Eq for Principal {}

impl fmt::Display for Principal {
    /// `mobile (jwt) pid=P1 aid=A1`, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let identity = self.identity();
        let proof = match identity.provenance {
            Provenance::Jwt => "jwt",
            Provenance::Certificate => "certificate",
            Provenance::Anonymous => "anonymous",
            Provenance::Asserted => "asserted",
        };
        write!(f, "{} ({proof})", identity.kind)?;
        for (name, value) in &identity.attrs {
            write!(f, " {name}={value}")?;
        }
        Ok(())
    }
}

/// Who published a message that outlives its publish: a retained message or a will.
///
/// Kept so the message can be authorized again when the policy changes: the publisher's
/// principal bound with its client id must still be allowed to publish (and retain) it.
#[derive(Clone, Debug)]
pub struct Publisher {
    /// Who published.
    pub principal: Principal,
    /// The publisher's client id.
    pub client_id: Arc<str>,
    /// The engine (policy version) that last allowed this publisher to retain the message;
    /// under any other engine it must be authorized again before it is delivered.
    pub authorized_under: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mobile(pid: &str, jti: &str, expires_at: Option<u64>) -> Principal {
        let mut identity = Identity::asserted("mobile", [("pid", pid), ("jti", jti)]);
        identity.provenance = Provenance::Jwt;
        identity.expires_at = expires_at;
        Principal::new(identity)
    }

    #[test]
    fn every_attribute_and_the_identity_name_count_but_not_the_expiry() {
        let owner = mobile("P1", "J1", Some(100));
        assert_eq!(owner, mobile("P1", "J1", Some(200)), "a refreshed token");
        assert_ne!(owner, mobile("P2", "J1", Some(100)), "another account");
        assert_ne!(owner, mobile("P1", "J2", Some(100)), "another token id");
        let mut other_kind = owner.identity().clone();
        other_kind.kind = "operator".into();
        assert_ne!(owner, Principal::new(other_kind), "another identity");
        let mut other_proof = owner.identity().clone();
        other_proof.provenance = Provenance::Certificate;
        assert_ne!(owner, Principal::new(other_proof), "another kind of proof");
        let mut extra = owner.identity().clone();
        extra.attrs.insert("aid".into(), "A1".into());
        assert_ne!(owner, Principal::new(extra), "one more attribute");
    }

    #[test]
    fn it_shows_the_identity_and_its_attributes() {
        assert_eq!(
            mobile("P1", "J1", None).to_string(),
            "mobile (jwt) jti=J1 pid=P1"
        );
    }
}
