//! `topicguard serve`: runs the reference broker from `topicguard.toml` (and flags).
//!
//! Loads the configuration ([`super::serve_config`]), lets flags override it, loads and
//! compiles the policy, builds the credential verifier (the anchors of each trust label and
//! the default ones: JWKS, CA, CRLs), opens the durable store (`--data-dir`, restoring what
//! it holds), the TLS acceptors and the listeners, then serves until Ctrl-C / SIGTERM,
//! reloading the policy on SIGHUP and when the file changes
//! ([`topicguard::broker::reload`]). Logs go to stderr (`RUST_LOG` filters, default `info`). Any configuration problem is reported before a socket is opened. This
//! module must never handle a connection itself.

use super::output::{CliError, Exit, Out};
use super::serve_config::{ListenerConfig, ListenerProtocol, ServeConfig};
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use topicguard::broker::BrokerConfig;
use topicguard::broker::auth::IdentityAuthenticator;
use topicguard::broker::listener::tls::{self, ClientCertificates};
use topicguard::broker::listener::{Listener, Protocol, serve_listeners};
use topicguard::broker::reload::PolicyReloader;
use topicguard::broker::state::Broker;
use topicguard::broker::store::Store;
use topicguard::decide::Engine;
use topicguard::identity::anchors::{AnchorFiles, TrustFiles};
use topicguard::identity::select::CredentialConfig;
use topicguard::identity::x509::TrustStore;
use topicguard::policy::Policy;

/// Arguments of `topicguard serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (see topicguard.example.toml). Without it, flags only.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The policy file (overrides `policy` in the configuration).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Listen here instead of the configured listeners: `tcp://HOST:PORT`, `tls://`,
    /// `ws://`, `wss://`, or a bare HOST:PORT (tcp). Repeat for several.
    #[arg(long, value_name = "URL")]
    pub listen: Vec<String>,
    /// Client certificates on tls/wss listeners given with --listen: none, optional, required.
    #[arg(long, value_name = "MODE", default_value = "optional", value_parser = ["none", "optional", "required"])]
    pub client_certificates: String,
    /// JWKS file for the jwt identities without a `trust` label (overrides [identity] jwks).
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// CA certificate (PEM) for the certificate identities without a `trust` label
    /// (overrides [identity] ca; repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// CRL (PEM) for the --ca certificates (overrides [identity] crl; repeatable).
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    #[command(flatten)]
    pub labels: super::identity_args::TrustLabelArgs,
    /// The server's certificate chain (PEM) for tls/wss (overrides [tls] certificate).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The server's private key (PEM) for tls/wss (overrides [tls] key).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Persist device shadows here, one JSON file per thing, read back after a restart
    /// (overrides [shadows] dir; default: in memory only). Not with --data-dir, which keeps
    /// shadows in its store.
    #[arg(long, value_name = "DIR")]
    pub shadow_dir: Option<PathBuf>,
    /// Keep persistent sessions, their queued messages, retained messages and shadows in a
    /// store in this directory (DIR/topicguard.redb), restored at start; acknowledgements
    /// wait until what they acknowledge is on disk (overrides [storage] dir; default: in
    /// memory only).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Runs `topicguard serve`.
