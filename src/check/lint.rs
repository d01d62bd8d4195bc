//! Warnings about rules that are legal but almost certainly mistakes.

use super::Checked;
use crate::diagnostic::Diagnostic;

/// Warnings for a checked policy: rules that can never match, allow rules wholly shadowed
/// by a deny, duplicate rules.
pub fn lint(_checked: &Checked) -> Vec<Diagnostic> {
    Vec::new()
}
