//! `topicguard dev pki|token` output used with `topicguard decide --jwt/--cert`, end to end.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn topicguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_topicguard"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tg-identity-cli-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn dev_token_output_decides_end_to_end() {
    let dir = temp_dir("token");
    let out = dir.display().to_string();
    let made = topicguard(&[
        "dev", "token", "--claim", "pid=P1", "--claim", "aid=A1", "--out", &out,
    ]);
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    assert!(stdout(&made).contains("DEVELOPMENT ONLY"));
    let jwks = std::fs::read_to_string(dir.join("jwks.json")).unwrap();
    assert!(jwks.contains("DEVELOPMENT ONLY"));
    let (token, keys) = (
        path(&dir, "token.jwt"),
        format!("idp={}", path(&dir, "jwks.json")),
    );
    let base = [
        "--format",
        "json",
        "decide",
        "--policy",
        "policies/xfinity.policy",
        "--jwt",
        &token,
        "--trust",
        &keys,
    ];
    let allowed = topicguard(
        &[
            &base[..],
            &["publish", "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1"],
        ]
        .concat(),
    );
    assert_eq!(allowed.status.code(), Some(0), "{}", stdout(&allowed));
    let denied = topicguard(
        &[
            &base[..],
            &["publish", "c/xfi/P2_A1/lights/xfi:P1_A1:clt:J1/r1"],
        ]
        .concat(),
    );
    assert_eq!(denied.status.code(), Some(1), "{}", stdout(&denied));
    let other = temp_dir("token-other");
    let other_out = other.display().to_string();
    assert_eq!(
        topicguard(&["dev", "token", "--alg", "EdDSA", "--out", &other_out])
            .status
            .code(),
        Some(0)
    );
    let foreign_keys = format!("idp={}", path(&other, "jwks.json"));
    let rejected = topicguard(&[
        "--format",
        "json",
        "decide",
        "--policy",
        "policies/xfinity.policy",
        "--jwt",
        &token,
        "--trust",
        &foreign_keys,
        "connect",
    ]);
    assert_eq!(rejected.status.code(), Some(2));
    let error: Value = serde_json::from_str(&stdout(&rejected)).unwrap();
    let message = error["error"]["message"].as_str().unwrap_or("");
    assert_eq!(
        message,
        "credential rejected: identity `mobile`: key `dev-1` (Ed25519) cannot verify ES256"
    );
    // The default keys (--jwks) serve only identities without a `trust` label: every jwt
    // identity of xfinity.policy has one, so the right keys given that way are refused.
    let default_keys = path(&dir, "jwks.json");
    let unlabelled = topicguard(&[
        "--format",
        "json",
        "decide",
        "--policy",
        "policies/xfinity.policy",
        "--jwt",
        &token,
        "--jwks",
        &default_keys,
        "connect",
    ]);
    assert_eq!(unlabelled.status.code(), Some(2));
    let error: Value = serde_json::from_str(&stdout(&unlabelled)).unwrap();
    assert_eq!(
        error["error"]["message"],
        "anchors the policy does not use: the default JWKS (--jwks, [identity] jwks, plugin_opt_jwks): every jwt identity has a `trust` label"
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&other).ok();
}

/// The command `dev token` prints after "try:", split into arguments (without `topicguard`).
fn printed_try_command(output: &Output) -> Vec<String> {
    let text = stdout(output);
    let line = text
        .lines()
        .skip_while(|line| *line != "try:")
        .nth(1)
        .unwrap_or_else(|| panic!("no try command in:\n{text}"));
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    assert_eq!(
        words.first().map(String::as_str),
        Some("topicguard"),
        "{line}"
    );
    words[1..].to_vec()
}

