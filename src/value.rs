//! Identity attribute values and client ids: the value grammars, the one guard against
//! wildcard injection. A leaf module: the checker (which judges template text by these
//! grammars), the identity layer and the decision engine all use it, and it uses nothing.
//!
//! Two grammars, for the two places values come from:
//! * **Attribute values** from a verified credential (PID, AID, JTI, IID, ...) pass
//!   [`validate_value`]: 1 to [`MAX_VALUE_BYTES`] bytes of printable ASCII, without `/`,
//!   `+`, `#`, `$`, spaces or control characters. Identity providers and CAs issue such
//!   identifiers; anything else in a claim or a certificate field is suspicious.
//! * **Client ids** and the parts a client template captures from them pass
//!   [`validate_client_id`]: 1 to [`MAX_VALUE_BYTES`] bytes of any UTF-8 (spaces and
//!   non-ASCII included: MQTT clients use them) except what is dangerous where a client
//!   id is used, as a topic level or part of one: `/` (a level separator), `+` and `#`
//!   (wildcards), control characters (NUL among them), and a leading `$` (a topic whose
//!   first level starts with `$` is the broker's).
//!
//! Bad values are rejected with a reason, never escaped or trimmed: a value can therefore
//! never widen what a template matches (compare mosquitto CVE-2017-7650). This module must
//! never accept a value it cannot prove safe.

use std::fmt;

/// The longest attribute value accepted.
pub const MAX_VALUE_BYTES: usize = 256;

/// Why an attribute value was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueError {
    /// The value is empty.
    Empty,
    /// The value is longer than the limit.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The value holds a forbidden character.
    Forbidden {
        /// The character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
    /// A client id (or a part captured from one) starting with `$`.
    LeadingDollar,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Empty => f.write_str("is empty"),
            ValueError::TooLong { len } => {
                write!(f, "is {len} bytes long (limit {MAX_VALUE_BYTES})")
            }
            ValueError::Forbidden { ch, at } => {
                let shown = match ch {
                    '/' | '+' | '#' | '$' => format!("`{ch}` (reserved in MQTT topics)"),
                    c if c.is_ascii() => format!("{:?}", c),
                    c => format!("U+{:04X} (non-ASCII)", *c as u32),
                };
                write!(f, "contains {shown} at character {at}")
            }
            ValueError::LeadingDollar => {
                f.write_str("starts with `$` (topics starting with `$` are the broker's)")
            }
        }
    }
}

/// True for characters allowed in attribute values and client-template text.
pub fn is_value_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '/' | '+' | '#' | '$')
}

/// True for characters allowed in client ids, client-template captures and client-template
/// text (a leading `$` aside).
pub fn is_client_char(c: char) -> bool {
    !(matches!(c, '/' | '+' | '#') || c.is_control())
}

/// Checks a client id, or a part a client template captured from it, against the
/// client-id grammar.
pub fn validate_client_id(value: &str) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::Empty);
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(ValueError::TooLong { len: value.len() });
    }
    if value.starts_with('$') {
        return Err(ValueError::LeadingDollar);
    }
    match value.chars().enumerate().find(|(_, c)| !is_client_char(*c)) {
        Some((at, ch)) => Err(ValueError::Forbidden { ch, at }),
        None => Ok(()),
    }
}

/// Checks one attribute value against the identity-value grammar.
pub fn validate_value(value: &str) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::Empty);
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(ValueError::TooLong { len: value.len() });
    }
    match value.chars().enumerate().find(|(_, c)| !is_value_char(*c)) {
        Some((at, ch)) => Err(ValueError::Forbidden { ch, at }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_everything_that_could_widen_a_template() {
        for bad in ["", "P/1", "+", "#", "a\u{0}b", "$SYS", "a b", "Р1", "x\ty"] {
            assert!(validate_value(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_value(&"a".repeat(MAX_VALUE_BYTES + 1)).is_err());
    }

    #[test]
    fn client_ids_may_hold_spaces_and_utf8_but_nothing_that_shapes_a_topic() {
        for good in [
            "my phone ü",
            "lobby-hall 2",
            "Р1",
            "a$b",
            "emoji 📱",
            "xfi:P1_A1:clt:J1",
        ] {
            assert_eq!(validate_client_id(good), Ok(()), "{good:?}");
        }
        for bad in [
            "", "a/b", "+", "a#", "a\u{0}b", "x\ty", "a\u{7f}", "a\u{85}b", "$SYS",
        ] {
            assert!(validate_client_id(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(validate_client_id("$x"), Err(ValueError::LeadingDollar));
        assert!(validate_client_id(&"ü".repeat(MAX_VALUE_BYTES / 2 + 1)).is_err());
        assert!(
            validate_value("my phone").is_err(),
            "attribute values stay strict"
        );
    }

    #[test]
    fn accepts_the_seed_identifiers() {
        for good in [
            "P1",
            "A-1_b",
            "xfi:P1_A1:clt:J1",
            "0123456789abcdef",
            "550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert_eq!(validate_value(good), Ok(()), "{good:?}");
        }
    }
}
