//! Parsed AST → [`Checked`] policy: every name resolved, every template normalized.
//!
//! The checker reports all problems in one run: unknown identities, attributes and sets,
//! duplicate names, `#` that is not the last level, ambiguous captures, connect rules with
//! topics, identity blocks without a client template. [`lint`] adds warnings for rules that
//! can never match and allow rules wholly shadowed by a deny. The checker never looks at
//! credentials.
//!
//! * `identity` — identity blocks → [`IdentityDef`]s;
//! * `rule` — rules → [`CheckedRule`]s, and the attribute separators;
//! * [`model`] — what the checked policy is;
//! * `intern` — the shared strings ([`SharedStr`]), piece sequences and identity lists of
//!   one load, so a large policy holds each repeated text once;
//! * [`matches`] — what a template means: the definition topics are matched against;
//! * [`label`] — rule labels (`@id("name")`): their grammar and uniqueness;
//! * [`lint`] — warnings;
//! * [`suggest`] — the declared name nearest to a misspelt one, for help lines.

mod assertion;
mod identity;
mod intern;
pub mod label;
pub mod lint;
pub mod matches;
mod messages;
pub mod model;
mod rule;
pub mod suggest;

pub use identity::{MAX_TRUST_LABEL_BYTES, is_trust_label};
pub use model::*;
pub use rule::attribute_separators;
pub use suggest::closest_name;

use identity::identities;
use rule::resolve_rule;

use crate::ast::{self, Action, IdentityKind, Item};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::source::Source;
use rustc_hash::FxHashSet;

/// The result of a successful check: the model plus its warnings.
#[derive(Clone, Debug)]
pub struct CheckOutput {
    /// The checked policy.
    pub checked: Checked,
    /// The lint warnings.
    pub warnings: Diagnostics,
}

/// Certificate fields an attribute may come from.
pub const CERTIFICATE_FIELDS: &[&str] = &[
    "san.dirname.O",
    "san.dirname.OU",
    "san.dirname.CN",
    "san.uri",
    "san.dns",
    "subject.CN",
    "subject.O",
    "subject.OU",
    "subject.UID",
    "subject.serialNumber",
];

/// Settings each identity kind understands.
fn known_settings(kind: IdentityKind) -> &'static [&'static str] {
    match kind {
        IdentityKind::Jwt => &[
            "issuer",
            "audience",
            "algorithms",
            "leeway",
            "trust",
            "subscriptions",
        ],
        IdentityKind::Certificate => &["issuer", "trust", "subscriptions"],
        IdentityKind::Anonymous => &["subscriptions"],
    }
}

/// Checks a parsed policy. Errors and warnings are all collected; any error fails.
pub fn check(source: &Source, policy: &ast::Policy) -> Result<CheckOutput, Diagnostics> {
    let mut checker = Checker::new(source, policy);
    for item in &policy.items {
        if let Item::Rule(rule) = item {
            checker.rule(rule);
        }
    }
    checker.finish()
}

/// A check in steps: declarations first, then one rule at a time, in file order.
///
/// [`check`] is this over a whole AST; a loader that parses rules one by one (see
/// [`crate::parse::split`]) uses it to keep only the checked form of each rule.
pub struct Checker {
    checked: Checked,
    errors: Vec<Diagnostic>,
    labels: label::Labels,
    /// The names of the sets some template, `require ... in` or `assert` refers to.
    used_sets: FxHashSet<String>,
    /// The shared texts, piece sequences and identity lists of this load.
    interner: intern::Interner,
}

impl Checker {
    /// Resolves the identities and sets of `declarations` (its rules are ignored).
    pub fn new(source: &Source, declarations: &ast::Policy) -> Checker {
        let mut errors = Vec::new();
        let mut identities = identities(source, declarations, &mut errors);
        let sets = sets(declarations, &mut errors);
        resolve_require_sets(&mut identities, &sets, &mut errors);
        Checker {
            checked: Checked {
                source: source.clone(),
                identities,
                sets,
                rules: Vec::new(),
                assertions: Vec::new(),
            },
            errors,
            labels: label::Labels::default(),
            used_sets: FxHashSet::default(),
            interner: intern::Interner::default(),
        }
        .with_assertions(declarations)
        .with_required_sets()
    }

    /// Notes the sets `require ATTR in SET` lines use.
    fn with_required_sets(mut self) -> Checker {
        for require in self.checked.identities.iter().flat_map(|d| &d.requires) {
            if let Require::InSet { set, .. } = require {
                self.used_sets.insert(set.clone());
            }
        }
        self
    }

    /// Notes the sets a template refers to (`{x in set}`).
    fn note_sets(&mut self, template: &ast::Template) {
        for part in template.levels.iter().flat_map(|l| &l.parts) {
            if let ast::Part::SetRef { set, .. } = part {
                self.used_sets.insert(set.text.clone());
            }
        }
    }

