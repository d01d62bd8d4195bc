//! Turning one verified credential value into attributes: `FIELD as "{a}:{b}"` splits and
//! the identity's `require` lines.
//!
//! Shared by the JWT and certificate verifiers. A split takes exactly the parts the template
//! names: every separator must be there, no part may be empty or contain the separators
//! around it, and every part must pass [`validate_value`]. Nothing is trimmed, escaped or
//! guessed; a value that does not split exactly is rejected with a reason. This module must
//! never return a partial split.

use crate::check::{AttrCheck, ClientPiece, Require};
use crate::value::validate_value;
use std::collections::BTreeMap;

/// Why a value did not split by its template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// The value does not start with the template's leading text.
    #[error("does not start with `{text}`")]
    MissingText {
        /// The text expected.
        text: String,
    },
    /// The separator after an attribute is missing.
    #[error("has no `{separator}` after `{{{attr}}}`")]
    MissingSeparator {
        /// The attribute.
        attr: String,
        /// The separator.
        separator: String,
    },
    /// An attribute's part is empty.
    #[error("part `{{{attr}}}` is empty")]
    EmptyPart {
        /// The attribute.
        attr: String,
    },
    /// An attribute's part contains its separator.
    #[error("part `{{{attr}}}` contains the separator `{separator}` (too many parts)")]
    ExtraSeparator {
        /// The attribute.
        attr: String,
        /// The separator.
        separator: String,
    },
    /// An attribute's part is outside the attribute-value grammar.
    #[error("part `{{{attr}}}` {reason}")]
    BadPart {
        /// The attribute.
        attr: String,
        /// Why.
        reason: String,
    },
    /// The template has a free capture, which extraction cannot use.
    #[error("the template captures `{{+{name}}}`, which extraction templates cannot use")]
    FreeCapture {
        /// The capture's name.
        name: String,
    },
    /// Text is left after the template ends.
    #[error("has text left over after the template ends")]
    TrailingText,
}

/// Splits `value` by `pieces`, returning each named part in template order.
pub fn split(value: &str, pieces: &[ClientPiece]) -> Result<Vec<(String, String)>, SplitError> {
    let mut out = Vec::new();
    let mut rest = value;
    let mut previous_text: Option<&str> = None;
    for (index, piece) in pieces.iter().enumerate() {
        match piece {
            ClientPiece::Text(text) => {
                rest = rest
                    .strip_prefix(text.as_str())
                    .ok_or_else(|| SplitError::MissingText { text: text.clone() })?;
                previous_text = Some(text);
            }
            ClientPiece::Capture(name) => {
                return Err(SplitError::FreeCapture { name: name.clone() });
            }
            ClientPiece::Attr(attr) => {
                let next_text = match pieces.get(index + 1) {
                    Some(ClientPiece::Text(t)) => Some(t.as_str()),
                    _ => None,
                };
                let (part, after) = take_part(attr, rest, next_text)?;
                check_part(attr, part, previous_text, next_text)?;
                out.push((attr.clone(), part.to_string()));
                rest = after;
            }
        }
    }
    if !rest.is_empty() {
        return Err(SplitError::TrailingText);
    }
    Ok(out)
}

fn take_part<'v>(
    attr: &str,
    rest: &'v str,
    next_text: Option<&str>,
) -> Result<(&'v str, &'v str), SplitError> {
    match next_text {
        None => Ok((rest, "")),
        Some(sep) => match rest.find(sep) {
            Some(at) => Ok((&rest[..at], &rest[at..])),
            None => Err(SplitError::MissingSeparator {
                attr: attr.to_string(),
                separator: sep.to_string(),
            }),
        },
    }
}

fn check_part(
    attr: &str,
    part: &str,
    previous_text: Option<&str>,
    next_text: Option<&str>,
) -> Result<(), SplitError> {
    if part.is_empty() {
        return Err(SplitError::EmptyPart {
            attr: attr.to_string(),
        });
    }
    for sep in [previous_text, next_text].into_iter().flatten() {
        if !sep.is_empty() && part.contains(sep) {
            return Err(SplitError::ExtraSeparator {
                attr: attr.to_string(),
                separator: sep.to_string(),
            });
        }
    }
    validate_value(part).map_err(|e| SplitError::BadPart {
        attr: attr.to_string(),
        reason: e.to_string(),
    })
}

