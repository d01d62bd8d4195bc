//! Where a command-line decision's identity comes from: `--identity NAME --attr K=V...`.
//!
//! The operator asserts the identity and its attributes (nothing is verified); the client id
//! defaults to the identity's client template rendered with those attributes. The values
//! still go through [`topicguard::decide::Engine::bind`], so a bad value is a deny with its reason, never
//! a wider match. [`IdentityArgs::resolve`] is the one place that turns these options into
//! an `(Identity, client id)` pair. Instead of `--identity`, a credential can be given and
//! verified: `--jwt FILE|-` or `--cert FILE`, with the anchors of each trust label the
//! policy names (`--trust LABEL=FILE`, `--trust-crl LABEL=FILE`) and, for identities
//! without a label, the default ones (`--jwks FILE`, `--ca FILE`, `--crl FILE`); see
//! [`topicguard::identity::files`]. The credential binds as the one identity whose own anchors
//! accept it, with the verified attributes. This module never decides anything.

use super::output::CliError;
use std::collections::BTreeMap;
use std::path::PathBuf;
use topicguard::check::Checked;
use topicguard::identity::Identity;
use topicguard::identity::anchors::{self, AnchorError, AnchorFiles, TrustFiles};
use topicguard::identity::files::{self, FileCredentialError};
use topicguard::identity::select::Verified;
use topicguard::testcases::{ClientIdError, default_client_id};

/// The identity options shared by commands that decide.
#[derive(Debug, clap::Args)]
pub struct IdentityArgs {
    /// The policy identity to decide for, e.g. `mobile` (an `identity NAME from ...` block).
    /// (Required unless --jwt or --cert is given, or `decide --batch` names identities per line.)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["jwt", "cert"])]
    pub identity: Option<String>,

    /// An attribute of the identity as NAME=VALUE; repeat for each attribute the identity
    /// binds (e.g. --attr pid=P1 --attr aid=A1). These are asserted, not verified.
    #[arg(long = "attr", value_name = "NAME=VALUE", value_parser = parse_attr, conflicts_with_all = ["jwt", "cert"])]
    pub attrs: Vec<(String, String)>,

    /// Instead of --identity: a JWT to verify (a file, or `-` for standard input). The
    /// identity and its attributes come from the verified token. Needs the keys of the
    /// policy's jwt identities: --trust LABEL=JWKS, or --jwks for identities without a label.
    #[arg(long, value_name = "FILE|-", conflicts_with = "cert")]
    pub jwt: Option<PathBuf>,

    /// The JWKS of the jwt identities that have no `trust` label.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,

    /// Instead of --identity: a PEM client certificate chain (leaf first) to verify. The
    /// identity and its attributes come from the verified certificate. Needs the CAs of the
    /// policy's certificate identities: --trust LABEL=CA, or --ca for identities without one.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// A PEM file of CA certificates for the certificate identities that have no `trust`
    /// label; repeat for several.
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,

    /// A PEM CRL for the --ca certificates; repeat for several. With CRLs, every
    /// certificate of the chain needs a current CRL (unknown status is denied); without,
    /// revocation is not checked.
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,

    #[command(flatten)]
    pub labels: TrustLabelArgs,

    /// The client id given at CONNECT. Default: the identity's `client` template rendered
    /// with the attributes (required when the template has a `{+capture}`).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
}

impl IdentityArgs {
    /// The identity and the client id to bind, or a usage error saying what is missing.
    pub fn resolve(&self, checked: &Checked) -> Result<(Identity, String), CliError> {
        if let Some(verified) = self.verify_credential(checked)? {
            return with_client_id(verified, self.client_id.clone());
        }
        let Some(identity) = &self.identity else {
            return Err(CliError::Usage(
                "give --identity, or --jwt or --cert with their anchors (--trust LABEL=FILE, --jwks, --ca)".to_string(),
            ));
        };
        if !self.labels.is_empty() || self.has_default_anchors() {
            return Err(CliError::Usage(
                "--trust, --trust-crl, --jwks, --ca and --crl verify a --jwt or --cert; \
                 --identity asserts attributes"
                    .to_string(),
            ));
        }
        let mut attrs = BTreeMap::new();
        for (name, value) in &self.attrs {
            if attrs.insert(name.clone(), value.clone()).is_some() {
                return Err(CliError::Usage(format!(
                    "--attr {name} is given more than once"
                )));
            }
        }
        asserted(checked, identity, attrs, self.client_id.clone())
    }

    /// The verified identity from --jwt or --cert, if one was given.
    fn verify_credential(&self, checked: &Checked) -> Result<Option<Verified>, CliError> {
        let rejected = |e: FileCredentialError| CliError::Usage(e.to_string());
        if self.jwt.is_none() && self.cert.is_none() {
            return Ok(None);
        }
        let trust = self.trust_files()?;
        if trust.is_empty() {
            return Err(CliError::Usage(
                "a credential needs its anchors: --trust LABEL=FILE for identities with `trust \"LABEL\"`, --jwks or --ca for those without".to_string(),
            ));
        }
        if let Some(jwt) = &self.jwt {
            let token = files::read_token(jwt).map_err(rejected)?;
            return files::verify_jwt(checked, &token, &trust)
                .map(Some)
                .map_err(rejected);
        }
        if let Some(cert) = &self.cert {
            let now = rustls_pki_types::UnixTime::now();
            return files::verify_certificate(checked, cert, &trust, now)
                .map(Some)
                .map_err(rejected);
        }
        Ok(None)
    }

    /// Whether --jwks, --ca or --crl was given.
    pub fn has_default_anchors(&self) -> bool {
        self.jwks.is_some() || !self.ca.is_empty() || !self.crl.is_empty()
    }

