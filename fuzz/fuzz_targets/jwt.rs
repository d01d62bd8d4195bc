//! JWT parsing and verification against a fixed JWKS and identity block.
//!
//! The verifier is the broker's: `identity::select::Verifier` for
//! `fuzz/fixtures/identities.policy`, with the JWKS `fuzz/fixtures/jwks.json` (ES256, RS256
//! and EdDSA keys) on the `idp` label, the HS256 secret `fuzz/fixtures/hs256.secret` and a
//! jti revocation list holding `revoked-jti`. Two kinds of input:
//! * no NUL byte: the input is a token (random, or a mutated real token from the seeds);
//! * `HEADER\0CLAIMS`: two JSON texts that this target encodes and signs itself (HS256
//!   with the secret when the header says `"HS256"`, else with the ES256 key), so that the
//!   fuzzer explores the header and claim checks behind a valid signature.
//!
//! Asserts: nothing panics; a token is accepted only if its signature verifies, checked
//! here independently with `ring` over the exact signing input, under a configured key of
//! the header's algorithm; and an accepted token's header and claims obey the identity
//! block: an allowed `alg`, no `crit`, an integer `exp` in the future, `nbf` (if any) not in
//! the future, the configured `iss` and `aud`, a `jti` that is not revoked, and the
//! identity's `pid`, `aid`, `jti` equal to those claims, each a valid identity value.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use ring::signature::{self, UnparsedPublicKey};
use rustls_pki_types::UnixTime;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use topicguard::identity::jwt::{DEFAULT_LEEWAY_SECS, JwtKeys};
use topicguard::identity::keys::{KeySet, KeyStore, RevocationList, SharedSecret};
use topicguard::identity::select::{Anchors, Credential, CredentialConfig, Verifier};
use topicguard::{Policy, Source};

const POLICY: &str = include_str!("../fixtures/identities.policy");
const JWKS: &str = include_str!("../fixtures/jwks.json");
const ES256_KEY: &str = include_str!("../fixtures/jwt-es256-key.pem");
const SECRET_HEX: &str = include_str!("../fixtures/hs256.secret");
const ISSUER: &str = "https://idp.example.com/";
const AUDIENCE: &str = "iot-platform";
const REVOKED: &str = "revoked-jti";

struct Fixture {
    verifier: Verifier,
    jwks: Vec<Value>,
    secret: Vec<u8>,
    es256: signature::EcdsaKeyPair,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let policy =
            Policy::from_source(&Source::new("identities.policy", POLICY)).expect("policy");
        let secret: Vec<u8> = (0..SECRET_HEX.trim().len() / 2)
            .map(|i| u8::from_str_radix(&SECRET_HEX.trim()[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        let keys = JwtKeys {
            store: Arc::new(KeyStore::fixed(
                KeySet::from_jwks(JWKS, "jwks.json").expect("jwks"),
            )),
            shared_secret: Some(SharedSecret::new(secret.clone()).expect("secret")),
            revoked: Some(Arc::new(RevocationList::fixed([REVOKED.to_string()]))),
        };
        let mut config = CredentialConfig::default();
        let anchors = Anchors {
            jwt: Some(keys),
            certificates: None,
        };
        config.labels.insert("idp".to_string(), anchors);
        let verifier = Verifier::new(&policy.checked, &config).expect("verifier");
        let jwks: Value = serde_json::from_str(JWKS).expect("jwks json");
        let pem = ES256_KEY
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        let der = base64::engine::general_purpose::STANDARD
            .decode(pem)
            .expect("pem");
        let es256 = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &der,
            &ring::rand::SystemRandom::new(),
        )
        .expect("ES256 key");
        Fixture {
            verifier,
            jwks: jwks["keys"].as_array().expect("keys").clone(),
            secret,
            es256,
        }
    })
}

fn b64_field(jwk: &Value, name: &str) -> Vec<u8> {
    B64.decode(jwk[name].as_str().unwrap_or_default())
        .unwrap_or_default()
}

