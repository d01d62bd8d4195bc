//! The reference runtimes around the broker: a small MQTT client with reconnect
//! and backoff, and the gateway, service and mobile programs that drive the
//! platform's flow — a mobile app asks, a service answers, a residential gateway bridges devices and
//! keeps their shadows, and its last will tells everyone when it drops off.
//!
//! Every runtime only publishes and subscribes; what it may do is decided by the broker's
//! policy. This module must never carry authorization logic of its own.

pub mod backoff;
pub mod client;

pub use backoff::Backoff;
pub use client::{Client, ClientOptions, ConnectionState, Event, Handle};
pub mod demo;
pub mod devices;
pub mod gateway;
pub mod parts;

/// Where a runtime writes what it does (one line per step); the CLI prints to stdout.
pub type Log = std::sync::Arc<dyn Fn(String) + Send + Sync>;
pub mod mobile;
pub mod service;
pub mod tls;
