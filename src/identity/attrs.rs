//! The identity-value grammar: the one guard against wildcard injection.
//!
//! Every attribute value (PID, AID, JTI, IID, client id, ...) passes [`validate_value`]
//! before it is bound into a session. A value is 1 to [`MAX_VALUE_BYTES`] bytes of printable
//! ASCII, without `/`, `+`, `#`, `$`, spaces or control characters. Bad values are
//! rejected with a reason, never escaped or trimmed: a value can therefore never widen
//! what a template matches (compare mosquitto CVE-2017-7650). This module must never
//! accept a value it cannot prove safe.

use std::fmt;

/// The longest attribute value accepted.
pub const MAX_VALUE_BYTES: usize = 256;

/// Why an attribute value was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueError {
    Empty,
    TooLong { len: usize },
    Forbidden { ch: char, at: usize },
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
        }
    }
}

/// True for characters allowed in attribute values and client-template text.
pub fn is_value_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '/' | '+' | '#' | '$')
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
