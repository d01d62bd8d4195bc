//! The optional JSON-lines decision log: one line per authorization decision.
//!
//! Each line has `time` (RFC 3339, UTC, milliseconds), `client`, `identity`, `action`,
//! `topic` (absent for connect), `verdict`, `rule` (`file:line:col`, absent when no rule
//! matched), `label` (the deciding rule's `@id`, absent when it has none) and `reason`. Records go through a bounded channel to one writer thread, so a
//! slow disk never blocks a connection. **Overflow rule:** when the channel is full the
//! new record is dropped, counted in `topicguard_decision_log_dropped_total`, and a
//! warning is logged on the first drop and every 1,000th after. The writer flushes each
//! time the channel runs empty. This module must never block the caller or decide anything.

use super::metrics::Metrics;
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{SystemTime, UNIX_EPOCH};

/// Records waiting for the writer by default.
pub const DEFAULT_CAPACITY: usize = 8192;

/// One decision, as written.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    pub(crate) time: String,
    pub(crate) client: String,
    pub(crate) identity: String,
    pub(crate) action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) topic: Option<String>,
    pub(crate) verdict: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rule: Option<String>,
    /// The deciding rule's label (`@id("...")`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) label: Option<String>,
    pub(crate) reason: String,
}

/// The sending side of the log; cheap to clone.
#[derive(Clone, Debug)]
pub struct DecisionLog {
    sender: SyncSender<DecisionRecord>,
    metrics: Arc<Metrics>,
}

impl DecisionLog {
    /// Opens (appending to) `path` and starts the writer thread; the thread ends when
    /// every `DecisionLog` clone is dropped, after writing what is queued.
    pub fn open(
        path: &Path,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<DecisionLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (sender, receiver) = sync_channel(capacity.max(1));
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_records(receiver, BufWriter::new(file), &shown))?;
        Ok(DecisionLog { sender, metrics })
    }

    /// Queues a record without blocking; drops it (and counts it) when the channel is full.
    pub fn record(&self, record: DecisionRecord) {
        match self.sender.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let dropped = self.metrics.decision_log_dropped();
                if dropped == 1 || dropped % 1000 == 0 {
                    tracing::warn!(dropped, "decision log full: dropped a record");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.decision_log_dropped();
            }
        }
    }
}

fn write_records(receiver: Receiver<DecisionRecord>, mut out: impl Write, path: &str) {
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(record) = next {
            if let Err(error) = write_line(&mut out, &record) {
                tracing::error!(%error, path, "decision log write failed");
            }
            next = receiver.try_recv().ok();
        }
        if let Err(error) = out.flush() {
            tracing::error!(%error, path, "decision log flush failed");
        }
    }
}

fn write_line(out: &mut impl Write, record: &DecisionRecord) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

/// The current time as RFC 3339 UTC with milliseconds, e.g. `2026-11-24T23:51:38.123Z`.
pub fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(since.as_secs(), since.subsec_millis())
}

fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400 + 3661, 7), "2000-02-29T01:01:01.007Z");
        assert_eq!(rfc3339(1_795_996_800, 999), "2026-11-30T00:00:00.999Z");
    }

    fn record(n: usize) -> DecisionRecord {
        DecisionRecord {
            time: now_rfc3339(),
            client: format!("c{n}"),
            identity: "dev".into(),
            action: "publish",
            topic: Some("dev/x".into()),
            verdict: "allowed".into(),
            rule: None,
            label: None,
            reason: "allowed".into(),
        }
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_blocking() {
        let metrics = Arc::new(Metrics::default());
        let (sender, receiver) = sync_channel(2);
        let log = DecisionLog {
            sender,
            metrics: metrics.clone(),
        };
        for n in 0..5 {
            log.record(record(n));
        }
        assert!(
            metrics
                .render()
                .contains("topicguard_decision_log_dropped_total 3\n")
        );
        let kept: Vec<String> = receiver.try_iter().map(|r| r.client).collect();
        assert_eq!(kept, ["c0", "c1"]);
    }

    #[test]
    fn records_are_written_as_json_lines() {
        let (sender, receiver) = sync_channel(4);
        sender.send(record(1)).unwrap();
        drop(sender);
        let mut out = Vec::new();
        write_records(receiver, &mut out, "memory");
        let text = String::from_utf8(out).unwrap();
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(value["client"], "c1");
        assert_eq!(value["topic"], "dev/x");
        assert!(value.get("rule").is_none());
        assert!(text.ends_with('\n'));
    }
}
