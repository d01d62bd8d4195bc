//! `topicguard check POLICY...`: parse and check policy files and summarize each one.
//!
//! For every file: its warnings and errors, then (when it is valid) what it defines —
//! identities with their kind and attributes, sets, and rule counts by effect and action.
//! A file that parses and checks is also compiled with the default limits, exactly as
//! `serve` compiles it, so "ok" means `serve` loads it; a compile error is reported like
//! any other error, at the rule it is about. Exit 2 when a file has errors (or cannot be
//! read); with `--strict`, exit 1 when every file is valid but one has warnings (the CI
//! gate: the policy loads, but the author is told what it probably does not mean). It
//! never writes anything.

use super::output::{CliError, Exit, Out, error_json};
use std::fmt::Write as _;
use std::path::Path;
use topicguard::ast::{Action, Effect};
use topicguard::check::Checked;
use topicguard::diagnostic::Diagnostics;
use topicguard::policy::{LoadError, Policy};

/// Arguments of `topicguard check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub policies: super::PolicyFiles,

    /// Fail (exit 1) when a policy is valid but has warnings; errors still exit 2.
    #[arg(long)]
    pub strict: bool,
}

/// What a valid policy defines.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub identities: Vec<IdentitySummary>,
    pub sets: Vec<SetSummary>,
    pub rules: RuleCounts,
}

#[derive(Debug, serde::Serialize)]
pub struct IdentitySummary {
    pub name: String,
    pub kind: topicguard::ast::IdentityKind,
    /// The `trust` label its credentials verify with (`None`: the default anchors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
    /// Every attribute rules may use, sorted (including `client`).
    pub attrs: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct SetSummary {
    pub name: String,
    pub values: Vec<String>,
}

/// Rules by effect, overall and per action (a rule with two actions counts for both).
#[derive(Debug, Default, serde::Serialize)]
pub struct RuleCounts {
    pub total: usize,
    pub allow: usize,
    pub deny: usize,
    pub by_action: Vec<ActionCount>,
}

#[derive(Debug, serde::Serialize)]
pub struct ActionCount {
    pub action: Action,
    pub allow: usize,
    pub deny: usize,
}

/// The check result of one file.
#[derive(serde::Serialize)]
struct FileResult<'a> {
    file: String,
    ok: bool,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<topicguard::diagnostic::DiagnosticJson<'a>>,
    summary: Option<Summary>,
}

/// Summarizes a checked policy.
pub fn summarize(checked: &Checked) -> Summary {
    let identities = checked
        .identities
        .iter()
        .map(|d| IdentitySummary {
            name: d.name.clone(),
            kind: d.kind,
            trust: d.trust_label().map(str::to_string),
            attrs: d.attrs.clone(),
        })
        .collect();
    let sets = checked
        .sets
        .iter()
        .map(|s| SetSummary {
            name: s.name.clone(),
            values: s.values.to_vec(),
        })
        .collect();
    Summary {
        identities,
        sets,
        rules: count_rules(checked),
    }
}

fn count_rules(checked: &Checked) -> RuleCounts {
    let is = |effect: Effect| checked.rules.iter().filter(move |r| r.effect == effect);
    let by_action = Action::ALL
        .into_iter()
        .map(|action| ActionCount {
            action,
            allow: is(Effect::Allow)
                .filter(|r| r.actions.contains(action))
                .count(),
            deny: is(Effect::Deny)
                .filter(|r| r.actions.contains(action))
                .count(),
        })
        .collect();
    RuleCounts {
        total: checked.rules.len(),
        allow: is(Effect::Allow).count(),
        deny: is(Effect::Deny).count(),
        by_action,
    }
}

/// Runs `topicguard check`.
pub fn run(args: &CheckArgs, out: Out) -> Exit {
    let mut worst = Exit::Ok;
    let mut results = Vec::new();
    for path in &args.policies.files {
        let (exit, result) = check_file(path, out, args.strict);
        worst = worst.max(exit);
        results.push(result);
    }
    if out.is_json() {
        out.json(&serde_json::json!({ "files": results }));
    }
    worst
}

