//! The `plugin_opt_*` lines of mosquitto's configuration: what the plugin loads.
//!
//! mosquitto hands the plugin each `plugin_opt_NAME value` line as a key/value pair (the key
//! without its prefix, the value the rest of the line). Known keys: `policy` (required,
//! once); the anchors of the identities with a `trust "LABEL"` setting, `trust LABEL=FILE` (a
//! JWKS or PEM CA certificates, as `topicguard --trust`) and `trust_crl LABEL=FILE` (PEM
//! CRLs), both repeatable; and the default anchors, for identities without a label: `jwks`
//! (at most once), `cafile` and `crlfile` (repeatable; each line one PEM file). The CA option
//! cannot be called `plugin_opt_ca`: mosquitto 2.0 rejects any option key shorter than three
//! characters ("Invalid auth_opt_ config option") before a plugin sees it, so the names
//! follow mosquitto's own `cafile` / `crlfile`.
//!
//! An unknown key, a repeated single key, a missing `policy`, a value with a trailing
//! `# comment` (mosquitto passes it on as part of the value), a `LABEL=FILE` that is not one
//! or names no valid label, and CRLs without a CA option for their anchors are
//! [`OptionError`]s that stop mosquitto from starting: mosquitto never re-reads plugin options
//! on SIGHUP, so a typo would otherwise silently drop (or break) a setting for the broker's
//! whole life. Labels are checked with the library's [`parse_mapping`]. This module only
//! parses; it never opens a file, so whether a `trust` file is a JWKS or a CA is decided when
//! the anchors load (at start and at every SIGHUP), and a bad file fails closed there.

use std::path::PathBuf;
use topicguard::identity::anchors::parse_mapping;

/// What the plugin is configured with. Paths are used as given (relative ones are relative to
/// mosquitto's working directory).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `plugin_opt_policy`: the policy file.
    pub policy: PathBuf,
    /// `plugin_opt_jwks`: the keys that sign client JWTs (a JWKS file).
    pub jwks: Option<PathBuf>,
    /// `plugin_opt_cafile`: CA certificates (PEM) that client certificates must chain to.
    pub ca: Vec<PathBuf>,
    /// `plugin_opt_crlfile`: CRLs (PEM); with any, revocation is checked for every certificate.
    pub crl: Vec<PathBuf>,
    /// `plugin_opt_trust LABEL=FILE`: the anchors of a trust label (a JWKS or PEM CA
    /// certificates), in configuration order.
    pub trust: Vec<(String, PathBuf)>,
    /// `plugin_opt_trust_crl LABEL=FILE`: PEM CRLs for a label's CA certificates.
    pub trust_crl: Vec<(String, PathBuf)>,
}

/// Why the options cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error(
        "unknown option `plugin_opt_{key}` (the plugin knows plugin_opt_policy, plugin_opt_trust, plugin_opt_trust_crl, plugin_opt_jwks, plugin_opt_cafile and plugin_opt_crlfile)"
    )]
    Unknown { key: String },
    #[error("`plugin_opt_{key}` is given twice; it takes one value")]
    Repeated { key: String },
    #[error("`plugin_opt_{key}` has no value")]
    Empty { key: String },
    /// mosquitto passes the rest of the line as the value, a comment after it included.
    #[error(
        "`plugin_opt_{key}` ends in a `#` comment, which mosquitto passes on as part of the value; put the comment on a line of its own"
    )]
    TrailingComment { key: String },
    #[error("`plugin_opt_{key}` is not valid UTF-8")]
    NotUtf8 { key: String },
    #[error("`plugin_opt_policy PATH` is required")]
    NoPolicy,
    /// A `trust` or `trust_crl` value that is not `LABEL=FILE` with a valid label.
    #[error("`plugin_opt_{key}`: {reason}")]
    Mapping { key: String, reason: String },
    /// CRLs whose anchors have no CA option: nothing they could ever apply to.
    #[error(
        "`plugin_opt_trust_crl {label}=...` is set but no `plugin_opt_trust {label}=...`: CRLs need the CA certificates they belong to"
    )]
    LabelCrlWithoutCa { label: String },
    #[error(
        "`plugin_opt_crlfile` is set but no `plugin_opt_cafile`: CRLs need the CA certificates they belong to"
    )]
    CrlWithoutCa,
}

