//! Certificate verification and identity selection: the seed layout, bad-inputs cases 28–46,
//! OCSP responses, and choosing the identity block for a credential.

use super::{def, policy, xfinity};
use rcgen::{
    Certificate, CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose,
    GeneralSubtree, KeyPair, NameConstraints, SigningKey,
};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::sync::Arc;
use std::time::Duration;
use topicguard::Engine;
use topicguard::decide::BindError;
use topicguard::devcred::{self as dev, DevCa, GatewaySpec};
use topicguard::identity::der::{self, arcs, tag};
use topicguard::identity::select::{Anchors, Credential, CredentialConfig, SelectError, Verifier};
use topicguard::identity::x509::{
    CertVerifier, ChainFailure, FieldError, RevocationPolicy, TrustStore, X509Error,
};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The default development gateway's installation id.
const IID: &str = "550e8400-e29b-41d4-a716-446655440000";

fn gateway_client(pid: &str, aid: &str, iid: &str) -> String {
    format!("iot:{pid}_{aid}:adp:xhf:{iid}")
}

struct Pki {
    ca: DevCa,
    now: u64,
}

/// A fixed verification time (2027-01-15), so messages and snapshots are stable.
const NOW: u64 = 1_800_000_000;

fn pki() -> Pki {
    let now = NOW;
    Pki {
        ca: DevCa::new("Dev Gateway CA", now).unwrap(),
        now,
    }
}

impl Pki {
    fn crl(&self, revoked: &[u64]) -> Vec<u8> {
        let crl = self
            .ca
            .crl(self.now - 60, self.now + 3600, revoked)
            .unwrap();
        crl.der().as_ref().to_vec()
    }

    fn trust(&self) -> Arc<TrustStore> {
        Arc::new(TrustStore::new(vec![self.ca.cert.der().clone()], vec![self.crl(&[])]).unwrap())
    }

    fn gateway(&self) -> CertificateParams {
        dev::gateway_params(&GatewaySpec::default(), 1001, self.now)
    }

    fn issue(&self, params: &CertificateParams) -> Certificate {
        self.ca.issue(params).unwrap().0
    }

    fn time(&self) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(self.now))
    }
}

fn verifier(name: &str, trust: Arc<TrustStore>) -> CertVerifier {
    CertVerifier::new(def(&xfinity(), name), trust).unwrap()
}

fn chain(certs: &[&Certificate]) -> Vec<CertificateDer<'static>> {
    certs.iter().map(|c| c.der().clone()).collect()
}

fn verify(
    pki: &Pki,
    name: &str,
    certs: &[&Certificate],
) -> Result<topicguard::identity::x509::VerifiedCert, X509Error> {
    verifier(name, pki.trust()).verify(&chain(certs), None, pki.time())
}

#[test]
fn the_seed_gateway_and_service_certificates_verify() {
    let pki = pki();
    let gateway = verify(&pki, "gateway", &[&pki.issue(&pki.gateway())]).unwrap();
    let service = verify(
        &pki,
        "service",
        &[&pki.issue(&dev::service_params("lights", 7, pki.now))],
    )
    .unwrap();
    assert_eq!(gateway.revocation, RevocationPolicy::Crls);
    assert_eq!(gateway.issuer_cn.as_deref(), Some("Dev Gateway CA"));
    assert!(gateway.identity.expires_at.is_some_and(|t| t > pki.now));
    let shown = format!(
        "gateway: {:?}\nservice: {:?}\nserial: {}",
        gateway.identity.attrs, service.identity.attrs, gateway.serial
    );
    insta::assert_snapshot!("certificate_identities", shown);
    let engine = Engine::new(&xfinity()).expect("the seed policy compiles");
    let session = engine.bind(&gateway.identity, &gateway_client("P1", "A1", IID));
    assert_eq!(session.error(), None);
    let other_iid = "550e8400-e29b-41d4-a716-446655440001";
    for wrong in [
        gateway_client("P2", "A1", IID),
        gateway_client("P1", "A1", other_iid),
        gateway_client("P1", "A2", IID),
    ] {
        let session = engine.bind(&gateway.identity, &wrong);
        assert!(
            matches!(session.error(), Some(BindError::ClientIdMismatch { .. })),
            "46: {wrong}"
        );
    }
}

