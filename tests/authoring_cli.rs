//! The authoring aids, run as a user runs them: rule labels in test files, `test
//! --coverage`, `-v` and `--filter`, `check --strict`, and the explanations of denials.
//! Text output is snapshotted (read every change); JSON output is checked field by field.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const SHOP_TESTS: &str = "tests/fixtures/authoring/shop.test.toml";
const SHOP: &str = "tests/fixtures/authoring/shop.policy";
const GRANTS: &str = "tests/fixtures/check/lint_grants.policy";

/// Runs the binary from the crate root: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("the binary runs");
    (
        output.status.code().expect("exited normally"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

#[test]
fn coverage_lists_the_rules_and_values_no_case_reached() {
    let (code, stdout, stderr) = run(&["test", "--coverage", SHOP_TESTS]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("coverage_text", stdout);
}

#[test]
fn coverage_in_json_names_every_rule_with_its_label() {
    let (code, stdout, stderr) = run(&["--format", "json", "test", "--coverage", SHOP_TESTS]);
    assert_eq!(code, 0, "{stderr}");
    let out = json(&stdout);
    let coverage = &out["coverage"][0];
    assert_eq!(coverage["policy"], SHOP);
    let rules = coverage["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 7);
    let never: Vec<&str> = rules
        .iter()
        .filter(|r| r["cases"] == 0)
        .map(|r| r["label"].as_str().expect("labelled"))
        .collect();
    assert_eq!(never, ["connect", "office-prices"]);
    let reports = &rules[1];
    assert_eq!(reports["label"], "till-reports");
    assert_eq!(reports["loc"]["line"], 14);
    assert_eq!(reports["choices"][0]["level"], 4);
    assert_eq!(
        reports["choices"][0]["values"],
        serde_json::json!(["sale", "refund", "void"])
    );
    assert_eq!(
        reports["choices"][0]["unexercised"],
        serde_json::json!(["refund", "void"])
    );
    // Each case names its deciding rule's label.
    let first = &out["files"][0]["results"][0];
    assert_eq!(first["rule"], "till-reports");
    assert_eq!(first["explanation"]["deciding"]["label"], "till-reports");
    // Without --coverage there is no coverage.
    let (_, plain, _) = run(&["--format", "json", "test", SHOP_TESTS]);
    assert!(json(&plain).get("coverage").is_none());
}

#[test]
fn verbose_lists_passing_cases_and_filter_selects_by_name() {
    let (code, stdout, stderr) = run(&["test", "-v", "--filter", "till", SHOP_TESTS]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("verbose_filtered_text", stdout);
    let (code, stdout, _) = run(&["--format", "json", "test", "--filter", "office", SHOP_TESTS]);
    assert_eq!(code, 0);
    assert_eq!(json(&stdout)["passed"], 2);
    let (code, _, stderr) = run(&["test", "--filter", "nothing-is-called-this", SHOP_TESTS]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no case name contains `nothing-is-called-this`"),
        "{stderr}"
    );
    let (code, stdout, _) = run(&[
        "--format",
        "json",
        "test",
        "--filter",
        "nothing-is-called-this",
        SHOP_TESTS,
    ]);
    assert_eq!(code, 2);
    let document = json(&stdout);
    assert_eq!(document["files"], serde_json::json!([]), "{stdout}");
    assert_eq!(document["error"]["kind"], "usage", "{stdout}");
}

#[test]
fn strict_check_fails_on_warnings_only() {
    let (code, stdout, _) = run(&["check", "--strict", SHOP]);
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) = run(&["check", GRANTS]);
    assert_eq!(code, 0, "warnings alone pass without --strict: {stdout}");
    let (code, stdout, _) = run(&["check", "--strict", GRANTS]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.ends_with("lint_grants.policy: failed: --strict makes its 7 warnings fail\n"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&["--format", "json", "check", "--strict", GRANTS]);
    assert_eq!(code, 1);
    let file = &json(&stdout)["files"][0];
    assert_eq!(
        (file["ok"].clone(), file["strict_failed"].clone()),
        (true.into(), true.into())
    );
    let (code, _, _) = run(&["check", "--strict", "tests/fixtures/check/labels.policy"]);
    assert_eq!(code, 2, "errors still exit 2");
}

fn decide(policy: &str, identity: &[&str], request: &[&str]) -> String {
    let mut args = vec!["decide", "--policy", policy];
    args.extend(identity);
    args.extend(request);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 1, "denied: {stdout}{stderr}");
    stdout
}

const TILL: [&str; 6] = [
    "--identity",
    "till",
    "--attr",
    "store=S1",
    "--attr",
    "till=T1",
];
const OFFICE: [&str; 2] = ["--identity", "office"];

#[test]
fn denials_are_explained_with_a_witness_and_the_nearest_rule() {
    let shown = [
        decide(SHOP, &TILL, &["subscribe", "shop/S1/prices/+"]),
        decide(SHOP, &TILL, &["subscribe", "shop/S2/prices/food"]),
        decide(SHOP, &OFFICE, &["subscribe", "shop/#"]),
        decide(SHOP, &TILL, &["publish", "--retain", "shop/S1/T1/sale"]),
        decide(
            GRANTS,
            &["--identity", "mobile", "--attr", "pid=P1"],
            &["publish", "--retain", "c/P1/status"],
        ),
    ];
    insta::assert_snapshot!("denials_text", shown.join("\n"));
}

#[test]
fn denials_in_json_carry_the_witness_nearest_rule_and_missing_grants() {
    let mut args = vec!["--format", "json", "decide", "--policy", SHOP];
    args.extend(TILL);
    let subscribe = [args.clone(), vec!["subscribe", "shop/S1/prices/+"]].concat();
    let (code, stdout, _) = run(&subscribe);
    assert_eq!(code, 1);
    let out = json(&stdout);
    assert_eq!(out["witness"], "shop/S1/prices/x");
    assert_eq!(out["nearest"]["rule"]["label"], "till-prices");
    assert_eq!(out["nearest"]["matching_prefix"], 3);
    assert_eq!(out["nearest"]["first_difference"], 4);
    assert_eq!(out["missing"], serde_json::json!([]));
    let retain = [args, vec!["publish", "--retain", "shop/S1/T1/sale"]].concat();
    let (code, stdout, _) = run(&retain);
    assert_eq!(code, 1);
    let out = json(&stdout);
    assert_eq!(out["missing"], serde_json::json!(["retain"]));
    assert_eq!(out["witness"], Value::Null);
}
