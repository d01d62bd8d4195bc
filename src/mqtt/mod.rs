//! MQTT itself, apart from any broker: the topic grammar every layer shares and the wire
//! codec.
//!
//! - [`topic`] — topic-name and topic-filter syntax, `$share/` splitting and filter
//!   matching. The decision engine, the codec and the broker's router judge topics by
//!   this one module, so what the codec accepts as a filter is exactly what a decision
//!   accepts (less the configured size limits). The reference interpreter keeps its own,
//!   independently written rules on purpose.
//! - [`codec`] (`runtime` feature) — our own strict MQTT 3.1.1/5.0 codec, used by the broker,
//!   the client runtimes and the load tool.
//!
//! Nothing here knows about policies, identities or connections.

#[cfg(feature = "runtime")]
pub mod codec;
pub mod topic;
