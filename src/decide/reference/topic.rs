//! Which topic names and filters the reference interpreter accepts, written from the
//! language reference (sections 6.4, 6.6 and 8) and MQTT 5.0 sections 4.7 and 4.8.2.
//!
//! A refused topic or filter is denied before any rule is looked at, with the reason
//! below. Sizes are judged first: a topic too large to consider is `topic-too-large`
//! whatever else is wrong with it. Each check is one plain scan of the text: linear time.
//! This module must stay independent of the compiled engine's validation
//! (`decide::topic`): it is what that validation is tested against.

use crate::decide::Reason;

/// The most bytes a topic name or filter may have (MQTT's own cap for a UTF-8 string).
pub const MAX_TOPIC_BYTES: usize = 65_535;

/// The most levels a topic name or filter may have.
pub const MAX_TOPIC_LEVELS: usize = 128;

/// Why a topic name (publish, retain, receive) is refused, or `None` if it is acceptable.
///
/// A topic name is 1 to [`MAX_TOPIC_BYTES`] bytes in at most [`MAX_TOPIC_LEVELS`] levels,
/// holds no NUL and no wildcard (`+`, `#`), and does not start with `$share/` or `$queue/`:
/// those prefixes belong to subscriptions.
pub fn name_refusal(topic: &str) -> Option<Reason> {
    if let Some(reason) = size_refusal(topic) {
        return Some(reason);
    }
    let wildcard_or_nul = topic.chars().any(|c| c == '\0' || c == '+' || c == '#');
    let subscription_prefix = topic.starts_with("$share/") || topic.starts_with("$queue/");
    (wildcard_or_nul || subscription_prefix).then_some(Reason::InvalidTopic)
}

/// The filter a SUBSCRIBE is judged on (`$share/<group>/` removed), or why it is refused.
///
/// `$queue/...` is not supported. `$share/<group>/<filter>` needs a group of at least one
/// character without `+`, `#` (or `/`, which ends it) and a non-empty filter; the group
/// is then dropped. The filter is 1 to [`MAX_TOPIC_BYTES`] bytes in at most
/// [`MAX_TOPIC_LEVELS`] levels, holds no NUL, and every `+` or `#` is a whole level, `#`
/// only as the last one.
pub fn filter_to_judge(filter: &str) -> Result<&str, Reason> {
    if filter.starts_with("$queue/") {
        return Err(Reason::UnsupportedSharedSubscription);
    }
    let judged = match filter.strip_prefix("$share/") {
        None => filter,
        Some(rest) => {
            let Some((group, inner)) = rest.split_once('/') else {
                return Err(Reason::InvalidTopic);
            };
            let bad_group = group.is_empty() || group.contains('+') || group.contains('#');
            if bad_group || inner.is_empty() {
                return Err(Reason::InvalidTopic);
            }
            inner
        }
    };
    if let Some(reason) = size_refusal(judged) {
        return Err(reason);
    }
    if judged.contains('\0') {
        return Err(Reason::InvalidTopic);
    }
    let levels: Vec<&str> = judged.split('/').collect();
    let last = levels.len() - 1;
    for (index, level) in levels.iter().enumerate() {
        let whole_plus = *level == "+";
        let final_hash = *level == "#" && index == last;
        let has_wildcard = level.contains('+') || level.contains('#');
        if has_wildcard && !whole_plus && !final_hash {
            return Err(Reason::InvalidTopic);
        }
    }
    Ok(judged)
}

/// Empty: invalid. Too many bytes or levels: too large.
fn size_refusal(text: &str) -> Option<Reason> {
    if text.is_empty() {
        return Some(Reason::InvalidTopic);
    }
    let levels = text.matches('/').count() + 1;
    (text.len() > MAX_TOPIC_BYTES || levels > MAX_TOPIC_LEVELS).then_some(Reason::TopicTooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for good in ["a", "/", "a//b", "$SYS/x", "$share", "$queue", "é/ü"] {
            assert_eq!(name_refusal(good), None, "{good:?}");
        }
        for bad in ["", "a/+", "a/#", "a+b", "a\0b", "$share/g/a", "$queue/a"] {
            assert_eq!(name_refusal(bad), Some(Reason::InvalidTopic), "{bad:?}");
        }
        let levels = |n: usize| vec!["l"; n].join("/");
        assert_eq!(name_refusal(&levels(MAX_TOPIC_LEVELS)), None);
        let too_deep = levels(MAX_TOPIC_LEVELS + 1);
        assert_eq!(name_refusal(&too_deep), Some(Reason::TopicTooLarge));
        let deep_and_nul = format!("{too_deep}\0");
        assert_eq!(name_refusal(&deep_and_nul), Some(Reason::TopicTooLarge));
        assert_eq!(name_refusal(&"x".repeat(MAX_TOPIC_BYTES)), None);
        let too_long = "x".repeat(MAX_TOPIC_BYTES + 1);
        assert_eq!(name_refusal(&too_long), Some(Reason::TopicTooLarge));
    }

    #[test]
    fn filters() {
        for (filter, judged) in [
            ("a/+/#", "a/+/#"),
            ("#", "#"),
            ("+", "+"),
            ("$share/g/a/#", "a/#"),
            ("$share/g/$share/h/x", "$share/h/x"),
            ("$share", "$share"),
            ("$queue", "$queue"),
        ] {
            assert_eq!(filter_to_judge(filter), Ok(judged), "{filter:?}");
        }
        for bad in [
            "",
            "a/#/b",
            "a/b#",
            "a/+x",
            "#/",
            "a\0",
            "$share/g",
            "$share/g/",
            "$share//a",
            "$share/g+/a",
            "$share/#/a",
        ] {
            assert_eq!(filter_to_judge(bad), Err(Reason::InvalidTopic), "{bad:?}");
        }
        let unsupported = Err(Reason::UnsupportedSharedSubscription);
        assert_eq!(filter_to_judge("$queue/a"), unsupported);
        assert_eq!(filter_to_judge("$queue/"), unsupported);
        let deep = format!("$share/g/{}", vec!["+"; MAX_TOPIC_LEVELS].join("/"));
        assert_eq!(filter_to_judge(&deep).map(|f| f.len()), Ok(255));
        let deeper = format!("{deep}/#");
        assert_eq!(filter_to_judge(&deeper), Err(Reason::TopicTooLarge));
    }
}
