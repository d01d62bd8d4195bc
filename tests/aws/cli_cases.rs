//! `topicguard aws policy` and `topicguard aws authorizer` end to end, with real
//! development credentials (`topicguard dev token|pki`), and the README's Lambda handler
//! (`deploy/aws/lambda_handler.py`) run by a real Python on a custom authorizer event.

use super::ARN;
use super::eval::{Ask, Policies, allows};
use crate::scratch::Scratch;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const TG: &str = env!("CARGO_BIN_EXE_topicguard");
const TARGET: [&str; 4] = ["--region", "us-east-1", "--account", "123456789012"];
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

fn run(args: &[&str]) -> Output {
    Command::new(TG)
        .args(args)
        .env_remove("AWS_REGION")
        .env_remove("AWS_ACCOUNT_ID")
        .output()
        .expect("the binary runs")
}

fn run_with_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(TG)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_dir(name: &str) -> Scratch {
    Scratch::new(&format!("aws-{name}"))
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// A development token for mobile P1/A1/J1 (with extra claims) and, as `idp=FILE`, its
/// JWKS for the mobile identity's trust label, and the directory holding them (removed when
/// it drops: keep it bound while the JWKS is in use).
fn dev_token(name: &str, claims: &[&str]) -> (String, String, Scratch) {
    let dir = temp_dir(name);
    let out = dir.display().to_string();
    let mut args = vec!["dev", "token", "--out", &out];
    for c in claims {
        args.extend(["--claim", c]);
    }
    let made = run(&args);
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let token = std::fs::read_to_string(dir.join("token.jwt")).unwrap();
    (
        token.trim().to_string(),
        format!("idp={}", path(&dir, "jwks.json")),
        dir,
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn policy_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["aws", "policy", "--policy", "policies/xfinity.policy"];
    args.extend_from_slice(extra);
    args
}

#[test]
fn aws_policy_prints_the_documents_for_asserted_and_verified_identities() {
    let asserted = run(&[&policy_args(&MOBILE)[..], &TARGET[..]].concat());
    assert_eq!(
        asserted.status.code(),
        Some(0),
        "{}",
        text(&asserted.stderr)
    );
    assert_eq!(
        text(&asserted.stderr),
        "",
        "the mobile app renders exactly: no notes"
    );
    let docs: Value = serde_json::from_slice(&asserted.stdout).unwrap();
    assert!(
        docs.as_array()
            .is_some_and(|d| !d.is_empty() && d.len() <= 10)
    );
    assert_eq!(docs[0]["Version"], "2012-10-17");
    let p = Policies::parse(&docs);
    assert!(allows(&p, ARN, &Ask::Connect("xfi:P1_A1:clt:J1".into())));
    assert!(!allows(&p, ARN, &Ask::Connect("xfi:P2_A1:clt:J1".into())));

    let (token, jwks, _jwks_dir) = dev_token("policy", &[]);
    let dir = temp_dir("policy-jwt");
    std::fs::write(dir.join("t.jwt"), &token).unwrap();
    let jwt = path(&dir, "t.jwt");
    let verified = run(&[
        &policy_args(&["--jwt", &jwt, "--trust", &jwks])[..],
        &TARGET[..],
    ]
    .concat());
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stderr)
    );
    assert_eq!(
        verified.stdout, asserted.stdout,
        "the same identity, verified"
    );

    let pki = temp_dir("pki");
    let out = pki.display().to_string();
    assert_eq!(run(&["dev", "pki", "--out", &out]).status.code(), Some(0));
    let (cert, ca, crl) = (
        path(&pki, "gateway.pem"),
        format!("devices={}", path(&pki, "ca.pem")),
        format!("devices={}", path(&pki, "crl.pem")),
    );
    let gateway = run(&[
        &policy_args(&["--cert", &cert, "--trust", &ca, "--trust-crl", &crl])[..],
        &TARGET[..],
    ]
    .concat());
    assert_eq!(gateway.status.code(), Some(0), "{}", text(&gateway.stderr));
    let docs: Value = serde_json::from_slice(&gateway.stdout).unwrap();
    let p = Policies::parse(&docs);
    let id = "iot:P1_A1:adp:xhf:550e8400-e29b-41d4-a716-446655440000";
    assert!(allows(&p, ARN, &Ask::Connect(id.into())));
    assert!(allows(
        &p,
        ARN,
        &Ask::Publish(format!("c/iot/P1_A1/{id}/presence"), true)
    ));
    assert!(
        text(&gateway.stderr).contains("narrowed"),
        "the gateway's notes"
    );
}

