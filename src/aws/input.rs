//! The engine and the bound session a rendering is for, and the questions the planner and
//! the notes ask of them: the session's rule shapes for an action, whether its identity
//! filters subscriptions, and how a rule is cited. It only reads; it decides nothing.

use super::shape::{Shape, TooManyShapes, shapes};
use crate::ast::{Action, Effect};
use crate::check::RuleId;
use crate::decide::{Engine, Session};

/// The engine and the session the plans are for.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) session: &'a Session,
}

impl Input<'_> {
    pub(super) fn shapes(
        &self,
        action: Action,
        effect: Effect,
    ) -> Result<Vec<Shape>, TooManyShapes> {
        match self.session.identity_id() {
            Some(id) => shapes(
                self.engine.checked(),
                id,
                &self.session.attrs().to_map(),
                action,
                effect,
            ),
            None => Ok(Vec::new()),
        }
    }

    pub(super) fn filtered(&self) -> bool {
        self.session.identity_id().is_some_and(|id| {
            self.engine.checked().identities[id.0 as usize].filtered_subscriptions
        })
    }

    /// `file:line:col` and the text of a rule, for notes.
    pub fn rule_text(&self, rule: RuleId) -> String {
        let rule = self.engine.checked().rule(rule);
        format!("{} `{}`", rule.loc, rule.text())
    }
}