#[test]
fn the_same_certificate_gives_the_same_identity_every_time() {
    let pki = pki();
    let leaf = pki.issue(&pki.gateway());
    let first = verify(&pki, "gateway", &[&leaf]).unwrap();
    let second = verify(&pki, "gateway", &[&leaf]).unwrap();
    assert_eq!(first, second);
}

#[test]
fn an_intermediate_chain_verifies_with_crls_for_every_level() {
    let pki = pki();
    let intermediate = pki
        .ca
        .intermediate(dev::ca_params("Dev Gateway Sub CA", pki.now))
        .unwrap();
    let leaf = intermediate.issue(&pki.gateway()).unwrap().0;
    let sub_crl = intermediate
        .crl(pki.now - 60, pki.now + 3600, &[])
        .unwrap()
        .der()
        .as_ref()
        .to_vec();
    let anchors = vec![pki.ca.cert.der().clone()];
    let full = Arc::new(TrustStore::new(anchors.clone(), vec![pki.crl(&[]), sub_crl]).unwrap());
    let ok =
        verifier("gateway", full).verify(&chain(&[&leaf, &intermediate.cert]), None, pki.time());
    assert_eq!(ok.unwrap().issuer_cn.as_deref(), Some("Dev Gateway Sub CA"));
    let root_only = Arc::new(TrustStore::new(anchors, vec![pki.crl(&[])]).unwrap());
    let err = verifier("gateway", root_only).verify(
        &chain(&[&leaf, &intermediate.cert]),
        None,
        pki.time(),
    );
    assert_eq!(
        err.unwrap_err(),
        X509Error::Chain(ChainFailure::UnknownRevocationStatus)
    );
}

/// Builds a gateway with its SAN replaced by these GeneralNames.
fn with_san(pki: &Pki, names: &[Vec<u8>]) -> Certificate {
    let mut params = pki.gateway();
    params.custom_extensions = vec![dev::san_extension(names)];
    pki.issue(&params)
}

fn mac_uri(mac: &str) -> Vec<u8> {
    dev::uri(format!("urn:dev:mac:{mac}").as_bytes())
}

fn with_uid(pki: &Pki, uid: &str) -> Certificate {
    let mut params = pki.gateway();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(dev::uid_type(), DnValue::Utf8String(uid.to_string()));
    pki.issue(&params)
}

fn utf8(arcs: &'static [u64], value: &'static str) -> (&'static [u64], u8, &'static [u8]) {
    (arcs, tag::UTF8_STRING, value.as_bytes())
}

