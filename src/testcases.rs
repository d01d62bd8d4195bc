//! Policy test files (`*.test.toml`): expected decisions stated next to a policy.
//!
//! A test file names its policy (relative to the test file) and lists cases:
//!
//! ```toml
//! policy = "xfinity.policy"
//! [[case]]
//! name = "mobile publishes a request into its own namespace"
//! identity = "mobile"
//! attrs = { pid = "P1", aid = "A1", jti = "J1" }
//! client_id = "xfi:P1_A1:clt:J1"   # optional: the identity's client template rendered with attrs
//! action = "publish"                # connect | publish | retain | subscribe | receive
//! topic = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1"   # the filter for subscribe; absent for connect
//! expect = "allow"                  # allow | deny | explicit-deny | implicit-deny
//! rule_line = 39                    # optional: the line of the deciding rule
//! ```
//!
//! [`run_file`] runs every case through the compiled [`Engine`] and through the reference
//! interpreter ([`crate::decide::reference::decide`]): a case passes only when both agree
//! with each other and with the expectation. Both `topicguard test` and `cargo test` use
//! this module. It only reads files; it never writes, and a malformed file is an error
//! naming the file, the line and the case, never a silently skipped case.

use crate::check::{Checked, ClientPiece};
use crate::compile::CompileError;
use crate::decide::reference::Reference;
use crate::decide::{Decision, Explanation, Request, Verdict};
use crate::identity::Identity;
use crate::policy::{LoadError, Policy};
use crate::source::{Loc, Source};
use crate::{Engine, Session};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The file-name suffix of policy test files.
pub const TEST_FILE_SUFFIX: &str = ".test.toml";

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

/// A test file that cannot be run. Every variant names the test file.
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

impl TestFile {
    /// Reads and parses a test file.
    pub fn load(path: impl AsRef<Path>) -> Result<TestFile, TestFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|cause| TestFileError::Io {
            file: path.display().to_string(),
            cause,
        })?;
        TestFile::parse(path, &text)
    }

    /// Parses test-file text; `path` names the file in errors and anchors the policy path.
    pub fn parse(path: &Path, text: &str) -> Result<TestFile, TestFileError> {
        let source = Source::new(path.display().to_string(), text);
        let raw: RawFile = toml::from_str(text).map_err(|e| TestFileError::Syntax {
            loc: source.loc(e.span().map_or(0, |s| s.start)),
            message: e.message().to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let cases = raw
            .cases
            .into_iter()
            .map(|spanned| {
                let loc = source.loc(spanned.span().start);
                check_case(spanned.into_inner(), loc)
            })
            .collect::<Result<Vec<Case>, TestFileError>>()?;
        Ok(TestFile {
            path: path.to_path_buf(),
            policy: dir.join(&raw.policy),
            cases,
        })
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
    })
}

/// Why a default client id could not be derived from the identity's client template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientIdError {
    #[error("the policy defines no identity `{identity}` (it defines: {known})")]
    UnknownIdentity { identity: String, known: String },
    #[error(
        "the client template `{template}` captures `{{+{capture}}}`, so the client id must be given"
    )]
    HasCapture { template: String, capture: String },
    #[error("the client template `{template}` needs attribute `{attr}`, which is not given")]
    MissingAttr { template: String, attr: String },
}

