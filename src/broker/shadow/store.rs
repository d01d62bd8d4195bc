//! Where shadows live: an in-memory cache in front of the broker's durable store (table
//! `shadows`, one JSON document per thing: the new version is submitted under the cache's
//! lock and its responses wait for the commit), or, without one, in front of one JSON file
//! per thing (`<dir>/<thing>.json`, written atomically — a temporary file, fsync, rename —
//! before a change is acknowledged), or memory only. Documents are loaded lazily on first
//! use, so a broker restart finds every accepted version. A document that cannot be read or
//! parsed makes requests for that thing fail with 500 instead of silently starting an empty
//! shadow over it. This module must never interpret requests.

use super::document::{Rejection, Shadow};
use crate::broker::store::{Op, Ticket};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where documents persist.
#[derive(Debug, Default)]
enum Backend {
    #[default]
    Memory,
    Files(PathBuf),
    Durable(Arc<crate::broker::store::Store>),
}

/// The shadow cache and where it persists.
#[derive(Debug, Default)]
pub struct Store {
    backend: Backend,
    cache: Mutex<HashMap<String, Shadow>>,
}

/// Exclusive access to the store while one request is applied.
pub struct Locked<'s> {
    store: &'s Store,
    cache: MutexGuard<'s, HashMap<String, Shadow>>,
}

impl Store {
    /// A store persisting under `dir` (created on first write), or memory-only.
    pub fn new(dir: Option<PathBuf>) -> Store {
        Store {
            backend: dir.map_or(Backend::Memory, Backend::Files),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A store persisting in the broker's durable store.
    pub fn durable(store: Arc<crate::broker::store::Store>) -> Store {
        Store {
            backend: Backend::Durable(store),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Locks the store; requests are applied one at a time.
    pub fn lock(&self) -> Locked<'_> {
        Locked {
            store: self,
            cache: self.cache.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    fn path(&self, thing: &str) -> Option<PathBuf> {
        match &self.backend {
            Backend::Files(dir) => Some(dir.join(format!("{thing}.json"))),
            _ => None,
        }
    }
}

fn internal(what: &str, path: &Path, error: impl std::fmt::Display) -> Rejection {
    tracing::error!(path = %path.display(), %error, "shadow store: {what}");
    Rejection::new(500, "Internal service failure")
}

impl Locked<'_> {
    /// The thing's shadow (a never-seen thing is an empty, non-existing shadow at version 0).
    pub fn get(&mut self, thing: &str) -> Result<Shadow, Rejection> {
        if let Some(shadow) = self.cache.get(thing) {
            return Ok(shadow.clone());
        }
        let shadow = match &self.store.backend {
            Backend::Memory => Shadow::default(),
            Backend::Files(_) => read(&self.store.path(thing).unwrap_or_default())?,
            Backend::Durable(store) => read_durable(store, thing)?,
        };
        self.cache.insert(thing.to_string(), shadow.clone());
        Ok(shadow)
    }

    /// Persists (a file: written and fsynced; the durable store: submitted, see the
    /// ticket) then caches the thing's new shadow.
    pub fn put(&mut self, thing: &str, shadow: Shadow) -> Result<Ticket, Rejection> {
        let mut ticket = Ticket::NONE;
        match &self.store.backend {
            Backend::Memory => {}
            Backend::Files(_) => {
                let path = self.store.path(thing).unwrap_or_default();
                write_atomically(&path, &shadow)?;
            }
            Backend::Durable(store) => {
                let json =
                    serde_json::to_vec(&shadow).map_err(|e| internal("encode", store.path(), e))?;
                let thing = thing.to_string();
                ticket = store.submit_one(Op::PutShadow { thing, json });
            }
        }
        self.cache.insert(thing.to_string(), shadow);
        Ok(ticket)
    }
}

fn read_durable(store: &crate::broker::store::Store, thing: &str) -> Result<Shadow, Rejection> {
    match store.shadow(thing) {
        Ok(None) => Ok(Shadow::default()),
        Ok(Some(bytes)) => serde_json::from_slice(&bytes)
            .map_err(|e| internal("unreadable shadow document", store.path(), e)),
        Err(e) => Err(internal("cannot read", store.path(), e)),
    }
}

fn read(path: &Path) -> Result<Shadow, Rejection> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| internal("unreadable file", path, e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Shadow::default()),
        Err(e) => Err(internal("cannot read", path, e)),
    }
}

fn write_atomically(path: &Path, shadow: &Shadow) -> Result<(), Rejection> {
    let bytes = serde_json::to_vec_pretty(shadow).map_err(|e| internal("encode", path, e))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| internal("create directory", dir, e))?;
    }
    let temporary = path.with_extension("json.tmp");
    let mut file =
        std::fs::File::create(&temporary).map_err(|e| internal("create", &temporary, e))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| internal("write", &temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| internal("rename", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_shadow_survives_a_new_store_and_a_corrupt_file_is_an_error() {
        let dir = std::env::temp_dir().join(format!("tg-shadow-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let shadow = Shadow {
            exists: true,
            version: 7,
            ..Shadow::default()
        };
        Store::new(Some(dir.clone()))
            .lock()
            .put("T1", shadow.clone())
            .expect("write");
        let reopened = Store::new(Some(dir.clone()));
        assert_eq!(reopened.lock().get("T1"), Ok(shadow));
        assert_eq!(reopened.lock().get("T2"), Ok(Shadow::default()));
        std::fs::write(dir.join("T3.json"), b"{not json").expect("write corrupt file");
        assert_eq!(reopened.lock().get("T3").map_err(|r| r.code), Err(500));
        assert!(!dir.join("T1.json.tmp").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
