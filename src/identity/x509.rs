//! Certificate verification: a client certificate chain and a `from certificate` identity
//! block → a verified [`Identity`].
//!
//! `x509-parser` only parses, so the chain is first verified by the identity's own
//! [`TrustStore`] (its `trust` label's CA files and CRLs; see [`super::chain`]: webpki path,
//! clientAuth EKU and keyUsage on the leaf, every current CRL). With
//! [`RevocationPolicy::Ocsp`] a supplied OCSP response is verified by [`super::ocsp`]. The
//! `issuer` setting is then compared with the verified issuing CA's CN.
//!
//! Attributes are then read with `x509-parser` exactly as the identity block says: each
//! field gives exactly one value from exactly one place. A missing, duplicated or
//! multi-valued field, a multi-valued RDN, a second DirName, an invalid SAN entry, a
//! duplicate extension, a string in an unexpected ASN.1 type or outside its type's character
//! set (PrintableString's letters, digits and ` '()+,-./:=?`; IA5String's ASCII; valid
//! UTF-8 for UTF8String) or a value outside the attribute grammar is a rejection with a
//! reason: never an empty string, never a fallback to another field, never a value parsed
//! from a name's `to_string()`. This module must never return attributes from a certificate
//! whose chain it did not verify.

pub use super::cert_error::{ChainFailure, FieldError, X509Error};
use super::chain::parse_cert;
pub use super::chain::{RevocationPolicy, TrustError, TrustStore, VerifiedChain};
use super::extract;
use super::ocsp;
use super::{Identity, Provenance};
use crate::ast::{AttrSource, IdentityKind};
use crate::check::{ClientPiece, IdentityDef, Require};
use crate::value::validate_value;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::collections::BTreeMap;
use std::sync::Arc;
use x509_parser::prelude::{GeneralName, X509Certificate, X509Name};

/// An attribute of a distinguished name that a field can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameAttr {
    /// organizationName.
    O,
    /// organizationalUnitName.
    OU,
    /// commonName.
    CN,
    /// userId.
    UID,
    /// serialNumber (the subject attribute).
    SerialNumber,
}

impl NameAttr {
    /// The attribute type's OID, DER content bytes.
    fn oid(self) -> &'static [u8] {
        match self {
            NameAttr::CN => &[0x55, 0x04, 0x03],
            NameAttr::SerialNumber => &[0x55, 0x04, 0x05],
            NameAttr::O => &[0x55, 0x04, 0x0a],
            NameAttr::OU => &[0x55, 0x04, 0x0b],
            // 0.9.2342.19200300.100.1.1 (userId)
            NameAttr::UID => &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
        }
    }

    fn parse(name: &str) -> Option<NameAttr> {
        Some(match name {
            "O" => NameAttr::O,
            "OU" => NameAttr::OU,
            "CN" => NameAttr::CN,
            "UID" => NameAttr::UID,
            "serialNumber" => NameAttr::SerialNumber,
            _ => return None,
        })
    }
}

/// A certificate field an attribute comes from (see `check::CERTIFICATE_FIELDS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertField {
    /// An attribute of the subjectAltName's directory name.
    SanDirName(NameAttr),
    /// The subjectAltName URI.
    SanUri,
    /// The subjectAltName DNS name.
    SanDns,
    /// An attribute of the subject.
    Subject(NameAttr),
}

impl CertField {
    pub(crate) fn parse(path: &str) -> Option<CertField> {
        match path.split_once('.')? {
            ("san", "uri") => Some(CertField::SanUri),
            ("san", "dns") => Some(CertField::SanDns),
            ("san", rest) => {
                NameAttr::parse(rest.strip_prefix("dirname.")?).map(CertField::SanDirName)
            }
            ("subject", attr) => NameAttr::parse(attr).map(CertField::Subject),
            _ => None,
        }
    }
}

/// One field the identity reads.
#[derive(Clone, Debug)]
enum FieldUse {
    Bind {
        attr: String,
        path: String,
        field: CertField,
    },
    Split {
        path: String,
        field: CertField,
        pieces: Vec<ClientPiece>,
    },
}

/// A problem with a `from certificate` identity block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertConfigError {
    /// The identity is not verified from a certificate.
    #[error("identity `{0}` is not a `from certificate` identity")]
    NotCertificate(String),
    /// A bound field is not a certificate field.
    #[error("identity `{identity}`: `{field}` is not a certificate field")]
    UnknownField {
        /// The identity.
        identity: String,
        /// The field named.
        field: String,
    },
}

