//! Why a JWT was refused ([`JwtError`]) and the size past which it is not even decoded.
//! Its own module so that the registered-claim checks ([`super::claims`]) and the token
//! verifier ([`super::jwt`]) share it without importing each other. This module must never
//! verify anything.

use super::extract::{RequireError, SplitError};

/// The longest token accepted, checked before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is {len} bytes long (limit {max}); it was not decoded")]
    TooLong { len: usize, max: usize },
    #[error("token is malformed: {reason}")]
    Malformed { reason: String },
    #[error("token header says `alg: {alg}`: unsigned tokens are never accepted")]
    AlgNone { alg: String },
    #[error("token header names an unknown algorithm `{alg}`")]
    UnknownAlgorithm { alg: String },
    #[error("algorithm {alg} is not allowed for identity `{identity}` (allowed: {allowed})")]
    AlgorithmNotAllowed {
        alg: String,
        identity: String,
        allowed: String,
    },
    #[error("algorithm {alg} needs a shared secret, and none is configured")]
    HmacWithoutSecret { alg: String },
    #[error("token header marks {names:?} as critical; no critical extension is supported")]
    CriticalHeader { names: Vec<String> },
    #[error("no configured key has kid {kid} ({reload})")]
    UnknownKid { kid: String, reload: &'static str },
    #[error("token has no kid and {candidates} configured keys fit {alg}; a kid is required")]
    AmbiguousKey { alg: String, candidates: usize },
    #[error("key {kid} ({key_family}) cannot verify {alg}")]
    KeyAlgorithmMismatch {
        kid: String,
        alg: String,
        key_family: String,
    },
    #[error("signature does not verify")]
    BadSignature,
    #[error("verification key is unusable: {reason}")]
    BadKey { reason: String },
    #[error("token has expired (exp is past, beyond the {leeway} s leeway)")]
    Expired { leeway: u64 },
    #[error("token is not valid yet (nbf is in the future, beyond the {leeway} s leeway)")]
    NotYetValid { leeway: u64 },
    #[error("required claim `{claim}` is missing")]
    MissingClaim { claim: String },
    #[error(
        "claim `{claim}` has the wrong type or format (exp, nbf and iat are integer NumericDates; iss a string; aud a string or an array of strings)"
    )]
    ClaimFormat { claim: String },
    #[error("claim `{claim}` appears twice")]
    DuplicateClaim { claim: String },
    #[error("registered claim `{claim}` is {found}; it must be {expected}")]
    RegisteredClaim {
        claim: String,
        found: String,
        expected: &'static str,
    },
    #[error("`iss` is not the issuer the policy names ({expected})")]
    WrongIssuer { expected: String },
    #[error("`aud` does not contain the audience the policy names ({expected})")]
    WrongAudience { expected: String },
    #[error("token carries an `aud` claim, but the policy sets no audience")]
    UnexpectedAudience,
    #[error("claim `{claim}` (for `{attr}`) is missing")]
    MissingAttrClaim { claim: String, attr: String },
    #[error("claim `{claim}` (for `{attr}`) is {found}, not a string")]
    ClaimNotString {
        claim: String,
        attr: String,
        found: &'static str,
    },
    #[error("claim `{claim}` (for `{attr}`) {reason}")]
    BadClaimValue {
        claim: String,
        attr: String,
        reason: String,
    },
    #[error("claim `{claim}` does not split as \"{template}\": value {error}")]
    Split {
        claim: String,
        template: String,
        error: SplitError,
    },
    #[error("{0}")]
    Require(RequireError),
    #[error("token id (jti) `{jti}` is revoked")]
    Revoked { jti: String },
    #[error("a jti revocation list is configured, but the token has no string `jti` claim")]
    NoJti,
}
