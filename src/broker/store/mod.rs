//! Durable broker state (`serve --data-dir DIR`): persistent sessions, their queued and
//! in-flight QoS 1/2 messages, QoS 2 ids awaiting release, retained messages with their
//! publishers, and device shadows, in one embedded redb database, `DIR/topicguard.redb`.
//!
//! **What is on disk when an acknowledgement leaves.** Changes are submitted as [`Op`]s and
//! given a [`Ticket`]; one writer thread ([`writer`]) commits them in batches (group commit:
//! one `fsync` for everything submitted meanwhile) and publishes the highest committed
//! ticket. The broker sends a PUBACK or PUBREC only once the ticket of everything the
//! message changed is committed: its copy in the queue of every persistent session it was
//! queued for, the retained message it set or deleted, and (QoS 2) its id awaiting release.
//! So an acknowledged message is on disk, `fsync`ed, for every persistent session it went
//! to. Likewise a SUBACK/UNSUBACK waits for the session's new subscriptions, a PUBCOMP for
//! the released id's removal, a QoS 2 PUBLISH to a persistent session for its packet id,
//! and a shadow's responses for its new version. What may be lost in a crash is only what
//! nobody was told was done: a QoS 1 delivery's packet id or acknowledgement (the message is
//! sent again: at least once), a session's offline time (its expiry restarts at the restart).
//!
//! **What is checked when the store opens.** [`Store::open`] never starts silently empty
//! over something it cannot read: an empty file, a file that is not redb, a redb file of
//! another program (no `meta` table), a store of a future schema, and any record that does
//! not decode are errors naming the file (and table and key) and what is wrong. The whole
//! content is decoded at open ([`Snapshot`]); redb verifies its checksums (and repairs an
//! interrupted commit by rolling back to the last complete one). This module must never
//! decide authorization: restored subscriptions, queued and retained messages are checked
//! against the current policy by the broker as if they were new.

// redb's error is large (160 bytes); it is turned into text at once, off the hot path.
#![allow(clippy::result_large_err)]

pub mod record;
mod writer;

pub use writer::{Committed, Op};

use crate::broker::message::Delivery;
use crate::broker::message::Stage;
use crate::broker::principal::Publisher;
use record::{RecordError, SessionMeta};
use redb::{Database, ReadableTableMetadata, TableHandle};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The store's schema: the tables below and the record layout. Bumped on any change.
pub const SCHEMA_VERSION: u64 = 1;

/// The database file inside the data directory.
pub const FILE_NAME: &str = "topicguard.redb";

/// redb's file header starts with these bytes.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

pub(crate) mod tables {
    use redb::TableDefinition;
    /// `schema` → [`super::SCHEMA_VERSION`].
    pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    /// client id → session record.
    pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
    /// (client id, sequence) → queued delivery.
    pub(crate) const QUEUE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("queue");
    /// (client id, sequence) → (packet id, stage) of a delivery sent and not acknowledged.
    pub(crate) const INFLIGHT: TableDefinition<(&str, u64), (u16, u8)> =
        TableDefinition::new("inflight");
    /// (client id, packet id) of an incoming QoS 2 message awaiting PUBREL.
    pub(crate) const RELEASES: TableDefinition<(&str, u16), ()> = TableDefinition::new("releases");
    /// topic → retained message and publisher.
    pub(crate) const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
    /// thing name → shadow document (JSON).
    pub(crate) const SHADOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("shadows");
}
use tables::*;

/// Why the store cannot be opened (or read).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory cannot be created or opened.
    #[error("data directory {path}: {cause}")]
    Directory {
        /// The file.
        path: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    #[error(
        "{path} is empty (0 bytes): a truncated or unfinished store is never started over; move it away to start with an empty store"
    )]
    /// The store file is empty.
    Empty {
        /// The file.
        path: String,
    },
    #[error(
        "{path} is not a redb database (its first bytes are not redb's file header): another kind of file, or damaged; move it away to start with an empty store"
    )]
    /// The file is not a redb database.
    NotRedb {
        /// The file.
        path: String,
    },
    /// redb cannot open the database.
    #[error("{path}: {why}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    #[error(
        "{path} is a redb database but not a topicguard store: it has no `meta` table (its tables: {tables})"
    )]
    /// The database holds tables that are not ours.
    Foreign {
        /// The file.
        path: String,
        /// The tables that are not ours.
        tables: String,
    },
    #[error(
        "{path} was written by a newer topicguard (store schema {found}; this build reads schema {SCHEMA_VERSION}): run that version, or move the file away"
    )]
    /// The database was written by a newer schema.
    FutureSchema {
        /// The file.
        path: String,
        /// The schema version found.
        found: u64,
    },
    /// A record cannot be decoded.
    #[error("{path}: table `{table}`, key {key}: cannot decode the record: {error}")]
    Record {
        /// The store file.
        path: String,
        /// The table.
        table: &'static str,
        /// The record's key.
        key: String,
        /// What is wrong with it.
        error: RecordError,
    },
    /// A read of the open store failed.
    #[error("{path}: {error}")]
    Read {
        /// The store file.
        path: String,
        /// redb's error.
        error: redb::Error,
    },
}

