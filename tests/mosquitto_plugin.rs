//! Debian's mosquitto 2.0 with the topicguard plugin (`libtopicguard_mosquitto.so`, built in
//! release mode by the harness), driven by mosquitto_pub / mosquitto_sub with credentials from
//! `topicguard dev token --policy` and `topicguard dev pki --policy` for xfinity's trust labels
//! (`plugin_opt_trust`, `plugin_opt_trust_crl`), on loopback: the xfinity request/response
//! flow, cross-account publish and subscribe denied, refused credentials, per-delivery receive
//! checks under a `#` subscription (an unlabelled identity: the default anchors), fail-closed
//! start, option errors that stop the start, SIGHUP reloads (broken: old policy kept; changed:
//! applied to connected clients), certificate identities over TLS, last wills, and a JWT
//! expiring during the session. [`anchors`]: each identity binds only with its own label's
//! anchors (sibling CAs, another label's CA or key refused) and trust options.

mod anchors;
mod creds;
mod harness;

use creds::*;
use harness::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The app that waits for responses.
const MOBILE: &str = "xfi:P1_A1:clt:J1";
/// Another app of the same account, sending requests (one connection per client id).
const REQUESTER: &str = "xfi:P1_A1:clt:J2";
const REQUEST: &str = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J2/r1";
const RESPONSE: &str = "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/r1/success";
const RESPONSES: &str = "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/+/success";
const OTHER: &str = "xfi:P2_A2:clt:J2";
const GATEWAY: &str = "iot:P1_A1:adp:xhf:550e8400-e29b-41d4-a716-446655440000";
const PRESENCE: &str =
    "c/iot/P1_A1/iot:P1_A1:adp:xhf:550e8400-e29b-41d4-a716-446655440000/presence";
/// A gateway request: also matches the service's `c/+/+/lights/+/+` subscription.
const GATEWAY_REQUEST: &str =
    "c/iot/P1_A1/lights/iot:P1_A1:adp:xhf:550e8400-e29b-41d4-a716-446655440000/g1";
const SERVICE_FILTER: &str = "c/+/+/lights/+/+";

fn service_sub(broker: &Broker, creds: &Creds) -> Sub {
    let sub = Sub::start(
        broker,
        &creds.service,
        "svc:lights:1",
        &["-q", "1", "-t", SERVICE_FILTER],
    );
    sub.sync(broker, &creds.requester, REQUESTER, REQUEST, "ready");
    sub
}

#[test]
fn requests_reach_the_service_and_responses_the_app() {
    let creds = Creds::new();
    let broker = Broker::start(&creds.setup(&xfinity()));
    let service = service_sub(&broker, &creds);
    let app = Sub::start(
        &broker,
        &creds.mobile,
        MOBILE,
        &["-V", "mqttv5", "-q", "1", "-t", RESPONSES],
    );
    app.sync(&broker, &creds.service, "svc:lights:2", RESPONSE, "done");
    assert!(service.lines().contains(&format!("{REQUEST} ready")));
    let log = broker.log();
    assert!(
        log.contains("topicguard: client `xfi:P1_A1:clt:J1` admitted as identity `mobile` (JWT)"),
        "{log}"
    );
    assert!(
        log.contains("admitted as identity `service` (client certificate)"),
        "{log}"
    );
}

#[test]
fn cross_account_publish_and_subscribe_are_denied() {
    let creds = Creds::new();
    let broker = Broker::start(&creds.setup(&xfinity()));
    let service = service_sub(&broker, &creds);
    let into_p1 = "c/xfi/P1_A1/lights/xfi:P2_A2:clt:J2/r1";
    let v5 = publish(
        &broker,
        &creds.other,
        OTHER,
        &["-V", "mqttv5", "-q", "1", "-t", into_p1, "-m", "cross"],
    );
    assert!(v5.out.contains("Not authorized"), "{}", v5.out);
    publish(
        &broker,
        &creds.other,
        OTHER,
        &["-q", "1", "-t", into_p1, "-m", "cross"],
    );
    service.sync(&broker, &creds.requester, REQUESTER, REQUEST, "after");
    assert!(
        !service.lines().iter().any(|l| l.contains("cross")),
        "{:?}",
        service.lines()
    );
    for version in ["mqttv311", "mqttv5"] {
        for filter in [RESPONSES, "c/xfi/P1_A1/#", "#", "$share/g/c/xfi/P1_A1/#"] {
            let sub = run(
                "mosquitto_sub",
                &broker,
                &creds.other,
                OTHER,
                &["-V", version, "-t", filter, "-W", "3"],
            );
            assert!(
                sub.out.contains("All subscription requests were denied"),
                "{version} {filter}: {}",
                sub.out
            );
        }
    }
}