/// A `require` line that does not hold for the extracted attributes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequireError {
    /// `require left == right` does not hold.
    #[error("require {left} == {right} does not hold (`{left_value}` vs `{right_value}`)")]
    NotEqual {
        /// The left attribute.
        left: String,
        /// The right attribute.
        right: String,
        /// The left attribute's value.
        left_value: String,
        /// The right attribute's value.
        right_value: String,
    },
    /// `require attr is check` does not hold.
    #[error("require {attr} is {check} does not hold for `{value}`")]
    CheckFailed {
        /// The attribute.
        attr: String,
        /// The check.
        check: &'static str,
        /// The attribute's value.
        value: String,
    },
    /// `require attr in set` does not hold.
    #[error("require {attr} in {set} does not hold: `{value}` is not in the set")]
    NotInSet {
        /// The attribute.
        attr: String,
        /// The set.
        set: String,
        /// The attribute's value.
        value: String,
    },
}

/// The name of a check as written in the policy.
pub fn check_name(check: AttrCheck) -> &'static str {
    match check {
        AttrCheck::Eui64 => "eui64",
        AttrCheck::Uuid => "uuid",
    }
}

/// Checks the `require` lines whose attributes the credential provides.
///
/// Lines naming client-id captures are left to binding, which sees the client id.
pub fn check_requires(
    requires: &[Require],
    attrs: &BTreeMap<String, String>,
) -> Result<(), RequireError> {
    for require in requires {
        match require {
            Require::Equal(a, b) => {
                if let (Some(va), Some(vb)) = (attrs.get(a), attrs.get(b))
                    && va != vb
                {
                    return Err(RequireError::NotEqual {
                        left: a.clone(),
                        right: b.clone(),
                        left_value: va.clone(),
                        right_value: vb.clone(),
                    });
                }
            }
            Require::InSet {
                attr, set, values, ..
            } => {
                if let Some(value) = attrs.get(attr)
                    && !values.contains(value)
                {
                    return Err(RequireError::NotInSet {
                        attr: attr.clone(),
                        set: set.clone(),
                        value: value.clone(),
                    });
                }
            }
            Require::Check(a, check) => {
                if let Some(value) = attrs.get(a)
                    && !check.accepts(value)
                {
                    return Err(RequireError::CheckFailed {
                        attr: a.clone(),
                        check: check_name(*check),
                        value: value.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid_template() -> Vec<ClientPiece> {
        let attr = |n: &str| ClientPiece::Attr(n.to_string());
        let colon = || ClientPiece::Text(":".to_string());
        vec![
            attr("model"),
            colon(),
            attr("serial"),
            colon(),
            attr("uid_aid"),
            colon(),
            attr("iid"),
        ]
    }

    #[test]
    fn splits_exactly_four_parts() {
        let got = split("XB7:S1:A1:I1", &uid_template()).unwrap();
        let values: Vec<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["XB7", "S1", "A1", "I1"]);
    }

    #[test]
    fn rejects_wrong_part_counts_and_empty_parts() {
        let t = uid_template();
        assert!(matches!(
            split("XB7:S1:A1", &t),
            Err(SplitError::MissingSeparator { .. })
        ));
        assert!(matches!(
            split("XB7:S1:A1:I1:X", &t),
            Err(SplitError::ExtraSeparator { .. })
        ));
        assert!(matches!(
            split("XB7:S1:A1:", &t),
            Err(SplitError::EmptyPart { .. })
        ));
        assert!(matches!(
            split("XB7::A1:I1", &t),
            Err(SplitError::EmptyPart { .. })
        ));
        assert!(matches!(
            split("XB7:S/1:A1:I1", &t),
            Err(SplitError::BadPart { .. })
        ));
    }

    #[test]
    fn prefix_templates_need_their_prefix() {
        let t = vec![
            ClientPiece::Text("urn:dev:mac:".to_string()),
            ClientPiece::Attr("mac".to_string()),
        ];
        assert_eq!(
            split("urn:dev:mac:0011223344556677", &t).unwrap(),
            [("mac".to_string(), "0011223344556677".to_string())]
        );
        assert!(matches!(
            split("urn:dev:ops:0011", &t),
            Err(SplitError::MissingText { .. })
        ));
    }

    #[test]
    fn requires_report_the_values() {
        let attrs = BTreeMap::from([
            ("aid".to_string(), "A1".to_string()),
            ("uid_aid".to_string(), "A2".to_string()),
        ]);
        let eq = [Require::Equal("uid_aid".into(), "aid".into())];
        let err = check_requires(&eq, &attrs).unwrap_err();
        assert_eq!(
            err.to_string(),
            "require uid_aid == aid does not hold (`A2` vs `A1`)"
        );
    }
}
