//! OCSP: checking a supplied response (RFC 6960) for one leaf certificate.
//!
//! No maintained Rust OCSP validator exists, so this module checks a `BasicOCSPResponse`
//! itself and accepts it only if all of these hold:
//! - `responseStatus` is `successful` and the type is `id-pkix-ocsp-basic`;
//! - the signature over `tbsResponseData` verifies (via `rustls-webpki`'s algorithms) with
//!   either the issuing CA's key (the `responderID` names the issuer), or a delegated
//!   responder certificate from the response that the issuing CA signed, that is valid now
//!   and that carries the id-kp-OCSPSigning extended key usage (checked by `rustls-webpki`);
//! - one `SingleResponse` has a `CertID` (SHA-1 or SHA-256) matching the issuer's name
//!   hash, the issuer's key hash and the leaf's serial number;
//! - its `thisUpdate` is not in the future (beyond [`CLOCK_SKEW_SECS`]) and its `nextUpdate`
//!   is present and not past: a response without `nextUpdate` is refused as unbounded;
//! - its status is `good`: `revoked` and `unknown` are both refusals.
//!
//! Not checked: the response nonce (responses are supplied, not requested here), the
//! responder certificate's own revocation status (RFC 6960 id-pkix-ocsp-nocheck practice),
//! `producedAt` beyond parsing, and response extensions (ignored even if critical).
//! This module must never report a certificate good unless every check above passed.

use super::der::{DerError, Reader, Tlv, tag};
use ring::digest;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Allowed clock difference for `thisUpdate` in the future.
pub const CLOCK_SKEW_SECS: u64 = 300;

const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// DER content of id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9).
const EKU_OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// Why an OCSP response does not show the certificate as good.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// The response cannot be parsed.
    #[error("OCSP response is malformed: {0}")]
    Malformed(String),
    /// The responder's status is not `successful`.
    #[error("OCSP responder answered with status {0}, not successful")]
    NotSuccessful(u8),
    /// The response is not a basic OCSP response.
    #[error("OCSP response is not a basic response")]
    NotBasic,
    /// The response is signed with an unsupported algorithm.
    #[error("OCSP response is signed with an unsupported algorithm")]
    UnsupportedSignatureAlgorithm,
    /// The response's signature does not verify.
    #[error("OCSP response signature does not verify")]
    BadSignature,
    /// The responder is neither the issuing CA nor a certificate in the response.
    #[error("OCSP responder is neither the issuing CA nor a certificate in the response")]
    UnknownResponder,
    /// The responder's certificate is not authorized by the issuing CA.
    #[error("OCSP responder certificate is not authorized by the issuing CA: {0}")]
    ResponderNotAuthorized(String),
    /// The response has no status for this certificate.
    #[error("OCSP response has no status for this certificate (CertID does not match)")]
    CertIdMismatch,
    /// `thisUpdate` is in the future.
    #[error("OCSP thisUpdate ({this_update}) is in the future")]
    NotYetValid {
        /// `thisUpdate`, seconds since the Unix epoch.
        this_update: u64,
    },
    /// The response has no `nextUpdate`.
    #[error("OCSP response has no nextUpdate, so its freshness is unbounded")]
    NoNextUpdate,
    /// The response is past its `nextUpdate`.
    #[error("OCSP response is stale (nextUpdate {next_update} is past)")]
    Stale {
        /// `nextUpdate`, seconds since the Unix epoch.
        next_update: u64,
    },
    /// The certificate is revoked.
    #[error("OCSP says the certificate is revoked")]
    Revoked,
    /// The responder does not know the certificate.
    #[error("OCSP status is unknown")]
    Unknown,
}

impl From<DerError> for OcspError {
    fn from(error: DerError) -> OcspError {
        OcspError::Malformed(error.to_string())
    }
}

