//! What the `topicguard` binary prints, whatever a user or a tool asks of it: the versioned
//! JSON schema of every command (docs/json-output.md), usage errors as JSON, `--color` and
//! `NO_COLOR`, `decide --batch`, non-UTF-8 input, and `demo` run from anywhere.
//!
//! Each test runs the real binary. JSON documents are parsed (pretty documents and JSON
//! lines alike) and checked for `schema_version` and `command`; one snapshot per command.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const XFINITY: &str = "policies/xfinity.policy";
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

/// What a run of the binary produced.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Every JSON document on stdout: one pretty document, or one per line.
    fn documents(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

fn crate_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_topicguard"));
    command.args(args).current_dir(dir).env_remove("NO_COLOR");
    command
}

fn finish(output: std::process::Output) -> Run {
    Run {
        code: output.status.code().expect("exited normally"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    finish(command(dir, args).output().expect("the binary runs"))
}

fn run(args: &[&str]) -> Run {
    run_in(crate_root(), args)
}

fn run_with_stdin(args: &[&str], input: &[u8]) -> Run {
    let mut child = command(crate_root(), args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    finish(child.wait_with_output().expect("the binary ends"))
}

/// A fresh, empty directory for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tg-out-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Asserts every document of `run` is an object stamped with the schema version and
/// `command`; returns the documents.
fn stamped(run: &Run, command: Option<&str>) -> Vec<Value> {
    let documents = run.documents();
    assert!(
        !documents.is_empty(),
        "no JSON on stdout; stderr:\n{}",
        run.stderr
    );
    for document in &documents {
        assert_eq!(document["schema_version"], 1, "{document}");
        let expected = command.map_or(Value::Null, Value::from);
        assert_eq!(document["command"], expected, "{document}");
    }
    documents
}

/// The fields that change from run to run (timings, sizes, temporary paths), replaced.
fn redact(value: &mut Value, dir: &str) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                let volatile = key.ends_with("_ms")
                    || key.ends_with("_us")
                    || key.ends_with("bytes")
                    || key.contains("micros")
                    || key.contains("seconds");
                if volatile && (field.is_number() || field.is_string()) {
                    *field = Value::from("[redacted]");
                } else {
                    redact(field, dir);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, dir)),
        Value::String(text) if !dir.is_empty() && text.contains(dir) => {
            *text = text.replace(dir, "[dir]");
        }
        _ => {}
    }
}

fn snapshot(name: &str, documents: &[Value], dir: &str) {
    let mut text = String::new();
    for document in documents {
        let mut document = document.clone();
        redact(&mut document, dir);
        text.push_str(&serde_json::to_string_pretty(&document).expect("JSON"));
        text.push('\n');
    }
    insta::assert_snapshot!(name, text);
}

/// A policy whose decisions and diff are small enough to snapshot.
const SMALL: &str = "\
identity device from certificate {
    tenant = subject.O
    id = subject.CN
    client \"dev:{tenant}:{id}\"
}

allow device connect
allow device publish, retain \"t/{tenant}/{id}/temp\"
allow device subscribe, receive \"t/{tenant}/{id}/cmd/#\"
assert device only \"t/{tenant}/{id}/#\"
";

const SMALL_TEST: &str = "\
policy = \"small.policy\"

