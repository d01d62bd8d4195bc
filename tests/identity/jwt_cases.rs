//! JWT verification: accepted tokens per algorithm, and bad-inputs cases 12–27.

use super::{def, policy, xfinity};
use base64::Engine as _;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use topicguard::Engine;
use topicguard::decide::BindError;
use topicguard::devcred::{self as dev, DevAlg, DevSigner};
use topicguard::identity::Provenance;
use topicguard::identity::jwt::{JwtError, JwtKeys, JwtVerifier};
use topicguard::identity::keys::{KeySet, KeySource, KeyStore, RevocationList, SharedSecret};

/// One signer per algorithm, generated once (RSA key generation is the slow part).
fn signers() -> &'static [DevSigner; 3] {
    static SIGNERS: OnceLock<[DevSigner; 3]> = OnceLock::new();
    SIGNERS.get_or_init(|| {
        [DevAlg::ES256, DevAlg::EdDSA, DevAlg::RS256]
            .map(|alg| DevSigner::generate(alg, &format!("{alg:?}-1")).expect("key generation"))
    })
}

fn es256() -> &'static DevSigner {
    &signers()[0]
}

fn rs256() -> &'static DevSigner {
    &signers()[2]
}

fn key_set() -> KeySet {
    let jwks = dev::jwks(&signers().iter().collect::<Vec<_>>());
    KeySet::from_jwks(&jwks.to_string(), "test.jwks").expect("dev JWKS loads")
}

fn keys() -> JwtKeys {
    JwtKeys::new(Arc::new(KeyStore::fixed(key_set())))
}

fn mobile(keys: JwtKeys) -> JwtVerifier {
    JwtVerifier::new(def(&xfinity(), "mobile"), keys).expect("mobile is a jwt identity")
}

fn now() -> u64 {
    dev::unix_now()
}

fn claims() -> Value {
    let mut claims = dev::default_claims(now(), "J1");
    claims["pid"] = json!("P1");
    claims["aid"] = json!("A1");
    claims
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().map(|m| m.remove(key));
    claims
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with exactly this header and payload text, signed by `signer`.
fn raw_token(signer: &DevSigner, header: &Value, payload: &str) -> String {
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.as_bytes())
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &signer.key, signer.alg.algorithm())
            .unwrap();
    format!("{message}.{signature}")
}

fn header_of(signer: &DevSigner) -> Value {
    json!({"alg": format!("{:?}", signer.alg.algorithm()), "typ": "JWT", "kid": signer.kid})
}

fn reject(verifier: &JwtVerifier, token: &str) -> JwtError {
    verifier.verify(token).expect_err("token must be rejected")
}

#[test]
fn accepts_each_algorithm_and_binds_the_session() {
    let verifier = mobile(keys());
    let engine = Engine::new(&xfinity()).expect("the seed policy compiles");
    let mut shown = String::new();
    for signer in signers() {
        let claims = claims();
        let identity = verifier.verify(&signer.sign(&claims).unwrap()).unwrap();
        assert_eq!(identity.expires_at, claims["exp"].as_u64());
        assert_eq!(identity.provenance, Provenance::Jwt);
        let session = engine.bind(&identity, "xfi:P1_A1:clt:J1");
        assert_eq!(session.error(), None);
        assert_eq!(session.expires_at(), identity.expires_at);
        shown.push_str(&format!(
            "{:?}: {} {:?}\n",
            signer.alg, identity.kind, identity.attrs
        ));
    }
    insta::assert_snapshot!("jwt_identities", shown);
}

#[test]
fn a_token_without_kid_uses_the_only_fitting_key_or_is_refused() {
    let mut header = es256().header();
    header.kid = None;
    let token = es256().sign_with(&header, &claims()).unwrap();
    let only_es = KeySet {
        entries: key_set()
            .entries
            .into_iter()
            .filter(|e| e.kid.as_deref() == Some("ES256-1"))
            .collect(),
    };
    let single = mobile(JwtKeys::new(Arc::new(KeyStore::fixed(only_es))));
    assert!(single.verify(&token).is_ok());
    let two_ec = format!(
        r#"{{"keys":[{},{}]}}"#,
        es256().jwk,
        DevSigner::generate(DevAlg::ES256, "ES256-2").unwrap().jwk
    );
    let store = KeyStore::fixed(KeySet::from_jwks(&two_ec, "two").unwrap());
    let err = reject(&mobile(JwtKeys::new(Arc::new(store))), &token);
    assert!(
        matches!(err, JwtError::AmbiguousKey { candidates: 2, .. }),
        "{err}"
    );
}