impl Options {
    /// Parses the key/value pairs, in configuration order.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Options, OptionError> {
        let mut policy = None;
        let mut options = Options::default();
        for (key, value) in pairs {
            let value = value.trim();
            if value.is_empty() {
                return Err(OptionError::Empty { key: key.into() });
            }
            if value.contains(" #") || value.contains("\t#") {
                return Err(OptionError::TrailingComment { key: key.into() });
            }
            let path = PathBuf::from(value);
            match key {
                "policy" => set_once(&mut policy, path, key)?,
                "jwks" => set_once(&mut options.jwks, path, key)?,
                "cafile" => options.ca.push(path),
                "crlfile" => options.crl.push(path),
                "trust" => options.trust.push(mapping(key, value)?),
                "trust_crl" => options.trust_crl.push(mapping(key, value)?),
                _ => return Err(OptionError::Unknown { key: key.into() }),
            }
        }
        options.policy = policy.ok_or(OptionError::NoPolicy)?;
        options.check_crls()?;
        Ok(options)
    }

    /// CRLs need a CA option for the same anchors (a label's `trust` line may still name a
    /// JWKS: that is found, and refused, when the files load).
    fn check_crls(&self) -> Result<(), OptionError> {
        if !self.crl.is_empty() && self.ca.is_empty() {
            return Err(OptionError::CrlWithoutCa);
        }
        for (label, _) in &self.trust_crl {
            if !self.trust.iter().any(|(l, _)| l == label) {
                return Err(OptionError::LabelCrlWithoutCa {
                    label: label.clone(),
                });
            }
        }
        Ok(())
    }
}

/// `LABEL=FILE`, with the label checked by the library's own parser.
fn mapping(key: &str, value: &str) -> Result<(String, PathBuf), OptionError> {
    parse_mapping(value).map_err(|error| OptionError::Mapping {
        key: key.into(),
        reason: error.to_string(),
    })
}

