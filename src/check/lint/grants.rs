//! Lints about what a policy grants, per identity and action: grants that cannot work
//! without a partner grant, grants another grant already gives, and grants a deny removes.
//!
//! * `lint::no-connect` — an identity no `allow ... connect` rule applies to: none of its
//!   clients can connect, so none of its other rules is ever used.
//! * `lint::subscribe-without-receive` — an allow `subscribe` whose template overlaps no
//!   allow `receive` template of the same identity: the subscription is granted, but no
//!   message on it is ever delivered.
//! * `lint::receive-without-subscribe` — the reverse: an allow `receive` that overlaps no
//!   allow `subscribe` of the identity, so no subscription can ever deliver there.
//! * `lint::retain-without-publish` — an allow `retain` that overlaps no allow `publish` of
//!   the identity: a retained publish needs both, so the grant is never used.
//! * `lint::subsumed-allow` — an allow that grants nothing more than other allows: for each
//!   of its identities and actions, some other allow for that identity and action has a
//!   template containing its template ([`super::template_contains`]). Exact duplicates are
//!   `lint::duplicate-rule`'s; of two allows with equivalent templates only the later one
//!   is reported.
//! * `lint::dead-grant` — some (not all) actions of an allow are removed by denies that
//!   apply to all its identities and whose templates contain its template (all of them
//!   removed is `lint::shadowed-allow`).
//!
//! "Overlap" is decided symbolically and is `true` when unsure (an attribute compared with
//! a literal), so these lints only warn when the grants are proved not to meet. A rule is
//! compared only with the templates that the index of literal levels (`lint/index.rs`)
//! cannot rule out, so the work grows with the rules that share literal levels, not with
//! the square of the policy; each search is still bounded by [`PAIR_BUDGET`] comparisons:
//! on a huge policy some findings may go unreported, never a false one. Nothing here
//! changes the checked model.

use super::index::TemplateIndex;
use super::{finite_literals, matches_literal, same_rule, template_contains};
use crate::ast::{Action, Effect};
use crate::check::{
    ActionSet, Checked, CheckedRule, IdentityId, LevelPattern, Piece, TopicPattern,
};
use crate::diagnostic::{Code, Diagnostic};

/// At most this many rule pairs are compared by each lint of this module.
pub const PAIR_BUDGET: usize = 1_000_000;

/// Every warning of this module.
pub(super) fn lint(checked: &Checked, out: &mut Vec<Diagnostic>) {
    no_connect(checked, out);
    for pairing in &PAIRINGS {
        unpaired(checked, pairing, out);
    }
    subsumed(checked, out);
}

// ---------------------------------------------------------------- no-connect

fn no_connect(checked: &Checked, out: &mut Vec<Diagnostic>) {
    for (index, def) in checked.identities.iter().enumerate() {
        let identity = IdentityId(index as u16);
        let connects = checked.rules.iter().any(|r| {
            r.effect == Effect::Allow
                && r.actions.contains(Action::Connect)
                && r.applies_to(identity)
        });
        if !connects {
            out.push(
                Diagnostic::warning(
                    Code::LintNoConnect,
                    def.span,
                    format!(
                        "no rule allows `{}` to connect, so none of its rules is ever used",
                        def.name
                    ),
                )
                .with_label("can never connect")
                .with_help(format!(
                    "add `allow {} connect`, or remove the identity",
                    def.name
                )),
            );
        }
    }
}

// ---------------------------------------------------------------- unpaired grants

/// A grant that is only of use together with another: `action` needs `partner`.
struct Pairing {
    action: Action,
    partner: Action,
    code: Code,
    why: &'static str,
}

const PAIRINGS: [Pairing; 3] = [
    Pairing {
        action: Action::Subscribe,
        partner: Action::Receive,
        code: Code::LintSubscribeWithoutReceive,
        why: "the subscription is granted but delivers nothing",
    },
    Pairing {
        action: Action::Receive,
        partner: Action::Subscribe,
        code: Code::LintReceiveWithoutSubscribe,
        why: "no subscription can ever deliver these messages",
    },
    Pairing {
        action: Action::Retain,
        partner: Action::Publish,
        code: Code::LintRetainWithoutPublish,
        why: "a retained publish needs `publish` too, so this grant is never used",
    },
];

