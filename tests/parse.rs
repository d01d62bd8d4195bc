//! Parser tests: fixtures in `tests/fixtures/parse/`.
//!
//! `ok/*.policy` must parse; the snapshot is the canonical `fmt` output, which must be
//! idempotent and survive a second parse unchanged. `err/*.policy` must fail; the snapshot
//! is every error, rendered with `file:line:col` and a caret snippet. Line-ending, BOM and
//! forbidden-character cases are direct tests, since their bytes do not belong in a snapshot.

use topicguard::Source;
use topicguard::ast::Item;
use topicguard::diagnostic::Diagnostics;
use topicguard::fmt::format;
use topicguard::parse::parse;

/// Reads a fixture as a source named by its file name (stable across machines).
fn fixture(path: &std::path::Path) -> Source {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Source::from_bytes(name, bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// Formats, and checks that formatting is a fixed point of parse ∘ format.
fn format_checked(source: &Source) -> String {
    let ast = parse(source).unwrap_or_else(|e| panic!("{}", e.render_plain()));
    let formatted = format(&ast);
    let again = parse(&Source::new("formatted", formatted.clone()))
        .unwrap_or_else(|e| panic!("formatted text does not parse:\n{}", e.render_plain()));
    assert_eq!(format(&again), formatted, "formatting is not idempotent");
    formatted
}

fn errors(text: &str) -> Diagnostics {
    match parse(&Source::new("p", text)) {
        Ok(ast) => panic!("expected a parse error, got {ast:?}"),
        Err(errors) => errors,
    }
}

/// `code@line:col` for each error, for compact assertions.
fn codes(text: &str) -> Vec<String> {
    let errors = errors(text);
    errors
        .items
        .iter()
        .map(|d| {
            let loc = errors.loc(d);
            format!("{}@{}:{}", d.code, loc.line, loc.col)
        })
        .collect()
}

#[test]
fn ok_fixtures_format_canonically() {
    insta::glob!("fixtures/parse/ok/*.policy", |path| {
        insta::assert_snapshot!(format_checked(&fixture(path)));
    });
}

#[test]
fn err_fixtures_report_every_error() {
    insta::glob!("fixtures/parse/err/*.policy", |path| {
        let source = fixture(path);
        let errors = match parse(&source) {
            Ok(ast) => panic!("{} parsed: {ast:?}", path.display()),
            Err(errors) => errors,
        };
        assert!(errors.items.iter().all(|d| d.is_error()));
        insta::assert_snapshot!(errors.render_plain());
    });
}

#[test]
fn several_errors_are_all_reported_with_their_lines() {
    let text = "allow any publsh \"a\"\nallow any publish \"ok\"\npermit x\nallow any publish \"a/{pid\"\nallow any publish \"b#\"\n";
    assert_eq!(
        codes(text),
        [
            "parse::syntax@1:11",
            "parse::syntax@3:1",
            "parse::unterminated-brace@4:22",
            "parse::wildcard-in-level@5:21",
        ]
    );
}

#[test]
fn forbidden_characters_in_templates_are_errors() {
    for (text, col) in [
        ("allow any publish \"a/\u{0}b\"\n", 22),
        ("allow any publish \"a/b\u{FEFF}\"\n", 23),
        ("allow any publish \"\u{1}/b\"\n", 20),
        ("allow any publish \"a/\tb\"\n", 22),
        ("allow any publish \"a/\u{7f}\"\n", 22),
        ("allow any publish \"a/\u{85}\"\n", 22),
        (
            "identity u from anonymous {\n    client \"u\u{0}\"\n}\n",
            14,
        ),
    ] {
        let found = codes(text);
        let line = if text.starts_with("identity") { 2 } else { 1 };
        assert_eq!(
            found,
            [format!("parse::forbidden-character@{line}:{col}")],
            "{text:?}"
        );
    }
}

#[test]
fn a_nul_outside_a_string_is_a_syntax_error() {
    assert_eq!(
        codes("allow any\u{0} publish \"a\"\n"),
        ["parse::syntax@1:10"]
    );
}

#[test]
fn empty_and_comment_only_files_have_no_statements() {
    for text in [
        "",
        "\n\n",
        "# c\n",
        "  # indented\n\n# two\n",
        "# no newline",
    ] {
        let ast = parse(&Source::new("p", text)).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            ast.items
                .iter()
                .all(|i| matches!(i, Item::Comment(_) | Item::Blank)),
            "{text:?}: {ast:?}"
        );
    }
}

/// The fixture with every statement form, rewritten with other line endings and a BOM.
#[test]
fn crlf_bom_and_missing_final_newline_parse_like_lf() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parse/ok/every_form.policy");
    let lf = fixture(&path).text().to_string();
    let expected = format_checked(&Source::new("lf", lf.clone()));
    let crlf = lf.replace('\n', "\r\n");
    let variants = [
        crlf.clone(),
        format!("\u{FEFF}{lf}"),
        format!("\u{FEFF}{crlf}"),
        lf.trim_end_matches('\n').to_string(),
        crlf.trim_end_matches("\r\n").to_string(),
    ];
    let lf_ast = parse(&Source::new("lf", lf.clone())).unwrap_or_else(|e| panic!("{e}"));
    for (i, text) in variants.iter().enumerate() {
        let ast = parse(&Source::new("v", text.clone()))
            .unwrap_or_else(|e| panic!("variant {i}: {}", e.render_plain()));
        assert_eq!(ast.items.len(), lf_ast.items.len(), "variant {i}");
        assert_eq!(format_checked(&Source::new("v", text.clone())), expected);
    }
}

