//! The `plugin_opt_*` lines of mosquitto's configuration: what the plugin loads.
//!
//! mosquitto hands the plugin each `plugin_opt_NAME value` line as a key/value pair (the key
//! without its prefix). Known keys: `policy` (required, once), `jwks` (at most once),
//! `cafile` and `crlfile` (repeatable; each line one PEM file). The CA option cannot be called
//! `plugin_opt_ca`: mosquitto 2.0 rejects any option key shorter than three characters
//! ("Invalid auth_opt_ config option") before a plugin sees it, so the names follow
//! mosquitto's own `cafile` / `crlfile`. An unknown key, a repeated single key or a
//! missing `policy` is an [`OptionError`] that stops mosquitto from starting: mosquitto never
//! re-reads plugin options on SIGHUP, so a typo would otherwise silently drop a setting for
//! the broker's whole life. This module only parses; it never opens a file.

use std::path::PathBuf;

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
}

/// Why the options cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error(
        "unknown option `plugin_opt_{key}` (the plugin knows plugin_opt_policy, plugin_opt_jwks, plugin_opt_cafile and plugin_opt_crlfile)"
    )]
    Unknown { key: String },
    #[error("`plugin_opt_{key}` is given twice; it takes one value")]
    Repeated { key: String },
    #[error("`plugin_opt_{key}` has no value")]
    Empty { key: String },
    #[error("`plugin_opt_{key}` is not valid UTF-8")]
    NotUtf8 { key: String },
    #[error("`plugin_opt_policy PATH` is required")]
    NoPolicy,
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
            let path = PathBuf::from(value);
            match key {
                "policy" => set_once(&mut policy, path, key)?,
                "jwks" => set_once(&mut options.jwks, path, key)?,
                "cafile" => options.ca.push(path),
                "crlfile" => options.crl.push(path),
                _ => return Err(OptionError::Unknown { key: key.into() }),
            }
        }
        options.policy = policy.ok_or(OptionError::NoPolicy)?;
        Ok(options)
    }
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
        assert_eq!(
            Options::parse([("policy", "  ")]),
            Err(OptionError::Empty {
                key: "policy".into()
            })
        );
    }
}
