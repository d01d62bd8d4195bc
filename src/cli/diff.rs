//! `topicguard diff OLD NEW`: what NEW grants that OLD did not, and what it takes away,
//! per identity and action, with witness requests. A CI gate: exit 1 when access was
//! added, 0 when only removed or unchanged, 2 when a policy cannot be used or is too
//! complex to analyse exactly. The analysis is [`topicguard::analysis::diff`]; this module only
//! loads, calls and prints.

use super::output::{CliError, Exit, Out};
use std::fmt::Write as _;
use std::path::PathBuf;
use topicguard::analysis::diff::{DiffReport, Side, diff};
use topicguard::decide::Engine;
use topicguard::policy::Policy;

/// Arguments of `topicguard diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The policy as it is.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The policy as it would be.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
}

/// Runs `topicguard diff`.
pub fn run(args: &DiffArgs, out: Out) -> Exit {
    match report(args) {
        Ok(report) => {
            if out.is_json() {
                out.json(&report);
            } else {
                out.print(&render_text(&report));
            }
            if report.adds_access() {
                Exit::Failure
            } else {
                Exit::Ok
            }
        }
        Err(error) => out.error(&error),
    }
}

fn report(args: &DiffArgs) -> Result<DiffReport, CliError> {
    let old = Policy::load(&args.old)?;
    let new = Policy::load(&args.new)?;
    let old_engine = Engine::new(&old.checked)?;
    let new_engine = Engine::new(&new.checked)?;
    diff(
        Side {
            checked: &old.checked,
            engine: &old_engine,
        },
        Side {
            checked: &new.checked,
            engine: &new_engine,
        },
    )
    .map_err(|e| CliError::Usage(e.to_string()))
}

/// The text report: identities added and removed, then each change with its witnesses.
pub fn render_text(report: &DiffReport) -> String {
    let mut out = String::new();
    for name in &report.identities_added {
        let _ = writeln!(out, "ADDED identity {name}");
    }
    for name in &report.identities_removed {
        let _ = writeln!(out, "REMOVED identity {name}");
    }
    for change in &report.changes {
        let word = if change.added { "ADDED" } else { "REMOVED" };
        let _ = write!(out, "{word} {} {}", change.identity, change.action);
        match &change.rule {
            Some(rule) => {
                let _ = writeln!(out, " by {}: {}", rule.cited(), rule.text);
            }
            None => out.push('\n'),
        }
        for w in &change.witnesses {
            let _ = writeln!(
                out,
                "  {} (old: {}, new: {})",
                w.request.describe(),
                w.old,
                w.new
            );
        }
        if change.count > change.witnesses.len() {
            let _ = writeln!(
                out,
                "  ... {} more representative requests",
                change.count - change.witnesses.len()
            );
        }
    }
    let added = report.changes.iter().filter(|c| c.added).count() + report.identities_added.len();
    let removed =
        report.changes.iter().filter(|c| !c.added).count() + report.identities_removed.len();
    let _ = writeln!(
        out,
        "{} -> {}: {added} added, {removed} removed",
        report.old, report.new
    );
    out
}