#[test]
fn dev_token_with_default_claims_works_with_the_printed_command() {
    let dir = temp_dir("token-defaults");
    let out = dir.display().to_string();
    let made = topicguard(&["dev", "token", "--out", &out]);
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    let command = printed_try_command(&made);
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    let tried = topicguard(&args);
    assert_eq!(
        tried.status.code(),
        Some(0),
        "{args:?}: {}{}",
        stdout(&tried),
        String::from_utf8_lossy(&tried.stderr)
    );
    assert!(stdout(&tried).contains("for mobile"), "{}", stdout(&tried));
    let report = topicguard(&["--format", "json", "dev", "token", "--out", &out]);
    let report: Value = serde_json::from_str(&stdout(&report)).expect("a JSON report");
    assert_eq!(
        (
            &report["claims"]["pid"],
            &report["claims"]["aid"],
            &report["claims"]["jti"]
        ),
        (&Value::from("P1"), &Value::from("A1"), &Value::from("J1"))
    );
    assert_eq!(report["client_id"], "xfi:P1_A1:clt:J1");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dev_pki_output_decides_end_to_end() {
    let dir = temp_dir("pki");
    let out = dir.display().to_string();
    let made = topicguard(&["dev", "pki", "--out", &out]);
    assert_eq!(made.status.code(), Some(0), "{made:?}");
    for file in [
        "ca.pem",
        "gateway.pem",
        "gateway-key.pem",
        "service.pem",
        "server.pem",
        "server-key.pem",
        "crl.pem",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(text.starts_with("# DEVELOPMENT ONLY"), "{file}");
    }
    let (cert, devices, crl) = (
        path(&dir, "gateway.pem"),
        format!("devices={}", path(&dir, "ca.pem")),
        format!("devices={}", path(&dir, "crl.pem")),
    );
    let client = "iot:P1_A1:adp:xhf:550e8400-e29b-41d4-a716-446655440000";
    let topic = format!("c/iot/P1_A1/{client}/presence");
    let gateway = topicguard(&[
        "decide",
        "--policy",
        "policies/xfinity.policy",
        "--cert",
        &cert,
        "--trust",
        &devices,
        "--trust-crl",
        &crl,
        "publish",
        &topic,
    ]);
    assert_eq!(gateway.status.code(), Some(0), "{}", stdout(&gateway));
    assert!(stdout(&gateway).contains("for gateway"));
    // The one development CA of `dev pki --out` also issued the service certificate; as
    // the `services` label's CA it verifies it.
    let service = path(&dir, "service.pem");
    let services = format!("services={}", path(&dir, "ca.pem"));
    let needs_id = topicguard(&[
        "decide",
        "--policy",
        "policies/xfinity.policy",
        "--cert",
        &service,
        "--trust",
        &services,
        "connect",
    ]);
    assert_eq!(needs_id.status.code(), Some(2));
    let with_id = topicguard(&[
        "decide",
        "--policy",
        "policies/xfinity.policy",
        "--cert",
        &service,
        "--trust",
        &services,
        "--client-id",
        "svc:lights:1",
        "subscribe",
        "c/+/+/lights/+/+",
    ]);
    assert_eq!(with_id.status.code(), Some(0), "{}", stdout(&with_id));
    // Under the `devices` label the same CA verifies the service certificate, but `gateway`
    // (the only identity of that label) cannot bind it: never `service` by its fields alone.
    let wrong_label = topicguard(&[
        "decide",
        "--policy",
        "policies/xfinity.policy",
        "--cert",
        &service,
        "--trust",
        &devices,
        "--client-id",
        "svc:lights:1",
        "connect",
    ]);
    assert_eq!(
        wrong_label.status.code(),
        Some(2),
        "{}",
        stdout(&wrong_label)
    );
    let err = String::from_utf8_lossy(&wrong_label.stderr);
    assert!(err.contains("identity `gateway`"), "{err}");
    assert!(
        err.contains("identity `service` (certificate) trusts `services`"),
        "{err}"
    );
    let wrong_ca = topicguard(&[
        "decide",
        "--policy",
        "policies/xfinity.policy",
        "--cert",
        &cert,
        "--trust",
        &format!("devices={service}"),
        "connect",
    ]);
    assert_eq!(wrong_ca.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

/// `dev pki --policy` and `dev token --policy --identity` for every shipped policy: each
/// report says the credential binds (checked with the written anchors), and `decide` with
/// the printed command lets it connect.
#[test]
fn dev_material_per_trust_label_binds_every_shipped_identity() {
    for name in ["xfinity", "fleet", "building"] {
        let policy = format!("policies/{name}.policy");
        let dir = temp_dir(&format!("policy-{name}"));
        let out = dir.display().to_string();
        let pki = topicguard(&[
            "--format", "json", "dev", "pki", "--policy", &policy, "--out", &out,
        ]);
        assert_eq!(pki.status.code(), Some(0), "{pki:?}");
        let report: Value = serde_json::from_str(&stdout(&pki)).unwrap();
        let identities = report["identities"].as_array().unwrap();
        assert!(!identities.is_empty(), "{name}");
        for identity in identities {
            assert_eq!(identity["binds"], true, "{name}: {identity}");
        }
        let tried = printed_json_try(&report);
        assert_eq!(tried.status.code(), Some(0), "{name}: {tried:?}");
        let jwt: Vec<String> = topicguard::Policy::load(&policy)
            .unwrap()
            .checked
            .identities
            .iter()
            .filter(|d| d.kind == topicguard::ast::IdentityKind::Jwt)
            .map(|d| d.name.clone())
            .collect();
        for identity in &jwt {
            let made = topicguard(&[
                "--format",
                "json",
                "dev",
                "token",
                "--policy",
                &policy,
                "--identity",
                identity,
                "--out",
                &out,
            ]);
            assert_eq!(made.status.code(), Some(0), "{made:?}");
            let report: Value = serde_json::from_str(&stdout(&made)).unwrap();
            assert_eq!(report["binds"], true, "{name} {identity}: {report}");
            let tried = printed_json_try(&report);
            assert_eq!(tried.status.code(), Some(0), "{name} {identity}: {tried:?}");
        }
        // Tokens of one label share its key: the first token still verifies.
        if let Some(first) = jwt.first() {
            let label = topicguard::Policy::load(&policy)
                .unwrap()
                .checked
                .identity(first)
                .unwrap()
                .1
                .trust_label()
                .map(str::to_string);
            let keys = match &label {
                Some(label) => format!("{label}={}", path(&dir, &format!("jwks-{label}.json"))),
                None => path(&dir, "jwks.json"),
            };
            let flag = if label.is_some() { "--trust" } else { "--jwks" };
            let again = topicguard(&[
                "decide",
                "--policy",
                &policy,
                "--jwt",
                &path(&dir, &format!("{first}.jwt")),
                flag,
                &keys,
                "--client-id",
                "x",
                "connect",
            ]);
            assert!(
                !String::from_utf8_lossy(&again.stderr).contains("credential rejected"),
                "{again:?}"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// Runs the `try` command of a JSON report.
fn printed_json_try(report: &Value) -> Output {
    let line = report["try"].as_str().expect("a try command");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"topicguard"), "{line}");
    topicguard(&words[1..])
}