/// Gateway certificates that must be refused at attribute extraction (34–39).
fn bad_gateways(pki: &Pki) -> Vec<(&'static str, Certificate)> {
    let seed_dirname = dev::gateway_dirname("P1", "A1");
    let good_mac = mac_uri("0011223344556677");
    let name = |rdns: &[&[der::NameAttribute<'_>]]| dev::dirname(&der::name(rdns));
    let mut cases = vec![
        ("34 no SAN", {
            let mut params = pki.gateway();
            params.custom_extensions.clear();
            params
                .distinguished_name
                .push(DnType::OrganizationName, "P1");
            params.distinguished_name.push(DnType::CommonName, "A1");
            pki.issue(&params)
        }),
        (
            "34 SAN without DirName",
            with_san(pki, std::slice::from_ref(&good_mac)),
        ),
        (
            "35 two DirNames",
            with_san(
                pki,
                &[
                    seed_dirname.clone(),
                    dev::gateway_dirname("P2", "A1"),
                    good_mac.clone(),
                ],
            ),
        ),
        (
            "36 DirName with two O",
            with_san(
                pki,
                &[
                    name(&[
                        &[utf8(arcs::O, "P1")],
                        &[utf8(arcs::O, "P2")],
                        &[utf8(arcs::CN, "A1")],
                    ]),
                    good_mac.clone(),
                ],
            ),
        ),
        (
            "36 DirName without CN",
            with_san(pki, &[name(&[&[utf8(arcs::O, "P1")]]), good_mac.clone()]),
        ),
        (
            "36 multi-valued RDN",
            with_san(
                pki,
                &[
                    name(&[&[utf8(arcs::O, "P1"), utf8(arcs::CN, "A1")]]),
                    good_mac.clone(),
                ],
            ),
        ),
        (
            "36 O as BMPString",
            with_san(
                pki,
                &[
                    name(&[
                        &[(arcs::O, tag::BMP_STRING, &[0, b'P', 0, b'1'])],
                        &[utf8(arcs::CN, "A1")],
                    ]),
                    good_mac.clone(),
                ],
            ),
        ),
        (
            "36 CN forging an O",
            with_san(
                pki,
                &[
                    name(&[&[utf8(arcs::O, "P1")], &[utf8(arcs::CN, "A1, O=P9")]]),
                    good_mac.clone(),
                ],
            ),
        ),
        ("37 UID missing", {
            let mut params = pki.gateway();
            params.distinguished_name = DistinguishedName::new();
            pki.issue(&params)
        }),
        (
            "39 SAN URI with invalid UTF-8",
            with_san(pki, &[seed_dirname.clone(), dev::uri(&[b'u', 0xff, 0xfe])]),
        ),
        ("40 duplicate SAN extension", {
            let mut params = pki.gateway();
            params.custom_extensions.push(dev::san_extension(&[
                seed_dirname.clone(),
                good_mac.clone(),
            ]));
            pki.issue(&params)
        }),
    ];
    for (case, uid) in [
        ("37 UID with 3 parts", "XB7:SN0001:A1"),
        (
            "37 UID with 5 parts",
            "XB7:SN0001:A1:550e8400-e29b-41d4-a716-446655440000:X",
        ),
        ("37 UID empty", ""),
        ("37 IID part empty", "XB7:SN0001:A1:"),
        (
            "37 AID in UID differs from SAN CN",
            "XB7:SN0001:A9:550e8400-e29b-41d4-a716-446655440000",
        ),
        ("37 IID not a UUID", "XB7:SN0001:A1:I1"),
    ] {
        cases.push((case, with_uid(pki, uid)));
    }
    for (case, mac) in [
        ("38 EUI-48", "001122334455"),
        ("38 separators", "00:11:22:33:44:55:66:77"),
        ("38 uppercase", "00112233445566AA"),
        ("38 15 hex digits", "001122334455667"),
        ("38 17 hex digits", "00112233445566778"),
        ("38 non-hex", "001122334455667g"),
    ] {
        cases.push((case, with_san(pki, &[seed_dirname.clone(), mac_uri(mac)])));
    }
    cases
}

#[test]
fn malformed_attributes_are_refused_with_a_reason() {
    let pki = pki();
    let gateway = verifier("gateway", pki.trust());
    let mut lines = Vec::new();
    for (case, cert) in bad_gateways(&pki) {
        let full = gateway.verify(&chain(&[&cert]), None, pki.time());
        let extracted = gateway.extract(cert.der().as_ref());
        let err = full.expect_err(case);
        let extract_err = extracted.expect_err(case);
        if extract_err == err {
            lines.push(format!("{case}: {err}"));
        } else {
            // webpki refused the chain first; extraction alone refuses it too.
            lines.push(format!("{case}: {err} / extraction: {extract_err}"));
        }
    }
    insta::assert_snapshot!("x509_attribute_rejections", lines.join("\n"));
}

#[test]
fn a_duplicate_extension_is_named() {
    let pki = pki();
    let mut params = pki.gateway();
    let san = params.custom_extensions[0].clone();
    params.custom_extensions.push(san);
    let cert = pki.issue(&params);
    let err = verifier("gateway", pki.trust())
        .extract(cert.der().as_ref())
        .unwrap_err();
    assert_eq!(
        err,
        X509Error::DuplicateExtension {
            oid: "2.5.29.17".to_string()
        }
    );
}

#[test]
fn service_names_must_be_plain_strings() {
    let pki = pki();
    let service = verifier("service", pki.trust());
    let mut bmp = dev::service_params("x", 8, pki.now);
    bmp.distinguished_name = DistinguishedName::new();
    let value = rcgen::string::BmpString::try_from("lights").unwrap();
    bmp.distinguished_name
        .push(DnType::CommonName, DnValue::BmpString(value));
    let err = service
        .verify(&chain(&[&pki.issue(&bmp)]), None, pki.time())
        .unwrap_err();
    assert!(
        matches!(
            err,
            X509Error::Field {
                error: FieldError::BadEncoding { tag: 30 },
                ..
            }
        ),
        "{err}"
    );
    let slash = pki.issue(&dev::service_params("lights/#", 9, pki.now));
    let err = service
        .verify(&chain(&[&slash]), None, pki.time())
        .unwrap_err();
    assert!(
        matches!(
            err,
            X509Error::Field {
                error: FieldError::BadValue { .. },
                ..
            }
        ),
        "{err}"
    );
}

/// Chains `rustls-webpki` must refuse (28–32, 41–43).
fn bad_chains(pki: &Pki) -> Vec<(&'static str, Vec<CertificateDer<'static>>, Arc<TrustStore>)> {
    let trust = pki.trust();
    let leaf = |edit: &dyn Fn(&mut CertificateParams)| {
        let mut params = pki.gateway();
        edit(&mut params);
        chain(&[&pki.issue(&params)])
    };
    let other_ca = DevCa::new("Other CA", pki.now).unwrap();
    let self_signed = {
        let key = KeyPair::generate().unwrap();
        chain(&[&pki.gateway().self_signed(&key).unwrap()])
    };
    let (constrained, constrained_trust) = name_constrained_chain(pki);
    let crl_trust = |crl: Vec<u8>| {
        Arc::new(TrustStore::new(vec![pki.ca.cert.der().clone()], vec![crl]).unwrap())
    };
    vec![
        (
            "28 expired",
            leaf(&|p| p.not_after = dev::at(pki.now - 3600)),
            trust.clone(),
        ),
        (
            "28 not yet valid",
            leaf(&|p| p.not_before = dev::at(pki.now + 3600)),
            trust.clone(),
        ),
        (
            "29 unknown CA",
            chain(&[&other_ca.issue(&pki.gateway()).unwrap().0]),
            trust.clone(),
        ),
        ("29 self-signed leaf", self_signed, trust.clone()),
        (
            "30 serial in the CRL",
            leaf(&|_| {}),
            crl_trust(pki.crl(&[1001])),
        ),
        (
            "31 stale CRL",
            leaf(&|_| {}),
            crl_trust(
                pki.ca
                    .crl(pki.now - 7200, pki.now - 60, &[])
                    .unwrap()
                    .der()
                    .to_vec(),
            ),
        ),
        (
            "32 no CRL for the issuer",
            leaf(&|_| {}),
            crl_trust(
                other_ca
                    .crl(pki.now - 60, pki.now + 3600, &[])
                    .unwrap()
                    .der()
                    .to_vec(),
            ),
        ),
        (
            "41 no EKU",
            leaf(&|p| p.extended_key_usages.clear()),
            trust.clone(),
        ),
        (
            "41 serverAuth only",
            leaf(&|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]),
            trust.clone(),
        ),
        ("42 the CA as client", chain(&[&pki.ca.cert]), trust.clone()),
        (
            "43 dirName name constraints",
            constrained,
            constrained_trust,
        ),
    ]
}

fn name_constrained_chain(pki: &Pki) -> (Vec<CertificateDer<'static>>, Arc<TrustStore>) {
    let mut params = dev::ca_params("Constrained Sub CA", pki.now);
    let mut permitted = DistinguishedName::new();
    permitted.push(DnType::OrganizationName, "P2");
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DirectoryName(permitted)],
        excluded_subtrees: vec![],
    });
    let sub = pki.ca.intermediate(params).unwrap();
    let leaf = sub.issue(&pki.gateway()).unwrap().0;
    let sub_crl = sub
        .crl(pki.now - 60, pki.now + 3600, &[])
        .unwrap()
        .der()
        .to_vec();
    let anchors = vec![pki.ca.cert.der().clone()];
    let trust = Arc::new(TrustStore::new(anchors, vec![pki.crl(&[]), sub_crl]).unwrap());
    (chain(&[&leaf, &sub.cert]), trust)
}

