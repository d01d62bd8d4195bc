//! The value and client-id grammars for the common case, judged byte by byte: a value or
//! client id of plain printable ASCII within the length limit is accepted by a table
//! lookup per byte. Anything else (non-ASCII, a forbidden byte, empty, too long) is
//! answered "not plain", and binding then asks the grammar itself
//! ([`validate_value`], [`validate_client_id`]), which also names the reason. These
//! checks must never accept what the grammars refuse; a test compares them.

use crate::value::MAX_VALUE_BYTES;
#[cfg(doc)]
use crate::value::{validate_client_id, validate_value};

/// True for a value [`validate_value`] accepts, judged byte by byte for the common case:
/// 1 to [`MAX_VALUE_BYTES`] bytes of printable ASCII but `/ + # $`. False for anything
/// else, which [`validate_value`] then judges (and names the reason for).
pub(super) fn is_plain_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_VALUE_BYTES
        && bytes.iter().all(|b| PLAIN_VALUE_BYTE[usize::from(*b)])
}

/// The bytes [`is_plain_value`] accepts: printable ASCII but `/ + # $`.
const PLAIN_VALUE_BYTE: [bool; 256] = byte_table(b'!', b"/+#$");

/// The bytes [`is_plain_client_part`] accepts: printable ASCII and space but `/ + #`.
const PLAIN_CLIENT_BYTE: [bool; 256] = byte_table(b' ', b"/+#");

/// A table of the bytes from `first` to `~` but those in `except`.
const fn byte_table(first: u8, except: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = first;
    while b <= b'~' {
        table[b as usize] = true;
        b += 1;
    }
    let mut i = 0;
    while i < except.len() {
        table[except[i] as usize] = false;
        i += 1;
    }
    table
}

/// True for a client id or capture [`validate_client_id`] accepts, judged byte by byte for
/// the common case: 1 to [`MAX_VALUE_BYTES`] bytes of printable ASCII or spaces but
/// `/ + #`, not starting with `$`. False for anything else (non-ASCII included), which
/// [`validate_client_id`] then judges.
pub(super) fn is_plain_client_part(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_VALUE_BYTES
        && bytes[0] != b'$'
        && bytes.iter().all(|b| PLAIN_CLIENT_BYTE[usize::from(*b)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::session::{check_client_part, check_value};
    use crate::value::{validate_client_id, validate_value};

    /// The byte-wise grammar checks accept only what the grammars accept: every
    /// character of the first 512 code points and a few past them, alone, leading, inside
    /// and trailing, every length around the limit, and texts that are almost valid.
    #[test]
    fn the_plain_grammar_checks_accept_nothing_the_grammars_refuse() {
        let chars = (0u32..512)
            .chain([0x2028, 0xfeff, 0x1f4f1, 0x10ffff])
            .filter_map(char::from_u32);
        let mut texts: Vec<String> = vec![String::new()];
        for c in chars {
            for text in [
                format!("{c}"),
                format!("{c}a"),
                format!("a{c}b"),
                format!("ab{c}"),
            ] {
                texts.push(text);
            }
        }
        for len in [MAX_VALUE_BYTES - 1, MAX_VALUE_BYTES, MAX_VALUE_BYTES + 1] {
            texts.push("a".repeat(len));
            texts.push(format!("{}é", "a".repeat(len - 2)));
        }
        for text in &texts {
            if is_plain_value(text) {
                assert_eq!(validate_value(text), Ok(()), "{text:?}");
            }
            if is_plain_client_part(text) {
                assert_eq!(validate_client_id(text), Ok(()), "{text:?}");
            }
            // What the fast check refuses, the grammar judges: the checks' answers are
            // the grammars' answers.
            assert_eq!(
                check_value("a", text).is_ok(),
                validate_value(text).is_ok(),
                "{text:?}"
            );
            assert_eq!(
                check_client_part("a", text).is_ok(),
                validate_client_id(text).is_ok(),
                "{text:?}"
            );
        }
        // The common case takes the byte-wise path.
        assert!(is_plain_value("P1") && is_plain_client_part("xfi:P1_A1:clt:J1 x"));
    }
}
