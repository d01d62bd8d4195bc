//! `topicguard test PATH...`: run policy test files (see [`topicguard::testcases`]).
//!
//! Paths are test files or directories searched for `*.test.toml`. Each failing case is
//! printed with why it failed and the engine's explanation (`-v` also lists each passing
//! case and the rule that decided it); `--filter NAME` runs only the cases whose name
//! contains NAME; `--coverage` lists, per policy, the rules no case exercised and the
//! values of `{a|b}` / `{x in set}` choices no case reached
//! ([`topicguard::testcases::coverage`]). The last line of text output is always
//! `N passed, N failed`. Coverage never changes the exit code. Exit 1 if a case failed, 2 if a test file or its policy
//! cannot be used: every problem of such a file is reported (an unknown identity or
//! attribute in a case, a file without cases, ...), none of its cases runs, and the other
//! files still run. Never writes files.

use super::output::{CliError, Exit, Out, error_json};
use std::path::{Path, PathBuf};
use topicguard::testcases::{self, CaseResult, Coverage, FileReport};

/// Arguments of `topicguard test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Test files, or directories searched recursively for `*.test.toml` files.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// Also report coverage: the rules no case exercised (matched a case's request), and
    /// the values of `{a|b}` and `{x in set}` choices no case reached.
    #[arg(long)]
    pub coverage: bool,

    /// List every passing case too, with the rule that decided it.
    #[arg(short, long)]
    pub verbose: bool,

    /// Run only the cases whose name contains NAME (case-sensitive).
    #[arg(long, value_name = "NAME")]
    pub filter: Option<String>,
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
    let mut coverages: Vec<Coverage> = Vec::new();
    for file in &files {
        match testcases::run_file_filtered(file, args.filter.as_deref()) {
            Ok(report) if args.filter.is_some() && report.results.is_empty() => {}
            Ok(report) => {
                passed += report.passed();
                failed += report.failed();
                if !out.is_json() {
                    out.print(&render_report(&report, args.verbose));
                }
                results.push(serde_json::to_value(&report).unwrap_or_default());
                merge_coverage(&mut coverages, &report.coverage);
            }
            Err(errors) => {
                for error in errors.errors {
                    let error = CliError::TestFile(error);
                    worst = worst.max(report_error(out, file, &error, &mut results));
                }
            }
        }
    }
    let mut unmatched = None;
    if let Some(filter) = &args.filter
        && passed + failed == 0
        && worst == Exit::Ok
    {
        let error = CliError::Usage(format!("no case name contains `{filter}`"));
        if !out.is_json() {
            out.eprint(&out.render_error(&error));
        }
        unmatched = Some(error_json(&error));
        worst = Exit::Usage;
    }
    if out.is_json() {
        let mut summary =
            serde_json::json!({ "files": results, "passed": passed, "failed": failed });
        if let Some(error) = unmatched {
            summary["error"] = error;
        }
        if args.coverage {
            summary["coverage"] = serde_json::to_value(&coverages).unwrap_or_default();
        }
        out.json(&summary);
    } else {
        if args.coverage {
            out.print(&render_coverage(&coverages));
        }
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

/// Adds a file's coverage to the coverage of its policy (files sharing a policy merge).
fn merge_coverage(coverages: &mut Vec<Coverage>, coverage: &Coverage) {
    match coverages.iter_mut().find(|c| c.policy == coverage.policy) {
        Some(known) => known.merge(coverage),
        None => coverages.push(coverage.clone()),
    }
}

/// One line per file, every failing case in full, and with `verbose` every passing case.
pub fn render_report(report: &FileReport, verbose: bool) -> String {
    let mut text = String::new();
    for result in &report.results {
        if !result.passed {
            text.push_str(&render_failure(result));
        } else if verbose {
            text.push_str(&render_pass(result));
        }
    }
    let total = report.results.len();
    let file = report.file.display();
    text.push_str(&match report.failed() {
        0 => format!("ok   {file}: {total} cases\n"),
        n => format!("FAIL {file}: {n} of {total} cases failed\n"),
    });
    text
}

/// A passing case: where it is, its verdict, and the rule that decided it.
pub fn render_pass(result: &CaseResult) -> String {
    let explanation = &result.explanation;
    let by = match &explanation.deciding {
        Some(rule) => format!("{} rule {}", rule.effect, rule.cite()),
        None => explanation.decision.reason.to_string(),
    };
    format!(
        "ok   {}: {} ({}, {by})\n",
        result.loc, result.name, result.got
    )
}

/// Per policy: how many rules the cases exercised, each rule none did, and each choice
/// with values none reached.
pub fn render_coverage(coverages: &[Coverage]) -> String {
    let mut text = String::new();
    for coverage in coverages {
        let total = coverage.rules.len();
        text.push_str(&format!(
            "coverage {}: {} of {total} rules exercised\n",
            coverage.policy.display(),
            coverage.exercised_count()
        ));
        for rule in coverage.unexercised() {
            text.push_str(&format!(
                "  never exercised: {}: {}\n",
                topicguard::check::cite(rule.label.as_deref(), &rule.loc).trim_start_matches("at "),
                rule.text
            ));
        }
        for rule in coverage.rules.iter().filter(|r| r.exercised()) {
            for choice in rule.partial_choices() {
                text.push_str(&format!(
                    "  never reached: {} of {} at level {} of {}: {}\n",
                    choice.unexercised.join(", "),
                    choice.shown,
                    choice.level,
                    topicguard::check::cite(rule.label.as_deref(), &rule.loc)
                        .trim_start_matches("at "),
                    rule.text
                ));
            }
        }
    }
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
