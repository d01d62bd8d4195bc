//! The plugin's behaviour, free of C: authenticate, check, disconnect, reload, sweep.
//!
//! [`Plugin`] is what every mosquitto callback reaches (through the `exports` module). It
//! holds the current [`Authority`] — `None` while no policy has ever loaded, and then every
//! authentication and every check is denied (fail closed) — and the admitted [`Clients`].
//! A reload builds a complete new authority and swaps it in only if everything loaded; each
//! connected client is then admitted again (credential re-verified, session re-bound, CONNECT
//! re-decided) on its next check, so a rotated-out key, a removed CA or a narrowed rule
//! applies to existing connections too. A check costs a hash lookup, a client-id comparison
//! and one engine decision. Log lines are queued ([`Plugin::take_logs`]) for the caller to
//! write once it has let go of the plugin, since writing a log line can make mosquitto run
//! ACL checks, which call the plugin again. Per-check lines are `Debug` only (mosquitto
//! never publishes those to `$SYS/broker/log`). Nothing here may allow a request that the
//! current authority's engine does not allow for an admitted, unexpired session.

use crate::authority::{Authority, Presented, Refusal};
use crate::clients::{Client, ClientKey, Clients, Standing};
use crate::options::Options;
use rustls_pki_types::UnixTime;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use topicguard::{Request, Session};

/// How often [`Plugin::sweep`] looks for expired credentials.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Severity of a queued log line (mapped onto mosquitto's `MOSQ_LOG_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
}

/// What an ACL check asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// SUBSCRIBE with a filter (`$share/<group>/` included).
    Subscribe,
    /// Delivery of a message to this client (`MOSQ_ACL_READ`): topicguard's `receive`.
    Read,
    /// PUBLISH from this client, and its last will (`MOSQ_ACL_WRITE`).
    Write,
    Unsubscribe,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Subscribe => "subscribe",
            Access::Read => "receive",
            Access::Write => "publish",
            Access::Unsubscribe => "unsubscribe",
        })
    }
}

/// The plugin state: configuration, current authority, admitted clients, queued log lines.
#[derive(Debug)]
pub struct Plugin {
    options: Options,
    authority: Option<Arc<Authority>>,
    clients: Clients,
    logs: Vec<(Level, String)>,
    last_sweep: Option<Instant>,
}

impl Plugin {
    /// Loads the configured files; on failure the plugin runs closed until a reload works.
    pub fn start(options: Options) -> Plugin {
        let mut plugin = Plugin {
            options,
            authority: None,
            clients: Clients::default(),
            logs: Vec::new(),
            last_sweep: None,
        };
        match Authority::load(&plugin.options) {
            Ok(authority) => plugin.install(authority, "loaded"),
            Err(error) => plugin.log_error(
                "cannot load the policy or its trust anchors; every client is refused until a reload (SIGHUP) succeeds",
                &error.to_string(),
            ),
        }
        plugin
    }

    /// Whether a policy is in force (false: fail closed).
    pub fn is_loaded(&self) -> bool {
        self.authority.is_some()
    }

    /// How many clients are admitted.
    pub fn admitted(&self) -> usize {
        self.clients.len()
    }

    /// The queued log lines, oldest first.
    pub fn take_logs(&mut self) -> Vec<(Level, String)> {
        std::mem::take(&mut self.logs)
    }

    /// CONNECT: admits the client at `key` or refuses it (false).
    pub fn authenticate(
        &mut self,
        key: ClientKey,
        client_id: Option<&str>,
        presented: Result<Presented, Refusal>,
    ) -> bool {
        self.clients.forget(key);
        let shown = client_id.map_or_else(|| "(none)".to_string(), quoted);
        match self.admit(client_id, presented) {
            Ok(client) => {
                if let Standing::Admitted(session) = &client.standing {
                    self.log(
                        Level::Info,
                        format!(
                            "client {shown} admitted as identity `{}` ({})",
                            session.kind(),
                            client.presented.describe()
                        ),
                    );
                }
                self.clients.admit(key, client);
                true
            }
            Err(refusal) => {
                self.log(Level::Notice, format!("refusing client {shown}: {refusal}"));
                false
            }
        }
    }