#[test]
fn bad_chains_are_refused_by_webpki() {
    let pki = pki();
    let mut lines = Vec::new();
    for (case, certs, trust) in bad_chains(&pki) {
        let err = verifier("gateway", trust)
            .verify(&certs, None, pki.time())
            .expect_err(case);
        assert!(matches!(err, X509Error::Chain(_)), "{case}: {err}");
        lines.push(format!("{case}: {err}"));
    }
    insta::assert_snapshot!("x509_chain_rejections", lines.join("\n"));
}

#[test]
fn without_crls_revocation_is_reported_as_not_checked() {
    let pki = pki();
    let trust = Arc::new(TrustStore::new(vec![pki.ca.cert.der().clone()], vec![]).unwrap());
    let cert =
        verifier("gateway", trust).verify(&chain(&[&pki.issue(&pki.gateway())]), None, pki.time());
    assert_eq!(cert.unwrap().revocation, RevocationPolicy::NotChecked);
}

#[test]
fn the_issuer_setting_pins_the_issuing_ca() {
    // 44: a CA may only issue for the identity that names it.
    let pki = pki();
    let text = "identity gw from certificate {\n  issuer \"PID2 Gateway CA\"\n  pid = san.dirname.O\n  \
                client \"g:{pid}\"\n}\n";
    let checked = policy(text);
    let verifier = CertVerifier::new(def(&checked, "gw"), pki.trust()).unwrap();
    let err = verifier
        .verify(&chain(&[&pki.issue(&pki.gateway())]), None, pki.time())
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"issued by `Dev Gateway CA`, but identity `gw` accepts only issuer `PID2 Gateway CA`");
}