/// Renders an identity's client template with the given attributes: the client id a
/// well-behaved client of that identity would connect with.
pub fn default_client_id(
    checked: &Checked,
    identity: &str,
    attrs: &BTreeMap<String, String>,
) -> Result<String, ClientIdError> {
    let Some((_, def)) = checked.identity(identity) else {
        let known: Vec<&str> = checked.identities.iter().map(|d| d.name.as_str()).collect();
        return Err(ClientIdError::UnknownIdentity {
            identity: identity.to_string(),
            known: known.join(", "),
        });
    };
    let template = || client_template_text(&def.client);
    let mut out = String::new();
    for piece in &def.client {
        match piece {
            ClientPiece::Text(text) => out.push_str(text),
            ClientPiece::Attr(attr) => match attrs.get(attr) {
                Some(value) => out.push_str(value),
                None => {
                    return Err(ClientIdError::MissingAttr {
                        template: template(),
                        attr: attr.clone(),
                    });
                }
            },
            ClientPiece::Capture(capture) => {
                return Err(ClientIdError::HasCapture {
                    template: template(),
                    capture: capture.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// The client template as written in the policy, for messages.
fn client_template_text(pieces: &[ClientPiece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            ClientPiece::Text(t) => t.clone(),
            ClientPiece::Attr(a) => format!("{{{a}}}"),
            ClientPiece::Capture(c) => format!("{{+{c}}}"),
        })
        .collect()
}

/// The outcome of one case.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaseResult {
    pub name: String,
    /// Where the case is written.
    pub loc: Loc,
    pub passed: bool,
    pub expected: Expect,
    /// The compiled engine's verdict.
    pub got: Verdict,
    /// The reference interpreter's decision.
    pub reference: Decision,
    /// The line of the deciding rule, if a rule decided.
    pub rule_line: Option<u32>,
    /// Why the case failed (empty when it passed).
    pub failures: Vec<String>,
    pub explanation: Explanation,
}

/// The outcome of one test file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FileReport {
    pub file: PathBuf,
    pub policy: PathBuf,
    pub results: Vec<CaseResult>,
}

impl FileReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

/// Loads a test file and its policy, compiles the policy and runs every case.
pub fn run_file(path: impl AsRef<Path>) -> Result<FileReport, TestFileError> {
    let file = TestFile::load(path)?;
    let policy_error = |error| TestFileError::Policy {
        file: file.path.display().to_string(),
        policy: file.policy.display().to_string(),
        error,
    };
    let policy = Policy::load(&file.policy).map_err(policy_error)?;
    let engine = Engine::new(&policy.checked).map_err(|error| TestFileError::Compile {
        file: file.path.display().to_string(),
        policy: file.policy.display().to_string(),
        error,
    })?;
    run_cases(&file, &engine)
}

/// Runs every case of a loaded test file against a compiled engine.
pub fn run_cases(file: &TestFile, engine: &Engine) -> Result<FileReport, TestFileError> {
    let results = file
        .cases
        .iter()
        .map(|case| run_case(case, engine))
        .collect::<Result<Vec<CaseResult>, TestFileError>>()?;
    Ok(FileReport {
        file: file.path.clone(),
        policy: file.policy.clone(),
        results,
    })
}

/// Binds the case's identity; the client id defaults to the rendered client template.
fn bind_case(case: &Case, engine: &Engine) -> Result<Session, TestFileError> {
    let client_id = match &case.client_id {
        Some(id) => id.clone(),
        None => default_client_id(engine.checked(), &case.identity, &case.attrs).map_err(|e| {
            TestFileError::Case {
                loc: case.loc.clone(),
                case: case.name.clone(),
                message: format!("cannot derive the client id: {e}; give `client_id`"),
            }
        })?,
    };
    let identity = Identity::asserted(&case.identity, case.attrs.clone());
    Ok(engine.bind(&identity, &client_id))
}

/// Runs one case through both engines and compares.
pub fn run_case(case: &Case, engine: &Engine) -> Result<CaseResult, TestFileError> {
    let session = bind_case(case, engine)?;
    let request = case.request();
    let decision = engine.decide(&session, request);
    let oracle = Reference::new(engine.checked());
    let identity = Identity::asserted(&case.identity, case.attrs.clone());
    let binding = oracle.bind(&identity, session.client_id());
    let reference = oracle.decide(&binding, request);
    let rule_line = decision.rule.map(|r| engine.checked().rule(r).loc.line);
    let mut failures = Vec::new();
    if !case.expect.accepts(decision.verdict) {
        failures.push(format!(
            "expected {}, the engine answered {}",
            case.expect, decision.verdict
        ));
    }
    if (reference.verdict, reference.rule) != (decision.verdict, decision.rule) {
        failures.push(format!(
            "the engines disagree: compiled {}, reference {}",
            describe(engine, &decision),
            describe(engine, &reference)
        ));
    }
    if let Some(want) = case.rule_line
        && rule_line != Some(want)
    {
        let got = rule_line.map_or("no rule".to_string(), |l| format!("line {l}"));
        failures.push(format!(
            "expected the rule at line {want} to decide, got {got}"
        ));
    }
    Ok(CaseResult {
        name: case.name.clone(),
        loc: case.loc.clone(),
        passed: failures.is_empty(),
        expected: case.expect,
        got: decision.verdict,
        reference,
        rule_line,
        failures,
        explanation: engine.explain(&session, request),
    })
}

/// `verdict (rule at line N)` for failure messages.
fn describe(engine: &Engine, decision: &Decision) -> String {
    match decision.rule {
        Some(rule) => format!(
            "{} (rule at line {})",
            decision.verdict,
            engine.checked().rule(rule).loc.line
        ),
        None => format!("{} ({})", decision.verdict, decision.reason),
    }
}

/// Every `*.test.toml` file under `dir` (recursively), sorted by path.
pub fn discover(dir: impl AsRef<Path>) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.as_ref().to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else if is_test_file(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// True for a path whose file name ends in `.test.toml`.
pub fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(TEST_FILE_SUFFIX) && n.len() > TEST_FILE_SUFFIX.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "identity d from anonymous {\n    client \"dev\"\n}\n\
        allow d connect\nallow d publish \"a/+\"\ndeny d publish \"a/secret\"\n";

    fn engine() -> Engine {
        let policy = Policy::from_source(&Source::new("p.policy", POLICY)).expect("valid");
        Engine::new(&policy.checked).expect("compiles")
    }

    fn parse(text: &str) -> Result<TestFile, TestFileError> {
        TestFile::parse(Path::new("dir/t.test.toml"), text)
    }

    fn case(action: &str, topic: &str, expect: &str, extra: &str) -> String {
        let topic_line = if topic.is_empty() {
            String::new()
        } else {
            format!("topic = \"{topic}\"\n")
        };
        format!(
            "[[case]]\nname = \"{action} {topic}\"\nidentity = \"d\"\naction = \"{action}\"\n\
             {topic_line}expect = \"{expect}\"\n{extra}"
        )
    }

    fn run(cases: &[String]) -> FileReport {
        let text = format!("policy = \"p.policy\"\n{}", cases.concat());
        let file = parse(&text).expect("valid test file");
        run_cases(&file, &engine()).expect("runs")
    }

    #[test]
    fn the_policy_path_is_relative_to_the_test_file() {
        let file = parse("policy = \"x.policy\"\n").expect("valid");
        assert_eq!(file.policy, Path::new("dir/x.policy"));
        assert!(file.cases.is_empty());
    }

    #[test]
    fn passing_and_failing_cases_are_told_apart() {
        let report = run(&[
            case("connect", "", "allow", ""),
            case("publish", "a/b", "allow", "rule_line = 5\n"),
            case("publish", "a/secret", "explicit-deny", "rule_line = 6\n"),
            case("subscribe", "a/b", "implicit-deny", ""),
            case("publish", "a/b", "deny", ""),
            case("publish", "a/b", "allow", "rule_line = 6\n"),
            case("retain", "a/b", "allow", ""),
        ]);
        let passed: Vec<bool> = report.results.iter().map(|r| r.passed).collect();
        assert_eq!(passed, [true, true, true, true, false, false, false]);
        assert_eq!((report.passed(), report.failed()), (4, 3));
        let wrong_line = &report.results[5];
        assert_eq!(
            wrong_line.failures,
            ["expected the rule at line 6 to decide, got line 5"]
        );
        let denied = &report.results[4];
        assert!(denied.failures[0].contains("expected deny"), "{denied:?}");
        assert_eq!(denied.got, Verdict::Allowed);
        assert_eq!(denied.explanation.decision.verdict, Verdict::Allowed);
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let text = format!(
            "policy = \"p\"\n{}",
            case("connect", "", "allow", "colour = 1\n")
        );
        let error = parse(&text).expect_err("unknown field").to_string();
        assert!(error.starts_with("dir/t.test.toml:7:1"), "{error}");
        assert!(error.contains("colour"), "{error}");
        let error = parse("policy = \"p\"\n[[case]]\nname = \"x\"\n")
            .expect_err("missing fields")
            .to_string();
        assert!(error.contains("dir/t.test.toml:2"), "{error}");
        let bad_expect = case("connect", "", "maybe", "");
        let error = parse(&format!("policy = \"p\"\n{bad_expect}")).expect_err("bad enum");
        assert!(error.to_string().contains("maybe"), "{error}");
    }

    #[test]
    fn a_topic_is_required_exactly_when_the_action_has_one() {
        for (action, topic) in [("connect", "a"), ("publish", ""), ("subscribe", "")] {
            let text = format!("policy = \"p\"\n\n{}", case(action, topic, "allow", ""));
            let error = parse(&text).expect_err("topic misuse").to_string();
            assert!(error.starts_with("dir/t.test.toml:3:1: case `"), "{error}");
            assert!(error.contains("topic"), "{error}");
        }
    }

    #[test]
    fn a_client_template_with_a_capture_needs_an_explicit_client_id() {
        let text = "identity s from anonymous {\n    client \"s:{+i}\"\n}\nallow s connect\n";
        let policy = Policy::from_source(&Source::new("p", text)).expect("valid");
        let engine = Engine::new(&policy.checked).expect("compiles");
        let without = parse(&format!(
            "policy = \"p\"\n{}",
            case("connect", "", "allow", "")
        ))
        .expect("valid");
        let without = without.cases[0].clone();
        let without = Case {
            identity: "s".into(),
            ..without
        };
        let error = run_case(&without, &engine).expect_err("needs client_id");
        assert!(error.to_string().contains("give `client_id`"), "{error}");
        let with = Case {
            client_id: Some("s:1".into()),
            ..without
        };
        assert!(run_case(&with, &engine).expect("runs").passed);
    }

    #[test]
    fn expectations_accept_the_right_verdicts() {
        use Verdict::*;
        let accepted = |e: Expect| [Allowed, ExplicitDeny, ImplicitDeny].map(|v| e.accepts(v));
        assert_eq!(accepted(Expect::Allow), [true, false, false]);
        assert_eq!(accepted(Expect::Deny), [false, true, true]);
        assert_eq!(accepted(Expect::ExplicitDeny), [false, true, false]);
        assert_eq!(accepted(Expect::ImplicitDeny), [false, false, true]);
    }

    #[test]
    fn only_test_toml_files_are_test_files() {
        assert!(is_test_file(Path::new("a/x.test.toml")));
        assert!(!is_test_file(Path::new("a/.test.toml")));
        assert!(!is_test_file(Path::new("a/x.toml")));
        assert!(!is_test_file(Path::new("a/x.policy")));
    }
}
