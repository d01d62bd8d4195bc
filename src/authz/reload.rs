//! Policy reload for the service: on SIGHUP and when the policy file's mtime changes.
//!
//! Loads and checks the file, builds the verifier for its identity blocks and compiles it,
//! and only then swaps it in ([`Authz::reload`]); sessions are bound to the new engine on
//! their next check. A file that does not load is rejected with its diagnostics logged and
//! the running policy kept. The broker's `PolicyReloader` does the same for a broker it
//! owns (and wakes its connections), so it cannot be reused as is; the signal and polling
//! loop here follows it.

use super::Authz;
use crate::policy::Policy;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// The shortest polling interval.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Why a reload was refused; the running policy stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file cannot be read, or the policy in it has errors.
    #[error(transparent)]
    Policy(#[from] crate::policy::LoadError),
    /// The policy loads but the service cannot run it (credentials, compile limits).
    #[error("{}: {error}", path.display())]
    Rejected {
        /// The policy file.
        path: PathBuf,
        /// Why.
        error: super::LoadError,
    },
}

/// Reloads one policy file into a running service.
pub struct PolicyWatcher {
    path: PathBuf,
    authz: Arc<Authz>,
    seen: Option<SystemTime>,
}

impl PolicyWatcher {
    /// Watches `path` and reloads it into `authz` on change.
    pub fn new(path: &Path, authz: Arc<Authz>) -> PolicyWatcher {
        PolicyWatcher {
            path: path.to_path_buf(),
            authz,
            seen: modified(path),
        }
    }

    /// Loads, checks and compiles the file, then swaps it in; on error nothing changes.
    /// Returns the new policy generation.
    pub fn reload(&mut self) -> Result<u64, ReloadError> {
        self.seen = modified(&self.path);
        let policy = Policy::load(&self.path)?;
        let loaded = self
            .authz
            .reload(&policy)
            .map_err(|error| ReloadError::Rejected {
                path: self.path.clone(),
                error,
            })?;
        warn_uncovered(&loaded.coverage);
        Ok(loaded.generation)
    }

    fn reload_logged(&mut self, why: &str) {
        match self.reload() {
            Ok(generation) => tracing::info!(
                policy = %self.path.display(), generation, "policy reloaded ({why})"
            ),
            Err(error) => tracing::error!(
                policy = %self.path.display(),
                "policy reload ({why}) rejected, keeping the running policy: {}",
                error.to_string().trim().replace('\n', "; ")
            ),
        }
    }

    /// Reloads on SIGHUP and on file changes (polled every `interval`) until `stop`.
    pub async fn run(mut self, interval: Duration, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(interval.max(MIN_POLL_INTERVAL));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| tracing::warn!("SIGHUP reload unavailable: {e}"))
            .ok();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                Some(()) = next_hangup(&mut hangup) => self.reload_logged("SIGHUP"),
                _ = ticker.tick() => {
                    if modified(&self.path) != self.seen {
                        self.reload_logged("file changed");
                    }
                }
            }
        }
    }
}

async fn next_hangup(hangup: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangup {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Logs the identities whose wildcard subscriptions are refused on RabbitMQ and EMQX.
pub fn warn_uncovered(coverage: &super::ReceiveCoverage) {
    for reason in &coverage.reasons {
        tracing::warn!(
            "subscribe does not carry receive ({reason}): on RabbitMQ and EMQX, which check no delivery, these identities may subscribe to literal topics only"
        );
    }
}
