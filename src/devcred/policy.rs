//! Development credentials shaped by a policy: for each `from certificate` identity a leaf
//! certificate that binds as it, issued by a development CA of its trust label; for each
//! `from jwt` identity the claims of a token that binds as it, signed with a key of its
//! trust label (`topicguard dev pki|token --policy`, the demo, the tests that prove every
//! shipped policy's identities bind real credentials).
//!
//! Attribute values are chosen to satisfy the identity block: `require a == b` gives both one
//! value, `is uuid` and `is eui64` a value of that form, `in SET` the set's first fitting
//! value; otherwise what the caller gives, or a placeholder from the attribute's name (`pid`
//! → `P1`, `sid` → `lights`, `floor` → `floor1`). Every value is checked against the
//! identity-value grammar and the policy's separators before anything is written. Each trust
//! label gets one CA; identities of a label that name different `issuer`s get an
//! intermediate CA with that name under it. Development only: keys are generated fresh and
//! written in the clear. Nothing here verifies anything.

use crate::ast::{AttrSource, IdentityKind};
use crate::check::{Checked, ClientPiece, IdentityDef, Require};
use crate::devcred::{self as dev, DevCa, DevError, DevSigner};
use crate::identity::der;
use crate::identity::x509::{CertField, NameAttr};
use crate::value::validate_value;
use rcgen::{CertificateParams, DnType, DnValue};
use serde_json::{Value, json};
use std::cell::Cell;
use std::collections::BTreeMap;

/// The UUID development credentials use where a policy requires one.
pub const DEV_UUID: &str = "550e8400-e29b-41d4-a716-446655440000";
/// The EUI-64 development credentials use where a policy requires one.
pub const DEV_EUI64: &str = "0011223344556677";

/// The CA file of a trust label (`ca.pem` for the default anchors).
pub fn ca_file(label: Option<&str>) -> String {
    labelled("ca", label, "pem")
}

/// The CA key file of a trust label.
pub fn ca_key_file(label: Option<&str>) -> String {
    match label {
        Some(label) => format!("ca-{label}-key.pem"),
        None => "ca-key.pem".to_string(),
    }
}

/// The CRL file of a trust label (every CA of the label, one PEM).
pub fn crl_file(label: Option<&str>) -> String {
    labelled("crl", label, "pem")
}

/// The JWKS file of a trust label (`jwks.json` for the default keys).
pub fn jwks_file(label: Option<&str>) -> String {
    labelled("jwks", label, "json")
}

/// The JWT signing key file of a trust label.
pub fn jwt_key_file(label: Option<&str>) -> String {
    match label {
        Some(label) => format!("jwt-{label}-key.pem"),
        None => "jwt-key.pem".to_string(),
    }
}

fn labelled(stem: &str, label: Option<&str>, ext: &str) -> String {
    match label {
        Some(label) => format!("{stem}-{label}.{ext}"),
        None => format!("{stem}.{ext}"),
    }
}

fn cannot(def: &IdentityDef, why: impl std::fmt::Display) -> DevError {
    DevError::Policy(format!("identity `{}`: {why}", def.name))
}

/// Attribute values that satisfy `def`'s bindings and requirements; `overrides` win.
pub fn sample_attributes(
    def: &IdentityDef,
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, DevError> {
    let names = credential_attrs(def);
    let class = equality_classes(def, &names);
    let mut values = BTreeMap::new();
    for (index, name) in names.iter().enumerate() {
        let root = class[index];
        if let Some(value) = values.get(&names[root]).cloned() {
            values.insert(name.clone(), value);
            continue;
        }
        let members: Vec<&String> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| class[*i] == root)
            .map(|(_, n)| n)
            .collect();
        let value = class_value(def, &members, overrides)?;
        for member in members {
            values.insert(member.clone(), value.clone());
        }
    }
    for (name, value) in &values {
        validate_value(value).map_err(|e| cannot(def, format!("value of `{name}` {e}")))?;
        if let Some((_, sep)) = def
            .separators
            .iter()
            .find(|(a, c)| a == name && value.contains(*c))
        {
            return Err(cannot(
                def,
                format!("value `{value}` of `{name}` contains `{sep}`"),
            ));
        }
    }
    Ok(values)
}

/// The attributes a credential supplies (bound directly or by an extraction), in order.
fn credential_attrs(def: &IdentityDef) -> Vec<String> {
    let mut names: Vec<String> = def.binds.iter().map(|(a, _)| a.clone()).collect();
    for (_, pieces) in &def.extracts {
        for piece in pieces {
            if let ClientPiece::Attr(a) = piece
                && !names.contains(a)
            {
                names.push(a.clone());
            }
        }
    }
    names
}

