//! Peak memory and wall time of loading a generated policy of N rules, in a fresh process.
//!
//! `cargo run --release --example compile_memory -- 100000` generates the policy of
//! `benches/common/policy_gen.rs`, then parses, checks and compiles it, and prints the
//! process's peak resident set (`VmHWM` from `/proc/self/status`, Linux only) before and
//! after, and the time each step took. It measures; it never changes the policy.

#[path = "../benches/common/policy_gen.rs"]
#[allow(dead_code)] // the request lists are for the benches
mod policy_gen;

use std::process::ExitCode;
use std::time::Instant;
use topicguard::{Engine, Policy, Source};

/// A `/proc/self/status` field in KiB (`VmHWM`, `VmRSS`), if readable.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".to_string(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    })
}

fn main() -> ExitCode {
    let Some(n) = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<usize>().ok())
    else {
        eprintln!("usage: compile_memory RULES   (e.g. 100000)");
        return ExitCode::from(2);
    };
    let before = status_kib("VmHWM:");
    let text = policy_gen::generate(n).text;
    let source = Source::new("generated.policy", text);
    let after_text = status_kib("VmRSS:");
    let start = Instant::now();
    let policy = match Policy::from_source(&source) {
        Ok(policy) => policy,
        Err(diagnostics) => {
            eprintln!("{}", diagnostics.render_plain());
            return ExitCode::from(2);
        }
    };
    let checked_at = start.elapsed();
    let peak_checked = status_kib("VmHWM:");
    let engine = match Engine::builder(policy.checked.clone()).build() {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let total = start.elapsed();
    println!("rules:                 {}", policy.checked.rules.len());
    println!(
        "policy text:           {:.1} MiB",
        source.text().len() as f64 / 1048576.0
    );
    println!("automaton nodes:       {}", engine.automaton().node_count());
    println!("parse + check:         {:.3} s", checked_at.as_secs_f64());
    println!(
        "compile:               {:.3} s",
        (total - checked_at).as_secs_f64()
    );
    println!("total load:            {:.3} s", total.as_secs_f64());
    println!("peak RSS before:       {}", mib(before));
    println!("RSS with text:         {}", mib(after_text));
    println!("peak RSS parse + check: {}", mib(peak_checked));
    println!("peak RSS (VmHWM):      {}", mib(status_kib("VmHWM:")));
    println!("RSS after load:        {}", mib(status_kib("VmRSS:")));
    ExitCode::SUCCESS
}
