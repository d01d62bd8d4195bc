//! Identity build cost next to the bare signature verification it wraps.
//!
//! JWT, per algorithm: `JwtVerifier::verify` (length cap, header checks, key lookup, signature,
//! claims, attribute grammar, requires) against a bare `jsonwebtoken::decode` with an
//! equivalent `Validation`. Certificates: `CertVerifier::verify` (webpki chain with CRL,
//! leaf EKU, attribute extraction) against the bare webpki verification, and the attribute
//! extraction alone from an already-verified certificate. Selection: a credential verified
//! through `Verifier` (every identity of its kind with its own anchors, exactly one must
//! accept) next to the one identity's verifier alone — `policies/building.policy`'s two jwt
//! identities of one IdP, and xfinity's two certificate identities with their own CAs — and a
//! chain checked against one current CRL of its issuer or two.

use criterion::{Criterion, criterion_group, criterion_main};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use topicguard::Policy;
use topicguard::check::Checked;
use topicguard::devcred::policy as dev_policy;
use topicguard::devcred::{self as dev, DevAlg, DevCa, DevSigner, GatewaySpec};
use topicguard::identity::jwt::{JwtKeys, JwtVerifier};
use topicguard::identity::keys::{KeySet, KeyStore};
use topicguard::identity::select::{Anchors, Credential, CredentialConfig, Verifier};
use topicguard::identity::x509::{CertVerifier, TrustStore};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

fn xfinity() -> Checked {
    Policy::load("policies/xfinity.policy")
        .expect("policies/xfinity.policy loads")
        .checked
        .as_ref()
        .clone()
}

fn jwt(c: &mut Criterion) {
    let checked = xfinity();
    let mobile = checked.identity("mobile").expect("mobile identity").1;
    let mut group = c.benchmark_group("jwt");
    for alg in [DevAlg::RS256, DevAlg::ES256, DevAlg::EdDSA] {
        let signer = DevSigner::generate(alg, "bench").expect("key generation");
        let jwks = dev::jwks(&[&signer]).to_string();
        let set = KeySet::from_jwks(&jwks, "bench").expect("jwks");
        let key = set.entries[0].key.clone();
        let verifier = JwtVerifier::new(mobile, JwtKeys::new(Arc::new(KeyStore::fixed(set))))
            .expect("verifier");
        let mut claims = dev::default_claims(dev::unix_now(), "J1");
        claims["pid"] = "P1".into();
        claims["aid"] = "A1".into();
        let token = signer.sign(&claims).expect("token");
        let mut validation = jsonwebtoken::Validation::new(alg.algorithm());
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_issuer(&["https://idp.example.com/"]);
        validation.set_audience(&["iot-platform"]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        group.bench_function(format!("{alg:?}/bare_decode"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &key, &validation)
                    .expect("bare decode")
            })
        });
        group.bench_function(format!("{alg:?}/topicguard_verify"), |b| {
            b.iter(|| verifier.verify(black_box(&token)).expect("verified"))
        });
    }
    group.finish();
}

static ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
];

fn certificate(c: &mut Criterion) {
    let checked = xfinity();
    let gateway = checked.identity("gateway").expect("gateway identity").1;
    let now = dev::unix_now();
    let ca = DevCa::new("Bench CA", now).expect("ca");
    let params = dev::gateway_params(&GatewaySpec::default(), 2, now);
    let leaf: CertificateDer<'static> = ca.issue(&params).expect("leaf").0.der().clone();
    let crl_der = ca
        .crl(now - 60, now + 3600, &[])
        .expect("crl")
        .der()
        .to_vec();
    let trust = Arc::new(
        TrustStore::new(vec![ca.cert.der().clone()], vec![crl_der.clone()]).expect("trust"),
    );
    let verifier = CertVerifier::new(gateway, trust).expect("verifier");
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now));
    let chain = [leaf.clone()];
    let anchors = [webpki::anchor_from_trusted_cert(ca.cert.der())
        .expect("anchor")
        .to_owned()];
    let crl = CertRevocationList::Owned(OwnedCertRevocationList::from_der(&crl_der).expect("crl"));
    let crls = [&crl];
    let mut group = c.benchmark_group("certificate");
    group.bench_function("bare_webpki_verify", |b| {
        b.iter(|| {
            let revocation = RevocationOptionsBuilder::new(&crls)
                .expect("crls")
                .with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Deny)
                .with_expiration_policy(ExpirationPolicy::Enforce)
                .build();
            let cert = EndEntityCert::try_from(black_box(&leaf)).expect("parse");
            cert.verify_for_usage(
                ALGS,
                &anchors,
                &[],
                time,
                KeyUsage::client_auth(),
                Some(revocation),
                None,
            )
            .map(|_| ())
            .expect("verified")
        })
    });
    group.bench_function("topicguard_verify", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&chain), None, time)
                .expect("verified")
        })
    });
    group.bench_function("extract_attributes", |b| {
        b.iter(|| {
            verifier
                .extract(black_box(leaf.as_ref()))
                .expect("extracted")
        })
    });
    group.finish();
}

