//! topicguard: an MQTT authorization engine.
//!
//! A policy file says which clients may connect, publish, subscribe and receive on which
//! topics. The pipeline, in order:
//!
//! 1. [`source`] — the policy text and positions in it.
//! 2. [`parse`] — `grammar/policy.pest` → [`ast`], every syntax error collected.
//! 3. [`check`] — names, sets, templates, unreachable and shadowed rules → [`check::Checked`].
//! 4. [`compile`] — checked rules → an [`automaton::Automaton`] over topic levels.
//! 5. [`decide`] — an [`Engine`] binds a verified [`Identity`] into a [`Session`] once per
//!    connection; each request gets a [`Decision`] in O(levels of the topic).
//!
//! [`decide::reference`] is a small interpreter over the checked rules that the compiled
//! automaton is tested against. [`identity`] turns verified credentials into attributes;
//! it is the only way attributes reach a decision. [`broker`] enforces decisions in the
//! reference broker; [`authz`] serves them over HTTP to RabbitMQ, EMQX and mosquitto-go-auth.
//! `broker`, `authz`, `runtime`, `load` (a load generator for MQTT brokers) and `cli` need
//! the `runtime` feature.

#![forbid(unsafe_code)]

pub mod ast;
#[cfg(feature = "runtime")]
pub mod authz;
pub mod automaton;
#[cfg(feature = "runtime")]
pub mod broker;
pub mod check;
#[cfg(feature = "runtime")]
pub mod cli;
pub mod compile;
pub mod decide;
pub mod diagnostic;
pub mod fmt;
pub mod identity;
#[cfg(feature = "runtime")]
pub mod load;
pub mod parse;
pub mod policy;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod source;
pub mod testcases;

pub use decide::{Decision, Engine, Request, Session, Verdict};
pub use identity::Identity;
pub use policy::Policy;
pub use source::Source;
