//! What a plan did not grant, and why, gathered into one [`Note`] per rule.
//!
//! A pattern is left out when no Deny takes back exactly what its `*` reaches beyond the
//! rule: the cut that would was refused because it would also remove a request topicguard
//! allows (the note names that request and the rule allowing it), or could not be proved
//! harmless in time. The note also gives a request the pattern would have granted although
//! topicguard denies it. This module only words notes; it decides nothing.

use super::glob::Glob;
use super::input::Input;
use super::proof::{Bounds, Removed, Universe};
use super::shape::Shape;
use crate::ast::Action;
use crate::check::RuleId;

/// Something the reader of a rendered policy must know: where it grants less, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    /// The action narrowed.
    pub action: Action,
    /// The rule concerned, if one is.
    pub rule: Option<RuleId>,
    /// What was narrowed and why.
    pub text: String,
}

/// A cut that was not kept, and what it would have removed (`None`: not proved in time).
pub struct Refused {
    pub(crate) glob: Glob,
    pub(crate) removed: Option<Removed>,
}

/// Patterns not granted, per rule.
#[derive(Default)]
pub struct Dropped {
    rules: Vec<DroppedRule>,
}

struct DroppedRule {
    rule: RuleId,
    globs: Vec<Glob>,
    /// What was granted instead (narrower filter forms), if anything.
    instead: Vec<Glob>,
    /// A cut that would have made them exact and was refused.
    refused: Option<(Glob, Option<Removed>)>,
    /// A request one of them would grant that topicguard does not allow.
    leak: Option<String>,
}

impl Dropped {
    fn entry(&mut self, rule: RuleId) -> &mut DroppedRule {
        if let Some(i) = self.rules.iter().position(|r| r.rule == rule) {
            return &mut self.rules[i];
        }
        self.rules.push(DroppedRule {
            rule,
            globs: Vec::new(),
            instead: Vec::new(),
            refused: None,
            leak: None,
        });
        self.rules.last_mut().expect("just pushed")
    }

    /// Records patterns of `rule` not granted; `cuts`: the Deny candidates that were meant
    /// to keep them exact; `refused`: the candidates that were not kept.
    pub fn add(
        &mut self,
        rule: RuleId,
        failed: Vec<(Glob, Option<String>)>,
        cuts: &[Glob],
        refused: &[Refused],
    ) {
        if failed.is_empty() {
            return;
        }
        let entry = self.entry(rule);
        for (glob, leak) in failed {
            if !entry.globs.contains(&glob) {
                entry.globs.push(glob);
            }
            entry.leak = entry.leak.take().or(leak);
        }
        if entry.refused.is_none() {
            entry.refused = refused
                .iter()
                .find(|r| cuts.contains(&r.glob))
                .map(|r| (r.glob.clone(), r.removed.clone()));
        }
    }

    /// Records patterns granted for `rule` in place of the dropped ones.
    pub fn instead(&mut self, rule: RuleId, granted: &[Glob]) {
        let entry = self.entry(rule);
        for glob in granted {
            if !entry.instead.contains(glob) {
                entry.instead.push(glob.clone());
            }
        }
    }

    /// One note per rule.
    pub fn notes(
        self,
        input: Input<'_>,
        bounds: &Bounds,
        allows: &[Shape],
        action: Action,
    ) -> Vec<Note> {
        self.rules
            .into_iter()
            .map(|r| Note {
                action,
                rule: Some(r.rule),
                text: r.text(input, bounds, allows),
            })
            .collect()
    }
}

impl DroppedRule {
    fn text(&self, input: Input<'_>, bounds: &Bounds, allows: &[Shape]) -> String {
        let what = format!("{} not granted", listed(&self.globs));
        let instead = if self.instead.is_empty() {
            String::new()
        } else {
            format!(" (granted instead: {})", listed(&self.instead))
        };
        let why = match &self.refused {
            Some((cut, Some(removed))) => {
                let by = bounds
                    .allowing_rule(allows, &removed.example)
                    .filter(|_| removed.certain)
                    .map(|rule| format!(" (rule {})", input.rule_text(rule)))
                    .unwrap_or_default();
                format!(
                    "AWS's `*` also matches `/`, and the Deny that would keep it to topicguard's levels, `{}`, would also remove `{}`, which topicguard {}{by}",
                    cut.resource(),
                    removed.example,
                    if removed.certain {
                        "allows"
                    } else {
                        "may allow"
                    }
                )
            }
            Some((cut, None)) => format!(
                "AWS's `*` also matches `/`, and the Deny `{}` that would keep it to topicguard's levels could not be proved harmless within the proof budget",
                cut.resource()
            ),
            None => {
                "AWS's `*` also matches `/`, and no Deny takes back exactly the rest".to_string()
            }
        };
        let denied = match bounds.universe() {
            Universe::Topics => "which topicguard denies",
            Universe::Filters => "which is not inside one allow rule clear of every deny",
        };
        let leak = self
            .leak
            .as_ref()
            .map(|l| format!("; it would grant `{l}`, {denied}"))
            .unwrap_or_default();
        format!("{what}{instead}: {why}{leak}: narrowed")
    }
}

/// Patterns as a short list for a note.
pub fn listed(globs: &[Glob]) -> String {
    let mut shown: Vec<String> = globs
        .iter()
        .take(3)
        .map(|g| format!("`{}`", g.resource()))
        .collect();
    if globs.len() > 3 {
        shown.push(format!("and {} more", globs.len() - 3));
    }
    shown.join(", ")
}
