//! Running checked cases through the compiled engine and the reference interpreter, and
//! what each case and file came to.

use super::author::{case_errors, default_client_id};
use super::coverage::Coverage;
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
    /// The case's name.
    pub name: String,
    /// Where the case is written.
    pub loc: Loc,
    /// Whether the decision was the one expected.
    pub passed: bool,
    pub(crate) expected: Expect,
    /// The compiled engine's verdict.
    pub got: Verdict,
    /// Whether the request was a publish with the retain flag (a `retain` case).
    pub retain: bool,
    /// The reference interpreter's decision.
    pub reference: Decision,
    /// The line of the deciding rule, if a rule decided.
    pub rule_line: Option<u32>,
    /// The label of the deciding rule, if a labelled rule decided.
    pub rule: Option<String>,
    /// Why the case failed (empty when it passed).
    pub failures: Vec<String>,
    /// The engine's explanation of the decision.
    pub explanation: Explanation,
}

/// The outcome of one test file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FileReport {
    /// The test file.
    pub file: PathBuf,
    pub(crate) policy: PathBuf,
    /// One result per case.
    pub results: Vec<CaseResult>,
    /// What the cases that ran exercised of the policy (`topicguard test --coverage`).
    #[serde(skip)]
    pub coverage: Coverage,
}

impl FileReport {
    /// The number of cases that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    /// The number of cases that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

/// Loads a test file and its policy, compiles the policy and runs every case.
pub fn run_file(path: impl AsRef<Path>) -> Result<FileReport, TestFileErrors> {
    run_file_filtered(path, None)
}

/// [`run_file`], running only the cases whose name contains `name_contains` (every case
/// is still checked against the policy).
pub fn run_file_filtered(
    path: impl AsRef<Path>,
    name_contains: Option<&str>,
) -> Result<FileReport, TestFileErrors> {
    let mut file = TestFile::load(path)?;
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
    let checked = file
        .cases
        .iter()
        .flat_map(|c| case_errors(c, engine.checked()));
    all_or_errors((), checked.collect())?;
    if let Some(wanted) = name_contains {
        file.cases.retain(|case| case.name.contains(wanted));
    }
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
    let mut coverage = Coverage::new(file.policy.clone(), engine.checked());
    let results = file
        .cases
        .iter()
        .map(|case| run_checked_case(case, engine, &oracle, &mut coverage))
        .collect();
    Ok(FileReport {
        file: file.path.clone(),
        policy: file.policy.clone(),
        results,
        coverage,
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
    let mut coverage = Coverage::new(PathBuf::new(), engine.checked());
    Ok(run_checked_case(
        case,
        engine,
        &Reference::new(engine.checked()),
        &mut coverage,
    ))
}

/// Runs one checked case through both engines and compares.
fn run_checked_case(
    case: &Case,
    engine: &Engine,
    oracle: &Reference<'_>,
    coverage: &mut Coverage,
) -> CaseResult {
    let identity = Identity::asserted(&case.identity, case.attrs.clone());
    let client_id = client_id(case, engine);
    let session = engine.bind(&identity, &client_id);
    let request = case.request();
    let decision = engine.decide(&session, request);
    let reference = oracle.decide(&oracle.bind(&identity, &client_id), request);
    let rule_line = decision.rule.map(|r| engine.checked().rule(r).loc.line);
    let rule = decision.rule.and_then(|r| {
        engine
            .checked()
            .rule(r)
            .label
            .as_deref()
            .map(str::to_string)
    });
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
    let explanation = engine.explain(&session, request);
    coverage.record(engine.checked(), &explanation, &session.attrs());
    CaseResult {
        name: case.name.clone(),
        loc: case.loc.clone(),
        passed: failures.is_empty(),
        expected: case.expect,
        got: decision.verdict,
        retain: matches!(
            request,
            crate::decide::Request::Publish { retain: true, .. }
        ),
        reference,
        rule_line,
        rule,
        failures,
        explanation,
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
