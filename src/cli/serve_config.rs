//! `topicguard.toml`: the configuration `topicguard serve` reads (see
//! `topicguard.example.toml`).
//!
//! The file names the policy, the listeners (`tcp`, `tls`, `ws`, `wss` with their bind
//! addresses and client-certificate mode), the TLS server certificate, the identity
//! material — the anchors of each trust label the policy names (`[trust.LABEL]`: JWKS, CA,
//! CRLs) and the default ones for identities without a label (`[identity]`) —, where device
//! shadows persist, the data directory of the durable store (`[storage]`), and the limits, which map onto [`BrokerConfig`]; anything
//! left out keeps its documented default. Unknown keys are errors, so a typo never silently
//! drops a setting. Relative paths are relative to the configuration file. This module
//! must never open sockets or start the broker.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use topicguard::broker::BrokerConfig;
use topicguard::broker::listener::tls::ClientCertificates;
use topicguard::broker::reload::ReloadOptions;
use topicguard::identity::anchors::{AnchorFiles, TrustFiles};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The policy file.
    pub policy: Option<PathBuf>,
    /// How often the policy file's modification time is checked, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub policy_poll_ms: u64,
    /// How long a changed policy file must stay the same before it is reloaded, in
    /// milliseconds (a file still being written is never loaded half-way).
    #[serde(default = "default_settle_ms")]
    pub policy_settle_ms: u64,
    /// Whether a reloaded policy with no rules (which denies everything) may replace the
    /// running one. Off by default: such a file is usually unfinished.
    #[serde(default)]
    pub allow_empty_policy_reload: bool,
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    #[serde(default)]
    pub tls: TlsFiles,
    #[serde(default)]
    pub identity: IdentityFiles,
    /// `[trust.LABEL]`: the anchors of the identities with `trust "LABEL"`.
    #[serde(default)]
    pub trust: BTreeMap<String, IdentityFiles>,
    #[serde(default)]
    pub shadows: Shadows,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub limits: Limits,
}

fn default_poll_ms() -> u64 {
    2000
}

fn default_settle_ms() -> u64 {
    1000
}

/// One `[[listener]]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub protocol: ListenerProtocol,
    /// `host:port`; port 0 picks a free port.
    pub bind: String,
    /// For `tls` and `wss`: `none`, `optional` (the default) or `required`.
    #[serde(default = "default_client_certificates")]
    pub client_certificates: ClientCertificates,
}

fn default_client_certificates() -> ClientCertificates {
    ClientCertificates::Optional
}

/// What a listener speaks.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ListenerProtocol {
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl ListenerProtocol {
    /// `tcp://addr`, `tls://addr`, `ws://addr`, `wss://addr`, or a bare address (tcp).
    pub fn split(text: &str) -> Result<(ListenerProtocol, &str), String> {
        let Some((scheme, address)) = text.split_once("://") else {
            return Ok((ListenerProtocol::Tcp, text));
        };
        let protocol = match scheme {
            "tcp" | "mqtt" => ListenerProtocol::Tcp,
            "tls" | "mqtts" => ListenerProtocol::Tls,
            "ws" => ListenerProtocol::Ws,
            "wss" => ListenerProtocol::Wss,
            other => {
                return Err(format!(
                    "--listen {text}: unknown scheme `{other}` (tcp, tls, ws, wss)"
                ));
            }
        };
        Ok((protocol, address))
    }
}

/// `[tls]`: the server's certificate chain and key (PEM), for `tls` and `wss` listeners.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `[identity]` (the default anchors, for identities without a `trust` label) or one
/// `[trust.LABEL]`: what verifies client credentials.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdentityFiles {
    /// JWKS with the keys that sign client JWTs.
    pub jwks: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates chain to.
    #[serde(default)]
    pub ca: Vec<PathBuf>,
    /// CRLs (PEM); with any, revocation is checked for the whole chain.
    #[serde(default)]
    pub crl: Vec<PathBuf>,
}

impl IdentityFiles {
    fn anchor_files(&self) -> AnchorFiles {
        AnchorFiles {
            jwks: self.jwks.clone(),
            cas: self.ca.clone(),
            crls: self.crl.clone(),
        }
    }

    fn rebase(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| *p = base.join(&*p);
        self.jwks.iter_mut().for_each(join);
        self.ca.iter_mut().for_each(join);
        self.crl.iter_mut().for_each(join);
    }
}

/// `[shadows]`: where device shadows persist.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shadows {
    /// One JSON file per thing, read back after a restart; without it, shadows live in
    /// memory only and are lost when the broker stops.
    pub dir: Option<PathBuf>,
}

