//! `topicguard dev pki|token`: development-only credentials for trying topicguard end to end.
//!
//! With `--policy`, the material follows the policy's trust labels: `dev pki` writes one CA
//! (and CRL) per label of its certificate identities, a leaf per certificate identity that
//! binds as it, and a broker certificate from a CA of its own; `dev token --identity NAME`
//! signs a token that binds as that jwt identity, with its label's key (created once per
//! directory and reused, so tokens of one label share one JWKS). Each report says whether the
//! written credential binds, checked with the written anchors, and the flags that map the
//! labels to the files. Without `--policy`, the original layout: one CA with a
//! residential gateway's and a service's certificate, a broker certificate and an empty CRL; a JWT
//! for `policies/xfinity.policy`'s mobile app with its JWKS. Every file and every report says
//! "development only". The generation itself is [`topicguard::devcred`] and
//! [`topicguard::devcred::policy`]; this module only parses options, writes files and
//! reports. It must never be used for real credentials.

use super::identity_args::parse_attr;
use super::output::{CliError, Exit, Out};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use topicguard::ast::IdentityKind;
use topicguard::check::{Checked, IdentityDef};
use topicguard::devcred::policy::{self as dev_policy, PolicyCas};
use topicguard::devcred::{
    self as dev, DEV_NOTICE, DevAlg, DevCa, DevError, DevSigner, GatewaySpec, marked_pem,
};
use topicguard::identity::anchors::TrustFiles;
use topicguard::identity::files;
use topicguard::policy::Policy;

/// Arguments of `topicguard dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    #[command(subcommand)]
    pub command: DevCommand,
}

/// What to generate.
#[derive(Debug, clap::Subcommand)]
pub enum DevCommand {
    /// With --policy: per trust label LABEL of its certificate identities a CA
    /// (ca-LABEL.pem, its key, crl-LABEL.pem; ca.pem and crl.pem for identities without a
    /// label), per certificate identity NAME a leaf that binds as it (NAME.pem,
    /// NAME-key.pem), and a broker certificate for localhost (server.pem, server-key.pem)
    /// from its own CA (server-ca.pem, what clients verify the broker with).
    /// Without --policy: one CA (ca.pem) with a gateway certificate (gateway.pem: SAN DirName
    /// O=PID, CN=AID; Subject UID Model:Serial:AID:IID; SAN URI urn:dev:mac:MAC; clientAuth),
    /// a service certificate (service.pem: Subject CN = service id), a broker certificate
    /// (server.pem: SAN DNS localhost, IP 127.0.0.1 and ::1; serverAuth), their keys and a
    /// current empty CRL (crl.pem). Development only.
    Pki(PkiArgs),
    /// With --policy and --identity NAME: a token that binds as that jwt identity
    /// (NAME.jwt: its issuer, audience and the claims it binds), signed with the key of its
    /// trust label LABEL (jwt-LABEL-key.pem and jwks-LABEL.json; created once, reused by
    /// later tokens of the label). Without --policy: a JWT (token.jwt) signed with a fresh
    /// key and its JWKS (jwks.json); claims default to what policies/xfinity.policy's mobile
    /// app expects (iss, aud, exp in one hour, pid=P1, aid=A1, jti=J1). Development only.
    Token(TokenArgs),
}

/// Arguments of `topicguard dev pki`.
#[derive(Debug, clap::Args)]
pub struct PkiArgs {
    /// Directory to write into (created if missing; existing files are overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write material for this policy's certificate identities and trust labels.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// With --policy: an attribute value for every identity that binds it, NAME=VALUE
    /// (default: values that satisfy each identity's requirements).
    #[arg(long = "attr", value_name = "NAME=VALUE", value_parser = parse_attr, requires = "policy")]
    pub attrs: Vec<(String, String)>,
    /// The gateway's partner id (SAN DirName O).
    #[arg(long, default_value = "P1")]
    pub pid: String,
    /// The gateway's account id (SAN DirName CN and the UID's third part).
    #[arg(long, default_value = "A1")]
    pub aid: String,
    /// The gateway's installation id (the UID's last part; a UUID for xfinity.policy).
    #[arg(long, default_value = "550e8400-e29b-41d4-a716-446655440000")]
    pub iid: String,
    /// The gateway's MAC as an EUI-64: 16 lowercase hex digits.
    #[arg(long, default_value = "0011223344556677")]
    pub mac: String,
    /// The service certificate's id (Subject CN).
    #[arg(long, default_value = "lights")]
    pub service: String,
}

