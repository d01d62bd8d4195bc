//! How the command line prints: text for people, JSON for tools, and the exit codes.
//!
//! Results go to stdout. In text mode diagnostics and errors go to stderr as miette
//! reports with caret snippets, coloured when `--color` says so (`auto`: when stderr is a
//! terminal and `NO_COLOR` is unset or empty). In JSON mode everything, errors included, is
//! JSON on stdout: one document per command, or one document per line (JSON Lines) for
//! `decide --batch` and the long-running commands. Every document carries
//! `schema_version` ([`SCHEMA_VERSION`]) and `command`; docs/json-output.md describes each.
//! Writing never panics: a closed pipe (`topicguard compile --dump | head`) just stops output.
//! This module formats and prints; it never decides anything.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use topicguard::compile::CompileError;
use topicguard::decide::{Explanation, Request};
use topicguard::diagnostic::Diagnostics;
use topicguard::policy::LoadError;
use topicguard::runtime::Log;
use topicguard::source::SourceError;
use topicguard::testcases::TestFileError;

/// The version of the JSON output schema (docs/json-output.md). It changes only when a
/// field is removed, renamed or changes meaning; adding a field keeps it.
pub const SCHEMA_VERSION: u32 = 1;

/// Output format, chosen with the global `--format` option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text; diagnostics with caret snippets on stderr.
    #[default]
    Text,
    /// JSON on stdout: one document, or one per line for streams (see docs/json-output.md).
    Json,
}

/// When text output is coloured, chosen with the global `--color` option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always colour (even when piped, even with `NO_COLOR`).
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether to colour, given the environment's `NO_COLOR` and whether stderr is a terminal.
    pub fn resolve(self, no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => no_color.is_none_or(|v| v.is_empty()) && terminal,
        }
    }

    /// Whether to colour in this process.
    pub fn enabled(self) -> bool {
        self.resolve(
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::stderr().is_terminal(),
        )
    }
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
    /// A long-running command could not do its work (a step did not happen, a runtime
    /// could not start).
    #[error("{0}")]
    Runtime(String),
}

impl From<LoadError> for CliError {
    fn from(error: LoadError) -> CliError {
        match error {
            LoadError::Source(e) => CliError::Source(e),
            LoadError::Invalid(d) => CliError::Invalid(d),
        }
    }
}

/// A JSON document with the schema version and the command in front of its own fields
/// (which keep their order). Every document is an object.
#[derive(serde::Serialize)]
struct Stamped<'a, T: serde::Serialize> {
    schema_version: u32,
    command: &'a str,
    #[serde(flatten)]
    document: &'a T,
}

/// Writes a command's results in the chosen format.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    /// Text or JSON.
    pub format: Format,
    /// Whether text output (miette reports, logs) is coloured.
    pub color: bool,
    /// The command's name, stamped into every JSON document (`command`).
    pub command: &'static str,
}

impl Out {
    /// Starts the process-wide log of a long-running command (`serve`, `authz`): on stderr,
    /// filtered by `RUST_LOG` (default `info`; `debug` logs every refusal); one JSON object
    /// per event in `--format json`, coloured text otherwise as `--color` says.
    pub fn init_logging(&self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let logs = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let _ = if self.is_json() {
            logs.json().with_current_span(false).try_init()
        } else {
            logs.with_ansi(self.color).try_init()
        };
    }

    /// True in `--format json`.
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

    /// Prints a command's JSON document (pretty) on stdout, stamped with
    /// `schema_version` and `command` (first, before the document's own fields).
    pub fn json(&self, value: &impl serde::Serialize) {
        self.print_json(value, true);
    }

