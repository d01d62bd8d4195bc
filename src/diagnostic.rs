//! Errors and warnings about a policy, each pointing at the source.
//!
//! Parsing and checking collect every problem they find into a [`Diagnostics`] list rather
//! than stopping at the first. A [`Diagnostic`] has a stable `code` (tests and tools match
//! on it, never on wording), a message, the span it is about, and optional help. They render
//! with miette as `file:line:col` plus a caret snippet, or as JSON. Nothing here decides
//! anything; it only reports.

use crate::source::{Loc, Source, Span};
use std::fmt;

macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $text:literal,)+) => {
        /// The stable code of a diagnostic: tests and tools match on it, never on wording.
        /// Every code is listed, with its meaning, in `docs/diagnostics.md` (a test keeps
        /// that list equal to this enum).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Code {
            /// Every code, in the order of the documentation.
            pub const ALL: &[Code] = &[$(Code::$variant,)+];

            /// The code as written in output, e.g. `check::unknown-attribute`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)+
                }
            }

            /// What the code means (its documentation).
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => concat!($($doc),+),)+
                }
            }
        }
    };
}

codes! {
    /// The text does not follow the policy grammar (`grammar/policy.pest`).
    ParseSyntax = "parse::syntax",
    /// An identity block is opened with `{` and never closed.
    ParseUnclosedBlock = "parse::unclosed-block",
    /// A quoted string with no closing `"` on its line.
    ParseUnterminatedString = "parse::unterminated-string",
    /// A name (identity, attribute, set, capture) is not a valid identifier.
    ParseBadName = "parse::bad-name",
    /// A character the policy text may not hold: a misplaced byte order mark, a control character, or a character a topic template may not contain.
    ParseForbiddenCharacter = "parse::forbidden-character",
    /// A `}` in a topic template without a matching `{`.
    ParseUnmatchedBrace = "parse::unmatched-brace",
    /// A `{` in a topic template with no closing `}` in its level.
    ParseUnterminatedBrace = "parse::unterminated-brace",
    /// A `{` inside `{...}` in a topic template.
    ParseNestedBrace = "parse::nested-brace",
    /// An empty `{}` in a topic template.
    ParseEmptyBrace = "parse::empty-brace",
    /// An empty alternative in `{a|b}`.
    ParseEmptyAlternative = "parse::empty-alternative",
    /// An alternative in `{a|b}` holds a character it may not (a wildcard, `/`, a brace).
    ParseBadAlternative = "parse::bad-alternative",
    /// `+` or `#` as part of a topic level instead of a whole level.
    ParseWildcardInLevel = "parse::wildcard-in-level",
    /// An attribute touches a capture, a set or another attribute with no separator, so a value could be split two ways.
    CheckAmbiguousTemplate = "check::ambiguous-template",
    /// An anonymous identity binds attributes, but has no credential to take them from.
    CheckAnonymousBinds = "check::anonymous-binds",
    /// A client or extraction template holds something other than text, `{attr}` and `{+capture}`.
    CheckBadClientPart = "check::bad-client-part",
    /// Template text holds a character the value grammars forbid there.
    CheckBadClientText = "check::bad-client-text",
    /// A rule label (`@id("...")`) is outside the label grammar.
    CheckBadLabel = "check::bad-label",
    /// A set value is outside the attribute-value grammar.
    CheckBadSetValue = "check::bad-set-value",
    /// An identity setting has a value it cannot take.
    CheckBadSetting = "check::bad-setting",
    /// An attribute source (claim name, certificate field) is empty or malformed.
    CheckBadSource = "check::bad-source",
    /// A `trust` value is not a valid trust label.
    CheckBadTrustLabel = "check::bad-trust-label",
    /// The client template refers to `{client}` itself.
    CheckClientInClient = "check::client-in-client",
    /// A `connect` rule names a topic.
    CheckConnectWithTopic = "check::connect-with-topic",
    /// An action is listed twice in one rule.
    CheckDuplicateAction = "check::duplicate-action",
    /// An attribute is bound twice in one identity.
    CheckDuplicateAttribute = "check::duplicate-attribute",
    /// An identity has a second `client` template.
    CheckDuplicateClient = "check::duplicate-client",
    /// An identity name is defined twice.
    CheckDuplicateIdentity = "check::duplicate-identity",
    /// Two rules have the same label.
    CheckDuplicateLabel = "check::duplicate-label",
    /// A set name is defined twice.
    CheckDuplicateSet = "check::duplicate-set",
    /// A value is listed twice in one set.
    CheckDuplicateSetValue = "check::duplicate-set-value",
    /// An identity setting is given twice.
    CheckDuplicateSetting = "check::duplicate-setting",
    /// A set is empty, so a rule using it can never match.
    CheckEmptySet = "check::empty-set",
    /// `#` is not the last level of a topic template.
    CheckHashNotLast = "check::hash-not-last",
    /// Two identities share a credential kind and trust, and nothing tells their credentials apart.
    CheckIndistinguishableIdentities = "check::indistinguishable-identities",
    /// An identity has no `client` template.
    CheckMissingClient = "check::missing-client",
    /// A publish, subscribe or receive rule has no topic template.
    CheckMissingTopic = "check::missing-topic",
    /// A name that is reserved (`any`) is defined.
    CheckReservedName = "check::reserved-name",
    /// Two identities share the default trust and are told apart only by names in the credential.
    CheckSharedDefaultTrust = "check::shared-default-trust",
    /// A policy defines more than 64 identities.
    CheckTooManyIdentities = "check::too-many-identities",
    /// A JWT algorithm name is unknown or not allowed.
    CheckUnknownAlgorithm = "check::unknown-algorithm",
    /// A template names an attribute its identity does not bind.
    CheckUnknownAttribute = "check::unknown-attribute",
    /// A `require ... is` names an unknown check.
    CheckUnknownCheck = "check::unknown-check",
    /// A rule names an identity the policy does not define.
    CheckUnknownIdentity = "check::unknown-identity",
    /// A template names a set the policy does not define.
    CheckUnknownSet = "check::unknown-set",
    /// An identity block holds a setting its kind does not have.
    CheckUnknownSetting = "check::unknown-setting",
    /// A wildcard is not a whole level of a template.
    CheckWildcardInLevel = "check::wildcard-in-level",
    /// (warning) A client template leaves out attributes that scope the identity's topics.
    LintClientIdNotPinned = "lint::client-id-not-pinned",
    /// (warning) Some actions of an allow never take effect: denies remove them for all its identities and topics.
    LintDeadGrant = "lint::dead-grant",
    /// (warning) A rule repeats an earlier rule.
    LintDuplicateRule = "lint::duplicate-rule",
    /// (warning) A rule applies to no identity and can never match.
    LintNeverMatches = "lint::never-matches",
    /// (warning) No rule allows an identity to connect, so none of its rules is used.
    LintNoConnect = "lint::no-connect",
    /// (warning) An allowed `receive` overlaps no allowed `subscribe` of the identity: nothing can deliver it.
    LintReceiveWithoutSubscribe = "lint::receive-without-subscribe",
    /// (warning) An allowed `retain` overlaps no allowed `publish` of the identity: a retained publish needs both.
    LintRetainWithoutPublish = "lint::retain-without-publish",
    /// (warning) An allow never takes effect: an earlier deny covers all it allows.
    LintShadowedAllow = "lint::shadowed-allow",
    /// (warning) An allowed `subscribe` overlaps no allowed `receive` of the identity: it delivers nothing.
    LintSubscribeWithoutReceive = "lint::subscribe-without-receive",
    /// (warning) An allow grants nothing that broader allows do not already grant.
    LintSubsumedAllow = "lint::subsumed-allow",
    /// (warning) A set no template, `require ... in` or `assert` uses.
    LintUnusedSet = "lint::unused-set",
    /// The policy has more rules than the rule limit.
    CompileTooManyRules = "compile::too-many-rules",
    /// A topic template has more levels than the limit.
    CompileTemplateTooDeep = "compile::template-too-deep",
    /// A rule is longer than the byte limit.
    CompileRuleTooLong = "compile::rule-too-long",
    /// A level lists more alternatives than the limit.
    CompileTooManyAlternatives = "compile::too-many-alternatives",
    /// The automaton needs more nodes than the limit.
    CompileTooManyNodes = "compile::too-many-nodes",
    /// A level pattern needs more memory than the pattern limit.
    CompilePatternTooLarge = "compile::pattern-too-large",
    /// A level pattern could not be compiled by the regex engine.
    CompilePattern = "compile::pattern",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// The code list as `docs/diagnostics.md` shows it: one table row per code.
pub fn code_table() -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for code in Code::ALL {
        out.push_str(&format!("| `{code}` | {} |\n", code.meaning().trim()));
    }
    out
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A lint: the policy still loads.
    Warning,
    /// An error: the policy does not load.
    Error,
}

