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