    /// Prints a value as pretty JSON exactly as it is, unstamped: for the documents another
    /// system reads in text mode (AWS IoT policies, a Lambda authorizer's response).
    pub fn foreign_json(&self, value: &impl serde::Serialize) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => self.print(&format!("{text}\n")),
            Err(e) => self.eprint(&format!("error: cannot serialize the result: {e}\n")),
        }
    }

    /// Prints one JSON document on one line (JSON Lines), stamped like [`Out::json`].
    pub fn json_line(&self, value: &impl serde::Serialize) {
        self.print_json(value, false);
    }

    fn print_json(&self, value: &impl serde::Serialize, pretty: bool) {
        let stamped = Stamped {
            schema_version: SCHEMA_VERSION,
            command: self.command,
            document: value,
        };
        let text = if pretty {
            serde_json::to_string_pretty(&stamped)
        } else {
            serde_json::to_string(&stamped)
        };
        match text {
            Ok(text) => self.print(&format!("{text}\n")),
            Err(e) => self.eprint(&format!("error: cannot serialize the result: {e}\n")),
        }
    }

    /// A progress log for the long-running commands: plain lines on stdout, or in JSON
    /// mode one `{"event": "log", "message": ...}` document per line.
    pub fn log(&self) -> Log {
        let out = *self;
        if out.is_json() {
            Arc::new(move |line| {
                out.json_line(&serde_json::json!({ "event": "log", "message": line }))
            })
        } else {
            Arc::new(|line| println!("{line}"))
        }
    }

    /// Prints a policy's diagnostics to stderr (text mode only; JSON embeds them).
    pub fn diagnostics(&self, diagnostics: &Diagnostics) {
        if self.is_json() {
            return;
        }
        self.eprint(&render_all(diagnostics, self.color));
    }

    /// Reports an error and returns the usage exit code.
    pub fn error(&self, error: &CliError) -> Exit {
        self.report(error);
        Exit::Usage
    }

    /// Reports an error that ends the command with `exit` (for failures that are not
    /// usage errors, such as a runtime step that did not happen).
    pub fn fail(&self, error: &CliError, exit: Exit) -> Exit {
        self.report(error);
        exit
    }

    /// Prints an error: a JSON document (one line for streaming commands) or a report.
    fn report(&self, error: &CliError) {
        if self.is_json() {
            self.json_line(&serde_json::json!({ "error": error_json(error) }));
        } else {
            self.eprint(&self.render_error(error));
        }
    }

    /// Renders an error for a person: miette snippets where there is source to show.
    pub fn render_error(&self, error: &CliError) -> String {
        render_error(error, self.color)
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
        CliError::Runtime(_) => "runtime",
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
pub fn render_error(error: &CliError, color: bool) -> String {
    match error {
        CliError::Source(e) => render_miette(e, color),
        CliError::Compile(e) => render_miette(e, color),
        CliError::Invalid(d) => render_all(d, color),
        CliError::TestFile(TestFileError::Policy {
            file,
            policy,
            error: LoadError::Invalid(d),
        }) => format!(
            "error: test file `{file}`: policy `{policy}` has errors\n{}",
            render_all(d, color)
        ),
        other => format!("error: {other}\n"),
    }
}

/// Every diagnostic of a file, a blank line after each.
fn render_all(diagnostics: &Diagnostics, color: bool) -> String {
    diagnostics
        .reports()
        .map(|r| render_miette(r.as_ref(), color) + "\n")
        .collect()
}

/// One miette report: coloured Unicode, or plain Unicode.
pub fn render_miette(diagnostic: &dyn miette::Diagnostic, color: bool) -> String {
    let theme = if color {
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

/// A decision's JSON document: the explanation's fields, then the request's `retain` flag
/// (false for every request but a retained publish).
#[derive(Debug, serde::Serialize)]
pub struct DecisionDocument<'e> {
    /// The engine's explanation of the decision.
    #[serde(flatten)]
    pub explanation: &'e Explanation,
    /// The retain flag of a publish.
    pub retain: bool,
}

/// The JSON document of `explanation`, the answer to `request`.
pub fn decision_json<'e>(
    explanation: &'e Explanation,
    request: Request<'_>,
) -> DecisionDocument<'e> {
    DecisionDocument {
        explanation,
        retain: matches!(request, Request::Publish { retain: true, .. }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn color_follows_the_flag_then_no_color_then_the_terminal() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(ColorChoice::Always.resolve(set, false));
        assert!(!ColorChoice::Never.resolve(None, true));
        assert!(ColorChoice::Auto.resolve(None, true));
        assert!(
            ColorChoice::Auto.resolve(empty, true),
            "an empty NO_COLOR is unset"
        );
        assert!(!ColorChoice::Auto.resolve(set, true));
        assert!(!ColorChoice::Auto.resolve(None, false));
    }

    #[test]
    fn every_document_is_stamped_with_the_schema_version_and_command() {
        let out = Out {
            format: Format::Json,
            color: false,
            command: "check",
        };
        let stamped = Stamped {
            schema_version: SCHEMA_VERSION,
            command: out.command,
            document: &serde_json::json!({ "files": [] }),
        };
        let text = serde_json::to_string(&stamped).unwrap();
        assert_eq!(text, r#"{"schema_version":1,"command":"check","files":[]}"#);
    }
}