    fn admit(
        &self,
        client_id: Option<&str>,
        presented: Result<Presented, Refusal>,
    ) -> Result<Client, Refusal> {
        let authority = self.authority.clone().ok_or(Refusal::NoPolicy)?;
        let client_id = client_id.ok_or(Refusal::NoClientId)?;
        let presented = presented?;
        let session = authority.admit(&presented, client_id, UnixTime::now())?;
        if let Some(at) = expired(&session, unix_now) {
            return Err(Refusal::Expired { at });
        }
        Ok(Client {
            client_id: client_id.to_string(),
            presented,
            authority,
            standing: Standing::Admitted(session),
        })
    }

    /// An ACL check: true only if the client was admitted under the current policy, is
    /// still in good standing, and the engine allows the request.
    pub fn check(
        &mut self,
        key: ClientKey,
        client_id: Option<&str>,
        access: Access,
        topic: &str,
        retain: bool,
    ) -> bool {
        let Plugin {
            authority,
            clients,
            logs,
            ..
        } = self;
        let Some(authority) = authority else {
            debug(logs, || {
                format!("denied {access} {}: no policy is loaded", quoted(topic))
            });
            return false;
        };
        let Some(client) = clients.get_mut(key, access == Access::Write) else {
            debug(logs, || {
                format!(
                    "denied {access} {} for client {}: not admitted by topicguard",
                    quoted(topic),
                    client_id.map_or_else(|| "(none)".to_string(), quoted)
                )
            });
            return false;
        };
        if client_id != Some(client.client_id.as_str()) {
            debug(logs, || {
                format!(
                    "denied {access} {}: the connection's client id is not the admitted {}",
                    quoted(topic),
                    quoted(&client.client_id)
                )
            });
            return false;
        }
        if !Arc::ptr_eq(&client.authority, authority) {
            readmit(client, authority, logs);
        }
        let Standing::Admitted(session) = &client.standing else {
            debug(logs, || {
                format!(
                    "denied {access} {} for client {}: no longer admitted",
                    quoted(topic),
                    quoted(&client.client_id)
                )
            });
            return false;
        };
        if let Some(at) = expired(session, unix_now) {
            refuse(
                client,
                format!("its credential expired at {at} (Unix time)"),
                logs,
            );
            return false;
        }
        decide(
            authority,
            session,
            access,
            topic,
            retain,
            &client.client_id,
            logs,
        )
    }

    /// The client's connection ended; its will (decided next by mosquitto) is still checked
    /// with its session.
    pub fn disconnect(&mut self, key: ClientKey) {
        self.clients.depart(key);
    }

    /// SIGHUP: loads everything again; on any error the running authority stays in force.
    pub fn reload(&mut self) {
        match Authority::load(&self.options) {
            Ok(authority) => {
                self.install(authority, "reloaded");
                if !self.clients.is_empty() {
                    self.log(
                        Level::Info,
                        format!(
                            "{} connected clients are verified again under the reloaded policy",
                            self.clients.len()
                        ),
                    );
                }
            }
            Err(error) => {
                let what = if self.authority.is_some() {
                    "reload failed; the previous policy stays in force"
                } else {
                    "reload failed; no policy is loaded, every client is still refused"
                };
                self.log_error(what, &error.to_string());
            }
        }
    }

