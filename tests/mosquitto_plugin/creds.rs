//! Development credentials for one test, made with the `topicguard` binary and following
//! `policies/xfinity.policy`'s trust labels: the mobile app's JWT from `topicguard dev token
//! --policy` (signed with the `idp` label's key), more JWTs from `topicguard dev token` with
//! keys of their own, all gathered into the `idp` label's JWKS, and a PKI from `topicguard
//! dev pki --policy` (a CA and CRL per label, `devices` and `services`, the gateway's and the
//! service's certificates, and a broker certificate from a CA of its own).

use super::harness::{BrokerSetup, Login, Scratch, topicguard};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The shipped policy whose labels the credentials follow.
pub fn xfinity() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/xfinity.policy")
}

/// The credentials of one test: JWTs (one JWKS, the `idp` label's, for the good ones) and a
/// development PKI with a CA per certificate label.
pub struct Creds {
    pub dir: Scratch,
    /// The `idp` label's JWKS.
    pub jwks: PathBuf,
    /// The kid of the mobile app's key (the `idp` label's key of `dev token --policy`).
    pub mobile_kid: String,
    pub mobile: Login,
    pub requester: Login,
    pub other: Login,
    pub gateway: Login,
    pub service: Login,
}

impl Creds {
    pub fn new() -> Creds {
        let dir = Scratch::new("creds");
        let (mobile, mut keys) = policy_token(&dir.path("idp"), &xfinity(), ("mobile", "idp"), &[]);
        let mobile_kid = keys[0]["kid"].as_str().expect("a kid").to_string();
        let requester = token(&dir, "requester", &mut keys, &["jti=J2"]);
        let other = token(&dir, "other", &mut keys, &["pid=P2", "aid=A2", "jti=J2"]);
        let jwks = dir.write("jwks-idp.json", &json!({ "keys": keys }).to_string());
        let pki = dir.path("pki");
        policy_pki(&xfinity(), &pki);
        let cert = |name: &str| Login::Certificate {
            ca: pki.join("server-ca.pem"),
            cert: pki.join(format!("{name}.pem")),
            key: pki.join(format!("{name}-key.pem")),
        };
        Creds {
            gateway: cert("gateway"),
            service: cert("service"),
            mobile,
            mobile_kid,
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

    /// The xfinity setup: `policy` with each trust label's anchors (`plugin_opt_trust`,
    /// `plugin_opt_trust_crl`) and no default ones; mosquitto's TLS `cafile` holds both
    /// client CAs, its certificate comes from the broker CA.
    pub fn setup(&self, policy: &Path) -> BrokerSetup {
        let label = |label: &str, file: &str| (label.to_string(), self.pki(file));
        BrokerSetup {
            policy: policy.to_path_buf(),
            jwks: None,
            plugin_ca: None,
            trust: vec![
                ("idp".to_string(), self.jwks.clone()),
                label("devices", "ca-devices.pem"),
                label("services", "ca-services.pem"),
            ],
            trust_crl: vec![
                label("devices", "crl-devices.pem"),
                label("services", "crl-services.pem"),
            ],
            tls: Some((
                client_cas(&self.dir, "clients-ca.pem", &self.dir.path("pki")),
                self.pki("server.pem"),
                self.pki("server-key.pem"),
            )),
            extra: String::new(),
        }
    }
}

/// `topicguard dev pki --policy POLICY --out DIR`.
pub fn policy_pki(policy: &Path, dir: &Path) {
    topicguard(&[
        "dev",
        "pki",
        "--policy",
        &policy.display().to_string(),
        "--out",
        &dir.display().to_string(),
    ]);
}

/// One PEM file (in `scratch`) with both client CAs of a `dev pki --policy` directory: what
/// mosquitto's own `cafile` trusts.
pub fn client_cas(scratch: &Scratch, name: &str, pki: &Path) -> PathBuf {
    let mut pem = String::new();
    for label in ["devices", "services"] {
        let ca = pki.join(format!("ca-{label}.pem"));
        pem.push_str(&std::fs::read_to_string(ca).expect("a label's CA"));
    }
    scratch.write(name, &pem)
}

/// `topicguard dev token --policy POLICY --identity IDENTITY --out DIR` with `claims`: the
/// token (DIR/IDENTITY.jwt, signed with the key of the identity's trust label `label`,
/// created once per DIR) and the keys of that label's JWKS (DIR/jwks-LABEL.json).
pub fn policy_token(
    dir: &Path,
    policy: &Path,
    (identity, label): (&str, &str),
    claims: &[&str],
) -> (Login, Vec<Value>) {
    let out = dir.display().to_string();
    let policy = policy.display().to_string();
    let mut args = vec![
        "dev",
        "token",
        "--policy",
        &policy,
        "--identity",
        identity,
        "--out",
        &out,
    ];
    for claim in claims {
        args.extend(["--claim", claim]);
    }
    topicguard(&args);
    let jwt = std::fs::read_to_string(dir.join(format!("{identity}.jwt"))).unwrap();
    let keys = read_keys(&dir.join(format!("jwks-{label}.json")));
    (Login::Jwt(jwt.trim().to_string()), keys)
}

pub fn read_keys(jwks: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(jwks).expect("read the JWKS");
    let doc: Value = serde_json::from_str(&text).expect("a JWKS");
    doc["keys"].as_array().cloned().unwrap_or_default()
}

/// `topicguard dev token` into DIR/name with a unique kid; its key is appended to `keys`.
/// Its default claims are those of xfinity's mobile app (issuer, audience, P1, A1, J1).
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