/// The parts of a BasicOCSPResponse this module uses.
struct Basic<'a> {
    tbs: Tlv<'a>,
    signature_oid: &'a [u8],
    signature: &'a [u8],
    responder: Responder<'a>,
    responses: Tlv<'a>,
    certs: Vec<&'a [u8]>,
}

enum Responder<'a> {
    ByName(&'a [u8]),
    ByKey(&'a [u8]),
}

/// The issuing CA's parts a CertID and a responder ID refer to.
struct IssuerInfo<'a> {
    der: &'a [u8],
    subject: &'a [u8],
    key_bits: &'a [u8],
}

/// Checks `response` (DER `OCSPResponse`) for `leaf`, issued by the CA `issuer_der`, at `now`.
pub fn check_response(
    response: &[u8],
    leaf: &X509Certificate<'_>,
    issuer_der: &[u8],
    now: u64,
) -> Result<(), OcspError> {
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|e| OcspError::Malformed(format!("issuer certificate: {e}")))?;
    let issuer = IssuerInfo {
        der: issuer_der,
        subject: issuer.subject().as_raw(),
        key_bits: issuer.public_key().subject_public_key.data.as_ref(),
    };
    let basic = parse_response(response)?;
    verify_signer(&basic, &issuer, now)?;
    let mut responses = basic.responses.reader();
    while !responses.is_empty() {
        let single = responses.expect(tag::SEQUENCE)?;
        let mut fields = single.reader();
        let cert_id = fields.expect(tag::SEQUENCE)?;
        if cert_id_matches(cert_id, &issuer, leaf.raw_serial())? {
            return check_single(fields, now);
        }
    }
    Err(OcspError::CertIdMismatch)
}

fn parse_response(response: &[u8]) -> Result<Basic<'_>, OcspError> {
    let mut outer = Reader::new(response);
    let top = outer.expect(tag::SEQUENCE)?;
    outer.finish()?;
    let mut top = top.reader();
    let status = top.expect(tag::ENUMERATED)?;
    if status.content != [0] {
        return Err(OcspError::NotSuccessful(
            status.content.first().copied().unwrap_or(255),
        ));
    }
    let bytes = top.expect(tag::context(0))?;
    let mut bytes = bytes.reader().expect(tag::SEQUENCE)?.reader();
    if bytes.expect(tag::OID)?.content != OID_OCSP_BASIC {
        return Err(OcspError::NotBasic);
    }
    let basic_der = bytes.expect(tag::OCTET_STRING)?.content;
    parse_basic(basic_der)
}

fn parse_basic(der: &[u8]) -> Result<Basic<'_>, OcspError> {
    let mut outer = Reader::new(der);
    let mut basic = outer.expect(tag::SEQUENCE)?.reader();
    outer.finish()?;
    let tbs = basic.expect(tag::SEQUENCE)?;
    let signature_oid = basic
        .expect(tag::SEQUENCE)?
        .reader()
        .expect(tag::OID)?
        .content;
    let signature = match basic.expect(tag::BIT_STRING)?.content.split_first() {
        Some((0, bits)) => bits,
        _ => return Err(OcspError::Malformed("signature has unused bits".into())),
    };
    let mut certs = Vec::new();
    if let Some(list) = basic.optional(tag::context(0))? {
        let mut list = list.reader().expect(tag::SEQUENCE)?.reader();
        while !list.is_empty() {
            certs.push(list.expect(tag::SEQUENCE)?.raw);
        }
    }
    let mut data = tbs.reader();
    data.optional(tag::context(0))?;
    let responder = match data.read()? {
        t if t.tag == tag::context(1) => Responder::ByName(t.reader().expect(tag::SEQUENCE)?.raw),
        t if t.tag == tag::context(2) => {
            Responder::ByKey(t.reader().expect(tag::OCTET_STRING)?.content)
        }
        _ => return Err(OcspError::Malformed("bad responderID".into())),
    };
    data.expect(tag::GENERALIZED_TIME)?;
    let responses = data.expect(tag::SEQUENCE)?;
    Ok(Basic {
        tbs,
        signature_oid,
        signature,
        responder,
        responses,
        certs,
    })
}

