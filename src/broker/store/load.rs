//! Reading the whole store at open into a [`Snapshot`]: every session with its queued,
//! in-flight and awaiting-release entries, and every retained message. A record that does
//! not decode is an error naming its table and key. Entries of a client without a session
//! record (left by a crash between two commits of one client's changes cannot happen: one
//! batch is one transaction; this is defence) are skipped and counted in the log. This
//! module must never write.

use super::record::{self, RecordError};
use super::tables::*;
use super::{RestoredSession, Snapshot, StoreError, read_error, shown};
use crate::broker::message::Stage;
use redb::{Database, ReadableTable};
use std::path::Path;
use std::sync::Arc;

fn bad_record(path: &Path, table: &'static str, key: String, error: RecordError) -> StoreError {
    StoreError::Record {
        path: shown(path),
        table,
        key,
        error,
    }
}

fn stage_of(byte: u8) -> Result<Stage, RecordError> {
    match byte {
        0 => Ok(Stage::AwaitAck),
        1 => Ok(Stage::AwaitRec),
        2 => Ok(Stage::AwaitComp),
        other => Err(RecordError {
            field: "stage",
            why: format!("value {other}"),
        }),
    }
}

pub(super) fn load(db: &Database, path: &Path) -> Result<Snapshot, StoreError> {
    let txn = db
        .begin_read()
        .map_err(|e| read_error(path, "the store", e))?;
    let open = |name: &str, e: redb::TableError| read_error(path, &format!("table `{name}`"), e);
    let sessions = txn.open_table(SESSIONS).map_err(|e| open("sessions", e))?;
    let queue = txn.open_table(QUEUE).map_err(|e| open("queue", e))?;
    let inflight = txn.open_table(INFLIGHT).map_err(|e| open("inflight", e))?;
    let releases = txn.open_table(RELEASES).map_err(|e| open("releases", e))?;
    let retained = txn.open_table(RETAINED).map_err(|e| open("retained", e))?;
    let failed = |what: &str, e: redb::StorageError| read_error(path, what, e);
    let mut snapshot = Snapshot::default();
    for entry in sessions.iter().map_err(|e| failed("sessions", e))? {
        let (key, value) = entry.map_err(|e| failed("sessions", e))?;
        let client = key.value().to_string();
        let meta = record::read_session(value.value())
            .map_err(|e| bad_record(path, "sessions", format!("`{client}`"), e))?;
        let mut session = RestoredSession {
            client_id: Arc::from(client.as_str()),
            meta,
            queue: Vec::new(),
            outgoing: Vec::new(),
            awaiting_release: Vec::new(),
        };
        let c = client.as_str();
        let range = (c, 0)..=(c, u64::MAX);
        for entry in queue.range(range.clone()).map_err(|e| failed("queue", e))? {
            let (key, value) = entry.map_err(|e| failed("queue", e))?;
            let seq = key.value().1;
            let key_text = || format!("(`{client}`, {seq})");
            let delivery = record::read_delivery(value.value(), seq)
                .map_err(|e| bad_record(path, "queue", key_text(), e))?;
            let sent = inflight
                .get((c, seq))
                .map_err(|e| failed("inflight", e))?
                .map(|v| v.value());
            match sent {
                None => session.queue.push(delivery),
                Some((packet_id, stage)) => {
                    let stage =
                        stage_of(stage).map_err(|e| bad_record(path, "inflight", key_text(), e))?;
                    session.outgoing.push((packet_id, stage, delivery));
                }
            }
        }
        for entry in releases
            .range((c, 0)..=(c, u16::MAX))
            .map_err(|e| failed("releases", e))?
        {
            let (key, _) = entry.map_err(|e| failed("releases", e))?;
            session.awaiting_release.push(key.value().1);
        }
        snapshot.sessions.push(session);
    }
    for entry in retained.iter().map_err(|e| failed("retained", e))? {
        let (key, value) = entry.map_err(|e| failed("retained", e))?;
        let topic = key.value().to_string();
        let found = record::read_retained(value.value())
            .map_err(|e| bad_record(path, "retained", format!("`{topic}`"), e))?;
        snapshot.retained.push(found);
    }
    let orphans = count_orphans(&queue, &sessions).map_err(|e| failed("queue", e))?;
    if orphans > 0 {
        tracing::warn!(
            orphans,
            "store: queued messages without a session were skipped"
        );
    }
    Ok(snapshot)
}

/// Queue entries whose client has no session record.
fn count_orphans(
    queue: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    sessions: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<usize, redb::StorageError> {
    let mut orphans = 0;
    for entry in queue.iter()? {
        let (key, _) = entry?;
        if sessions.get(key.value().0)?.is_none() {
            orphans += 1;
        }
    }
    Ok(orphans)
}
