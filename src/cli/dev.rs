//! `topicguard dev pki|token`: development-only credentials for trying topicguard end to end.
//!
//! `dev pki` writes a test CA, a gateway certificate in the seed paper's layout, a service
//! certificate, a broker certificate for localhost, their unprotected keys and an empty
//! CRL; `dev token` signs a JWT with a fresh key and writes the token and the matching JWKS. Both say "development only" in every file
//! and in their output. The generation itself is [`crate::identity::dev`]; this module only
//! parses options, writes files and reports. It must never be used for real credentials.

use super::identity_args::parse_attr;
use super::output::{CliError, Exit, Out};
use crate::identity::dev::{
    self, DEV_NOTICE, DevAlg, DevCa, DevError, DevSigner, GatewaySpec, marked_pem,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Arguments of `topicguard dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    #[command(subcommand)]
    pub command: DevCommand,
}

/// What to generate.
#[derive(Debug, clap::Subcommand)]
pub enum DevCommand {
    /// Write a development CA (ca.pem), a gateway certificate (gateway.pem: SAN DirName
    /// O=PID, CN=AID; Subject UID Model:Serial:AID:IID; SAN URI urn:dev:mac:MAC; clientAuth),
    /// a service certificate (service.pem: Subject CN = service id), a broker certificate
    /// (server.pem: SAN DNS localhost, IP 127.0.0.1 and ::1; serverAuth) for
    /// `topicguard serve --cert server.pem --key server-key.pem`, their keys and a current
    /// empty CRL (crl.pem). Development only.
    Pki(PkiArgs),
    /// Sign a development JWT (token.jwt) with a freshly generated key and write the
    /// matching JWKS (jwks.json). Claims default to what policies/xfinity.policy expects
    /// (iss, aud, exp in one hour, pid=P1, aid=A1, jti=J1). Development only.
    Token(TokenArgs),
}

/// Arguments of `topicguard dev pki`.
#[derive(Debug, clap::Args)]
pub struct PkiArgs {
    /// Directory to write into (created if missing; existing files are overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
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
        DevCommand::Pki(pki) => write_pki(pki),
        DevCommand::Token(token) => write_token(token),
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

fn write_all(dir: &Path, files: &[(&str, String)]) -> Result<Vec<String>, CliError> {
    create_dir(dir)?;
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dev::write_file(dir, name, text).map_err(dev_error)?;
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
            "topicguard decide --policy policies/xfinity.policy --cert {dir}/gateway.pem --ca {dir}/ca.pem --crl {dir}/crl.pem publish c/iot/{}_{}/{client_id}/presence",
            spec.pid, spec.aid
        ),
    }))
}

fn token_claims(args: &TokenArgs, now: u64) -> Result<Value, CliError> {
    let mut claims = dev::default_claims(now, "J1");
    for (name, value) in &args.claims {
        claims[name.as_str()] = match name.as_str() {
            "exp" | "nbf" | "iat" => json!(value.parse::<u64>().map_err(|_| {
                CliError::Usage(format!(
                    "--claim {name}={value}: `{name}` takes Unix seconds"
                ))
            })?),
            _ => json!(value),
        };
    }
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
            "topicguard decide --policy policies/xfinity.policy --jwt {dir}/token.jwt --jwks {dir}/jwks.json publish c/xfi/{}_{}/lights/{client_id}/r1",
            text("pid"), text("aid")
        ),
    }))
}

fn text_report(report: &Value) -> String {
    let mut out = format!("{DEV_NOTICE}\n");
    for file in report["files"].as_array().into_iter().flatten() {
        out.push_str(&format!("wrote {}\n", file.as_str().unwrap_or("")));
    }
    if let Some(try_it) = report["try"].as_str() {
        out.push_str(&format!("try:\n  {try_it}\n"));
    }
    out
}
