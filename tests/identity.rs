//! Verified identities: JWTs and X.509 certificates against `policies/xfinity.policy`, and
//! every JWT (12–27) and X.509 (28–46) case of `shared/bad-inputs.md` that applies at the
//! identity layer, and trust anchors per identity (`trust_cases`). Keys and the PKI are
//! generated at test time (`topicguard::devcred`).
#![cfg(feature = "runtime")]

mod cli_cases;
mod jwt_cases;
mod trust_cases;
mod x509_cases;

use topicguard::Policy;
use topicguard::check::{Checked, IdentityDef};
use topicguard::source::Source;

/// The seed policy.
pub fn xfinity() -> Checked {
    Policy::load("policies/xfinity.policy")
        .expect("policies/xfinity.policy is valid")
        .checked
        .as_ref()
        .clone()
}

/// A policy from text (tests that need other settings).
pub fn policy(text: &str) -> Checked {
    Policy::from_source(&Source::new("test.policy", text))
        .unwrap_or_else(|e| panic!("test policy is invalid: {e:?}"))
        .checked
        .as_ref()
        .clone()
}

pub fn def<'c>(checked: &'c Checked, name: &str) -> &'c IdentityDef {
    checked.identity(name).expect("identity exists").1
}