/// Every rejection, with its message, in one reviewed snapshot.
#[test]
fn rejections_name_their_reason() {
    let verifier = mobile(keys());
    let mut lines = Vec::new();
    for (case, token) in rejected_tokens() {
        let err = reject(&verifier, &token);
        lines.push(format!("{case}: {err}"));
    }
    insta::assert_snapshot!("jwt_rejections", lines.join("\n"));
}

fn rejected_tokens() -> Vec<(&'static str, String)> {
    let es = es256();
    let sign = |c: Value| es.sign(&c).unwrap();
    let t = now();
    let mut cases = vec![
        (
            "12 alg none",
            raw_token(
                es,
                &json!({"alg": "none", "typ": "JWT"}),
                &claims().to_string(),
            ),
        ),
        (
            "12 alg None",
            raw_token(es, &json!({"alg": "None"}), &claims().to_string()),
        ),
        ("12 empty signature", {
            let token = sign(claims());
            token[..token.rfind('.').unwrap() + 1].to_string()
        }),
        (
            "13 HS512 while ES256 is pinned",
            hs_token("HS512", b"some-shared-secret-of-32-bytes!!"),
        ),
        (
            "14 HS256 MACed with the RSA public key PEM",
            hs_token("HS256", rs256().public_pem.as_bytes()),
        ),
        ("15 ES256 r=s=0", zero_signature(&sign(claims()), 64)),
        (
            "15 ES256 all-zero short",
            zero_signature(&sign(claims()), 8),
        ),
        ("16 kid path traversal", kid_token("../../dev/null")),
        ("16 kid SQL", kid_token("' OR 1=1")),
        ("16 kid 5000 chars", kid_token(&"k".repeat(5000))),
        (
            "18 crit",
            raw_token(
                es,
                &with(header_of(es), "crit", json!(["x-unknown"])),
                &claims().to_string(),
            ),
        ),
        ("19 exp absent", sign(without(claims(), "exp"))),
        (
            "19 exp 1 s past the 5 s leeway",
            sign(with(claims(), "exp", json!(t - 6))),
        ),
        (
            "19 exp as string",
            sign(with(claims(), "exp", json!("never"))),
        ),
        ("19 exp negative", sign(with(claims(), "exp", json!(-1)))),
        (
            "20 nbf in the future",
            sign(with(claims(), "nbf", json!(t + 60))),
        ),
        ("21 iss missing", sign(without(claims(), "iss"))),
        (
            "21 iss wrong",
            sign(with(claims(), "iss", json!("https://evil.example/"))),
        ),
        ("22 aud missing", sign(without(claims(), "aud"))),
        ("22 aud wrong", sign(with(claims(), "aud", json!("other")))),
        (
            "22 aud list without ours",
            sign(with(claims(), "aud", json!(["a", "b"]))),
        ),
        ("23 pid number", sign(with(claims(), "pid", json!(7)))),
        ("23 pid array", sign(with(claims(), "pid", json!(["P1"])))),
        ("23 pid null", sign(with(claims(), "pid", Value::Null))),
        ("23 pid missing", sign(without(claims(), "pid"))),
        (
            "23 pid 300 bytes",
            sign(with(claims(), "pid", json!("P".repeat(300)))),
        ),
        (
            "23 pid 10 KB (token cap first)",
            sign(with(claims(), "pid", json!("P".repeat(10_000)))),
        ),
        ("25 token of 64 KiB", "a".repeat(64 * 1024)),
        ("25 two parts", "abc.def".to_string()),
        (
            "claims duplicate pid",
            raw_token(es, &header_of(es), r#"{"pid":"P1","pid":"P9","aid":"A1"}"#),
        ),
        (
            "claims not an object",
            raw_token(es, &header_of(es), "[1,2]"),
        ),
        (
            "wrong key type for kid",
            raw_token(
                es,
                &json!({"alg": "ES256", "kid": "RS256-1"}),
                &claims().to_string(),
            ),
        ),
    ];
    for bad in ["P/1", "+", "#", "a\u{0}b", "$SYS", "", "Р1"] {
        cases.push(("23 pid grammar", sign(with(claims(), "pid", json!(bad)))));
    }
    let iss = "https://idp.example.com/";
    for (case, claim, value) in [
        ("iss an array holding the issuer", "iss", json!([iss])),
        ("iss a number", "iss", json!(7)),
        ("aud a number", "aud", json!(7)),
        ("aud an empty array", "aud", json!([])),
        (
            "aud an array with a number",
            "aud",
            json!(["iot-platform", 7]),
        ),
        ("exp a fraction", "exp", json!(t as f64 + 60.5)),
        ("exp a float", "exp", json!((t + 60) as f64)),
        ("exp past year 9999", "exp", json!(253_402_300_800u64)),
        ("nbf a string", "nbf", json!("0")),
        ("iat a fraction", "iat", json!(t as f64 - 0.5)),
        ("iat negative", "iat", json!(-5)),
        ("sub a number", "sub", json!(42)),
        ("jti an array", "jti", json!(["J1"])),
    ] {
        cases.push((case, sign(with(claims(), claim, value))));
    }
    cases
}

fn hs_token(alg: &str, secret: &[u8]) -> String {
    let header = b64(json!({"alg": alg, "typ": "JWT", "kid": "RS256-1"})
        .to_string()
        .as_bytes());
    let message = format!("{header}.{}", b64(claims().to_string().as_bytes()));
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let alg = alg.parse().unwrap();
    format!(
        "{message}.{}",
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).unwrap()
    )
}