[[case]]
name = \"a device publishes its temperature\"
identity = \"device\"
attrs = { tenant = \"T1\", id = \"D1\" }
action = \"publish\"
topic = \"t/T1/D1/temp\"
expect = \"allow\"
";

fn small_dir(test: &str) -> PathBuf {
    let dir = temp_dir(test);
    std::fs::write(dir.join("small.policy"), SMALL).expect("write");
    std::fs::write(dir.join("wider.policy"), SMALL.replace("/temp\"", "/+\"")).expect("write");
    std::fs::write(dir.join("small.test.toml"), SMALL_TEST).expect("write");
    std::fs::write(
        dir.join("messy.policy"),
        SMALL.replace("allow device connect", "allow  device connect"),
    )
    .expect("write");
    dir
}

/// Every policy command's JSON document parses, carries the schema version and its
/// command, and reads as reviewed (one snapshot per command).
#[test]
fn every_policy_command_prints_one_stamped_document() {
    let dir = small_dir("policy-commands");
    let cases: [(&str, &[&str], i32); 8] = [
        ("check", &["check", "small.policy"], 0),
        ("compile", &["compile", "small.policy"], 0),
        ("test", &["test", "small.test.toml"], 0),
        ("fmt", &["fmt", "--check", "messy.policy"], 1),
        ("verify", &["verify", "small.policy"], 0),
        ("diff", &["diff", "small.policy", "wider.policy"], 1),
        (
            "decide",
            &[
                "decide",
                "--policy",
                "small.policy",
                "--identity",
                "device",
                "--attr",
                "tenant=T1",
                "--attr",
                "id=D1",
                "publish",
                "--retain",
                "t/T1/D1/temp",
            ],
            0,
        ),
        ("error", &["check", "missing.policy"], 2),
    ];
    for (name, args, code) in cases {
        let out = run_in(&dir, &[&["--format", "json"], args].concat());
        assert_eq!(out.code, code, "{name}: {}{}", out.stdout, out.stderr);
        let documents = stamped(&out, Some(args[0]));
        assert_eq!(documents.len(), 1, "{name}: one document");
        snapshot(&format!("json_{name}"), &documents, "");
    }
}

/// The commands that talk to brokers or write credentials honour `--format json` too:
/// their results and their errors are stamped documents.
#[test]
fn runtime_and_credential_commands_print_stamped_documents() {
    let dir = temp_dir("runtime-commands");
    let out_dir = dir.join("dev").display().to_string();
    let cases: [(&str, Vec<&str>, i32); 9] = [
        ("dev", vec!["dev", "token", "--out", &out_dir], 0),
        (
            "aws",
            [
                &["aws", "policy", "--policy", XFINITY][..],
                &MOBILE,
                &["--region", "us-east-1", "--account", "123456789012"],
            ]
            .concat(),
            0,
        ),
        ("gateway", vec!["gateway", "--cert", "c.pem"], 2),
        (
            "service",
            vec!["service", "--sid", "s", "--cert", "c.pem"],
            2,
        ),
        (
            "mobile",
            vec![
                "mobile", "--pid", "P", "--aid", "A", "--jti", "J", "--cert", "c.pem", "get",
                "light",
            ],
            2,
        ),
        ("demo", vec!["demo", "--policy", "missing.policy"], 2),
        ("bench", vec!["bench"], 2),
        ("serve", vec!["serve", "--policy", "missing.policy"], 2),
        ("authz", vec!["authz", "--policy", "missing.policy"], 2),
    ];
    for (name, args, code) in cases {
        let out = run_in(
            crate_root(),
            &[&["--format", "json"][..], &args[..]].concat(),
        );
        assert_eq!(out.code, code, "{name}: {}{}", out.stdout, out.stderr);
        let documents = stamped(&out, Some(name));
        if code == 2 {
            let error = &documents.last().expect("a document")["error"];
            assert!(error["kind"].is_string(), "{name}: {error}");
            assert!(error["message"].is_string(), "{name}: {error}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A command line clap rejects is a JSON error document on stdout (exit 2), with the
/// subcommand when one was recognised; `--help` stays text.
#[test]
fn usage_errors_are_json_documents() {
    let unknown = run(&["--format", "json", "chek"]);
    assert_eq!(unknown.code, 2);
    let documents = stamped(&unknown, None);
    snapshot("json_usage_error", &documents, "");
    assert_eq!(unknown.stderr, "", "nothing on stderr in JSON mode");

    let missing = run(&["decide", "--format=json", "--policy"]);
    assert_eq!(missing.code, 2);
    let error = &stamped(&missing, Some("decide"))[0]["error"];
    assert_eq!(error["kind"], "usage");
    assert!(
        error["message"].as_str().unwrap().contains("--policy"),
        "{error}"
    );

    let text = run(&["chek"]);
    assert_eq!(text.code, 2);
    assert!(text.stdout.is_empty());
    assert!(text.stderr.starts_with("error: unrecognized subcommand"));

    let help = run(&["--format", "json", "check", "--help"]);
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("Usage: topicguard check"),
        "{}",
        help.stdout
    );
}

/// Verdicts read the same in every command: `allowed`, `explicit-deny`, `implicit-deny`;
/// a decision says whether the publish was retained.
#[test]
fn verdict_words_and_the_retain_flag_are_the_same_everywhere() {
    let decide = |extra: &[&str]| {
        let args = [
            &["--format", "json", "decide", "--policy", XFINITY][..],
            &MOBILE,
            extra,
        ]
        .concat();
        let out = run(&args);
        stamped(&out, Some("decide")).remove(0)
    };
    let topic = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1";
    let plain = decide(&["publish", topic]);
    assert_eq!(plain["decision"]["verdict"], "allowed");
    assert_eq!(plain["retain"], false);
    let retained = decide(&["publish", "--retain", topic]);
    assert_eq!(retained["decision"]["verdict"], "implicit-deny");
    assert_eq!(retained["retain"], true);
    let connect = decide(&["connect"]);
    assert_eq!(connect["retain"], false);

    let tested = run(&["--format", "json", "test", "policies/xfinity.test.toml"]);
    let document = stamped(&tested, Some("test")).remove(0);
    let words = ["allowed", "explicit-deny", "implicit-deny"];
    for file in document["files"].as_array().expect("files") {
        for case in file["results"].as_array().expect("results") {
            let got = case["got"].as_str().expect("got");
            assert!(words.contains(&got), "{got}");
        }
    }
}

/// `--color always` colours the reports even when piped; `never` and `NO_COLOR` (with
/// `auto`) do not; the flag wins over the environment.
#[test]
fn color_follows_the_flag_and_no_color() {
    let dir = temp_dir("color");
    std::fs::write(dir.join("bad.policy"), "allow any publsh \"a\"\n").expect("write");
    let escape = "\u{1b}[";
    let piped = run_in(&dir, &["check", "bad.policy"]);
    assert_eq!(piped.code, 2);
    assert!(!piped.stderr.contains(escape), "auto on a pipe: no colour");
    let always = run_in(&dir, &["check", "--color", "always", "bad.policy"]);
    assert!(always.stderr.contains(escape), "{}", always.stderr);
    let never = run_in(&dir, &["--color=never", "check", "bad.policy"]);
    assert!(!never.stderr.contains(escape));
    let no_color = command(&dir, &["check", "--color", "always", "bad.policy"])
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    assert!(
        String::from_utf8_lossy(&no_color.stderr).contains(escape),
        "--color always wins over NO_COLOR"
    );
    let clap_error = run_in(&dir, &["--color", "always", "chek"]);
    assert!(clap_error.stderr.contains(escape), "{}", clap_error.stderr);
    let bad_choice = run_in(&dir, &["--color", "sometimes", "check", "bad.policy"]);
    assert_eq!(bad_choice.code, 2);
    assert!(
        bad_choice.stderr.contains("sometimes"),
        "{}",
        bad_choice.stderr
    );
}

/// `decide --batch`: one decision per line, in order, with its line number; a bad line
/// is an error document for that line and the rest still run; exit = the worst line.
/// A credential line is verified with the command line's anchors: a token signed by
/// another key is an error line, never a decision.
#[test]
fn decide_batch_answers_every_line() {
    let dir = temp_dir("batch");
    let ours = dir.join("ours").display().to_string();
    let forged = dir.join("forged").display().to_string();
    for out in [&ours, &forged] {
        let made = run(&["dev", "token", "--out", out]);
        assert_eq!(made.code, 0, "{}", made.stderr);
    }
    let trust = format!("idp={ours}/jwks.json");
    let topic = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1";
    let asserted = r#""identity":"mobile","attrs":{"pid":"P1","aid":"A1","jti":"J1"}"#;
    let input = [
        format!(r#"{{{asserted},"action":"publish","topic":"{topic}"}}"#),
        format!(r#"{{{asserted},"action":"publish","topic":"{topic}","retain":true}}"#),
        "not json".to_string(),
        String::new(),
        format!(r#"{{"jwt":"{ours}/token.jwt","action":"connect"}}"#),
        format!(r#"{{"jwt":"{forged}/token.jwt","action":"connect"}}"#),
        format!(r#"{{{asserted},"action":"connect","retain":true}}"#),
        format!(r#"{{{asserted},"action":"subscribe"}}"#),
        r#"{"jwt":"-","action":"connect"}"#.to_string(),
        format!(r#"{{{asserted},"action":"connect","extra":1}}"#),
        "\u{ff}".to_string(),
        r#"{"cert":"/dev/zero","action":"connect"}"#.to_string(),
    ]
    .join("\n");
    let mut bytes = input.into_bytes();
    bytes.extend_from_slice(b"\n\xff\xfe\n");
    bytes.extend_from_slice(format!("{{{asserted},\"action\":\"connect\"}}\n").as_bytes());
    let out = run_with_stdin(
        &["decide", "--policy", XFINITY, "--batch", "--trust", &trust],
        &bytes,
    );
    assert_eq!(out.code, 2, "a bad line makes the exit 2: {}", out.stderr);
    let documents = stamped(&out, Some("decide"));
    let lines: Vec<u64> = documents
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        lines,
        [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
        "the blank line 4 is skipped"
    );
    assert_eq!(out.stdout.lines().count(), documents.len(), "one line each");
    let verdict = |i: usize| {
        documents[i]["decision"]["verdict"]
            .as_str()
            .unwrap_or("error")
    };
    assert_eq!(verdict(0), "allowed");
    assert_eq!(documents[0]["retain"], false);
    assert_eq!(verdict(1), "implicit-deny");
    assert_eq!(documents[1]["retain"], true);
    assert_eq!(verdict(3), "allowed", "the verified token connects");
    assert_eq!(
        verdict(12),
        "allowed",
        "lines after bad ones are still decided"
    );
    assert_eq!(documents[3]["identity"], "mobile");
    for (i, needle) in [
        (2, "not a request"),
        (4, "signature does not verify"),
        (5, "publish only"),
        (6, "needs a `topic`"),
        (7, "stdin"),
        (8, "extra"),
        (9, "not a request"),
        (10, "not a regular file"),
        (11, "not valid UTF-8"),
    ] {
        let message = documents[i]["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains(needle),
            "line {}: {}",
            lines[i],
            documents[i]
        );
    }
    let denied_only = run_with_stdin(
        &["decide", "--policy", XFINITY, "--batch"],
        format!("{{{asserted},\"action\":\"publish\",\"topic\":\"{topic}\",\"retain\":true}}\n")
            .as_bytes(),
    );
    assert_eq!(denied_only.code, 1, "worst of the lines: a deny");
    let empty = run_with_stdin(&["decide", "--policy", XFINITY, "--batch"], b"");
    assert_eq!((empty.code, empty.stdout.as_str()), (0, ""));
    let both = run(&["decide", "--policy", XFINITY, "--batch", "connect"]);
    assert_eq!(both.code, 2, "--batch takes no request on the command line");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A non-UTF-8 policy or test file names the file:line:col of its first bad byte.
#[test]
fn non_utf8_input_is_located() {
    let dir = temp_dir("utf8");
    std::fs::write(
        dir.join("u.policy"),
        b"allow any connect\n# caf\xc3\xa9\nallow any publish \"a\xff\"\n",
    )
    .expect("write");
    let out = run_in(&dir, &["check", "u.policy"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("u.policy:3:21"), "{}", out.stderr);
    let json = run_in(&dir, &["--format", "json", "check", "u.policy"]);
    let message = stamped(&json, Some("check"))[0]["files"][0]["error"]["message"].clone();
    assert!(
        message.as_str().unwrap().starts_with("u.policy:3:21:"),
        "{message}"
    );
    std::fs::write(dir.join("t.test.toml"), b"policy = \"u.policy\"\n\xc3(\n").expect("write");
    let test = run_in(&dir, &["test", "t.test.toml"]);
    assert_eq!(test.code, 2);
    assert!(test.stderr.contains("t.test.toml:2:1"), "{}", test.stderr);
}

/// Files left under a private TMPDIR (the demo's directory must be gone).
fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `demo` runs from a directory with no policy in it (its policy is built in) and
/// removes its keys when it ends; a policy that does not load is a readable error
/// (exit 2), never a debug dump, and leaves nothing behind either.
#[test]
fn demo_runs_from_anywhere_and_cleans_up() {
    let cwd = temp_dir("demo-cwd");
    let tmp = temp_dir("demo-tmp");
    let demo = |args: &[&str]| {
        finish(
            command(&cwd, args)
                .env("TMPDIR", &tmp)
                .output()
                .expect("runs"),
        )
    };
    let ok = demo(&["demo"]);
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("ALLOWED by "), "{}", ok.stdout);
    assert_eq!(
        leftovers(&tmp),
        Vec::<String>::new(),
        "the keys are removed"
    );

    std::fs::write(cwd.join("bad.policy"), "allow any publsh \"a\"\n").expect("write");
    let bad = demo(&["demo", "--policy", "bad.policy"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr
            .starts_with("error: the demo cannot start: policy bad.policy: "),
        "{}",
        bad.stderr
    );
    assert!(
        !bad.stderr.contains("Invalid("),
        "no debug dump: {}",
        bad.stderr
    );
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&cwd);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Ctrl-C (SIGINT) in the middle of the demo stops it with a readable error (exit 2) and
/// removes its keys.
#[test]
fn an_interrupted_demo_removes_its_keys() {
    use std::io::BufRead;
    let tmp = temp_dir("demo-int");
    let mut child = command(crate_root(), &["demo"])
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().take(200) {
        let line = line.expect("a line");
        let started = line.contains("broker: tcp://");
        seen.push(line);
        if started {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("broker: tcp://")),
        "the broker never started: {seen:?}"
    );
    assert_eq!(
        leftovers(&tmp).len(),
        1,
        "the demo's directory exists while it runs"
    );
    let signalled = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(signalled.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let output = child.wait_with_output().expect("the demo ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}\n{rest:?}");
    assert!(stderr.contains("interrupted by Ctrl-C"), "{stderr}");
    assert_eq!(
        leftovers(&tmp),
        Vec::<String>::new(),
        "the keys are removed"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `serve --format json` logs one JSON object per event on stderr (tracing's JSON format),
/// so a log shipper never parses text; the text format is unchanged without the flag.
#[test]
fn serve_logs_json_lines_in_json_mode() {
    use std::io::BufRead;
    let scratch = crate::scratch::Scratch::new("serve-json-logs");
    let config = scratch.write(
        "serve.toml",
        &format!(
            "policy = \"{}\"\n[[listener]]\nprotocol = \"tcp\"\nbind = \"127.0.0.1:0\"\n",
            crate_root().join(XFINITY).display()
        ),
    );
    let config = config.display().to_string();
    for json in [true, false] {
        let mut args = vec!["serve", "--config", &config];
        if json {
            args.splice(0..0, ["--format", "json"]);
        }
        let mut child = command(crate_root(), &args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let listening = loop {
            match rx.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(line) if line.contains("broker listening") => break line,
                Ok(_) => continue,
                Err(e) => {
                    let _ = child.kill();
                    panic!("no `broker listening` line within 30 s: {e}");
                }
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        let parsed = serde_json::from_str::<Value>(&listening);
        if json {
            let event = parsed.unwrap_or_else(|e| panic!("not JSON ({e}): {listening}"));
            assert_eq!(event["level"], "INFO", "{listening}");
            assert!(
                event["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("broker listening")),
                "{listening}"
            );
        } else {
            assert!(parsed.is_err(), "text mode logs text: {listening}");
        }
    }
}