/// Verifies the response signature with the issuer, or with an authorized delegated responder.
fn verify_signer(basic: &Basic<'_>, issuer: &IssuerInfo<'_>, now: u64) -> Result<(), OcspError> {
    if responder_is(&basic.responder, issuer.subject, issuer.key_bits) {
        return verify_signature(issuer.der, basic);
    }
    for cert_der in &basic.certs {
        let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
            continue;
        };
        let key_bits = cert.public_key().subject_public_key.data.as_ref();
        if responder_is(&basic.responder, cert.subject().as_raw(), key_bits) {
            authorize_delegate(cert_der, issuer.der, now)?;
            return verify_signature(cert_der, basic);
        }
    }
    Err(OcspError::UnknownResponder)
}

fn responder_is(responder: &Responder<'_>, subject: &[u8], key_bits: &[u8]) -> bool {
    match responder {
        Responder::ByName(name) => *name == subject,
        Responder::ByKey(hash) => {
            digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, key_bits).as_ref() == *hash
        }
    }
}

/// A delegated responder: issued by the CA, valid now, with id-kp-OCSPSigning.
fn authorize_delegate(responder_der: &[u8], issuer_der: &[u8], now: u64) -> Result<(), OcspError> {
    let issuer = CertificateDer::from(issuer_der);
    let anchor = webpki::anchor_from_trusted_cert(&issuer)
        .map_err(|e| OcspError::ResponderNotAuthorized(format!("issuer: {e:?}")))?;
    let responder = CertificateDer::from(responder_der);
    let cert = EndEntityCert::try_from(&responder)
        .map_err(|e| OcspError::ResponderNotAuthorized(format!("{e:?}")))?;
    cert.verify_for_usage(
        super::signature::SIGNATURE_ALGORITHMS,
        &[anchor],
        &[],
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
        KeyUsage::required(EKU_OCSP_SIGNING),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| OcspError::ResponderNotAuthorized(delegate_failure(&e)))
}

fn delegate_failure(error: &webpki::Error) -> String {
    use webpki::Error as E;
    match error {
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            "it lacks the id-kp-OCSPSigning extended key usage".to_string()
        }
        E::UnknownIssuer | E::InvalidSignatureForPublicKey => {
            "the issuing CA did not issue it".to_string()
        }
        E::CaUsedAsEndEntity => "it is a CA certificate, not a delegated responder".to_string(),
        E::CertExpired { .. } | E::CertNotValidYet { .. } => "it is not valid now".to_string(),
        other => format!("{other:?}"),
    }
}

fn verify_signature(signer_der: &[u8], basic: &Basic<'_>) -> Result<(), OcspError> {
    let signer = CertificateDer::from(signer_der);
    let cert =
        EndEntityCert::try_from(&signer).map_err(|e| OcspError::Malformed(format!("{e:?}")))?;
    let candidates = signature_algorithms(basic.signature_oid);
    if candidates.is_empty() {
        return Err(OcspError::UnsupportedSignatureAlgorithm);
    }
    if candidates.iter().any(|alg| {
        cert.verify_signature(*alg, basic.tbs.raw, basic.signature)
            .is_ok()
    }) {
        Ok(())
    } else {
        Err(OcspError::BadSignature)
    }
}

fn signature_algorithms(oid: &[u8]) -> Vec<&'static dyn SignatureVerificationAlgorithm> {
    use webpki::ring as alg;
    const ECDSA: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const RSA: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    match oid {
        [prefix @ .., 2] if prefix == ECDSA => vec![alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256],
        [prefix @ .., 3] if prefix == ECDSA => vec![alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384],
        [prefix @ .., 0x0b] if prefix == RSA => vec![alg::RSA_PKCS1_2048_8192_SHA256],
        [prefix @ .., 0x0c] if prefix == RSA => vec![alg::RSA_PKCS1_2048_8192_SHA384],
        [prefix @ .., 0x0d] if prefix == RSA => vec![alg::RSA_PKCS1_2048_8192_SHA512],
        [0x2b, 0x65, 0x70] => vec![alg::ED25519],
        _ => Vec::new(),
    }
}