fn zero_signature(token: &str, bytes: usize) -> String {
    format!(
        "{}.{}",
        &token[..token.rfind('.').unwrap()],
        b64(&vec![0u8; bytes])
    )
}

fn kid_token(kid: &str) -> String {
    let mut header = es256().header();
    header.kid = Some(kid.to_string());
    es256().sign_with(&header, &claims()).unwrap()
}

#[test]
fn hs256_needs_an_explicit_secret_and_never_uses_public_key_material() {
    let text = "identity m from jwt {\n  issuer \"https://idp.example.com/\"\n  audience \"iot-platform\"\n  \
                algorithms RS256, HS256\n  pid = claim \"pid\"\n  client \"c:{pid}\"\n}\n";
    let checked = policy(text);
    let token = hs_token("HS256", rs256().public_pem.as_bytes());
    let no_secret = JwtVerifier::new(def(&checked, "m"), keys()).unwrap();
    assert!(matches!(
        reject(&no_secret, &token),
        JwtError::HmacWithoutSecret { .. }
    ));
    assert!(SharedSecret::new(rs256().public_pem.as_bytes().to_vec()).is_err());
    let mut with_secret = keys();
    with_secret.shared_secret = Some(SharedSecret::new(vec![42u8; 32]).unwrap());
    let verifier = JwtVerifier::new(def(&checked, "m"), with_secret).unwrap();
    assert_eq!(reject(&verifier, &token), JwtError::BadSignature);
    let good = hs_token("HS256", &[42u8; 32]);
    assert_eq!(verifier.verify(&good).unwrap().attr("pid"), Some("P1"));
}

#[test]
fn embedded_keys_and_key_urls_are_ignored() {
    let verifier = mobile(keys());
    let attacker = DevSigner::generate(DevAlg::ES256, "ES256-1").unwrap();
    let mut header = header_of(&attacker);
    header["jwk"] = attacker.jwk.clone();
    header["jku"] = json!("https://attacker.example/jwks.json");
    header["x5u"] = json!("https://attacker.example/cert.pem");
    let token = raw_token(&attacker, &header, &claims().to_string());
    assert_eq!(reject(&verifier, &token), JwtError::BadSignature);
    header["kid"] = json!("attacker-kid");
    let token = raw_token(&attacker, &header, &claims().to_string());
    assert!(matches!(
        reject(&verifier, &token),
        JwtError::UnknownKid { .. }
    ));
}

#[test]
fn leeway_applies_to_exp_and_nbf() {
    let verifier = mobile(keys());
    let t = now();
    let recent = with(claims(), "exp", json!(t - 2));
    assert!(verifier.verify(&es256().sign(&recent).unwrap()).is_ok());
    let soon = with(claims(), "nbf", json!(t + 2));
    assert!(verifier.verify(&es256().sign(&soon).unwrap()).is_ok());
}

#[test]
fn aud_is_refused_when_the_policy_sets_no_audience() {
    let text = "identity m from jwt {\n  pid = claim \"pid\"\n  client \"c:{pid}\"\n}\n";
    let checked = policy(text);
    let verifier = JwtVerifier::new(def(&checked, "m"), keys()).unwrap();
    let err = reject(&verifier, &es256().sign(&claims()).unwrap());
    assert_eq!(err, JwtError::UnexpectedAudience);
    let token = es256().sign(&without(claims(), "aud")).unwrap();
    assert_eq!(verifier.verify(&token).unwrap().attr("pid"), Some("P1"));
}

