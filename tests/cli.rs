//! The `topicguard` binary, run as a user runs it, and every shipped policy test file.
//!
//! Commands run from the crate root (so paths in the output are stable) or from a fresh
//! temporary directory for files the tests write. Exit codes are asserted exactly; JSON
//! output is parsed and checked field by field; text output is snapshotted.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const XFINITY: &str = "policies/xfinity.policy";

/// A small policy whose text output is snapshotted (xfinity.policy may still grow).
const SMALL: &str = "\
identity device from certificate {
    tenant = subject.O
    id = subject.CN
    client \"dev:{tenant}:{id}\"
}

set kinds = temp, door

allow device connect
allow device publish, retain \"t/{tenant}/{id}/{kind in kinds}\"
allow device subscribe, receive \"t/{tenant}/{id}/cmd/#\"
deny device publish \"t/{tenant}/{id}/door\"
";

/// What a run of the binary produced.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }
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

fn run(args: &[&str]) -> Run {
    run_in(crate_root(), args)
}

/// A fresh, empty directory for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("topicguard-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The 1-based line of the first line of `file` containing `needle`.
fn line_of(file: &str, needle: &str) -> u64 {
    let text = std::fs::read_to_string(crate_root().join(file)).expect("readable");
    let index = text.lines().position(|l| l.contains(needle));
    index.map(|i| i as u64 + 1).expect("needle present")
}

const MOBILE: [&str; 8] = [
    "--identity",
    "mobile",
    "--attr",
    "pid=P1",
    "--attr",
    "aid=A1",
    "--attr",
    "jti=J1",
];

fn decide(format: &str, request: &[&str]) -> Run {
    let mut args = vec!["--format", format, "decide", "--policy", XFINITY];
    args.extend(MOBILE);
    args.extend(request);
    run(&args)
}

