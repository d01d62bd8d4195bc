//! The one thread that writes the store: group commit.
//!
//! Connections submit [`Op`]s (numbered by a ticket) through a channel and go on serving;
//! the writer takes everything waiting in the channel (at most [`MAX_BATCH_OPS`] operations),
//! applies it in submission order in one redb write transaction, commits it with
//! `Durability::Immediate` (the commit returns after `fsync`), and only then publishes the
//! highest ticket it holds as committed. While one commit runs, the next batch gathers: many
//! connections' acknowledgements share one `fsync`. A failed transaction or commit is final:
//! the failure is published instead, so nothing waiting for it is ever acknowledged, and
//! every later submission fails too. This module must never acknowledge anything itself,
//! nor reorder operations.

// redb's error is large (160 bytes); it is turned into text at once, off the hot path.
#![allow(clippy::result_large_err)]

use super::tables::*;
use redb::{Database, Durability, ReadableTable, WriteTransaction};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use tokio::sync::watch;

/// Operations applied in one transaction at most (a bound on a commit's size and latency).
pub(crate) const MAX_BATCH_OPS: usize = 16_384;

/// One change to the store.
#[derive(Debug)]
pub enum Op {
    /// Stores a session's record.
    PutSession {
        /// The client id.
        client: Arc<str>,
        /// The encoded record.
        record: Vec<u8>,
    },
    /// Deletes the session and everything queued, in flight or awaiting release for it.
    DeleteSession {
        /// The client id.
        client: Arc<str>,
    },
    /// Stores a queued message.
    PutMessage {
        /// The client id.
        client: Arc<str>,
        /// The message's sequence number in the session's queue.
        seq: u64,
        /// The encoded message.
        record: Vec<u8>,
    },
    /// Records the packet id and stage of a queued message sent to the client.
    PutInflight {
        /// The client id.
        client: Arc<str>,
        /// The message's sequence number.
        seq: u64,
        /// The packet identifier it was sent with.
        packet_id: u16,
        /// How far its QoS 2 exchange got.
        stage: u8,
    },
    /// Deletes a queued message and its in-flight state.
    DeleteMessage {
        /// The client id.
        client: Arc<str>,
        /// The message's sequence number.
        seq: u64,
    },
    /// Records a received QoS 2 packet identifier awaiting PUBREL.
    PutRelease {
        /// The client id.
        client: Arc<str>,
        /// The packet identifier.
        packet_id: u16,
    },
    /// Forgets a released QoS 2 packet identifier.
    DeleteRelease {
        /// The client id.
        client: Arc<str>,
        /// The packet identifier.
        packet_id: u16,
    },
    /// Stores a retained message.
    PutRetained {
        /// The topic.
        topic: Arc<str>,
        /// The encoded message.
        record: Vec<u8>,
    },
    /// Deletes a retained message.
    DeleteRetained {
        /// The topic.
        topic: Arc<str>,
    },
    /// Stores a device shadow.
    PutShadow {
        /// The thing name.
        thing: String,
        /// The shadow document as JSON.
        json: Vec<u8>,
    },
}

/// What has been committed.
#[derive(Clone, Debug, Default)]
pub struct Committed {
    /// Every ticket up to this one is durable.
    pub ticket: u64,
    /// Set when a commit failed: nothing after `ticket` will ever be.
    pub failed: Option<String>,
}

/// Runs until every sender is gone (the store was dropped), or a commit fails.
pub(crate) fn run(
    db: Arc<Database>,
    jobs: Receiver<(u64, Vec<Op>)>,
    committed: watch::Sender<Committed>,
) {
    while let Ok(first) = jobs.recv() {
        let mut last = first.0;
        let mut batch = vec![first.1];
        let mut ops = batch[0].len();
        while ops < MAX_BATCH_OPS {
            match jobs.try_recv() {
                Ok((ticket, more)) => {
                    last = ticket;
                    ops += more.len();
                    batch.push(more);
                }
                Err(_) => break,
            }
        }
        match commit(&db, batch) {
            Ok(()) => {
                committed.send_modify(|c| c.ticket = last);
            }
            Err(error) => {
                tracing::error!(%error, "store: commit failed; nothing more is acknowledged as durable");
                committed.send_modify(|c| c.failed = Some(error));
                return;
            }
        }
    }
}

fn commit(db: &Database, batch: Vec<Vec<Op>>) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    txn.set_durability(Durability::Immediate);
    apply(&txn, batch).map_err(|e| e.to_string())?;
    txn.commit().map_err(|e| e.to_string())
}

fn apply(txn: &WriteTransaction, batch: Vec<Vec<Op>>) -> Result<(), redb::Error> {
    let mut sessions = txn.open_table(SESSIONS)?;
    let mut queue = txn.open_table(QUEUE)?;
    let mut inflight = txn.open_table(INFLIGHT)?;
    let mut releases = txn.open_table(RELEASES)?;
    let mut retained = txn.open_table(RETAINED)?;
    let mut shadows = txn.open_table(SHADOWS)?;
    for op in batch.into_iter().flatten() {
        match op {
            Op::PutSession { client, record } => {
                sessions.insert(&*client, record.as_slice())?;
            }
            Op::DeleteSession { client } => {
                sessions.remove(&*client)?;
                let c: &str = &client;
                queue.retain_in((c, 0)..=(c, u64::MAX), |_, _| false)?;
                inflight.retain_in((c, 0)..=(c, u64::MAX), |_, _| false)?;
                releases.retain_in((c, 0)..=(c, u16::MAX), |_, _| false)?;
            }
            Op::PutMessage {
                client,
                seq,
                record,
            } => {
                queue.insert((&*client, seq), record.as_slice())?;
            }
            Op::PutInflight {
                client,
                seq,
                packet_id,
                stage,
            } => {
                // Only for a message still stored (its acknowledgement may have come first).
                if queue.get((&*client, seq))?.is_some() {
                    inflight.insert((&*client, seq), (packet_id, stage))?;
                }
            }
            Op::DeleteMessage { client, seq } => {
                queue.remove((&*client, seq))?;
                inflight.remove((&*client, seq))?;
            }
            Op::PutRelease { client, packet_id } => {
                releases.insert((&*client, packet_id), ())?;
            }
            Op::DeleteRelease { client, packet_id } => {
                releases.remove((&*client, packet_id))?;
            }
            Op::PutRetained { topic, record } => {
                retained.insert(&*topic, record.as_slice())?;
            }
            Op::DeleteRetained { topic } => {
                retained.remove(&*topic)?;
            }
            Op::PutShadow { thing, json } => {
                shadows.insert(thing.as_str(), json.as_slice())?;
            }
        }
    }
    Ok(())
}