#[test]
fn a_ca_issues_only_for_the_partners_it_is_allowed() {
    // 44: the CA that issued this gateway certificate (PID `P1`) may issue only for `P2`.
    let pki = pki();
    let text = "set dev_ca_partners = P2, P3\nidentity gw from certificate {\n  issuer \"Dev Gateway CA\"\n  \
                pid = san.dirname.O\n  require pid in dev_ca_partners\n  client \"g:{pid}\"\n}\n";
    let checked = policy(text);
    let verifier = CertVerifier::new(def(&checked, "gw"), pki.trust()).unwrap();
    let err = verifier
        .verify(&chain(&[&pki.issue(&pki.gateway())]), None, pki.time())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("require pid in dev_ca_partners does not hold: `P1`"),
        "{err}"
    );
    let allowed = policy(&text.replace("P2, P3", "P1, P2"));
    let verifier = CertVerifier::new(def(&allowed, "gw"), pki.trust()).unwrap();
    let identity = verifier.verify(&chain(&[&pki.issue(&pki.gateway())]), None, pki.time());
    assert!(identity.is_ok(), "{identity:?}");
}

// ---- OCSP (33) ----

struct OcspSpec<'a> {
    signer: &'a dyn SigningKey,
    responder_name: Vec<u8>,
    certs: Vec<Vec<u8>>,
    serial: Vec<u8>,
    status: Vec<u8>,
    this_update: u64,
    next_update: Option<u64>,
}

fn gtime(unix: u64) -> Vec<u8> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix as i64).unwrap();
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    der::tlv(tag::GENERALIZED_TIME, text.as_bytes())
}

