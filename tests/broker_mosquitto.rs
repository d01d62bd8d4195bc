//! The broker driven by Debian's `mosquitto_pub` / `mosquitto_sub` (MQTT 3.1.1 and 5.0):
//! the xfinity permission matrix, QoS 2, retained messages, wills, persistent sessions.
//! The client binaries are required: a missing one fails the test with a message naming
//! `scripts/install-test-deps.sh`.

use crate::broker_harness::*;
use std::time::Duration;

const MOBILE: &str = "xfi:P1_A1:clt:J1";
const MOBILE_USER: &str = "mobile:P1:A1:J1";
const REQUEST: &str = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1";
const RESPONSE: &str = "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/r1/success";
const RESPONSES: &str = "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/+/success";
const OTHER_TENANT: &str = "c/xfi/P2_A2/lights/xfi:P1_A1:clt:J1/r1";
const GATEWAY: &str = "iot:P1_A1:adp:xhf:0f8fad5b-d9cb-469f-a165-70867728950e";
const GATEWAY_USER: &str = "gateway:P1:A1:0f8fad5b-d9cb-469f-a165-70867728950e";
const PRESENCE: &str =
    "c/iot/P1_A1/iot:P1_A1:adp:xhf:0f8fad5b-d9cb-469f-a165-70867728950e/presence";

const VERSIONS: [&str; 2] = ["mqttv311", "mqttv5"];

