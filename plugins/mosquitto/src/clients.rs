//! Per-connection state: what each admitted client presented and the session it is bound to.
//!
//! mosquitto names a connection by the address of its `struct mosquitto`; the plugin keys its
//! state by that address ([`ClientKey`]) and keeps the client id too, which every check
//! compares with the id mosquitto reports, so a recycled address can never inherit a
//! session. An entry is created only by a successful authentication, replaced by the next
//! authentication at the same address, and removed at disconnect. mosquitto 2.0 decides the
//! client's last will right *after* the disconnect event, so the entry of the client that is
//! disconnecting is kept aside ([`Clients::depart`]) and answers that one publish check, until
//! the next disconnect, authentication or tick. Memory: one entry per connected client (its
//! credential, a JWT is under 1 KB, and its bound session).

use crate::authority::{Authority, Presented};
use std::collections::HashMap;
use std::sync::Arc;
use topicguard::Session;

/// The address of mosquitto's `struct mosquitto` for a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(pub usize);

/// One admitted client.
#[derive(Debug)]
pub struct Client {
    /// The client id it was admitted with.
    pub client_id: String,
    /// Kept so the credential can be verified again when the policy or its keys are reloaded.
    pub presented: Presented,
    /// The authority that admitted it (or last refused it).
    pub authority: Arc<Authority>,
    pub standing: Standing,
}

/// Whether a client may still be decided for.
#[derive(Debug)]
pub enum Standing {
    /// Admitted: decide its requests with this session.
    Admitted(Session),
    /// No longer admitted (credential expired, or refused by a reloaded policy): every check
    /// is denied. `kicked` once the broker was asked to disconnect it.
    Refused { reason: String, kicked: bool },
}

/// Every admitted client, by connection.
#[derive(Debug, Default)]
pub struct Clients {
    live: HashMap<ClientKey, Client>,
    departing: Option<(ClientKey, Client)>,
}

impl Clients {
    /// Admits a client at `key`, replacing whatever that address held.
    pub fn admit(&mut self, key: ClientKey, client: Client) {
        self.live.insert(key, client);
    }

    /// Forgets whatever `key` held (a new authentication at this address is under way), and
    /// ends any departing client's grace.
    pub fn forget(&mut self, key: ClientKey) {
        self.live.remove(&key);
        self.departing = None;
    }

    /// The client disconnected: it leaves the live set and stays aside for its will check.
    pub fn depart(&mut self, key: ClientKey) {
        self.departing = self.live.remove(&key).map(|client| (key, client));
    }

    /// Ends the departing client's grace (its will, if any, has been decided by now).
    pub fn settle(&mut self) {
        self.departing = None;
    }

    /// The client at `key`; for a publish (`will` true), also the one that just departed.
    pub fn get_mut(&mut self, key: ClientKey, will: bool) -> Option<&mut Client> {
        if self.live.contains_key(&key) {
            return self.live.get_mut(&key);
        }
        match &mut self.departing {
            Some((departed, client)) if will && *departed == key => Some(client),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.live.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Client> {
        self.live.values_mut()
    }
}