/// A commit failed: nothing submitted after the last committed ticket is durable.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the store failed: {0}")]
pub struct StoreFailed(pub String);

/// The position of a submission in the commit order; [`Ticket::NONE`] needs no commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(pub u64);

impl Ticket {
    pub(crate) const NONE: Ticket = Ticket(0);
    pub(crate) fn is_none(self) -> bool {
        self == Ticket::NONE
    }
}

/// A persistent session as it was on disk.
#[derive(Debug)]
pub struct RestoredSession {
    pub(crate) client_id: Arc<str>,
    pub(crate) meta: SessionMeta,
    /// Queued, not yet sent, in sequence order.
    pub queue: Vec<Delivery>,
    /// Sent and not acknowledged: packet id, stage, delivery.
    pub outgoing: Vec<(u16, Stage, Delivery)>,
    pub(crate) awaiting_release: Vec<u16>,
}

/// Everything restored at open (shadows are read when first asked for).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub(crate) sessions: Vec<RestoredSession>,
    pub(crate) retained: Vec<(crate::broker::message::Message, Publisher)>,
}

struct Submitter {
    next: u64,
    /// `None` once the store is closing.
    jobs: Option<Sender<(u64, Vec<Op>)>>,
}

/// The open store. Shared by `Arc`; dropping it commits what was submitted, ends the
/// writer thread and closes the file (another `Store::open` of the directory then works).
pub struct Store {
    path: PathBuf,
    db: Arc<Database>,
    submitter: Mutex<Submitter>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    committed: watch::Sender<Committed>,
    restored: Mutex<Option<Snapshot>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// Opens (or creates) the store in `dir` and decodes its whole content.
    pub fn open(dir: &Path) -> Result<Arc<Store>, StoreError> {
        std::fs::create_dir_all(dir).map_err(|cause| StoreError::Directory {
            path: shown(dir),
            cause,
        })?;
        let path = dir.join(FILE_NAME);
        let (db, snapshot) = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (create(&path, dir)?, Snapshot::default())
            }
            Err(e) => {
                return Err(StoreError::Open {
                    path: shown(&path),
                    why: e.to_string(),
                });
            }
            Ok(_) => {
                check_header(&path)?;
                open_guarded(&path)?
            }
        };
        let db = Arc::new(db);
        let (jobs, receiver) = std::sync::mpsc::channel();
        let (committed, _) = watch::channel(Committed::default());
        let thread_db = db.clone();
        let thread_committed = committed.clone();
        let writer = std::thread::Builder::new()
            .name("topicguard-store".into())
            .spawn(move || writer::run(thread_db, receiver, thread_committed))
            .map_err(|e| StoreError::Open {
                path: shown(&path),
                why: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Arc::new(Store {
            path,
            db,
            submitter: Mutex::new(Submitter {
                next: 1,
                jobs: Some(jobs),
            }),
            writer: Mutex::new(Some(writer)),
            committed,
            restored: Mutex::new(Some(snapshot)),
        }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// What was on disk at open; `None` after the first call.
    pub fn take_snapshot(&self) -> Option<Snapshot> {
        lock(&self.restored).take()
    }

    /// Submits changes, in order after everything submitted before; returns the ticket to
    /// wait for. Never blocks on the disk.
    pub fn submit(&self, ops: Vec<Op>) -> Ticket {
        if ops.is_empty() {
            return Ticket::NONE;
        }
        let mut submitter = lock(&self.submitter);
        let ticket = submitter.next;
        submitter.next += 1;
        // A writer that stopped has published its failure: waiters see it.
        if let Some(jobs) = &submitter.jobs {
            let _ = jobs.send((ticket, ops));
        }
        Ticket(ticket)
    }

    pub(crate) fn submit_one(&self, op: Op) -> Ticket {
        self.submit(vec![op])
    }

    /// Whether `ticket` is committed (or needs nothing).
    pub fn is_durable(&self, ticket: Ticket) -> bool {
        ticket.is_none() || self.committed.borrow().ticket >= ticket.0
    }

    /// Resolves once `ticket` is committed, or with the failure that means it never will be.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreFailed> {
        if ticket.is_none() {
            return Ok(());
        }
        let mut committed = self.committed.subscribe();
        let state = committed
            .wait_for(|c| c.ticket >= ticket.0 || c.failed.is_some())
            .await
            .map_err(|_| StoreFailed("the writer stopped".into()))?;
        match (&state.failed, state.ticket >= ticket.0) {
            (_, true) => Ok(()),
            (Some(why), false) => Err(StoreFailed(why.clone())),
            (None, false) => Err(StoreFailed("the writer stopped".into())),
        }
    }

    /// The stored shadow document of `thing`, if any.
    pub fn shadow(&self, thing: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let read = || -> Result<Option<Vec<u8>>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(SHADOWS)?;
            Ok(table.get(thing)?.map(|v| v.value().to_vec()))
        };
        read().map_err(|error| self.read_error(error))
    }

    /// Persistent-session records, counted (for tests and logs).
    pub fn session_count(&self) -> Result<u64, StoreError> {
        let read = || -> Result<u64, redb::Error> {
            let txn = self.db.begin_read()?;
            Ok(txn.open_table(SESSIONS)?.len()?)
        };
        read().map_err(|error| self.read_error(error))
    }

    fn read_error(&self, error: redb::Error) -> StoreError {
        StoreError::Read {
            path: self.path.display().to_string(),
            error,
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        lock(&self.submitter).jobs = None;
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
    }
}

/// The stage byte stored for an in-flight delivery.
pub fn stage_byte(stage: Stage) -> u8 {
    match stage {
        Stage::AwaitAck => 0,
        Stage::AwaitRec => 1,
        Stage::AwaitComp => 2,
    }
}

fn create(path: &Path, dir: &Path) -> Result<Database, StoreError> {
    let failed = |e: &dyn std::fmt::Display| StoreError::Open {
        path: shown(path),
        why: format!("cannot create the store: {e}"),
    };
    let db = Database::create(path).map_err(|e| failed(&e))?;
    let init = || -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        {
            txn.open_table(META)?.insert("schema", SCHEMA_VERSION)?;
            for table in [SESSIONS, RETAINED, SHADOWS] {
                txn.open_table(table)?;
            }
            txn.open_table(QUEUE)?;
            txn.open_table(INFLIGHT)?;
            txn.open_table(RELEASES)?;
        }
        txn.commit()?;
        Ok(())
    };
    init().map_err(|e| failed(&e))?;
    // The new file's directory entry is durable too.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| failed(&e))?;
    tracing::info!(path = %path.display(), "store: created");
    Ok(db)
}