/// A certificate that passed verification, and what it proved.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedCert {
    /// The verified identity.
    pub identity: Identity,
    /// The issuing CA's subject CN, when it has exactly one.
    pub issuer_cn: Option<String>,
    /// The leaf's serial number, lowercase hex.
    pub serial: String,
    /// How revocation was checked.
    pub revocation: RevocationPolicy,
}

/// A `from certificate` identity block ready to verify certificates with its own anchors.
#[derive(Clone, Debug)]
pub struct CertVerifier {
    identity: String,
    /// The `trust` label whose anchors `trust` holds (`None`: the default anchors).
    label: Option<String>,
    issuer: Option<String>,
    fields: Vec<FieldUse>,
    requires: Vec<Require>,
    trust: Arc<TrustStore>,
}

impl CertVerifier {
    /// A verifier for identity `def`, over the anchors `trust`.
    pub fn new(def: &IdentityDef, trust: Arc<TrustStore>) -> Result<CertVerifier, CertConfigError> {
        if def.kind != IdentityKind::Certificate {
            return Err(CertConfigError::NotCertificate(def.name.clone()));
        }
        let field = |source: &AttrSource| match source {
            AttrSource::Field { path, .. } => CertField::parse(path)
                .map(|f| (path.clone(), f))
                .ok_or_else(|| CertConfigError::UnknownField {
                    identity: def.name.clone(),
                    field: path.clone(),
                }),
            AttrSource::Claim { name, .. } => Err(CertConfigError::UnknownField {
                identity: def.name.clone(),
                field: format!("claim \"{name}\""),
            }),
        };
        let mut fields = Vec::new();
        for (attr, source) in &def.binds {
            let (path, field) = field(source)?;
            fields.push(FieldUse::Bind {
                attr: attr.clone(),
                path,
                field,
            });
        }
        for (source, pieces) in &def.extracts {
            let (path, field) = field(source)?;
            fields.push(FieldUse::Split {
                path,
                field,
                pieces: pieces.clone(),
            });
        }
        Ok(CertVerifier {
            identity: def.name.clone(),
            label: def.trust_label().map(str::to_string),
            issuer: def.setting_value("issuer").map(str::to_string),
            fields,
            requires: def.requires.clone(),
            trust,
        })
    }

    /// The name of the identity it verifies.
    pub fn identity_name(&self) -> &str {
        &self.identity
    }

    /// The `issuer` setting: the issuing CA's subject CN this identity accepts.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The `trust` label this identity's anchors come from.
    pub fn trust_label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// This identity's own anchors and CRLs.
    pub fn trust(&self) -> &Arc<TrustStore> {
        &self.trust
    }

