//! The broker driven by Python's paho-mqtt (MQTT 3.1.1 and 5.0): the scripts in
//! `tests/paho/` run against a broker on 127.0.0.1 (port 0, passed as `--port`) and
//! print one `ok`/`FAIL` line per case; a script exits 1 if any case failed. Without
//! paho-mqtt installed these tests fail, naming `scripts/install-test-deps.sh`.

use crate::broker_harness::TestBroker;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// Longest a whole script may run.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(90);

fn require_paho() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import paho.mqtt.client"])
        .output();
    match probe {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "python3 cannot import paho.mqtt ({}); run scripts/install-test-deps.sh",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => panic!("python3 is not runnable ({error}); run scripts/install-test-deps.sh"),
    }
}

/// Runs `tests/paho/<script>` against a fresh broker; returns its output.
pub async fn run_script(script: &str, protocol: &str) -> String {
    require_paho();
    let broker = TestBroker::start().await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/paho");
    let child = tokio::process::Command::new("python3")
        .arg(dir.join(script))
        .args(["--port", &broker.port(), "--protocol", protocol])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3");
    let output = tokio::time::timeout(SCRIPT_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!("{script} (MQTT {protocol}) did not finish in {SCRIPT_DEADLINE:?}")
        })
        .expect("wait for python3");
    broker.stop().await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} (MQTT {protocol}) failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// Asserts every named case ran and passed.
pub fn assert_cases(output: &str, cases: &[&str]) {
    for case in cases {
        assert!(
            output
                .lines()
                .any(|l| l.starts_with(&format!("ok   {case} "))),
            "case {case} did not pass:\n{output}"
        );
    }
    let summary = format!("{} passed, 0 failed", cases.len());
    assert!(output.contains(&summary), "expected `{summary}`:\n{output}");
}

const MATRIX: &[&str] = &[
    "mobile_publish",
    "mobile_subscribe",
    "gateway_publish",
    "gateway_subscribe",
    "request_and_response",
    "receive_filtering",
];

const DELIVERY: &[&str] = &[
    "qos1_and_qos2",
    "retained",
    "will",
    "will_outside_rights_is_refused",
];

#[tokio::test]
async fn paho_permission_matrix_mqtt_311() {
    assert_cases(&run_script("matrix.py", "311").await, MATRIX);
}

#[tokio::test]
async fn paho_permission_matrix_mqtt_5() {
    assert_cases(&run_script("matrix.py", "5").await, MATRIX);
}

#[tokio::test]
async fn paho_qos_retained_and_will_mqtt_311() {
    assert_cases(&run_script("delivery.py", "311").await, DELIVERY);
}

#[tokio::test]
async fn paho_qos_retained_and_will_mqtt_5() {
    assert_cases(&run_script("delivery.py", "5").await, DELIVERY);
}
