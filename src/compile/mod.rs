//! Checked rules → an [`Automaton`]: one level trie per identity.
//!
//! Each rule is inserted once per identity it applies to. Each level becomes the cheapest
//! edge that can match it: a literal, a finite set, an attribute slot (text rendered once
//! per session), a pattern level ([`crate::automaton::level`]: built here, once, and
//! shared by every session), or `+`. Equal levels at the same node share one edge, so
//! rules with a common prefix share states and a decision's cost does not grow with the
//! rule count.
//!
//! Every size is bounded by [`Limits`]; exceeding one is a typed [`CompileError`] naming
//! the rule, never an out-of-memory, and `topicguard check` reports it like any other
//! error of the file. A single regex over whole topics is deliberately not used: with
//! thousands of rules it can need gigabytes, while one small regex per distinct level
//! pattern stays small.

mod builder;
mod limits;
mod patterns;

pub use limits::{CompileError, Limits};

use crate::ast::Action;
use crate::automaton::Automaton;
use crate::check::{ActionSet, Checked};
use builder::Builder;

/// Compiles a checked policy.
pub fn compile(checked: &Checked, limits: &Limits) -> Result<Automaton, CompileError> {
    if checked.rules.len() > limits.max_rules {
        return Err(CompileError::TooManyRules {
            given: checked.rules.len(),
            limit: limits.max_rules,
        });
    }
    let mut builder = Builder::new(checked.identities.len(), limits);
    for rule in &checked.rules {
        builder.insert_rule(rule)?;
    }
    Ok(builder.finish(checked.rules.len()))
}
/// The actions a rule grants or denies, for documentation output.
pub fn describe_actions(actions: ActionSet) -> String {
    let names: Vec<&str> = Action::ALL
        .iter()
        .filter(|a| actions.contains(**a))
        .map(|a| a.as_str())
        .collect();
    names.join(", ")
}

/// `Automaton::verify` over a compiled shipped policy, and over copies broken on purpose:
/// each broken invariant is reported as its own error, naming the node at fault. (Here and
/// not in `automaton/`: building an automaton to break needs this stage.)
#[cfg(test)]
mod verify_tests {
    use super::*;
    use crate::automaton::{Below, Node, NodeId, VerifyError};
    use crate::policy::Policy;

    fn compiled() -> Automaton {
        let policy = Policy::load("policies/xfinity.policy").expect("the shipped policy loads");
        compile(&policy.checked, &Limits::default()).expect("the shipped policy compiles")
    }

    #[test]
    fn a_compiled_policy_verifies() {
        assert_eq!(compiled().verify(), Ok(()));
    }

    #[test]
    fn an_edge_beyond_the_nodes_names_its_node_and_target() {
        let mut automaton = compiled();
        let root = automaton.roots[0];
        let target = NodeId(automaton.nodes.len() as u32 + 7);
        automaton.nodes[root.0 as usize].any = Some(target);
        let error = automaton.verify().unwrap_err();
        assert_eq!(
            error,
            VerifyError::EdgeOutOfRange {
                node: root,
                target,
                nodes: automaton.nodes.len()
            }
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("n{} has an edge to n{}", root.0, target.0))
        );
    }

    #[test]
    fn a_node_without_edges_or_accepts_is_a_dead_end() {
        let mut automaton = compiled();
        automaton.nodes.push(Node::default());
        let node = NodeId(automaton.nodes.len() as u32 - 1);
        assert_eq!(automaton.verify(), Err(VerifyError::DeadEnd { node }));
    }

    #[test]
    fn an_accept_of_a_rule_that_does_not_exist_names_the_rule() {
        let mut automaton = compiled();
        automaton.rule_count = 0;
        let error = automaton.verify().unwrap_err();
        assert!(matches!(error, VerifyError::UnknownRule { .. }), "{error}");
    }

    #[test]
    fn a_wrong_summary_below_is_reported_with_both() {
        let mut automaton = compiled();
        let leaf = automaton
            .nodes
            .iter()
            .rposition(|n| !n.exact().is_empty())
            .expect("some rule ends at a node");
        automaton.nodes[leaf].below = Below::default();
        let error = automaton.verify().unwrap_err();
        assert!(matches!(error, VerifyError::Below { .. }), "{error}");
    }

    #[test]
    fn connect_rules_and_roots_of_different_counts_are_reported() {
        let mut automaton = compiled();
        automaton.connect.pop();
        let roots = automaton.roots.len();
        assert_eq!(
            automaton.verify(),
            Err(VerifyError::IdentityCount {
                connect: roots - 1,
                roots
            })
        );
    }
}
