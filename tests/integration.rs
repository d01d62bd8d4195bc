//! The one integration-test binary: one module per pipeline stage.
mod bad_policy_inputs;
#[cfg(feature = "runtime")]
mod broker_codec;
#[cfg(feature = "runtime")]
mod broker_harness;
#[cfg(feature = "runtime")]
mod broker_jwt;
#[cfg(feature = "runtime")]
mod broker_mosquitto;
#[cfg(feature = "runtime")]
mod broker_observe;
#[cfg(feature = "runtime")]
mod broker_paho;
#[cfg(feature = "runtime")]
mod broker_protocol;
#[cfg(feature = "runtime")]
mod broker_reload;
#[cfg(feature = "runtime")]
mod broker_tls;
#[cfg(feature = "runtime")]
mod broker_ws;
mod check;
#[cfg(feature = "runtime")]
mod cli;
mod decisions;
mod differential;
mod engine_safety;
#[cfg(feature = "runtime")]
mod identity;
mod parse;
#[cfg(feature = "runtime")]
mod runtime;
#[cfg(feature = "runtime")]
mod shadow;