fn cert_id_matches(
    cert_id: Tlv<'_>,
    issuer: &IssuerInfo<'_>,
    serial: &[u8],
) -> Result<bool, OcspError> {
    let mut fields = cert_id.reader();
    let hash_oid = fields
        .expect(tag::SEQUENCE)?
        .reader()
        .expect(tag::OID)?
        .content;
    let name_hash = fields.expect(tag::OCTET_STRING)?.content;
    let key_hash = fields.expect(tag::OCTET_STRING)?.content;
    let id_serial = fields.expect(tag::INTEGER)?.content;
    let algorithm = match hash_oid {
        OID_SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        OID_SHA256 => &digest::SHA256,
        _ => return Ok(false),
    };
    Ok(
        digest::digest(algorithm, issuer.subject).as_ref() == name_hash
            && digest::digest(algorithm, issuer.key_bits).as_ref() == key_hash
            && strip_leading_zeros(id_serial) == strip_leading_zeros(serial),
    )
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The rest of a SingleResponse after its CertID: status and freshness.
fn check_single(mut fields: Reader<'_>, now: u64) -> Result<(), OcspError> {
    let status = fields.read()?;
    let this_update = generalized_time(fields.expect(tag::GENERALIZED_TIME)?.content)?;
    let next_update = match fields.optional(tag::context(0))? {
        Some(t) => Some(generalized_time(
            t.reader().expect(tag::GENERALIZED_TIME)?.content,
        )?),
        None => None,
    };
    if this_update > now + CLOCK_SKEW_SECS {
        return Err(OcspError::NotYetValid { this_update });
    }
    let next_update = next_update.ok_or(OcspError::NoNextUpdate)?;
    if now > next_update {
        return Err(OcspError::Stale { next_update });
    }
    match status.tag {
        t if t == tag::context_primitive(0) && status.content.is_empty() => Ok(()),
        t if t == tag::context(1) => Err(OcspError::Revoked),
        t if t == tag::context_primitive(2) => Err(OcspError::Unknown),
        _ => Err(OcspError::Malformed("bad certStatus".into())),
    }
}

/// `YYYYMMDDHHMMSS[.fff]Z` → Unix seconds.
pub fn generalized_time(text: &[u8]) -> Result<u64, OcspError> {
    let bad = || OcspError::Malformed("bad GeneralizedTime".into());
    let text = std::str::from_utf8(text).map_err(|_| bad())?;
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let digits = body.split('.').next().unwrap_or("");
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| digits[range].parse::<u64>().map_err(|_| bad());
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || year < 1970
    {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm), for years from 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time_is_unix_seconds() {
        assert_eq!(generalized_time(b"19700101000000Z"), Ok(0));
        assert_eq!(generalized_time(b"20240229120000Z"), Ok(1_709_208_000));
        assert_eq!(generalized_time(b"20240229120000.5Z"), Ok(1_709_208_000));
        assert!(generalized_time(b"2024022912000Z").is_err());
        assert!(generalized_time(b"20241329120000Z").is_err());
        assert!(generalized_time(b"20240229120000").is_err());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x03, 0x0a, 0x01, 0x00],
            &[0x30, 0x03, 0x0a, 0x01, 0x06],
        ] {
            let err = parse_response(bytes).err();
            assert!(
                matches!(
                    err,
                    Some(OcspError::Malformed(_) | OcspError::NotSuccessful(6))
                ),
                "{err:?}"
            );
        }
    }
}
