//! Certificate attribute extraction and client-certificate verification on arbitrary DER.
//!
//! The input is a leaf certificate's DER (random, or a mutated real development
//! certificate from the seeds). Fixed: `fuzz/fixtures/identities.policy`, its development
//! root `devices-ca.pem` with the CRL `devices-crl.pem` on the `devices` label, the two
//! intermediates `devices-intermediates.pem` sent along as the rest of the chain, and the
//! time `x509-now` at which the seeds were issued.
//!
//! Asserts: nothing panics, in attribute extraction from an unverified leaf
//! (`CertVerifier::extract`, `x509::leaf_issuer_cn`) or in the broker's whole path
//! (`select::Verifier::verify`: chain, revocation, issuer, attributes, requirements); a
//! chain is accepted only for a leaf the development CA really issued (byte for byte one
//! of the issued seeds: any change to a signed certificate must fail), and the identity it
//! proves has exactly the attributes extraction reads from that leaf.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use topicguard::identity::chain::TrustStore;
use topicguard::identity::select::{Anchors, Credential, CredentialConfig, Verifier};
use topicguard::identity::x509::{CertVerifier, leaf_issuer_cn};
use topicguard::{Policy, Source};

const POLICY: &str = include_str!("../fixtures/identities.policy");
const CA: &[u8] = include_bytes!("../fixtures/devices-ca.pem");
const CRL: &[u8] = include_bytes!("../fixtures/devices-crl.pem");
const INTERMEDIATES: &[u8] = include_bytes!("../fixtures/devices-intermediates.pem");
const NOW: &str = include_str!("../fixtures/x509-now");
/// The leaves the development CA issued (`fuzz/scripts/make-credential-seeds.sh`).
const ISSUED: [&[u8]; 2] = [
    include_bytes!("../seeds/x509/dev-gateway.der"),
    include_bytes!("../seeds/x509/dev-service.der"),
];

struct Fixture {
    verifier: Verifier,
    /// The certificate identities on their own, for extraction without a chain.
    identities: Vec<CertVerifier>,
    intermediates: Vec<CertificateDer<'static>>,
    now: UnixTime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let policy =
            Policy::from_source(&Source::new("identities.policy", POLICY)).expect("policy");
        let anchors = CertificateDer::pem_slice_iter(CA)
            .collect::<Result<Vec<_>, _>>()
            .expect("CA");
        let crls = CertificateRevocationListDer::pem_slice_iter(CRL)
            .map(|crl| crl.expect("CRL").as_ref().to_vec())
            .collect();
        let store = Arc::new(TrustStore::new(anchors, crls).expect("trust store"));
        let mut config = CredentialConfig::default();
        let anchors = Anchors {
            jwt: None,
            certificates: Some(store.clone()),
        };
        config.labels.insert("devices".to_string(), anchors);
        let verifier = Verifier::new(&policy.checked, &config).expect("verifier");
        let identities = policy
            .checked
            .identities
            .iter()
            .filter_map(|def| CertVerifier::new(def, store.clone()).ok())
            .collect();
        let intermediates = CertificateDer::pem_slice_iter(INTERMEDIATES)
            .collect::<Result<Vec<_>, _>>()
            .expect("intermediates");
        let issued_at: u64 = NOW.trim().parse().expect("x509-now");
        Fixture {
            verifier,
            identities,
            intermediates,
            now: UnixTime::since_unix_epoch(Duration::from_secs(issued_at + 60)),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let _ = leaf_issuer_cn(data);
    let extracted: Vec<_> = fixture.identities.iter().map(|v| v.extract(data)).collect();
    let mut chain = vec![CertificateDer::from(data)];
    chain.extend(fixture.intermediates.iter().cloned());
    let credential = Credential::Certificate {
        chain: &chain,
        ocsp: None,
    };
    if let Ok(verified) = fixture.verifier.verify(credential, fixture.now) {
        assert!(
            ISSUED.contains(&data),
            "accepted a certificate the CA did not issue: {verified:?}"
        );
        let position = fixture
            .identities
            .iter()
            .position(|v| v.identity_name() == verified.identity.kind)
            .expect("a certificate identity");
        let attrs = extracted[position]
            .as_ref()
            .expect("extraction of an accepted leaf");
        for (name, value) in attrs {
            assert_eq!(verified.identity.attrs.get(name), Some(value), "{name}");
        }
    }
});
