//! Coverage: which rules the cases of a policy exercised, and which values of each rule's
//! finite choices (`{a|b}`, `{x in set}`) they reached.
//!
//! A rule is *exercised* by a case when it matched the case's request: it decided it, or
//! it also matched (every matching rule of a publish or receive; the deciding rule of a
//! subscribe, which is the one rule a containment proof names). A value of a choice is
//! exercised when an exercising case's topic level matches the rule's level with that
//! value in place of the choice; a `+` or `#` in a subscribe filter covers every value at
//! its level and below. Coverage only reads decisions the runner already made; it never
//! decides anything itself.

use crate::check::matches::{AttrValues, match_level};
use crate::check::{Checked, CheckedRule, LevelPattern, Piece, RuleId};
use crate::decide::Explanation;
use crate::mqtt::topic::split_shared;
use crate::source::Loc;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// One finite choice of a rule's template: a `{a|b}` or `{x in set}` piece.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Choice {
    /// The topic level the choice is in, counted from 1.
    pub level: usize,
    /// The choice as shown: `{a|b}`, or `{x}` for a set captured as `x`.
    pub shown: String,
    /// Every value the choice allows, in the order written.
    pub values: Vec<String>,
    /// The values no case exercised, in the order written.
    pub unexercised: Vec<String>,
    /// The values some case exercised (kept for merging; not serialized).
    #[serde(skip)]
    exercised: BTreeSet<String>,
    /// Where the choice is among its level's pieces.
    #[serde(skip)]
    piece: usize,
}

/// What the cases did with one rule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleCoverage {
    /// The rule's label, `null` when it has none.
    pub label: Option<String>,
    /// Where the rule is written.
    pub loc: Loc,
    /// The rule as written (its label aside).
    pub text: String,
    /// How many cases exercised the rule.
    pub cases: usize,
    /// The rule's finite choices, each with the values no case reached.
    pub choices: Vec<Choice>,
}

impl RuleCoverage {
    /// True when some case exercised the rule.
    pub fn exercised(&self) -> bool {
        self.cases > 0
    }

    /// The choices with at least one value no case reached.
    pub fn partial_choices(&self) -> impl Iterator<Item = &Choice> {
        self.choices.iter().filter(|c| !c.unexercised.is_empty())
    }
}

/// What the cases of one policy exercised: every rule of the policy, in file order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    /// The policy file.
    pub policy: PathBuf,
    /// Every rule, in file order.
    pub rules: Vec<RuleCoverage>,
}

impl Coverage {
    /// A coverage of `checked` in which nothing is exercised yet.
    pub fn new(policy: PathBuf, checked: &Checked) -> Coverage {
        let rules = checked.rules.iter().map(rule_coverage).collect();
        Coverage { policy, rules }
    }