    /// The anchor files the options name.
    pub fn trust_files(&self) -> Result<TrustFiles, CliError> {
        let default = AnchorFiles {
            jwks: self.jwks.clone(),
            cas: self.ca.clone(),
            crls: self.crl.clone(),
        };
        self.labels
            .files(default)
            .map_err(|e| CliError::Usage(e.to_string()))
    }
}

/// A verified credential's identity with its client id: `client_id` if given, else the one
/// its client template renders.
pub fn with_client_id(
    verified: Verified,
    client_id: Option<String>,
) -> Result<(Identity, String), CliError> {
    let client_id = match (client_id, verified.client_id) {
        (Some(id), _) => id,
        (None, Some(id)) => id,
        (None, None) => {
            return Err(CliError::Usage(format!(
                "identity `{}` has a client template with a `{{+capture}}`: pass --client-id",
                verified.identity.kind
            )));
        }
    };
    Ok((verified.identity, client_id))
}

/// An asserted identity (nothing verified) with its client id: `client_id` if given, else
/// the identity's client template rendered with `attrs`.
pub fn asserted(
    checked: &Checked,
    identity: &str,
    attrs: BTreeMap<String, String>,
    client_id: Option<String>,
) -> Result<(Identity, String), CliError> {
    let rendered = default_client_id(checked, identity, &attrs);
    let client_id = match (client_id, rendered) {
        (_, Err(e @ ClientIdError::UnknownIdentity { .. })) => {
            return Err(CliError::Usage(e.to_string()));
        }
        (Some(id), _) => id,
        (None, Ok(id)) => id,
        (None, Err(e)) => {
            return Err(CliError::Usage(format!(
                "cannot derive the client id: {e}; pass --client-id or the missing --attr"
            )));
        }
    };
    Ok((Identity::asserted(identity, attrs), client_id))
}

/// `--trust LABEL=FILE` and `--trust-crl LABEL=FILE`: the anchors of the identities the
/// policy labels with `trust "LABEL"`, as `decide`, `serve` and `authz` take them.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TrustLabelArgs {
    /// The anchors of the identities with `trust "LABEL"`: a JWKS (for jwt identities) or
    /// PEM CA certificates (for certificate identities). Repeat for each label and file.
    /// (`serve`: a label given here replaces its [trust.LABEL] table.)
    #[arg(long = "trust", value_name = "LABEL=FILE", value_parser = parse_mapping)]
    pub trust: Vec<(String, PathBuf)>,

    /// PEM CRLs for a label's CA certificates. Repeat for each file.
    #[arg(long = "trust-crl", value_name = "LABEL=FILE", value_parser = parse_mapping)]
    pub trust_crl: Vec<(String, PathBuf)>,
}

impl TrustLabelArgs {
    /// Whether no label was given.
    pub fn is_empty(&self) -> bool {
        self.trust.is_empty() && self.trust_crl.is_empty()
    }

    /// The anchor files: `default` for unlabelled identities, plus the labels given.
    pub fn files(&self, default: AnchorFiles) -> Result<TrustFiles, AnchorError> {
        TrustFiles::from_flags(default, &self.trust, &self.trust_crl)
    }
}

/// Parses `LABEL=FILE` (the label in the policy's trust-label grammar).
pub fn parse_mapping(text: &str) -> Result<(String, PathBuf), String> {
    anchors::parse_mapping(text).map_err(|e| e.to_string())
}

/// Parses `NAME=VALUE` (the value may contain `=`; the name may not be empty).
pub fn parse_attr(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got `{text}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use topicguard::policy::Policy;
    use topicguard::source::Source;

    const POLICY: &str = "identity m from jwt {\n    p = claim \"p\"\n    client \"c:{p}\"\n}\n\
        identity s from certificate {\n    n = subject.CN\n    client \"s:{n}:{+i}\"\n}\n";

    fn resolve(identity: &str, attrs: &[(&str, &str)], client_id: Option<&str>) -> String {
        let policy = Policy::from_source(&Source::new("t", POLICY)).expect("valid policy");
        let args = IdentityArgs {
            identity: Some(identity.to_string()),
            jwt: None,
            jwks: None,
            cert: None,
            ca: Vec::new(),
            crl: Vec::new(),
            labels: TrustLabelArgs::default(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            client_id: client_id.map(str::to_string),
        };
        match args.resolve(&policy.checked) {
            Ok((identity, id)) => format!("{} {:?} {id}", identity.kind, identity.attrs),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn the_client_id_defaults_to_the_rendered_template() {
        assert_eq!(resolve("m", &[("p", "P1")], None), r#"m {"p": "P1"} c:P1"#);
        assert_eq!(
            resolve("m", &[("p", "P1")], Some("x")),
            r#"m {"p": "P1"} x"#
        );
    }

    #[test]
    fn says_what_is_missing() {
        let missing = resolve("m", &[], None);
        assert!(missing.contains("needs attribute `p`"), "{missing}");
        let capture = resolve("s", &[("n", "N")], None);
        assert!(capture.contains("captures `{+i}`"), "{capture}");
        let unknown = resolve("x", &[], Some("id"));
        assert!(unknown.contains("defines no identity `x`"), "{unknown}");
        let twice = resolve("m", &[("p", "1"), ("p", "2")], None);
        assert!(twice.contains("more than once"), "{twice}");
    }

    #[test]
    fn attr_syntax() {
        assert_eq!(parse_attr("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_attr("a="), Ok(("a".into(), String::new())));
        assert!(parse_attr("=b").is_err());
        assert!(parse_attr("ab").is_err());
    }
}