fn set_once(slot: &mut Option<PathBuf>, path: PathBuf, key: &str) -> Result<(), OptionError> {
    if slot.is_some() {
        return Err(OptionError::Repeated { key: key.into() });
    }
    *slot = Some(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_option_is_read() {
        let options = Options::parse([
            ("policy", "/etc/topicguard/site.policy"),
            ("jwks", " jwks.json "),
            ("cafile", "a.pem"),
            ("crlfile", "a.crl"),
            ("cafile", "b.pem"),
        ])
        .unwrap();
        assert_eq!(options.policy, PathBuf::from("/etc/topicguard/site.policy"));
        assert_eq!(options.jwks, Some(PathBuf::from("jwks.json")));
        assert_eq!(options.ca, [PathBuf::from("a.pem"), PathBuf::from("b.pem")]);
        assert_eq!(options.crl, [PathBuf::from("a.crl")]);
    }

    #[test]
    fn typos_repeats_and_omissions_are_errors_not_dropped_settings() {
        let typo = Options::parse([("policy", "p"), ("jwsk", "k.json")]);
        assert_eq!(typo, Err(OptionError::Unknown { key: "jwsk".into() }));
        assert!(typo.unwrap_err().to_string().contains("plugin_opt_jwsk"));
        let twice = Options::parse([("policy", "p"), ("policy", "q")]);
        assert_eq!(
            twice,
            Err(OptionError::Repeated {
                key: "policy".into()
            })
        );
        let jwks_twice = Options::parse([("policy", "p"), ("jwks", "a"), ("jwks", "b")]);
        assert_eq!(
            jwks_twice,
            Err(OptionError::Repeated { key: "jwks".into() })
        );
        assert_eq!(
            Options::parse([("jwks", "k.json")]),
            Err(OptionError::NoPolicy)
        );
        assert_eq!(Options::parse([]), Err(OptionError::NoPolicy));
        for commented in ["site.policy  # the policy", "site.policy\t# the policy"] {
            assert_eq!(
                Options::parse([("policy", commented)]),
                Err(OptionError::TrailingComment {
                    key: "policy".into()
                })
            );
        }
        let hash_in_name = Options::parse([("policy", "/etc/tg/site#2.policy")]).unwrap();
        assert_eq!(hash_in_name.policy, PathBuf::from("/etc/tg/site#2.policy"));
        assert_eq!(
            Options::parse([("policy", "  ")]),
            Err(OptionError::Empty {
                key: "policy".into()
            })
        );
    }

    #[test]
    fn trust_labels_map_to_files_in_configuration_order() {
        let options = Options::parse([
            ("policy", "p"),
            ("trust", "idp=jwks-idp.json"),
            ("trust", " devices=ca-devices.pem"),
            ("trust_crl", "devices=crl-devices.pem"),
            ("trust", "devices=ca=2.pem"),
        ])
        .unwrap();
        let pair = |label: &str, file: &str| (label.to_string(), PathBuf::from(file));
        assert_eq!(
            options.trust,
            [
                pair("idp", "jwks-idp.json"),
                pair("devices", "ca-devices.pem"),
                pair("devices", "ca=2.pem")
            ]
        );
        assert_eq!(options.trust_crl, [pair("devices", "crl-devices.pem")]);
        assert!(options.jwks.is_none() && options.ca.is_empty());
    }

    #[test]
    fn a_bad_mapping_or_label_is_an_error_not_a_dropped_anchor() {
        let bad = [
            "ca-devices.pem",
            "=ca.pem",
            "devices=",
            "Devices=ca.pem",
            "dev ices=ca.pem",
            "-devices=ca.pem",
            "dev\u{7}ices=ca.pem",
        ];
        for key in ["trust", "trust_crl"] {
            for value in bad {
                let parsed =
                    Options::parse([("policy", "p"), ("trust", "devices=ca.pem"), (key, value)]);
                let Err(error @ OptionError::Mapping { .. }) = parsed else {
                    panic!("{key} {value}: {parsed:?}");
                };
                let text = error.to_string();
                assert!(text.starts_with(&format!("`plugin_opt_{key}`: ")), "{text}");
            }
        }
        let label = Options::parse([("policy", "p"), ("trust", "Idp=k.json")]).unwrap_err();
        assert!(
            label.to_string().contains("`Idp` is not a trust label"),
            "{label}"
        );
    }

    #[test]
    fn crls_without_a_ca_option_for_their_anchors_are_errors() {
        let crl_only = Options::parse([("policy", "p"), ("crlfile", "crl.pem")]);
        assert_eq!(crl_only, Err(OptionError::CrlWithoutCa));
        let typo = Options::parse([
            ("policy", "p"),
            ("trust", "devices=ca.pem"),
            ("trust_crl", "device=crl.pem"),
        ]);
        assert_eq!(
            typo,
            Err(OptionError::LabelCrlWithoutCa {
                label: "device".into()
            })
        );
        // The default CA does not cover a label's CRLs, nor a label's CA the default CRLs.
        let crossed = Options::parse([
            ("policy", "p"),
            ("cafile", "ca.pem"),
            ("trust_crl", "devices=crl.pem"),
        ]);
        assert!(crossed.is_err());
        let crossed = Options::parse([
            ("policy", "p"),
            ("trust", "devices=ca.pem"),
            ("crlfile", "crl.pem"),
        ]);
        assert_eq!(crossed, Err(OptionError::CrlWithoutCa));
    }
}
