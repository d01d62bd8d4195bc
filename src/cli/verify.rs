//! `topicguard verify POLICY`: prove the policy's `assert` lines and the built-in
//! properties (isolation between sessions, no root wildcard), or print a counterexample.
//!
//! Exit 0 when every property holds, 1 when one fails, 2 when the policy cannot be used or
//! is too complex to analyse exactly. The analysis is [`topicguard::analysis::verify`]; this
//! module only loads, calls and prints.

use super::output::{CliError, Exit, Out};
use std::fmt::Write as _;
use std::path::PathBuf;
use topicguard::analysis::verify::{PropertyResult, VerifyReport, verify};
use topicguard::decide::Engine;
use topicguard::policy::Policy;

/// Arguments of `topicguard verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    pub policy: PathBuf,
}

/// Runs `topicguard verify`.
pub fn run(args: &VerifyArgs, out: Out) -> Exit {
    match report(args) {
        Ok(report) => {
            if out.is_json() {
                out.json(&report);
            } else {
                out.print(&render_text(&report));
            }
            if report.holds() {
                Exit::Ok
            } else {
                Exit::Failure
            }
        }
        Err(error) => out.error(&error),
    }
}

fn report(args: &VerifyArgs) -> Result<VerifyReport, CliError> {
    let policy = Policy::load(&args.policy)?;
    let engine = Engine::new(&policy.checked)?;
    verify(&policy.checked, &engine).map_err(|e| CliError::Usage(e.to_string()))
}

/// The text report: one line per property, a counterexample under each failure.
pub fn render_text(report: &VerifyReport) -> String {
    let mut out = String::new();
    for property in &report.properties {
        render_property(&mut out, property);
    }
    let failed = report.properties.iter().filter(|p| !p.holds).count();
    let _ = writeln!(
        out,
        "{}: {} properties hold, {} failed",
        report.file,
        report.properties.len() - failed,
        failed
    );
    out
}

fn render_property(out: &mut String, property: &PropertyResult) {
    let status = if property.holds { "holds " } else { "FAILED" };
    let _ = write!(
        out,
        "{status} {} for {}",
        property.property, property.identity
    );
    if let (Some(text), Some(location)) = (&property.assertion, &property.location) {
        let _ = write!(out, ": {text} at {location}");
    }
    out.push('\n');
    if let Some(example) = &property.counterexample {
        let _ = writeln!(out, "  counterexample: {}", example.request.describe());
        if let Some(rule) = &example.rule {
            let _ = writeln!(out, "  allowed by {}: {}", rule.cited(), rule.text);
        }
        if let Some(other) = &example.other {
            let _ = writeln!(out, "  also allowed: {}", other.describe());
        }
        if let Some(rule) = &example.other_rule {
            let _ = writeln!(out, "  allowed by {}: {}", rule.cited(), rule.text);
        }
    }
}
