//! Trust anchors per identity: a credential binds only to an identity whose own anchors
//! verified it. A partner CA's sub-CA named like another partner's CA, a partner's key
//! claiming the platform issuer, two identities of one identity provider told apart by
//! audience, an older CRL that hides a newer revocation, strict certificate key usage and
//! string types, and real development credentials for every identity of every shipped
//! policy.

use super::policy;
use rcgen::{Certificate, CertificateParams, KeyUsagePurpose};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use topicguard::devcred::policy::{self as dev_policy, PolicyCas};
use topicguard::devcred::{self as dev, DevAlg, DevCa, DevSigner};
use topicguard::identity::anchors::TrustFiles;
use topicguard::identity::jwt::{JwtError, JwtKeys};
use topicguard::identity::keys::{KeySet, KeyStore};
use topicguard::identity::select::{
    Anchors, ConfigError, Credential, CredentialConfig, SelectError, Verified, Verifier,
};
use topicguard::identity::x509::{ChainFailure, FieldError, TrustStore, X509Error};
use topicguard::{Engine, Policy, Request};

/// A fixed verification time (2027-01-15).
const NOW: u64 = 1_800_000_000;

fn at(unix: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(unix))
}

fn der(cert: &Certificate) -> CertificateDer<'static> {
    cert.der().clone()
}

fn crl_der(ca: &DevCa, revoked: &[u64]) -> Vec<u8> {
    ca.crl(NOW - 60, NOW + 3600, revoked)
        .unwrap()
        .der()
        .to_vec()
}

fn store(ca: &DevCa, crls: Vec<Vec<u8>>) -> Arc<TrustStore> {
    Arc::new(TrustStore::new(vec![der(&ca.cert)], crls).unwrap())
}

fn certificates(store: Arc<TrustStore>) -> Anchors {
    Anchors {
        jwt: None,
        certificates: Some(store),
    }
}

fn keys(signers: &[&DevSigner]) -> Anchors {
    let jwks = dev::jwks(signers).to_string();
    let set = KeySet::from_jwks(&jwks, "test jwks").unwrap();
    Anchors {
        jwt: Some(JwtKeys::new(Arc::new(KeyStore::fixed(set)))),
        certificates: None,
    }
}

fn labels(entries: Vec<(&str, Anchors)>) -> CredentialConfig {
    CredentialConfig {
        labels: entries
            .into_iter()
            .map(|(label, anchors)| (label.to_string(), anchors))
            .collect(),
        ..CredentialConfig::default()
    }
}

