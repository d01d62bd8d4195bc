//! Observability: Prometheus counters, an optional JSON-lines decision log, and the
//! metrics HTTP endpoint.
//!
//! An [`Observer`] lives in [`BrokerConfig::observer`](crate::broker::BrokerConfig) and
//! is told about connections, messages and decisions at the points where they happen
//! (the connection task and `Authorizer::decide`). It always keeps the [`Metrics`]; the
//! [`DecisionLog`] is on only when configured. Serve the counters with
//! [`serve_metrics`] on a listener of your own. This module must never block a
//! connection or change a decision.

mod decision_log;
mod http;
mod metrics;

pub use decision_log::{DEFAULT_CAPACITY, DecisionLog, DecisionRecord, now_rfc3339};
pub use http::serve_metrics;
pub use metrics::{ConnectionGuard, Metrics};

use std::path::Path;
use std::sync::Arc;

/// What the broker reports to; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Observer {
    metrics: Arc<Metrics>,
    decisions: Option<DecisionLog>,
}

impl Observer {
    /// Counters only.
    pub fn new() -> Observer {
        Observer::default()
    }

    /// Counters and a decision log appended to `path`, with the default channel capacity.
    pub fn with_decision_log(path: &Path) -> std::io::Result<Observer> {
        Observer::with_decision_log_capacity(path, DEFAULT_CAPACITY)
    }

    /// Counters and a decision log whose channel holds `capacity` records.
    pub fn with_decision_log_capacity(path: &Path, capacity: usize) -> std::io::Result<Observer> {
        let metrics = Arc::new(Metrics::default());
        let decisions = DecisionLog::open(path, capacity, metrics.clone())?;
        Ok(Observer {
            metrics,
            decisions: Some(decisions),
        })
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Whether decision records are wanted (so callers build them only then).
    pub fn logs_decisions(&self) -> bool {
        self.decisions.is_some()
    }

    /// Counts a decision, and logs it when the decision log is on.
    pub fn decision(
        &self,
        action: crate::ast::Action,
        allowed: bool,
        record: impl FnOnce() -> DecisionRecord,
    ) {
        self.metrics.decision(action, allowed);
        if let Some(log) = &self.decisions {
            log.record(record());
        }
    }
}