/// Arguments of `topicguard dev token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Directory to write into (created if missing; existing files are overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Sign a token for an identity of this policy (with --identity).
    #[arg(long, value_name = "FILE", requires = "identity")]
    pub policy: Option<PathBuf>,
    /// The jwt identity of --policy the token is for.
    #[arg(long, value_name = "NAME", requires = "policy")]
    pub identity: Option<String>,
    /// A claim as NAME=VALUE (a string; `exp`, `nbf` and `iat` take Unix seconds); repeat
    /// for each. Overrides the defaults, e.g. --claim pid=P1 --claim aid=A1.
    #[arg(long = "claim", value_name = "NAME=VALUE", value_parser = parse_attr)]
    pub claims: Vec<(String, String)>,
    /// Signing algorithm: ES256, RS256 or EdDSA.
    #[arg(long, default_value = "ES256", value_parser = ["ES256", "RS256", "EdDSA"])]
    pub alg: String,
    /// The key id written in the token header and the JWKS.
    #[arg(long, default_value = "dev-1")]
    pub kid: String,
}

/// Runs `topicguard dev`.
pub fn run(args: &DevArgs, out: Out) -> Exit {
    let result = match &args.command {
        DevCommand::Pki(pki) => match &pki.policy {
            Some(policy) => write_policy_pki(pki, policy),
            None => write_pki(pki),
        },
        DevCommand::Token(token) => match (&token.policy, &token.identity) {
            (Some(policy), Some(identity)) => write_policy_token(token, policy, identity),
            _ => write_token(token),
        },
    };
    match result {
        Ok(report) => {
            if out.is_json() {
                out.json(&report);
            } else {
                out.print(&text_report(&report));
            }
            Exit::Ok
        }
        Err(error) => out.error(&error),
    }
}

fn dev_error(error: DevError) -> CliError {
    CliError::Usage(format!("dev: {error}"))
}

fn create_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|cause| CliError::Write {
        path: dir.display().to_string(),
        cause,
    })
}

fn write_all<N: AsRef<str>>(dir: &Path, files: &[(N, String)]) -> Result<Vec<String>, CliError> {
    create_dir(dir)?;
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dev::write_file(dir, name.as_ref(), text).map_err(dev_error)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

fn write_pki(args: &PkiArgs) -> Result<Value, CliError> {
    let now = dev::unix_now();
    let spec = GatewaySpec {
        pid: args.pid.clone(),
        aid: args.aid.clone(),
        iid: args.iid.clone(),
        mac: args.mac.clone(),
        ..GatewaySpec::default()
    };
    let ca = DevCa::new("topicguard development CA", now).map_err(dev_error)?;
    let (gateway, gateway_key) = ca
        .issue(&dev::gateway_params(&spec, 2, now))
        .map_err(dev_error)?;
    let (service, service_key) = ca
        .issue(&dev::service_params(&args.service, 3, now))
        .map_err(dev_error)?;
    let (server, server_key) = dev::server_params(4, now)
        .and_then(|params| ca.issue(&params))
        .map_err(dev_error)?;
    let crl = ca
        .crl(now.saturating_sub(60), now + 30 * 86_400, &[])
        .map_err(dev_error)?;
    let crl_pem = crl.pem().map_err(|e| dev_error(DevError::Rcgen(e)))?;
    let files = [
        ("ca.pem", marked_pem(&ca.cert.pem())),
        ("ca-key.pem", marked_pem(&ca.issuer.key().serialize_pem())),
        ("gateway.pem", marked_pem(&gateway.pem())),
        ("gateway-key.pem", marked_pem(&gateway_key.serialize_pem())),
        ("service.pem", marked_pem(&service.pem())),
        ("service-key.pem", marked_pem(&service_key.serialize_pem())),
        ("server.pem", marked_pem(&server.pem())),
        ("server-key.pem", marked_pem(&server_key.serialize_pem())),
        ("crl.pem", marked_pem(&crl_pem)),
        ("README.txt", format!("{DEV_NOTICE}\n")),
    ];
    let written = write_all(&args.out, &files)?;
    let dir = args.out.display();
    let client_id = format!("iot:{}_{}:adp:xhf:{}", spec.pid, spec.aid, spec.iid);
    Ok(json!({
        "notice": DEV_NOTICE,
        "files": written,
        "gateway_client_id": client_id,
        "try": format!(
            "topicguard decide --policy policies/xfinity.policy --cert {dir}/gateway.pem --trust devices={dir}/ca.pem --trust-crl devices={dir}/crl.pem publish c/iot/{}_{}/{client_id}/presence",
            spec.pid, spec.aid
        ),
    }))
}

fn load_policy(path: &Path) -> Result<Checked, CliError> {
    Ok(Policy::load(path)?.checked.as_ref().clone())
}

fn overrides(attrs: &[(String, String)]) -> BTreeMap<String, String> {
    attrs.iter().cloned().collect()
}

fn write_policy_pki(args: &PkiArgs, policy: &Path) -> Result<Value, CliError> {
    let checked = load_policy(policy)?;
    let now = dev::unix_now();
    let cas = PolicyCas::new(&checked, now).map_err(dev_error)?;
    let (files, identities) = policy_pki_files(&checked, &cas, &overrides(&args.attrs), now)?;
    let written = write_all(&args.out, &marked_files(files))?;
    let anchors = LabelAnchors::certificates(&args.out, &cas.labels())?;
    let dir = args.out.display();
    let report: Vec<Value> = identities
        .iter()
        .map(|(def, attrs)| {
            let certificate = args.out.join(format!("{}.pem", def.name));
            let verified = files::verify_certificate(
                &checked,
                &certificate,
                &anchors.files,
                rustls_pki_types::UnixTime::now(),
            );
            json!({
                "identity": def.name,
                "trust": def.trust_label(),
                "certificate": certificate.display().to_string(),
                "key": args.out.join(format!("{}-key.pem", def.name)).display().to_string(),
                "client_id": dev_policy::sample_client_id(def, attrs),
                "attributes": attrs,
                "binds": binds_as(verified.map(|v| v.identity.kind), &def.name),
            })
        })
        .collect();
    let flags = anchors.flags.join(" ");
    let first = identities.first().map(|(def, attrs)| {
        format!(
            "topicguard decide --policy {} --cert {dir}/{}.pem {flags} --client-id {} connect",
            policy.display(),
            def.name,
            dev_policy::sample_client_id(def, attrs)
        )
    });
    Ok(json!({
        "notice": DEV_NOTICE,
        "files": written,
        "identities": report,
        "policy": policy.display().to_string(),
        "serve_flags": format!("{flags} --cert {dir}/server.pem --key {dir}/server-key.pem"),
        "broker_ca": format!("{dir}/server-ca.pem"),
        "try": first,
    }))
}

/// A certificate identity and the attributes its development certificate carries.
type IssuedIdentity<'c> = (&'c IdentityDef, BTreeMap<String, String>);

