//! Development credentials for one test, made with the `topicguard` binary: JWTs from
//! `topicguard dev token` (the good ones' keys gathered into one JWKS) and a PKI from
//! `topicguard dev pki` (CA, broker, gateway and service certificates).

use super::harness::{BrokerSetup, Login, Scratch, topicguard};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The credentials of one test: JWTs (one JWKS for the good ones) and a development PKI.
pub struct Creds {
    pub dir: Scratch,
    pub jwks: PathBuf,
    pub mobile: Login,
    pub requester: Login,
    pub other: Login,
    pub gateway: Login,
    pub service: Login,
}

impl Creds {
    pub fn new() -> Creds {
        let dir = Scratch::new("creds");
        let mut keys = Vec::new();
        let mobile = token(&dir, "mobile", &mut keys, &[]);
        let requester = token(&dir, "requester", &mut keys, &["jti=J2"]);
        let other = token(&dir, "other", &mut keys, &["pid=P2", "aid=A2", "jti=J2"]);
        let jwks = dir.write("jwks.json", &json!({ "keys": keys }).to_string());
        topicguard(&[
            "dev",
            "pki",
            "--out",
            &dir.path("pki").display().to_string(),
        ]);
        let pki = dir.path("pki");
        let cert = |name: &str| Login::Certificate {
            ca: pki.join("ca.pem"),
            cert: pki.join(format!("{name}.pem")),
            key: pki.join(format!("{name}-key.pem")),
        };
        Creds {
            gateway: cert("gateway"),
            service: cert("service"),
            mobile,
            requester,
            other,
            jwks,
            dir,
        }
    }

    /// A JWT signed by a fresh key whose public half is *not* added to the JWKS.
    pub fn outsider(&self, claims: &[&str]) -> Login {
        token(&self.dir, "outsider", &mut Vec::new(), claims)
    }

    /// A JWT from a key that the JWKS holds (written anew), with `claims`.
    pub fn extra(&self, name: &str, claims: &[&str]) -> Login {
        let mut keys = read_keys(&self.jwks);
        let login = token(&self.dir, name, &mut keys, claims);
        std::fs::write(&self.jwks, json!({ "keys": keys }).to_string()).unwrap();
        login
    }

    pub fn pki(&self, name: &str) -> PathBuf {
        self.dir.path("pki").join(name)
    }

    /// xfinity-style setup: `policy`, the JWKS, and `cafile` both as mosquitto's TLS
    /// `cafile` and as the plugin's anchors.
    pub fn setup(&self, policy: &Path, cafile: &Path) -> BrokerSetup {
        BrokerSetup {
            policy: policy.to_path_buf(),
            jwks: Some(self.jwks.clone()),
            plugin_ca: Some(cafile.to_path_buf()),
            tls: Some((
                cafile.to_path_buf(),
                self.pki("server.pem"),
                self.pki("server-key.pem"),
            )),
            extra: String::new(),
        }
    }
}

pub fn read_keys(jwks: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(jwks).expect("read the JWKS");
    let doc: Value = serde_json::from_str(&text).expect("a JWKS");
    doc["keys"].as_array().cloned().unwrap_or_default()
}

/// `topicguard dev token` into DIR/name with a unique kid; its key is appended to `keys`.
fn token(dir: &Scratch, name: &str, keys: &mut Vec<Value>, claims: &[&str]) -> Login {
    let out = dir.path(name).display().to_string();
    let kid = format!("{name}-{}", keys.len());
    let mut args = vec!["dev", "token", "--out", &out, "--kid", &kid];
    for claim in claims {
        args.extend(["--claim", claim]);
    }
    topicguard(&args);
    keys.extend(read_keys(&dir.path(name).join("jwks.json")));
    let jwt = std::fs::read_to_string(dir.path(name).join("token.jwt")).unwrap();
    Login::Jwt(jwt.trim().to_string())
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