/// For each attribute, the index of its `require a == b` class representative.
fn equality_classes(def: &IdentityDef, names: &[String]) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..names.len()).collect();
    fn find(parent: &mut [usize], i: usize) -> usize {
        let mut i = i;
        while parent[i] != i {
            i = parent[i];
        }
        i
    }
    for require in &def.requires {
        if let Require::Equal(a, b) = require {
            let index = |n: &str| names.iter().position(|x| x == n);
            if let (Some(a), Some(b)) = (index(a), index(b)) {
                let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    (0..names.len()).map(|i| find(&mut parent, i)).collect()
}

/// One value for attributes that must be equal: an override, or the first candidate that
/// passes every requirement on any of them.
fn class_value(
    def: &IdentityDef,
    members: &[&String],
    overrides: &BTreeMap<String, String>,
) -> Result<String, DevError> {
    let applies = |attr: &str| members.iter().any(|m| m.as_str() == attr);
    if let Some(value) = members.iter().find_map(|m| overrides.get(m.as_str())) {
        return Ok(value.clone());
    }
    let mut candidates: Option<Vec<String>> = None;
    let mut checks = Vec::new();
    for require in &def.requires {
        match require {
            Require::InSet { attr, values, .. } if applies(attr) => {
                let set: Vec<String> = values.to_vec();
                candidates = Some(match candidates {
                    None => set,
                    Some(c) => c.into_iter().filter(|v| set.contains(v)).collect(),
                });
            }
            Require::Check(attr, check) if applies(attr) => checks.push(*check),
            _ => {}
        }
    }
    let candidates = candidates.unwrap_or_else(|| {
        let mut defaults = vec![DEV_UUID.to_string(), DEV_EUI64.to_string()];
        if checks.is_empty() {
            defaults.insert(0, placeholder(members[0]));
        }
        defaults
    });
    candidates
        .into_iter()
        .find(|v| checks.iter().all(|c| c.accepts(v)))
        .ok_or_else(|| {
            cannot(
                def,
                format!(
                    "no development value satisfies the requirements on `{}`; pass one",
                    members[0]
                ),
            )
        })
}

/// A placeholder value from an attribute's name.
fn placeholder(name: &str) -> String {
    match name {
        "pid" => "P1".to_string(),
        "aid" => "A1".to_string(),
        "jti" => "J1".to_string(),
        "sid" => "lights".to_string(),
        _ => {
            let base: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
            format!("{}1", if base.is_empty() { "v" } else { &base })
        }
    }
}

/// The client id `def`'s template gives for `attrs`, each `{+capture}` filled with `1`.
pub fn sample_client_id(def: &IdentityDef, attrs: &BTreeMap<String, String>) -> String {
    def.client
        .iter()
        .map(|piece| match piece {
            ClientPiece::Text(t) => t.clone(),
            ClientPiece::Attr(a) => attrs.get(a).cloned().unwrap_or_default(),
            ClientPiece::Capture(_) => "1".to_string(),
        })
        .collect()
}

fn render(pieces: &[ClientPiece], attrs: &BTreeMap<String, String>) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            ClientPiece::Text(t) => t.as_str(),
            ClientPiece::Attr(a) | ClientPiece::Capture(a) => {
                attrs.get(a).map_or("", String::as_str)
            }
        })
        .collect()
}

/// Each source (claim name or certificate field path) and the one value it must hold.
fn source_values(
    def: &IdentityDef,
    attrs: &BTreeMap<String, String>,
) -> Result<Vec<(AttrSource, String)>, DevError> {
    let mut out: Vec<(AttrSource, String)> = Vec::new();
    let mut put = |source: &AttrSource, value: String| {
        let key = source_key(source);
        match out.iter().find(|(s, _)| source_key(s) == key) {
            Some((_, existing)) if *existing != value => Err(cannot(
                def,
                format!("`{key}` would need both `{existing}` and `{value}`"),
            )),
            Some(_) => Ok(()),
            None => {
                out.push((source.clone(), value));
                Ok(())
            }
        }
    };
    for (attr, source) in &def.binds {
        put(source, attrs.get(attr).cloned().unwrap_or_default())?;
    }
    for (source, pieces) in &def.extracts {
        put(source, render(pieces, attrs))?;
    }
    Ok(out)
}

fn source_key(source: &AttrSource) -> String {
    match source {
        AttrSource::Claim { name, .. } => format!("claim \"{name}\""),
        AttrSource::Field { path, .. } => path.clone(),
    }
}

