//! topicguard inside mosquitto: a mosquitto 2.0 plugin (interface version 5).
//!
//! Built as `libtopicguard_mosquitto.so` and loaded with
//!
//! ```text
//! plugin /path/to/libtopicguard_mosquitto.so
//! plugin_opt_policy /etc/topicguard/site.policy
//! # the anchors of each identity's `trust "LABEL"`, repeatable, as `topicguard --trust`:
//! # a JWKS for `from jwt` identities, PEM CAs (and CRLs) for `from certificate` ones
//! plugin_opt_trust idp=/etc/topicguard/idp-jwks.json
//! plugin_opt_trust devices=/etc/topicguard/devices-ca.pem
//! plugin_opt_trust_crl devices=/etc/topicguard/devices-crl.pem
//! # the default anchors, for identities without a `trust` label
//! plugin_opt_jwks /etc/topicguard/jwks.json
//! plugin_opt_cafile /etc/topicguard/ca.pem
//! plugin_opt_crlfile /etc/topicguard/crl.pem
//! ```
//!
//! Only `plugin_opt_policy` is required; `plugin_opt_jwks` is taken at most once, the others
//! are repeatable. mosquitto passes the rest of the line as the value, so a comment goes on
//! a line of its own.
//!
//! What it does, event by event:
//! - `MOSQ_EVT_BASIC_AUTH`: the CONNECT password is a JWT, verified as the policy's JWT
//!   identities would, each with its own label's keys (`plugin_opt_trust LABEL=JWKS`, or
//!   `plugin_opt_jwks` without a label); without a password, the TLS client certificate
//!   mosquitto verified is verified again, each certificate identity with its own label's CAs
//!   and CRLs (the identity binds to the policy's anchors, not mosquitto's `cafile`, and never
//!   to another label's CA); without either, the policy's anonymous identity if it has one.
//!   A credential binds only as the one identity whose own anchors accept it. The identity is
//!   bound with the client id (`client` template) and the CONNECT decided. The username is
//!   not used (MQTT 3.1.1 needs one with a password: any text).
//! - `MOSQ_EVT_ACL_CHECK`: subscribe (`$share/` included), write (publish with retain, and
//!   the last will when mosquitto is about to send it) and read (every delivery, retained
//!   ones included: topicguard's `receive`).
//! - `MOSQ_EVT_DISCONNECT` drops the client's state; `MOSQ_EVT_RELOAD` (SIGHUP) reloads the
//!   policy and every anchor file, keeping the old ones on any error; `MOSQ_EVT_TICK`
//!   disconnects clients whose JWT expired or whom a reloaded policy no longer admits.
//!
//! Fails closed: if the policy or an anchor file cannot load, every CONNECT and every check is
//! denied, and the error is logged through `mosquitto_log_printf`. An option error (an
//! unknown key, a `LABEL=FILE` that is not one or names no valid label) stops mosquitto at
//! start instead. At every load the plugin warns about identities that admit nobody (their
//! label has no anchors) and anchors no identity uses. Layout: [`options`] (the `plugin_opt_`
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
