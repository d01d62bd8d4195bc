//! Policy test files (`*.test.toml`): expected decisions stated next to a policy.
//!
//! A test file names its policy (relative to the test file) and lists cases:
//!
//! ```toml
//! policy = "xfinity.policy"
//! [[case]]
//! name = "mobile publishes a request into its own namespace"
//! identity = "mobile"
//! attrs = { pid = "P1", aid = "A1", jti = "J1" }
//! client_id = "xfi:P1_A1:clt:J1"   # optional: the identity's client template rendered with attrs
//! action = "publish"                # connect | publish | retain | subscribe | receive
//! topic = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1"   # the filter for subscribe; absent for connect
//! expect = "allow"                  # allow | deny | explicit-deny | implicit-deny
//! rule_line = 39                    # optional: the line of the deciding rule
//! rule = "mobile-requests"          # optional: the label of the deciding rule
//! ```
//!
//! [`run_file`] runs every case through the compiled [`Engine`] and through the reference
//! interpreter ([`crate::decide::reference`]): a case passes only when both agree with each
//! other and with the expectation. Both `topicguard test` and `cargo test` use this module.
//! It only reads files; it never writes.
//!
//! A test file that cannot say what its author meant is an error, never a passing deny or a
//! silently skipped case: malformed TOML, a case without the topic its action needs, a file
//! with no case, and cases the policy cannot answer as written — an identity the policy
//! does not define, an attribute the identity does not bind from its credential (or a
//! client-id capture or `client` given as an attribute), a credential attribute left out
//! (except by a `connect` case expecting a denial, which shows such a credential is
//! refused).
//! Every such error is reported, with the file, line and case, before any case runs.

mod author;
pub mod coverage;
mod file;
mod run;

pub use author::{ClientIdError, case_errors, default_client_id};
pub use coverage::{Choice, Coverage, RuleCoverage};
pub use file::{Case, CaseAction, Expect, TestFile, TestFileError, TestFileErrors};
pub use run::{CaseResult, FileReport, run_case, run_cases, run_file, run_file_filtered};

use std::path::{Path, PathBuf};

/// The file-name suffix of policy test files.
pub const TEST_FILE_SUFFIX: &str = ".test.toml";

