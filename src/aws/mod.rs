//! The AWS IoT Core target: a bound session rendered as AWS IoT policy documents, and the
//! custom authorizer's response built on them.
//!
//! [`render`] turns what topicguard grants one verified identity into statements:
//! `iot:Connect` on its own `client/<id>`, `iot:Publish`, `iot:RetainPublish` and
//! `iot:Receive` on `topic/…`, `iot:Subscribe` on `topicfilter/…`, Allow and Deny, packed
//! into at most ten documents of 2,048 characters ([`document`]). AWS's resource patterns
//! cannot say "one level": `*` crosses `/`. So every pattern is proved before it is emitted
//! ([`plan`], [`lang`]): the documents never grant a request topicguard denies; where AWS
//! cannot express a rule exactly they grant less, and a [`narrowing::Note`] says which rule,
//! why, and gives an example. Attribute values and client ids are written so that no
//! character in them is ever a wildcard or a policy variable ([`glob`]). Shared
//! subscriptions are never granted: AWS matches `iot:Subscribe` against the whole
//! `$share/<group>/<filter>` string, which topicguard judges by the filter after the group,
//! so wherever a pattern reaches such a string a Deny of `$share/*` and `$queue/*` is added.
//!
//! The ARN's partition, region and account are fixed values: a `*` there would also let
//! the pattern's resource part slide across the ARN's colons (AWS lets a `*` that ends an
//! ARN segment match beyond the colon), so a topic `x:acct:topic/a` would match a resource
//! meant for `a`. [`Target::new`] refuses anything but a partition name, a region name
//! and a 12-digit account.
//!
//! Cost: rendering runs a few hundred small automaton products (tens of milliseconds for
//! the shipped policies); it never runs on a decision path.

pub mod authorizer;
pub mod document;
pub mod glob;
pub mod input;
pub mod lang;
pub mod model;
pub mod narrowing;
pub mod plan;
pub mod proof;
pub mod shape;

use crate::ast::Action;
use crate::check::RuleId;
use crate::decide::BindError;
use crate::decide::{Engine, Request, Session};
use document::{Document, FitError, Statement};
use input::Input;
use narrowing::Note;
use plan::{Exactness, Kind, Plan, PlanError};

/// Where the policy applies: the ARN's partition, region and account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    partition: String,
    region: String,
    account: String,
}

/// A partition, region or account that is not a plain name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The partition is not a known AWS partition.
    #[error("partition `{0}` is not one of aws, aws-cn, aws-us-gov")]
    Partition(String),
    #[error(
        "region `{0}` is not a region name (lowercase letters, digits and `-`, e.g. us-east-1); a wildcard is not accepted: in an ARN it would also match across the resource's colons"
    )]
    /// The region is not a valid AWS region name.
    Region(String),
    #[error(
        "account `{0}` is not a 12-digit AWS account id; a wildcard is not accepted: in an ARN it would also match across the resource's colons"
    )]
    /// The account is not a 12-digit AWS account id.
    Account(String),
}

impl Target {
    /// A target, each part validated.
    pub fn new(partition: &str, region: &str, account: &str) -> Result<Target, TargetError> {
        if !["aws", "aws-cn", "aws-us-gov"].contains(&partition) {
            return Err(TargetError::Partition(partition.to_string()));
        }
        let region_ok = (2..=32).contains(&region.len())
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !region.starts_with('-')
            && !region.ends_with('-');
        if !region_ok {
            return Err(TargetError::Region(region.to_string()));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TargetError::Account(account.to_string()));
        }
        Ok(Target {
            partition: partition.to_string(),
            region: region.to_string(),
            account: account.to_string(),
        })
    }

    /// The ARN of a resource of `kind` (`client`, `topic`, `topicfilter`) with an
    /// already written pattern.
    pub fn arn(&self, kind: &str, pattern: &str) -> String {
        format!(
            "arn:{}:iot:{}:{}:{kind}/{pattern}",
            self.partition, self.region, self.account
        )
    }
}

