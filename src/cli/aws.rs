//! `topicguard aws policy` and `topicguard aws authorizer`: the AWS IoT Core target.
//!
//! `policy` prints, on stdout, the JSON array of policy documents granting one identity
//! (asserted with `--identity/--attr`, or verified from `--jwt`/`--cert`, exactly as
//! `decide` takes it) what topicguard grants it; notes on what AWS could not express go to
//! stderr. `authorizer` verifies a JWT and prints the custom authorizer response; a
//! credential or identity that is refused gets the refusing response and exit code 1, so
//! a Lambda handler can return stdout as it is for both. All the work is in
//! [`topicguard::aws`]; this module reads arguments and prints.

use super::identity_args::{IdentityArgs, parse_mapping};
use super::output::{CliError, Exit, Out};
use std::path::{Path, PathBuf};
use topicguard::aws::authorizer::{self, AuthorizerResponse};
use topicguard::aws::{RenderError, Rendered, Target, render};
use topicguard::decide::Engine;
use topicguard::identity::anchors::{AnchorFiles, TrustFiles};
use topicguard::identity::files::{self, FileCredentialError};
use topicguard::policy::Policy;

/// Arguments of `topicguard aws`.
#[derive(Debug, clap::Args)]
pub struct AwsArgs {
    #[command(subcommand)]
    pub command: AwsCommand,
}

/// The AWS IoT Core commands.
#[derive(Debug, clap::Subcommand)]
pub enum AwsCommand {
    /// Print, as a JSON array, the AWS IoT policy documents that grant one identity what
    /// topicguard grants it: iot:Connect on its client id, iot:Publish, iot:RetainPublish,
    /// iot:Subscribe and iot:Receive, deny rules carried over. Never more than topicguard
    /// allows: where AWS cannot express a rule exactly, less, with a note on stderr.
    ///
    /// Exits 0 when rendered, 1 when the identity is refused or may not connect, 2 on a
    /// usage or policy error, or with --exact when something would be narrowed.
    Policy(PolicyArgs),
    /// Verify a JWT and print the AWS IoT custom authorizer response: isAuthenticated,
    /// principalId, policyDocuments, disconnectAfterInSeconds (the token's expiry) and
    /// refreshAfterInSeconds.
    ///
    /// Exits 0 when authenticated; 1 with the refusing response (isAuthenticated false,
    /// one document denying everything) when the token, identity or client id is refused;
    /// 2 on a usage, policy or key-file error, with nothing on stdout.
    Authorizer(AuthorizerArgs),
}

/// Where the ARNs point.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// The AWS region of the ARNs, e.g. us-east-1. Default: $AWS_REGION (set in Lambda).
    /// A wildcard is refused: in an ARN it would also match across the resource's colons.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// The 12-digit AWS account id of the ARNs. Default: $AWS_ACCOUNT_ID. No wildcard.
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,

    /// The ARN partition: aws, aws-cn or aws-us-gov.
    #[arg(long, value_name = "NAME", default_value = "aws")]
    pub partition: String,
}

impl TargetArgs {
    fn target(&self) -> Result<Target, CliError> {
        let from_env = |given: &Option<String>, var: &str, what: &str| {
            given
                .clone()
                .or_else(|| std::env::var(var).ok().filter(|v| !v.is_empty()))
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "give --{what} (or set ${var}): the ARNs name one {what}, never a wildcard"
                    ))
                })
        };
        let region = from_env(&self.region, "AWS_REGION", "region")?;
        let account = from_env(&self.account, "AWS_ACCOUNT_ID", "account")?;
        Target::new(&self.partition, &region, &account).map_err(|e| CliError::Usage(e.to_string()))
    }
}

/// Arguments of `topicguard aws policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// The policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,

    #[command(flatten)]
    pub identity: IdentityArgs,

    #[command(flatten)]
    pub target: TargetArgs,

    /// Fail (exit 2, nothing on stdout) instead of printing a narrowed policy.
    #[arg(long)]
    pub exact: bool,
}

/// Arguments of `topicguard aws authorizer`.
#[derive(Debug, clap::Args)]
pub struct AuthorizerArgs {
    /// The policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,

    /// The JWT the client presented (the MQTT password, decoded from the event's base64),
    /// or `-` to read it from standard input (keeps it out of the process list).
    #[arg(long, value_name = "JWT|-")]
    pub token: String,

    /// The keys of the jwt identities with `trust "LABEL"`: LABEL=JWKS. Repeat for each
    /// label.
    #[arg(long = "trust", value_name = "LABEL=FILE", value_parser = parse_mapping)]
    pub trust: Vec<(String, PathBuf)>,

    /// The JWKS of the jwt identities that have no `trust` label.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,

    /// The client id of the CONNECT (the event's protocolData.mqtt.clientId). Default: the
    /// identity's client template rendered with the token's claims.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    #[command(flatten)]
    pub target: TargetArgs,

    /// refreshAfterInSeconds: how often AWS asks again (picking up a changed policy),
    /// 300 to 86400, never past the disconnection.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub refresh_after: u64,
}

/// Runs `topicguard aws ...`.
pub fn run(args: &AwsArgs, out: Out) -> Exit {
    let result = match &args.command {
        AwsCommand::Policy(a) => policy(a, out),
        AwsCommand::Authorizer(a) => authorize(a, out),
    };
    result.unwrap_or_else(|error| out.error(&error))
}

