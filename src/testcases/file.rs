//! The test-file format: what a `*.test.toml` file says, parsed and checked on its own,
//! before its policy is loaded. Every malformed case is reported, and a file without cases
//! is an error. Reads only the file it is given.

use crate::compile::CompileError;
use crate::decide::{Request, Verdict};
use crate::policy::LoadError;
use crate::source::{Loc, Source};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// What a case expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Allow,
    /// Denied, explicitly or implicitly.
    Deny,
    ExplicitDeny,
    ImplicitDeny,
}

impl Expect {
    /// True when `verdict` is what this expectation asks for.
    pub fn accepts(self, verdict: Verdict) -> bool {
        match self {
            Expect::Allow => verdict == Verdict::Allowed,
            Expect::Deny => verdict != Verdict::Allowed,
            Expect::ExplicitDeny => verdict == Verdict::ExplicitDeny,
            Expect::ImplicitDeny => verdict == Verdict::ImplicitDeny,
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
            Expect::ExplicitDeny => "explicit-deny",
            Expect::ImplicitDeny => "implicit-deny",
        })
    }
}

/// The action a case asks about (`retain` is a publish with the retain flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseAction {
    Connect,
    Publish,
    Retain,
    Subscribe,
    Receive,
}

/// One case as written in the file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    identity: String,
    #[serde(default)]
    attrs: BTreeMap<String, String>,
    client_id: Option<String>,
    action: CaseAction,
    topic: Option<String>,
    expect: Expect,
    rule_line: Option<u32>,
    rule: Option<String>,
}

/// A whole test file as written.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    policy: String,
    #[serde(default, rename = "case")]
    cases: Vec<toml::Spanned<RawCase>>,
}

/// One checked case.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Case {
    pub name: String,
    /// Where the case's table starts in the test file.
    pub loc: Loc,
    pub identity: String,
    pub attrs: BTreeMap<String, String>,
    pub client_id: Option<String>,
    pub action: CaseAction,
    pub topic: Option<String>,
    pub expect: Expect,
    pub rule_line: Option<u32>,
    /// The label (`@id("...")`) of the rule expected to decide.
    pub rule: Option<String>,
}

impl Case {
    /// The request this case asks about.
    pub fn request(&self) -> Request<'_> {
        let topic = self.topic.as_deref().unwrap_or("");
        match self.action {
            CaseAction::Connect => Request::Connect,
            CaseAction::Publish => Request::publish(topic),
            CaseAction::Retain => Request::Publish {
                topic,
                retain: true,
            },
            CaseAction::Subscribe => Request::subscribe(topic),
            CaseAction::Receive => Request::receive(topic),
        }
    }
}

/// A loaded test file.
#[derive(Clone, Debug)]
pub struct TestFile {
    pub path: PathBuf,
    /// The policy path, resolved against the test file's directory.
    pub policy: PathBuf,
    pub cases: Vec<Case>,
}

/// A problem that keeps a test file from running. Every variant names the test file.
#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    #[error("cannot read test file `{file}`: {cause}")]
    Io { file: String, cause: std::io::Error },
    #[error("{loc}: invalid test file: {message}")]
    Syntax { loc: Loc, message: String },
    #[error("{loc}: case `{case}`: {message}")]
    Case {
        loc: Loc,
        case: String,
        message: String,
    },
    #[error("test file `{file}` has no `[[case]]`: state at least one expected decision")]
    NoCases { file: String },
    #[error("test file `{file}`: policy `{policy}` does not load: {error}")]
    Policy {
        file: String,
        policy: String,
        error: LoadError,
    },
    #[error("test file `{file}`: policy `{policy}` does not compile: {error}")]
    Compile {
        file: String,
        policy: String,
        error: CompileError,
    },
}

/// Every problem found in a test file (at least one), in file order.
#[derive(Debug)]
pub struct TestFileErrors {
    pub errors: Vec<TestFileError>,
}

impl fmt::Display for TestFileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for TestFileErrors {}

impl From<TestFileError> for TestFileErrors {
    fn from(error: TestFileError) -> TestFileErrors {
        TestFileErrors {
            errors: vec![error],
        }
    }
}

/// `Ok` when there is no error, else all of them.
pub(super) fn all_or_errors<T>(value: T, errors: Vec<TestFileError>) -> Result<T, TestFileErrors> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(TestFileErrors { errors })
    }
}

impl TestFile {
    /// Reads and parses a test file.
    pub fn load(path: impl AsRef<Path>) -> Result<TestFile, TestFileErrors> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|cause| TestFileError::Io {
            file: path.display().to_string(),
            cause,
        })?;
        TestFile::parse(path, &text)
    }

    /// Parses test-file text; `path` names the file in errors and anchors the policy path.
    /// Every malformed case is reported, and a file without cases is an error.
    pub fn parse(path: &Path, text: &str) -> Result<TestFile, TestFileErrors> {
        let source = Source::new(path.display().to_string(), text);
        let raw: RawFile = toml::from_str(text).map_err(|e| TestFileError::Syntax {
            loc: source.loc(e.span().map_or(0, |s| s.start)),
            message: e.message().to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut errors = Vec::new();
        if raw.cases.is_empty() {
            errors.push(TestFileError::NoCases {
                file: path.display().to_string(),
            });
        }
        let mut cases = Vec::new();
        for spanned in raw.cases {
            let loc = source.loc(spanned.span().start);
            match check_case(spanned.into_inner(), loc) {
                Ok(case) => cases.push(case),
                Err(error) => errors.push(error),
            }
        }
        let file = TestFile {
            path: path.to_path_buf(),
            policy: dir.join(&raw.policy),
            cases,
        };
        all_or_errors(file, errors)
    }
}

/// Checks what can be checked without the policy: the topic is present exactly when needed.
fn check_case(raw: RawCase, loc: Loc) -> Result<Case, TestFileError> {
    let problem = match (raw.action, &raw.topic) {
        (CaseAction::Connect, Some(_)) => Some("a connect case has no `topic`"),
        (CaseAction::Subscribe, None) => Some("a subscribe case needs `topic` (the filter)"),
        (action, None) if action != CaseAction::Connect => Some("this case needs a `topic`"),
        _ => None,
    };
    if let Some(message) = problem {
        return Err(TestFileError::Case {
            loc,
            case: raw.name,
            message: message.to_string(),
        });
    }
    Ok(Case {
        name: raw.name,
        loc,
        identity: raw.identity,
        attrs: raw.attrs,
        client_id: raw.client_id,
        action: raw.action,
        topic: raw.topic,
        expect: raw.expect,
        rule_line: raw.rule_line,
        rule: raw.rule,
    })
}