#[test]
fn aws_policy_refuses_wildcard_targets_and_bad_identities() {
    let missing = run(&policy_args(&MOBILE));
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("--region"),
        "{}",
        text(&missing.stderr)
    );
    for (flag, value) in [("--region", "*"), ("--account", "*"), ("--account", "1234")] {
        let mut target = TARGET.to_vec();
        let at = target.iter().position(|a| *a == flag).unwrap();
        target[at + 1] = value;
        let refused = run(&[&policy_args(&MOBILE)[..], &target[..]].concat());
        assert_eq!(refused.status.code(), Some(2), "{flag} {value}");
        assert!(refused.stdout.is_empty());
        assert!(text(&refused.stderr).contains("wildcard") || value == "1234");
    }
    let bad = [
        "--identity",
        "mobile",
        "--attr",
        "pid=P/1",
        "--attr",
        "aid=A1",
        "--attr",
        "jti=J1",
    ];
    let rejected = run(&[&policy_args(&bad)[..], &TARGET[..], &["--client-id", "x"]].concat());
    assert_eq!(
        rejected.status.code(),
        Some(1),
        "{}",
        text(&rejected.stderr)
    );
    assert!(rejected.stdout.is_empty());
    let gateway = [
        "--identity",
        "service",
        "--attr",
        "sid=lights",
        "--client-id",
        "svc:lights:7",
    ];
    let exact = run(&[&policy_args(&gateway)[..], &TARGET[..], &["--exact"]].concat());
    assert_eq!(exact.status.code(), Some(2), "{}", text(&exact.stderr));
    assert!(exact.stdout.is_empty());
    assert!(text(&exact.stderr).contains("--exact"));
}

fn authorizer(token: &str, jwks: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec![
        "aws",
        "authorizer",
        "--policy",
        "policies/xfinity.policy",
        "--token",
        token,
        "--trust",
        jwks,
    ];
    args.extend_from_slice(&TARGET);
    args.extend_from_slice(extra);
    let out = run(&args);
    let value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), value, text(&out.stderr))
}

fn assert_refused(code: Option<i32>, response: &Value, stderr: &str, why: &str) {
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(response["isAuthenticated"], false, "{response}");
    let deny = &response["policyDocuments"][0]["Statement"][0];
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Resource"][0], "*");
    assert!(stderr.contains(why), "{why}: {stderr}");
}

#[test]
fn the_authorizer_answers_with_awss_fields_and_limits() {
    let (token, jwks, _jwks_dir) = dev_token("auth", &[]);
    let (code, response, stderr) = authorizer(&token, &jwks, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(response["isAuthenticated"], true);
    let principal = response["principalId"].as_str().unwrap();
    assert!(
        (1..=128).contains(&principal.len())
            && principal.chars().all(|c| c.is_ascii_alphanumeric()),
        "{principal}"
    );
    let disconnect = response["disconnectAfterInSeconds"].as_u64().unwrap();
    assert!(
        (3500..=3600).contains(&disconnect),
        "the token's expiry: {disconnect}"
    );
    assert_eq!(response["refreshAfterInSeconds"], 300);
    let docs = response["policyDocuments"].as_array().unwrap();
    assert!(!docs.is_empty() && docs.len() <= 10);
    for doc in docs {
        assert!(serde_json::to_string(doc).unwrap().len() <= 2048);
    }
    let policy = run(&[&policy_args(&MOBILE)[..], &TARGET[..]].concat());
    let rendered: Value = serde_json::from_slice(&policy.stdout).unwrap();
    assert_eq!(
        response["policyDocuments"], rendered,
        "the same documents as aws policy"
    );

    let again = run_with_stdin(
        &[
            "aws",
            "authorizer",
            "--policy",
            "policies/xfinity.policy",
            "--token",
            "-",
            "--trust",
            &jwks,
            "--region",
            "us-east-1",
            "--account",
            "123456789012",
        ],
        &format!("{token}\n"),
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        again["principalId"], response["principalId"],
        "stable per principal"
    );

    let (other_token, other_jwks, _other_jwks_dir) = dev_token("auth-other-jti", &["jti=J2"]);
    let (_, other, _) = authorizer(
        &other_token,
        &other_jwks,
        &["--client-id", "xfi:P1_A1:clt:J2"],
    );
    assert_ne!(
        other["principalId"], response["principalId"],
        "distinct principals"
    );

    let long = format!("exp={}", now() + 10 * 86_400);
    let (long_token, long_jwks, _long_jwks_dir) = dev_token("auth-long", &[&long]);
    let (_, capped, _) = authorizer(&long_token, &long_jwks, &["--refresh-after", "99999"]);
    assert_eq!(capped["disconnectAfterInSeconds"], 86_400);
    assert_eq!(capped["refreshAfterInSeconds"], 86_400);
}

#[test]
fn the_authorizer_refuses_what_does_not_verify_or_bind() {
    let (token, jwks, _jwks_dir) = dev_token("refuse", &[]);
    let (_, foreign_jwks, _foreign_jwks_dir) = dev_token("refuse-foreign", &[]);
    let (code, response, stderr) = authorizer(&token, &foreign_jwks, &[]);
    assert_refused(code, &response, &stderr, "refused");
    let mut tampered: Vec<char> = token.chars().collect();
    let middle = token.find('.').unwrap() + 5;
    tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let (code, response, stderr) = authorizer(&tampered, &jwks, &[]);
    assert_refused(code, &response, &stderr, "refused");
    assert!(!stderr.contains(&token[..20]), "the token is never printed");
    let (code, response, stderr) = authorizer(&token, &jwks, &["--client-id", "xfi:P2_A1:clt:J1"]);
    assert_refused(code, &response, &stderr, "client id");
    let soon = format!("exp={}", now() + 100);
    let (soon_token, soon_jwks, _soon_jwks_dir) = dev_token("refuse-soon", &[&soon]);
    let (code, response, stderr) = authorizer(&soon_token, &soon_jwks, &[]);
    assert_refused(code, &response, &stderr, "300 s");
    let past = format!("exp={}", now() - 3600);
    let (old_token, old_jwks, _old_jwks_dir) = dev_token("refuse-old", &[&past]);
    let (code, response, stderr) = authorizer(&old_token, &old_jwks, &[]);
    assert_refused(code, &response, &stderr, "expired");
    let (code, response, stderr) = authorizer("not.a.token", &jwks, &[]);
    assert_refused(code, &response, &stderr, "refused");
    let (code, response, _) = authorizer(&token, "idp=/nonexistent/jwks.json", &[]);
    assert_eq!(code, Some(2), "a missing key file is a deployment error");
    assert_eq!(response, Value::Null, "nothing on stdout");
}

/// The README's handler is the shipped file.
#[test]
fn the_readme_shows_the_shipped_lambda_handler() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let handler = std::fs::read_to_string("deploy/aws/lambda_handler.py").unwrap();
    assert!(
        readme.contains(&format!("```python\n{handler}```")),
        "README and handler differ"
    );
}

