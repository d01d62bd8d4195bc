//! The spanned syntax tree of a policy file, exactly as written.
//!
//! Every node keeps the [`Span`] it came from, so diagnostics and decisions point at the
//! source. Comments and blank lines are nodes too, so [`crate::fmt`] can print the file back
//! in canonical form without losing anything. This module only describes syntax: it never
//! resolves names or judges meaning (that is [`crate::check`]).

use crate::source::Span;
use std::fmt;

/// A parsed policy file.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub items: Vec<Item>,
}

/// One top-level line (or block) of a policy.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Blank,
    Comment(Comment),
    Identity(Identity),
    Set(SetDecl),
    Rule(Rule),
    Assert(Assertion),
}

/// A `# ...` comment; `text` includes the leading `#`.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

/// A name as written, with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// How an identity is verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    Jwt,
    Certificate,
    Anonymous,
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentityKind::Jwt => "jwt",
            IdentityKind::Certificate => "certificate",
            IdentityKind::Anonymous => "anonymous",
        })
    }
}

/// `identity NAME from KIND { ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub name: Name,
    pub kind: IdentityKind,
    pub kind_span: Span,
    /// A comment after the opening `{`.
    pub open_comment: Option<Comment>,
    pub lines: Vec<IdentityLine>,
    pub span: Span,
    pub trailing: Option<Comment>,
}

/// One line inside an identity block.
#[derive(Clone, Debug, PartialEq)]
pub enum IdentityLine {
    Blank,
    Comment(Comment),
    Statement {
        statement: IdentityStatement,
        trailing: Option<Comment>,
    },
}

/// A statement inside an identity block.
#[derive(Clone, Debug, PartialEq)]
pub enum IdentityStatement {
    /// `client "xfi:{pid}_{aid}:clt:{jti}"`
    Client(Template),
    /// `require uid_aid == aid`
    RequireEq { left: Name, right: Name, span: Span },
    /// `require mac is eui64`
    RequireIs { attr: Name, check: Name, span: Span },
    /// `require pid in partners`: the value must be one of a named set.
    RequireIn { attr: Name, set: Name, span: Span },
    /// `pid = claim "pid"` / `aid = san.dirname.CN`
    Bind {
        attr: Name,
        source: AttrSource,
        span: Span,
    },
    /// `subject.UID as "{model}:{serial}:{uid_aid}:{iid}"`
    Extract {
        source: AttrSource,
        template: Template,
        span: Span,
    },
    /// `issuer "..."`, `algorithms RS256, ES256`, `subscriptions filtered`, ...
    Setting {
        key: Name,
        values: Vec<Value>,
        span: Span,
    },
}

/// Where an attribute's value comes from in a credential.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrSource {
    /// A JWT claim: `claim "pid"`.
    Claim { name: String, span: Span },
    /// A certificate field: `san.dirname.O`, `subject.UID`, `san.uri`, ...
    Field { path: String, span: Span },
}

impl AttrSource {
    pub fn span(&self) -> Span {
        match self {
            AttrSource::Claim { span, .. } | AttrSource::Field { span, .. } => *span,
        }
    }
}

/// A value in a set or a setting: a bare word or a string.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub text: String,
    pub quoted: bool,
    pub span: Span,
}

/// `set NAME = a, b, c`
#[derive(Clone, Debug, PartialEq)]
pub struct SetDecl {
    pub name: Name,
    pub values: Vec<Value>,
    pub span: Span,
    pub trailing: Option<Comment>,
}

/// `[@id("label")] allow|deny WHO ACTIONS ["template"]`
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// `@id("label")`: the rule's stable name (the text between the quotes, and the span of
    /// the whole `@id(...)`), if it has one.
    pub label: Option<Name>,
    pub effect: Effect,
    pub who: Who,
    pub actions: Vec<(Action, Span)>,
    pub template: Option<Template>,
    pub span: Span,
    pub trailing: Option<Comment>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        })
    }
}

/// `assert WHO only "namespace", ...` or `assert WHO isolated by a, b`: a property of the
/// policy that `topicguard verify` proves.
#[derive(Clone, Debug, PartialEq)]
pub struct Assertion {
    pub who: Who,
    /// `only`: every topic and filter the identities may use lies in these namespaces.
    pub namespaces: Vec<Template>,
    /// `isolated by`: the attributes that tell accounts apart (empty for `only`).
    pub isolated_by: Vec<Name>,
    pub span: Span,
    pub trailing: Option<Comment>,
}

/// Whom a rule is for.
#[derive(Clone, Debug, PartialEq)]
pub enum Who {
    Any(Span),
    Identities(Vec<Name>),
}

/// An MQTT action a rule governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Connect,
    Publish,
    Retain,
    Subscribe,
    Receive,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Connect,
        Action::Publish,
        Action::Retain,
        Action::Subscribe,
        Action::Receive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::Publish => "publish",
            Action::Retain => "retain",
            Action::Subscribe => "subscribe",
            Action::Receive => "receive",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// This action's bit in an action mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A topic (or client-id) template: the string as written and its parsed levels.
///
/// Client-id templates are one "level" that may contain `/`; topic templates are split
/// on `/`.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub text: String,
    /// The span of the text between the quotes.
    pub span: Span,
    pub levels: Vec<Level>,
}

/// One level of a template: a sequence of parts (`{pid}_{aid}` is three parts).
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    pub parts: Vec<Part>,
    pub span: Span,
}

/// A piece of a level.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Literal text.
    Text { text: String, span: Span },
    /// `+` as a whole level.
    Plus { span: Span },
    /// `#` as a whole (last) level.
    Hash { span: Span },
    /// `{pid}`: an attribute of the identity (or `{client}`, the verified client id).
    Attr { name: Name },
    /// `{+rid}`: a free, named capture of any text.
    Capture { name: Name },
    /// `{sid in services}`: one value of a named set, captured as `sid`.
    SetRef {
        capture: Box<Name>,
        set: Box<Name>,
        span: Span,
    },
    /// `{success|failure}`: one of the listed literals.
    Alternatives { items: Vec<Name>, span: Span },
}

impl Part {
    pub fn span(&self) -> Span {
        match self {
            Part::Text { span, .. }
            | Part::Plus { span }
            | Part::Hash { span }
            | Part::SetRef { span, .. }
            | Part::Alternatives { span, .. } => *span,
            Part::Attr { name } | Part::Capture { name } => name.span,
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Text { text, .. } => f.write_str(text),
            Part::Plus { .. } => f.write_str("+"),
            Part::Hash { .. } => f.write_str("#"),
            Part::Attr { name } => write!(f, "{{{}}}", name.text),
            Part::Capture { name } => write!(f, "{{+{}}}", name.text),
            Part::SetRef { capture, set, .. } => write!(f, "{{{} in {}}}", capture.text, set.text),
            Part::Alternatives { items, .. } => {
                let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
                write!(f, "{{{}}}", texts.join("|"))
            }
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.parts.iter().try_for_each(|p| write!(f, "{p}"))
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, level) in self.levels.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "{level}")?;
        }
        Ok(())
    }
}