#[test]
fn a_bom_after_the_start_is_an_error() {
    assert_eq!(
        codes("allow any publish \"a\"\n\u{FEFF}allow any publish \"b\"\n"),
        ["parse::forbidden-character@2:1"]
    );
}

#[test]
fn a_lone_carriage_return_is_not_a_line_ending() {
    let found = codes("allow any publish \"a\"\rallow any publish \"b\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn non_utf8_bytes_are_an_error_naming_the_offset() {
    let mut bytes = b"allow any publish \"a/".to_vec();
    let offset = bytes.len();
    bytes.extend_from_slice(&[0xED, 0xA0, 0x80]); // a UTF-16 surrogate, encoded as if UTF-8
    bytes.extend_from_slice(b"\"\n");
    let err = Source::from_bytes("bad.policy".into(), bytes).expect_err("not UTF-8");
    let message = err.to_string();
    assert!(message.contains("bad.policy"), "{message}");
    assert!(message.contains(&format!("offset {offset}")), "{message}");
    let err = Source::from_bytes("p".into(), vec![b'a', b'\n', 0xFF]).expect_err("not UTF-8");
    assert!(err.to_string().contains("offset 2"), "{err}");
}

#[test]
fn templates_keep_their_structure_through_format() {
    let text = "allow any subscribe \"c/{pid}_{aid}/{ sid in s }/{+rid}/{ a | b }/+/#\"\n";
    let formatted = format_checked(&Source::new("p", text));
    assert_eq!(
        formatted,
        "allow any subscribe \"c/{pid}_{aid}/{sid in s}/{+rid}/{a|b}/+/#\"\n"
    );
}

/// A label is written `@id("...")` right before its rule, on the rule's line; it is part
/// of the rule (not a statement of its own), and `fmt` keeps it with one space.
#[test]
fn a_label_belongs_to_the_rule_on_its_line() {
    let source = Source::new(
        "p",
        "identity d from anonymous {\n    client \"dev\"\n}\n@id(\"x\")  allow d connect\n",
    );
    let ast = parse(&source).expect("parses");
    let rule = ast
        .items
        .iter()
        .find_map(|item| match item {
            topicguard::ast::Item::Rule(rule) => Some(rule),
            _ => None,
        })
        .expect("one rule");
    let label = rule.label.as_ref().expect("labelled");
    assert_eq!(label.text, "x");
    assert_eq!(source.slice(label.span), "@id(\"x\")");
    assert!(format(&ast).ends_with("@id(\"x\") allow d connect\n"));
    // The rule-by-rule loader finds the labelled rule as a rule, not as a declaration.
    let split = topicguard::parse::split(&source);
    assert_eq!(split.rule_chunks.len(), 1);
    assert!(split.errors.is_empty());
}