/// Does a configured key of `alg` verify `signature` over `input`? (Independent of the
/// verifier: ring directly, on the JWKS as JSON.)
fn correctly_signed(fixture: &Fixture, alg: &str, input: &[u8], signature: &[u8]) -> bool {
    if alg == "HS256" {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &fixture.secret);
        return ring::hmac::verify(&key, input, signature).is_ok();
    }
    fixture
        .jwks
        .iter()
        .filter(|jwk| jwk["alg"] == alg)
        .any(|jwk| match alg {
            "RS256" => signature::RsaPublicKeyComponents {
                n: b64_field(jwk, "n"),
                e: b64_field(jwk, "e"),
            }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, input, signature)
            .is_ok(),
            "ES256" => {
                let mut point = vec![4u8];
                point.extend(b64_field(jwk, "x"));
                point.extend(b64_field(jwk, "y"));
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(input, signature)
                    .is_ok()
            }
            "EdDSA" => UnparsedPublicKey::new(&signature::ED25519, b64_field(jwk, "x"))
                .verify(input, signature)
                .is_ok(),
            _ => false,
        })
}

fn json_part(part: &str) -> Value {
    let bytes = B64
        .decode(part)
        .expect("an accepted token's parts are base64url");
    serde_json::from_slice(&bytes).expect("an accepted token's parts are JSON")
}

/// What an accepted token must be (see the module docs).
fn check_accepted(token: &str, attrs: &BTreeMap<String, String>) {
    let fixture = fixture();
    let (input, signature) = token.rsplit_once('.').expect("three parts");
    let (header, claims) = input.split_once('.').expect("three parts");
    let (header, claims) = (json_part(header), json_part(claims));
    let alg = header["alg"].as_str().expect("a string alg");
    assert!(
        ["RS256", "ES256", "EdDSA", "HS256"].contains(&alg),
        "alg {alg}"
    );
    let signature = B64.decode(signature).expect("a base64url signature");
    assert!(
        correctly_signed(fixture, alg, input.as_bytes(), &signature),
        "accepted a token no configured key signed: {token}"
    );
    assert!(
        header
            .get("crit")
            .is_none_or(|c| c.as_array().is_some_and(|a| a.is_empty())),
        "accepted a critical header: {header}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let exp = claims["exp"]
        .as_u64()
        .expect("an accepted token has an integer exp");
    assert!(
        exp + DEFAULT_LEEWAY_SECS >= now,
        "accepted an expired token: exp {exp}"
    );
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_u64().expect("an integer nbf");
        assert!(
            nbf <= now + DEFAULT_LEEWAY_SECS,
            "accepted a token before its nbf"
        );
    }
    assert_eq!(claims["iss"], ISSUER);
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => aud == AUDIENCE,
        Value::Array(auds) => auds.iter().any(|a| a == AUDIENCE),
        _ => false,
    };
    assert!(audience_ok, "accepted aud {}", claims["aud"]);
    assert_ne!(claims["jti"], REVOKED, "accepted a revoked jti");
    for attr in ["pid", "aid", "jti"] {
        let value = attrs.get(attr).expect("every bound attribute");
        assert_eq!(
            claims[attr].as_str(),
            Some(value.as_str()),
            "{attr} is not its claim"
        );
        topicguard::value::validate_value(value).expect("a valid identity value");
    }
}

/// `HEADER\0CLAIMS` → a compact JWS signed by this target.
fn sign(header: &[u8], claims: &[u8]) -> String {
    let fixture = fixture();
    let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let hmac = serde_json::from_slice::<Value>(header).is_ok_and(|h| h["alg"] == "HS256");
    let signature = if hmac {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &fixture.secret);
        ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
    } else {
        let rng = ring::rand::SystemRandom::new();
        fixture
            .es256
            .sign(&rng, input.as_bytes())
            .expect("sign")
            .as_ref()
            .to_vec()
    };
    format!("{input}.{}", B64.encode(signature))
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let token = match data.iter().position(|&b| b == 0) {
        Some(nul) => sign(&data[..nul], &data[nul + 1..]),
        None => match std::str::from_utf8(data) {
            Ok(text) => text.to_string(),
            Err(_) => return,
        },
    };
    let _ = topicguard::identity::claims::Peek::read(&token);
    if let Ok(verified) = fixture
        .verifier
        .verify(Credential::Jwt(&token), UnixTime::now())
    {
        assert_eq!(verified.identity.kind, "mobile");
        check_accepted(&token, &verified.identity.attrs);
    }
});
