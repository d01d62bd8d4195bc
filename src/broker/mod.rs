//! The reference MQTT broker: a real broker that enforces the compiled policy on every
//! packet.
//!
//! [`serve`] takes an already-bound listener, the shared [`Engine`](crate::Engine), a
//! [`BrokerConfig`], an [`Authenticator`] and a shutdown future. The parts, in the order
//! a packet meets them:
//!
//! - [`codec`] — our own strict MQTT 3.1.1/5.0 codec;
//! - `connection` — one task per client: CONNECT (authentication, the `connect` decision,
//!   the will), then the four authorization points: connect, publish (+ retain),
//!   subscribe (per filter), receive (per delivery);
//! - [`state`] — the shared state behind a narrow interface: [`router`] (subscriptions,
//!   no policy knowledge), [`session`] (persistent sessions, each owned by one principal,
//!   takeover by that principal only, bounded queues), [`retained`] (each message with
//!   its publisher, dropped when a reload takes the publisher's right away);
//! - [`authorize`] — the bound session per connection, re-bound when the engine is
//!   swapped, and one log line per denial (target `topicguard::deny`); [`principal`] —
//!   who owns a session and who published a retained message or will;
//! - [`config`] — every limit and its overflow rule.
//!
//! - [`listener`] — TCP, TLS, WebSocket and secure WebSocket listeners: stream adapters
//!   feeding the one connection task; [`auth`] — JWT / client certificate / anonymous
//!   authentication through the identity layer; [`reload`] — policy reload (SIGHUP, file
//!   changes) with existing subscriptions re-checked.

pub mod auth;
pub mod authorize;
pub mod codec;
pub mod config;
mod connection;
pub mod listener;
pub mod message;
pub mod observe;
pub mod principal;
pub mod reload;
pub mod retained;
pub mod router;
mod server;
pub mod session;
pub mod shadow;
pub mod state;

pub use auth::{AnonymousAuthenticator, AuthError, Authenticator, Credentials};
pub use authorize::SharedEngine;
pub use config::BrokerConfig;
pub use server::serve;