/// Checks one file, prints it in text mode, and returns its JSON form.
fn check_file(path: &Path, out: Out, strict: bool) -> (Exit, serde_json::Value) {
    let (summary, diagnostics) = match Policy::load(path) {
        Ok(policy) => match topicguard::decide::Engine::builder(policy.checked.clone()).build() {
            Ok(_) => (Some(summarize(&policy.checked)), policy.warnings),
            Err(error) => {
                let mut diagnostics = policy.warnings;
                diagnostics.push(error.to_diagnostic());
                diagnostics.sort();
                (None, diagnostics)
            }
        },
        Err(LoadError::Invalid(diagnostics)) => (None, diagnostics),
        Err(LoadError::Source(e)) => {
            let error = CliError::Source(e);
            if !out.is_json() {
                out.eprint(&out.render_error(&error));
            }
            let file = path.display().to_string();
            let result =
                serde_json::json!({ "file": file, "ok": false, "error": error_json(&error) });
            return (Exit::Usage, result);
        }
    };
    let warnings = diagnostics.warnings().count();
    let exit = match (&summary, strict && warnings > 0) {
        (None, _) => Exit::Usage,
        (Some(_), true) => Exit::Failure,
        (Some(_), false) => Exit::Ok,
    };
    if !out.is_json() {
        out.diagnostics(&diagnostics);
        out.print(&render_text(&diagnostics, summary.as_ref()));
        if exit == Exit::Failure {
            out.print(&format!(
                "{}: failed: --strict makes its {} fail\n",
                diagnostics.source.name(),
                plural(warnings, "warning")
            ));
        }
    }
    let result = serde_json::to_value(file_result(&diagnostics, summary));
    let mut result = result.unwrap_or_default();
    if strict {
        result["strict_failed"] = serde_json::Value::Bool(exit == Exit::Failure);
    }
    (exit, result)
}

fn file_result(diagnostics: &Diagnostics, summary: Option<Summary>) -> FileResult<'_> {
    let errors = diagnostics.errors().count();
    FileResult {
        file: diagnostics.source.name().to_string(),
        ok: errors == 0,
        errors,
        warnings: diagnostics.warnings().count(),
        diagnostics: diagnostics.to_json(),
        summary,
    }
}

/// The text form: a status line, then the summary when the file is valid.
pub fn render_text(diagnostics: &Diagnostics, summary: Option<&Summary>) -> String {
    let errors = diagnostics.errors().count();
    let warnings = diagnostics.warnings().count();
    let name = diagnostics.source.name();
    let mut text = match errors {
        0 => format!("{name}: ok, {}\n", plural(warnings, "warning")),
        _ => format!(
            "{name}: {}, {}\n",
            plural(errors, "error"),
            plural(warnings, "warning")
        ),
    };
    if let Some(summary) = summary {
        render_summary(&mut text, summary);
    }
    text
}

fn render_summary(text: &mut String, summary: &Summary) {
    for identity in &summary.identities {
        let trust = identity
            .trust
            .as_ref()
            .map(|label| format!(" (trust {label})"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "  identity {} from {}{trust}: {}",
            identity.name,
            identity.kind,
            identity.attrs.join(", ")
        );
    }
    for set in &summary.sets {
        let _ = writeln!(text, "  set {}: {}", set.name, shorten(&set.values, 8));
    }
    let rules = &summary.rules;
    let _ = writeln!(
        text,
        "  {}: {} allow, {} deny",
        plural(rules.total, "rule"),
        rules.allow,
        rules.deny
    );
    for count in rules.by_action.iter().filter(|c| c.allow + c.deny > 0) {
        let action = count.action.as_str();
        let _ = writeln!(
            text,
            "    {action:<10} {} allow, {} deny",
            count.allow, count.deny
        );
    }
}

/// The first `max` values, then how many more there are.
fn shorten(values: &[String], max: usize) -> String {
    let shown = values[..values.len().min(max)].join(", ");
    match values.len().saturating_sub(max) {
        0 => shown,
        more => format!("{shown}, … ({more} more)"),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use topicguard::source::Source;

    fn summary_of(text: &str) -> Summary {
        let policy = Policy::from_source(&Source::new("t.policy", text)).expect("valid");
        summarize(&policy.checked)
    }

    #[test]
    fn counts_rules_per_action_and_effect() {
        let summary = summary_of(
            "identity d from anonymous {\n    client \"d\"\n}\n\
             allow d connect\nallow d publish, retain \"a/#\"\ndeny d publish \"a/b\"\n",
        );
        let rules = &summary.rules;
        assert_eq!((rules.total, rules.allow, rules.deny), (3, 2, 1));
        let publish = &rules.by_action[Action::Publish as usize];
        assert_eq!((publish.allow, publish.deny), (1, 1));
        assert_eq!(rules.by_action[Action::Subscribe as usize].allow, 0);
    }

    #[test]
    fn long_sets_are_shortened_in_text() {
        let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
        assert_eq!(
            shorten(&values, 3),
            "v0, v1, v2, … (7 more)",
            "shows the first values and how many are left"
        );
        assert_eq!(shorten(&values[..2], 3), "v0, v1");
    }
}