fn unpaired(checked: &Checked, pairing: &Pairing, out: &mut Vec<Diagnostic>) {
    // Per identity, the templates of the allows granting the partner action.
    let mut partners: Vec<TemplateIndex> = (0..checked.identities.len())
        .map(|_| TemplateIndex::default())
        .collect();
    for rule in allows_with(checked, pairing.partner) {
        for identity in rule.identities.iter() {
            if let (Some(index), Some(topic)) =
                (partners.get_mut(identity.0 as usize), rule.topic.as_ref())
            {
                index.insert(topic, rule.id.0);
            }
        }
    }
    let mut budget = PAIR_BUDGET;
    for rule in allows_with(checked, pairing.action) {
        let Some(topic) = rule.topic.as_ref() else {
            continue;
        };
        if rule.actions.contains(pairing.partner) {
            continue;
        }
        let mut lonely: Vec<&str> = Vec::new();
        for identity in rule.identities.iter() {
            let Some(index) = partners.get(identity.0 as usize) else {
                lonely.push(&checked.identities[identity.0 as usize].name);
                continue;
            };
            let Some(found) = any_overlap(topic, checked, index, &mut budget) else {
                return;
            };
            if !found {
                lonely.push(&checked.identities[identity.0 as usize].name);
            }
        }
        if !lonely.is_empty() {
            out.push(unpaired_warning(rule, pairing, &lonely));
        }
    }
}

fn unpaired_warning(rule: &CheckedRule, pairing: &Pairing, lonely: &[&str]) -> Diagnostic {
    let (action, partner) = (pairing.action, pairing.partner);
    Diagnostic::warning(
        pairing.code,
        rule.span,
        format!(
            "`{}` may {action} here but no rule lets it {partner} any of these topics: {}",
            lonely.join("`, `"),
            pairing.why
        ),
    )
    .with_label(format!("{action} without {partner}"))
    .with_help(format!(
        "add `{partner}` to this rule, or a rule that lets `{}` {partner} these topics; or remove `{action}` if it is not meant",
        lonely.join("`, `")
    ))
}

/// The allow rules granting `action` to some identity.
fn allows_with(checked: &Checked, action: Action) -> impl Iterator<Item = &CheckedRule> {
    checked
        .rules
        .iter()
        .filter(move |r| r.effect == Effect::Allow && r.actions.contains(action))
}

/// Whether one of the templates of `partners` overlaps `topic`; `None` when the budget ran
/// out first. Only the templates the index cannot rule out are compared (and counted).
fn any_overlap(
    topic: &TopicPattern,
    checked: &Checked,
    partners: &TemplateIndex,
    budget: &mut usize,
) -> Option<bool> {
    for id in partners.may_overlap(topic) {
        *budget = budget.checked_sub(1)?;
        let candidate = checked.rules[id as usize].topic.as_ref();
        if candidate.is_some_and(|c| templates_may_overlap(topic, c)) {
            return Some(true);
        }
    }
    Some(false)
}

// ---------------------------------------------------------------- subsumed-allow

fn subsumed(checked: &Checked, out: &mut Vec<Diagnostic>) {
    let mut budget = PAIR_BUDGET;
    let allows: Vec<&CheckedRule> = checked
        .rules
        .iter()
        .filter(|r| r.effect == Effect::Allow && !r.identities.is_empty())
        .collect();
    // Positions in `allows`: connect-only ones, and the others indexed by template, so a
    // rule is compared only with the allows that may contain it, in file order.
    let mut connects: Vec<u32> = Vec::new();
    let mut templates = TemplateIndex::default();
    for (at, rule) in allows.iter().enumerate() {
        match &rule.topic {
            None => connects.push(at as u32),
            Some(topic) => templates.insert(topic, at as u32),
        }
    }
    for rule in &allows {
        let candidates: Vec<&CheckedRule> = match &rule.topic {
            None => connects.clone(),
            Some(topic) => templates.may_contain(topic),
        }
        .into_iter()
        .map(|at| allows[at as usize])
        .collect();
        let mut broader: Vec<&CheckedRule> = Vec::new();
        let covered = rule.identities.iter().all(|identity| {
            rule.actions.iter().all(|action| {
                let found = candidates.iter().find(|other| {
                    budget = budget.saturating_sub(1);
                    budget > 0
                        && other.id != rule.id
                        && other.applies_to(*identity)
                        && other.actions.contains(action)
                        && contains(other, rule)
                        && !same_rule(other, rule)
                        && (other.id < rule.id || !contains(rule, other))
                });
                if let Some(other) = found
                    && !broader.iter().any(|b| b.id == other.id)
                {
                    broader.push(other);
                }
                found.is_some()
            })
        });
        if budget == 0 {
            return;
        }
        if covered {
            out.push(subsumed_warning(rule, &broader));
        }
    }
}