/// Refuses an empty file and one that is not redb before redb sees it (redb would start an
/// empty database over an empty file).
fn check_header(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    std::fs::File::open(path)
        .and_then(|f| f.take(REDB_MAGIC.len() as u64).read_to_end(&mut head))
        .map_err(|e| StoreError::Open {
            path: shown(path),
            why: format!("cannot read: {e}"),
        })?;
    match head.len() {
        0 => Err(StoreError::Empty { path: shown(path) }),
        _ if head != REDB_MAGIC => Err(StoreError::NotRedb { path: shown(path) }),
        _ => Ok(()),
    }
}

/// [`open_existing`] on a thread of its own: redb asserts on some damaged files (one cut
/// short, say) instead of returning an error; that panic is caught there, kept off stderr,
/// and becomes a [`StoreError`] naming the file.
fn open_guarded(path: &Path) -> Result<(Database, Snapshot), StoreError> {
    quiet_open_panics();
    let owned = path.to_path_buf();
    let opened = std::thread::Builder::new()
        .name(OPEN_THREAD.into())
        .spawn(move || open_existing(&owned))
        .map_err(|e| StoreError::Open {
            path: shown(path),
            why: format!("cannot start a thread to open it: {e}"),
        })?
        .join();
    opened.unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(StoreError::Open {
            path: shown(path),
            why: format!("damaged or cut short: the database library cannot read it ({detail}); move it away to start with an empty store"),
        })
    })
}

const OPEN_THREAD: &str = "topicguard-store-open";