    /// Verifies the chain (leaf first) with this identity's anchors and extracts the
    /// identity's attributes.
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        ocsp_response: Option<&[u8]>,
        now: UnixTime,
    ) -> Result<VerifiedCert, X509Error> {
        let verified = self.trust.verify_chain(chain, now)?;
        self.accept(chain, &verified, ocsp_response, now)
    }

    /// The rest of [`CertVerifier::verify`] for a chain that this identity's own trust
    /// store ([`CertVerifier::trust`]) verified at `now`: OCSP, the `issuer` setting,
    /// attributes and requirements. A proof from another store, for another leaf or another
    /// time is refused: a chain is only ever accepted on this identity's own anchors.
    pub fn accept(
        &self,
        chain: &[CertificateDer<'_>],
        verified: &VerifiedChain,
        ocsp_response: Option<&[u8]>,
        now: UnixTime,
    ) -> Result<VerifiedCert, X509Error> {
        let leaf_der = chain.first().ok_or(X509Error::NoCertificate)?;
        if !verified.is_from(&self.trust, leaf_der.as_ref(), now) {
            return Err(X509Error::Chain(ChainFailure::Other(
                "the chain was verified with other trust anchors".to_string(),
            )));
        }
        let issuer_der = verified.issuer_der();
        let leaf = parse_cert(leaf_der.as_ref())?;
        match (self.trust.revocation(), ocsp_response) {
            (RevocationPolicy::Ocsp, None) => return Err(X509Error::OcspMissing),
            (_, Some(response)) => ocsp::check_response(response, &leaf, issuer_der, now.as_secs())
                .map_err(X509Error::Ocsp)?,
            _ => {}
        }
        let issuer_cn = name_value(leaf.issuer(), NameAttr::CN)
            .ok()
            .map(str::to_string);
        if let Some(expected) = &self.issuer
            && issuer_cn.as_deref() != Some(expected.as_str())
        {
            return Err(X509Error::IssuerMismatch {
                identity: self.identity.clone(),
                expected: expected.clone(),
                found: issuer_cn.unwrap_or_else(|| "(no single CN)".to_string()),
            });
        }
        let attrs = self.extract_parsed(&leaf)?;
        let not_after = leaf.validity().not_after.timestamp();
        Ok(VerifiedCert {
            identity: Identity {
                kind: self.identity.clone(),
                attrs,
                expires_at: u64::try_from(not_after).ok(),
                provenance: Provenance::Certificate,
            },
            issuer_cn,
            serial: leaf
                .raw_serial()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            revocation: self.trust.revocation(),
        })
    }

    /// Reads the attributes from a leaf certificate whose chain was already verified.
    pub fn extract(&self, leaf_der: &[u8]) -> Result<BTreeMap<String, String>, X509Error> {
        self.extract_parsed(&parse_cert(leaf_der)?)
    }

    fn extract_parsed(
        &self,
        leaf: &X509Certificate<'_>,
    ) -> Result<BTreeMap<String, String>, X509Error> {
        if let Err(e) = leaf.tbs_certificate.extensions_map() {
            return Err(duplicate_extension(leaf, e));
        }
        let mut attrs = BTreeMap::new();
        for field_use in &self.fields {
            match field_use {
                FieldUse::Bind { attr, path, field } => {
                    let value = read_field(leaf, *field).and_then(|v| {
                        validate_value(v)
                            .map(|()| v)
                            .map_err(|e| FieldError::BadValue {
                                reason: e.to_string(),
                            })
                    });
                    let value = value.map_err(|error| X509Error::Field {
                        field: path.clone(),
                        error,
                    })?;
                    attrs.insert(attr.clone(), value.to_string());
                }
                FieldUse::Split {
                    path,
                    field,
                    pieces,
                } => {
                    let value = read_field(leaf, *field).map_err(|error| X509Error::Field {
                        field: path.clone(),
                        error,
                    })?;
                    let parts =
                        extract::split(value, pieces).map_err(|error| X509Error::Split {
                            field: path.clone(),
                            template: crate::check::template_text(pieces),
                            error,
                        })?;
                    attrs.extend(parts);
                }
            }
        }
        extract::check_requires(&self.requires, &attrs).map_err(X509Error::Require)?;
        Ok(attrs)
    }
}

fn duplicate_extension(
    leaf: &X509Certificate<'_>,
    error: x509_parser::error::X509Error,
) -> X509Error {
    let mut seen = Vec::new();
    for ext in leaf.extensions() {
        if seen.contains(&&ext.oid) {
            return X509Error::DuplicateExtension {
                oid: ext.oid.to_id_string(),
            };
        }
        seen.push(&ext.oid);
    }
    X509Error::Parse {
        reason: error.to_string(),
    }
}

/// Reads one field: exactly one value from exactly one place.
fn read_field<'a>(leaf: &'a X509Certificate<'a>, field: CertField) -> Result<&'a str, FieldError> {
    match field {
        CertField::Subject(attr) => name_value(leaf.subject(), attr),
        CertField::SanDirName(attr) => {
            let names = san_entries(leaf)?;
            let dirname = exactly_one(
                names.iter().filter_map(|n| match n {
                    GeneralName::DirectoryName(name) => Some(name),
                    _ => None,
                }),
                "DirName",
            )?;
            name_value(dirname, attr)
        }
        CertField::SanUri => exactly_one(
            san_entries(leaf)?.iter().filter_map(|n| match n {
                GeneralName::URI(uri) => Some(*uri),
                _ => None,
            }),
            "URI",
        )
        .and_then(|uri| ia5_string(uri.as_bytes(), "SAN URI")),
        CertField::SanDns => exactly_one(
            san_entries(leaf)?.iter().filter_map(|n| match n {
                GeneralName::DNSName(dns) => Some(*dns),
                _ => None,
            }),
            "DNS name",
        )
        .and_then(|dns| ia5_string(dns.as_bytes(), "SAN DNS name")),
    }
}

