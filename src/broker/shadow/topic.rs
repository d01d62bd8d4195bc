//! The shadow topic layout (AWS): requests on `$aws/things/<thing>/shadow/<get|update|delete>`,
//! responses on `<request>/accepted`, `<request>/rejected`, `update/delta` and
//! `update/documents`.
//!
//! Thing names follow AWS: 1 to 128 characters of `[A-Za-z0-9:_-]`, which also makes them
//! safe file names for the store. This module must never decide who may use a topic; the
//! policy does that before a request gets here and again for each response delivery.

/// The prefix every shadow topic starts with.
pub const PREFIX: &str = "$aws/things/";
/// Longest thing name (AWS).
pub const MAX_THING_NAME: usize = 128;

/// A shadow operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `get`: read the shadow.
    Get,
    /// `update`: change the shadow.
    Update,
    /// `delete`: remove the shadow.
    Delete,
}

impl Operation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// A parsed request topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTopic<'t> {
    pub(crate) thing: &'t str,
    pub(crate) operation: Operation,
}

/// `Some` if `topic` is exactly a shadow request topic (responses and other topics under
/// `$aws/` are not requests).
pub fn parse_request(topic: &str) -> Option<RequestTopic<'_>> {
    let rest = topic.strip_prefix(PREFIX)?;
    let (thing, op) = rest.split_once("/shadow/")?;
    if thing.is_empty() || thing.contains('/') {
        return None;
    }
    let operation = match op {
        "get" => Operation::Get,
        "update" => Operation::Update,
        "delete" => Operation::Delete,
        _ => return None,
    };
    Some(RequestTopic { thing, operation })
}

/// Whether `thing` is a valid thing name (AWS rules).
pub fn valid_thing_name(thing: &str) -> bool {
    (1..=MAX_THING_NAME).contains(&thing.len())
        && thing
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

/// `$aws/things/<thing>/shadow/<op>/<suffix>`, e.g. suffix `accepted`, `delta`.
pub fn response(thing: &str, operation: Operation, suffix: &str) -> String {
    format!("{PREFIX}{thing}/shadow/{}/{suffix}", operation.as_str())
}

/// `$aws/things/<thing>/shadow/<op>`.
pub fn request(thing: &str, operation: Operation) -> String {
    format!("{PREFIX}{thing}/shadow/{}", operation.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_request_topics_parse() {
        assert_eq!(
            parse_request("$aws/things/P1_A1_light/shadow/update"),
            Some(RequestTopic {
                thing: "P1_A1_light",
                operation: Operation::Update
            })
        );
        for topic in [
            "$aws/things/T/shadow/update/accepted",
            "$aws/things//shadow/get",
            "$aws/things/a/b/shadow/get",
            "$aws/things/T/shadow/list",
            "aws/things/T/shadow/get",
        ] {
            assert_eq!(parse_request(topic), None, "{topic}");
        }
        assert_eq!(
            response("T", Operation::Get, "accepted"),
            "$aws/things/T/shadow/get/accepted"
        );
    }

    #[test]
    fn thing_names_are_safe_file_names() {
        assert!(valid_thing_name("P1_A1_light-2:x"));
        for bad in ["", "..", "a.b", "a b", &"x".repeat(129)] {
            assert!(!valid_thing_name(bad), "{bad}");
        }
    }
}