/// `[storage]`: where the broker's durable state lives.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// The data directory: persistent sessions, queued and retained messages and shadows in
    /// `DIR/topicguard.redb`, restored after a restart; without it, memory only.
    pub dir: Option<PathBuf>,
}

/// `[limits]`: each key overrides one [`BrokerConfig`] default (see its docs).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_packet_size: Option<usize>,
    pub connect_timeout_secs: Option<u64>,
    pub max_keep_alive: Option<u16>,
    pub allow_zero_keep_alive: Option<bool>,
    pub max_inflight: Option<u16>,
    pub receive_maximum: Option<u16>,
    pub max_queued_messages: Option<usize>,
    pub admission_depth: Option<usize>,
    pub queue_full_timeout_secs: Option<u64>,
    pub stalled_subscriber_timeout_secs: Option<u64>,
    pub max_topic_levels: Option<usize>,
    pub topic_alias_maximum: Option<u16>,
    pub max_subscriptions_per_client: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_retained_messages: Option<usize>,
    pub max_session_expiry: Option<u32>,
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

impl Limits {
    /// The broker configuration: defaults, overridden by what is set here.
    pub fn broker_config(&self) -> BrokerConfig {
        let mut c = BrokerConfig::default();
        set(&mut c.max_packet_size, self.max_packet_size);
        set(
            &mut c.connect_timeout,
            self.connect_timeout_secs.map(Duration::from_secs),
        );
        set(&mut c.max_keep_alive, self.max_keep_alive);
        set(&mut c.allow_zero_keep_alive, self.allow_zero_keep_alive);
        set(&mut c.max_inflight, self.max_inflight);
        set(&mut c.receive_maximum, self.receive_maximum);
        set(&mut c.max_queued_messages, self.max_queued_messages);
        set(&mut c.admission_depth, self.admission_depth);
        set(
            &mut c.queue_full_timeout,
            self.queue_full_timeout_secs.map(Duration::from_secs),
        );
        set(
            &mut c.stalled_subscriber_timeout,
            self.stalled_subscriber_timeout_secs
                .map(Duration::from_secs),
        );
        set(&mut c.max_topic_levels, self.max_topic_levels);
        set(&mut c.topic_alias_maximum, self.topic_alias_maximum);
        set(
            &mut c.max_subscriptions_per_client,
            self.max_subscriptions_per_client,
        );
        set(&mut c.max_connections, self.max_connections);
        set(&mut c.max_retained_messages, self.max_retained_messages);
        set(&mut c.max_session_expiry, self.max_session_expiry);
        c
    }
}

impl ServeConfig {
    /// The broker configuration: the limits, and where shadows persist.
    pub fn broker_config(&self) -> BrokerConfig {
        BrokerConfig {
            shadow_dir: self.shadows.dir.clone(),
            ..self.limits.broker_config()
        }
    }

    /// How cautious a policy reload is.
    pub fn reload_options(&self) -> ReloadOptions {
        ReloadOptions {
            settle: Duration::from_millis(self.policy_settle_ms),
            allow_empty: self.allow_empty_policy_reload,
        }
    }

