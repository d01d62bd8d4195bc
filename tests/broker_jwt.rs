//! JWT authentication at CONNECT with real clients: a dev token as the CONNECT password is
//! accepted; an expired token, one signed by another key, or no credential where the policy
//! has no anonymous identity is refused with the right CONNACK code; a connection ends when
//! its token's `exp` passes (5.0: DISCONNECT 0xA0, 3.1.1: closed).

use crate::broker_harness::{TestClient, connect_packet, test_config};
use crate::broker_tls::{MOBILE_ID, Pki, SecureBroker, mosquitto_run};
use serde_json::Value;
use std::time::{Duration, Instant};
use topicguard::Policy;
use topicguard::devcred::{self as dev, DevAlg, DevSigner};
use topicguard::mqtt::codec::{ProtocolVersion, ReasonCode};

fn pub_args<'a>(version: &'a str, password: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "-V",
        version,
        "-i",
        MOBILE_ID,
        "-t",
        "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1",
    ];
    args.extend(["-m", "on", "-q", "1", "-u", "mobile", "-P", password]);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_jwt_password_connects_and_bad_ones_are_refused() {
    let pki = Pki::generate("jwt");
    let broker = SecureBroker::start(&pki).await;
    let good = pki.token(3600);
    let expired = pki.token(-3600);
    let stranger = DevSigner::generate(DevAlg::ES256, "k1").expect("signer");
    let mut claims = dev::default_claims(dev::unix_now(), "J1");
    claims["pid"] = Value::from("P1");
    claims["aid"] = Value::from("A1");
    let forged = stranger.sign(&claims).expect("sign");
    for version in ["mqttv311", "mqttv5"] {
        let (code, out) =
            mosquitto_run("mosquitto_pub", broker.tcp, &pub_args(version, &good)).await;
        assert_eq!(code, 0, "{version} with a valid token: {out}");
        for bad in [&expired, &forged, &"not-a-jwt".to_string()] {
            let (code, out) =
                mosquitto_run("mosquitto_pub", broker.tcp, &pub_args(version, bad)).await;
            assert_ne!(code, 0, "{version} must refuse a bad token: {out}");
            let said = out.to_lowercase();
            assert!(
                said.contains("bad user name or password"),
                "{version}: {out}"
            );
        }
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_is_not_authorized_without_an_anonymous_identity() {
    let pki = Pki::generate("jwt-anon");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/xfinity.policy");
    let policy = Policy::load(path).expect("xfinity policy");
    let broker = SecureBroker::with(&pki, policy, test_config()).await;
    let args = ["-i", "dev-1", "-t", "dev/x", "-m", "x"];
    let (code, out) = mosquitto_run("mosquitto_pub", broker.tcp, &args).await;
    assert_ne!(code, 0);
    assert!(
        out.to_lowercase().contains("not authori"),
        "CONNACK 5: {out}"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_ends_when_the_token_expires() {
    let pki = Pki::generate("jwt-exp");
    let broker = SecureBroker::start(&pki).await;
    for (version, expected) in [
        (ProtocolVersion::V5, Some(ReasonCode(0xA0))),
        (ProtocolVersion::V311, None),
    ] {
        let mut connect = connect_packet(version, MOBILE_ID, Some("mobile"));
        connect.password = Some(pki.token(2).into_bytes().into());
        let started = Instant::now();
        let (mut client, ack) = TestClient::open(broker.tcp, connect).await;
        assert_eq!(ack.code, 0, "{version:?}: a token valid for 2 s connects");
        assert_eq!(client.expect_closed().await, expected, "{version:?}");
        let lived = started.elapsed();
        assert!(
            lived >= Duration::from_millis(900),
            "closed too early: {lived:?}"
        );
    }
    broker.stop().await;
}

/// `policies/building.policy`'s `tenant_app` and `operator` share one identity provider and
/// differ by audience: real tokens of one key connect as each (each then allowed its own
/// topics only), and a token for both audiences is refused as ambiguous (CONNACK 0x87).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_apps_and_operators_connect_with_tokens_of_one_identity_provider() {
    use std::collections::BTreeMap;
    use topicguard::devcred::policy as dev_policy;
    let pki = Pki::generate("jwt-building");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/building.policy");
    let policy = Policy::load(path).expect("building policy");
    let checked = policy.checked.clone();
    let broker = SecureBroker::with(&pki, policy, test_config()).await;
    let token_for = |name: &str, edit: &dyn Fn(&mut Value)| {
        let def = checked.identity(name).expect("identity").1;
        let attrs = dev_policy::sample_attributes(def, &BTreeMap::new()).expect("attributes");
        let mut claims = dev_policy::jwt_claims(def, &attrs, dev::unix_now()).expect("claims");
        edit(&mut claims);
        (pki.signer.sign(&claims).expect("sign"), attrs)
    };
    let publish = |client: String, token: String, topic: String| async move {
        let args = [
            "-V", "mqttv5", "-i", &client, "-u", "u", "-P", &token, "-t", &topic, "-m", "x", "-q",
            "1",
        ];
        mosquitto_run("mosquitto_pub", broker.tcp, &args).await
    };
    let (app, attrs) = token_for("tenant_app", &|_| {});
    let tenant = attrs["tenant"].clone();
    let command = format!("bld/building1/{tenant}/f1/thermo-1/cmd/setpoint");
    let (code, out) = publish("app:user1:phone".into(), app.clone(), command.clone()).await;
    assert_eq!(
        code, 0,
        "tenant_app publishes a command to its tenant: {out}"
    );
    assert!(!out.contains("Not authorized"), "{out}");
    let notice = "bld/building1/public/notices/n1".to_string();
    let (_, out) = publish("app:user1:phone".into(), app, notice.clone()).await;
    assert!(
        out.contains("Not authorized"),
        "apps may not post notices: {out}"
    );
    let (ops, _) = token_for("operator", &|_| {});
    let (code, out) = publish("ops:building1:user1".into(), ops, notice).await;
    assert_eq!(code, 0, "operator posts a notice: {out}");
    assert!(!out.contains("Not authorized"), "{out}");
    let (both, _) = token_for("tenant_app", &|claims| {
        claims["aud"] = serde_json::json!(["building-app", "building-ops"]);
    });
    let (code, out) = publish("app:user1:phone".into(), both, command).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.to_lowercase().contains("not authori"),
        "ambiguous: {out}"
    );
    broker.stop().await;
}