#[test]
fn the_lambda_handler_answers_a_custom_authorizer_event() {
    let (token, jwks, _jwks_dir) = dev_token("lambda", &[]);
    let (forged, _, _forged_dir) = dev_token("lambda-forged", &[]);
    let driver = "import json, sys\nsys.path.insert(0, 'deploy/aws')\nimport lambda_handler\n\
        class Context:\n    invoked_function_arn = 'arn:aws:lambda:us-east-1:123456789012:function:auth'\n\
        print(json.dumps(lambda_handler.handler(json.load(sys.stdin), Context())))\n";
    let answer = |token: &str| -> (Value, String) {
        use base64::Engine as _;
        let event = serde_json::json!({
            "signatureVerified": false,
            "protocols": ["tls", "mqtt"],
            "protocolData": {"tls": {"serverName": "iot.example"}, "mqtt": {
                "username": "mobile",
                "password": base64::engine::general_purpose::STANDARD.encode(token),
                "clientId": "xfi:P1_A1:clt:J1"}},
            "connectionMetadata": {"id": "d0adaaa7-a6a7-4b1a-9d0b-3c4f8e0a6b6e"}
        });
        let mut child = Command::new("python3")
            .args(["-c", driver])
            .env("TOPICGUARD_BIN", TG)
            .env("TOPICGUARD_POLICY", "policies/xfinity.policy")
            .env("TOPICGUARD_TRUST", &jwks)
            .env("AWS_REGION", "us-east-1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(event.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default().to_string();
        (serde_json::from_str(&last).unwrap(), stdout)
    };
    let (granted, _) = answer(&token);
    assert_eq!(granted["isAuthenticated"], true);
    let p = Policies::parse(&granted["policyDocuments"]);
    assert!(allows(&p, ARN, &Ask::Connect("xfi:P1_A1:clt:J1".into())));
    assert!(allows(
        &p,
        ARN,
        &Ask::Publish("c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1".into(), false)
    ));
    assert!(!allows(
        &p,
        ARN,
        &Ask::Publish("c/xfi/P2_A1/lights/xfi:P1_A1:clt:J1/r1".into(), false)
    ));
    let (refused, log) = answer(&forged);
    assert_eq!(refused["isAuthenticated"], false);
    assert!(log.contains("refused"), "the reason is logged: {log}");
}
