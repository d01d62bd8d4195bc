//! `topicguard fmt [--check] POLICY...`: rewrite policies in the canonical layout.
//!
//! Uses [`topicguard::fmt::format`]. A file is only rewritten when it parses and its formatted
//! text parses back to the same formatting (so a formatter bug can never lose a rule);
//! the new text is written to a temporary file beside it and renamed over it. With
//! `--check` nothing is written: a unified diff of each file that would change is printed
//! (current text `---`, formatted text `+++`) and the exit is 1. A file that does not
//! parse is never touched (exit 2). The diff costs time and memory linear in the files'
//! size in the common case (Myers' algorithm, bounded by a deadline on pathological input).

use super::output::{CliError, Exit, Out, error_json};
use std::path::Path;
use topicguard::source::Source;

/// Arguments of `topicguard fmt`.
#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    /// Do not write: print a unified diff of what formatting would change in each file,
    /// and exit 1 if any file would change.
    #[arg(long)]
    pub check: bool,

    #[command(flatten)]
    pub policies: super::PolicyFiles,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Formatted,
    /// `--check` only: the unified diff from the file's text to its formatted text.
    WouldReformat(String),
}

impl Outcome {
    fn word(&self) -> &'static str {
        match self {
            Outcome::Unchanged => "unchanged",
            Outcome::Formatted => "formatted",
            Outcome::WouldReformat(_) => "would-reformat",
        }
    }
}

/// Runs `topicguard fmt`.
pub fn run(args: &FmtArgs, out: Out) -> Exit {
    let mut worst = Exit::Ok;
    let mut results = Vec::new();
    for path in &args.policies.files {
        let file = path.display().to_string();
        match format_file(path, args.check) {
            Ok(outcome) => {
                if matches!(outcome, Outcome::WouldReformat(_)) {
                    worst = worst.max(Exit::Failure);
                }
                if !out.is_json() {
                    print_outcome(out, &file, &outcome);
                }
                let mut result = serde_json::json!({ "file": file, "outcome": outcome.word() });
                if let Outcome::WouldReformat(diff) = &outcome {
                    result["diff"] = diff.clone().into();
                }
                results.push(result);
            }
            Err(error) => {
                worst = Exit::Usage;
                if !out.is_json() {
                    out.eprint(&out.render_error(&error));
                }
                results.push(serde_json::json!({ "file": file, "error": error_json(&error) }));
            }
        }
    }
    if out.is_json() {
        out.json(&serde_json::json!({ "check": args.check, "files": results }));
    }
    worst
}

fn print_outcome(out: Out, file: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Unchanged => {}
        Outcome::Formatted => out.print(&format!("formatted {file}\n")),
        Outcome::WouldReformat(diff) => out.print(diff),
    }
}

/// The unified diff (3 lines of context) from `old` to `new`, headed by the file name.
fn unified_diff(file: &str, old: &str, new: &str) -> String {
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .timeout(std::time::Duration::from_secs(5))
        .diff_lines(old, new);
    let mut text = diff
        .unified_diff()
        .context_radius(3)
        .header(file, &format!("{file} (formatted)"))
        .missing_newline_hint(true)
        .to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Formats one file (or only compares, with `check`).
fn format_file(path: &Path, check: bool) -> Result<Outcome, CliError> {
    let source = Source::read(path)?;
    let formatted = canonical_text(&source)?;
    if formatted == source.text() {
        return Ok(Outcome::Unchanged);
    }
    if check {
        let file = path.display().to_string();
        return Ok(Outcome::WouldReformat(unified_diff(
            &file,
            source.text(),
            &formatted,
        )));
    }
    write_replacing(path, &formatted)?;
    Ok(Outcome::Formatted)
}

/// The canonical text of a source, verified to be stable under a second formatting.
pub fn canonical_text(source: &Source) -> Result<String, CliError> {
    let ast = topicguard::parse::parse(source).map_err(CliError::Invalid)?;
    let formatted = topicguard::fmt::format(&ast);
    let again = Source::new(source.name(), formatted.as_str());
    let stable = topicguard::parse::parse(&again)
        .map(|reparsed| topicguard::fmt::format(&reparsed) == formatted)
        .unwrap_or(false);
    if !stable {
        return Err(CliError::Usage(format!(
            "refusing to format `{}`: the formatted text does not parse back to itself \
             (a formatter bug; please report it)",
            source.name()
        )));
    }
    Ok(formatted)
}

/// Writes beside the file, then renames over it, so an interrupted write loses nothing.
fn write_replacing(path: &Path, text: &str) -> Result<(), CliError> {
    let write_error = |cause| CliError::Write {
        path: path.display().to_string(),
        cause,
    };
    let name = path
        .file_name()
        .map_or_else(|| "policy".into(), |n| n.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(".{name}.topicguard-fmt"));
    std::fs::write(&temporary, text).map_err(write_error)?;
    if let Ok(metadata) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&temporary, metadata.permissions());
    }
    std::fs::rename(&temporary, path).map_err(|cause| {
        let _ = std::fs::remove_file(&temporary);
        write_error(cause)
    })
}