#[test]
fn a_16_mib_token_is_refused_before_decoding() {
    let verifier = mobile(keys());
    let huge = "e".repeat(16 * 1024 * 1024);
    let started = std::time::Instant::now();
    assert!(matches!(reject(&verifier, &huge), JwtError::TooLong { .. }));
    assert!(started.elapsed() < Duration::from_millis(50));
}

#[test]
fn client_id_must_carry_the_token_values() {
    let identity = mobile(keys())
        .verify(&es256().sign(&claims()).unwrap())
        .unwrap();
    let engine = Engine::new(&xfinity()).expect("the seed policy compiles");
    for wrong in ["xfi:P1_A1:clt:J2", "xfi:P2_A1:clt:J1", "xfi:P1_A2:clt:J1"] {
        let session = engine.bind(&identity, wrong);
        assert!(
            matches!(session.error(), Some(BindError::ClientIdMismatch { .. })),
            "{wrong}"
        );
    }
}

#[test]
fn revoked_jti_is_refused_and_the_list_reloads() {
    let dir = tempdir("revoked");
    let path = dir.join("revoked.txt");
    std::fs::write(&path, "J9\n").unwrap();
    let list = Arc::new(RevocationList::load(&path).unwrap());
    let mut keys = keys();
    keys.revoked = Some(list.clone());
    let verifier = mobile(keys);
    let token = es256().sign(&claims()).unwrap();
    assert!(verifier.verify(&token).is_ok());
    std::fs::write(&path, "J1\n").unwrap();
    list.reload().unwrap();
    assert_eq!(
        reject(&verifier, &token),
        JwtError::Revoked {
            jti: "`J1`".to_string()
        }
    );
    let no_jti = es256().sign(&without(claims(), "jti")).unwrap();
    assert_eq!(reject(&verifier, &no_jti), JwtError::NoJti);
}

fn tempdir(name: &str) -> crate::scratch::Scratch {
    crate::scratch::Scratch::new(&format!("identity-{name}"))
}

#[test]
fn rotation_reloads_once_and_a_kid_burst_reloads_at_most_once() {
    let dir = tempdir("rotation");
    let path = dir.join("jwks.json");
    std::fs::write(&path, dev::jwks(&[es256()]).to_string()).unwrap();
    let store = Arc::new(
        KeyStore::load(KeySource::JwksFile(path.clone()), Duration::from_secs(60)).unwrap(),
    );
    let verifier = mobile(JwtKeys::new(store.clone()));
    let rotated = DevSigner::generate(DevAlg::ES256, "ES256-next").unwrap();
    std::fs::write(&path, dev::jwks(&[es256(), &rotated]).to_string()).unwrap();
    let identity = verifier.verify(&rotated.sign(&claims()).unwrap());
    assert!(identity.is_ok(), "{identity:?}");
    assert_eq!(store.reload_count(), 1);
    let burst: Vec<String> = (0..200)
        .map(|i| kid_token(&format!("random-{i}")))
        .collect();
    std::thread::scope(|scope| {
        for chunk in burst.chunks(50) {
            let verifier = &verifier;
            scope.spawn(move || {
                for token in chunk {
                    assert!(matches!(
                        verifier.verify(token),
                        Err(JwtError::UnknownKid { .. })
                    ));
                }
            });
        }
    });
    assert_eq!(
        store.reload_count(),
        1,
        "the burst fell within the cooldown"
    );
    let fresh =
        Arc::new(KeyStore::load(KeySource::JwksFile(path), Duration::from_secs(60)).unwrap());
    let verifier = mobile(JwtKeys::new(fresh.clone()));
    for token in &burst[..100] {
        assert!(verifier.verify(token).is_err());
    }
    assert_eq!(
        fresh.reload_count(),
        1,
        "one reload for a burst of unknown kids"
    );
}

#[test]
fn pem_key_files_work_like_a_jwks() {
    let dir = tempdir("pem");
    let path = dir.join("es.pem");
    std::fs::write(&path, &es256().public_pem).unwrap();
    let source = KeySource::PemFiles(vec![(path, Some("ES256-1".to_string()))]);
    let store = KeyStore::load(source, Duration::from_secs(60)).unwrap();
    let verifier = mobile(JwtKeys::new(Arc::new(store)));
    assert!(verifier.verify(&es256().sign(&claims()).unwrap()).is_ok());
    let err = reject(&verifier, &rs256().sign(&claims()).unwrap());
    assert!(matches!(err, JwtError::UnknownKid { .. }), "{err}");
}
