//! Policy reload: on SIGHUP and when the policy file changes on disk.
//!
//! A reload replaces the running policy only with a complete, working one. In order:
//!
//! 1. **The file has settled** (file changes only; SIGHUP means "the file is ready"). A
//!    change is seen when the file's length, modification time or inode (a rename over it)
//!    differ from the last version read. Its content is then read at every poll, and
//!    loaded only once it has stayed byte-for-byte the same for [`ReloadOptions::settle`]:
//!    a file still being written is never read half-way, as long as the writer does not
//!    pause longer than that. Writing a new file and renaming it over the old one avoids
//!    the question altogether.
//! 2. **The bytes are read once** and exactly those bytes are checked and compiled.
//! 3. **It looks finished**: a non-empty file must end with a line break (a writer stopped
//!    mid-line leaves none), and a policy with no rules — an empty file, only comments,
//!    only declarations — is refused, because it would deny everything. With
//!    [`ReloadOptions::allow_empty`] a file with no rules may deny everything on purpose,
//!    but a file of zero bytes never does: that is what a truncated write looks like.
//! 4. **It parses and checks** (diagnostics with `file:line:col`), the credential material
//!    can verify its identity blocks, and **it compiles**.
//!
//! Only then is the engine swapped into the [`SharedEngine`] in one atomic store. Every
//! connection re-binds its identity on its next decision, [`Broker::wake_all`] makes each
//! one re-check its subscriptions at once (those no longer allowed are removed), and
//! [`Broker::recheck_retained`] drops the retained messages whose publishers may no longer
//! publish and retain them. Every refusal is logged at `error` with its reason and counted
//! (`topicguard_policy_reloads_total{outcome="rejected"}`); the running policy keeps
//! serving.
//!
//! Cost: while a change settles the file is re-read at every poll; a reload then parses,
//! checks and compiles it, and re-checks every retained message (one bind per distinct
//! publisher, one decision per message: 10,000 messages from 10,000 gateways took about
//! 0.26 s in `benches/retained.rs`). All of it runs on a blocking thread. This module must
//! never swap in a policy that did not pass every step above.

use crate::broker::auth::IdentityAuthenticator;
use crate::broker::authorize::SharedEngine;
use crate::broker::state::Broker;
use crate::decide::Engine;
use crate::policy::Policy;
use crate::source::{Source, SourceError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// The shortest interval at which the policy file is polled.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How cautious a reload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadOptions {
    /// How long a changed file's content must stay the same before it is loaded (checked
    /// at each poll, so the effective wait is at least one poll interval).
    pub settle: Duration,
    /// Whether a policy with no rules (which denies everything) may replace the running
    /// one. A file of zero bytes is refused even then.
    pub allow_empty: bool,
}

impl Default for ReloadOptions {
    fn default() -> ReloadOptions {
        ReloadOptions {
            settle: Duration::from_secs(1),
            allow_empty: false,
        }
    }
}

/// Why a reload was refused. The running policy is kept in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file cannot be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error(transparent)]
    NotText(#[from] SourceError),
    #[error(
        "{path} does not end with a line break: it may still be being written (end the last line with a line break)"
    )]
    /// The file does not end with a newline, so it may still be being written.
    Unfinished {
        /// The file.
        path: String,
    },
    /// The file is empty.
    #[error("{path} is empty: a truncated or unfinished file never replaces the running policy")]
    Empty {
        /// The file.
        path: String,
    },
    #[error(
        "{path} has no rules: it would deny everything, so it does not replace the running policy (allow it with `allow_empty_policy_reload`)"
    )]
    /// The file has no rules.
    NoRules {
        /// The file.
        path: String,
    },
    /// The policy has errors (rendered).
    #[error("{0}")]
    Invalid(String),
    /// The credential configuration cannot be loaded.
    #[error("{path}: {message}")]
    Credentials {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The policy does not compile.
    #[error("{path}: cannot compile: {message}")]
    Compile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub struct Reloaded {
    /// The number of rules in the new policy.
    pub rules: usize,
    pub(crate) warnings: usize,
    /// Retained messages dropped because their publishers lost the right to retain them.
    pub retained_dropped: usize,
}

/// What identifies a version of the file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode,
    })
}

/// A changed file whose content has not yet stayed the same for the settle time.
struct Settling {
    bytes: Vec<u8>,
    since: Instant,
}

/// Reloads one policy file into a running broker.
pub struct PolicyReloader {
    path: PathBuf,
    engines: SharedEngine,
    broker: Arc<Broker>,
    credentials: Option<Arc<IdentityAuthenticator>>,
    options: ReloadOptions,
    /// The file's stamp when it was last read.
    seen: Option<Stamp>,
    settling: Option<Settling>,
}

impl PolicyReloader {
    /// `credentials`, if given, must accept a new policy before it is swapped in.
    pub fn new(
        path: &Path,
        engines: SharedEngine,
        broker: Arc<Broker>,
        credentials: Option<Arc<IdentityAuthenticator>>,
    ) -> PolicyReloader {
        PolicyReloader {
            path: path.to_path_buf(),
            engines,
            broker,
            credentials,
            options: ReloadOptions::default(),
            seen: stamp(path),
            settling: None,
        }
    }

    /// The reloader with these options.
    pub fn with_options(mut self, options: ReloadOptions) -> PolicyReloader {
        self.options = options;
        self
    }

