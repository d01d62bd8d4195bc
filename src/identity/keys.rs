//! JWT verification keys and the `jti` revocation list.
//!
//! A [`KeyStore`] holds the public keys tokens may be signed with, loaded from a JWKS file
//! (several keys, chosen by `kid`, for rotation) or from PEM files. Keys come only from
//! configuration: a token's `jku`, `x5u`, `jwk` or `x5c` header is never read. An unknown
//! `kid` may trigger one reload of the JWKS file, single-flight and at most once per
//! cooldown, so a burst of made-up kids costs one file read. A JWKS never supplies HMAC
//! keys: HS256/384/512 verify only with a [`SharedSecret`] the operator configured on its own,
//! and [`SharedSecret::decoding_key`] is the only place a secret becomes a [`DecodingKey`], so
//! public-key material can never be used as an HMAC secret (algorithm confusion).
//! A [`RevocationList`] is a file of revoked `jti` values, one per line, reloadable.

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Default time between two reloads triggered by unknown `kid`s.
pub const DEFAULT_RELOAD_COOLDOWN: Duration = Duration::from_secs(60);

/// A problem with key or revocation material (configuration, not a token).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a JSON Web Key Set.
    #[error("{origin}: not a JSON Web Key Set: {reason}")]
    BadJwks {
        /// Where the set came from.
        origin: String,
        /// Why.
        reason: String,
    },
    /// A key of a JWKS cannot be used.
    #[error("{origin}: key {index} ({kid}): {reason}")]
    BadJwk {
        /// The file.
        origin: String,
        /// The key's index in the set.
        index: usize,
        /// The key's `kid`, or `-` when it has none.
        kid: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Two keys of a set share a `kid`.
    #[error("{origin}: key id `{kid}` appears more than once")]
    DuplicateKid {
        /// Where it came from (a file or a trust label).
        origin: String,
        /// The key id.
        kid: String,
    },
    #[error(
        "{origin}: key {index} is a symmetric (`oct`) key; HMAC secrets are configured only as an explicit shared secret"
    )]
    /// A JWKS holds a symmetric (`oct`) key; shared secrets are configured on their own.
    SymmetricKeyInJwks {
        /// Where it came from (a file or a trust label).
        origin: String,
        /// The key's index in the set.
        index: usize,
    },
    /// A PEM file is not a public key of a supported type.
    #[error("{origin}: not an RSA, EC or Ed25519 public key in PEM form")]
    BadPem {
        /// Where it came from (a file or a trust label).
        origin: String,
    },
    /// The shared secret cannot be used.
    #[error("shared secret: {reason}")]
    BadSecret {
        /// Why.
        reason: String,
    },
}

/// One verification key.
#[derive(Clone)]
pub struct KeyEntry {
    /// The key's id, if it has one.
    pub kid: Option<String>,
    /// The JWK's `alg`, when it pins one.
    pub alg: Option<Algorithm>,
    pub(crate) family: AlgorithmFamily,
    /// The key, ready to verify.
    pub key: DecodingKey,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// Why no key was found for a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMiss {
    /// No key has this `kid`.
    UnknownKid,
    /// The token names no `kid`, and not exactly one key fits its algorithm.
    NoKidAmbiguous {
        /// How many fit.
        candidates: usize,
    },
    /// The key with this `kid` is not for this algorithm.
    WrongAlgorithm {
        /// The key's family (RSA, EC, OKP, HMAC).
        key_family: String,
    },
}

/// A set of public verification keys.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    /// The keys, in file order.
    pub entries: Vec<KeyEntry>,
}

