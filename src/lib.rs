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
//! [`aws`] is a compiler target beside the engine: a bound session rendered as AWS IoT
//! Core policy documents, each statement proved against the policy's meaning.
//!
//! [`decide::reference`] is a small interpreter over the checked rules that the compiled
//! automaton is tested against. [`identity`] turns verified credentials into attributes;
//! it is the only way attributes reach a decision. [`broker`] enforces decisions in the
//! reference broker; [`authz`] serves them over HTTP to RabbitMQ, EMQX and mosquitto-go-auth.
//! [`mqtt`] holds the one MQTT topic grammar (and, with `runtime`, the codec); [`value`]
//! the attribute-value and client-id grammars. `broker`, `authz`, `runtime`, `load` (a load
//! generator for MQTT brokers) and `devcred` (development-only credentials) need the
//! `runtime` feature. The command line is the binary's own (`src/main.rs`, `src/cli/`): it
//! uses only this public API. The layers and what each may import: `docs/architecture.md`.
//!
//! # Using the library
//!
//! The README's example (a test keeps the two equal):
//!
//! ```
//! use topicguard::{Engine, Identity, Policy, Request};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let policy = Policy::load("policies/xfinity.policy")?;          // parse + check
//! let engine = Engine::builder(policy.checked.clone()).build()?;   // compile (shares the rules)
//! let identity = Identity::asserted("mobile", [("pid", "P1"), ("aid", "A1"), ("jti", "J1")]);
//! let session = engine.bind(&identity, "xfi:P1_A1:clt:J1");         // once per connection
//! let decision = engine.decide(&session, Request::publish("c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1"));
//! assert!(decision.is_allowed());
//! println!("{}", engine.explain(&session, Request::subscribe("c/xfi/P1_A1/#")));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
// An item in a private module is `pub(crate)`: no `pub` that reads like API but is not.
#![warn(unreachable_pub)]

pub mod analysis;
pub mod ast;
#[cfg(feature = "runtime")]
pub mod authz;
pub mod automaton;
pub mod aws;
#[cfg(feature = "runtime")]
pub mod broker;
pub mod check;
pub mod compile;
pub mod decide;
#[cfg(feature = "runtime")]
pub mod devcred;
pub mod diagnostic;
pub mod fmt;
pub mod identity;
#[cfg(feature = "runtime")]
pub mod load;
pub mod mqtt;
pub mod parse;
pub mod policy;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod source;
pub mod testcases;
pub mod value;

pub use decide::{Decision, Engine, Request, Session, Verdict};
pub use identity::Identity;
pub use policy::Policy;
pub use source::Source;
