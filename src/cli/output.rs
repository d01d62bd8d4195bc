//! How the command line prints: text for people, JSON for tools, and the exit codes.
//!
//! Results go to stdout. In text mode diagnostics and errors go to stderr as miette
//! reports with caret snippets (coloured only when stderr is a terminal, so piped output
//! is stable); in JSON mode everything, errors included, is one JSON document on stdout.
//! Writing never panics: a closed pipe (`topicguard compile --dump | head`) just stops output.
//! This module formats and prints; it never decides anything.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use topicguard::compile::CompileError;
use topicguard::diagnostic::Diagnostics;
use topicguard::policy::LoadError;
use topicguard::source::SourceError;
use topicguard::testcases::TestFileError;

/// Output format, chosen with the global `--format` option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text; diagnostics with caret snippets on stderr.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// The process outcome: 0 ok, 1 denied or failed, 2 usage or policy error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything was fine (allowed, all tests passed, files formatted).
    Ok = 0,
    /// A request was denied, a test failed, or `fmt --check` found a file to reformat.
    Failure = 1,
    /// The command line was wrong, or a policy or test file could not be used.
    Usage = 2,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// Anything that stops a command from producing its result.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line made sense to clap but not to the policy.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    TestFile(#[from] TestFileError),
    #[error("cannot write `{path}`: {cause}")]
    Write { path: String, cause: std::io::Error },
}

impl From<LoadError> for CliError {
    fn from(error: LoadError) -> CliError {
        match error {
            LoadError::Source(e) => CliError::Source(e),
            LoadError::Invalid(d) => CliError::Invalid(d),
        }
    }
}

/// Writes a command's results in the chosen format.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    pub format: Format,
}

impl Out {
    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints text to stdout as is.
    pub fn print(&self, text: &str) {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }

    /// Prints text to stderr as is.
    pub fn eprint(&self, text: &str) {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    /// Prints a value as pretty JSON on stdout.
    pub fn json(&self, value: &impl serde::Serialize) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => self.print(&format!("{text}\n")),
            Err(e) => self.eprint(&format!("error: cannot serialize the result: {e}\n")),
        }
    }

    /// Prints a policy's diagnostics to stderr (text mode only; JSON embeds them).
    pub fn diagnostics(&self, diagnostics: &Diagnostics) {
        if self.is_json() {
            return;
        }
        self.eprint(&render_all(diagnostics));
    }

    /// Reports an error and returns the usage exit code.
    pub fn error(&self, error: &CliError) -> Exit {
        if self.is_json() {
            self.json(&serde_json::json!({ "error": error_json(error) }));
        } else {
            self.eprint(&render_error(error));
        }
        Exit::Usage
    }
}

/// The JSON shape of an error: a kind, a message, and diagnostics when there are some.
pub fn error_json(error: &CliError) -> serde_json::Value {
    let kind = match error {
        CliError::Usage(_) => "usage",
        CliError::Source(_) => "source",
        CliError::Invalid(_) => "policy",
        CliError::Compile(_) => "compile",
        CliError::TestFile(_) => "test-file",
        CliError::Write { .. } => "write",
    };
    let diagnostics = match error {
        CliError::Invalid(d)
        | CliError::TestFile(TestFileError::Policy {
            error: LoadError::Invalid(d),
            ..
        }) => serde_json::to_value(d.to_json()).unwrap_or_default(),
        _ => serde_json::Value::Array(Vec::new()),
    };
    let message = match error {
        CliError::Invalid(d) => format!("{} has errors", d.source.name()),
        other => other.to_string(),
    };
    serde_json::json!({ "kind": kind, "message": message, "diagnostics": diagnostics })
}

/// Renders an error for a person: miette snippets where there is source to show.
pub fn render_error(error: &CliError) -> String {
    match error {
        CliError::Source(e) => render_miette(e),
        CliError::Compile(e) => render_miette(e),
        CliError::Invalid(d) => render_all(d),
        CliError::TestFile(TestFileError::Policy {
            file,
            policy,
            error: LoadError::Invalid(d),
        }) => format!(
            "error: test file `{file}`: policy `{policy}` has errors\n{}",
            render_all(d)
        ),
        other => format!("error: {other}\n"),
    }
}

/// Every diagnostic of a file, a blank line after each.
fn render_all(diagnostics: &Diagnostics) -> String {
    diagnostics
        .reports()
        .map(|r| render_miette(r.as_ref()) + "\n")
        .collect()
}

/// One miette report: coloured on a terminal, plain Unicode otherwise.
pub fn render_miette(diagnostic: &dyn miette::Diagnostic) -> String {
    let theme = if std::io::stderr().is_terminal() {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = format!("error: {diagnostic}\n");
    }
    out
}
