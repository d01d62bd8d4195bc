//! Errors and warnings about a policy, each pointing at the source.
//!
//! Parsing and checking collect every problem they find into a [`Diagnostics`] list rather
//! than stopping at the first. A [`Diagnostic`] has a stable `code` (tests and tools match
//! on it, never on wording), a message, the span it is about, and optional help. They render
//! with miette as `file:line:col` plus a caret snippet, or as JSON. Nothing here decides
//! anything; it only reports.

use crate::source::{Loc, Source, Span};
use std::fmt;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One error or warning about a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable identifier, e.g. `check::unknown-attribute`.
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    /// Text shown under the caret.
    pub label: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
        }
    }

    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// All diagnostics about one source file.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    pub source: Source,
    pub items: Vec<Diagnostic>,
}

/// The JSON shape of one diagnostic.
#[derive(serde::Serialize)]
pub struct DiagnosticJson<'a> {
    pub severity: Severity,
    pub code: &'a str,
    pub message: &'a str,
    pub file: &'a str,
    pub line: u32,
    pub col: u32,
    pub label: &'a str,
    pub help: Option<&'a str>,
}

impl Diagnostics {
    pub fn new(source: Source) -> Diagnostics {
        Diagnostics {
            source,
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| !d.is_error())
    }

    /// Sorts by position so output reads top to bottom.
    pub fn sort(&mut self) {
        self.items
            .sort_by_key(|d| (d.span.start, d.span.end, d.severity));
    }

    pub fn loc(&self, diagnostic: &Diagnostic) -> Loc {
        self.source.loc(diagnostic.span.start)
    }

    /// Renders every diagnostic with a caret snippet (no colour; stable for snapshots).
    pub fn render_plain(&self) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let mut out = String::new();
        for diagnostic in &self.items {
            let report = Rendered {
                diagnostic,
                loc: self.loc(diagnostic),
                source: self.source.named_source(),
            };
            let _ = handler.render_report(&mut out, &report);
        }
        out
    }

    /// One short line per diagnostic: `file:line:col: error[code]: message`.
    pub fn render_short(&self) -> String {
        let mut out = String::new();
        for d in &self.items {
            let kind = if d.is_error() { "error" } else { "warning" };
            out.push_str(&format!(
                "{}: {kind}[{}]: {}\n",
                self.loc(d),
                d.code,
                d.message
            ));
        }
        out
    }

    pub fn to_json(&self) -> Vec<DiagnosticJson<'_>> {
        self.items
            .iter()
            .map(|d| {
                let loc = self.loc(d);
                DiagnosticJson {
                    severity: d.severity,
                    code: d.code,
                    message: &d.message,
                    file: self.source.name(),
                    line: loc.line,
                    col: loc.col,
                    label: &d.label,
                    help: d.help.as_deref(),
                }
            })
            .collect()
    }

    /// Renders as miette reports (with colour when the terminal supports it).
    pub fn reports(&self) -> impl Iterator<Item = miette::Report> + '_ {
        self.items.iter().map(|d| {
            miette::Report::new(Owned {
                diagnostic: d.clone(),
                loc: self.loc(d),
                source: self.source.named_source(),
            })
        })
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render_short())
    }
}

impl std::error::Error for Diagnostics {}

/// A borrowed diagnostic ready for miette.
#[derive(Debug)]
struct Rendered<'a> {
    diagnostic: &'a Diagnostic,
    loc: Loc,
    source: miette::NamedSource<String>,
}

/// An owned diagnostic ready for miette.
#[derive(Debug)]
struct Owned {
    diagnostic: Diagnostic,
    loc: Loc,
    source: miette::NamedSource<String>,
}

macro_rules! impl_report {
    ($ty:ty) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}: {}", self.loc, self.diagnostic.message)
            }
        }

        impl std::error::Error for $ty {}

        impl miette::Diagnostic for $ty {
            fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
                Some(Box::new(self.diagnostic.code))
            }

            fn severity(&self) -> Option<miette::Severity> {
                Some(match self.diagnostic.severity {
                    Severity::Error => miette::Severity::Error,
                    Severity::Warning => miette::Severity::Warning,
                })
            }

            fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
                self.diagnostic
                    .help
                    .as_ref()
                    .map(|h| Box::new(h) as Box<dyn fmt::Display>)
            }

            fn source_code(&self) -> Option<&dyn miette::SourceCode> {
                Some(&self.source)
            }

            fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
                let label =
                    (!self.diagnostic.label.is_empty()).then(|| self.diagnostic.label.clone());
                Some(Box::new(std::iter::once(
                    miette::LabeledSpan::new_with_span(label, self.diagnostic.span),
                )))
            }
        }
    };
}
impl_report!(Rendered<'_>);
impl_report!(Owned);