    /// Reads and parses a file; paths in it become relative to its directory.
    pub fn load(path: &Path) -> Result<ServeConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut config: ServeConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        config.rebase(base);
        Ok(config)
    }

    fn rebase(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| *p = base.join(&*p);
        self.policy.iter_mut().for_each(join);
        self.tls.certificate.iter_mut().for_each(join);
        self.tls.key.iter_mut().for_each(join);
        self.identity.rebase(base);
        self.trust.values_mut().for_each(|files| files.rebase(base));
        self.shadows.dir.iter_mut().for_each(join);
        self.storage.dir.iter_mut().for_each(join);
    }

    /// The anchor files: `[identity]` as the default anchors, `[trust.LABEL]` per label.
    pub fn trust_files(&self) -> TrustFiles {
        TrustFiles {
            default: self.identity.anchor_files(),
            labels: self
                .trust
                .iter()
                .map(|(label, files)| (label.clone(), files.anchor_files()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses_and_maps_its_limits() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/topicguard.example.toml"
        ));
        let config = ServeConfig::load(path).expect("the example parses");
        let protocols: Vec<_> = config.listeners.iter().map(|l| l.protocol).collect();
        use ListenerProtocol::*;
        assert_eq!(protocols, [Tcp, Tls, Ws, Wss]);
        assert_eq!(config.listeners[3].bind, "0.0.0.0:443");
        assert!(
            config
                .policy
                .as_ref()
                .expect("a policy")
                .ends_with("policies/xfinity.policy")
        );
        assert_eq!(
            config.limits.broker_config().max_packet_size,
            128 * 1024 + 4096
        );
        let defaults = BrokerConfig::default();
        let limits = config.limits.broker_config();
        assert_eq!(limits.queue_full_timeout, defaults.queue_full_timeout);
        assert_eq!(limits.admission_depth, defaults.admission_depth);
        assert_eq!(
            limits.stalled_subscriber_timeout,
            defaults.stalled_subscriber_timeout
        );
        assert_eq!(
            config.broker_config().shadow_dir,
            None,
            "memory only by default"
        );
        let trust = config.trust_files();
        let labels: Vec<&str> = trust.labels.keys().map(String::as_str).collect();
        assert_eq!(labels, ["devices", "idp", "services"]);
        assert!(trust.default.is_empty());
    }

    #[test]
    fn reload_settles_for_a_second_and_refuses_empty_policies_by_default() {
        let config: ServeConfig = toml::from_str("policy = \"p.policy\"\n").unwrap();
        assert_eq!(config.reload_options(), ReloadOptions::default());
        assert_eq!(config.reload_options().settle, Duration::from_secs(1));
        assert!(!config.reload_options().allow_empty);
        let text = "policy_settle_ms = 250\nallow_empty_policy_reload = true\n";
        let config: ServeConfig = toml::from_str(text).unwrap();
        let options = config.reload_options();
        assert_eq!(options.settle, Duration::from_millis(250));
        assert!(options.allow_empty);
    }

    #[test]
    fn shadows_stay_in_memory_unless_a_directory_is_configured() {
        let config: ServeConfig = toml::from_str("policy = \"p.policy\"\n").unwrap();
        assert_eq!(config.broker_config().shadow_dir, None);
        let file =
            std::env::temp_dir().join(format!("tg-serve-config-{}.toml", std::process::id()));
        std::fs::write(&file, "[shadows]\ndir = \"s\"\n").unwrap();
        let config = ServeConfig::load(&file).unwrap();
        std::fs::remove_file(&file).ok();
        let dir = file.parent().map(|p| p.join("s"));
        assert_eq!(
            config.broker_config().shadow_dir,
            dir,
            "relative to the file"
        );
        let typo = toml::from_str::<ServeConfig>("[shadows]\ndirectory = \"s\"\n");
        assert!(typo.is_err_and(|e| e.to_string().contains("directory")));
    }

    #[test]
    fn the_data_directory_is_relative_to_the_file_and_memory_is_the_default() {
        let config: ServeConfig = toml::from_str("policy = \"p.policy\"\n").unwrap();
        assert_eq!(config.storage.dir, None);
        let file =
            std::env::temp_dir().join(format!("tg-serve-storage-{}.toml", std::process::id()));
        std::fs::write(&file, "[storage]\ndir = \"data\"\n").unwrap();
        let config = ServeConfig::load(&file).unwrap();
        std::fs::remove_file(&file).ok();
        assert_eq!(config.storage.dir, file.parent().map(|p| p.join("data")));
        let typo = toml::from_str::<ServeConfig>("[storage]\npath = \"d\"\n");
        assert!(typo.is_err_and(|e| e.to_string().contains("path")));
    }

    #[test]
    fn trust_tables_map_labels_to_files_relative_to_the_file() {
        let file = std::env::temp_dir().join(format!("tg-serve-trust-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "[trust.partner-a]\nca = [\"a.pem\"]\ncrl = [\"a-crl.pem\"]\n[trust.idp]\njwks = \"idp.json\"\n",
        )
        .unwrap();
        let config = ServeConfig::load(&file).unwrap();
        std::fs::remove_file(&file).ok();
        let base = file.parent().unwrap();
        let trust = config.trust_files();
        assert!(trust.default.is_empty());
        assert_eq!(trust.labels["partner-a"].cas, [base.join("a.pem")]);
        assert_eq!(trust.labels["partner-a"].crls, [base.join("a-crl.pem")]);
        assert_eq!(trust.labels["idp"].jwks, Some(base.join("idp.json")));
        let typo = toml::from_str::<ServeConfig>("[trust.idp]\njwk = \"x\"\n");
        assert!(typo.is_err_and(|e| e.to_string().contains("jwk")));
    }

    #[test]
    fn unknown_keys_and_schemes_are_errors() {
        let typo = toml::from_str::<ServeConfig>("[limits]\nmax_packet_sise = 10\n");
        assert!(typo.is_err_and(|e| e.to_string().contains("max_packet_sise")));
        assert_eq!(
            ListenerProtocol::split("127.0.0.1:1"),
            Ok((ListenerProtocol::Tcp, "127.0.0.1:1"))
        );
        assert_eq!(
            ListenerProtocol::split("wss://[::1]:443"),
            Ok((ListenerProtocol::Wss, "[::1]:443"))
        );
        assert!(ListenerProtocol::split("http://x:1").is_err());
    }
}
