//! `topicguard verify` and `topicguard diff`, run as a user runs them: exit codes exactly,
//! text and JSON output snapshotted (read every snapshot), on the shipped policies and on
//! broken variants of them.

use std::path::{Path, PathBuf};
use std::process::Command;

const XFINITY: &str = "policies/xfinity.policy";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().expect("exited normally"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn crate_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory holding `files`.
fn dir_with(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("topicguard-analysis-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write fixture");
    }
    dir
}

fn xfinity() -> String {
    std::fs::read_to_string(crate_root().join(XFINITY)).expect("xfinity.policy")
}

/// xfinity.policy with `+` where `{pid}_{aid}` was meant in the mobile's response topics.
fn xfinity_broken() -> String {
    let good = "allow mobile subscribe, receive \"c/xfi/{pid}_{aid}/{client}/";
    let bad = "allow mobile subscribe, receive \"c/xfi/+/{client}/";
    let text = xfinity();
    assert!(
        text.contains(good),
        "the mutated rule is still in xfinity.policy"
    );
    text.replacen(good, bad, 1)
}

#[test]
fn the_shipped_policies_verify_clean() {
    for policy in [
        "policies/xfinity.policy",
        "policies/fleet.policy",
        "policies/building.policy",
    ] {
        let run = run_in(crate_root(), &["verify", policy]);
        assert_eq!(run.code, 0, "{policy}:\n{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains(" 0 failed"), "{}", run.stdout);
    }
    let run = run_in(crate_root(), &["verify", XFINITY]);
    insta::assert_snapshot!("verify_xfinity_text", run.stdout);
}

#[test]
fn verify_catches_a_wildcard_where_the_account_was_meant() {
    let dir = dir_with("broken", &[("xfinity.policy", &xfinity_broken())]);
    let run = run_in(&dir, &["verify", "xfinity.policy"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    insta::assert_snapshot!("verify_xfinity_broken_text", run.stdout);
    let run = run_in(&dir, &["--format", "json", "verify", "xfinity.policy"]);
    assert_eq!(run.code, 1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let failed: Vec<&serde_json::Value> = json["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .filter(|p| p["holds"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    let example = &failed[0]["counterexample"];
    assert_eq!(failed[0]["property"], "only");
    assert_eq!(example["request"]["identity"], "mobile");
    assert!(
        example["rule"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("c/xfi/+/{client}")),
        "{example}"
    );
    insta::assert_snapshot!("verify_xfinity_broken_json", run.stdout);
}

#[test]
fn verify_catches_a_rule_scoped_by_part_of_the_account() {
    let text = xfinity().replacen(
        "allow mobile subscribe, receive \"c/iot/{pid}_{aid}/+/presence\"",
        "allow mobile subscribe, receive \"c/iot/{pid}_{+other}/+/presence\"",
        1,
    );
    let dir = dir_with("partial", &[("xfinity.policy", &text)]);
    let run = run_in(&dir, &["verify", "xfinity.policy"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    insta::assert_snapshot!("verify_partial_account_text", run.stdout);
}

const ROOT: &str = "\
identity app from jwt {
    acct = claim \"acct\"
    client \"app:{acct}\"
}

allow app connect
allow app publish \"a/{acct}/#\"
allow app subscribe, receive \"+/#\"
";

#[test]
fn verify_reports_a_root_wildcard_with_its_rule() {
    let dir = dir_with("root", &[("root.policy", ROOT)]);
    let run = run_in(&dir, &["verify", "root.policy"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    insta::assert_snapshot!("verify_root_wildcard_text", run.stdout);
}

#[test]
fn assertions_naming_unknown_things_are_policy_errors() {
    let text = format!(
        "{ROOT}assert ap only \"a/{{acct}}/#\"\nassert app only \"a/{{acount}}/#\"\nassert app isolated by acct, tenant\n"
    );
    let dir = dir_with("unknown", &[("bad.policy", &text)]);
    let run = run_in(&dir, &["--format", "json", "verify", "bad.policy"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let codes: Vec<(String, u64)> = json["error"]["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or("").to_string(),
                d["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("check::unknown-identity".to_string(), 9),
            ("check::unknown-attribute".to_string(), 10),
            ("check::unknown-attribute".to_string(), 11),
        ],
        "{}",
        run.stdout
    );
}

#[test]
fn fmt_prints_assertions_back() {
    let text = format!(
        "{ROOT}assert   app   only \"a/{{acct}}/#\" ,\"b/+\"  # the account's own\nassert app isolated  by  acct\n"
    );
    let dir = dir_with("fmt", &[("p.policy", &text)]);
    let run = run_in(&dir, &["fmt", "p.policy"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let formatted = std::fs::read_to_string(dir.join("p.policy")).expect("formatted");
    assert!(
        formatted.ends_with(
            "assert app only \"a/{acct}/#\", \"b/+\"  # the account's own\nassert app isolated by acct\n"
        ),
        "{formatted}"
    );
}

/// xfinity.policy with the broken mobile responses and a narrower admin deny.
fn xfinity_widened() -> String {
    xfinity_broken().replacen(
        "deny any publish \"c/+/+/admin/#\"",
        "deny any publish \"c/+/+/admin/+\"",
        1,
    )
}

#[test]
fn diff_reports_added_access_and_gates_on_it() {
    let dir = dir_with(
        "diff",
        &[
            ("old.policy", &xfinity()),
            ("new.policy", &xfinity_widened()),
        ],
    );
    let run = run_in(&dir, &["diff", "old.policy", "new.policy"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    insta::assert_snapshot!("diff_xfinity_widened_text", run.stdout);
    let run = run_in(
        &dir,
        &["--format", "json", "diff", "old.policy", "new.policy"],
    );
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("diff_xfinity_widened_json", run.stdout);

    // The other way round only removes access: exit 0, every change a removal.
    let run = run_in(
        &dir,
        &["--format", "json", "diff", "new.policy", "old.policy"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let changes = json["changes"].as_array().expect("changes");
    assert!(!changes.is_empty());
    assert!(
        changes.iter().all(|c| c["added"] == false),
        "{}",
        run.stdout
    );

    let run = run_in(&dir, &["diff", "old.policy", "old.policy"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, "old.policy -> old.policy: 0 added, 0 removed\n");
}

#[test]
fn diff_reports_identities_and_connect_changes() {
    let old = ROOT.to_string();
    let new = ROOT
        .replace("client \"app:{acct}\"", "client \"app:{acct}:{+dev}\"")
        .replace("allow app connect", "allow app, kiosk connect")
        + "identity kiosk from anonymous {\n    client \"kiosk\"\n}\n";
    let dir = dir_with("identities", &[("old.policy", &old), ("new.policy", &new)]);
    let run = run_in(&dir, &["diff", "old.policy", "new.policy"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    insta::assert_snapshot!("diff_identities_text", run.stdout);
}

#[test]
fn diff_of_an_unusable_policy_is_a_usage_error() {
    let dir = dir_with(
        "unusable",
        &[
            ("old.policy", ROOT),
            ("new.policy", "allow nobody connect\n"),
        ],
    );
    let run = run_in(&dir, &["diff", "old.policy", "new.policy"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("unknown-identity"), "{}", run.stderr);
    let run = run_in(&dir, &["diff", "old.policy", "missing.policy"]);
    assert_eq!(run.code, 2);
}

/// A policy with one identity `u` (attributes `a`, `b`, `c`) and `rules`.
fn abc(rules: &str) -> String {
    format!(
        "identity u from jwt {{\n    a = claim \"a\"\n    b = claim \"b\"\n    c = claim \"c\"\n    client \"u\"\n}}\n\nallow u connect\n{rules}"
    )
}

fn diff_of(test: &str, old: &str, new: &str) -> Run {
    let dir = dir_with(test, &[("old.policy", old), ("new.policy", new)]);
    run_in(&dir, &["diff", "old.policy", "new.policy"])
}

#[test]
fn diff_finds_access_for_a_value_that_is_a_proper_prefix_of_a_literal() {
    // Only `a=ab` publishes `t/abx`, which OLD denies by name.
    let old = abc("allow u publish \"t/{a}x\"\ndeny u publish \"t/abx\"\n");
    let new = abc("allow u publish \"t/{a}x\"\n");
    let run = diff_of("prefix", &old, &new);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("a=ab "), "{}", run.stdout);
    assert!(run.stdout.contains("publish t/abx"), "{}", run.stdout);
}

#[test]
fn diff_finds_access_that_needs_three_pairwise_different_values() {
    // NEW allows only when a, b and c are pairwise different.
    let new = abc(
        "allow u publish \"t/{a}/{b}/{c}\"\ndeny u publish \"t/{a}/{a}/+\"\ndeny u publish \"t/+/{b}/{b}\"\ndeny u publish \"t/{c}/+/{c}\"\n",
    );
    let run = diff_of("three", &abc(""), &new);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("a=f1 b=f2 c=f3"), "{}", run.stdout);
}

#[test]
fn diff_finds_a_topic_only_overlapping_capture_patterns_share() {
    // `abc` lies in `a{+x}c` and `ab{+y}`; the deny of `{+z}ba{+w}` removes the
    // values made by joining the patterns' texts, not `abc`.
    let common = "allow u publish \"a{+x}c\"\ndeny u publish \"{+z}ba{+w}\"\n";
    let old = abc(&format!("{common}deny u publish \"ab{{+y}}\"\n"));
    let run = diff_of("overlap", &old, &abc(common));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("publish ab"), "{}", run.stdout);
}

#[test]
fn verify_finds_a_shared_topic_when_only_the_second_attribute_differs() {
    let text = abc(
        "allow u publish \"c/{a}_{b}/#\"\nallow u publish \"d/{a}_{b}_{+device}\"\nallow u subscribe, receive \"c/{a}_{+other}/+/presence\"\n",
    );
    let dir = dir_with("second", &[("p.policy", &text)]);
    let run = run_in(&dir, &["verify", "p.policy"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("FAILED isolation for u"),
        "{}",
        run.stdout
    );
}

#[test]
fn diff_refuses_what_it_cannot_decide_exactly() {
    // `b` may equal `a`'s value followed by `_x`: outside the exact fragment.
    let old = abc("allow u publish \"t/{a}_x\"\ndeny u publish \"t/{b}\"\n");
    let new = abc("allow u publish \"t/{a}_x\"\n");
    let run = diff_of("refuse", &old, &new);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("cannot decide exactly: `{b}` at level 2")
            && run.stderr.contains("old.policy:10:1"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("0 added"), "{}", run.stdout);
}

#[test]
fn the_shipped_policies_diff_clean_against_themselves() {
    for policy in [
        "policies/xfinity.policy",
        "policies/fleet.policy",
        "policies/building.policy",
    ] {
        let run = run_in(crate_root(), &["diff", policy, policy]);
        assert_eq!(run.code, 0, "{policy}:\n{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("0 added, 0 removed"), "{}", run.stdout);
    }
}

#[test]
fn verify_finds_a_topic_one_account_reaches_through_a_literal_rule() {
    // `a=kz` publishes `t/kz` through `{a}`; every other account through the literal.
    let text = abc("allow u publish \"t/{a}\"\nallow u publish \"t/kz\"\n");
    let dir = dir_with("literal", &[("p.policy", &text)]);
    let run = run_in(&dir, &["verify", "p.policy"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("publish t/kz"), "{}", run.stdout);
}
