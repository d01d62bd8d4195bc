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
    /// Every line and block of the file, in order.
    pub items: Vec<Item>,
}

/// One top-level line (or block) of a policy.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// An empty line.
    Blank,
    /// A comment on a line of its own.
    Comment(Comment),
    /// An identity block.
    Identity(Identity),
    /// A `set` declaration.
    Set(SetDecl),
    /// An `allow` or `deny` rule.
    Rule(Rule),
    /// An `assert` line.
    Assert(Assertion),
}

/// A `# ...` comment; `text` includes the leading `#`.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub(crate) text: String,
    pub(crate) span: Span,
}

/// A name as written, with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    pub(crate) text: String,
    pub(crate) span: Span,
}

/// How an identity is verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// Verified from a signed JWT.
    Jwt,
    /// Verified from an X.509 client certificate chain.
    Certificate,
    /// No credential: the client connects without one.
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
    pub(crate) name: Name,
    pub(crate) kind: IdentityKind,
    pub(crate) kind_span: Span,
    /// A comment after the opening `{`.
    pub open_comment: Option<Comment>,
    pub(crate) lines: Vec<IdentityLine>,
    pub(crate) span: Span,
    pub(crate) trailing: Option<Comment>,
}

/// One line inside an identity block.
#[derive(Clone, Debug, PartialEq)]
pub enum IdentityLine {
    /// An empty line inside the block.
    Blank,
    /// A comment line inside the block.
    Comment(Comment),
    /// A statement with its trailing comment.
    Statement {
        /// The statement.
        statement: IdentityStatement,
        /// The comment after it on the same line.
        trailing: Option<Comment>,
    },
}

/// A statement inside an identity block.
#[derive(Clone, Debug, PartialEq)]
pub enum IdentityStatement {
    /// `client "xfi:{pid}_{aid}:clt:{jti}"`
    Client(Template),
    /// `require uid_aid == aid`
    RequireEq {
        /// The left attribute.
        left: Name,
        /// The right attribute.
        right: Name,
        /// Where it is.
        span: Span,
    },
    /// `require mac is eui64`
    RequireIs {
        /// The attribute.
        attr: Name,
        /// The check.
        check: Name,
        /// Where it is.
        span: Span,
    },
    /// `require pid in partners`: the value must be one of a named set.
    RequireIn {
        /// The attribute.
        attr: Name,
        /// The set.
        set: Name,
        /// Where it is.
        span: Span,
    },
    /// `pid = claim "pid"` / `aid = san.dirname.CN`
    Bind {
        /// The attribute bound.
        attr: Name,
        /// Where its value comes from.
        source: AttrSource,
        /// Where the statement is.
        span: Span,
    },
    /// `subject.UID as "{model}:{serial}:{uid_aid}:{iid}"`
    Extract {
        /// The credential field the attributes are extracted from.
        source: AttrSource,
        /// The template that cuts the field into attributes.
        template: Template,
        /// Where the statement is.
        span: Span,
    },
    /// `issuer "..."`, `algorithms RS256, ES256`, `subscriptions filtered`, ...
    Setting {
        /// The setting's name.
        key: Name,
        /// Its values, in order.
        values: Vec<Value>,
        /// Where the statement is.
        span: Span,
    },
}

/// Where an attribute's value comes from in a credential.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrSource {
    /// A JWT claim: `claim "pid"`.
    Claim {
        /// The claim's name.
        name: String,
        /// Where it is.
        span: Span,
    },
    /// A certificate field: `san.dirname.O`, `subject.UID`, `san.uri`, ...
    Field {
        /// The field's dotted path.
        path: String,
        /// Where it is.
        span: Span,
    },
}

impl AttrSource {
    pub(crate) fn span(&self) -> Span {
        match self {
            AttrSource::Claim { span, .. } | AttrSource::Field { span, .. } => *span,
        }
    }
}

/// A value in a set or a setting: a bare word or a string.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub(crate) text: String,
    pub(crate) quoted: bool,
    pub(crate) span: Span,
}

/// `set NAME = a, b, c`
#[derive(Clone, Debug, PartialEq)]
pub struct SetDecl {
    pub(crate) name: Name,
    pub(crate) values: Vec<Value>,
    pub(crate) span: Span,
    pub(crate) trailing: Option<Comment>,
}

/// `[@id("label")] allow|deny WHO ACTIONS ["template"]`
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// `@id("label")`: the rule's stable name (the text between the quotes, and the span of
    /// the whole `@id(...)`), if it has one.
    pub(crate) label: Option<Name>,
    pub(crate) effect: Effect,
    pub(crate) who: Who,
    pub(crate) actions: Vec<(Action, Span)>,
    pub(crate) template: Option<Template>,
    pub(crate) span: Span,
    pub(crate) trailing: Option<Comment>,
}

/// Whether a rule grants or takes away access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Grants the access, unless a deny also matches.
    Allow,
    /// Takes the access away; a deny always wins.
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
    pub(crate) who: Who,
    /// `only`: every topic and filter the identities may use lies in these namespaces.
    pub namespaces: Vec<Template>,
    /// `isolated by`: the attributes that tell accounts apart (empty for `only`).
    pub isolated_by: Vec<Name>,
    pub(crate) span: Span,
    pub(crate) trailing: Option<Comment>,
}

/// Whom a rule is for.
#[derive(Clone, Debug, PartialEq)]
pub enum Who {
    /// `*`: every identity.
    Any(Span),
    /// The named identities.
    Identities(Vec<Name>),
}

/// An MQTT action a rule governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Connecting with a client id.
    Connect,
    /// Publishing to a topic.
    Publish,
    /// Publishing with the retain flag set.
    Retain,
    /// Subscribing to a topic filter.
    Subscribe,
    /// Receiving a message on a topic.
    Receive,
}

impl Action {
    /// Every action, in the order the language lists them.
    pub const ALL: [Action; 5] = [
        Action::Connect,
        Action::Publish,
        Action::Retain,
        Action::Subscribe,
        Action::Receive,
    ];

    /// The action's keyword in the policy language.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::Publish => "publish",
            Action::Retain => "retain",
            Action::Subscribe => "subscribe",
            Action::Receive => "receive",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Action> {
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
    pub(crate) text: String,
    /// The span of the text between the quotes.
    pub span: Span,
    pub(crate) levels: Vec<Level>,
}

/// One level of a template: a sequence of parts (`{pid}_{aid}` is three parts).
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    pub(crate) parts: Vec<Part>,
    pub(crate) span: Span,
}

/// A piece of a level.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Literal text.
    /// Literal text.
    Text {
        /// The text.
        text: String,
        /// Where it is.
        span: Span,
    },
    /// `+` as a whole level.
    Plus {
        /// Where it is.
        span: Span,
    },
    /// `#` as a whole (last) level.
    Hash {
        /// Where it is.
        span: Span,
    },
    /// `{pid}`: an attribute of the identity (or `{client}`, the verified client id).
    Attr {
        /// The attribute's name.
        name: Name,
    },
    /// `{+rid}`: a free, named capture of any text.
    Capture {
        /// The capture's name.
        name: Name,
    },
    /// `{sid in services}`: one value of a named set, captured as `sid`.
    SetRef {
        /// The capture's name.
        capture: Box<Name>,
        /// The set it must belong to.
        set: Box<Name>,
        /// Where the part is.
        span: Span,
    },
    /// `{success|failure}`: one of the listed literals.
    Alternatives {
        /// The names.
        items: Vec<Name>,
        /// Where it is.
        span: Span,
    },
}

impl Part {
    pub(crate) fn span(&self) -> Span {
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