/// The claims of a token for `def` with these attributes, valid for an hour from `now`.
pub fn jwt_claims(
    def: &IdentityDef,
    attrs: &BTreeMap<String, String>,
    now: u64,
) -> Result<Value, DevError> {
    let mut claims = json!({ "iat": now, "exp": now + 3600 });
    if let Some(issuer) = def.setting_value("issuer") {
        claims["iss"] = json!(issuer);
    }
    if let Some(audience) = def.setting_value("audience") {
        claims["aud"] = json!(audience);
    }
    for (source, value) in source_values(def, attrs)? {
        if let AttrSource::Claim { name, .. } = source {
            claims[name.as_str()] = json!(value);
        }
    }
    Ok(claims)
}

/// The parameters of a leaf certificate for `def` with these attributes.
pub fn leaf_params(
    def: &IdentityDef,
    attrs: &BTreeMap<String, String>,
    serial: u64,
    now: u64,
) -> Result<CertificateParams, DevError> {
    let mut params = dev::leaf_params(serial, now);
    let mut dirname: Vec<(&'static [u64], String)> = Vec::new();
    let mut san = Vec::new();
    for (source, value) in source_values(def, attrs)? {
        let AttrSource::Field { path, .. } = &source else {
            return Err(cannot(def, "a certificate identity reads a claim"));
        };
        match CertField::parse(path) {
            Some(CertField::Subject(attr)) => params
                .distinguished_name
                .push(dn_type(attr), DnValue::Utf8String(value)),
            Some(CertField::SanDirName(attr)) => dirname.push((name_arcs(attr), value)),
            Some(CertField::SanUri) => san.push(dev::uri(value.as_bytes())),
            Some(CertField::SanDns) => san.push(dev::dns(value.as_bytes())),
            None => return Err(cannot(def, format!("unknown certificate field `{path}`"))),
        }
    }
    if !dirname.is_empty() {
        let rdns: Vec<[der::NameAttribute<'_>; 1]> = dirname
            .iter()
            .map(|(arcs, value)| [(*arcs, der::tag::UTF8_STRING, value.as_bytes())])
            .collect();
        let rdn_refs: Vec<&[der::NameAttribute<'_>]> = rdns.iter().map(|r| &r[..]).collect();
        san.insert(0, dev::dirname(&der::name(&rdn_refs)));
    }
    if !san.is_empty() {
        params.custom_extensions.push(dev::san_extension(&san));
    }
    Ok(params)
}

fn dn_type(attr: NameAttr) -> DnType {
    match attr {
        NameAttr::CN => DnType::CommonName,
        NameAttr::O => DnType::OrganizationName,
        NameAttr::OU => DnType::OrganizationalUnitName,
        NameAttr::UID => dev::uid_type(),
        NameAttr::SerialNumber => DnType::CustomDnType(der::arcs::SERIAL_NUMBER.to_vec()),
    }
}

fn name_arcs(attr: NameAttr) -> &'static [u64] {
    match attr {
        NameAttr::CN => der::arcs::CN,
        NameAttr::O => der::arcs::O,
        NameAttr::OU => der::arcs::OU,
        NameAttr::UID => der::arcs::UID,
        NameAttr::SerialNumber => der::arcs::SERIAL_NUMBER,
    }
}

/// The development CAs of a policy: one per trust label of its certificate identities,
/// with an intermediate per distinct `issuer` where the label's identities name several.
pub struct PolicyCas {
    labels: Vec<LabelCa>,
    now: u64,
}

struct LabelCa {
    label: Option<String>,
    root: DevCa,
    root_cn: String,
    /// Intermediates by the issuer CN they carry.
    subs: Vec<(String, DevCa)>,
    next_serial: Cell<u64>,
}

/// A leaf certificate: its chain (leaf first) and key, as PEM.
pub struct IssuedLeaf {
    /// The leaf and its issuing chain, PEM.
    pub chain_pem: String,
    /// The leaf's private key, PEM.
    pub key_pem: String,
}

impl PolicyCas {
    /// Creates the CAs every certificate identity of `checked` needs.
    pub fn new(checked: &Checked, now: u64) -> Result<PolicyCas, DevError> {
        let mut labels: Vec<LabelCa> = Vec::new();
        let mut order: Vec<Option<&str>> = Vec::new();
        for def in certificate_identities(checked) {
            if !order.contains(&def.trust_label()) {
                order.push(def.trust_label());
            }
        }
        for label in order {
            let defs = certificate_identities(checked).filter(|d| d.trust_label() == label);
            let mut issuers: Vec<Option<&str>> = Vec::new();
            for def in defs {
                if !issuers.contains(&def.setting_value("issuer")) {
                    issuers.push(def.setting_value("issuer"));
                }
            }
            let root_cn = match issuers.as_slice() {
                [Some(only)] => only.to_string(),
                _ => match label {
                    Some(label) => format!("topicguard development CA {label}"),
                    None => "topicguard development CA".to_string(),
                },
            };
            let root = DevCa::new(&root_cn, now)?;
            let mut subs = Vec::new();
            for issuer in issuers.into_iter().flatten().filter(|i| *i != root_cn) {
                subs.push((
                    issuer.to_string(),
                    root.intermediate(dev::ca_params(issuer, now))?,
                ));
            }
            labels.push(LabelCa {
                label: label.map(str::to_string),
                root,
                root_cn,
                subs,
                next_serial: Cell::new(100),
            });
        }
        Ok(PolicyCas { labels, now })
    }

    /// A leaf that binds as `def` with these attributes, from its label's CA.
    pub fn issue(
        &self,
        def: &IdentityDef,
        attrs: &BTreeMap<String, String>,
    ) -> Result<IssuedLeaf, DevError> {
        let ca = self
            .labels
            .iter()
            .find(|c| c.label.as_deref() == def.trust_label())
            .ok_or_else(|| cannot(def, "not a certificate identity of this policy"))?;
        let serial = ca.next_serial.get();
        ca.next_serial.set(serial + 1);
        let params = leaf_params(def, attrs, serial, self.now)?;
        let sub = def
            .setting_value("issuer")
            .and_then(|issuer| ca.subs.iter().find(|(cn, _)| cn == issuer));
        let (cert, key) = match sub {
            Some((_, sub)) => sub.issue(&params)?,
            None => ca.root.issue(&params)?,
        };
        let mut chain_pem = cert.pem();
        if let Some((_, sub)) = sub {
            chain_pem.push_str(&sub.cert.pem());
        }
        Ok(IssuedLeaf {
            chain_pem,
            key_pem: key.serialize_pem(),
        })
    }

    /// The trust labels with a CA (`None`: the default anchors).
    pub fn labels(&self) -> Vec<Option<&str>> {
        self.labels.iter().map(|c| c.label.as_deref()).collect()
    }

    /// The CA certificate, CA key and CRL files, by name: a current, empty CRL per CA.
    pub fn files(&self) -> Result<Vec<(String, String)>, DevError> {
        let mut files = Vec::new();
        for ca in &self.labels {
            let label = ca.label.as_deref();
            let mut crls = String::new();
            for authority in std::iter::once(&ca.root).chain(ca.subs.iter().map(|(_, s)| s)) {
                let crl =
                    authority.crl(self.now.saturating_sub(60), self.now + 30 * 86_400, &[])?;
                crls.push_str(&crl.pem()?);
            }
            files.push((ca_file(label), ca.root.cert.pem()));
            files.push((ca_key_file(label), ca.root.issuer.key().serialize_pem()));
            files.push((crl_file(label), crls));
        }
        Ok(files)
    }

    /// The root CA's common name of a label.
    pub fn root_cn(&self, label: Option<&str>) -> Option<&str> {
        self.labels
            .iter()
            .find(|c| c.label.as_deref() == label)
            .map(|c| c.root_cn.as_str())
    }
}

fn certificate_identities(checked: &Checked) -> impl Iterator<Item = &IdentityDef> {
    checked
        .identities
        .iter()
        .filter(|d| d.kind == IdentityKind::Certificate)
}

/// The signing key of a JWT trust label: the one in `dir` if `dir` holds its key and JWKS
/// as written here before, else a new one (ES256 unless `algorithms` excludes it).
pub fn label_signer(
    dir: &std::path::Path,
    label: Option<&str>,
    def: &IdentityDef,
) -> Result<(DevSigner, bool), DevError> {
    let key = std::fs::read_to_string(dir.join(jwt_key_file(label))).ok();
    let jwks = std::fs::read_to_string(dir.join(jwks_file(label)))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    let allowed = |alg: &str| {
        def.setting("algorithms")
            .is_none_or(|algs| algs.iter().any(|a| a == alg))
    };
    if let (Some(key), Some(jwks)) = (key, jwks)
        && let Some(jwk) = jwks["keys"].as_array().and_then(|keys| keys.first())
        && let Some(signer) = DevSigner::from_parts(&key, jwk)
    {
        let alg = format!("{:?}", signer.alg.algorithm());
        if !allowed(&alg) {
            return Err(cannot(
                def,
                format!(
                    "the key of {} signs {alg}, which `algorithms` excludes",
                    jwks_file(label)
                ),
            ));
        }
        return Ok((signer, false));
    }
    let alg = ["ES256", "EdDSA", "RS256"]
        .into_iter()
        .find(|a| allowed(a))
        .and_then(dev::DevAlg::parse)
        .ok_or_else(|| cannot(def, "`algorithms` allows none of ES256, EdDSA, RS256"))?;
    let kid = format!("dev-{}", label.unwrap_or("default"));
    Ok((DevSigner::generate(alg, &kid)?, true))
}
