//! `topicguard gateway`: runs the residential gateway runtime ([`topicguard::runtime::gateway`])
//! until Ctrl-C, printing each step. Also holds the connection options every runtime
//! command shares ([`ConnectArgs`]). This module must never hold runtime logic; it parses
//! options and starts the runtime.

use super::output::{CliError, Exit, Out};
use bytes::Bytes;
use std::path::PathBuf;
use std::time::Duration;
use topicguard::runtime::Backoff;
use topicguard::runtime::devices::Kind;
use topicguard::runtime::gateway::{self, GatewayConfig};
use topicguard::runtime::tls::TlsClient;

/// How a runtime reaches and authenticates to the broker.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The broker, `host:port` (TCP, or TLS with --ca).
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub broker: String,
    /// MQTT user name (for brokers whose authenticator reads it, e.g. test setups).
    #[arg(long)]
    pub username: Option<String>,
    /// A JWT, sent as the CONNECT password.
    #[arg(long)]
    pub token: Option<String>,
    /// Client certificate (PEM), presented in the TLS handshake (needs --key and --ca).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Client key (PEM); see --cert.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// CA certificate to verify the broker (PEM); turns TLS on.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Smallest reconnect delay, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub min_delay_ms: u64,
    /// Largest reconnect delay, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub max_delay_ms: u64,
    /// Consecutive failed connection attempts before giving up (default: never).
    #[arg(long)]
    pub max_attempts: Option<u32>,
}

impl ConnectArgs {
    pub fn backoff(&self) -> Backoff {
        Backoff {
            min: Duration::from_millis(self.min_delay_ms),
            max: Duration::from_millis(self.max_delay_ms.max(self.min_delay_ms)),
            max_attempts: self.max_attempts,
        }
    }

    pub fn password(&self) -> Option<Bytes> {
        self.token.clone().map(Bytes::from)
    }

    /// The TLS setup: `--ca` turns TLS on; `--cert` and `--key` (together) add a client
    /// certificate.
    pub fn tls(&self) -> Result<Option<TlsClient>, String> {
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            _ => return Err("--cert and --key go together".into()),
        };
        match (&self.ca, identity) {
            (Some(ca), identity) => TlsClient::new(ca, identity)
                .map(Some)
                .map_err(|e| e.to_string()),
            (None, Some(_)) => Err("--cert/--key need --ca to verify the broker".into()),
            (None, None) => Ok(None),
        }
    }
}

/// Runs `work` on a fresh tokio runtime (a runtime that cannot start is reported on `out`).
pub fn block_on<F: std::future::Future<Output = Exit>>(out: Out, work: F) -> Exit {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(work),
        Err(e) => out.fail(
            &CliError::Runtime(format!("cannot start the async runtime: {e}")),
            Exit::Failure,
        ),
    }
}

/// Arguments of `topicguard gateway`.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Partner id (default: the certificate's SAN DirName O, read as the policy reads it).
    #[arg(long)]
    pub pid: Option<String>,
    /// Account id (default: the certificate's SAN DirName CN).
    #[arg(long)]
    pub aid: Option<String>,
    /// Installation id, a UUID (default: the fourth part of the certificate's Subject UID).
    #[arg(long)]
    pub iid: Option<String>,
    /// The policy whose `gateway` identity block says how to read --cert.
    #[arg(long, default_value = "policies/xfinity.policy")]
    pub policy: PathBuf,
    /// The service its device inventory is sent to.
    #[arg(long, default_value = "lights")]
    pub service: String,
}

/// Runs `topicguard gateway`.
pub fn run(args: &GatewayArgs, out: Out) -> Exit {
    let tls = match args.connect.tls() {
        Ok(tls) => tls,
        Err(message) => return out.error(&CliError::Usage(message)),
    };
    let (pid, aid, iid) = match principal(args) {
        Ok(principal) => principal,
        Err(message) => return out.error(&CliError::Usage(message)),
    };
    let config = GatewayConfig {
        broker: args.connect.broker.clone(),
        pid,
        aid,
        iid,
        username: args.connect.username.clone(),
        password: args.connect.password(),
        tls,
        devices: Kind::all().to_vec(),
        service: args.service.clone(),
        backoff: args.connect.backoff(),
    };
    block_on(out, async move {
        let gateway = gateway::start(config, out.log());
        let _ = tokio::signal::ctrl_c().await;
        gateway.stop().await;
        Exit::Ok
    })
}

/// pid, aid and iid: from the flags, else from the certificate as the policy reads it.
fn principal(args: &GatewayArgs) -> Result<(String, String, String), String> {
    if let (Some(pid), Some(aid), Some(iid)) = (&args.pid, &args.aid, &args.iid) {
        return Ok((pid.clone(), aid.clone(), iid.clone()));
    }
    let (Some(cert), Some(ca)) = (&args.connect.cert, &args.connect.ca) else {
        return Err(
            "give --pid, --aid and --iid, or --cert and --ca to read them from the certificate"
                .into(),
        );
    };
    let attrs = gateway::attributes_from_certificate(&args.policy, "gateway", cert, ca)
        .map_err(|e| e.to_string())?;
    let pick = |flag: &Option<String>, name: &str| {
        flag.clone()
            .or_else(|| attrs.get(name).cloned())
            .ok_or_else(|| format!("{}: the certificate gives no `{name}`", cert.display()))
    };
    Ok((
        pick(&args.pid, "pid")?,
        pick(&args.aid, "aid")?,
        pick(&args.iid, "iid")?,
    ))
}
