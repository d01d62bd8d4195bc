//! Policy reload: on SIGHUP and when the policy file's modification time changes.
//!
//! [`PolicyReloader::reload`] loads and checks the file, checks that the credential
//! material can serve the new identity blocks, compiles the engine, and only then swaps it
//! into the [`SharedEngine`] in one atomic store. Every connection then re-binds its
//! identity on its next decision, [`Broker::wake_all`] makes each one re-check its
//! subscriptions at once (those no longer allowed are removed), and
//! [`Broker::recheck_retained`] drops the retained messages whose publishers may no longer
//! publish and retain them. A file that does not load
//! is rejected with its diagnostics (`file:line:col`) logged, and the old policy is kept.
//! This module must never swap in a policy that did not load and compile.

use crate::broker::auth::IdentityAuthenticator;
use crate::broker::authorize::SharedEngine;
use crate::broker::state::Broker;
use crate::{Engine, Policy};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// The shortest interval at which the policy file's mtime is polled.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Reloads one policy file into a running broker.
pub struct PolicyReloader {
    path: PathBuf,
    engines: SharedEngine,
    broker: Arc<Broker>,
    credentials: Option<Arc<IdentityAuthenticator>>,
    seen: Option<SystemTime>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub struct Reloaded {
    pub rules: usize,
    pub warnings: usize,
    /// Retained messages dropped because their publishers lost the right to retain them.
    pub retained_dropped: usize,
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
            seen: modified(path),
        }
    }

    /// Compiles the file and swaps it in; on error the running policy is untouched.
    pub fn reload(&mut self) -> Result<Reloaded, String> {
        self.seen = modified(&self.path);
        let policy = Policy::load(&self.path).map_err(|e| e.to_string())?;
        if let Some(credentials) = &self.credentials {
            credentials
                .check_policy(&policy.checked)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
        }
        let engine = Engine::new(&policy.checked)
            .map_err(|e| format!("{}: cannot compile: {e}", self.path.display()))?;
        self.engines.store(Arc::new(engine));
        self.broker.wake_all();
        let retained = self.broker.recheck_retained();
        Ok(Reloaded {
            rules: policy.checked.rules.len(),
            warnings: policy.warnings.items.len(),
            retained_dropped: retained.dropped,
        })
    }

    /// Reloads and logs the outcome (`why` says what triggered it).
    pub fn reload_logged(&mut self, why: &str) {
        match self.reload() {
            Ok(done) => tracing::info!(
                policy = %self.path.display(), rules = done.rules, warnings = done.warnings,
                retained_dropped = done.retained_dropped,
                "policy reloaded ({why})"
            ),
            Err(error) => tracing::error!(
                policy = %self.path.display(),
                "policy reload ({why}) rejected, keeping the running policy: {}",
                error.trim().replace('\n', "; ")
            ),
        }
    }

    /// True when the file's modification time differs from the last one seen.
    pub fn changed_on_disk(&self) -> bool {
        modified(&self.path) != self.seen
    }

    /// Reloads on SIGHUP and on file changes (polled every `interval`) until `stop`.
    pub async fn run(mut self, interval: Duration, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(interval.max(MIN_POLL_INTERVAL));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hangup = hangup_signal();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = next_hangup(&mut hangup) => self.reload_logged("SIGHUP"),
                _ = ticker.tick() => {
                    if self.changed_on_disk() {
                        self.reload_logged("file changed");
                    }
                }
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
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