#[test]
fn check_summarizes_a_policy() {
    let dir = temp_dir("check-summary");
    std::fs::write(dir.join("small.policy"), SMALL).expect("write");
    let out = run_in(&dir, &["check", "small.policy"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    insta::assert_snapshot!("check_summary", out.stdout);
}

#[test]
fn check_compiles_so_ok_means_serve_loads_it() {
    let dir = temp_dir("check-compiles");
    let values: Vec<String> = (0..60_000).map(|i| format!("value{i:015}")).collect();
    let policy = format!(
        "identity u from jwt {{\n    pid = claim \"pid\"\n    client \"c-{{pid}}\"\n}}\n\
         set big = {}\nallow u connect\ndeny u publish \"t/{{+a}}_{{v in big}}\"\n",
        values.join(", ")
    );
    std::fs::write(dir.join("big.policy"), policy).expect("write");
    let out = run_in(&dir, &["check", "big.policy"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "big.policy: 1 error, 0 warnings\n");
    assert!(out.stderr.contains("big.policy:7:1"), "{}", out.stderr);
    assert!(
        out.stderr.contains("needs more than 16777216 bytes"),
        "{}",
        out.stderr
    );
    let json = run_in(&dir, &["--format", "json", "check", "big.policy"]).json();
    let diagnostic = &json["files"][0]["diagnostics"][0];
    assert_eq!(diagnostic["code"], "compile::pattern-too-large");
    assert_eq!(diagnostic["line"], 7);
    let serve = run_in(
        &dir,
        &[
            "decide",
            "--policy",
            "big.policy",
            "--identity",
            "u",
            "--attr",
            "pid=P1",
            "connect",
        ],
    );
    assert_eq!(
        serve.code, 2,
        "the policy does not load anywhere: {}",
        serve.stderr
    );
}

#[test]
fn check_lists_the_xfinity_identities_in_json() {
    let out = run(&["--format", "json", "check", XFINITY]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let file = &out.json()["files"][0];
    assert_eq!(file["file"], XFINITY);
    assert_eq!(file["ok"], true);
    assert_eq!(file["errors"], 0);
    let identities = file["summary"]["identities"].as_array().expect("list");
    let shown: Vec<String> = identities
        .iter()
        .map(|i| format!("{} {}", i["name"], i["kind"]))
        .collect();
    assert!(
        shown.contains(&r#""mobile" "jwt""#.to_string()),
        "{shown:?}"
    );
    assert!(shown.contains(&r#""gateway" "certificate""#.to_string()));
    let mobile_attrs = &identities[0]["attrs"];
    assert_eq!(
        mobile_attrs,
        &serde_json::json!(["aid", "client", "jti", "pid"])
    );
    let rules = &file["summary"]["rules"];
    assert!(rules["deny"].as_u64() >= Some(1), "{rules}");
    let total = rules["total"].as_u64().expect("total");
    assert_eq!(
        rules["allow"]
            .as_u64()
            .map(|a| a + rules["deny"].as_u64().unwrap_or(0)),
        Some(total)
    );
}

#[test]
fn decide_allows_a_mobile_request_in_its_namespace() {
    let topic = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1";
    let out = decide("json", &["publish", topic]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let explanation = out.json();
    assert_eq!(explanation["decision"]["verdict"], "allowed");
    assert_eq!(explanation["identity"], "mobile");
    assert_eq!(explanation["client_id"], "xfi:P1_A1:clt:J1");
    assert_eq!(explanation["topic"], topic);
    let rule_line = line_of(
        XFINITY,
        r#"allow mobile publish "c/xfi/{pid}_{aid}/{sid in services}"#,
    );
    assert_eq!(explanation["deciding"]["loc"]["line"], rule_line);
    assert_eq!(explanation["deciding"]["effect"], "allow");
    let captures = explanation["captures"].as_array().expect("captures");
    assert!(
        captures.contains(&serde_json::json!(["rid", "r1"])),
        "{captures:?}"
    );
    assert!(
        captures.contains(&serde_json::json!(["sid", "lights"])),
        "{captures:?}"
    );
}

#[test]
fn decide_denies_a_publish_into_an_admin_namespace() {
    let out = decide("json", &["publish", "c/xfi/P1_A1/admin/x"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let explanation = out.json();
    assert_eq!(explanation["decision"]["verdict"], "explicit-deny");
    let rule_line = line_of(XFINITY, r#"deny any publish "c/+/+/admin/#""#);
    assert_eq!(explanation["deciding"]["loc"]["line"], rule_line);
    assert_eq!(explanation["deciding"]["effect"], "deny");
}

#[test]
fn decide_explains_in_text_and_denies_other_tenants() {
    let out = decide("text", &["subscribe", "c/xfi/P2_A1/#"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(
            "IMPLICITLY DENIED subscribe c/xfi/P2_A1/# for mobile (xfi:P1_A1:clt:J1)\n"
        ),
        "{}",
        out.stdout
    );
    let connect = decide("text", &["connect"]);
    assert_eq!(connect.code, 0, "{}", connect.stderr);
    let line = line_of(XFINITY, "allow mobile, gateway, service connect");
    let expected = format!(
        "ALLOWED connect for mobile (xfi:P1_A1:clt:J1)\n  by allow rule `connect` at {XFINITY}:{line}:1: allow mobile, gateway, service connect\n"
    );
    assert_eq!(connect.stdout, expected);
}

#[test]
fn decide_explains_a_small_policy_in_text() {
    let dir = temp_dir("decide-text");
    std::fs::write(dir.join("small.policy"), SMALL).expect("write");
    let base = ["decide", "--policy", "small.policy", "--identity", "device"];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(["--attr", "tenant=T1", "--attr", "id=D7"]);
        args.extend(extra);
        run_in(&dir, &args)
    };
    let allowed = with(&["publish", "--retain", "t/T1/D7/temp"]);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    let denied = with(&["publish", "t/T1/D7/door"]);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    let spoofed = with(&["--client-id", "dev:T2:D7", "connect"]);
    assert_eq!(spoofed.code, 1, "{}", spoofed.stderr);
    let shown = format!(
        "$ publish --retain t/T1/D7/temp\n{}\n$ publish t/T1/D7/door\n{}\n$ --client-id dev:T2:D7 connect\n{}",
        allowed.stdout, denied.stdout, spoofed.stdout
    );
    insta::assert_snapshot!("decide_text", shown);
}

#[test]
fn decide_usage_problems_exit_2() {
    let no_attr = run(&[
        "decide",
        "--policy",
        XFINITY,
        "--identity",
        "mobile",
        "connect",
    ]);
    assert_eq!(no_attr.code, 2);
    assert!(
        no_attr.stderr.contains("needs attribute"),
        "{}",
        no_attr.stderr
    );
    let unknown = run(&[
        "decide",
        "--policy",
        XFINITY,
        "--identity",
        "robot",
        "connect",
    ]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("defines no identity `robot`"),
        "{}",
        unknown.stderr
    );
    let bad_attr = run(&[
        "decide",
        "--policy",
        XFINITY,
        "--identity",
        "mobile",
        "--attr",
        "pid",
        "connect",
    ]);
    assert_eq!(bad_attr.code, 2);
    assert!(
        bad_attr.stderr.contains("expected NAME=VALUE"),
        "{}",
        bad_attr.stderr
    );
    let json = run(&[
        "--format",
        "json",
        "decide",
        "--policy",
        XFINITY,
        "--identity",
        "robot",
        "connect",
    ]);
    assert_eq!(json.code, 2);
    assert_eq!(json.json()["error"]["kind"], "usage");
}

#[test]
fn a_policy_with_errors_exits_2_and_points_at_the_mistake() {
    let dir = temp_dir("check-errors");
    let bad = "identity d from anonymous {\n    client \"d\"\n}\nallow d publish \"a/{tenant}/x\"\nallow robot connect\n";
    std::fs::write(dir.join("bad.policy"), bad).expect("write");
    let text = run_in(&dir, &["check", "bad.policy"]);
    assert_eq!(text.code, 2, "{}", text.stdout);
    assert!(text.stderr.contains("[bad.policy:4:"), "{}", text.stderr);
    assert!(text.stderr.contains("[bad.policy:5:"), "{}", text.stderr);
    insta::assert_snapshot!("check_errors_stderr", text.stderr);
    assert_eq!(text.stdout, "bad.policy: 2 errors, 0 warnings\n");
    let json = run_in(&dir, &["--format", "json", "check", "bad.policy"]);
    assert_eq!(json.code, 2);
    let file = &json.json()["files"][0];
    assert_eq!(file["ok"], false);
    let places: Vec<(Value, Value, Value)> = file["diagnostics"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| (d["file"].clone(), d["line"].clone(), d["severity"].clone()))
        .collect();
    let error = |line: u64| {
        (
            Value::from("bad.policy"),
            Value::from(line),
            Value::from("error"),
        )
    };
    assert_eq!(places, [error(4), error(5)]);
    let decide = run_in(
        &dir,
        &[
            "decide",
            "--policy",
            "bad.policy",
            "--identity",
            "d",
            "connect",
        ],
    );
    assert_eq!(decide.code, 2);
    assert!(
        decide.stderr.contains("[bad.policy:4:"),
        "{}",
        decide.stderr
    );
}

#[test]
fn a_missing_policy_file_exits_2() {
    let out = run(&["check", "policies/no-such.policy"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("cannot read policy file `policies/no-such.policy`"),
        "{}",
        out.stderr
    );
}

const TESTS: &str = r#"policy = "small.policy"

[[case]]
name = "a device reports its temperature"
identity = "device"
attrs = { tenant = "T1", id = "D7" }
action = "publish"
topic = "t/T1/D7/temp"
expect = "allow"

[[case]]
name = "a device may publish its door state (wrong on purpose)"
identity = "device"
attrs = { tenant = "T1", id = "D7" }
action = "publish"
topic = "t/T1/D7/door"
expect = "allow"
"#;

#[test]
fn test_reports_failures_and_closes_with_the_counts() {
    let dir = temp_dir("test-command");
    std::fs::create_dir(dir.join("policies")).expect("mkdir");
    std::fs::write(dir.join("policies/small.policy"), SMALL).expect("write");
    std::fs::write(dir.join("policies/small.test.toml"), TESTS).expect("write");
    let out = run_in(&dir, &["test", "policies"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.last_line(), "1 passed, 1 failed");
    insta::assert_snapshot!("test_failure", out.stdout);
    let json = run_in(
        &dir,
        &["--format", "json", "test", "policies/small.test.toml"],
    );
    assert_eq!(json.code, 1);
    let report = json.json();
    assert_eq!(
        (report["passed"].clone(), report["failed"].clone()),
        (1.into(), 1.into())
    );
    let second = &report["files"][0]["results"][1];
    assert_eq!(second["passed"], false);
    assert_eq!(second["got"], "explicit-deny");
    let fixed = TESTS.replacen(
        "topic = \"t/T1/D7/door\"\nexpect = \"allow\"",
        "topic = \"t/T1/D7/door\"\nexpect = \"explicit-deny\"",
        1,
    );
    std::fs::write(dir.join("policies/small.test.toml"), fixed).expect("write");
    let passing = run_in(&dir, &["test", "policies"]);
    assert_eq!(passing.code, 0, "{}", passing.stdout);
    assert_eq!(passing.last_line(), "2 passed, 0 failed");
}

#[test]
fn test_files_that_cannot_run_exit_2() {
    let dir = temp_dir("test-errors");
    std::fs::write(dir.join("small.policy"), SMALL).expect("write");
    let typo = TESTS.replacen("expect = \"allow\"", "expected = \"allow\"", 1);
    std::fs::write(dir.join("typo.test.toml"), typo).expect("write");
    let out = run_in(&dir, &["test", "typo.test.toml"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("typo.test.toml:9:1"), "{}", out.stderr);
    assert_eq!(out.last_line(), "0 passed, 0 failed");
    let empty = run_in(&dir, &["test", "."]);
    assert_eq!(empty.code, 2);
    assert!(empty.stderr.contains("typo.test.toml"), "{}", empty.stderr);
    std::fs::remove_file(dir.join("typo.test.toml")).expect("rm");
    let nothing = run_in(&dir, &["test", "."]);
    assert_eq!(nothing.code, 2);
    assert!(
        nothing.stderr.contains("no *.test.toml files"),
        "{}",
        nothing.stderr
    );
}

/// A case the policy cannot answer as written fails the file (exit 2) with every problem,
/// instead of passing as a denial: `deny` would have accepted both of these cases.
#[test]
fn test_cases_naming_unknown_identities_or_attributes_exit_2() {
    let dir = temp_dir("test-author-errors");
    std::fs::write(dir.join("small.policy"), SMALL).expect("write");
    let wrong = TESTS
        .replacen("identity = \"device\"", "identity = \"devcie\"", 1)
        .replacen("attrs = { tenant = \"T1\", id = \"D7\" }\naction = \"publish\"\ntopic = \"t/T1/D7/door\"", "attrs = { tenant = \"T1\", idd = \"D7\" }\naction = \"publish\"\ntopic = \"t/T1/D7/door\"", 1)
        .replace("expect = \"allow\"", "expect = \"deny\"");
    std::fs::write(dir.join("wrong.test.toml"), wrong).expect("write");
    let out = run_in(&dir, &["test", "wrong.test.toml"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.last_line(), "0 passed, 0 failed");
    for expected in [
        "wrong.test.toml:3:1: case `a device reports its temperature`: the policy defines no identity `devcie`; did you mean `device`?",
        "wrong.test.toml:11:1: case `a device may publish its door state (wrong on purpose)`: identity `device` binds no attribute `idd`; did you mean `id`?",
    ] {
        assert!(out.stderr.contains(expected), "{expected}\n{}", out.stderr);
    }
    std::fs::write(dir.join("wrong.test.toml"), "policy = \"small.policy\"\n").expect("write");
    let empty = run_in(&dir, &["test", "wrong.test.toml"]);
    assert_eq!(empty.code, 2);
    assert!(
        empty.stderr.contains("has no `[[case]]`"),
        "{}",
        empty.stderr
    );
}

#[test]
fn fmt_check_then_fmt_then_check_again() {
    let dir = temp_dir("fmt");
    let messy = SMALL
        .replace("allow device connect", "allow   device    connect")
        .replace("publish, retain", "publish ,retain")
        .replace("    client", "        client");
    std::fs::write(dir.join("small.policy"), &messy).expect("write");
    let check = run_in(&dir, &["fmt", "--check", "small.policy"]);
    assert_eq!(check.code, 1, "{}", check.stderr);
    let diff = "\
--- small.policy
+++ small.policy (formatted)
@@ -1,12 +1,12 @@
 identity device from certificate {
     tenant = subject.O
     id = subject.CN
-        client \"dev:{tenant}:{id}\"
+    client \"dev:{tenant}:{id}\"
 }
 
 set kinds = temp, door
 
-allow   device    connect
-allow device publish ,retain \"t/{tenant}/{id}/{kind in kinds}\"
+allow device connect
+allow device publish, retain \"t/{tenant}/{id}/{kind in kinds}\"
 allow device subscribe, receive \"t/{tenant}/{id}/cmd/#\"
 deny device publish \"t/{tenant}/{id}/door\"
";
    assert_eq!(check.stdout, diff, "--check prints a unified diff");
    let untouched = std::fs::read_to_string(dir.join("small.policy")).expect("read");
    assert_eq!(untouched, messy, "--check never writes");
    let format = run_in(&dir, &["fmt", "small.policy"]);
    assert_eq!(format.code, 0, "{}", format.stderr);
    assert_eq!(format.stdout, "formatted small.policy\n");
    let formatted = std::fs::read_to_string(dir.join("small.policy")).expect("read");
    assert_eq!(formatted, SMALL);
    let again = run_in(
        &dir,
        &["--format", "json", "fmt", "--check", "small.policy"],
    );
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(again.json()["files"][0]["outcome"], "unchanged");
    std::fs::write(dir.join("small.policy"), &messy).expect("write");
    let json = run_in(
        &dir,
        &["--format", "json", "fmt", "--check", "small.policy"],
    );
    assert_eq!(json.code, 1, "{}", json.stdout);
    assert_eq!(json.json()["files"][0]["outcome"], "would-reformat");
    assert_eq!(json.json()["files"][0]["diff"], diff);
    std::fs::write(dir.join("small.policy"), SMALL).expect("write");
    let leftovers = std::fs::read_dir(&dir).expect("list").count();
    assert_eq!(leftovers, 1, "no temporary file is left behind");
}

#[test]
fn fmt_refuses_a_file_that_does_not_parse() {
    let dir = temp_dir("fmt-broken");
    let broken = "allow   d publish \"a/b\n";
    std::fs::write(dir.join("broken.policy"), broken).expect("write");
    let out = run_in(&dir, &["fmt", "broken.policy"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("broken.policy:1:"), "{}", out.stderr);
    let after = std::fs::read_to_string(dir.join("broken.policy")).expect("read");
    assert_eq!(after, broken);
}

#[test]
fn compile_prints_statistics_and_the_dump() {
    let out = run(&["--format", "json", "compile", XFINITY]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let stats = out.json();
    for field in ["rules", "identities", "nodes", "slots", "approx_heap_bytes"] {
        assert!(stats[field].as_u64() > Some(0), "{field}: {stats}");
    }
    assert_eq!(stats["identities"], 3);
    assert!(stats["compile_ms"].as_f64() >= Some(0.0), "{stats}");
    assert!(stats.get("dump").is_none());
    let text = run(&["compile", "--dump", XFINITY]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("\n  nodes:        "),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("\nidentity mobile\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("\nidentity service\n"),
        "{}",
        text.stdout
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    for args in [
        &["frobnicate"][..],
        &["decide"],
        &["check"],
        &["--format", "xml", "check", XFINITY],
        &[],
    ] {
        let out = run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        let explained = out.stderr.contains("Usage:") || out.stderr.contains("error:");
        assert!(explained, "{args:?}: {}", out.stderr);
    }
    let help = run(&["--help"]);
    assert_eq!(help.code, 0);
    for command in ["check", "decide", "test", "fmt", "compile", "--format"] {
        assert!(
            help.stdout.contains(command),
            "{command} missing from --help"
        );
    }
    let decide_help = run(&["decide", "--help"]);
    assert_eq!(decide_help.code, 0);
    for option in [
        "--policy",
        "--identity",
        "--attr",
        "--client-id",
        "publish",
        "subscribe",
    ] {
        assert!(
            decide_help.stdout.contains(option),
            "{option} missing from decide --help"
        );
    }
}

/// Every shipped `policies/*.test.toml`, through both engines. Fails on any failing case.
#[test]
fn every_shipped_policy_test_file_passes() {
    let files = topicguard::testcases::discover(crate_root().join("policies")).expect("policies/");
    let mut failures = Vec::new();
    for file in &files {
        match topicguard::testcases::run_file(file) {
            Ok(report) => failures.extend(report.results.iter().filter(|r| !r.passed).map(|r| {
                format!(
                    "{}: {}\n  {}\n{}",
                    r.loc,
                    r.name,
                    r.failures.join("\n  "),
                    r.explanation
                )
            })),
            Err(error) => failures.push(format!("{}: {error}", file.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