/// One error or warning about a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub(crate) severity: Severity,
    /// Stable identifier, e.g. `check::unknown-attribute`.
    pub code: Code,
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
    /// Text shown under the caret.
    pub label: String,
    /// How to fix it, when there is a suggestion.
    pub help: Option<String>,
}

impl Diagnostic {
    pub(crate) fn error(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
        }
    }

    pub(crate) fn warning(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    pub(crate) fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// True when the severity is `Error`.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// All diagnostics about one source file.
#[derive(Clone, Debug)]
pub struct Diagnostics {
    /// The policy text the spans point into.
    pub source: Source,
    /// The diagnostics, in the order found.
    pub items: Vec<Diagnostic>,
}

/// The JSON shape of one diagnostic.
#[derive(serde::Serialize)]
pub struct DiagnosticJson<'a> {
    pub(crate) severity: Severity,
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
    pub(crate) file: &'a str,
    pub(crate) line: u32,
    pub(crate) col: u32,
    pub(crate) label: &'a str,
    pub(crate) help: Option<&'a str>,
}

impl Diagnostics {
    pub(crate) fn new(source: Source) -> Diagnostics {
        Diagnostics {
            source,
            items: Vec::new(),
        }
    }

    /// Adds a diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| !d.is_error())
    }

    /// Sorts by position so output reads top to bottom.
    pub fn sort(&mut self) {
        self.items
            .sort_by_key(|d| (d.span.start, d.span.end, d.severity));
    }

    /// The file:line:col of a diagnostic.
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

    /// The diagnostics as JSON values (`--format json`).
    pub fn to_json(&self) -> Vec<DiagnosticJson<'_>> {
        self.items
            .iter()
            .map(|d| {
                let loc = self.loc(d);
                DiagnosticJson {
                    severity: d.severity,
                    code: d.code.as_str(),
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