/// Files to write, by name.
type NamedFiles = Vec<(String, String)>;

/// The files of `dev pki --policy`, by name: each label's CA, key and CRL, the broker's CA
/// and certificate, and a certificate and key per certificate identity.
fn policy_pki_files<'c>(
    checked: &'c Checked,
    cas: &PolicyCas,
    overrides: &BTreeMap<String, String>,
    now: u64,
) -> Result<(NamedFiles, Vec<IssuedIdentity<'c>>), CliError> {
    let mut files: NamedFiles = cas.files().map_err(dev_error)?;
    let broker_ca = DevCa::new("topicguard development broker CA", now).map_err(dev_error)?;
    let (server, server_key) = dev::server_params(2, now)
        .and_then(|params| broker_ca.issue(&params))
        .map_err(dev_error)?;
    files.push(("server-ca.pem".into(), broker_ca.cert.pem()));
    files.push(("server.pem".into(), server.pem()));
    files.push(("server-key.pem".into(), server_key.serialize_pem()));
    let mut identities = Vec::new();
    let certificate_identities = checked
        .identities
        .iter()
        .filter(|d| d.kind == IdentityKind::Certificate);
    for def in certificate_identities {
        let cert_file = format!("{}.pem", def.name);
        let key_file = format!("{}-key.pem", def.name);
        let taken = files
            .iter()
            .find(|(f, _)| *f == cert_file || *f == key_file);
        if let Some((taken, _)) = taken {
            return Err(CliError::Usage(format!(
                "dev pki: identity `{}` would overwrite {taken}; rename it",
                def.name
            )));
        }
        let attrs = dev_policy::sample_attributes(def, overrides).map_err(dev_error)?;
        let leaf = cas.issue(def, &attrs).map_err(dev_error)?;
        files.push((cert_file, leaf.chain_pem));
        files.push((key_file, leaf.key_pem));
        identities.push((def, attrs));
    }
    Ok((files, identities))
}

/// Every file marked development only, and the README.
fn marked_files(files: NamedFiles) -> NamedFiles {
    files
        .into_iter()
        .map(|(name, text)| (name, marked_pem(&text)))
        .chain([("README.txt".to_string(), format!("{DEV_NOTICE}\n"))])
        .collect()
}