impl KeySet {
    /// Parses a JWKS document. `origin` names it in errors.
    pub fn from_jwks(text: &str, origin: &str) -> Result<KeySet, KeyError> {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| KeyError::BadJwks {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        let mut entries = Vec::new();
        for (index, jwk) in set.keys.iter().enumerate() {
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                return Err(KeyError::SymmetricKeyInJwks {
                    origin: origin.to_string(),
                    index,
                });
            }
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let kid = jwk.common.key_id.clone();
            let bad = |reason: String| KeyError::BadJwk {
                origin: origin.to_string(),
                index,
                kid: kid.clone().unwrap_or_else(|| "no kid".to_string()),
                reason,
            };
            let alg = match &jwk.common.key_algorithm {
                None => None,
                Some(ka) => Some(
                    Algorithm::from_str(&ka.to_string())
                        .map_err(|_| bad(format!("`alg` {ka} is not a signature algorithm")))?,
                ),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
            let family = key.family();
            if alg.is_some_and(|a| a.family() != family) {
                return Err(bad("its `alg` does not fit its key type".to_string()));
            }
            if let Some(k) = &kid
                && entries.iter().any(|e: &KeyEntry| e.kid.as_ref() == Some(k))
            {
                return Err(KeyError::DuplicateKid {
                    origin: origin.to_string(),
                    kid: k.clone(),
                });
            }
            entries.push(KeyEntry {
                kid,
                alg,
                family,
                key,
            });
        }
        Ok(KeySet { entries })
    }

    /// One public key in PEM form (SPKI `PUBLIC KEY`, or `RSA PUBLIC KEY`), named `kid`.
    pub fn from_pem(pem: &[u8], kid: Option<String>, origin: &str) -> Result<KeySet, KeyError> {
        let key = DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .map_err(|_| KeyError::BadPem {
                origin: origin.to_string(),
            })?;
        Ok(KeySet {
            entries: vec![KeyEntry {
                kid,
                alg: None,
                family: key.family(),
                key,
            }],
        })
    }

    /// The key for a token with this `kid` (if any) and algorithm.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<&KeyEntry, KeyMiss> {
        let fits = |e: &KeyEntry| e.family == alg.family() && e.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => {
                let entry = self
                    .entries
                    .iter()
                    .find(|e| e.kid.as_deref() == Some(kid))
                    .ok_or(KeyMiss::UnknownKid)?;
                if fits(entry) {
                    Ok(entry)
                } else {
                    Err(KeyMiss::WrongAlgorithm {
                        key_family: family_name(entry.family).to_string(),
                    })
                }
            }
            None => {
                let mut candidates = self.entries.iter().filter(|e| fits(e));
                match (candidates.next(), candidates.count()) {
                    (Some(entry), 0) => Ok(entry),
                    (first, rest) => Err(KeyMiss::NoKidAmbiguous {
                        candidates: rest + usize::from(first.is_some()),
                    }),
                }
            }
        }
    }
}

/// A key family as people name it.
pub fn family_name(family: AlgorithmFamily) -> &'static str {
    match family {
        AlgorithmFamily::Hmac => "HMAC",
        AlgorithmFamily::Rsa => "RSA",
        AlgorithmFamily::Ec => "EC",
        AlgorithmFamily::Ed => "Ed25519",
    }
}

/// Where a [`KeyStore`] loads its keys from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// Keys given in memory; never reloaded.
    Fixed,
    /// A JWKS file.
    JwksFile(PathBuf),
    /// PEM public keys, each with an optional `kid`.
    PemFiles(Vec<(PathBuf, Option<String>)>),
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl KeySource {
    fn load(&self) -> Result<Option<KeySet>, KeyError> {
        match self {
            KeySource::Fixed => Ok(None),
            KeySource::JwksFile(path) => {
                KeySet::from_jwks(&read(path)?, &path.display().to_string()).map(Some)
            }
            KeySource::PemFiles(files) => {
                let mut set = KeySet::default();
                for (path, kid) in files {
                    let pem = read(path)?;
                    let one =
                        KeySet::from_pem(pem.as_bytes(), kid.clone(), &path.display().to_string())?;
                    set.entries.extend(one.entries);
                }
                Ok(Some(set))
            }
        }
    }
}

