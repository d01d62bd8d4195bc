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
fn all_codes(text: &str) -> Vec<String> {
    let diagnostics = diagnostics(&Source::new("p", text));
    diagnostics
        .items
        .iter()
        .map(|d| format!("{}@{}", d.code, diagnostics.loc(d).line))
        .collect()
}

/// [`all_codes`] without `lint::no-connect`: most policies here define an identity only to
/// name it in the rules under test, and never let it connect.
fn codes(text: &str) -> Vec<String> {
    let mut codes = all_codes(text);
    codes.retain(|c| !c.starts_with("lint::no-connect@"));
    codes
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
    // Not shadowed, as `receive` survives; but its `publish` is dead (and nothing lets
    // `mobile` subscribe to what it may receive).
    assert_eq!(
        with_mobile("deny any publish \"c/#\"\nallow mobile publish, receive \"c/x\"\n"),
        ["lint::dead-grant@6", "lint::receive-without-subscribe@6"]
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
        [
            "lint::never-matches@5",
            "lint::never-matches@6",
            "lint::receive-without-subscribe@6"
        ]
    );
    // Not a never-matches: the engine strips `$share/g/` from a subscription.
    assert_eq!(
        with_mobile("allow mobile subscribe \"$share/g/x\"\n"),
        ["lint::subscribe-without-receive@5"]
    );
    assert_eq!(
        with_mobile("allow mobile publish \"a/{+x}\"\nallow any publish \"a/{+y}\"\n"),
        ["lint::duplicate-rule@6"]
    );
}

