//! `topicguard authz`: the HTTP authorization service for RabbitMQ, EMQX and mosquitto-go-auth.
//!
//! Loads and compiles the policy, builds the credential verifier from the trust options
//! ([`CredentialArgs`], the one place they turn into a [`CredentialConfig`]), binds the
//! listener, prints `listening on ADDR` on stdout (so `--listen 127.0.0.1:0` can be used
//! by scripts), and serves ([`topicguard::authz::http`]) until Ctrl-C / SIGTERM, reloading the
//! policy on SIGHUP and when the file changes. Any configuration problem is reported
//! before the socket is opened. This module must never answer a request itself.

use super::identity_args::TrustLabelArgs;
use super::output::{CliError, Exit, Out};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use topicguard::authz::reload::{PolicyWatcher, warn_uncovered};
use topicguard::authz::{Authz, DEFAULT_MAX_SESSIONS, http};
use topicguard::identity::anchors::{AnchorError, AnchorFiles};
use topicguard::identity::select::CredentialConfig;
use topicguard::policy::Policy;

/// Arguments of `topicguard authz`.
#[derive(Debug, clap::Args)]
pub struct AuthzArgs {
    /// The policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Address to serve HTTP on (loopback next to the broker node), e.g. 127.0.0.1:8089;
    /// port 0 picks a free port (printed on stdout).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: String,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// The most sessions (authenticated connections) held; past it, the one whose
    /// credential expires soonest is evicted.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SESSIONS)]
    pub max_sessions: usize,
    /// How often the policy file's modification time is checked, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub policy_poll_ms: u64,
}

/// Keys and trust anchors that verify client credentials.
#[derive(Debug, clap::Args)]
pub struct CredentialArgs {
    #[command(flatten)]
    pub labels: TrustLabelArgs,
    /// JWKS file with the keys that sign the JWTs (the CONNECT password) of the jwt
    /// identities without a `trust` label.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// CA certificate (PEM) for certificate identities without a `trust` label; repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// CRL (PEM) for the --ca certificates; repeatable.
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
}

impl CredentialArgs {
    /// The verifier configuration these options describe: every file read and checked for
    /// its role ([`TrustFiles::load`]).
    pub fn credential_config(&self) -> Result<CredentialConfig, CliError> {
        let usage = |e: AnchorError| CliError::Usage(e.to_string());
        let default = AnchorFiles {
            jwks: self.jwks.clone(),
            cas: self.ca.clone(),
            crls: self.crl.clone(),
        };
        let trust = self.labels.files(default).map_err(usage)?;
        trust.load().map_err(usage)
    }
}

/// Runs `topicguard authz`.
pub fn run(args: &AuthzArgs, out: Out) -> Exit {
    out.init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return out.error(&CliError::Usage(format!("cannot start the runtime: {e}"))),
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => Exit::Ok,
        Err(error) => out.error(&error),
    }
}

async fn serve(args: &AuthzArgs) -> Result<(), CliError> {
    let policy = Policy::load(&args.policy)?;
    let credentials = args.credentials.credential_config()?;
    let authz = Authz::new(&policy, credentials, args.max_sessions)
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.policy.display())))?;
    warn_uncovered(&authz.loaded().coverage);
    let authz = Arc::new(authz);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {address}");
    let _ = stdout.flush();
    tracing::info!(%address, policy = %args.policy.display(), "topicguard authz serving");
    let stop = CancellationToken::new();
    let watcher = PolicyWatcher::new(&args.policy, authz.clone());
    tokio::spawn(watcher.run(Duration::from_millis(args.policy_poll_ms), stop.clone()));
    tokio::select! {
        _ = http::serve(listener, authz, stop.clone()) => {}
        _ = termination() => {}
    }
    stop.cancel();
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