/// The verification keys in use, with rate-limited reloading.
#[derive(Debug)]
pub struct KeyStore {
    source: KeySource,
    current: RwLock<Arc<KeySet>>,
    last_reload: Mutex<Option<Instant>>,
    cooldown: Duration,
    reloads: AtomicU64,
}

impl KeyStore {
    /// Keys held in memory (tests, benchmarks, embedding).
    pub fn fixed(set: KeySet) -> KeyStore {
        KeyStore::new(KeySource::Fixed, set, DEFAULT_RELOAD_COOLDOWN)
    }

    /// Loads keys from a file source now.
    pub fn load(source: KeySource, cooldown: Duration) -> Result<KeyStore, KeyError> {
        let set = source.load()?.unwrap_or_default();
        Ok(KeyStore::new(source, set, cooldown))
    }

    fn new(source: KeySource, set: KeySet, cooldown: Duration) -> KeyStore {
        KeyStore {
            source,
            current: RwLock::new(Arc::new(set)),
            last_reload: Mutex::new(None),
            cooldown,
            reloads: AtomicU64::new(0),
        }
    }

    /// The current key set.
    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many reloads were attempted since the store was created.
    pub fn reload_count(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Reloads now (operator request), ignoring the cooldown.
    pub fn reload(&self) -> Result<(), KeyError> {
        let mut last = self.last_reload.lock().unwrap_or_else(|e| e.into_inner());
        self.reload_locked(&mut last)
    }

    /// Reloads because a token named an unknown `kid`: single-flight (callers queue on one
    /// lock) and at most once per cooldown. True if a reload happened and succeeded.
    pub fn reload_for_unknown_kid(&self) -> bool {
        let mut last = self.last_reload.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(self.source, KeySource::Fixed)
            || last.is_some_and(|at| at.elapsed() < self.cooldown)
        {
            return false;
        }
        self.reload_locked(&mut last).is_ok()
    }

    fn reload_locked(&self, last: &mut Option<Instant>) -> Result<(), KeyError> {
        *last = Some(Instant::now());
        self.reloads.fetch_add(1, Ordering::Relaxed);
        if let Some(set) = self.source.load()? {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        }
        Ok(())
    }
}

/// An HMAC secret the operator configured explicitly; the only source of HS* keys.
#[derive(Clone)]
pub struct SharedSecret(Vec<u8>);

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedSecret({} bytes)", self.0.len())
    }
}

/// The shortest shared secret accepted (HS256 needs 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

impl SharedSecret {
    /// A secret of at least [`MIN_SECRET_BYTES`] bytes that is not key material.
    pub fn new(bytes: Vec<u8>) -> Result<SharedSecret, KeyError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(KeyError::BadSecret {
                reason: format!(
                    "{} bytes is too short (at least {MIN_SECRET_BYTES})",
                    bytes.len()
                ),
            });
        }
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("-----BEGIN") || text.trim_start().starts_with('{') {
            return Err(KeyError::BadSecret {
                reason: "this is PEM or JSON key material, not a shared secret".to_string(),
            });
        }
        Ok(SharedSecret(bytes))
    }

    /// The HMAC verification key. The only call of `DecodingKey::from_secret` in topicguard.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_secret(&self.0)
    }
}

/// Revoked token ids (`jti`), loaded from a file: one per line, `#` starts a comment.
#[derive(Debug)]
pub struct RevocationList {
    path: Option<PathBuf>,
    revoked: RwLock<Arc<HashSet<String>>>,
}

impl RevocationList {
    /// A list held in memory.
    pub fn fixed(ids: impl IntoIterator<Item = String>) -> RevocationList {
        RevocationList {
            path: None,
            revoked: RwLock::new(Arc::new(ids.into_iter().collect())),
        }
    }

