//! Checker tests: fixtures in `tests/fixtures/check/`, plus direct tests of each lint.
//!
//! Each fixture is parsed (it must parse) and checked; the snapshot is every error, or
//! when the check succeeds every warning, rendered with `file:line:col` and a caret
//! snippet. A fixture that should be clean snapshots to an empty string.

use topicguard::Source;
use topicguard::diagnostic::Diagnostics;

fn fixture(path: &std::path::Path) -> Source {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Source::from_bytes(name, bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// Every error, or every warning when there is no error.
fn diagnostics(source: &Source) -> Diagnostics {
    let ast = topicguard::parse::parse(source)
        .unwrap_or_else(|e| panic!("check fixtures must parse:\n{}", e.render_plain()));
    match topicguard::check::check(source, &ast) {
        Ok(out) => out.warnings,
        Err(errors) => errors,
    }
}

/// `code@line` for each diagnostic of a policy text.
fn codes(text: &str) -> Vec<String> {
    let diagnostics = diagnostics(&Source::new("p", text));
    diagnostics
        .items
        .iter()
        .map(|d| format!("{}@{}", d.code, diagnostics.loc(d).line))
        .collect()
}

#[test]
fn fixtures_report_errors_and_warnings() {
    insta::glob!("fixtures/check/*.policy", |path| {
        insta::assert_snapshot!(diagnostics(&fixture(path)).render_plain());
    });
}

const MOBILE: &str =
    "identity mobile from jwt {\n    pid = claim \"pid\"\n    client \"m-{pid}\"\n}\n";

fn with_mobile(rules: &str) -> Vec<String> {
    codes(&format!("{MOBILE}{rules}"))
}

#[test]
fn unknown_attribute_is_an_error_not_a_capture() {
    assert_eq!(
        with_mobile("allow mobile publish \"c/{foo}\"\n"),
        ["check::unknown-attribute@5"]
    );
    assert_eq!(
        with_mobile("allow any publish \"c/x{foo}y\"\n"),
        ["check::unknown-attribute@5"]
    );
    assert!(with_mobile("allow mobile publish \"c/{+foo}\"\n").is_empty());
}

#[test]
fn several_errors_are_reported_in_one_run() {
    let found = with_mobile(concat!(
        "allow ghost publish \"a\"\n",
        "allow mobile publish \"a/{nope}\"\n",
        "allow mobile publish \"a/{x in none}\"\n",
        "allow mobile publish \"a/#/b\"\n",
        "allow mobile connect \"a\"\n",
        "allow mobile publish \"a/{+x}{+y}\"\n",
    ));
    assert_eq!(
        found,
        [
            "check::unknown-identity@5",
            "check::unknown-attribute@6",
            "check::unknown-set@7",
            "check::hash-not-last@8",
            "check::connect-with-topic@9",
            "check::ambiguous-template@10",
        ]
    );
}

#[test]
fn shadowed_allow_is_found_whatever_the_order() {
    let deny_first = with_mobile("deny any publish \"c/#\"\nallow mobile publish \"c/{pid}\"\n");
    assert_eq!(deny_first, ["lint::shadowed-allow@6"]);
    let allow_first = with_mobile("allow mobile publish \"c/{pid}\"\ndeny any publish \"c/#\"\n");
    assert_eq!(allow_first, ["lint::shadowed-allow@5"]);
}

#[test]
fn shadowing_needs_every_identity_and_action() {
    let two = "identity other from anonymous {\n    client \"o\"\n}\n";
    let rules = "deny mobile publish \"c/#\"\nallow mobile, other publish \"c/x\"\n";
    assert!(codes(&format!("{MOBILE}{two}{rules}")).is_empty());
    assert!(
        with_mobile("deny any publish \"c/#\"\nallow mobile publish, receive \"c/x\"\n").is_empty()
    );
    assert!(with_mobile("deny any publish \"c/+\"\nallow mobile publish \"c/x/y\"\n").is_empty());
}

#[test]
fn dollar_topics_are_not_shadowed_by_leading_wildcards() {
    assert!(with_mobile("deny any publish \"#\"\nallow mobile publish \"$SYS/x\"\n").is_empty());
    assert!(with_mobile("deny any publish \"+/x\"\nallow mobile publish \"$SYS/x\"\n").is_empty());
    assert_eq!(
        with_mobile("deny any publish \"#\"\nallow mobile publish \"SYS/x\"\n"),
        ["lint::shadowed-allow@6"]
    );
}

#[test]
fn never_matches_and_duplicates() {
    assert_eq!(
        codes("allow any subscribe \"#\"\n"),
        ["lint::never-matches@1"]
    );
    assert_eq!(
        with_mobile("allow mobile publish \"$share/g/x\"\nallow mobile receive \"$queue/x\"\n"),
        ["lint::never-matches@5", "lint::never-matches@6"]
    );
    assert!(with_mobile("allow mobile subscribe \"$share/g/x\"\n").is_empty());
    assert_eq!(
        with_mobile("allow mobile publish \"a/{+x}\"\nallow any publish \"a/{+y}\"\n"),
        ["lint::duplicate-rule@6"]
    );
}

#[test]
fn warnings_do_not_stop_a_policy_from_loading() {
    let text = format!("{MOBILE}allow mobile publish \"c\"\nallow mobile publish \"c\"\n");
    let policy =
        topicguard::Policy::from_source(&Source::new("p", text)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(policy.checked.rules.len(), 2);
    assert_eq!(policy.warnings.items.len(), 1);
    assert!(!policy.warnings.has_errors());
}

#[test]
fn a_client_template_that_pins_no_account_is_a_warning() {
    let app = |client: &str| {
        format!(
            "identity app from jwt {{\n    pid = claim \"pid\"\n    user = claim \"sub\"\n    region = claim \"region\"\n    client \"{client}\"\n}}\nallow app publish \"c/{{pid}}/#\"\n"
        )
    };
    assert_eq!(codes(&app("app-{+dev}")), ["lint::client-id-not-pinned@5"]);
    assert_eq!(
        codes(&app("app-{region}-{+dev}")),
        ["lint::client-id-not-pinned@5"]
    );
    assert!(codes(&app("app-{pid}-{+dev}")).is_empty());
    assert!(
        codes(&app("app-{user}-{+dev}")).is_empty(),
        "the JWT subject is unique per issuer"
    );
    let found = diagnostics(&Source::new("p", app("app-{+dev}")));
    let warning = &found.items[0];
    assert!(
        warning
            .message
            .ends_with("names none of the attributes that scope its topics (`{pid}`)"),
        "{}",
        warning.message
    );
    assert!(warning.help.as_deref().unwrap_or("").contains("take over"));
    // Topics scoped by the client id itself, or by nothing, need no account in it.
    let lobby = "identity lobby from anonymous {\n    client \"lobby-{+screen}\"\n}\n\
                 allow lobby subscribe \"n/{+b}/{screen}/{client}\"\n";
    assert!(codes(lobby).is_empty());
    let denies_only = format!("{}deny app publish \"d/{{pid}}\"\n", app("app-{+dev}"));
    assert_eq!(codes(&denies_only), ["lint::client-id-not-pinned@5"]);
}

#[test]
fn client_templates_take_the_client_id_grammar() {
    let client = |template: &str| {
        codes(&format!(
            "identity a from anonymous {{\n    client \"{template}\"\n}}\n"
        ))
    };
    assert!(client("lobby ü-{+screen}").is_empty());
    assert!(client("a$b-{+x}").is_empty());
    assert_eq!(client("$lobby-{+screen}"), ["check::bad-client-text@2"]);
    let extract =
        "identity c from certificate {\n    subject.CN as \"a b:{x}\"\n    client \"c-{x}\"\n}\n";
    assert_eq!(codes(extract), ["check::bad-client-text@2"]);
}