    /// Records one case: the rules its explanation names, and the values of their choices
    /// its topic or filter reaches (`attrs`: the session's bound attributes).
    pub fn record(
        &mut self,
        checked: &Checked,
        explanation: &Explanation,
        attrs: &(impl AttrValues + ?Sized),
    ) {
        let mut ids: Vec<RuleId> = explanation
            .deciding
            .iter()
            .chain(&explanation.denies)
            .chain(&explanation.allows)
            .map(|r| r.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let topic = explanation.topic.as_deref();
        for id in ids {
            let Some(coverage) = self.rules.get_mut(id.0 as usize) else {
                continue;
            };
            coverage.cases += 1;
            if let Some(topic) = topic {
                record_choices(checked.rule(id), coverage, topic, attrs);
            }
        }
    }

    /// Adds what another run over the same policy exercised.
    pub fn merge(&mut self, other: &Coverage) {
        for (mine, theirs) in self.rules.iter_mut().zip(&other.rules) {
            mine.cases += theirs.cases;
            for (a, b) in mine.choices.iter_mut().zip(&theirs.choices) {
                a.exercised.extend(b.exercised.iter().cloned());
                a.unexercised.retain(|v| !a.exercised.contains(v));
            }
        }
    }

    /// The rules no case exercised.
    pub fn unexercised(&self) -> impl Iterator<Item = &RuleCoverage> {
        self.rules.iter().filter(|r| !r.exercised())
    }

    /// How many rules some case exercised.
    pub fn exercised_count(&self) -> usize {
        self.rules.iter().filter(|r| r.exercised()).count()
    }
}

fn rule_coverage(rule: &CheckedRule) -> RuleCoverage {
    let mut choices = Vec::new();
    for (index, level) in rule.topic.iter().flat_map(|t| t.levels.iter().enumerate()) {
        let LevelPattern::Pieces(pieces) = level else {
            continue;
        };
        for (piece, p) in pieces.iter().enumerate() {
            if let Piece::OneOf { capture, values } = p {
                let shown = match capture {
                    Some(name) => format!("{{{name}}}"),
                    None => format!("{{{}}}", values.join("|")),
                };
                choices.push(Choice {
                    level: index + 1,
                    shown,
                    values: values.to_vec(),
                    unexercised: values.to_vec(),
                    exercised: BTreeSet::new(),
                    piece,
                });
            }
        }
    }
    RuleCoverage {
        label: rule.label.as_deref().map(str::to_string),
        loc: rule.loc.clone(),
        text: rule.text().to_string(),
        cases: 0,
        choices,
    }
}

/// Marks the values of the rule's choices that `topic` (a topic name, or a subscribe
/// filter) reaches.
fn record_choices(
    rule: &CheckedRule,
    coverage: &mut RuleCoverage,
    topic: &str,
    attrs: &(impl AttrValues + ?Sized),
) {
    let Some(pattern) = &rule.topic else {
        return;
    };
    // A shared subscription is judged on the filter after `$share/<group>/`.
    let topic = split_shared(topic).map_or(topic, |(_, inner)| inner);
    let levels: Vec<&str> = topic.split('/').collect();
    let hash_at = levels.iter().position(|l| *l == "#");
    for choice in &mut coverage.choices {
        let index = choice.level - 1;
        let Some(LevelPattern::Pieces(pieces)) = pattern.levels.get(index) else {
            continue;
        };
        let reached: Vec<String> = match levels.get(index) {
            _ if hash_at.is_some_and(|h| h <= index) => choice.values.clone(),
            Some(&"+") => choice.values.clone(),
            Some(level) => choice
                .values
                .iter()
                .filter(|value| {
                    let mut with_value = pieces.to_vec();
                    with_value[choice.piece] = Piece::Text(value.as_str().into());
                    let first_dollar = index == 0 && topic.starts_with('$');
                    let pattern = LevelPattern::Pieces(with_value.into());
                    match_level(&pattern, level, first_dollar, attrs, &mut Vec::new())
                })
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        choice.exercised.extend(reached);
        let exercised = &choice.exercised;
        choice.unexercised.retain(|v| !exercised.contains(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Engine, Request};
    use crate::identity::Identity;
    use crate::policy::Policy;
    use crate::source::Source;
    use std::collections::BTreeMap;

    const POLICY: &str = "identity d from anonymous {\n    client \"dev\"\n}\nset kinds = a, b, c\n\
        @id(\"pub\") allow d publish \"t/{k in kinds}/x-{on|off}\"\n\
        @id(\"sub\") allow d subscribe \"s/{k in kinds}/{on|off}\"\n\
        @id(\"never\") allow d receive \"r/+\"\n\
        @id(\"no\") deny d publish \"t/c/#\"\n";

    fn coverage(requests: &[Request<'_>]) -> Coverage {
        let policy = Policy::from_source(&Source::new("p", POLICY)).expect("valid");
        let engine = Engine::new(&policy.checked).expect("compiles");
        let session = engine.bind(
            &Identity::asserted("d", BTreeMap::<String, String>::new()),
            "dev",
        );
        let mut coverage = Coverage::new("p".into(), engine.checked());
        for request in requests {
            let explanation = engine.explain(&session, *request);
            coverage.record(engine.checked(), &explanation, &session.attrs());
        }
        coverage
    }

    fn unexercised(coverage: &Coverage, label: &str) -> Vec<Vec<String>> {
        let rule = coverage
            .rules
            .iter()
            .find(|r| r.label.as_deref() == Some(label));
        rule.expect("labelled rule")
            .choices
            .iter()
            .map(|c| c.unexercised.clone())
            .collect()
    }

    #[test]
    fn rules_and_values_are_exercised_by_matching_requests() {
        let coverage = coverage(&[
            Request::publish("t/a/x-on"),
            Request::publish("t/c/x-off"),
            Request::subscribe("$share/g/s/a/on"),
            Request::subscribe("s/+/off"),
        ]);
        let cases: Vec<usize> = coverage.rules.iter().map(|r| r.cases).collect();
        assert_eq!(cases, [2, 1, 0, 1], "the deny also matched t/c/x-off");
        assert_eq!(unexercised(&coverage, "pub"), [vec!["b"], vec![]]);
        // `s/+/off` is denied (subscribe means containment), so it exercises nothing.
        assert_eq!(
            unexercised(&coverage, "sub"),
            [
                vec!["b".to_string(), "c".to_string()],
                vec!["off".to_string()]
            ]
        );
        let never: Vec<&str> = coverage
            .unexercised()
            .filter_map(|r| r.label.as_deref())
            .collect();
        assert_eq!(never, ["never"]);
    }

    #[test]
    fn denied_requests_that_match_no_rule_exercise_nothing() {
        let coverage = coverage(&[Request::publish("t/z/x-on"), Request::subscribe("s/#")]);
        assert_eq!(coverage.exercised_count(), 0);
    }

    #[test]
    fn merging_unites_what_two_runs_exercised() {
        let mut first = coverage(&[Request::publish("t/a/x-on")]);
        let second = coverage(&[Request::publish("t/b/x-off")]);
        first.merge(&second);
        assert_eq!(unexercised(&first, "pub"), [vec!["c"], vec![]]);
        assert_eq!(first.rules[0].cases, 2);
    }
}
