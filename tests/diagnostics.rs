//! The diagnostic codes are a typed list ([`Code`]); `docs/diagnostics.md` shows exactly that
//! list, and a snapshot makes every change to it a reviewed one.

use topicguard::diagnostic::{Code, code_table};

#[test]
fn the_documented_codes_are_the_codes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/diagnostics.md"))
        .expect("read docs/diagnostics.md");
    let table = code_table();
    assert!(
        doc.contains(&table),
        "docs/diagnostics.md does not hold the code table; replace its table with:\n{table}"
    );
}

#[test]
fn the_code_list_is_reviewed() {
    insta::assert_snapshot!("diagnostic_codes", code_table());
}

#[test]
fn codes_are_unique_and_named_by_stage() {
    let mut seen = std::collections::BTreeSet::new();
    for code in Code::ALL {
        assert!(seen.insert(code.as_str()), "{code} twice");
        let stage = code.as_str().split("::").next().unwrap_or("");
        assert!(
            ["parse", "check", "lint", "compile"].contains(&stage),
            "{code} names no stage"
        );
        assert!(!code.meaning().trim().is_empty(), "{code} is undocumented");
    }
}