fn sha1(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

fn ocsp_response(spec: &OcspSpec<'_>, issuer_der: &[u8]) -> Vec<u8> {
    let (_, issuer) = X509Certificate::from_der(issuer_der).unwrap();
    let alg_sha1 = der::constructed(
        tag::SEQUENCE,
        &[&der::oid(&[1, 3, 14, 3, 2, 26]), &der::tlv(tag::NULL, &[])],
    );
    let cert_id = der::constructed(
        tag::SEQUENCE,
        &[
            &alg_sha1,
            &der::tlv(tag::OCTET_STRING, &sha1(issuer.subject().as_raw())),
            &der::tlv(
                tag::OCTET_STRING,
                &sha1(&issuer.public_key().subject_public_key.data),
            ),
            &der::tlv(tag::INTEGER, &spec.serial),
        ],
    );
    let next = spec
        .next_update
        .map(|t| der::tlv(tag::context(0), &gtime(t)))
        .unwrap_or_default();
    let single = der::constructed(
        tag::SEQUENCE,
        &[&cert_id, &spec.status, &gtime(spec.this_update), &next],
    );
    let tbs = der::constructed(
        tag::SEQUENCE,
        &[
            &der::tlv(tag::context(1), &spec.responder_name),
            &gtime(spec.this_update),
            &der::constructed(tag::SEQUENCE, &[&single]),
        ],
    );
    let signature = [&[0u8][..], &spec.signer.sign(&tbs).unwrap()].concat();
    let cert_parts: Vec<&[u8]> = spec.certs.iter().map(Vec::as_slice).collect();
    let certs = if spec.certs.is_empty() {
        Vec::new()
    } else {
        der::tlv(
            tag::context(0),
            &der::constructed(tag::SEQUENCE, &cert_parts),
        )
    };
    let ecdsa_sha256 = der::constructed(tag::SEQUENCE, &[&der::oid(&[1, 2, 840, 10045, 4, 3, 2])]);
    let basic = der::constructed(
        tag::SEQUENCE,
        &[
            &tbs,
            &ecdsa_sha256,
            &der::tlv(tag::BIT_STRING, &signature),
            &certs,
        ],
    );
    let bytes = der::constructed(
        tag::SEQUENCE,
        &[
            &der::oid(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 1]),
            &der::tlv(tag::OCTET_STRING, &basic),
        ],
    );
    der::constructed(
        tag::SEQUENCE,
        &[
            &der::tlv(tag::ENUMERATED, &[0]),
            &der::tlv(tag::context(0), &bytes),
        ],
    )
}

fn subject_of(der_bytes: &[u8]) -> Vec<u8> {
    X509Certificate::from_der(der_bytes)
        .unwrap()
        .1
        .subject()
        .as_raw()
        .to_vec()
}

fn responder(pki: &Pki, eku: Vec<ExtendedKeyUsagePurpose>) -> (Certificate, KeyPair) {
    let mut params = dev::leaf_params(5000, pki.now);
    params
        .distinguished_name
        .push(DnType::CommonName, "Dev OCSP Responder");
    params.extended_key_usages = eku;
    pki.ca.issue(&params).unwrap()
}