#[test]
fn forged_expired_garbage_and_mismatched_credentials_are_refused() {
    let creds = Creds::new();
    let broker = Broker::start(&creds.setup(&xfinity()));
    let expired = creds.extra("expired", &[&format!("exp={}", now() - 600)]);
    let cases = [
        (
            "signed by a key outside the JWKS",
            creds.outsider(&[]),
            MOBILE,
        ),
        ("expired", expired, MOBILE),
        ("not a JWT", Login::Jwt("garbage".into()), MOBILE),
        (
            "another client id than the token's",
            creds.mobile.clone(),
            "xfi:P1_A1:clt:J9",
        ),
        (
            "a client id with a wildcard",
            creds.mobile.clone(),
            "xfi:P1_A1:clt:#",
        ),
    ];
    for (what, login, client_id) in cases {
        for (version, code) in [("mqttv311", 5), ("mqttv5", 135)] {
            let ran = run(
                "mosquitto_pub",
                &broker,
                &login,
                client_id,
                &["-V", version, "-t", REQUEST, "-m", "x"],
            );
            assert_eq!(ran.code, Some(code), "{what} {version}: {}", ran.out);
            assert!(
                ran.out.to_lowercase().contains("not authori"),
                "{what}: {}",
                ran.out
            );
        }
    }
    let log = broker.log();
    assert!(
        log.matches("topicguard: refusing client").count() >= 10,
        "{log}"
    );
    assert!(log.contains("does not match the template"), "{log}");
}

const FILTERED: &str = r##"
identity member from jwt {
    issuer "https://idp.example.com/"
    audience "iot-platform"
    algorithms ES256
    pid = claim "pid"
    aid = claim "aid"
    jti = claim "jti"
    subscriptions filtered
    client "xfi:{pid}_{aid}:clt:{jti}"
}

allow member connect
allow member publish, retain "t/{pid}/+"
allow member subscribe, receive "#"
deny member receive "t/+/secret"
"##;

#[test]
fn a_hash_subscription_is_granted_and_each_delivery_is_filtered_by_receive() {
    let creds = Creds::new();
    let policy = creds.dir.write("filtered.policy", FILTERED);
    // `member` has no trust label: the default anchors (`plugin_opt_jwks`) verify it.
    let mut setup = creds.setup(&policy);
    setup.trust.clear();
    setup.trust_crl.clear();
    setup.jwks = Some(creds.jwks.clone());
    let broker = Broker::start(&setup);
    let (publisher, id) = (&creds.requester, REQUESTER);
    publish(
        &broker,
        publisher,
        id,
        &["-q", "1", "-r", "-t", "t/P1/secret", "-m", "kept-secret"],
    );
    publish(
        &broker,
        publisher,
        id,
        &["-q", "1", "-r", "-t", "t/P1/status", "-m", "kept-status"],
    );
    let monitor = Sub::start(&broker, &creds.mobile, MOBILE, &["-q", "1", "-t", "#"]);
    monitor.sync(&broker, publisher, id, "t/P1/hello", "first");
    publish(
        &broker,
        publisher,
        id,
        &["-q", "1", "-t", "t/P1/secret", "-m", "live-secret"],
    );
    monitor.sync(&broker, publisher, id, "t/P1/hello", "last");
    let lines = monitor.lines();
    assert!(
        lines.contains(&"t/P1/status kept-status".to_string()),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("secret")), "{lines:?}");
    let log = broker.log();
    assert!(
        log.contains(
            "denied receive `t/P1/secret` for client `xfi:P1_A1:clt:J1`: explicitly denied"
        ),
        "{log}"
    );
}

#[test]
fn an_unloadable_policy_refuses_every_client_and_mosquitto_keeps_running() {
    let creds = Creds::new();
    let policy = creds.dir.write(
        "broken.policy",
        "allow mobile publish \"c/#\"\nnot a rule\n",
    );
    let mut broker = Broker::start(&creds.setup(&policy));
    let log = broker.wait_for_log("topicguard: cannot load the policy", 1);
    assert!(
        log.contains("broken.policy:2:"),
        "the diagnostic names the line: {log}"
    );
    for (login, id) in [(&creds.mobile, MOBILE), (&creds.gateway, GATEWAY)] {
        let ran = run(
            "mosquitto_pub",
            &broker,
            login,
            id,
            &["-t", REQUEST, "-m", "x"],
        );
        assert_eq!(ran.code, Some(5), "{}", ran.out);
    }
    assert!(broker.log().contains("no policy is loaded"));
    assert!(broker.is_running());
}

