//! `topicguard compile POLICY [--dump]`: compile a policy and report its size and cost.
//!
//! Prints how many rules, identities, automaton nodes, literal sets, attribute slots and
//! regex patterns the policy compiles to, the approximate heap bytes of the automaton, and
//! how long loading (read, parse, check) and compiling took — the numbers that show whether
//! compiling at load time is fast enough. `--dump` adds the automaton's stable text form.
//! Debug builds also verify the automaton while compiling; time a release build.

use super::output::{CliError, Exit, Out};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use topicguard::decide::Engine;
use topicguard::policy::Policy;

/// Arguments of `topicguard compile`.
#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,

    /// Also print the compiled automaton (one identity trie after another).
    #[arg(long)]
    pub dump: bool,
}

/// Sizes and timings of one compiled policy.
#[derive(Debug, serde::Serialize)]
pub struct Stats {
    pub file: String,
    pub rules: usize,
    pub identities: usize,
    pub nodes: usize,
    /// Finite literal sets used by `one_of` edges.
    pub sets: usize,
    /// Attribute-dependent levels rendered per session.
    pub slots: usize,
    /// Levels compiled to a regex.
    pub patterns: usize,
    pub approx_heap_bytes: usize,
    /// Reading, parsing and checking, in milliseconds.
    pub load_ms: f64,
    /// Building the automaton, in milliseconds.
    pub compile_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
}

/// Runs `topicguard compile`.
pub fn run(args: &CompileArgs, out: Out) -> Exit {
    match compile(args) {
        Ok(stats) => {
            if out.is_json() {
                out.json(&stats);
            } else {
                out.print(&render_text(&stats));
            }
            Exit::Ok
        }
        Err(error) => out.error(&error),
    }
}

fn compile(args: &CompileArgs) -> Result<Stats, CliError> {
    let started = Instant::now();
    let policy = Policy::load(&args.policy)?;
    let loaded = started.elapsed();
    let started = Instant::now();
    let engine = Engine::new(&policy.checked)?;
    let compiled = started.elapsed();
    let automaton = engine.automaton();
    Ok(Stats {
        file: args.policy.display().to_string(),
        rules: policy.checked.rules.len(),
        identities: policy.checked.identities.len(),
        nodes: automaton.node_count(),
        sets: automaton.set_count(),
        slots: automaton.slot_count(),
        patterns: automaton.pattern_count(),
        approx_heap_bytes: automaton.approx_heap_bytes(),
        load_ms: millis(loaded),
        compile_ms: millis(compiled),
        dump: args.dump.then(|| automaton.dump(&policy.checked)),
    })
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Milliseconds with enough digits to be useful for small policies too.
fn show_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.3} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// The text form: one statistic per line, then the dump if asked for.
pub fn render_text(stats: &Stats) -> String {
    let mut text = format!(
        "{}\n  rules:        {}\n  identities:   {}\n  nodes:        {}\n  literal sets: {}\n  \
         slots:        {}\n  patterns:     {}\n  heap:         ~{} KiB\n  \
         load:         {} (read, parse, check)\n  compile:      {}\n",
        stats.file,
        stats.rules,
        stats.identities,
        stats.nodes,
        stats.sets,
        stats.slots,
        stats.patterns,
        stats.approx_heap_bytes.div_ceil(1024),
        show_ms(stats.load_ms),
        show_ms(stats.compile_ms),
    );
    if let Some(dump) = &stats.dump {
        text.push('\n');
        text.push_str(dump);
    }
    text
}