/// Every `*.test.toml` file under `dir` (recursively), sorted by path.
pub fn discover(dir: impl AsRef<Path>) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.as_ref().to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else if is_test_file(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// True for a path whose file name ends in `.test.toml`.
pub fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(TEST_FILE_SUFFIX) && n.len() > TEST_FILE_SUFFIX.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Engine, Verdict};
    use crate::policy::Policy;
    use crate::source::Source;

    const POLICY: &str = "identity d from anonymous {\n    client \"dev\"\n}\n\
        allow d connect\nallow d publish \"a/+\"\ndeny d publish \"a/secret\"\n";

    fn engine() -> Engine {
        let policy = Policy::from_source(&Source::new("p.policy", POLICY)).expect("valid");
        Engine::new(&policy.checked).expect("compiles")
    }

    fn parse(text: &str) -> Result<TestFile, TestFileErrors> {
        TestFile::parse(Path::new("dir/t.test.toml"), text)
    }

    fn case(action: &str, topic: &str, expect: &str, extra: &str) -> String {
        let topic_line = if topic.is_empty() {
            String::new()
        } else {
            format!("topic = \"{topic}\"\n")
        };
        format!(
            "[[case]]\nname = \"{action} {topic}\"\nidentity = \"d\"\naction = \"{action}\"\n\
             {topic_line}expect = \"{expect}\"\n{extra}"
        )
    }

    fn run(cases: &[String]) -> FileReport {
        let text = format!("policy = \"p.policy\"\n{}", cases.concat());
        let file = parse(&text).expect("valid test file");
        run_cases(&file, &engine()).expect("runs")
    }

    #[test]
    fn the_policy_path_is_relative_to_the_test_file() {
        let text = format!(
            "policy = \"x.policy\"\n{}",
            case("connect", "", "allow", "")
        );
        let file = parse(&text).expect("valid");
        assert_eq!(file.policy, Path::new("dir/x.policy"));
        assert_eq!(file.cases.len(), 1);
    }

    #[test]
    fn a_file_without_cases_is_an_error() {
        let error = parse("policy = \"x.policy\"\n").expect_err("no cases");
        assert_eq!(error.errors.len(), 1);
        assert!(error.to_string().contains("dir/t.test.toml"), "{error}");
        assert!(error.to_string().contains("no `[[case]]`"), "{error}");
    }

    #[test]
    fn every_malformed_case_is_reported() {
        let text = format!(
            "policy = \"p\"\n{}{}{}",
            case("connect", "a", "allow", ""),
            case("publish", "a/b", "allow", ""),
            case("subscribe", "", "allow", ""),
        );
        let error = parse(&text).expect_err("two bad cases");
        let lines: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("dir/t.test.toml:2:1: case `connect a`"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("dir/t.test.toml:14:1: case `subscribe `"),
            "{lines:?}"
        );
    }

    const ACCOUNTS: &str = "identity mobile from jwt {\n    account = claim \"acct\"\n    jti = claim \"jti\"\n    client \"m:{account}:{jti}\"\n}\n\
        identity service from certificate {\n    sid = subject.CN\n    client \"svc:{sid}:{+instance}\"\n}\n\
        allow mobile, service connect\nallow mobile publish \"t/{account}/#\"\n";

    /// Runs test-file text against [`ACCOUNTS`]: the report, or every error as text.
    fn run_accounts(cases: &str) -> Result<FileReport, Vec<String>> {
        let policy = Policy::from_source(&Source::new("a.policy", ACCOUNTS)).expect("valid");
        let engine = Engine::new(&policy.checked).expect("compiles");
        let file = parse(&format!("policy = \"a.policy\"\n{cases}")).expect("well formed");
        run_cases(&file, &engine).map_err(|e| e.errors.iter().map(ToString::to_string).collect())
    }

    fn account_case(
        identity: &str,
        attrs: &str,
        action: &str,
        topic: &str,
        expect: &str,
    ) -> String {
        let topic = if topic.is_empty() {
            String::new()
        } else {
            format!("topic = \"{topic}\"\n")
        };
        format!(
            "[[case]]\nname = \"{identity} {action}\"\nidentity = \"{identity}\"\nattrs = {{ {attrs} }}\n\
             action = \"{action}\"\n{topic}expect = \"{expect}\"\n"
        )
    }

    #[test]
    fn unknown_identities_and_attributes_are_errors_not_denials() {
        let cases = [
            account_case(
                "mobil",
                "account = \"A1\", jti = \"J1\"",
                "publish",
                "t/A2/x",
                "deny",
            ),
            account_case(
                "mobile",
                "acount = \"A1\", jti = \"J1\"",
                "publish",
                "t/A2/x",
                "deny",
            ),
            account_case(
                "mobile",
                "account = \"A1\", jti = \"J1\", client = \"m:A1:J1\"",
                "connect",
                "",
                "allow",
            ),
            account_case(
                "service",
                "sid = \"s\", instance = \"7\"",
                "connect",
                "",
                "allow",
            ),
        ];
        let errors = run_accounts(&cases.concat()).expect_err("four bad cases");
        assert_eq!(errors.len(), 5, "{errors:#?}");
        let expected = [
            "dir/t.test.toml:2:1: case `mobil publish`: the policy defines no identity `mobil`; did you mean `mobile`? it defines: mobile, service",
            "dir/t.test.toml:9:1: case `mobile publish`: identity `mobile` binds no attribute `acount`; did you mean `account`? it binds: account, jti",
            "dir/t.test.toml:9:1: case `mobile publish`: identity `mobile` binds `account` from its credential, but `attrs` does not give it",
            "dir/t.test.toml:16:1: case `mobile connect`: `client` is the client id: give it as `client_id`, not in `attrs`",
            "dir/t.test.toml:22:1: case `service connect`: `instance` is captured from the client id by the template `svc:{sid}:{+instance}`: give `client_id` instead of `attrs.instance`",
        ];
        for (got, want) in errors.iter().zip(expected) {
            assert!(got.starts_with(want), "{got}\n  should start with\n{want}");
        }
    }

    #[test]
    fn only_a_refused_connect_may_leave_a_credential_attribute_out() {
        let refused = account_case("mobile", "account = \"A1\"", "connect", "", "explicit-deny");
        let refused = refused.replace("expect", "client_id = \"m:A1:J1\"\nexpect");
        let report = run_accounts(&refused).expect("runs");
        assert!(report.results[0].passed, "{:?}", report.results[0]);
        let publish = account_case("mobile", "account = \"A1\"", "publish", "t/A2/x", "deny");
        let publish = publish.replace("expect", "client_id = \"m:A1:J1\"\nexpect");
        let errors = run_accounts(&publish).expect_err("a deny for the wrong reason");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("does not give it: only a `connect` case"),
            "{errors:?}"
        );
    }

    #[test]
    fn passing_and_failing_cases_are_told_apart() {
        let report = run(&[
            case("connect", "", "allow", ""),
            case("publish", "a/b", "allow", "rule_line = 5\n"),
            case("publish", "a/secret", "explicit-deny", "rule_line = 6\n"),
            case("subscribe", "a/b", "implicit-deny", ""),
            case("publish", "a/b", "deny", ""),
            case("publish", "a/b", "allow", "rule_line = 6\n"),
            case("retain", "a/b", "allow", ""),
        ]);
        let passed: Vec<bool> = report.results.iter().map(|r| r.passed).collect();
        assert_eq!(passed, [true, true, true, true, false, false, false]);
        assert_eq!((report.passed(), report.failed()), (4, 3));
        let wrong_line = &report.results[5];
        assert_eq!(
            wrong_line.failures,
            ["expected the rule at line 6 to decide, got line 5"]
        );
        let denied = &report.results[4];
        assert!(denied.failures[0].contains("expected deny"), "{denied:?}");
        assert_eq!(denied.got, Verdict::Allowed);
        assert_eq!(denied.explanation.decision.verdict, Verdict::Allowed);
    }

    /// `rule = "label"` names the rule expected to decide: a case passes only when that
    /// rule decides, and a label no rule has is an error before any case runs.
    #[test]
    fn a_case_may_name_the_deciding_rule_by_its_label() {
        let text = "identity d from anonymous {\n    client \"dev\"\n}\n\
            @id(\"open\") allow d publish \"a/+\"\n@id(\"secret\") deny d publish \"a/secret\"\n";
        let policy = Policy::from_source(&Source::new("p.policy", text)).expect("valid");
        let engine = Engine::new(&policy.checked).expect("compiles");
        let cases = [
            case("publish", "a/b", "allow", "rule = \"open\"\n"),
            case("publish", "a/secret", "deny", "rule = \"secret\"\n"),
            case("publish", "a/secret", "deny", "rule = \"open\"\n"),
            case("publish", "b", "deny", "rule = \"open\"\n"),
        ];
        let file = parse(&format!("policy = \"p.policy\"\n{}", cases.concat())).expect("valid");
        let report = run_cases(&file, &engine).expect("runs");
        let passed: Vec<bool> = report.results.iter().map(|r| r.passed).collect();
        assert_eq!(passed, [true, true, false, false]);
        assert_eq!(report.results[1].rule.as_deref(), Some("secret"));
        assert_eq!(
            report.results[2].failures,
            ["expected the rule `open` to decide, got the rule `secret` at p.policy:5:1"]
        );
        assert_eq!(
            report.results[3].failures,
            ["expected the rule `open` to decide, got no rule"]
        );
        let typo = case("publish", "a/b", "allow", "rule = \"opn\"\n");
        let file = parse(&format!("policy = \"p.policy\"\n{typo}")).expect("valid");
        let error = run_cases(&file, &engine)
            .expect_err("unknown label")
            .to_string();
        assert!(
            error.contains("no rule is labelled `opn`; did you mean `open`? labels: open, secret"),
            "{error}"
        );
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let text = format!(
            "policy = \"p\"\n{}",
            case("connect", "", "allow", "colour = 1\n")
        );
        let error = parse(&text).expect_err("unknown field").to_string();
        assert!(error.starts_with("dir/t.test.toml:7:1"), "{error}");
        assert!(error.contains("colour"), "{error}");
        let error = parse("policy = \"p\"\n[[case]]\nname = \"x\"\n")
            .expect_err("missing fields")
            .to_string();
        assert!(error.contains("dir/t.test.toml:2"), "{error}");
        let bad_expect = case("connect", "", "maybe", "");
        let error = parse(&format!("policy = \"p\"\n{bad_expect}")).expect_err("bad enum");
        assert!(error.to_string().contains("maybe"), "{error}");
    }

    #[test]
    fn a_topic_is_required_exactly_when_the_action_has_one() {
        for (action, topic) in [("connect", "a"), ("publish", ""), ("subscribe", "")] {
            let text = format!("policy = \"p\"\n\n{}", case(action, topic, "allow", ""));
            let error = parse(&text).expect_err("topic misuse").to_string();
            assert!(error.starts_with("dir/t.test.toml:3:1: case `"), "{error}");
            assert!(error.contains("topic"), "{error}");
        }
    }

    #[test]
    fn a_client_template_with_a_capture_needs_an_explicit_client_id() {
        let text = "identity s from anonymous {\n    client \"s:{+i}\"\n}\nallow s connect\n";
        let policy = Policy::from_source(&Source::new("p", text)).expect("valid");
        let engine = Engine::new(&policy.checked).expect("compiles");
        let without = parse(&format!(
            "policy = \"p\"\n{}",
            case("connect", "", "allow", "")
        ))
        .expect("valid");
        let without = without.cases[0].clone();
        let without = Case {
            identity: "s".into(),
            ..without
        };
        let error = run_case(&without, &engine).expect_err("needs client_id");
        assert!(error.to_string().contains("give `client_id`"), "{error}");
        let with = Case {
            client_id: Some("s:1".into()),
            ..without
        };
        assert!(run_case(&with, &engine).expect("runs").passed);
    }

    #[test]
    fn expectations_accept_the_right_verdicts() {
        use Verdict::*;
        let accepted = |e: Expect| [Allowed, ExplicitDeny, ImplicitDeny].map(|v| e.accepts(v));
        assert_eq!(accepted(Expect::Allow), [true, false, false]);
        assert_eq!(accepted(Expect::Deny), [false, true, true]);
        assert_eq!(accepted(Expect::ExplicitDeny), [false, true, false]);
        assert_eq!(accepted(Expect::ImplicitDeny), [false, false, true]);
    }

    #[test]
    fn only_test_toml_files_are_test_files() {
        assert!(is_test_file(Path::new("a/x.test.toml")));
        assert!(!is_test_file(Path::new("a/.test.toml")));
        assert!(!is_test_file(Path::new("a/x.toml")));
        assert!(!is_test_file(Path::new("a/x.policy")));
    }
}