#[test]
fn ocsp_responses_are_checked_for_signer_certid_freshness_and_status() {
    let pki = pki();
    let leaf = pki.issue(&pki.gateway());
    let serial = X509Certificate::from_der(leaf.der())
        .unwrap()
        .1
        .raw_serial()
        .to_vec();
    let ca_der = pki.ca.cert.der().to_vec();
    let (delegate, delegate_key) = responder(&pki, vec![ExtendedKeyUsagePurpose::OcspSigning]);
    let (plain, plain_key) = responder(&pki, vec![ExtendedKeyUsagePurpose::ClientAuth]);
    let other_ca = DevCa::new("Other CA", pki.now).unwrap();
    let foreign = {
        let mut params = dev::leaf_params(6000, pki.now);
        params
            .distinguished_name
            .push(DnType::CommonName, "Foreign OCSP Responder");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        other_ca.issue(&params).unwrap()
    };
    let good = der::tlv(tag::context_primitive(0), &[]);
    let base = || OcspSpec {
        signer: pki.ca.issuer.key(),
        responder_name: subject_of(&ca_der),
        certs: vec![],
        serial: serial.clone(),
        status: good.clone(),
        this_update: pki.now - 60,
        next_update: Some(pki.now + 3600),
    };
    let cases: Vec<(&str, OcspSpec<'_>)> = vec![
        ("good, signed by the issuer", base()),
        (
            "good, delegated responder with OCSPSigning",
            OcspSpec {
                signer: &delegate_key,
                responder_name: subject_of(delegate.der()),
                certs: vec![delegate.der().to_vec()],
                ..base()
            },
        ),
        (
            "delegated responder without OCSPSigning",
            OcspSpec {
                signer: &plain_key,
                responder_name: subject_of(plain.der()),
                certs: vec![plain.der().to_vec()],
                ..base()
            },
        ),
        (
            "signed by a different CA",
            OcspSpec {
                signer: other_ca.issuer.key(),
                responder_name: subject_of(other_ca.cert.der()),
                certs: vec![other_ca.cert.der().to_vec()],
                ..base()
            },
        ),
        (
            "responder with OCSPSigning from another CA",
            OcspSpec {
                signer: &foreign.1,
                responder_name: subject_of(foreign.0.der()),
                certs: vec![foreign.0.der().to_vec()],
                ..base()
            },
        ),
        (
            "issuer name, other key",
            OcspSpec {
                signer: other_ca.issuer.key(),
                ..base()
            },
        ),
        (
            "stale nextUpdate",
            OcspSpec {
                this_update: pki.now - 7200,
                next_update: Some(pki.now - 60),
                ..base()
            },
        ),
        (
            "no nextUpdate",
            OcspSpec {
                next_update: None,
                ..base()
            },
        ),
        (
            "thisUpdate in the future",
            OcspSpec {
                this_update: pki.now + 3600,
                next_update: Some(pki.now + 7200),
                ..base()
            },
        ),
        (
            "CertID for another serial",
            OcspSpec {
                serial: vec![0x42],
                ..base()
            },
        ),
        (
            "status unknown",
            OcspSpec {
                status: der::tlv(tag::context_primitive(2), &[]),
                ..base()
            },
        ),
        (
            "status revoked",
            OcspSpec {
                status: der::constructed(tag::context(1), &[&gtime(pki.now - 100)]),
                ..base()
            },
        ),
    ];
    let trust = Arc::new(
        TrustStore::new(vec![pki.ca.cert.der().clone()], vec![])
            .unwrap()
            .require_ocsp(),
    );
    let gateway = verifier("gateway", trust);
    let mut lines = Vec::new();
    for (case, spec) in &cases {
        let response = ocsp_response(spec, &ca_der);
        let result = gateway.verify(&chain(&[&leaf]), Some(&response), pki.time());
        lines.push(match result {
            Ok(cert) => format!("{case}: accepted ({:?})", cert.revocation),
            Err(err) => format!("{case}: {err}"),
        });
    }
    insta::assert_snapshot!("ocsp_cases", lines.join("\n"));
    let missing = gateway
        .verify(&chain(&[&leaf]), None, pki.time())
        .unwrap_err();
    assert_eq!(missing, X509Error::OcspMissing);
}

// ---- identity selection ----

fn config(pki: &Pki) -> CredentialConfig {
    let signer = topicguard::devcred::DevSigner::generate(dev::DevAlg::EdDSA, "k1").unwrap();
    let jwks = dev::jwks(&[&signer]).to_string();
    let keys = topicguard::identity::keys::KeySet::from_jwks(&jwks, "jwks").unwrap();
    let store = Arc::new(topicguard::identity::keys::KeyStore::fixed(keys));
    CredentialConfig {
        jwt: Some(topicguard::identity::jwt::JwtKeys::new(store)),
        trust: Some(pki.trust()),
        ..CredentialConfig::default()
    }
}

/// xfinity's labels with one CA serving both `devices` and `services`: a deployment that
/// maps two labels to one CA file, so the identities are told apart by their fields only.
fn one_ca_for_both_labels(pki: &Pki) -> CredentialConfig {
    let anchors = Anchors {
        jwt: None,
        certificates: Some(pki.trust()),
    };
    CredentialConfig {
        labels: [("devices", &anchors), ("services", &anchors)]
            .into_iter()
            .map(|(label, a)| (label.to_string(), a.clone()))
            .collect(),
        ..CredentialConfig::default()
    }
}

