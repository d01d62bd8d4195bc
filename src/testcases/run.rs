//! Running checked cases through the compiled engine and the reference interpreter, and
//! what each case and file came to.

use super::author::{case_errors, default_client_id};
use super::file::{Case, Expect, TestFile, TestFileError, TestFileErrors, all_or_errors};
use crate::decide::Engine;
use crate::decide::reference::Reference;
use crate::decide::{Decision, Explanation, Verdict};
use crate::identity::Identity;
use crate::policy::Policy;
use crate::source::Loc;
use std::path::{Path, PathBuf};

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
    /// The label of the deciding rule, if a labelled rule decided.
    pub rule: Option<String>,
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
pub fn run_file(path: impl AsRef<Path>) -> Result<FileReport, TestFileErrors> {
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

/// Runs every case of a loaded test file against a compiled engine, once every case has
/// been checked against the policy (all problems are reported, no case runs).
pub fn run_cases(file: &TestFile, engine: &Engine) -> Result<FileReport, TestFileErrors> {
    let errors: Vec<TestFileError> = file
        .cases
        .iter()
        .flat_map(|case| case_errors(case, engine.checked()))
        .collect();
    all_or_errors((), errors)?;
    let oracle = Reference::new(engine.checked());
    let results = file
        .cases
        .iter()
        .map(|case| run_checked_case(case, engine, &oracle))
        .collect();
    Ok(FileReport {
        file: file.path.clone(),
        policy: file.policy.clone(),
        results,
    })
}

/// The client id a case connects with: given, or the client template rendered.
fn client_id(case: &Case, engine: &Engine) -> String {
    case.client_id.clone().unwrap_or_else(|| {
        default_client_id(engine.checked(), &case.identity, &case.attrs).unwrap_or_default()
    })
}

/// Checks one case against the policy, then runs it through both engines.
pub fn run_case(case: &Case, engine: &Engine) -> Result<CaseResult, TestFileErrors> {
    all_or_errors((), case_errors(case, engine.checked()))?;
    Ok(run_checked_case(
        case,
        engine,
        &Reference::new(engine.checked()),
    ))
}

/// Runs one checked case through both engines and compares.
fn run_checked_case(case: &Case, engine: &Engine, oracle: &Reference<'_>) -> CaseResult {
    let identity = Identity::asserted(&case.identity, case.attrs.clone());
    let client_id = client_id(case, engine);
    let session = engine.bind(&identity, &client_id);
    let request = case.request();
    let decision = engine.decide(&session, request);
    let reference = oracle.decide(&oracle.bind(&identity, &client_id), request);
    let rule_line = decision.rule.map(|r| engine.checked().rule(r).loc.line);
    let rule = decision
        .rule
        .and_then(|r| engine.checked().rule(r).label.clone());
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
    if let Some(want) = &case.rule
        && rule.as_deref() != Some(want.as_str())
    {
        let got = match decision.rule {
            Some(r) => format!("the rule {}", engine.checked().rule(r).cite()),
            None => "no rule".to_string(),
        };
        failures.push(format!("expected the rule `{want}` to decide, got {got}"));
    }
    CaseResult {
        name: case.name.clone(),
        loc: case.loc.clone(),
        passed: failures.is_empty(),
        expected: case.expect,
        got: decision.verdict,
        reference,
        rule_line,
        rule,
        failures,
        explanation: engine.explain(&session, request),
    }
}

/// `verdict (rule at line N)` for failure messages.
fn describe(engine: &Engine, decision: &Decision) -> String {
    match decision.rule {
        Some(rule) => format!(
            "{} (rule {})",
            decision.verdict,
            engine.checked().rule(rule).cite()
        ),
        None => format!("{} ({})", decision.verdict, decision.reason),
    }
}