pub fn run(args: &ServeArgs, out: Out) -> Exit {
    out.init_logging();
    let result = settings(args).and_then(|(config, trust)| {
        let runtime = tokio::runtime::Runtime::new()
            .map_err(|e| CliError::Usage(format!("cannot start the runtime: {e}")))?;
        runtime.block_on(serve(config, trust))
    });
    match result {
        Ok(()) => Exit::Ok,
        Err(error) => out.error(&error),
    }
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// The configuration file with the flags applied, and its anchor files.
fn settings(args: &ServeArgs) -> Result<(ServeConfig, TrustFiles), CliError> {
    let mut config = match &args.config {
        Some(path) => ServeConfig::load(path).map_err(usage)?,
        None => ServeConfig::default(),
    };
    if args.policy.is_some() {
        config.policy.clone_from(&args.policy);
    }
    if !args.listen.is_empty() {
        config.listeners = listen_flags(args)?;
    }
    if args.jwks.is_some() {
        config.identity.jwks.clone_from(&args.jwks);
    }
    if !args.ca.is_empty() {
        config.identity.ca.clone_from(&args.ca);
    }
    if !args.crl.is_empty() {
        config.identity.crl.clone_from(&args.crl);
    }
    if args.cert.is_some() {
        config.tls.certificate.clone_from(&args.cert);
    }
    if args.key.is_some() {
        config.tls.key.clone_from(&args.key);
    }
    if args.shadow_dir.is_some() {
        config.shadows.dir.clone_from(&args.shadow_dir);
    }
    if args.data_dir.is_some() {
        config.storage.dir.clone_from(&args.data_dir);
    }
    if let (Some(shadows), Some(storage)) = (&config.shadows.dir, &config.storage.dir) {
        return Err(usage(format!(
            "[shadows] dir ({}) and [storage] dir ({}): with a data directory, shadows live in its store; remove the shadow directory setting",
            shadows.display(),
            storage.display()
        )));
    }
    if config.listeners.is_empty() {
        return Err(usage(
            "no listener: add a [[listener]] to the configuration or pass --listen",
        ));
    }
    let trust = trust_files(args, &config)?;
    Ok((config, trust))
}

fn listen_flags(args: &ServeArgs) -> Result<Vec<ListenerConfig>, CliError> {
    let client_certificates = match args.client_certificates.as_str() {
        "none" => ClientCertificates::None,
        "required" => ClientCertificates::Required,
        _ => ClientCertificates::Optional,
    };
    args.listen
        .iter()
        .map(|text| {
            let (protocol, bind) = ListenerProtocol::split(text).map_err(usage)?;
            Ok(ListenerConfig {
                protocol,
                bind: bind.to_string(),
                client_certificates,
            })
        })
        .collect()
}

/// The anchor files of the configuration, with the labels the flags name replaced.
fn trust_files(args: &ServeArgs, config: &ServeConfig) -> Result<TrustFiles, CliError> {
    let mut trust = config.trust_files();
    let from_flags = args
        .labels
        .files(AnchorFiles::default())
        .map_err(|e| usage(e.to_string()))?;
    for (label, files) in from_flags.labels {
        trust.labels.insert(label, files);
    }
    Ok(trust)
}

fn credential_config(trust: &TrustFiles) -> Result<CredentialConfig, CliError> {
    trust.load().map_err(|e| usage(e.to_string()))
}

fn tls_acceptor(
    config: &ServeConfig,
    listener: &ListenerConfig,
    trust: &[Arc<TrustStore>],
) -> Result<TlsAcceptor, CliError> {
    let (Some(cert), Some(key)) = (&config.tls.certificate, &config.tls.key) else {
        return Err(usage(format!(
            "listener {}: tls and wss need [tls] certificate and key (or --cert/--key)",
            listener.bind
        )));
    };
    tls::acceptor(cert, key, listener.client_certificates, trust.to_vec())
        .map_err(|e| usage(format!("listener {}: {e}", listener.bind)))
}

async fn bind_listeners(
    config: &ServeConfig,
    trust: Vec<Arc<TrustStore>>,
) -> Result<Vec<Listener>, CliError> {
    let mut listeners = Vec::new();
    for listener in &config.listeners {
        let socket = tokio::net::TcpListener::bind(&listener.bind)
            .await
            .map_err(|e| usage(format!("cannot listen on {}: {e}", listener.bind)))?;
        let protocol = match listener.protocol {
            ListenerProtocol::Tcp => Protocol::Tcp,
            ListenerProtocol::Ws => Protocol::Ws,
            ListenerProtocol::Tls => Protocol::Tls(tls_acceptor(config, listener, &trust)?),
            ListenerProtocol::Wss => Protocol::Wss(tls_acceptor(config, listener, &trust)?),
        };
        listeners.push(Listener { socket, protocol });
    }
    Ok(listeners)
}

async fn serve(config: ServeConfig, trust_files: TrustFiles) -> Result<(), CliError> {
    let policy_path = config
        .policy
        .clone()
        .ok_or_else(|| usage("no policy: set `policy` in the configuration or pass --policy"))?;
    let policy = Policy::load(&policy_path)?;
    let engines = Arc::new(ArcSwap::from_pointee(Engine::new(&policy.checked)?));
    let credentials = credential_config(&trust_files)?;
    let trust = credentials.certificate_stores();
    let authenticator = Arc::new(
        IdentityAuthenticator::new(credentials, engines.clone())
            .map_err(|e| usage(e.to_string()))?,
    );
    authenticator
        .check_policy(&policy.checked)
        .map_err(|e| usage(e.to_string()))?;
    if let Some(dir) = &config.shadows.dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| usage(format!("[shadows] dir {}: {e}", dir.display())))?;
    }
    let store = match &config.storage.dir {
        Some(dir) => Some(Store::open(dir).map_err(|e| usage(format!("[storage] dir: {e}")))?),
        None => None,
    };
    let listeners = bind_listeners(&config, trust).await?;
    let broker_config = BrokerConfig {
        store,
        ..config.broker_config()
    };
    let broker = Arc::new(Broker::new(
        engines.clone(),
        broker_config,
        authenticator.clone(),
    ));
    let stop = CancellationToken::new();
    let reloader = PolicyReloader::new(&policy_path, engines, broker.clone(), Some(authenticator))
        .with_options(config.reload_options());
    let interval = Duration::from_millis(config.policy_poll_ms);
    tokio::spawn(reloader.run(interval, stop.clone()));
    serve_listeners(listeners, broker, termination()).await;
    stop.cancel();
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
