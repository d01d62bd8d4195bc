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
    /// The token is longer than the limit; it was not decoded.
    #[error("token is {len} bytes long (limit {max}); it was not decoded")]
    TooLong {
        /// The length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The token is not a well-formed JWT.
    #[error("token is malformed: {reason}")]
    Malformed {
        /// Why.
        reason: String,
    },
    /// The header says `alg: none`.
    #[error("token header says `alg: {alg}`: unsigned tokens are never accepted")]
    AlgNone {
        /// The token's algorithm.
        alg: String,
    },
    /// The header names an unknown algorithm.
    #[error("token header names an unknown algorithm `{alg}`")]
    UnknownAlgorithm {
        /// The token's algorithm.
        alg: String,
    },
    /// The algorithm is not one the identity allows.
    #[error("algorithm {alg} is not allowed for identity `{identity}` (allowed: {allowed})")]
    AlgorithmNotAllowed {
        /// The token's algorithm.
        alg: String,
        /// The identity.
        identity: String,
        /// The algorithms it allows.
        allowed: String,
    },
    /// An HMAC algorithm without a configured shared secret.
    #[error("algorithm {alg} needs a shared secret, and none is configured")]
    HmacWithoutSecret {
        /// The token's algorithm.
        alg: String,
    },
    /// The header marks extensions as critical.
    #[error("token header marks {names:?} as critical; no critical extension is supported")]
    CriticalHeader {
        /// The header names marked critical.
        names: Vec<String>,
    },
    /// No configured key has the token's kid.
    #[error("no configured key has kid {kid} ({reload})")]
    UnknownKid {
        /// The token's key id.
        kid: String,
        /// Whether the key set was reloaded to look for the kid (a hint for the operator).
        reload: &'static str,
    },
    /// No kid, and more than one configured key fits the algorithm.
    #[error("token has no kid and {candidates} configured keys fit {alg}; a kid is required")]
    AmbiguousKey {
        /// The token's algorithm.
        alg: String,
        /// How many configured keys fit the algorithm.
        candidates: usize,
    },
    /// The key with the token's kid is of another family than its algorithm.
    #[error("key {kid} ({key_family}) cannot verify {alg}")]
    KeyAlgorithmMismatch {
        /// The key id.
        kid: String,
        /// The token's algorithm.
        alg: String,
        /// The key's family (RSA, EC, OKP, HMAC).
        key_family: String,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The verification key is unusable.
    #[error("verification key is unusable: {reason}")]
    BadKey {
        /// Why.
        reason: String,
    },
    /// The token has expired.
    #[error("token has expired (exp is past, beyond the {leeway} s leeway)")]
    Expired {
        /// The clock leeway, seconds.
        leeway: u64,
    },
    /// The token is not valid yet.
    #[error("token is not valid yet (nbf is in the future, beyond the {leeway} s leeway)")]
    NotYetValid {
        /// The clock leeway, seconds.
        leeway: u64,
    },
    /// A required claim is missing.
    #[error("required claim `{claim}` is missing")]
    MissingClaim {
        /// The claim.
        claim: String,
    },
    #[error(
        "claim `{claim}` has the wrong type or format (exp, nbf and iat are integer NumericDates; iss a string; aud a string or an array of strings)"
    )]
    /// A registered claim has the wrong JSON type.
    ClaimFormat {
        /// The claim.
        claim: String,
    },
    /// A claim appears twice.
    #[error("claim `{claim}` appears twice")]
    DuplicateClaim {
        /// The claim.
        claim: String,
    },
    /// A registered claim has the wrong type or value.
    #[error("registered claim `{claim}` is {found}; it must be {expected}")]
    RegisteredClaim {
        /// The claim.
        claim: String,
        /// What it is.
        found: String,
        /// What it must be.
        expected: &'static str,
    },
    /// `iss` is not the issuer the policy names.
    #[error("`iss` is not the issuer the policy names ({expected})")]
    WrongIssuer {
        /// What was expected.
        expected: String,
    },
    /// `aud` does not contain the audience the policy names.
    #[error("`aud` does not contain the audience the policy names ({expected})")]
    WrongAudience {
        /// What was expected.
        expected: String,
    },
    /// The token has an `aud` but the policy sets no audience.
    #[error("token carries an `aud` claim, but the policy sets no audience")]
    UnexpectedAudience,
    /// The claim an attribute comes from is missing.
    #[error("claim `{claim}` (for `{attr}`) is missing")]
    MissingAttrClaim {
        /// The claim.
        claim: String,
        /// The attribute.
        attr: String,
    },
    /// The claim an attribute comes from is not a string.
    #[error("claim `{claim}` (for `{attr}`) is {found}, not a string")]
    ClaimNotString {
        /// The claim.
        claim: String,
        /// The attribute.
        attr: String,
        /// The JSON type it has.
        found: &'static str,
    },
    /// A claim's value is outside the attribute-value grammar.
    #[error("claim `{claim}` (for `{attr}`) {reason}")]
    BadClaimValue {
        /// The claim.
        claim: String,
        /// The attribute.
        attr: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// A claim does not split by its extraction template.
    #[error("claim `{claim}` does not split as \"{template}\": value {error}")]
    Split {
        /// The claim.
        claim: String,
        /// The template.
        template: String,
        /// Where the split failed.
        error: SplitError,
    },
    /// A `require` line does not hold.
    #[error("{0}")]
    Require(RequireError),
    /// The token id is on the revocation list.
    #[error("token id (jti) `{jti}` is revoked")]
    Revoked {
        /// The token id.
        jti: String,
    },
    /// A revocation list is configured and the token has no string `jti`.
    #[error("a jti revocation list is configured, but the token has no string `jti` claim")]
    NoJti,
}
