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
    /// Allowed.
    Allow,
    /// Denied, explicitly or implicitly.
    Deny,
    /// Denied by a deny rule.
    ExplicitDeny,
    /// Denied because no rule allows it.
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
    /// Connect.
    Connect,
    /// Publish.
    Publish,
    /// Publish with retain.
    Retain,
    /// Subscribe.
    Subscribe,
    /// Receive.
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
    /// Each case as a table, read on its own so that one malformed case (an unknown
    /// field, an unknown action) does not hide the others' errors.
    #[serde(default, rename = "case")]
    cases: Vec<toml::Spanned<toml::Table>>,
}

/// One checked case.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Case {
    pub(crate) name: String,
    /// Where the case's table starts in the test file.
    pub loc: Loc,
    pub(crate) identity: String,
    pub(crate) attrs: BTreeMap<String, String>,
    pub(crate) client_id: Option<String>,
    pub(crate) action: CaseAction,
    pub(crate) topic: Option<String>,
    pub(crate) expect: Expect,
    pub(crate) rule_line: Option<u32>,
    /// The label (`@id("...")`) of the rule expected to decide.
    pub(crate) rule: Option<String>,
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
    pub(crate) path: PathBuf,
    /// The policy path, resolved against the test file's directory.
    pub policy: PathBuf,
    pub(crate) cases: Vec<Case>,
}

/// A problem that keeps a test file from running. Every variant names the test file.
#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    /// The test file cannot be read.
    #[error("cannot read test file `{file}`: {cause}")]
    Io {
        /// The test file.
        file: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The test file is not valid TOML or has a bad field.
    #[error("{loc}: invalid test file: {message}")]
    Syntax {
        /// Where.
        loc: Loc,
        /// What is wrong.
        message: String,
    },
    /// A case is invalid.
    #[error("{loc}: case `{case}`: {message}")]
    Case {
        /// Where the case is.
        loc: Loc,
        /// The case's name.
        case: String,
        /// What is wrong.
        message: String,
    },
    /// The test file has no case.
    #[error("test file `{file}` has no `[[case]]`: state at least one expected decision")]
    NoCases {
        /// The test file.
        file: String,
    },
    /// The policy the test file names does not load.
    #[error("test file `{file}`: policy `{policy}` does not load: {error}")]
    Policy {
        /// The test file.
        file: String,
        /// The policy file.
        policy: String,
        /// Why it does not load.
        error: LoadError,
    },
    /// The policy the test file names does not compile.
    #[error("test file `{file}`: policy `{policy}` does not compile: {error}")]
    Compile {
        /// The test file.
        file: String,
        /// The policy file.
        policy: String,
        /// Why it does not compile.
        error: CompileError,
    },
}

/// Every problem found in a test file (at least one), in file order.
#[derive(Debug)]
pub struct TestFileErrors {
    /// Every error, in file order.
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

/// A test file that is not UTF-8: the file:line:col of its first bad byte.
fn not_utf8(path: &Path, error: std::string::FromUtf8Error) -> TestFileError {
    let offset = error.utf8_error().valid_up_to();
    let bytes = error.into_bytes();
    let (line, col) = crate::source::utf8_line_col(&bytes, offset);
    TestFileError::Syntax {
        loc: Loc {
            file: path.display().to_string().into(),
            line,
            col,
        },
        message: format!(
            "not valid UTF-8: byte 0x{:02X} (offset {offset}) does not start a UTF-8 character",
            bytes.get(offset).copied().unwrap_or(0)
        ),
    }
}

impl TestFile {
    /// Reads and parses a test file.
    pub fn load(path: impl AsRef<Path>) -> Result<TestFile, TestFileErrors> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|cause| TestFileError::Io {
            file: path.display().to_string(),
            cause,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| not_utf8(path, e))?;
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
            let span = spanned.span();
            let loc = source.loc(span.start);
            let read = read_case(spanned.into_inner(), span, &source);
            match read.and_then(|raw| check_case(raw, loc)) {
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

/// One case's table as a [`RawCase`]. An error names the case and points at the bad key
/// or value: the case's own text (after its `[[case]]` header, at `span`) is read again on
/// its own to find where; failing that, at the case's header.
fn read_case(
    table: toml::Table,
    span: std::ops::Range<usize>,
    source: &Source,
) -> Result<RawCase, TestFileError> {
    let name = table
        .get("name")
        .and_then(toml::Value::as_str)
        .map(str::to_string);
    let error = match toml::Value::Table(table).try_into::<RawCase>() {
        Ok(raw) => return Ok(raw),
        Err(error) => error,
    };
    // The case's keys: from its header to the next table header (or the end).
    let rest = source.text().get(span.end..).unwrap_or("");
    let mut len = 0;
    for line in rest.split_inclusive('\n') {
        if len > 0 && line.trim_start().starts_with('[') {
            break;
        }
        len += line.len();
    }
    let at = match toml::from_str::<RawCase>(&rest[..len]) {
        Err(precise) => precise.span().map_or(span.start, |s| span.end + s.start),
        Ok(_) => span.start,
    };
    Err(TestFileError::Case {
        loc: source.loc(at),
        case: name.unwrap_or_else(|| "(no name)".to_string()),
        message: error.message().trim_end().to_string(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One malformed case (an unknown action, an unknown field) does not hide another's
    /// error: each is reported with its case's location and name.
    #[test]
    fn a_malformed_case_table_does_not_hide_the_others() {
        let text = "policy = \"p.policy\"\n\
            [[case]]\nname = \"a\"\nidentity = \"m\"\naction = \"fly\"\nexpect = \"allow\"\n\
            [[case]]\nname = \"b\"\nidentity = \"m\"\naction = \"connect\"\nexpect = \"allow\"\ncolour = 1\n\
            [[case]]\nname = \"c\"\nidentity = \"m\"\naction = \"publish\"\nexpect = \"allow\"\n";
        let errors = TestFile::parse(Path::new("t.test.toml"), text)
            .expect_err("three bad cases")
            .errors;
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(
            shown[0].starts_with("t.test.toml:5:10: case `a`: "),
            "{}",
            shown[0]
        );
        assert!(shown[0].contains("fly"), "{}", shown[0]);
        assert!(
            shown[1].starts_with("t.test.toml:12:1: case `b`: "),
            "{}",
            shown[1]
        );
        assert!(shown[1].contains("colour"), "{}", shown[1]);
        assert!(shown[2].contains("needs a `topic`"), "{}", shown[2]);
    }
}