/// Installs (once) a panic hook that stays silent for [`OPEN_THREAD`] and hands every
/// other panic to the hook that was there.
fn quiet_open_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(OPEN_THREAD) {
                previous(info);
            }
        }));
    });
}

fn open_existing(path: &Path) -> Result<(Database, Snapshot), StoreError> {
    let opened = Database::builder()
        .set_repair_callback(|session| {
            tracing::warn!(
                progress = session.progress(),
                "store: repairing after an unclean shutdown (the last complete commit is kept)"
            );
        })
        .open(path);
    let db = opened.map_err(|e| StoreError::Open {
        path: shown(path),
        why: match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                "already open in another process (another broker on the same data directory?)"
                    .into()
            }
            other => format!("cannot open the store: {other}"),
        },
    })?;
    check_schema(&db, path)?;
    let snapshot = load(&db, path)?;
    Ok((db, snapshot))
}

fn read_error(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: shown(path),
        why: format!("cannot read {what}: {e}"),
    }
}

fn check_schema(db: &Database, path: &Path) -> Result<(), StoreError> {
    let txn = db
        .begin_read()
        .map_err(|e| read_error(path, "the store", e))?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            let names: Vec<String> = txn
                .list_tables()
                .map(|tables| tables.map(|t| t.name().to_string()).collect())
                .unwrap_or_default();
            let tables = if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            };
            return Err(StoreError::Foreign {
                path: shown(path),
                tables,
            });
        }
        Err(e) => return Err(read_error(path, "table `meta`", e)),
    };
    let found = meta
        .get("schema")
        .map_err(|e| read_error(path, "table `meta`", e))?
        .map(|v| v.value());
    match found {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::FutureSchema {
            path: shown(path),
            found,
        }),
        Some(found) => Err(StoreError::Open {
            path: shown(path),
            why: format!(
                "store schema {found} is not one this build reads (schema {SCHEMA_VERSION})"
            ),
        }),
        None => Err(StoreError::Foreign {
            path: shown(path),
            tables: "a `meta` table without a schema record".into(),
        }),
    }
}

mod load;
use load::load;

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableTable;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tg-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn put(client: &str, seq: u64) -> Op {
        Op::PutMessage {
            client: client.into(),
            seq,
            record: vec![RECORD_BYTE],
        }
    }

    const RECORD_BYTE: u8 = 0xAB;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn submissions_from_many_threads_are_durable_in_order_once_their_ticket_commits() {
        let dir = scratch("group");
        let store = Store::open(&dir).expect("a new store");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (1..=250u64)
                        .map(|seq| store.submit_one(put(&format!("c{t}"), seq)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let tickets: Vec<Ticket> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("a submitter"))
            .collect();
        let last = tickets.iter().copied().max().expect("tickets");
        store.durable(last).await.expect("committed");
        assert!(tickets.iter().all(|t| store.is_durable(*t)));
        // Everything before a committed ticket is committed too: a later ticket is never
        // durable while an earlier one is not.
        assert!(!store.is_durable(Ticket(last.0 + 1)));
        let read = store.db.begin_read().expect("read");
        let queue = read.open_table(QUEUE).expect("queue");
        assert_eq!(queue.len().expect("count"), 1000);
        drop((queue, read));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_deleted_session_takes_its_queue_in_flight_and_release_entries_with_it() {
        let dir = scratch("delete");
        let store = Store::open(&dir).expect("a new store");
        let client: Arc<str> = "c".into();
        let mut ops = vec![put("c", 1), put("c", 2), put("d", 1)];
        ops.push(Op::PutInflight {
            client: client.clone(),
            seq: 2,
            packet_id: 7,
            stage: 0,
        });
        ops.push(Op::PutRelease {
            client: client.clone(),
            packet_id: 9,
        });
        ops.push(Op::DeleteSession { client });
        let ticket = store.submit(ops);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(store.durable(ticket)).expect("committed");
        let read = store.db.begin_read().expect("read");
        let queue = read.open_table(QUEUE).expect("queue");
        let keys: Vec<(String, u64)> = queue
            .iter()
            .expect("iterate")
            .map(|e| {
                let (k, _) = e.expect("entry");
                (k.value().0.to_string(), k.value().1)
            })
            .collect();
        assert_eq!(keys, [("d".to_string(), 1)]);
        assert_eq!(read.open_table(INFLIGHT).expect("t").len().expect("n"), 0);
        assert_eq!(read.open_table(RELEASES).expect("t").len().expect("n"), 0);
        drop((queue, read));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
