//! MQTT topic-name and topic-filter validity, and `$share/` parsing.
//!
//! Topic names (publish, receive) are 1 to 65,535 bytes, contain no NUL and no wildcard.
//! Filters (subscribe) may hold `+` as a whole level and `#` as the whole last level.
//! `$share/<group>/<filter>` is split so the filter alone is judged; `$queue/` and a bad
//! share name are rejected. These checks come before any rule is consulted. Sizes are
//! judged first: a topic too large to consider is `TooLong`/`TooManyLevels` whatever
//! else is wrong with it.

use crate::compile::Limits;
use std::fmt;

/// Why a topic or filter is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TopicError {
    Empty,
    TooLong,
    TooManyLevels,
    Nul,
    WildcardInName,
    MalformedWildcard,
    BadShareName,
    EmptySharedFilter,
    UnsupportedShare,
    SharePrefixInName,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicError::Empty => "is empty",
            TopicError::TooLong => "is longer than the byte limit",
            TopicError::TooManyLevels => "has more levels than the limit",
            TopicError::Nul => "contains U+0000",
            TopicError::WildcardInName => {
                "contains a wildcard (`+` or `#`), which topic names may not"
            }
            TopicError::MalformedWildcard => {
                "uses `+` or `#` inside a level, or `#` before the last level"
            }
            TopicError::BadShareName => {
                "has a $share group name that is empty or contains `+`, `#` or `/`"
            }
            TopicError::EmptySharedFilter => "has a $share prefix with no filter after it",
            TopicError::UnsupportedShare => {
                "uses $queue/, which is not supported (use $share/<group>/)"
            }
            TopicError::SharePrefixInName => {
                "starts with $share/ or $queue/, which only subscription filters may"
            }
        })
    }
}

/// Checks a topic name for publish or receive.
pub fn check_name(topic: &str, limits: &Limits) -> Result<(), TopicError> {
    check_common(topic, limits)?;
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    if topic.starts_with("$share/") || topic.starts_with("$queue/") {
        return Err(TopicError::SharePrefixInName);
    }
    Ok(())
}

/// Checks a subscription filter (after `$share/` stripping).
pub fn check_filter(filter: &str, limits: &Limits) -> Result<(), TopicError> {
    check_common(filter, limits)?;
    let count = filter.split('/').count();
    for (i, level) in filter.split('/').enumerate() {
        let wild = level.contains('+') || level.contains('#');
        let ok = !wild || level == "+" || (level == "#" && i + 1 == count);
        if !ok {
            return Err(TopicError::MalformedWildcard);
        }
    }
    Ok(())
}

fn check_common(topic: &str, limits: &Limits) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > limits.max_topic_bytes {
        return Err(TopicError::TooLong);
    }
    if topic.split('/').count() > limits.max_topic_levels {
        return Err(TopicError::TooManyLevels);
    }
    if topic.contains('\0') {
        return Err(TopicError::Nul);
    }
    Ok(())
}

/// Splits `$share/<group>/<filter>` into the group and the filter; other filters pass
/// through with no group.
pub fn split_shared(filter: &str) -> Result<(Option<&str>, &str), TopicError> {
    if filter.starts_with("$queue/") {
        return Err(TopicError::UnsupportedShare);
    }
    let Some(rest) = filter.strip_prefix("$share/") else {
        return Ok((None, filter));
    };
    let Some((group, inner)) = rest.split_once('/') else {
        return Err(TopicError::EmptySharedFilter);
    };
    if group.is_empty() || group.contains(['+', '#']) {
        return Err(TopicError::BadShareName);
    }
    if inner.is_empty() {
        return Err(TopicError::EmptySharedFilter);
    }
    Ok((Some(group), inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let l = Limits::default();
        assert!(check_filter("a/+/#", &l).is_ok());
        assert!(check_filter("#", &l).is_ok());
        assert_eq!(
            check_filter("a/#/b", &l),
            Err(TopicError::MalformedWildcard)
        );
        assert_eq!(check_filter("a/b#", &l), Err(TopicError::MalformedWildcard));
        assert_eq!(check_filter("a/+x", &l), Err(TopicError::MalformedWildcard));
        assert_eq!(check_name("a/+", &l), Err(TopicError::WildcardInName));
        assert_eq!(check_name("", &l), Err(TopicError::Empty));
        assert_eq!(
            check_name(&"/".repeat(200), &l),
            Err(TopicError::TooManyLevels)
        );
    }

    #[test]
    fn shared_subscriptions() {
        assert_eq!(split_shared("$share/g/a/b"), Ok((Some("g"), "a/b")));
        assert_eq!(split_shared("a/b"), Ok((None, "a/b")));
        assert_eq!(
            split_shared("$share/g/"),
            Err(TopicError::EmptySharedFilter)
        );
        assert_eq!(split_shared("$share//a"), Err(TopicError::BadShareName));
        assert_eq!(split_shared("$share/g+/a"), Err(TopicError::BadShareName));
        assert_eq!(split_shared("$queue/a"), Err(TopicError::UnsupportedShare));
    }
}