fn load(path: &str) -> Checked {
    Policy::load(path)
        .expect("a shipped policy loads")
        .checked
        .as_ref()
        .clone()
}

fn config(labels: Vec<(&str, Anchors)>) -> CredentialConfig {
    CredentialConfig {
        labels: labels
            .into_iter()
            .map(|(label, anchors)| (label.to_string(), anchors))
            .collect(),
        ..CredentialConfig::default()
    }
}

fn selection(c: &mut Criterion) {
    let mut group = c.benchmark_group("selection");
    let building = load("policies/building.policy");
    let operator = building.identity("operator").expect("operator").1;
    let signer = DevSigner::generate(DevAlg::ES256, "idp").expect("key generation");
    let set = KeySet::from_jwks(&dev::jwks(&[&signer]).to_string(), "bench").expect("jwks");
    let keys = JwtKeys::new(Arc::new(KeyStore::fixed(set)));
    let alone = JwtVerifier::new(operator, keys.clone()).expect("verifier");
    let idp = Anchors {
        jwt: Some(keys),
        certificates: None,
    };
    let verifier = Verifier::new(&building, &config(vec![("idp", idp)])).expect("verifier");
    let now = dev::unix_now();
    let attrs = dev_policy::sample_attributes(operator, &Default::default()).expect("attrs");
    let claims = dev_policy::jwt_claims(operator, &attrs, now).expect("claims");
    let token = signer.sign(&claims).expect("token");
    group.bench_function("jwt/operator_alone", |b| {
        b.iter(|| alone.verify(black_box(&token)).expect("verified"))
    });
    group.bench_function("jwt/building_two_identities_one_idp", |b| {
        b.iter(|| {
            verifier
                .verify(Credential::Jwt(black_box(&token)), UnixTime::now())
                .expect("verified")
        })
    });
    let xfinity = xfinity();
    let gateway = xfinity.identity("gateway").expect("gateway").1;
    let anchors = |name: &str| {
        let ca = DevCa::new(name, now).expect("ca");
        let crl = ca
            .crl(now - 60, now + 3600, &[])
            .expect("crl")
            .der()
            .to_vec();
        let store =
            Arc::new(TrustStore::new(vec![ca.cert.der().clone()], vec![crl]).expect("store"));
        (ca, store)
    };
    let (devices_ca, devices) = anchors("Devices CA");
    let (_, services) = anchors("Services CA");
    let params = dev::gateway_params(&GatewaySpec::default(), 2, now);
    let chain = [devices_ca.issue(&params).expect("leaf").0.der().clone()];
    let alone = CertVerifier::new(gateway, devices.clone()).expect("verifier");
    let certificates = |store: &Arc<TrustStore>| Anchors {
        jwt: None,
        certificates: Some(store.clone()),
    };
    let labels = config(vec![
        ("devices", certificates(&devices)),
        ("services", certificates(&services)),
    ]);
    let verifier = Verifier::new(&xfinity, &labels).expect("verifier");
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now));
    group.bench_function("certificate/gateway_alone", |b| {
        b.iter(|| {
            alone
                .verify(black_box(&chain), None, time)
                .expect("verified")
        })
    });
    group.bench_function("certificate/xfinity_two_labels", |b| {
        b.iter(|| {
            let credential = Credential::Certificate {
                chain: black_box(&chain),
                ocsp: None,
            };
            verifier.verify(credential, time).expect("verified")
        })
    });
    let two_crls = Arc::new(
        TrustStore::new(
            vec![devices_ca.cert.der().clone()],
            vec![
                devices_ca
                    .numbered_crl(1, now - 7200, now + 3600, &[])
                    .expect("crl")
                    .der()
                    .to_vec(),
                devices_ca
                    .numbered_crl(2, now - 60, now + 3600, &[])
                    .expect("crl")
                    .der()
                    .to_vec(),
            ],
        )
        .expect("store"),
    );
    group.bench_function("crl/one_current_crl", |b| {
        b.iter(|| {
            devices
                .verify_chain(black_box(&chain), time)
                .expect("verified")
        })
    });
    group.bench_function("crl/two_current_crls", |b| {
        b.iter(|| {
            two_crls
                .verify_chain(black_box(&chain), time)
                .expect("verified")
        })
    });
    group.finish();
}

criterion_group!(benches, jwt, certificate, selection);
criterion_main!(benches);