    /// Called on every broker tick: ends the departing client's grace and, at most once per
    /// [`SWEEP_INTERVAL`], refuses clients whose credential expired. Returns the client ids
    /// the broker should disconnect (each once; never an id that another admitted
    /// connection holds).
    pub fn sweep(&mut self, now: Instant) -> Vec<String> {
        self.clients.settle();
        if self
            .last_sweep
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_INTERVAL)
        {
            return Vec::new();
        }
        self.last_sweep = Some(now);
        let unix = unix_now();
        let Plugin { clients, logs, .. } = self;
        for client in clients.iter_mut() {
            if let Standing::Admitted(session) = &client.standing
                && let Some(at) = expired(session, || unix)
            {
                refuse(
                    client,
                    format!("its credential expired at {at} (Unix time)"),
                    logs,
                );
            }
        }
        let mut to_kick: HashSet<String> = clients
            .iter()
            .filter(|c| matches!(c.standing, Standing::Refused { kicked: false, .. }))
            .map(|c| c.client_id.clone())
            .collect();
        if to_kick.is_empty() {
            return Vec::new();
        }
        for client in clients.iter() {
            if matches!(client.standing, Standing::Admitted(_)) {
                to_kick.remove(&client.client_id);
            }
        }
        for client in clients.iter_mut() {
            if let Standing::Refused { kicked, .. } = &mut client.standing
                && to_kick.contains(&client.client_id)
            {
                *kicked = true;
            }
        }
        let mut ids: Vec<String> = to_kick.into_iter().collect();
        ids.sort();
        for id in &ids {
            self.log(
                Level::Notice,
                format!("disconnecting client {}: no longer admitted", quoted(id)),
            );
        }
        ids
    }

    fn install(&mut self, authority: Authority, how: &str) {
        let summary = authority.summary.clone();
        self.log(
            Level::Info,
            format!(
                "policy {} {how}: {} rules, {} warnings",
                self.options.policy.display(),
                summary.rules,
                summary.warnings.len()
            ),
        );
        for line in summary.warnings.iter().chain(&summary.unusable) {
            self.log(Level::Warning, line.clone());
        }
        for line in &summary.unused {
            self.log(Level::Warning, format!("anchors no identity uses: {line}"));
        }
        self.authority = Some(Arc::new(authority));
    }

    fn log(&mut self, level: Level, message: String) {
        self.logs.push((level, message));
    }

    /// An error headline, then its detail one line at a time (policy diagnostics are many).
    fn log_error(&mut self, headline: &str, detail: &str) {
        self.log(Level::Error, headline.to_string());
        for line in detail.lines().filter(|l| !l.trim().is_empty()) {
            self.log(Level::Error, format!("  {line}"));
        }
    }
}

/// Admits the client again under `authority` (after a reload).
fn readmit(client: &mut Client, authority: &Arc<Authority>, logs: &mut Vec<(Level, String)>) {
    client.authority = authority.clone();
    match authority.admit(&client.presented, &client.client_id, UnixTime::now()) {
        Ok(session) => client.standing = Standing::Admitted(session),
        Err(refusal) => refuse(
            client,
            format!("the reloaded policy refuses it: {refusal}"),
            logs,
        ),
    }
}

fn refuse(client: &mut Client, reason: String, logs: &mut Vec<(Level, String)>) {
    logs.push((
        Level::Notice,
        format!(
            "client {} is no longer admitted: {reason}",
            quoted(&client.client_id)
        ),
    ));
    client.standing = Standing::Refused {
        reason,
        kicked: false,
    };
}

/// The engine's answer for one ACL check.
fn decide(
    authority: &Authority,
    session: &Session,
    access: Access,
    topic: &str,
    retain: bool,
    client_id: &str,
    logs: &mut Vec<(Level, String)>,
) -> bool {
    let request = match access {
        Access::Subscribe => Request::Subscribe { filter: topic },
        Access::Read => Request::Receive { topic },
        Access::Write => Request::Publish { topic, retain },
        // Removing a subscription never widens what the client may do.
        Access::Unsubscribe => return true,
    };
    let decision = authority.decide(session, request);
    if !decision.is_allowed() {
        debug(logs, || {
            format!(
                "denied {access}{} {} for client {}: {} ({})",
                if retain { " (retained)" } else { "" },
                quoted(topic),
                quoted(client_id),
                decision.verdict,
                decision.reason
            )
        });
    }
    decision.is_allowed()
}

fn debug(logs: &mut Vec<(Level, String)>, message: impl FnOnce() -> String) {
    logs.push((Level::Debug, message()));
}

/// `Some(exp)` if the session's credential has expired (the clock is read only if it can).
fn expired(session: &Session, now: impl FnOnce() -> u64) -> Option<u64> {
    let exp = session.expires_at()?;
    (exp <= now()).then_some(exp)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Client ids and topics come from clients: escaped so a log line stays one line.
fn quoted(text: &str) -> String {
    format!("`{}`", text.escape_debug())
}

#[cfg(test)]
mod tests;
