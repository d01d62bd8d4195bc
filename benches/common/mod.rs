//! Shared by the benchmark binaries: policy generators and the linear-scan baseline.
//!
//! Nothing here is part of topicguard; it must never be used outside benchmarks. Each
//! bench binary uses only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod policy_gen;
pub mod scan;

use topicguard::{Identity, Policy, Source};

/// The mobile identity of the generated requests (see [`policy_gen::CLIENT`]).
pub fn mobile() -> Identity {
    Identity::asserted(
        "mobile",
        [
            ("pid", policy_gen::PID),
            ("aid", policy_gen::AID),
            ("jti", policy_gen::JTI),
        ],
    )
}

/// Parses and checks generated policy text; a failure is a bug in the generator.
pub fn load(name: &str, text: &str) -> Policy {
    match Policy::from_source(&Source::new(name.to_string(), text.to_string())) {
        Ok(policy) => policy,
        Err(diagnostics) => panic!("{name} does not check:\n{}", diagnostics.render_plain()),
    }
}