fn verify_chain(
    verifier: &Verifier,
    chain: &[CertificateDer<'static>],
) -> Result<Verified, SelectError> {
    verifier.verify(Credential::Certificate { chain, ocsp: None }, at(NOW))
}

/// A gateway leaf: SAN DirName `O=pid`, clientAuth.
fn partner_leaf(pid: &str, serial: u64) -> CertificateParams {
    let mut params = dev::leaf_params(serial, NOW);
    params
        .custom_extensions
        .push(dev::san_extension(&[dev::gateway_dirname(pid, "A1")]));
    params
}

const PARTNERS: &str = "set partners_a = PA\nset partners_b = PB\n\
identity gw_a from certificate {\n    trust \"partner-a\"\n    issuer \"Partner A CA\"\n    pid = san.dirname.O\n    require pid in partners_a\n    client \"gwa:{pid}\"\n}\n\
identity gw_b from certificate {\n    trust \"partner-b\"\n    issuer \"Partner B CA\"\n    pid = san.dirname.O\n    require pid in partners_b\n    client \"gwb:{pid}\"\n}\n\
allow gw_a, gw_b connect\nallow gw_a, gw_b publish \"t/{pid}/#\"\n";

/// Partner B's CA signs a sub-CA whose subject CN is "Partner A CA", which signs a leaf
/// with O=PA. `gw_a` trusts only partner A's CA, so it never verifies the chain; `gw_b`
/// verifies it (its own CA signed the sub-CA) but names "Partner B CA" as the issuing CA,
/// so it refuses a leaf issued by a CA named otherwise — and its partners are `PB` only.
/// The right outcome is no identity at all, with each identity's reason.
#[test]
fn a_partner_sub_ca_named_like_another_partners_ca_binds_as_neither() {
    let checked = policy(PARTNERS);
    let ca_a = DevCa::new("Partner A CA", NOW).unwrap();
    let ca_b = DevCa::new("Partner B CA", NOW).unwrap();
    let rogue = ca_b
        .intermediate(dev::ca_params("Partner A CA", NOW))
        .unwrap();
    let attack = rogue.issue(&partner_leaf("PA", 66)).unwrap().0;
    let config = labels(vec![
        (
            "partner-a",
            certificates(store(&ca_a, vec![crl_der(&ca_a, &[])])),
        ),
        (
            "partner-b",
            certificates(store(
                &ca_b,
                vec![crl_der(&ca_b, &[]), crl_der(&rogue, &[])],
            )),
        ),
    ]);
    let verifier = Verifier::new(&checked, &config).unwrap();
    let refused = verify_chain(&verifier, &[der(&attack), der(&rogue.cert)]).unwrap_err();
    let SelectError::NoneAccepted(reasons) = &refused else {
        panic!("refused for another reason: {refused}");
    };
    // gw_a's only anchor carries the name the leaf's issuer claims, but not its key.
    assert_eq!(
        reasons,
        &[
            (
                "gw_a".to_string(),
                X509Error::Chain(ChainFailure::BadSignature)
            ),
            (
                "gw_b".to_string(),
                X509Error::IssuerMismatch {
                    identity: "gw_b".into(),
                    expected: "Partner B CA".into(),
                    found: "Partner A CA".into(),
                }
            ),
        ]
    );
    // Each partner's own certificates bind as that partner.
    let own_a = ca_a.issue(&partner_leaf("PA", 2)).unwrap().0;
    let own_b = ca_b.issue(&partner_leaf("PB", 3)).unwrap().0;
    let bound_a = verify_chain(&verifier, &[der(&own_a)]).unwrap();
    let bound_b = verify_chain(&verifier, &[der(&own_b)]).unwrap();
    assert_eq!(
        (bound_a.identity.kind.as_str(), bound_a.trust.as_deref()),
        ("gw_a", Some("partner-a"))
    );
    assert_eq!(bound_b.identity.kind, "gw_b");
    // Partner B's CA issuing O=PA directly is not gw_a either (wrong anchors) nor gw_b (PA is
    // not among its partners).
    let forged = ca_b.issue(&partner_leaf("PA", 4)).unwrap().0;
    assert!(verify_chain(&verifier, &[der(&forged)]).is_err());
}

/// The same attack through `topicguard decide`: refused, where the single CA list once
/// allowed `publish t/PA/x` as `gw_a`.
#[test]
fn decide_refuses_the_sub_ca_attack_with_per_label_anchors() {
    let dir = temp_dir("sub-ca");
    let ca_a = DevCa::new("Partner A CA", NOW).unwrap();
    let ca_b = DevCa::new("Partner B CA", NOW).unwrap();
    let now = dev::unix_now();
    let rogue = ca_b
        .intermediate(dev::ca_params("Partner A CA", now))
        .unwrap();
    let mut leaf = partner_leaf("PA", 66);
    leaf.not_before = dev::at(now - 3600);
    leaf.not_after = dev::at(now + 3600);
    let attack = rogue.issue(&leaf).unwrap().0;
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).unwrap();
        dir.join(name).display().to_string()
    };
    let policy_file = write("partners.policy", PARTNERS.to_string());
    let chain = write("attack.pem", attack.pem() + &rogue.cert.pem());
    let (a, b) = (
        write("ca-a.pem", ca_a.cert.pem()),
        write("ca-b.pem", ca_b.cert.pem()),
    );
    let decided = topicguard(&[
        "decide",
        "--policy",
        &policy_file,
        "--cert",
        &chain,
        "--trust",
        &format!("partner-a={a}"),
        "--trust",
        &format!("partner-b={b}"),
        "--client-id",
        "gwa:PA",
        "publish",
        "t/PA/x",
    ]);
    assert_eq!(decided.status.code(), Some(2), "{decided:?}");
    let stderr = String::from_utf8_lossy(&decided.stderr);
    assert!(
        stderr.contains("no certificate identity accepts it"),
        "{stderr}"
    );
    // Without labels, one CA list of two partners' CAs cannot serve two identities told
    // apart only by issuer names: refused before any credential is looked at.
    let unlabelled = write(
        "unlabelled.policy",
        PARTNERS
            .replace("    trust \"partner-a\"\n", "")
            .replace("    trust \"partner-b\"\n", ""),
    );
    let pooled = topicguard(&[
        "decide",
        "--policy",
        &unlabelled,
        "--cert",
        &chain,
        "--ca",
        &a,
        "--ca",
        &b,
        "--client-id",
        "gwa:PA",
        "publish",
        "t/PA/x",
    ]);
    assert_eq!(pooled.status.code(), Some(2), "{pooled:?}");
    let stderr = String::from_utf8_lossy(&pooled.stderr);
    assert!(
        stderr.contains("holds 2 CA certificates") && stderr.contains("gw_a, gw_b"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn two_anchors_in_the_default_ca_set_cannot_serve_two_unlabelled_identities() {
    let checked = policy(
        &PARTNERS
            .replace("    trust \"partner-a\"\n", "")
            .replace("    trust \"partner-b\"\n", ""),
    );
    let ca_a = DevCa::new("Partner A CA", NOW).unwrap();
    let ca_b = DevCa::new("Partner B CA", NOW).unwrap();
    let pooled = TrustStore::new(vec![der(&ca_a.cert), der(&ca_b.cert)], vec![]).unwrap();
    let config = CredentialConfig {
        trust: Some(Arc::new(pooled)),
        ..CredentialConfig::default()
    };
    let err = Verifier::new(&checked, &config).unwrap_err();
    assert!(
        matches!(&err, ConfigError::PooledAnchors { anchors: 2, identities } if identities == &["gw_a", "gw_b"]),
        "{err}"
    );
    // One authority (one anchor) may serve both: its intermediates' names are its own.
    let config = CredentialConfig {
        trust: Some(store(&ca_a, vec![])),
        ..CredentialConfig::default()
    };
    assert!(Verifier::new(&checked, &config).is_ok());
}

#[test]
fn the_default_key_set_cannot_serve_unlabelled_jwt_identities_of_two_issuers() {
    let checked = policy(
        &PLATFORM
            .replace("    trust \"idp\"\n", "")
            .replace("    trust \"partner\"\n", ""),
    );
    let signer = DevSigner::generate(DevAlg::ES256, "k1").unwrap();
    let keys = |signers: &[&DevSigner]| {
        let jwks = serde_json::to_string(&dev::jwks(signers)).unwrap();
        let set = KeySet::from_jwks(&jwks, "test").unwrap();
        JwtKeys::new(Arc::new(KeyStore::fixed(set)))
    };
    let config = CredentialConfig {
        jwt: Some(keys(&[&signer])),
        ..CredentialConfig::default()
    };
    let err = Verifier::new(&checked, &config).unwrap_err();
    assert!(
        matches!(&err, ConfigError::PooledKeys { identities } if identities == &["platform", "partner"]),
        "{err}"
    );
    // One issuer told apart by audience is one authority: it may share the default keys.
    let one_issuer = PLATFORM
        .replace("    trust \"idp\"\n", "")
        .replace("    trust \"partner\"\n", "")
        .replace("https://partner.example/", "https://idp.platform.example/")
        .replace(
            "audience \"iot\"\n    pid = claim \"pid\"\n    client \"q:",
            "audience \"ops\"\n    pid = claim \"pid\"\n    client \"q:",
        );
    let config = CredentialConfig {
        jwt: Some(keys(&[&signer])),
        ..CredentialConfig::default()
    };
    assert!(Verifier::new(&policy(&one_issuer), &config).is_ok());
}

const PLATFORM: &str = "identity platform from jwt {\n    trust \"idp\"\n    issuer \"https://idp.platform.example/\"\n    audience \"iot\"\n    pid = claim \"pid\"\n    client \"p:{pid}\"\n}\n\
identity partner from jwt {\n    trust \"partner\"\n    issuer \"https://partner.example/\"\n    audience \"iot\"\n    pid = claim \"pid\"\n    client \"q:{pid}\"\n}\n\
allow platform, partner connect\n";

fn token(signer: &DevSigner, iss: &str, aud: Value) -> String {
    let now = dev::unix_now();
    signer
        .sign(&json!({"iss": iss, "aud": aud, "exp": now + 600, "iat": now, "pid": "P1"}))
        .unwrap()
}

/// A token signed with a partner's key but claiming the platform's issuer is verified with
/// the platform's keys only, and refused; the partner identity never sees it (its issuer
/// differs). Naming the platform key's `kid` does not help.
#[test]
fn a_partner_key_claiming_the_platform_issuer_binds_as_nothing() {
    let checked = policy(PLATFORM);
    let idp = DevSigner::generate(DevAlg::ES256, "idp-1").unwrap();
    let partner = DevSigner::generate(DevAlg::ES256, "partner-1").unwrap();
    let config = labels(vec![("idp", keys(&[&idp])), ("partner", keys(&[&partner]))]);
    let verifier = Verifier::new(&checked, &config).unwrap();
    let verify = |t: &str| verifier.verify(Credential::Jwt(t), at(dev::unix_now()));
    let platform_iss = "https://idp.platform.example/";
    let forged = token(&partner, platform_iss, json!("iot"));
    let err = verify(&forged).unwrap_err();
    assert!(
        matches!(&err, SelectError::Jwt { identity, error } if identity == "platform"
            && matches!(**error, JwtError::UnknownKid { .. })),
        "{err}"
    );
    let mut header = partner.header();
    header.kid = Some("idp-1".into());
    let now = dev::unix_now();
    let claims = json!({"iss": platform_iss, "aud": "iot", "exp": now + 600, "pid": "P1"});
    let spoofed = partner.sign_with(&header, &claims).unwrap();
    let err = verify(&spoofed).unwrap_err();
    assert!(
        matches!(&err, SelectError::Jwt { identity, error } if identity == "platform"
            && **error == JwtError::BadSignature),
        "{err}"
    );
    let own = verify(&token(&idp, platform_iss, json!("iot"))).unwrap();
    assert_eq!(
        (own.identity.kind.as_str(), own.trust.as_deref()),
        ("platform", Some("idp"))
    );
    let theirs = verify(&token(&partner, "https://partner.example/", json!("iot"))).unwrap();
    assert_eq!(theirs.identity.kind, "partner");
    // An `iss` array holding the platform issuer is not a string: matched by no identity.
    let claims = json!({"iss": [platform_iss], "aud": "iot", "exp": now + 600, "pid": "P1"});
    let err = verify(&idp.sign(&claims).unwrap()).unwrap_err();
    assert!(matches!(err, SelectError::NoIdentityFor { .. }), "{err}");
}

fn building() -> Policy {
    Policy::load("policies/building.policy").expect("policies/building.policy is valid")
}

/// `tenant_app` and `operator` share the `idp` label and issuer and differ by audience: a
/// real token for `building-app` binds as `tenant_app`, one for `building-ops` as
/// `operator`, each with the decisions its rules give; one for both is ambiguous.
#[test]
fn two_identities_of_one_identity_provider_are_told_apart_by_audience() {
    let policy = building();
    let checked = &policy.checked;
    let idp = DevSigner::generate(DevAlg::ES256, "idp-1").unwrap();
    let verifier = Verifier::new(checked, &labels(vec![("idp", keys(&[&idp]))])).unwrap();
    let engine = Engine::new(checked).unwrap();
    let now = dev::unix_now();
    let claims_for = |name: &str| {
        let def = checked.identity(name).unwrap().1;
        let attrs = dev_policy::sample_attributes(def, &BTreeMap::new()).unwrap();
        dev_policy::jwt_claims(def, &attrs, now).unwrap()
    };
    let app_claims = claims_for("tenant_app");
    let ops_claims = claims_for("operator");
    assert_eq!(app_claims["aud"], "building-app");
    assert_eq!(ops_claims["aud"], "building-ops");
    let verify = |claims: &Value| {
        let token = idp.sign(claims).unwrap();
        verifier.verify(Credential::Jwt(&token), at(now))
    };
    let app = verify(&app_claims).unwrap();
    let ops = verify(&ops_claims).unwrap();
    assert_eq!(app.identity.kind, "tenant_app");
    assert_eq!(ops.identity.kind, "operator");
    let tenant = app.identity.attrs["tenant"].clone();
    let app_session = engine.bind(&app.identity, "app:user1:phone");
    assert_eq!(app_session.error(), None);
    let measures = format!("bld/building1/{tenant}/+/+/temperature");
    assert!(
        engine
            .decide(&app_session, Request::subscribe(&measures))
            .is_allowed()
    );
    assert!(
        !engine
            .decide(&app_session, Request::subscribe("$SYS/#"))
            .is_allowed()
    );
    let ops_id = ops
        .client_id
        .clone()
        .expect("operator's client id has no capture");
    let ops_session = engine.bind(&ops.identity, &ops_id);
    assert_eq!(ops_session.error(), None);
    assert!(
        engine
            .decide(&ops_session, Request::subscribe("$SYS/#"))
            .is_allowed()
    );
    let mut both = app_claims.clone();
    both["aud"] = json!(["building-app", "building-ops"]);
    both["bld"] = ops_claims["bld"].clone();
    assert_eq!(
        verify(&both).unwrap_err(),
        SelectError::Ambiguous {
            candidates: vec!["tenant_app".into(), "operator".into()]
        }
    );
    let mut neither = app_claims;
    neither["aud"] = json!("building-guests");
    assert_eq!(
        verify(&neither).unwrap_err().to_string(),
        "no jwt identity accepts issuer `https://login.building.example/` with audience `building-guests`"
    );
}

/// Two current CRLs of one CA, the newer revoking the leaf: revoked whichever is listed
/// first. A stale CRL is superseded by a current one; only stale CRLs are refused.
#[test]
fn every_current_crl_of_the_issuer_is_consulted() {
    let checked = policy(
        "identity gw from certificate {\n    trust \"devices\"\n    pid = san.dirname.O\n    client \"g:{pid}\"\n}\n",
    );
    let ca = DevCa::new("Devices CA", NOW).unwrap();
    let leaf = ca.issue(&partner_leaf("P1", 77)).unwrap().0;
    let crl = |number: u64, this: u64, next: u64, revoked: &[u64]| {
        ca.numbered_crl(number, this, next, revoked)
            .unwrap()
            .der()
            .to_vec()
    };
    let older = crl(1, NOW - 7200, NOW + 3600, &[]);
    let newer = crl(2, NOW - 60, NOW + 3600, &[77]);
    let stale = crl(0, NOW - 9000, NOW - 600, &[]);
    let stale_revoking = crl(0, NOW - 9000, NOW - 600, &[77]);
    let current_clean = crl(3, NOW - 30, NOW + 3600, &[]);
    let outcome = |crls: Vec<Vec<u8>>| {
        let config = labels(vec![("devices", certificates(store(&ca, crls)))]);
        let verifier = Verifier::new(&checked, &config).unwrap();
        match verify_chain(&verifier, &[der(&leaf)]) {
            Ok(v) => format!("bound as {}", v.identity.kind),
            Err(SelectError::Certificate { error, .. }) => error.to_string(),
            Err(other) => other.to_string(),
        }
    };
    let revoked = "certificate chain rejected: certificate is revoked";
    assert_eq!(outcome(vec![older.clone(), newer.clone()]), revoked);
    assert_eq!(outcome(vec![newer.clone(), older.clone()]), revoked);
    assert_eq!(
        outcome(vec![older.clone(), current_clean.clone()]),
        "bound as gw"
    );
    assert_eq!(
        outcome(vec![stale.clone(), current_clean.clone()]),
        "bound as gw"
    );
    assert_eq!(outcome(vec![current_clean, stale_revoking]), "bound as gw");
    let stale_only = outcome(vec![stale]);
    assert!(stale_only.contains("CRL is stale"), "{stale_only}");
    assert_eq!(outcome(vec![older.clone(), newer.clone(), newer]), revoked);
    // Revoked in an older CRL that is still current, absent from the newest: revoked.
    let older_revoking = crl(1, NOW - 7200, NOW + 3600, &[77]);
    let newest_clean = crl(2, NOW - 60, NOW + 3600, &[]);
    assert_eq!(
        outcome(vec![older_revoking.clone(), newest_clean.clone()]),
        revoked
    );
    assert_eq!(outcome(vec![newest_clean, older_revoking]), revoked);
}

fn device_policy() -> topicguard::check::Checked {
    policy(
        "identity d from certificate {\n    trust \"devices\"\n    name = subject.CN\n    uri = san.uri\n    client \"d:{name}\"\n}\n",
    )
}

fn device_leaf(edit: impl Fn(&mut CertificateParams)) -> CertificateParams {
    let mut params = dev::service_params("dev1", 90, NOW);
    params
        .custom_extensions
        .push(dev::san_extension(&[dev::uri(b"urn:dev:1")]));
    edit(&mut params);
    params
}

fn device_outcome(params: &CertificateParams) -> Result<Verified, SelectError> {
    let ca = DevCa::new("Devices CA", NOW).unwrap();
    let leaf = ca.issue(params).unwrap().0;
    let config = labels(vec![("devices", certificates(store(&ca, vec![])))]);
    let verifier = Verifier::new(&device_policy(), &config).unwrap();
    verify_chain(&verifier, &[der(&leaf)])
}

fn certificate_error(result: Result<Verified, SelectError>) -> X509Error {
    match result {
        Err(SelectError::Certificate { error, .. }) => *error,
        other => panic!("expected a certificate refusal, got {other:?}"),
    }
}

/// A leaf keyUsage extension must allow digitalSignature; without the extension the leaf
/// is accepted (RFC 5280 makes it optional for end entities).
#[test]
fn a_leaf_key_usage_must_allow_digital_signature() {
    assert!(device_outcome(&device_leaf(|_| {})).is_ok());
    assert!(device_outcome(&device_leaf(|p| p.key_usages.clear())).is_ok());
    let err = certificate_error(device_outcome(&device_leaf(|p| {
        p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    })));
    assert_eq!(err, X509Error::Chain(ChainFailure::DigitalSignatureMissing));
}

/// Attribute strings are checked against their ASN.1 type's character set (the SAN
/// DirName is written byte for byte here; the subject is read by the same code).
#[test]
fn attribute_strings_keep_to_their_character_sets() {
    use topicguard::identity::der::{self as d, arcs, tag};
    let checked = policy(
        "identity d from certificate {\n    trust \"devices\"\n    name = san.dirname.CN\n    client \"d:{name}\"\n}\n",
    );
    let ca = DevCa::new("Devices CA", NOW).unwrap();
    let config = labels(vec![("devices", certificates(store(&ca, vec![])))]);
    let verifier = Verifier::new(&checked, &config).unwrap();
    let outcome = |tag: u8, bytes: &[u8]| {
        let mut params = dev::leaf_params(91, NOW);
        let name = d::name(&[&[(arcs::CN, tag, bytes)]]);
        params
            .custom_extensions
            .push(dev::san_extension(&[dev::dirname(&name)]));
        let leaf = ca.issue(&params).unwrap().0;
        verify_chain(&verifier, &[der(&leaf)])
    };
    for (tag, bytes) in [
        (tag::PRINTABLE_STRING, b"dev-1:(a)".as_slice()),
        (tag::IA5_STRING, b"dev_1@x"),
        (tag::UTF8_STRING, b"dev_1"),
    ] {
        assert!(outcome(tag, bytes).is_ok(), "{bytes:?}");
    }
    for (case, tag, bytes) in [
        (
            "PrintableString with `_`",
            tag::PRINTABLE_STRING,
            b"dev_1".as_slice(),
        ),
        ("PrintableString with `@`", tag::PRINTABLE_STRING, b"dev@1"),
        (
            "PrintableString with a UTF-8 letter",
            tag::PRINTABLE_STRING,
            "dév".as_bytes(),
        ),
        (
            "IA5String with a non-ASCII letter",
            tag::IA5_STRING,
            "dév1".as_bytes(),
        ),
        (
            "UTF8String that is not UTF-8",
            tag::UTF8_STRING,
            b"dev\xff1",
        ),
    ] {
        let err = certificate_error(outcome(tag, bytes));
        assert!(
            matches!(
                &err,
                X509Error::Field {
                    error: FieldError::BadCharacters { .. },
                    ..
                }
            ),
            "{case}: {err}"
        );
    }
    let uri = device_leaf(|p| {
        p.custom_extensions = vec![dev::san_extension(&[dev::uri("urn:dév:1".as_bytes())])];
    });
    let err = certificate_error(device_outcome(&uri));
    assert!(
        matches!(
            &err,
            X509Error::Field {
                error: FieldError::BadCharacters {
                    kind: "SAN URI",
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tg-trust-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn topicguard(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Writes each CA and CRL of `cas` and a JWKS per JWT label into `dir`; the anchors.
fn write_anchors(
    dir: &Path,
    cas: &PolicyCas,
    signers: &BTreeMap<Option<String>, DevSigner>,
) -> TrustFiles {
    let mut trust = TrustFiles::default();
    for (name, text) in cas.files().unwrap() {
        std::fs::write(dir.join(&name), text).unwrap();
    }
    for label in cas.labels() {
        let (ca, crl) = (
            dir.join(dev_policy::ca_file(label)),
            dir.join(dev_policy::crl_file(label)),
        );
        match label {
            Some(label) => {
                trust.add_trust(label, &ca).unwrap();
                trust.add_crl(label, &crl).unwrap();
            }
            None => {
                trust.default.cas.push(ca);
                trust.default.crls.push(crl);
            }
        }
    }
    for (label, signer) in signers {
        let file = dir.join(dev_policy::jwks_file(label.as_deref()));
        std::fs::write(&file, dev::jwks(&[signer]).to_string()).unwrap();
        match label {
            Some(label) => trust.add_trust(label, &file).unwrap(),
            None => trust.default.jwks = Some(file),
        }
    }
    trust
}

/// Every identity of every shipped policy, with development credentials made for it from
/// its trust label's CA or key, binds as itself and may connect with its client id.
#[test]
fn real_credentials_bind_every_identity_of_every_shipped_policy() {
    use topicguard::ast::IdentityKind;
    for name in ["xfinity", "fleet", "building"] {
        let policy = Policy::load(format!("policies/{name}.policy")).unwrap();
        let checked = &policy.checked;
        let engine = Engine::new(checked).unwrap();
        let now = dev::unix_now();
        let dir = temp_dir(&format!("shipped-{name}"));
        let cas = PolicyCas::new(checked, now).unwrap();
        let mut signers = BTreeMap::new();
        for def in checked
            .identities
            .iter()
            .filter(|d| d.kind == IdentityKind::Jwt)
        {
            let label = def.trust_label().map(str::to_string);
            signers
                .entry(label)
                .or_insert_with(|| DevSigner::generate(DevAlg::ES256, "k1").unwrap());
        }
        let trust = write_anchors(&dir, &cas, &signers);
        let verifier = Verifier::new(checked, &trust.load().unwrap()).unwrap();
        assert!(verifier.unused_anchors().is_empty(), "{name}");
        let mut bound = Vec::new();
        for def in &checked.identities {
            let attrs = dev_policy::sample_attributes(def, &BTreeMap::new()).unwrap();
            let verified = match def.kind {
                IdentityKind::Certificate => {
                    let leaf = cas.issue(def, &attrs).unwrap();
                    let chain: Vec<CertificateDer<'static>> =
                        CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
                            .collect::<Result<_, _>>()
                            .unwrap();
                    verifier.verify(
                        Credential::Certificate {
                            chain: &chain,
                            ocsp: None,
                        },
                        UnixTime::now(),
                    )
                }
                IdentityKind::Jwt => {
                    let signer = &signers[&def.trust_label().map(str::to_string)];
                    let claims = dev_policy::jwt_claims(def, &attrs, now).unwrap();
                    let token = signer.sign(&claims).unwrap();
                    verifier.verify(Credential::Jwt(&token), UnixTime::now())
                }
                IdentityKind::Anonymous => continue,
            };
            let verified = verified.unwrap_or_else(|e| panic!("{name} {}: {e}", def.name));
            assert_eq!(verified.identity.kind, def.name, "{name}");
            assert_eq!(verified.trust.as_deref(), def.trust_label(), "{name}");
            let client_id = dev_policy::sample_client_id(def, &verified.identity.attrs);
            let session = engine.bind(&verified.identity, &client_id);
            assert_eq!(session.error(), None, "{name} {} as {client_id}", def.name);
            assert!(
                engine.decide(&session, Request::Connect).is_allowed(),
                "{name} {} connects",
                def.name
            );
            bound.push(def.name.clone());
        }
        assert!(bound.len() >= 3, "{name}: {bound:?}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// One authority with an intermediate per partner: two identities share the `partners`
/// label and are told apart by the intermediate that issued each certificate.
#[test]
fn identities_of_one_label_are_told_apart_by_their_issuing_intermediates() {
    let checked = policy(
        "identity gw_a from certificate {\n    trust \"partners\"\n    issuer \"Partner A Sub CA\"\n    pid = san.dirname.O\n    client \"a:{pid}\"\n}\n\
         identity gw_b from certificate {\n    trust \"partners\"\n    issuer \"Partner B Sub CA\"\n    pid = san.dirname.O\n    client \"b:{pid}\"\n}\n",
    );
    let now = dev::unix_now();
    let dir = temp_dir("intermediates");
    let cas = PolicyCas::new(&checked, now).unwrap();
    assert_eq!(
        cas.root_cn(Some("partners")),
        Some("topicguard development CA partners")
    );
    let trust = write_anchors(&dir, &cas, &BTreeMap::new());
    let verifier = Verifier::new(&checked, &trust.load().unwrap()).unwrap();
    for name in ["gw_a", "gw_b"] {
        let def = checked.identity(name).unwrap().1;
        let attrs = dev_policy::sample_attributes(def, &BTreeMap::new()).unwrap();
        let leaf = cas.issue(def, &attrs).unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(chain.len(), 2, "leaf and its intermediate");
        let verified = verifier
            .verify(
                Credential::Certificate {
                    chain: &chain,
                    ocsp: None,
                },
                UnixTime::now(),
            )
            .unwrap();
        assert_eq!(verified.identity.kind, name);
        // Without its intermediate the leaf chains to nothing the label trusts.
        assert!(verify_chain_now(&verifier, &chain[..1]).is_err());
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn verify_chain_now(
    verifier: &Verifier,
    chain: &[CertificateDer<'static>],
) -> Result<Verified, SelectError> {
    verifier.verify(
        Credential::Certificate { chain, ocsp: None },
        UnixTime::now(),
    )
}

/// Anchor files are checked for their role: a private key or a CRL in a CA file, a
/// certificate in a CRL file, two JWKS for one label, CRLs without a CA, a bad label.
#[test]
fn anchor_files_are_checked_for_their_role() {
    use topicguard::identity::anchors::AnchorError;
    let dir = temp_dir("anchor-files");
    let ca = DevCa::new("Devices CA", NOW).unwrap();
    let signer = DevSigner::generate(DevAlg::ES256, "k").unwrap();
    let file = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).unwrap();
        dir.join(name)
    };
    let ca_pem = file("ca.pem", ca.cert.pem());
    let crl_pem = file(
        "crl.pem",
        ca.crl(NOW - 60, NOW + 60, &[]).unwrap().pem().unwrap(),
    );
    let with_key = file("ca-and-key.pem", ca.cert.pem() + &signer.private_pem);
    let with_crl = file(
        "ca-and-crl.pem",
        ca.cert.pem() + &std::fs::read_to_string(&crl_pem).unwrap(),
    );
    let jwks = file("jwks.json", dev::jwks(&[&signer]).to_string());
    let load = |edit: &dyn Fn(&mut TrustFiles)| {
        let mut trust = TrustFiles::default();
        edit(&mut trust);
        trust.load().map(|_| ())
    };
    assert!(
        load(&|t| {
            t.add_trust("devices", &ca_pem).unwrap();
            t.add_crl("devices", &crl_pem).unwrap();
            t.add_trust("idp", &jwks).unwrap();
        })
        .is_ok()
    );
    for (case, path) in [("a key", &with_key), ("a CRL", &with_crl)] {
        let err = load(&|t| t.add_trust("devices", path).unwrap()).unwrap_err();
        assert!(
            matches!(err, AnchorError::WrongSection { .. }),
            "{case}: {err}"
        );
    }
    let err = load(&|t| {
        t.add_trust("devices", &ca_pem).unwrap();
        t.add_crl("devices", &ca_pem).unwrap();
    })
    .unwrap_err();
    assert!(
        matches!(err, AnchorError::WrongSection { role: "CRL", .. }),
        "{err}"
    );
    let err = load(&|t| t.add_crl("devices", &crl_pem).unwrap()).unwrap_err();
    assert!(matches!(err, AnchorError::CrlsWithoutCa(_)), "{err}");
    let mut trust = TrustFiles::default();
    trust.add_trust("idp", &jwks).unwrap();
    assert!(matches!(
        trust.add_trust("idp", &jwks),
        Err(AnchorError::TwoJwks { .. })
    ));
    assert!(matches!(
        trust.add_trust("Devices", &ca_pem),
        Err(AnchorError::BadLabel { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}