/// Anchor files written for some labels: the flags that name them, and the same files
/// loaded the way `decide` loads them.
struct LabelAnchors {
    flags: Vec<String>,
    files: TrustFiles,
}

impl LabelAnchors {
    /// `--trust LABEL=CA --trust-crl LABEL=CRL` per label (`--ca`/`--crl` for none).
    fn certificates(dir: &Path, labels: &[Option<&str>]) -> Result<LabelAnchors, CliError> {
        let mut anchors = LabelAnchors {
            flags: Vec::new(),
            files: TrustFiles::default(),
        };
        for label in labels {
            let ca = dir.join(dev_policy::ca_file(*label));
            let crl = dir.join(dev_policy::crl_file(*label));
            let (shown_ca, shown_crl) = (ca.display(), crl.display());
            match label {
                Some(label) => {
                    anchors.flags.push(format!("--trust {label}={shown_ca}"));
                    anchors
                        .flags
                        .push(format!("--trust-crl {label}={shown_crl}"));
                    anchors.files.add_trust(label, &ca).map_err(anchor_error)?;
                    anchors.files.add_crl(label, &crl).map_err(anchor_error)?;
                }
                None => {
                    anchors
                        .flags
                        .push(format!("--ca {shown_ca} --crl {shown_crl}"));
                    anchors.files.default.cas.push(ca.clone());
                    anchors.files.default.crls.push(crl.clone());
                }
            }
        }
        Ok(anchors)
    }

    /// `--trust LABEL=JWKS` (`--jwks JWKS` without a label).
    fn jwks(dir: &Path, label: Option<&str>) -> Result<LabelAnchors, CliError> {
        let jwks = dir.join(dev_policy::jwks_file(label));
        let mut files = TrustFiles::default();
        let flag = match label {
            Some(label) => {
                files.add_trust(label, &jwks).map_err(anchor_error)?;
                format!("--trust {label}={}", jwks.display())
            }
            None => {
                files.default.jwks = Some(jwks.clone());
                format!("--jwks {}", jwks.display())
            }
        };
        Ok(LabelAnchors {
            flags: vec![flag],
            files,
        })
    }
}

fn anchor_error(error: topicguard::identity::anchors::AnchorError) -> CliError {
    CliError::Usage(format!("dev: {error}"))
}

/// `true` when the credential bound as `expected`, else why not.
fn binds_as<E: std::fmt::Display>(result: Result<String, E>, expected: &str) -> Value {
    match result {
        Ok(kind) if kind == expected => json!(true),
        Ok(kind) => json!(format!("binds as `{kind}`, not `{expected}`")),
        Err(e) => json!(e.to_string()),
    }
}

fn jwt_identity<'c>(checked: &'c Checked, name: &str) -> Result<&'c IdentityDef, CliError> {
    match checked.identity(name) {
        Some((_, def)) if def.kind == IdentityKind::Jwt => Ok(def),
        Some((_, def)) => Err(CliError::Usage(format!(
            "dev token: identity `{name}` is a {} identity, not a jwt one",
            def.kind
        ))),
        None => Err(CliError::Usage(format!(
            "dev token: the policy defines no identity `{name}`"
        ))),
    }
}

fn write_policy_token(args: &TokenArgs, policy: &Path, identity: &str) -> Result<Value, CliError> {
    let checked = load_policy(policy)?;
    let def = jwt_identity(&checked, identity)?;
    let now = dev::unix_now();
    let attrs = dev_policy::sample_attributes(def, &BTreeMap::new()).map_err(dev_error)?;
    let mut claims = dev_policy::jwt_claims(def, &attrs, now).map_err(dev_error)?;
    override_claims(&mut claims, &args.claims)?;
    create_dir(&args.out)?;
    let label = def.trust_label();
    let (signer, fresh) = dev_policy::label_signer(&args.out, label, def).map_err(dev_error)?;
    let token = signer.sign(&claims).map_err(dev_error)?;
    let jwks_name = dev_policy::jwks_file(label);
    let mut files = vec![(format!("{identity}.jwt"), format!("{token}\n"))];
    if fresh {
        let jwks = serde_json::to_string_pretty(&dev::jwks(&[&signer]))
            .map_err(|e| CliError::Usage(format!("dev: {e}")))?;
        files.push((jwks_name.clone(), format!("{jwks}\n")));
        files.push((
            dev_policy::jwt_key_file(label),
            marked_pem(&signer.private_pem),
        ));
    }
    files.push(("README.txt".to_string(), format!("{DEV_NOTICE}\n")));
    let written = write_all(&args.out, &files)?;
    let anchors = LabelAnchors::jwks(&args.out, label)?;
    let flag = anchors.flags.join(" ");
    let verified = files::verify_jwt(&checked, &token, &anchors.files);
    let client_id = match &verified {
        Ok(v) => v
            .client_id
            .clone()
            .unwrap_or_else(|| dev_policy::sample_client_id(def, &v.identity.attrs)),
        Err(_) => dev_policy::sample_client_id(def, &attrs),
    };
    let binds = binds_as(verified.map(|v| v.identity.kind), identity);
    let token_path = args
        .out
        .join(format!("{identity}.jwt"))
        .display()
        .to_string();
    Ok(json!({
        "notice": DEV_NOTICE,
        "files": written,
        "claims": claims,
        "client_id": client_id,
        "binds": binds,
        "try": format!(
            "topicguard decide --policy {} --jwt {token_path} {flag} --client-id {client_id} connect",
            policy.display()
        ),
    }))
}