#[test]
fn warnings_do_not_stop_a_policy_from_loading() {
    let text = format!(
        "{MOBILE}allow mobile connect\nallow mobile publish \"c\"\nallow mobile publish \"c\"\n"
    );
    let policy =
        topicguard::Policy::from_source(&Source::new("p", text)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(policy.checked.rules.len(), 3);
    assert_eq!(policy.warnings.items.len(), 1);
    assert!(!policy.warnings.has_errors());
}

/// The `lint::client-id-not-pinned` warning among `found`.
fn unpinned(found: &Diagnostics) -> &topicguard::diagnostic::Diagnostic {
    found
        .items
        .iter()
        .find(|d| d.code.as_str() == "lint::client-id-not-pinned")
        .expect("a client-id-not-pinned warning")
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
    let warning = unpinned(&found);
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
                 allow lobby subscribe, receive \"n/{+b}/{screen}/{client}\"\n";
    assert!(codes(lobby).is_empty());
    let denies_only = format!("{}deny app publish \"d/{{pid}}\"\n", app("app-{+dev}"));
    assert_eq!(codes(&denies_only), ["lint::client-id-not-pinned@5"]);
}

#[test]
fn a_client_template_that_pins_part_of_the_account_is_a_warning() {
    let app = |client: &str| {
        format!(
            "identity app from jwt {{\n    pid = claim \"pid\"\n    aid = claim \"aid\"\n    client \"{client}\"\n}}\nallow app publish \"c/{{pid}}_{{aid}}/#\"\n"
        )
    };
    assert_eq!(
        codes(&app("app-{pid}-{+dev}")),
        ["lint::client-id-not-pinned@4"]
    );
    assert!(codes(&app("app-{pid}_{aid}-{+dev}")).is_empty());
    // A certificate's subject CN names the thing, unique under its CA: naming every part
    // of it pins the account, also through `require a == b`.
    let device = |client: &str| {
        format!(
            "identity device from certificate {{\n    building = san.dirname.O\n    tenant = san.dirname.OU\n    subject.CN as \"{{cn_tenant}}_{{device}}\"\n    require cn_tenant == tenant\n    client \"{client}\"\n}}\nallow device publish \"b/{{building}}/{{tenant}}/{{device}}\"\n"
        )
    };
    assert!(codes(&device("{tenant}_{device}")).is_empty());
    assert!(codes(&device("{cn_tenant}_{device}")).is_empty());
    assert_eq!(codes(&device("{tenant}")), ["lint::client-id-not-pinned@6"]);
    let found = diagnostics(&Source::new("p", app("app-{pid}-{+dev}")));
    let warning = unpinned(&found);
    assert!(
        warning
            .message
            .ends_with("does not name `{aid}` of the attributes that scope its topics"),
        "{}",
        warning.message
    );
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

#[test]
fn an_identity_nothing_lets_connect_is_a_warning() {
    assert_eq!(all_codes(MOBILE), ["lint::no-connect@1"]);
    assert!(all_codes(&format!("{MOBILE}allow any connect\n")).is_empty());
    assert!(all_codes(&format!("{MOBILE}allow mobile connect\n")).is_empty());
    // A deny does not let it connect.
    assert_eq!(
        all_codes(&format!("{MOBILE}deny mobile connect\n")),
        ["lint::no-connect@1"]
    );
}

#[test]
fn grants_that_need_a_partner_grant_are_warnings() {
    let lonely = with_mobile(concat!(
        "allow mobile subscribe \"s/{pid}/+\"\n",
        "allow mobile receive \"r/{pid}/+\"\n",
        "allow mobile retain \"t/{pid}\"\n",
    ));
    assert_eq!(
        lonely,
        [
            "lint::subscribe-without-receive@5",
            "lint::receive-without-subscribe@6",
            "lint::retain-without-publish@7"
        ]
    );
    // A partner in another rule is enough when the templates overlap; an attribute may
    // equal any literal, so it overlaps one.
    let paired = with_mobile(concat!(
        "allow mobile subscribe \"s/{pid}/#\"\n",
        "allow mobile receive \"s/x/y\"\n",
        "allow mobile retain \"t/{pid}\"\n",
        "allow mobile publish \"t/+\"\n",
    ));
    assert!(paired.is_empty(), "{paired:?}");
    // Per identity: another identity's receive does not pair with mobile's subscribe.
    let other = "identity other from anonymous {\n    client \"o\"\n}\n";
    let rules = "allow mobile subscribe \"s/+\"\nallow other receive \"s/+\"\n";
    assert_eq!(
        codes(&format!("{MOBILE}{other}{rules}")),
        [
            "lint::subscribe-without-receive@8",
            "lint::receive-without-subscribe@9"
        ]
    );
}

#[test]
fn an_allow_inside_a_broader_allow_is_a_warning() {
    let found = with_mobile(concat!(
        "allow mobile publish \"c/{pid}/#\"\n",
        "allow mobile publish \"c/{pid}/x/{+y}\"\n",
        "allow mobile publish \"c/{pid}\"\n",
        "allow any publish \"d/+\"\n",
        "allow mobile publish \"d/{a|b}\"\n",
    ));
    assert_eq!(
        found,
        [
            "lint::subsumed-allow@6",
            "lint::subsumed-allow@7",
            "lint::subsumed-allow@9"
        ]
    );
    // Not subsumed: an action, an identity or a topic the broader rule does not grant;
    // of two equivalent templates only the later is reported.
    let other = "identity other from anonymous {\n    client \"o\"\n}\n";
    let rules = "allow mobile publish \"c/#\"\nallow mobile, other publish \"c/x\"\n\
                 allow mobile publish, retain \"c/y\"\nallow mobile publish \"e/{a|b}\"\n\
                 allow mobile publish \"e/{b|a}\"\n";
    assert_eq!(
        codes(&format!("{MOBILE}{other}{rules}")),
        ["lint::subsumed-allow@12"]
    );
}

#[test]
fn a_deny_that_removes_one_action_of_an_allow_is_a_warning() {
    let found = with_mobile(concat!(
        "allow mobile subscribe, receive \"f/{pid}/+\"\n",
        "deny any receive \"f/#\"\n",
    ));
    assert_eq!(found, ["lint::dead-grant@5"]);
    let found = diagnostics(&Source::new(
        "p",
        format!(
            "{MOBILE}allow mobile subscribe, receive \"f/{{pid}}/+\"\ndeny any receive \"f/#\"\n"
        ),
    ));
    let dead = found
        .items
        .iter()
        .find(|d| d.code.as_str() == "lint::dead-grant")
        .expect("a dead-grant warning");
    assert!(
        dead.message
            .starts_with("the `receive` of this allow never takes effect: the deny at p:6:1"),
        "{}",
        dead.message
    );
    // A deny narrower than the allow leaves the action alive.
    assert!(
        with_mobile("allow mobile subscribe, receive \"f/+\"\ndeny any receive \"f/x\"\n")
            .is_empty()
    );
}

#[test]
fn a_set_nothing_uses_is_a_warning() {
    let text = concat!(
        "identity d from jwt {\n    pid = claim \"pid\"\n    require pid in partners\n    client \"d-{pid}\"\n}\n",
        "set partners = p1, p2\nset kinds = a, b\nset spare = x\nset asserted = y\n",
        "allow d connect\nallow d publish \"k/{k in kinds}\"\n",
        "assert d only \"k/{n in asserted}\", \"k/#\"\n",
    );
    assert_eq!(all_codes(text), ["lint::unused-set@8"]);
}
