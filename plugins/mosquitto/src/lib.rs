//! topicguard inside mosquitto: a mosquitto 2.0 plugin (interface version 5).
//!
//! Built as `libtopicguard_mosquitto.so` and loaded with
//!
//! ```text
//! plugin /path/to/libtopicguard_mosquitto.so
//! plugin_opt_policy /etc/topicguard/site.policy   # required
//! plugin_opt_jwks /etc/topicguard/jwks.json       # keys for `from jwt` identities
//! plugin_opt_cafile /etc/topicguard/ca.pem        # anchors for `from certificate` identities (repeatable)
//! plugin_opt_crlfile /etc/topicguard/crl.pem      # optional, repeatable
//! ```
//!
//! What it does, event by event:
//! - `MOSQ_EVT_BASIC_AUTH`: the CONNECT password is a JWT, verified with the policy's JWT
//!   identity rules and the JWKS; without a password, the TLS client certificate mosquitto
//!   verified is verified again against `plugin_opt_cafile` (the identity binds to the policy's
//!   anchors, not mosquitto's `cafile`); without either, the policy's anonymous identity if
//!   it has one. The identity is bound with the client id (`client` template) and the CONNECT
//!   decided. The username is not used (MQTT 3.1.1 needs one with a password: any text).
//! - `MOSQ_EVT_ACL_CHECK`: subscribe (`$share/` included), write (publish with retain, and
//!   the last will when mosquitto is about to send it) and read (every delivery, retained
//!   ones included: topicguard's `receive`).
//! - `MOSQ_EVT_DISCONNECT` drops the client's state; `MOSQ_EVT_RELOAD` (SIGHUP) reloads the
//!   policy, JWKS and CA files, keeping the old ones on any error; `MOSQ_EVT_TICK` disconnects
//!   clients whose JWT expired or whom a reloaded policy no longer admits.
//!
//! Fails closed: if the policy cannot load, every CONNECT and every check is denied, and the
//! error is logged through `mosquitto_log_printf`. Layout: [`options`] (the `plugin_opt_`
//! lines), [`authority`] (policy + verifier), [`clients`] (per-connection state), [`plugin`]
//! (the behaviour, testable without a broker), `ffi` (the C declarations, checked against the
//! installed headers by a test) and `exports` (the C entry points: the only `unsafe` code).

pub mod authority;
pub mod clients;
#[cfg_attr(test, allow(dead_code))]
mod ffi;
pub mod options;
pub mod plugin;

// The entry points reference symbols only the mosquitto process provides, so they are left
// out of the unit-test executable; the integration test loads the built library into a real
// mosquitto instead.
#[cfg(not(test))]
mod exports;
