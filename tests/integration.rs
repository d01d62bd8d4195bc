//! The one integration-test binary: one module per pipeline stage.
#[cfg(feature = "runtime")]
mod analysis_cli;
mod analysis_properties;
#[cfg(feature = "runtime")]
mod authoring_cli;
#[cfg(feature = "runtime")]
mod authz_contract;
#[cfg(feature = "runtime")]
mod authz_harness;
#[cfg(feature = "runtime")]
mod authz_rabbitmq;
#[cfg(feature = "runtime")]
mod authz_sessions;
mod aws;
mod bad_policy_inputs;
#[cfg(feature = "runtime")]
mod broker_backpressure;
#[cfg(feature = "runtime")]
mod broker_burst;
#[cfg(feature = "runtime")]
mod broker_churn;
#[cfg(feature = "runtime")]
mod broker_codec;
#[cfg(feature = "runtime")]
mod broker_durable;
#[cfg(feature = "runtime")]
mod broker_faults;
#[cfg(feature = "runtime")]
mod broker_harness;
#[cfg(feature = "runtime")]
mod broker_jwt;
#[cfg(feature = "runtime")]
mod broker_keep_alive;
#[cfg(feature = "runtime")]
mod broker_load;
#[cfg(feature = "runtime")]
mod broker_mosquitto;
#[cfg(feature = "runtime")]
mod broker_observe;
#[cfg(feature = "runtime")]
mod broker_paho;
#[cfg(feature = "runtime")]
mod broker_protocol;
#[cfg(feature = "runtime")]
mod broker_publishers;
#[cfg(feature = "runtime")]
mod broker_reload;
#[cfg(feature = "runtime")]
mod broker_reload_safety;
#[cfg(feature = "runtime")]
mod broker_sessions;
#[cfg(feature = "runtime")]
mod broker_tls;
#[cfg(feature = "runtime")]
mod broker_ws;
mod check;
#[cfg(feature = "runtime")]
mod cli;
#[cfg(feature = "runtime")]
mod cli_output;
mod decisions;
mod diagnostics;
mod differential;
mod dump;
mod engine_safety;
#[cfg(feature = "runtime")]
mod identity;
mod layering;
#[cfg(feature = "runtime")]
mod load_tls;
#[cfg(feature = "runtime")]
mod mosquitto_plugin;
mod parse;
mod readme;
#[cfg(feature = "runtime")]
mod runtime;
mod scratch;
#[cfg(feature = "runtime")]
mod shadow;
