//! AWS IoT policy documents: the JSON shape, and packing statements into documents within
//! AWS's limits.
//!
//! A document is `{"Version":"2012-10-17","Statement":[...]}` (the version that has policy
//! variables, so `${*}` is read as an escape). Each statement has one effect, one action
//! and its resources. AWS accepts at most [`MAX_DOCUMENTS`] documents per principal (and
//! per custom authorizer response) of at most [`MAX_DOCUMENT_CHARS`] characters each; a
//! document is measured as its compact JSON in bytes, which is never less than its
//! characters with or without whitespace. Statements are split across documents where
//! needed (a Deny in any document wins over every Allow, so splitting changes nothing);
//! what does not fit is an error naming the largest contributors — nothing is truncated.

use serde::Serialize;

/// The policy language version with policy variables.
pub const VERSION: &str = "2012-10-17";

/// Characters per policy document (AWS IoT Core quotas; custom authorizer responses).
pub const MAX_DOCUMENT_CHARS: usize = 2048;

/// Policy documents per principal, and per custom authorizer response.
pub const MAX_DOCUMENTS: usize = 10;

/// One statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// The statement id.
    #[serde(rename = "Sid")]
    pub sid: String,
    /// `Allow` or `Deny`.
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    /// The IoT action (`iot:Connect`, `iot:Publish`, …).
    #[serde(rename = "Action")]
    pub action: &'static str,
    /// The resource ARNs it applies to.
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
}

/// One policy document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Document {
    /// The policy language version (`2012-10-17`).
    #[serde(rename = "Version")]
    pub version: &'static str,
    /// The statements, in order.
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

impl Document {
    fn new() -> Document {
        Document {
            version: VERSION,
            statements: Vec::new(),
        }
    }

    /// The size AWS's limit is checked against (compact JSON, in bytes).
    pub fn size(&self) -> usize {
        serde_json::to_string(self).map_or(usize::MAX, |s| s.len())
    }
}

/// The statements did not fit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    #[error(
        "resource `{resource}` of statement {sid} does not fit in one policy document of {MAX_DOCUMENT_CHARS} characters"
    )]
    /// One resource is longer than a document may hold.
    ResourceTooLong {
        /// The statement id.
        sid: String,
        /// The resource.
        resource: String,
    },
    #[error(
        "the policy needs {needed} documents of at most {MAX_DOCUMENT_CHARS} characters; AWS IoT accepts {MAX_DOCUMENTS}. Largest statements: {largest}"
    )]
    /// The statements need more documents than AWS attaches.
    TooManyDocuments {
        /// How many documents are needed.
        needed: usize,
        /// The largest statement's id.
        largest: String,
    },
}

/// Packs statements, in order, into as few documents as first-fit allows.
pub fn pack(statements: &[Statement]) -> Result<Vec<Document>, FitError> {
    let mut documents: Vec<Document> = Vec::new();
    let mut current = Document::new();
    for statement in statements {
        let mut rest: &[String] = &statement.resources;
        let mut part = 1;
        while !rest.is_empty() {
            let taken = fitting(&current, statement, rest, part);
            if taken == 0 {
                if current.statements.is_empty() {
                    return Err(FitError::ResourceTooLong {
                        sid: statement.sid.clone(),
                        resource: rest[0].clone(),
                    });
                }
                documents.push(std::mem::replace(&mut current, Document::new()));
                continue;
            }
            current
                .statements
                .push(chunk(statement, &rest[..taken], part));
            rest = &rest[taken..];
            part += 1;
        }
    }
    if !current.statements.is_empty() {
        documents.push(current);
    }
    if documents.len() > MAX_DOCUMENTS {
        return Err(FitError::TooManyDocuments {
            needed: documents.len(),
            largest: largest(statements),
        });
    }
    Ok(documents)
}

/// A statement holding some of the resources; later parts get a numbered Sid.
fn chunk(statement: &Statement, resources: &[String], part: usize) -> Statement {
    Statement {
        sid: if part == 1 {
            statement.sid.clone()
        } else {
            format!("{}Part{part}", statement.sid)
        },
        effect: statement.effect,
        action: statement.action,
        resources: resources.to_vec(),
    }
}

/// How many of `rest` fit into `document` as one more statement (binary search on the
/// measured size, so the count is exact).
fn fitting(document: &Document, statement: &Statement, rest: &[String], part: usize) -> usize {
    let fits = |n: usize| {
        let mut trial = document.clone();
        trial.statements.push(chunk(statement, &rest[..n], part));
        trial.size() <= MAX_DOCUMENT_CHARS
    };
    if !fits(1) {
        return 0;
    }
    let (mut low, mut high) = (1, rest.len());
    while low < high {
        let mid = (low + high).div_ceil(2);
        if fits(mid) { low = mid } else { high = mid - 1 }
    }
    low
}

fn largest(statements: &[Statement]) -> String {
    let mut sized: Vec<(usize, &Statement)> = statements
        .iter()
        .map(|s| (serde_json::to_string(s).map_or(0, |t| t.len()), s))
        .collect();
    sized.sort_by_key(|s| std::cmp::Reverse(s.0));
    sized
        .iter()
        .take(3)
        .map(|(size, s)| {
            format!(
                "{} ({} resources, {size} characters)",
                s.sid,
                s.resources.len()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sid: &str, count: usize, len: usize) -> Statement {
        Statement {
            sid: sid.to_string(),
            effect: "Allow",
            action: "iot:Publish",
            resources: (0..count).map(|i| format!("{i:0len$}")).collect(),
        }
    }

    #[test]
    fn splits_statements_and_never_drops_a_resource() {
        let statements = [statement("A", 40, 100), statement("B", 3, 10)];
        let docs = pack(&statements).unwrap();
        assert!(docs.len() > 1);
        for doc in &docs {
            assert!(doc.size() <= MAX_DOCUMENT_CHARS, "{}", doc.size());
        }
        let all: Vec<&String> = docs
            .iter()
            .flat_map(|d| &d.statements)
            .flat_map(|s| &s.resources)
            .collect();
        assert_eq!(all.len(), 43);
        assert_eq!(docs[1].statements[0].sid, "APart2");
    }

    #[test]
    fn what_does_not_fit_is_an_error() {
        let too_long = pack(&[statement("A", 1, 3000)]);
        assert!(matches!(too_long, Err(FitError::ResourceTooLong { .. })));
        let too_many = pack(&[statement("Big", 400, 100)]);
        let Err(FitError::TooManyDocuments { needed, largest }) = too_many else {
            panic!("{too_many:?}");
        };
        assert!(needed > MAX_DOCUMENTS && largest.contains("Big (400 resources"));
    }
}