    /// Loads the list from a file.
    pub fn load(path: &Path) -> Result<RevocationList, KeyError> {
        let list = RevocationList {
            path: Some(path.to_path_buf()),
            revoked: RwLock::new(Arc::new(HashSet::new())),
        };
        list.reload()?;
        Ok(list)
    }

    /// Re-reads the file; on error the previous list stays in force.
    pub fn reload(&self) -> Result<(), KeyError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let ids: HashSet<String> = read(path)?
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        *self.revoked.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ids);
        Ok(())
    }

    pub(crate) fn contains(&self, jti: &str) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(jti)
    }

    /// The number of revoked token ids.
    pub fn len(&self) -> usize {
        self.revoked.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no token id is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The non-test source of the identity modules that handle keys.
    fn production_sources() -> Vec<(&'static str, &'static str)> {
        let strip = |s: &'static str| s.split("#[cfg(test)]").next().unwrap_or(s);
        vec![
            ("keys.rs", strip(include_str!("keys.rs"))),
            ("jwt.rs", strip(include_str!("jwt.rs"))),
            ("select.rs", strip(include_str!("select.rs"))),
            ("x509.rs", strip(include_str!("x509.rs"))),
            ("chain.rs", strip(include_str!("chain.rs"))),
            ("claims.rs", strip(include_str!("claims.rs"))),
            ("anchors.rs", strip(include_str!("anchors.rs"))),
        ]
    }

    #[test]
    fn from_secret_is_called_only_on_a_configured_shared_secret() {
        let mut calls = Vec::new();
        for (file, text) in production_sources() {
            for (at, _) in text.match_indices("from_secret(") {
                let before = &text[..at];
                let function = before.rsplit("fn ").next().unwrap_or("");
                let name: String = function
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                calls.push((file, name));
            }
        }
        // One call, inside `SharedSecret::decoding_key(&self)`: the secret type is built
        // only by `SharedSecret::new`, which refuses PEM and JWK material.
        assert_eq!(calls, [("keys.rs", "decoding_key".to_string())]);
        for (file, text) in production_sources() {
            for banned in ["from_base64_secret", "try_get_as_bytes", "EncodingKey"] {
                assert!(!text.contains(banned), "{file} uses {banned}");
            }
        }
    }

    #[test]
    fn shared_secrets_refuse_key_material() {
        let pem = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
        assert!(SharedSecret::new(pem.to_vec()).is_err());
        assert!(
            SharedSecret::new(
                br#"{"kty":"RSA","n":"abcdefghijklmnopqrstuvwxyz0123456789"}"#.to_vec()
            )
            .is_err()
        );
        assert!(SharedSecret::new(b"short".to_vec()).is_err());
        assert!(SharedSecret::new(vec![7u8; 32]).is_ok());
    }

    #[test]
    fn jwks_with_an_oct_key_is_refused() {
        let jwks = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#;
        let err = KeySet::from_jwks(jwks, "test.jwks").unwrap_err();
        assert!(
            matches!(err, KeyError::SymmetricKeyInJwks { index: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn duplicate_kids_are_refused() {
        let key = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"}"#;
        let jwks = format!(r#"{{"keys":[{key},{key}]}}"#);
        let err = KeySet::from_jwks(&jwks, "test.jwks").unwrap_err();
        assert!(matches!(err, KeyError::DuplicateKid { .. }), "{err}");
    }

    #[test]
    fn revocation_list_ignores_comments_and_blanks() {
        let dir = std::env::temp_dir().join(format!("tg-revoked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("revoked.txt");
        std::fs::write(&path, "# revoked\nJ1\n\n  J2  # lost phone\n").unwrap();
        let list = RevocationList::load(&path).unwrap();
        assert!(list.contains("J1") && list.contains("J2") && !list.contains("J3"));
        std::fs::write(&path, "J3\n").unwrap();
        list.reload().unwrap();
        assert!(!list.contains("J1") && list.contains("J3"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
