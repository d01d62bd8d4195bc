//! Topic-name and topic-filter syntax, as the wire format requires.
//!
//! Names: non-empty (5.0 allows empty only with a topic alias), no `+` or `#`
//! (MQTT-3.3.2-2). Filters: non-empty, `+` only as a whole level, `#` only as the whole last
//! level (MQTT-4.7.1-1/-2); `$share/<name>/<filter>` needs a non-empty share name without
//! `+`, `#` or `/`, and a non-empty filter (MQTT-4.8.2-1/-2). Level and length caps are
//! a server policy applied later, not syntax: this module must never know about limits.

use super::error::CodecError;

/// Checks a PUBLISH or will topic name; `allow_empty` when a 5.0 topic alias is present.
pub fn check_name(topic: &str, allow_empty: bool) -> Result<(), CodecError> {
    if topic.is_empty() && !allow_empty {
        return Err(CodecError::InvalidTopicName { why: "is empty" });
    }
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(CodecError::InvalidTopicName {
            why: "contains a wildcard (`+` or `#`)",
        });
    }
    Ok(())
}

/// Checks a SUBSCRIBE or UNSUBSCRIBE filter, including the `$share/` form.
pub fn check_filter(filter: &str) -> Result<(), CodecError> {
    let bad = |why| CodecError::InvalidTopicFilter {
        filter: shorten(filter),
        why,
    };
    if filter.is_empty() {
        return Err(bad("is empty"));
    }
    let plain = match filter.strip_prefix("$share/") {
        None if filter == "$share" => return Err(bad("is `$share` with no share name")),
        None => filter,
        Some(rest) => {
            let (name, inner) = rest
                .split_once('/')
                .ok_or_else(|| bad("has a $share name but no filter"))?;
            if name.is_empty() || name.contains(['+', '#']) {
                return Err(bad("has a $share name that is empty or holds `+` or `#`"));
            }
            if inner.is_empty() {
                return Err(bad("has an empty filter after its $share name"));
            }
            inner
        }
    };
    check_wildcards(plain).map_err(bad)
}

fn check_wildcards(filter: &str) -> Result<(), &'static str> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let wild = level.contains(['+', '#']);
        if wild && level != "+" && level != "#" {
            return Err("uses `+` or `#` inside a level");
        }
        if level == "#" && levels.peek().is_some() {
            return Err("has `#` before the last level");
        }
    }
    Ok(())
}

/// True for a `$share/` filter.
pub fn is_shared(filter: &str) -> bool {
    filter.starts_with("$share/")
}

/// The filter, cut to a readable length for error messages.
fn shorten(filter: &str) -> String {
    const MAX: usize = 64;
    if filter.len() <= MAX {
        return filter.to_string();
    }
    let mut end = MAX;
    while !filter.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &filter[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("a/b", false).is_ok());
        assert!(check_name("", true).is_ok());
        assert!(check_name("", false).is_err());
        assert!(check_name("a/+", false).is_err());
        assert!(check_name("a#", false).is_err());
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/+/b",
            "a/#",
            "/",
            "+/+",
            "$share/g/a/#",
            "$SYS/#",
        ] {
            assert!(check_filter(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a/#/b",
            "a+",
            "a/b#",
            "$share/g/",
            "$share//a",
            "$share/g+/a",
            "$share/g",
            "$share",
        ] {
            assert!(check_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_filters_are_shortened_in_messages() {
        let filter = format!("{}#/x", "a/".repeat(100));
        let err = check_filter(&filter).unwrap_err().to_string();
        assert!(err.len() < 140, "{err}");
    }
}