/// Does `outer`'s template contain `inner`'s? Two connect rules (no template) do.
fn contains(outer: &CheckedRule, inner: &CheckedRule) -> bool {
    match (&outer.topic, &inner.topic) {
        (None, None) => true,
        (Some(o), Some(i)) => template_contains(o, i),
        _ => false,
    }
}

fn subsumed_warning(rule: &CheckedRule, broader: &[&CheckedRule]) -> Diagnostic {
    let cited: Vec<String> = broader
        .iter()
        .map(|b| format!("{} (`{}`)", b.cite().trim_start_matches("at "), b.text()))
        .collect();
    Diagnostic::warning(
        Code::LintSubsumedAllow,
        rule.span,
        format!(
            "this allow grants nothing the broader {} not: {}",
            if broader.len() == 1 {
                "allow does"
            } else {
                "allows do"
            },
            cited.join("; ")
        ),
    )
    .with_label("already granted")
    .with_help("remove this rule, or narrow the broader rule if it grants more than meant")
}

// ---------------------------------------------------------------- dead-grant

/// The warning for an allow some of whose actions the denies remove.
pub(super) fn dead_grant(
    allow: &CheckedRule,
    dead: ActionSet,
    denies: &[&CheckedRule],
) -> Diagnostic {
    let actions: Vec<&str> = dead.iter().map(Action::as_str).collect();
    let cited: Vec<String> = denies
        .iter()
        .map(|d| d.cite().trim_start_matches("at ").to_string())
        .collect();
    Diagnostic::warning(
        Code::LintDeadGrant,
        allow.span,
        format!(
            "the `{}` of this allow never takes effect: the deny at {} removes it for every identity and topic",
            actions.join("`, `"),
            cited.join(", ")
        ),
    )
    .with_label(format!("`{}` is dead here", actions.join("`, `")))
    .with_help(format!(
        "deny always wins: remove `{}` from this rule, or narrow the deny if it should be granted",
        actions.join("`, `")
    ))
}

// ---------------------------------------------------------------- overlap

/// Can some topic match both templates, for one session? `true` when unsure: `false` is a
/// proof that they never meet.
pub fn templates_may_overlap(a: &TopicPattern, b: &TopicPattern) -> bool {
    let lengths_meet = match a.levels.len().cmp(&b.levels.len()) {
        std::cmp::Ordering::Less => a.hash,
        std::cmp::Ordering::Greater => b.hash,
        std::cmp::Ordering::Equal => true,
    };
    if !lengths_meet {
        return false;
    }
    for (x, y) in [(a, b), (b, a)] {
        // A leading `#` never matches a `$` topic.
        if x.levels.is_empty() && x.hash && y.levels.first().is_some_and(only_dollar) {
            return false;
        }
    }
    a.levels
        .iter()
        .zip(&b.levels)
        .enumerate()
        .all(|(at, (x, y))| levels_may_overlap(x, y, at == 0))
}

/// A level all of whose values start with `$`.
fn only_dollar(level: &LevelPattern) -> bool {
    finite_literals(level).is_some_and(|l| l.iter().all(|v| v.starts_with('$')))
}

fn levels_may_overlap(a: &LevelPattern, b: &LevelPattern, first: bool) -> bool {
    match (a, b) {
        (LevelPattern::Any { .. }, LevelPattern::Any { .. }) => return true,
        (LevelPattern::Any { .. }, other) | (other, LevelPattern::Any { .. }) => {
            return !(first && only_dollar(other));
        }
        _ => {}
    }
    match (finite_literals(a), finite_literals(b)) {
        (Some(x), Some(y)) => x.iter().any(|v| y.contains(v)),
        (Some(x), None) => x.iter().any(|v| may_match_literal(b, v, first)),
        (None, Some(y)) => y.iter().any(|v| may_match_literal(a, v, first)),
        (None, None) => true,
    }
}