/// The SAN entries, refusing a missing, duplicated or partly invalid SAN.
fn san_entries<'a>(leaf: &'a X509Certificate<'a>) -> Result<&'a [GeneralName<'a>], FieldError> {
    let san = leaf
        .subject_alternative_name()
        .map_err(|e| FieldError::BadSan {
            reason: e.to_string(),
        })?
        .ok_or(FieldError::NoSan)?;
    let names = &san.value.general_names;
    for (index, name) in names.iter().enumerate() {
        if let GeneralName::Invalid(tag, _) = name {
            return Err(FieldError::InvalidSanEntry { index, tag: tag.0 });
        }
    }
    Ok(names)
}

fn exactly_one<T>(mut items: impl Iterator<Item = T>, kind: &'static str) -> Result<T, FieldError> {
    let first = items.next().ok_or(FieldError::NoSanEntry { kind })?;
    match items.count() {
        0 => Ok(first),
        more => Err(FieldError::SeveralSanEntries {
            kind,
            count: more + 1,
        }),
    }
}

/// The single value of `attr` in `name`; a name with a multi-valued RDN is refused.
fn name_value<'a>(name: &'a X509Name<'a>, attr: NameAttr) -> Result<&'a str, FieldError> {
    let mut found = Vec::new();
    for rdn in name.iter() {
        if rdn.iter().count() != 1 {
            return Err(FieldError::MultiValuedRdn);
        }
        found.extend(
            rdn.iter()
                .filter(|a| a.attr_type().as_bytes() == attr.oid()),
        );
    }
    match found.as_slice() {
        [] => Err(FieldError::Missing),
        [one] => directory_string(one.attr_value().tag().0, one.as_slice()),
        many => Err(FieldError::Duplicated { count: many.len() }),
    }
}

const UTF8_STRING: u32 = 12;
const PRINTABLE_STRING: u32 = 19;
const IA5_STRING: u32 = 22;

/// A name attribute's text, checked against its ASN.1 string type's character set.
fn directory_string(tag: u32, bytes: &[u8]) -> Result<&str, FieldError> {
    match tag {
        UTF8_STRING => std::str::from_utf8(bytes).map_err(|e| FieldError::BadCharacters {
            kind: "UTF8String",
            reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        }),
        PRINTABLE_STRING => checked_ascii(bytes, "PrintableString", is_printable_string_byte),
        IA5_STRING => ia5_string(bytes, "IA5String"),
        tag => Err(FieldError::BadEncoding { tag }),
    }
}

/// The PrintableString alphabet (X.680 41.4): letters, digits, space and `'()+,-./:=?`.
fn is_printable_string_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

/// An IA5String (ASCII) value; x509-parser hands SAN URIs and DNS names over as any UTF-8.
fn ia5_string<'a>(bytes: &'a [u8], kind: &'static str) -> Result<&'a str, FieldError> {
    checked_ascii(bytes, kind, |b| b.is_ascii())
}

fn checked_ascii<'a>(
    bytes: &'a [u8],
    kind: &'static str,
    allowed: impl Fn(u8) -> bool,
) -> Result<&'a str, FieldError> {
    if let Some(at) = bytes.iter().position(|&b| !allowed(b)) {
        return Err(FieldError::BadCharacters {
            kind,
            reason: format!(
                "byte 0x{:02x} at {at}, outside its character set",
                bytes[at]
            ),
        });
    }
    std::str::from_utf8(bytes).map_err(|_| FieldError::BadCharacters {
        kind,
        reason: "bytes that are not text".to_string(),
    })
}

/// The issuing CA's subject CN as the leaf names it, when it has exactly one well-formed
/// CN. Only meaningful once the chain is verified (webpki checks that the leaf's issuer
/// name is its verified issuer's subject); before that, only to rule identities out.
pub fn leaf_issuer_cn(leaf_der: &[u8]) -> Option<String> {
    let leaf = parse_cert(leaf_der).ok()?;
    name_value(leaf.issuer(), NameAttr::CN)
        .ok()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_field_is_understood() {
        for path in crate::check::CERTIFICATE_FIELDS {
            assert!(CertField::parse(path).is_some(), "{path}");
        }
        assert_eq!(CertField::parse("san.dirname.X"), None);
        assert_eq!(CertField::parse("subject"), None);
    }
}