#[test]
fn a_mistyped_or_too_short_option_stops_mosquitto_at_start() {
    let creds = Creds::new();
    let mut setup = creds.setup(&xfinity());
    setup.extra = "plugin_opt_polcy /etc/site.policy\n".into();
    let log = Broker::refused(&setup);
    assert!(
        log.contains("topicguard: cannot start: unknown option `plugin_opt_polcy`"),
        "{log}"
    );
    // mosquitto 2.0 itself rejects option keys under three characters: hence `cafile`.
    setup.extra = format!("plugin_opt_ca {}\n", creds.pki("ca-devices.pem").display());
    let log = Broker::refused(&setup);
    assert!(log.contains("Invalid auth_opt_ config option"), "{log}");
}

#[test]
fn sighup_keeps_the_old_policy_on_error_and_applies_a_changed_one_to_connected_clients() {
    let creds = Creds::new();
    let original = std::fs::read_to_string(xfinity()).unwrap();
    let policy = creds.dir.write("site.policy", &original);
    let broker = Broker::start(&creds.setup(&policy));
    let service = service_sub(&broker, &creds);
    let app = Sub::start(
        &broker,
        &creds.mobile,
        MOBILE,
        &["-q", "1", "-t", RESPONSES],
    );
    app.sync(&broker, &creds.service, "svc:lights:2", RESPONSE, "before");

    // A half-written file: cut inside a rule's template (a cut inside a comment could
    // leave a valid policy).
    let cut = original
        .find("allow mobile publish \"")
        .expect("a mobile publish rule")
        + 25;
    std::fs::write(&policy, &original[..cut]).unwrap();
    broker.sighup();
    broker.wait_for_log("reload failed; the previous policy stays in force", 1);
    service.sync(
        &broker,
        &creds.requester,
        REQUESTER,
        REQUEST,
        "still-allowed",
    );

    // Mobiles lose their request rule and their response rule.
    let narrowed: String = original
        .lines()
        .filter(|l| {
            !(l.contains("allow mobile publish \"c/xfi/")
                || l.contains("allow mobile subscribe, receive \"c/xfi/"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(original.lines().count() - 2, narrowed.lines().count());
    std::fs::write(&policy, narrowed).unwrap();
    broker.sighup();
    broker.wait_for_log("site.policy reloaded", 1);
    let denied = publish(
        &broker,
        &creds.requester,
        REQUESTER,
        &["-V", "mqttv5", "-q", "1", "-t", REQUEST, "-m", "x"],
    );
    assert!(denied.out.contains("Not authorized"), "{}", denied.out);
    // The app connected before the reload: its deliveries now follow the new policy.
    publish(
        &broker,
        &creds.service,
        "svc:lights:2",
        &["-q", "1", "-t", RESPONSE, "-m", "after"],
    );
    broker.wait_for_log(
        "denied receive `c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/r1/success`",
        1,
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !app.lines().iter().any(|l| l.contains("after")),
        "{:?}",
        app.lines()
    );
    // The gateway's rules did not change.
    service.sync(&broker, &creds.gateway, GATEWAY, GATEWAY_REQUEST, "gw");
}

#[test]
fn sighup_verifies_connected_clients_again_and_drops_those_whose_key_was_rotated_out() {
    let creds = Creds::new();
    let broker = Broker::start(&creds.setup(&xfinity()));
    let service = service_sub(&broker, &creds);
    let mut app = Sub::start(
        &broker,
        &creds.mobile,
        MOBILE,
        &["-q", "1", "-t", RESPONSES],
    );
    app.sync(&broker, &creds.service, "svc:lights:2", RESPONSE, "before");
    // The JWKS loses the mobile app's key; the requester's key stays.
    let keys: Vec<Value> = read_keys(&creds.jwks)
        .into_iter()
        .filter(|key| key["kid"] != creds.mobile_kid.as_str())
        .collect();
    assert_eq!(
        keys.len(),
        2,
        "the requester's and the other account's keys remain"
    );
    std::fs::write(&creds.jwks, json!({ "keys": keys }).to_string()).unwrap();
    broker.sighup();
    broker.wait_for_log("xfinity.policy reloaded", 1);
    broker.wait_for_log(&format!("refusing client `{MOBILE}`"), 1);
    let deadline = std::time::Instant::now() + STEP;
    while app.is_running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !app.is_running(),
        "the app is still connected: {:?}",
        app.lines()
    );
    // Clients whose credentials still verify were admitted again and keep working.
    let again = "topicguard: client `svc:lights:1` admitted as identity `service`";
    assert_eq!(broker.log().matches(again).count(), 2, "{}", broker.log());
    service.sync(&broker, &creds.requester, REQUESTER, REQUEST, "after");
}

#[test]
fn certificate_clients_over_tls_bind_the_gateway_identity() {
    let creds = Creds::new();
    let broker = Broker::start(&creds.setup(&xfinity()));
    let app = Sub::start(
        &broker,
        &creds.mobile,
        MOBILE,
        &["-q", "1", "-t", "c/iot/P1_A1/+/presence"],
    );
    app.sync(&broker, &creds.gateway, GATEWAY, PRESENCE, "online");
    assert!(broker.log().contains(&format!(
        "client `{GATEWAY}` admitted as identity `gateway` (client certificate)"
    )));
    // The retained presence reaches a subscriber that comes later.
    publish(
        &broker,
        &creds.gateway,
        GATEWAY,
        &["-q", "1", "-r", "-t", PRESENCE, "-m", "online"],
    );
    drop(app);
    let later = run(
        "mosquitto_sub",
        &broker,
        &creds.mobile,
        MOBILE,
        &["-t", "c/iot/P1_A1/+/presence", "-C", "1", "-W", "5", "-v"],
    );
    assert_eq!(later.out.trim(), format!("{PRESENCE} online"));
    // The gateway's certificate with another installation's client id.
    let wrong_id = GATEWAY.replace("550e8400", "650e8400");
    let ran = run(
        "mosquitto_pub",
        &broker,
        &creds.gateway,
        &wrong_id,
        &["-t", PRESENCE, "-m", "x"],
    );
    assert_eq!(ran.code, Some(5), "{}", ran.out);
    // Another certificate identity may not publish the gateway's presence.
    let service = publish(
        &broker,
        &creds.service,
        "svc:lights:3",
        &["-V", "mqttv5", "-q", "1", "-t", PRESENCE, "-m", "x"],
    );
    assert!(service.out.contains("Not authorized"), "{}", service.out);
}

#[test]
fn a_will_is_published_only_where_its_client_may_publish() {
    let creds = Creds::new();
    let broker = Broker::start(&creds.setup(&xfinity()));
    let own = format!("c/iot/P1_A1/{GATEWAY}/lights/+/success");
    let app = Sub::start(
        &broker,
        &creds.mobile,
        MOBILE,
        &["-q", "1", "-t", "c/iot/P1_A1/+/presence"],
    );
    app.sync(&broker, &creds.gateway, GATEWAY, PRESENCE, "online");
    // The gateway connects with a will, subscribes, and dies without a DISCONNECT.
    let will = |topic: &str| {
        let suback = format!("Sending SUBACK to {GATEWAY}");
        let before = broker.log().matches(&suback).count();
        let args = [
            "-q",
            "1",
            "-t",
            &own,
            "--will-topic",
            topic,
            "--will-payload",
            "offline",
            "--will-qos",
            "1",
            "--will-retain",
        ];
        let mut gateway = Sub::start(&broker, &creds.gateway, GATEWAY, &args);
        broker.wait_for_log(&suback, before + 1);
        gateway.kill();
    };

    will(PRESENCE);
    assert!(
        app.wait_for(&format!("{PRESENCE} offline"), STEP),
        "{:?}\n{}",
        app.lines(),
        broker.log()
    );

    let foreign = PRESENCE.replace("P1_A1", "P2_A2");
    let observer = Sub::start(
        &broker,
        &creds.other,
        OTHER,
        &["-q", "1", "-t", "c/iot/P2_A2/+/presence"],
    );
    broker.wait_for_log(&format!("Sending SUBACK to {OTHER}"), 1);
    will(&foreign);
    broker.wait_for_log(&format!("denied publish (retained) `{foreign}`"), 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(observer.lines().is_empty(), "{:?}", observer.lines());
    drop(observer);
    // Nor was it retained: a new subscription gets nothing.
    let retained = run(
        "mosquitto_sub",
        &broker,
        &creds.other,
        OTHER,
        &["-t", "c/iot/P2_A2/+/presence", "-W", "2", "-v"],
    );
    assert!(!retained.out.contains("offline"), "{}", retained.out);
    assert!(!retained.out.contains("not authorised"), "{}", retained.out);
}

#[test]
fn a_client_whose_jwt_expires_is_disconnected() {
    let creds = Creds::new();
    let broker = Broker::start(&creds.setup(&xfinity()));
    let short = creds.extra("short", &["jti=J3", &format!("exp={}", now() + 3)]);
    let id = "xfi:P1_A1:clt:J3";
    let mut sub = Sub::start(
        &broker,
        &short,
        id,
        &[
            "-q",
            "1",
            "-t",
            "c/xfi/P1_A1/xfi:P1_A1:clt:J3/lights/+/success",
        ],
    );
    broker.wait_for_log(&format!("Sending SUBACK to {id}"), 1);
    broker.wait_for_log(&format!("topicguard: disconnecting client `{id}`"), 1);
    let deadline = std::time::Instant::now() + STEP;
    while sub.is_running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !sub.is_running(),
        "mosquitto_sub still connected: {:?}",
        sub.lines()
    );
    assert!(
        sub.lines().iter().any(|l| l.contains("not authorised")),
        "{:?}",
        sub.lines()
    );
}