    /// Resolves the `assert` lines of `declarations`, once identities and sets are known.
    fn with_assertions(mut self, declarations: &ast::Policy) -> Checker {
        for item in &declarations.items {
            if let Item::Assert(assertion) = item {
                for namespace in &assertion.namespaces {
                    self.note_sets(namespace);
                }
            }
            if let Item::Assert(assertion) = item
                && let Some(checked) = assertion::resolve_assertion(
                    &self.checked,
                    &mut self.interner,
                    assertion,
                    &mut self.errors,
                )
            {
                self.checked.assertions.push(checked);
            }
        }
        self
    }

    /// Resolves the next rule of the file.
    pub fn rule(&mut self, rule: &ast::Rule) {
        if let Some(template) = &rule.template {
            self.note_sets(template);
        }
        let label = self
            .labels
            .check(&self.checked.source, rule, &mut self.errors);
        if let Some(mut r) = resolve_rule(&self.checked, &mut self.interner, rule, &mut self.errors)
        {
            r.label = label.map(SharedStr::from);
            self.checked.rules.push(r);
        }
    }

    /// All errors, or the checked policy with its warnings.
    pub fn finish(self) -> Result<CheckOutput, Diagnostics> {
        let Checker {
            mut checked,
            errors,
            used_sets,
            ..
        } = self;
        checked.rules.shrink_to_fit();
        for i in 0..checked.identities.len() {
            checked.identities[i].separators = attribute_separators(&checked, IdentityId(i as u16));
        }
        let mut diagnostics = Diagnostics::new(checked.source.clone());
        diagnostics.items = errors;
        if diagnostics.has_errors() {
            diagnostics.sort();
            return Err(diagnostics);
        }
        diagnostics.items.extend(lint::lint(&checked));
        diagnostics.items.extend(unused_sets(&checked, &used_sets));
        diagnostics.sort();
        Ok(CheckOutput {
            checked,
            warnings: diagnostics,
        })
    }
}

/// `lint::unused-set`: a set nothing refers to.
fn unused_sets(checked: &Checked, used: &FxHashSet<String>) -> Vec<Diagnostic> {
    checked
        .sets
        .iter()
        .filter(|set| !used.contains(&set.name))
        .map(|set| {
            Diagnostic::warning(
                Code::LintUnusedSet,
                set.span,
                format!("the set `{}` is never used", set.name),
            )
            .with_label("unused")
            .with_help(format!(
                "use it in a template (`{{x in {}}}`) or a `require ATTR in {}` line, or remove it",
                set.name, set.name
            ))
        })
        .collect()
}

fn sets(policy: &ast::Policy, errors: &mut Vec<Diagnostic>) -> Vec<SetDef> {
    let mut out: Vec<SetDef> = Vec::new();
    for set in policy.items.iter().filter_map(|i| match i {
        Item::Set(s) => Some(s),
        _ => None,
    }) {
        if out.iter().any(|s| s.name == set.name.text) {
            errors.push(Diagnostic::error(
                Code::CheckDuplicateSet,
                set.name.span,
                format!("set `{}` is defined twice", set.name.text),
            ));
            continue;
        }
        let mut values: Vec<String> = Vec::new();
        let mut seen: FxHashSet<&str> = FxHashSet::default();
        for value in &set.values {
            if value.text.is_empty()
                || value
                    .text
                    .chars()
                    .any(|c| matches!(c, '/' | '+' | '#' | '\0') || c.is_control())
            {
                errors.push(
                    Diagnostic::error(Code::CheckBadSetValue, value.span, format!("set value `{}` is not a literal topic level", value.text.escape_default()))
                        .with_help("set values are non-empty level text: no `/`, `+`, `#` or control characters"),
                );
            } else if !seen.insert(&value.text) {
                errors.push(Diagnostic::warning(
                    Code::CheckDuplicateSetValue,
                    value.span,
                    format!("`{}` is listed twice", value.text),
                ));
            } else {
                values.push(value.text.clone());
            }
        }
        out.push(SetDef {
            name: set.name.text.clone(),
            values: values.into(),
            span: set.name.span,
        });
    }
    out
}

/// Fills in the values of `require ATTR in SET` lines, now that sets are known.
fn resolve_require_sets(
    identities: &mut [IdentityDef],
    sets: &[SetDef],
    errors: &mut Vec<Diagnostic>,
) {
    for require in identities.iter_mut().flat_map(|d| d.requires.iter_mut()) {
        let Require::InSet {
            set, span, values, ..
        } = require
        else {
            continue;
        };
        match sets.iter().find(|s| s.name == *set) {
            Some(def) => {
                let mut sorted = def.values.to_vec();
                sorted.sort_unstable();
                *values = sorted.into();
            }
            None => errors.push(
                Diagnostic::error(
                    Code::CheckUnknownSet,
                    *span,
                    format!("no set named `{set}`"),
                )
                .with_label("unknown set")
                .with_help("declare it with `set NAME = a, b, c`"),
            ),
        }
    }
}