fn policy(args: &PolicyArgs, out: Out) -> Result<Exit, CliError> {
    let target = args.target.target()?;
    let policy = Policy::load(&args.policy)?;
    let engine = Engine::new(&policy.checked)?;
    let (identity, client_id) = args.identity.resolve(&policy.checked)?;
    let session = engine.bind(&identity, &client_id);
    let rendered = match render(&engine, &session, &target) {
        Ok(r) => r,
        Err(e @ (RenderError::Rejected(_) | RenderError::ConnectDenied(_))) => {
            if out.is_json() {
                out.json(&serde_json::json!({ "refused": e.to_string(), "documents": [] }));
            } else {
                out.eprint(&format!("refused: {e}\n"));
            }
            return Ok(Exit::Failure);
        }
        Err(e) => return Err(CliError::Usage(e.to_string())),
    };
    print_notes(&engine, &rendered, out);
    if args.exact && !rendered.is_exact() {
        return Err(CliError::Usage(
            "the policy cannot be rendered exactly for this identity (see the notes); --exact refuses a narrowed policy".to_string(),
        ));
    }
    if out.is_json() {
        out.json(&serde_json::json!({
            "documents": rendered.documents,
            "exact": rendered.is_exact(),
            "notes": notes_json(&engine, &rendered),
        }));
    } else {
        out.foreign_json(&rendered.documents);
    }
    Ok(Exit::Ok)
}

/// The notes as JSON: the action, the rule (file:line and text) if one, the note.
fn notes_json(engine: &Engine, rendered: &Rendered) -> serde_json::Value {
    let notes: Vec<_> = rendered
        .notes
        .iter()
        .map(|note| {
            let rule = note.rule.map(|id| {
                let rule = engine.checked().rule(id);
                serde_json::json!({ "location": rule.loc.to_string(), "text": rule.text() })
            });
            serde_json::json!({ "action": note.action, "rule": rule, "text": note.text })
        })
        .collect();
    notes.into()
}

fn print_notes(engine: &Engine, rendered: &Rendered, out: Out) {
    if out.is_json() {
        return;
    }
    let mut text = String::new();
    for note in &rendered.notes {
        let rule = note
            .rule
            .map(|id| {
                let rule = engine.checked().rule(id);
                format!("{} `{}`: ", rule.loc, rule.text())
            })
            .unwrap_or_default();
        text.push_str(&format!("note: {}: {rule}{}\n", note.action, note.text));
    }
    out.eprint(&text);
}

fn authorize(args: &AuthorizerArgs, out: Out) -> Result<Exit, CliError> {
    let target = args.target.target()?;
    let policy = Policy::load(&args.policy)?;
    let engine = Engine::new(&policy.checked)?;
    let token = if args.token == "-" {
        files::read_token(Path::new("-")).map_err(|e| CliError::Usage(e.to_string()))?
    } else {
        args.token.trim().to_string()
    };
    let verified = match files::verify_jwt(&policy.checked, &token, &args.trust_files()?) {
        Ok(v) => v,
        Err(rejected @ FileCredentialError::Rejected { .. }) => {
            return Ok(refuse(out, &rejected.to_string()));
        }
        Err(other) => return Err(CliError::Usage(other.to_string())),
    };
    let Some(client_id) = args.client_id.clone().or(verified.client_id) else {
        return Ok(refuse(
            out,
            "the identity's client template captures part of the client id: pass --client-id",
        ));
    };
    let session = engine.bind(&verified.identity, &client_id);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match authorizer::respond(
        &engine,
        &session,
        &verified.identity,
        &target,
        now,
        args.refresh_after,
    ) {
        Ok((response, rendered)) => {
            print_notes(&engine, &rendered, out);
            if out.is_json() {
                out.json(&serde_json::json!({
                    "response": response,
                    "notes": notes_json(&engine, &rendered),
                }));
            } else {
                out.foreign_json(&response);
            }
            Ok(Exit::Ok)
        }
        Err(refusal) => Ok(refuse(out, &refusal.to_string())),
    }
}

impl AuthorizerArgs {
    /// The keys the options name: `--trust` labels and the default `--jwks`.
    fn trust_files(&self) -> Result<TrustFiles, CliError> {
        let default = AnchorFiles {
            jwks: self.jwks.clone(),
            cas: Vec::new(),
            crls: Vec::new(),
        };
        let files = TrustFiles::from_flags(default, &self.trust, &[])
            .map_err(|e| CliError::Usage(e.to_string()))?;
        if files.is_empty() {
            return Err(CliError::Usage(
                "the token needs its keys: --trust LABEL=JWKS for identities with `trust \"LABEL\"`, --jwks for those without".to_string(),
            ));
        }
        Ok(files)
    }
}

/// Prints the refusing response on stdout and the reason on stderr (never the token).
fn refuse(out: Out, reason: &str) -> Exit {
    if out.is_json() {
        out.json(&serde_json::json!({
            "response": AuthorizerResponse::refused(),
            "refused": reason,
        }));
    } else {
        out.eprint(&format!("refused: {reason}\n"));
        out.foreign_json(&AuthorizerResponse::refused());
    }
    Exit::Failure
}