#[test]
fn selection_picks_the_block_the_credential_satisfies() {
    let pki = pki();
    let verifier = Verifier::new(&xfinity(), &one_ca_for_both_labels(&pki)).unwrap();
    let gateway = chain(&[&pki.issue(&pki.gateway())]);
    let service = chain(&[&pki.issue(&dev::service_params("lights", 7, pki.now))]);
    let as_cert = |c: &[CertificateDer<'static>]| {
        let chain: Vec<CertificateDer<'_>> = c.to_vec();
        verifier.verify(
            Credential::Certificate {
                chain: &chain,
                ocsp: None,
            },
            pki.time(),
        )
    };
    let g = as_cert(&gateway).unwrap();
    assert_eq!(
        (g.identity.kind.as_str(), g.client_id.as_deref()),
        ("gateway", Some(gateway_client("P1", "A1", IID).as_str()))
    );
    let s = as_cert(&service).unwrap();
    assert_eq!(
        (s.identity.kind.as_str(), s.client_id.as_deref()),
        ("service", None)
    );
    let mut both = pki.gateway();
    both.distinguished_name.push(DnType::CommonName, "lights");
    let err = as_cert(&chain(&[&pki.issue(&both)])).unwrap_err();
    assert_eq!(
        err,
        SelectError::Ambiguous {
            candidates: vec!["gateway".into(), "service".into()]
        }
    );
    let neither = as_cert(&chain(&[&with_san(&pki, &[mac_uri("0011223344556677")])])).unwrap_err();
    insta::assert_snapshot!("selection_none_accepted", neither.to_string());
}

#[test]
fn selection_routes_by_issuer() {
    let pki = pki();
    let text = "identity a from certificate {\n  issuer \"Dev Gateway CA\"\n  n = subject.CN\n  client \"a:{n}\"\n}\n\
                identity b from certificate {\n  issuer \"Other CA\"\n  n = subject.CN\n  client \"b:{n}\"\n}\n\
                identity m1 from jwt {\n  trust \"one\"\n  issuer \"https://one.example/\"\n  p = claim \"pid\"\n  client \"m1:{p}\"\n}\n\
                identity m2 from jwt {\n  trust \"two\"\n  issuer \"https://two.example/\"\n  p = claim \"pid\"\n  client \"m2:{p}\"\n}\n";
    let checked = policy(text);
    let mut config = config(&pki);
    // Two issuers never share keys: each JWT identity has its own label's key set.
    let default_keys = config.jwt.take();
    for label in ["one", "two"] {
        let anchors = Anchors {
            jwt: default_keys.clone(),
            certificates: None,
        };
        config.labels.insert(label.to_string(), anchors);
    }
    let verifier = Verifier::new(&checked, &config).unwrap();
    let leaf = chain(&[&pki.issue(&dev::service_params("lights", 7, pki.now))]);
    let chosen = verifier
        .verify(
            Credential::Certificate {
                chain: &leaf,
                ocsp: None,
            },
            pki.time(),
        )
        .unwrap();
    assert_eq!(
        (chosen.identity.kind.as_str(), chosen.client_id.as_deref()),
        ("a", Some("a:lights"))
    );
    let signer = dev::DevSigner::generate(dev::DevAlg::EdDSA, "k1").unwrap();
    let mut claims = dev::default_claims(pki.now, "J1");
    claims["iss"] = serde_json::json!("https://two.example/");
    claims["pid"] = serde_json::json!("P1");
    claims.as_object_mut().unwrap().remove("aud");
    let token = signer.sign(&claims).unwrap();
    let err = verifier
        .verify(Credential::Jwt(&token), pki.time())
        .unwrap_err();
    // Routed to m2 by `iss`; this signer's key is not the configured one.
    assert!(
        matches!(&err, SelectError::Jwt { identity, .. } if identity == "m2"),
        "{err}"
    );
    claims["iss"] = serde_json::json!("https://three.example/");
    let err = verifier
        .verify(Credential::Jwt(&signer.sign(&claims).unwrap()), pki.time())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no jwt identity accepts issuer `https://three.example/` with audience (none)"
    );
}
