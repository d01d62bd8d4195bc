//! `topicguard test PATH...`: run policy test files (see [`topicguard::testcases`]).
//!
//! Paths are test files or directories searched for `*.test.toml`. Each failing case is
//! printed with why it failed and the engine's explanation; the last line of text output
//! is always `N passed, N failed`. Exit 1 if a case failed, 2 if a test file or its policy
//! cannot be used: every problem of such a file is reported (an unknown identity or
//! attribute in a case, a file without cases, ...), none of its cases runs, and the other
//! files still run. Never writes files.

use super::output::{CliError, Exit, Out, error_json};
use std::path::{Path, PathBuf};
use topicguard::testcases::{self, CaseResult, FileReport};

/// Arguments of `topicguard test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Test files, or directories searched recursively for `*.test.toml` files.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
}

/// Runs `topicguard test`.
pub fn run(args: &TestArgs, out: Out) -> Exit {
    let mut worst = Exit::Ok;
    let mut files = Vec::new();
    for path in &args.paths {
        match expand(path) {
            Ok(found) => files.extend(found),
            Err(error) => worst = worst.max(report_error(out, path, &error, &mut Vec::new())),
        }
    }
    let (mut passed, mut failed) = (0, 0);
    let mut results = Vec::new();
    for file in &files {
        match testcases::run_file(file) {
            Ok(report) => {
                passed += report.passed();
                failed += report.failed();
                if !out.is_json() {
                    out.print(&render_report(&report));
                }
                results.push(serde_json::to_value(&report).unwrap_or_default());
            }
            Err(errors) => {
                for error in errors.errors {
                    let error = CliError::TestFile(error);
                    worst = worst.max(report_error(out, file, &error, &mut results));
                }
            }
        }
    }
    if out.is_json() {
        let summary = serde_json::json!({ "files": results, "passed": passed, "failed": failed });
        out.json(&summary);
    } else {
        out.print(&format!("{passed} passed, {failed} failed\n"));
    }
    if failed > 0 {
        worst = worst.max(Exit::Failure);
    }
    worst
}

/// A path given on the command line: a file as is, a directory's test files.
fn expand(path: &Path) -> Result<Vec<PathBuf>, CliError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let found = testcases::discover(path)
        .map_err(|e| CliError::Usage(format!("cannot search `{}`: {e}", path.display())))?;
    if found.is_empty() {
        return Err(CliError::Usage(format!(
            "no *{} files under `{}`",
            testcases::TEST_FILE_SUFFIX,
            path.display()
        )));
    }
    Ok(found)
}

/// Prints (text) or records (JSON) an error about one path.
fn report_error(
    out: Out,
    path: &Path,
    error: &CliError,
    results: &mut Vec<serde_json::Value>,
) -> Exit {
    if out.is_json() {
        let file = path.display().to_string();
        results.push(serde_json::json!({ "file": file, "error": error_json(error) }));
    } else {
        out.eprint(&out.render_error(error));
    }
    Exit::Usage
}

/// One line per file, and every failing case in full.
pub fn render_report(report: &FileReport) -> String {
    let mut text = String::new();
    for result in report.results.iter().filter(|r| !r.passed) {
        text.push_str(&render_failure(result));
    }
    let total = report.results.len();
    let file = report.file.display();
    text.push_str(&match report.failed() {
        0 => format!("ok   {file}: {total} cases\n"),
        n => format!("FAIL {file}: {n} of {total} cases failed\n"),
    });
    text
}

/// A failing case: where it is, why it failed, and the explanation, indented.
pub fn render_failure(result: &CaseResult) -> String {
    let mut text = format!("FAIL {}: {}\n", result.loc, result.name);
    for failure in &result.failures {
        text.push_str(&format!("  {failure}\n"));
    }
    for line in result.explanation.to_string().lines() {
        text.push_str(&format!("  | {line}\n"));
    }
    text
}