fn mobile_pub(
    version: &'static str,
    topic: &'static str,
    extra: &[&'static str],
) -> Vec<&'static str> {
    let mut args = vec![
        "-V",
        version,
        "-q",
        "1",
        "-i",
        MOBILE,
        "-u",
        MOBILE_USER,
        "-t",
        topic,
        "-m",
        "on",
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reaches_the_service_and_the_response_the_app() {
    let broker = TestBroker::start().await;
    for version in VERSIONS {
        let service = spawn_sub(
            &broker,
            &[
                "-V",
                version,
                "-i",
                "svc:lights:1",
                "-u",
                "service:lights",
                "-t",
                "c/+/+/lights/+/+",
                "-q",
                "1",
                "-C",
                "1",
                "-v",
            ],
        );
        let request = mobile_pub(version, REQUEST, &[]);
        let (out, err) = publish_until_received(&broker, service, &[&request]).await;
        assert_eq!(out.trim(), format!("{REQUEST} on"), "{version}: {err}");

        let app = spawn_sub(
            &broker,
            &[
                "-V",
                version,
                "-i",
                MOBILE,
                "-u",
                MOBILE_USER,
                "-t",
                RESPONSES,
                "-q",
                "1",
                "-C",
                "1",
                "-v",
            ],
        );
        let response = [
            "-V",
            version,
            "-q",
            "1",
            "-i",
            "svc:lights:1",
            "-u",
            "service:lights",
            "-t",
            RESPONSE,
            "-m",
            "done",
        ];
        let (out, err) = publish_until_received(&broker, app, &[&response]).await;
        assert_eq!(out.trim(), format!("{RESPONSE} done"), "{version}: {err}");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_publish_is_refused_and_never_delivered() {
    let broker = TestBroker::start().await;
    for version in VERSIONS {
        let (ok, out, err) = run_client(
            "mosquitto_pub",
            &broker,
            &[&["-d"], &mobile_pub(version, OTHER_TENANT, &[])[..]].concat(),
        )
        .await;
        assert!(ok, "{out}{err}");
        match version {
            "mqttv5" => assert!(out.contains("received PUBACK (Mid: 1, RC:135)"), "{out}"),
            _ => assert!(out.contains("received PUBACK (Mid: 1, RC:0)"), "{out}"),
        }
        // A service subscribed to everything for lights must see the allowed marker first:
        // had the denied message been routed, it would have arrived before it.
        let service = spawn_sub(
            &broker,
            &[
                "-V",
                version,
                "-i",
                "svc:lights:2",
                "-u",
                "service:lights",
                "-t",
                "c/+/+/lights/+/+",
                "-q",
                "1",
                "-C",
                "1",
                "-v",
            ],
        );
        let denied = mobile_pub(version, OTHER_TENANT, &[]);
        let marker = mobile_pub(version, REQUEST, &[]);
        let (out, err) = publish_until_received(&broker, service, &[&denied, &marker]).await;
        assert_eq!(out.trim(), format!("{REQUEST} on"), "{version}: {err}");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_outside_the_rights_get_a_failure_code_per_filter() {
    let broker = TestBroker::start().await;
    for (version, failure) in [("mqttv311", "128"), ("mqttv5", "135")] {
        let (ok, out, err) = run_client(
            "mosquitto_sub",
            &broker,
            &[
                "-V",
                version,
                "-d",
                "-E",
                "-i",
                MOBILE,
                "-u",
                MOBILE_USER,
                "-t",
                "c/xfi/#",
                "-t",
                RESPONSES,
                "-t",
                "$share/g/c/xfi/P2_A2/xfi:P1_A1:clt:J1/lights/+/success",
                "-t",
                &format!("$share/g/{RESPONSES}"),
                "-t",
                "c/iot/P1_A1/+/presence",
                "-q",
                "1",
            ],
        )
        .await;
        assert!(ok, "{out}{err}");
        let expected = format!("Subscribed (mid: 1): {failure}, 1, {failure}, 1, 1");
        assert!(
            out.contains(&expected),
            "{version}: expected `{expected}` in\n{out}"
        );
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_is_delivered_exactly_once_end_to_end() {
    let broker = TestBroker::start().await;
    for version in VERSIONS {
        let service = spawn_sub(
            &broker,
            &[
                "-V",
                version,
                "-d",
                "-i",
                "svc:lights:3",
                "-u",
                "service:lights",
                "-t",
                "c/+/+/lights/+/+",
                "-q",
                "2",
                "-C",
                "1",
            ],
        );
        let request = [
            "-V",
            version,
            "-d",
            "-q",
            "2",
            "-i",
            MOBILE,
            "-u",
            MOBILE_USER,
            "-t",
            REQUEST,
            "-m",
            "q2",
        ];
        let (out, err) = publish_until_received(&broker, service, &[&request]).await;
        assert!(
            out.contains("received PUBLISH (d0, q2, r0"),
            "{version}: {out}{err}"
        );
        assert!(
            out.contains("sending PUBREC") && out.contains("received PUBREL"),
            "{out}"
        );
        assert!(out.contains("sending PUBCOMP"), "{out}");
        let (ok, out, err) = run_client("mosquitto_pub", &broker, &request).await;
        assert!(ok && out.contains("received PUBCOMP"), "{out}{err}");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_need_retain_and_are_receive_checked_on_delivery() {
    let broker = TestBroker::start().await;
    mosquitto_pub(
        &broker,
        &[
            "-q",
            "1",
            "-r",
            "-i",
            GATEWAY,
            "-u",
            GATEWAY_USER,
            "-t",
            PRESENCE,
            "-m",
            "online",
        ],
    )
    .await;
    let p9 = "c/iot/P9_A9/iot:P9_A9:adp:xhf:7c9e6679-7425-40de-944b-e07fc1f90ae7/presence";
    mosquitto_pub(
        &broker,
        &[
            "-q",
            "1",
            "-r",
            "-i",
            "iot:P9_A9:adp:xhf:7c9e6679-7425-40de-944b-e07fc1f90ae7",
            "-u",
            "gateway:P9:A9:7c9e6679-7425-40de-944b-e07fc1f90ae7",
            "-t",
            p9,
            "-m",
            "secret",
        ],
    )
    .await;
    // A mobile may publish its request but not retain it.
    let (ok, out, _) = run_client(
        "mosquitto_pub",
        &broker,
        &mobile_pub("mqttv5", REQUEST, &["-r", "-d"]),
    )
    .await;
    assert!(ok && out.contains("RC:135"), "{out}");

    for version in VERSIONS {
        let (_, out, err) = run_client(
            "mosquitto_sub",
            &broker,
            &[
                "-V",
                version,
                "-i",
                MOBILE,
                "-u",
                MOBILE_USER,
                "-t",
                "c/iot/P1_A1/+/presence",
                "--retained-only",
                "-C",
                "1",
                "-v",
                "-W",
                "5",
            ],
        )
        .await;
        assert_eq!(out.trim(), format!("{PRESENCE} online"), "{version}: {err}");
        // The watcher's wide subscription is granted (filtered mode), but P9's retained
        // presence is denied to it at delivery.
        let (_, out, err) = run_client(
            "mosquitto_sub",
            &broker,
            &[
                "-V", version, "-i", "watch-1", "-u", "watcher", "-t", "c/iot/#", "-v", "-W", "2",
            ],
        )
        .await;
        assert_eq!(out.trim(), format!("{PRESENCE} online"), "{version}: {err}");
        let (_, out, _) = run_client(
            "mosquitto_sub",
            &broker,
            &[
                "-V",
                version,
                "-i",
                "svc:lights:4",
                "-u",
                "service:lights",
                "-t",
                "c/+/+/lights/+/+",
                "--retained-only",
                "-v",
                "-W",
                "1",
            ],
        )
        .await;
        assert_eq!(out.trim(), "", "a refused retained publish was stored");
    }
    broker.stop().await;
}

fn gateway_with_will(version: &'static str, extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec![
        "-V",
        version,
        "-d",
        "-i",
        GATEWAY,
        "-u",
        GATEWAY_USER,
        "-t",
        "c/iot/P1_A1/iot:P1_A1:adp:xhf:0f8fad5b-d9cb-469f-a165-70867728950e/lights/+/success",
        "--will-topic",
        PRESENCE,
        "--will-payload",
        "offline",
        "--will-retain",
        "--will-qos",
        "1",
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_published_on_ungraceful_loss_only() {
    let broker = TestBroker::start().await;
    for version in VERSIONS {
        // Graceful: the gateway subscribes, then disconnects normally. No will.
        let (ok, out, err) = run_client(
            "mosquitto_sub",
            &broker,
            &gateway_with_will(version, &["-E"]),
        )
        .await;
        assert!(ok && out.contains("received SUBACK"), "{out}{err}");
        // Ungraceful: killed while connected. The will (retained) is published.
        let mut gateway = spawn_sub_line_buffered(&broker, &gateway_with_will(version, &[]));
        wait_for_line(&mut gateway, "received SUBACK").await;
        gateway.start_kill().expect("kill the gateway client");
        let _ = gateway.wait().await;
        let (_, out, err) = run_client(
            "mosquitto_sub",
            &broker,
            &[
                "-V",
                version,
                "-i",
                MOBILE,
                "-u",
                MOBILE_USER,
                "-t",
                "c/iot/P1_A1/+/presence",
                "-C",
                "1",
                "-v",
                "-W",
                "5",
            ],
        )
        .await;
        assert_eq!(
            out.trim(),
            format!("{PRESENCE} offline"),
            "{version}: {err}"
        );
        // Clear it for the next round and prove the graceful case left nothing behind.
        mosquitto_pub(
            &broker,
            &[
                "-q",
                "1",
                "-r",
                "-i",
                GATEWAY,
                "-u",
                GATEWAY_USER,
                "-t",
                PRESENCE,
                "-n",
            ],
        )
        .await;
    }
    let (_, out, _) = run_client(
        "mosquitto_sub",
        &broker,
        &[
            "-i",
            MOBILE,
            "-u",
            MOBILE_USER,
            "-t",
            "c/iot/P1_A1/+/presence",
            "-v",
            "-W",
            "1",
        ],
    )
    .await;
    assert_eq!(out.trim(), "");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_outside_the_publish_rights_refuses_the_connection() {
    let broker = TestBroker::start().await;
    for (version, message) in [("mqttv311", "not authorised"), ("mqttv5", "Not authorized")] {
        let (ok, out, err) = run_client(
            "mosquitto_sub",
            &broker,
            &[
                "-V",
                version,
                "-i",
                MOBILE,
                "-u",
                MOBILE_USER,
                "-t",
                RESPONSES,
                "-E",
                "--will-topic",
                OTHER_TENANT,
                "--will-payload",
                "x",
            ],
        )
        .await;
        assert!(!ok, "connected despite a forbidden will: {out}");
        assert!(err.contains(message), "{version}: {err}");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_sessions_deliver_queued_messages_after_reconnect() {
    let broker = TestBroker::start().await;
    for (version, persist) in [("mqttv311", ["-c", "-c"]), ("mqttv5", ["-c", "-x"])] {
        let mut session = vec![
            "-V",
            version,
            "-i",
            "svc:lights:9",
            "-u",
            "service:lights",
            "-t",
            "c/+/+/lights/+/+",
            "-q",
            "1",
        ];
        session.push(persist[0]);
        if persist[1] == "-x" {
            session.extend_from_slice(&["-x", "60"]);
        }
        // Subscribe, then leave.
        let (ok, out, err) =
            run_client("mosquitto_sub", &broker, &[&session[..], &["-E"]].concat()).await;
        assert!(ok, "{out}{err}");
        for n in ["1", "2", "3"] {
            let topic = format!("c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/q{n}");
            mosquitto_pub(
                &broker,
                &[
                    "-V",
                    version,
                    "-q",
                    "1",
                    "-i",
                    MOBILE,
                    "-u",
                    MOBILE_USER,
                    "-t",
                    &topic,
                    "-m",
                    n,
                ],
            )
            .await;
        }
        let (_, out, err) = run_client(
            "mosquitto_sub",
            &broker,
            &[&session[..], &["-C", "3", "-v", "-W", "5"]].concat(),
        )
        .await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{version}: {out}{err}");
        for (line, n) in lines.iter().zip(["1", "2", "3"]) {
            assert!(line.ends_with(&format!("/q{n} {n}")), "{line}");
        }
        // A clean session queues nothing.
        let clean = [
            "-V",
            version,
            "-i",
            "svc:lights:8",
            "-u",
            "service:lights",
            "-t",
            "c/+/+/lights/+/+",
            "-q",
            "1",
        ];
        let (ok, _, _) =
            run_client("mosquitto_sub", &broker, &[&clean[..], &["-E"]].concat()).await;
        assert!(ok);
        mosquitto_pub(&broker, &mobile_pub(version, REQUEST, &[])).await;
        let (_, out, _) = run_client(
            "mosquitto_sub",
            &broker,
            &[&clean[..], &["-v", "-W", "1"]].concat(),
        )
        .await;
        assert_eq!(out.trim(), "", "{version}: a clean session kept messages");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    broker.stop().await;
}

/// MQTT client ids may hold spaces and any UTF-8: standard clients connect under a free
/// client template (`dev-{+cid}`) with such ids and exchange messages. What would shape a
/// topic (`/`, `+`, `#`, a leading `$` in a captured part) is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ids_with_spaces_and_utf8_connect_under_a_free_template() {
    let broker = TestBroker::start().await;
    for (version, refusal) in [("mqttv311", "not authorised"), ("mqttv5", "Not authorized")] {
        let sub = spawn_sub(
            &broker,
            &[
                "-V",
                version,
                "-i",
                "dev-my phone ü",
                "-t",
                "dev/news",
                "-q",
                "1",
                "-C",
                "1",
                "-v",
            ],
        );
        let publish = [
            "-V",
            version,
            "-q",
            "1",
            "-i",
            "dev-kitchen radio 📻",
            "-t",
            "dev/news",
            "-m",
            "grüß dich",
        ];
        let (out, err) = publish_until_received(&broker, sub, &[&publish]).await;
        assert_eq!(out.trim(), "dev/news grüß dich", "{version}: {err}");
        for bad in ["dev-a/b", "dev-a+b", "dev-#", "dev-a\tb"] {
            let (ok, out, err) = run_client(
                "mosquitto_pub",
                &broker,
                &["-V", version, "-i", bad, "-t", "dev/x", "-m", "x"],
            )
            .await;
            assert!(!ok, "{version}: `{bad}` connected: {out}");
            // A control character is refused by the codec already (malformed packet).
            if !bad.contains('\t') {
                assert!(err.contains(refusal), "{version} `{bad}`: {err}");
            }
        }
    }
    broker.stop().await;
}