    /// Reads the file now and swaps it in if it passes every check; on error the running
    /// policy is untouched.
    pub fn reload(&mut self) -> Result<Reloaded, ReloadError> {
        self.settling = None;
        let bytes = self.read();
        bytes.and_then(|bytes| self.apply(bytes))
    }

    /// Reloads now and logs the outcome (`why` says what triggered it).
    pub fn reload_logged(&mut self, why: &str) {
        let outcome = self.reload();
        self.log(why, outcome);
    }

    /// True when the file's length, modification time or inode differ from the last read.
    pub fn changed_on_disk(&self) -> bool {
        stamp(&self.path) != self.seen
    }

    /// Reloads on SIGHUP and on file changes (polled every `interval`, loaded once settled)
    /// until `stop`. Reading, compiling and re-checking retained messages run on a blocking
    /// thread, never on the runtime's workers.
    pub async fn run(mut self, interval: Duration, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(interval.max(MIN_POLL_INTERVAL));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hangup = hangup_signal();
        loop {
            let work: fn(&mut PolicyReloader) = tokio::select! {
                _ = stop.cancelled() => return,
                _ = next_hangup(&mut hangup) => |r| r.reload_logged("SIGHUP"),
                _ = ticker.tick() => {
                    if self.settling.is_none() && !self.changed_on_disk() {
                        continue;
                    }
                    PolicyReloader::poll
                }
            };
            match tokio::task::spawn_blocking(move || {
                work(&mut self);
                self
            })
            .await
            {
                Ok(reloader) => self = reloader,
                Err(error) => {
                    tracing::error!(policy_reload_stopped = %error, "policy reloads stopped");
                    return;
                }
            }
        }
    }

    /// One poll: notices a change, or follows a settling one and loads it once settled.
    pub fn poll(&mut self) {
        if self.settling.is_none() && !self.changed_on_disk() {
            return;
        }
        let bytes = match self.read() {
            Ok(bytes) => bytes,
            Err(error) => {
                self.settling = None;
                self.log("file changed", Err(error));
                return;
            }
        };
        match self.settling.take() {
            Some(settling) if settling.bytes == bytes => {
                if settling.since.elapsed() >= self.options.settle {
                    let outcome = self.apply(bytes);
                    self.log("file changed", outcome);
                } else {
                    self.settling = Some(settling);
                }
            }
            _ => {
                tracing::debug!(policy = %self.path.display(), "policy file changed; waiting for it to settle");
                self.settling = Some(Settling {
                    bytes,
                    since: Instant::now(),
                });
            }
        }
    }

    /// Reads the whole file, remembering its stamp from just before.
    fn read(&mut self) -> Result<Vec<u8>, ReloadError> {
        self.seen = stamp(&self.path);
        std::fs::read(&self.path).map_err(|cause| ReloadError::Read {
            path: self.path.display().to_string(),
            cause,
        })
    }

    /// Checks and compiles `bytes`, then swaps them in; counts the outcome.
    fn apply(&mut self, bytes: Vec<u8>) -> Result<Reloaded, ReloadError> {
        let outcome = self.compile(bytes).map(|(engine, rules, warnings)| {
            self.engines.store(Arc::new(engine));
            self.broker.wake_all();
            let retained = self.broker.recheck_retained();
            Reloaded {
                rules,
                warnings,
                retained_dropped: retained.dropped,
            }
        });
        let metrics = self.broker.config.observer.metrics();
        metrics.policy_reload(outcome.is_ok());
        outcome
    }

    /// Every check of a reload, in order; the compiled engine, its rule and warning counts.
    fn compile(&self, bytes: Vec<u8>) -> Result<(Engine, usize, usize), ReloadError> {
        let path = self.path.display().to_string();
        if bytes.is_empty() {
            return Err(ReloadError::Empty { path });
        }
        if bytes.last() != Some(&b'\n') {
            return Err(ReloadError::Unfinished { path });
        }
        let source = Source::from_bytes(path.clone(), bytes)?;
        let policy =
            Policy::from_source(&source).map_err(|d| ReloadError::Invalid(d.to_string()))?;
        if policy.checked.rules.is_empty() && !self.options.allow_empty {
            return Err(ReloadError::NoRules { path });
        }
        if let Some(credentials) = &self.credentials {
            credentials
                .check_policy(&policy.checked)
                .map_err(|e| ReloadError::Credentials {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        }
        let engine = Engine::new(&policy.checked).map_err(|e| ReloadError::Compile {
            path,
            message: e.to_string(),
        })?;
        Ok((
            engine,
            policy.checked.rules.len(),
            policy.warnings.items.len(),
        ))
    }

    fn log(&self, why: &str, outcome: Result<Reloaded, ReloadError>) {
        match outcome {
            Ok(done) => tracing::info!(
                policy = %self.path.display(), rules = done.rules, warnings = done.warnings,
                retained_dropped = done.retained_dropped,
                "policy reloaded ({why})"
            ),
            Err(error) => tracing::error!(
                policy = %self.path.display(),
                "policy reload ({why}) rejected, keeping the running policy: {}",
                error.to_string().trim().replace('\n', "; ")
            ),
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .map_err(|e| tracing::warn!("SIGHUP reload unavailable: {e}"))
        .ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    let received = match hangup {
        Some(signal) => signal.recv().await.is_some(),
        None => false,
    };
    if !received {
        *hangup = None;
        std::future::pending::<()>().await
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending().await
}