/// Can `level` match the literal `value`? `true` when unsure (an attribute).
fn may_match_literal(level: &LevelPattern, value: &str, first: bool) -> bool {
    let unsure =
        matches!(level, LevelPattern::Pieces(p) if p.iter().any(|p| matches!(p, Piece::Attr(_))));
    unsure || matches_literal(level, value, first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;

    fn topic(template: &str) -> TopicPattern {
        let text = format!(
            "identity d from jwt {{\n    pid = claim \"pid\"\n    client \"d-{{pid}}\"\n}}\nset s = a, b\nallow d publish \"{template}\"\n"
        );
        checked(&text).rules[0].topic.clone().expect("a topic")
    }

    /// The checked form of a policy text that must check.
    fn checked(text: &str) -> crate::check::Checked {
        let source = Source::new("p", text);
        let ast = crate::parse::parse(&source).unwrap_or_else(|e| panic!("{e}"));
        crate::check::check(&source, &ast)
            .unwrap_or_else(|e| panic!("{e}"))
            .checked
    }

    fn overlap(a: &str, b: &str) -> bool {
        let (a, b) = (topic(a), topic(b));
        let forward = templates_may_overlap(&a, &b);
        assert_eq!(
            forward,
            templates_may_overlap(&b, &a),
            "overlap is symmetric"
        );
        forward
    }

    #[test]
    fn overlap_is_proved_absent_only_when_sure() {
        assert!(overlap("a/b", "a/+"));
        assert!(overlap("a/#", "a"));
        assert!(overlap("a/{x in s}", "a/b"));
        assert!(
            overlap("a/{pid}", "a/literal"),
            "an attribute may equal a literal"
        );
        assert!(overlap("a/x-{+c}", "a/{+d}-y"));
        assert!(!overlap("a/b", "a/c"));
        assert!(!overlap("a/b", "a/b/c"));
        assert!(!overlap("a/{x in s}", "a/c"));
        assert!(!overlap("#", "$SYS/x"));
        assert!(!overlap("+/x", "$SYS/x"));
        assert!(!overlap("a/x-{+c}", "a/y"));
    }

    /// The codes of every warning of a policy text.
    fn warnings(text: &str) -> Vec<(Code, String)> {
        super::super::lint(&checked(text))
            .into_iter()
            .map(|d| (d.code, d.message.clone()))
            .collect()
    }

    /// `rules` allows of distinct literal templates, each of them alone in its subtree,
    /// then the pair of rules under test: more pairs than [`PAIR_BUDGET`] for a search
    /// that compares every rule with every other one.
    fn crowded(rules: usize, action: &str, last: &str) -> String {
        let mut text = String::from(
            "identity d from jwt {\n    pid = claim \"pid\"\n    client \"d-{pid}\"\n}\nallow d connect\n",
        );
        for n in 0..rules {
            text.push_str(&format!("allow d {action} \"t{n}/x/{{pid}}\"\n"));
        }
        text.push_str(last);
        text
    }

    #[test]
    fn a_subsumed_allow_is_found_past_the_pairwise_budget() {
        let rules = 1_500;
        assert!(rules * rules > PAIR_BUDGET);
        let text = crowded(
            rules,
            "publish",
            "allow d publish \"late/+\"\nallow d publish \"late/x\"\n",
        );
        let found = warnings(&text);
        let subsumed: Vec<&String> = found
            .iter()
            .filter(|(code, _)| *code == Code::LintSubsumedAllow)
            .map(|(_, message)| message)
            .collect();
        assert_eq!(subsumed.len(), 1, "{found:?}");
        assert!(
            subsumed[0].contains("`allow d publish \"late/+\"`"),
            "{subsumed:?}"
        );
    }

    #[test]
    fn an_unpaired_grant_is_found_past_the_pairwise_budget() {
        let rules = 1_500;
        let mut text = crowded(rules, "receive", "");
        for n in 0..rules {
            text.push_str(&format!("allow d subscribe \"t{n}/x/{{pid}}\"\n"));
        }
        text.push_str("allow d subscribe \"late/x\"\n");
        let lonely: Vec<(Code, String)> = warnings(&text)
            .into_iter()
            .filter(|(code, _)| *code == Code::LintSubscribeWithoutReceive)
            .collect();
        assert_eq!(lonely.len(), 1, "{lonely:?}");
    }

    /// Templates claimed disjoint share no topic, on sampled templates and topics.
    #[test]
    fn claimed_disjointness_holds_on_sampled_topics() {
        let sample = super::super::samples::Sample::new(0x2545_F491_4F6C_DD1D, 120);
        let patterns = sample.patterns();
        let mut claimed = 0;
        for a in &patterns {
            for b in &patterns {
                if templates_may_overlap(a, b) {
                    continue;
                }
                claimed += 1;
                for topic in sample.topics.iter().filter(|t| sample.matches(a, t)) {
                    assert!(
                        !sample.matches(b, topic),
                        "{a:?} and {b:?} claimed disjoint, both match {topic}"
                    );
                }
            }
        }
        assert!(
            claimed > 1000,
            "too few disjoint pairs exercised: {claimed}"
        );
    }
}