fn override_claims(claims: &mut Value, overrides: &[(String, String)]) -> Result<(), CliError> {
    for (name, value) in overrides {
        claims[name.as_str()] = match name.as_str() {
            "exp" | "nbf" | "iat" => json!(value.parse::<u64>().map_err(|_| {
                CliError::Usage(format!(
                    "--claim {name}={value}: `{name}` takes Unix seconds"
                ))
            })?),
            _ => json!(value),
        };
    }
    Ok(())
}

fn token_claims(args: &TokenArgs, now: u64) -> Result<Value, CliError> {
    let mut claims = dev::default_claims(now, "J1");
    override_claims(&mut claims, &args.claims)?;
    Ok(claims)
}

fn write_token(args: &TokenArgs) -> Result<Value, CliError> {
    let alg = DevAlg::parse(&args.alg)
        .ok_or_else(|| CliError::Usage(format!("unknown algorithm `{}`", args.alg)))?;
    let claims = token_claims(args, dev::unix_now())?;
    let signer = DevSigner::generate(alg, &args.kid).map_err(dev_error)?;
    let token = signer.sign(&claims).map_err(dev_error)?;
    let jwks = serde_json::to_string_pretty(&dev::jwks(&[&signer]))
        .map_err(|e| CliError::Usage(format!("dev: {e}")))?;
    let files = [
        ("token.jwt", format!("{token}\n")),
        ("jwks.json", format!("{jwks}\n")),
        ("README.txt", format!("{DEV_NOTICE}\n")),
    ];
    let written = write_all(&args.out, &files)?;
    let dir = args.out.display();
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("PID")
            .to_string()
    };
    let client_id = format!("xfi:{}_{}:clt:{}", text("pid"), text("aid"), text("jti"));
    Ok(json!({
        "notice": DEV_NOTICE,
        "files": written,
        "claims": claims,
        "client_id": client_id,
        "try": format!(
            "topicguard decide --policy policies/xfinity.policy --jwt {dir}/token.jwt --trust idp={dir}/jwks.json publish c/xfi/{}_{}/lights/{client_id}/r1",
            text("pid"), text("aid")
        ),
    }))
}

fn text_report(report: &Value) -> String {
    let mut out = format!("{DEV_NOTICE}\n");
    for file in report["files"].as_array().into_iter().flatten() {
        out.push_str(&format!("wrote {}\n", file.as_str().unwrap_or("")));
    }
    for identity in report["identities"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{}: {} (client id {}){}\n",
            identity["identity"].as_str().unwrap_or(""),
            identity["certificate"].as_str().unwrap_or(""),
            identity["client_id"].as_str().unwrap_or(""),
            binds_text(&identity["binds"]),
        ));
    }
    if report["identities"].is_null() && !report["binds"].is_null() {
        out.push_str(&format!(
            "client id {}{}\n",
            report["client_id"].as_str().unwrap_or(""),
            binds_text(&report["binds"])
        ));
    }
    if let Some(flags) = report["serve_flags"].as_str() {
        out.push_str(&format!(
            "serve with:\n  topicguard serve --policy {} --listen tls://127.0.0.1:8883 {flags}\nclients verify the broker with {}\n",
            report["policy"].as_str().unwrap_or("POLICY"),
            report["broker_ca"].as_str().unwrap_or("")
        ));
    }
    if let Some(try_it) = report["try"].as_str() {
        out.push_str(&format!("try:\n  {try_it}\n"));
    }
    out
}

fn binds_text(binds: &Value) -> String {
    match binds {
        Value::Bool(true) => ", binds".to_string(),
        Value::String(why) => format!(", DOES NOT BIND: {why}"),
        _ => String::new(),
    }
}
