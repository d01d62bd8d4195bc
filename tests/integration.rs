//! The one integration-test binary: one module per pipeline stage.
mod bad_policy_inputs;
#[cfg(feature = "runtime")]
mod broker_codec;
#[cfg(feature = "runtime")]
mod broker_harness;
#[cfg(feature = "runtime")]
mod broker_mosquitto;
#[cfg(feature = "runtime")]
mod broker_protocol;
mod check;
#[cfg(feature = "runtime")]
mod cli;
mod decisions;
mod differential;
#[cfg(feature = "runtime")]
mod identity;
mod parse;