/// Why nothing was rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The identity does not bind.
    #[error("the identity was rejected: {0}")]
    Rejected(BindError),
    /// The policy does not let this identity connect with this client id.
    #[error("topicguard does not allow this identity to connect with client id `{0}`")]
    ConnectDenied(String),
    /// A pattern cannot be expressed or proved.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The statements do not fit in AWS's document limits.
    #[error(transparent)]
    Fit(#[from] FitError),
}

/// The rendered policy: its documents, and what the reader must know about it.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The policy documents to attach.
    pub documents: Vec<Document>,
    /// Where the documents grant less than the policy (narrowed, never widened).
    pub notes: Vec<Note>,
    /// Per action, whether the documents grant exactly what topicguard allows.
    pub exactness: Vec<(Action, Exactness)>,
}

impl Rendered {
    /// True if no action is narrowed (or unsettled).
    pub fn is_exact(&self) -> bool {
        self.exactness.iter().all(|(_, e)| *e == Exactness::Exact)
    }
}

/// Renders what topicguard grants `session` as AWS IoT policy documents.
pub fn render(
    engine: &Engine,
    session: &Session,
    target: &Target,
) -> Result<Rendered, RenderError> {
    if let Some(error) = session.error() {
        return Err(RenderError::Rejected(error.clone()));
    }
    if !engine.decide(session, Request::Connect).is_allowed() {
        return Err(RenderError::ConnectDenied(session.client_id().to_string()));
    }
    let input = Input { engine, session };
    let plans = [
        plan::connect(input),
        plan::topics(input, Action::Publish)?,
        plan::topics(input, Action::Retain)?,
        plan::filters(input)?,
        plan::topics(input, Action::Receive)?,
    ];
    let mut statements = Vec::new();
    for p in &plans {
        statements.extend(statements_of(engine, target, p));
    }
    let documents = document::pack(&statements)?;
    Ok(Rendered {
        documents,
        notes: plans.iter().flat_map(|p| p.notes.clone()).collect(),
        exactness: plans.iter().map(|p| (p.action, p.exactness)).collect(),
    })
}

/// AWS's name of an action, and the resource type it is checked against.
pub fn aws_action(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Connect => ("iot:Connect", "client"),
        Action::Publish => ("iot:Publish", "topic"),
        Action::Retain => ("iot:RetainPublish", "topic"),
        Action::Subscribe => ("iot:Subscribe", "topicfilter"),
        Action::Receive => ("iot:Receive", "topic"),
    }
}

/// One statement per rule and kind, in rule order (allows, then their cuts, then denies).
fn statements_of(engine: &Engine, target: &Target, plan: &Plan) -> Vec<Statement> {
    let (action, resource_kind) = aws_action(plan.action);
    let mut keys: Vec<(Kind, RuleId)> = plan.grants.iter().map(|g| (g.kind, g.rule)).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(kind, rule)| {
            let resources = plan
                .grants
                .iter()
                .filter(|g| g.kind == kind && g.rule == rule)
                .map(|g| target.arn(resource_kind, &g.glob.resource()))
                .collect();
            let line = engine.checked().rule(rule).loc.line;
            let (effect, kind_name) = match kind {
                Kind::Allow => ("Allow", "Allow"),
                Kind::Cut => ("Deny", "Cut"),
                Kind::Deny => ("Deny", "Deny"),
                Kind::Shared => ("Deny", "Shared"),
            };
            let action_name = action.trim_start_matches("iot:");
            let sid = match kind {
                Kind::Shared => format!("NoShared{action_name}"),
                _ => format!("R{line}{action_name}{kind_name}"),
            };
            Statement {
                sid,
                effect,
                action,
                resources,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_plain_names() {
        assert!(Target::new("aws", "us-east-1", "123456789012").is_ok());
        assert!(Target::new("aws", "*", "123456789012").is_err());
        assert!(Target::new("aws", "us-east-1", "*").is_err());
        assert!(Target::new("aws", "us-east-1", "12345678901").is_err());
        assert!(Target::new("aws", "us:east", "123456789012").is_err());
        assert!(Target::new("aws*", "us-east-1", "123456789012").is_err());
        let t = Target::new("aws-cn", "cn-north-1", "000000000000").unwrap();
        assert_eq!(
            t.arn("topic", "a/b"),
            "arn:aws-cn:iot:cn-north-1:000000000000:topic/a/b"
        );
    }
}
