//! Each identity binds only with its own trust label's anchors, inside mosquitto: a
//! certificate from a sibling CA that mosquitto's own `cafile` trusts, a gateway-shaped
//! certificate from the `services` label's CA, and a token signed with another label's key
//! are refused, while each label's own credentials are admitted. A `plugin_opt_trust` or
//! `plugin_opt_trust_crl` line that is not `LABEL=FILE` with a valid label stops mosquitto at
//! start; a well-formed line naming an unusable file starts the plugin closed.

use super::creds::*;
use super::harness::*;
use super::{GATEWAY, MOBILE, PRESENCE, REQUEST, RESPONSE};

/// Connects over TLS with `login` as `client_id`, with MQTT 3.1.1 and 5.0: the handshake
/// succeeds (mosquitto's own `cafile` trusts the certificate) and the plugin refuses it.
fn assert_refused_over_tls(broker: &Broker, login: &Login, client_id: &str) {
    let connection = format!("on port {}.", broker.tls_port);
    let refusal = format!("refusing client `{client_id}`");
    let before = broker.log();
    for (version, code) in [("mqttv311", 5), ("mqttv5", 135)] {
        let ran = run(
            "mosquitto_pub",
            broker,
            login,
            client_id,
            &["-V", version, "-t", PRESENCE, "-m", "forged"],
        );
        assert_eq!(ran.code, Some(code), "{client_id} {version}: {}", ran.out);
    }
    let log = broker.log();
    let more = |needle: &str| log.matches(needle).count() - before.matches(needle).count();
    assert!(
        more(&connection) == 2 && !log.contains("OpenSSL Error"),
        "the TLS handshakes succeeded: {log}"
    );
    assert_eq!(more(&refusal), 2, "the plugin refused it: {log}");
}

#[test]
fn a_certificate_that_mosquitto_trusts_but_the_policys_anchors_do_not_is_refused() {
    let creds = Creds::new();
    // Sibling CAs for both labels: mosquitto's own `cafile` trusts them, the plugin's
    // `plugin_opt_trust` anchors do not.
    let sibling = creds.dir.path("sibling");
    policy_pki(&xfinity(), &sibling);
    let mut setup = creds.setup(&xfinity());
    setup.tls = Some((
        client_cas(&creds.dir, "sibling-cafile.pem", &sibling),
        sibling.join("server.pem"),
        sibling.join("server-key.pem"),
    ));
    let broker = Broker::start(&setup);
    let rogue = |name: &str| Login::Certificate {
        ca: sibling.join("server-ca.pem"),
        cert: sibling.join(format!("{name}.pem")),
        key: sibling.join(format!("{name}-key.pem")),
    };
    assert_refused_over_tls(&broker, &rogue("gateway"), GATEWAY);
    assert_refused_over_tls(&broker, &rogue("service"), "svc:lights:1");
}

/// The sibling-CA attack across labels: a gateway-shaped certificate issued by the CA of
/// the `services` label, which the plugin trusts, but for service certificates only.
#[test]
fn a_gateway_certificate_from_the_services_ca_is_refused() {
    let creds = Creds::new();
    // `dev pki` without a policy: one CA that issues a service certificate and a gateway
    // certificate. The broker runs xfinity with that CA as its `services` anchor.
    let cross = creds.dir.path("cross");
    topicguard(&["dev", "pki", "--out", &cross.display().to_string()]);
    // No CRLs: with them, a certificate whose CA has no CRL in a label's set is refused
    // anyway (unknown revocation status); without, only the label keeps the CAs apart.
    let mut setup = creds.setup(&xfinity());
    setup.trust.retain(|(label, _)| label != "services");
    setup.trust.push(("services".into(), cross.join("ca.pem")));
    setup.trust_crl.clear();
    let devices_ca = std::fs::read_to_string(creds.pki("ca-devices.pem")).unwrap();
    let services_ca = std::fs::read_to_string(cross.join("ca.pem")).unwrap();
    let cafile = creds
        .dir
        .write("cross-cafile.pem", &format!("{devices_ca}{services_ca}"));
    setup.tls.as_mut().unwrap().0 = cafile;
    let broker = Broker::start(&setup);
    let issued = |name: &str| Login::Certificate {
        ca: creds.pki("server-ca.pem"),
        cert: cross.join(format!("{name}.pem")),
        key: cross.join(format!("{name}-key.pem")),
    };
    // The CA is in force: its service certificate is a service.
    publish(
        &broker,
        &issued("service"),
        "svc:lights:1",
        &["-q", "1", "-t", RESPONSE, "-m", "ok"],
    );
    assert!(
        broker
            .log()
            .contains("client `svc:lights:1` admitted as identity `service` (client certificate)"),
        "{}",
        broker.log()
    );
    // Its gateway-shaped certificate is no gateway; the devices CA's gateway still is one.
    assert_refused_over_tls(&broker, &issued("gateway"), GATEWAY);
    publish(
        &broker,
        &creds.gateway,
        GATEWAY,
        &["-q", "1", "-t", PRESENCE, "-m", "online"],
    );
    assert!(
        broker.log().contains(&format!(
            "client `{GATEWAY}` admitted as identity `gateway` (client certificate)"
        )),
        "{}",
        broker.log()
    );
}

/// xfinity with a partner's jwt identity: a second authority, with a trust label of its own.
const PARTNER_IDENTITY: &str = r#"
identity partner from jwt {
    trust "partners"
    issuer "https://partner.example.com/"
    audience "iot-platform"
    algorithms ES256
    pid = claim "pid"
    aid = claim "aid"
    jti = claim "jti"
    client "ptn:{pid}_{aid}:clt:{jti}"
}

allow partner connect
"#;
const PARTNER: &str = "ptn:P1_A1:clt:J1";

#[test]
fn a_token_signed_with_another_labels_key_claiming_the_platform_issuer_is_refused() {
    let creds = Creds::new();
    let original = std::fs::read_to_string(xfinity()).unwrap();
    let policy = creds
        .dir
        .write("partner.policy", &format!("{original}{PARTNER_IDENTITY}"));
    // Both tokens are signed with the `partners` label's key (one directory, one key).
    let keys = creds.dir.path("partners");
    let (partner, _) = policy_token(&keys, &policy, ("partner", "partners"), &[]);
    let mobile_claims = ["iss=https://idp.example.com/", "pid=P1", "aid=A1", "jti=J1"];
    let (forged, _) = policy_token(&keys, &policy, ("partner", "partners"), &mobile_claims);
    // The platform's key claiming the partner's issuer.
    let claims_partner = creds.extra("claims-partner", &["iss=https://partner.example.com/"]);
    let mut setup = creds.setup(&policy);
    setup
        .trust
        .push(("partners".into(), keys.join("jwks-partners.json")));
    let broker = Broker::start(&setup);
    let ran = run(
        "mosquitto_pub",
        &broker,
        &partner,
        PARTNER,
        &["-t", "p", "-m", "x"],
    );
    assert_eq!(ran.code, Some(0), "the partner's own token: {}", ran.out);
    assert!(
        broker.log().contains(&format!(
            "client `{PARTNER}` admitted as identity `partner` (JWT)"
        )),
        "{}",
        broker.log()
    );
    for (what, login, client_id) in [
        ("the partner's key as the platform", &forged, MOBILE),
        (
            "the platform's key as the partner",
            &claims_partner,
            PARTNER,
        ),
    ] {
        for (version, code) in [("mqttv311", 5), ("mqttv5", 135)] {
            let ran = run(
                "mosquitto_pub",
                &broker,
                login,
                client_id,
                &["-V", version, "-t", REQUEST, "-m", "forged"],
            );
            assert_eq!(ran.code, Some(code), "{what} {version}: {}", ran.out);
        }
        let refused = format!("refusing client `{client_id}`");
        assert_eq!(
            broker.log().matches(&refused).count(),
            2,
            "{}",
            broker.log()
        );
    }
    let ran = run(
        "mosquitto_pub",
        &broker,
        &creds.mobile,
        MOBILE,
        &["-t", REQUEST, "-m", "x"],
    );
    assert_eq!(ran.code, Some(0), "the platform's own token: {}", ran.out);
}

#[test]
fn a_bad_trust_mapping_or_label_stops_mosquitto_at_start_and_a_bad_file_fails_closed() {
    let creds = Creds::new();
    let mut setup = creds.setup(&xfinity());
    let ca = creds.pki("ca-devices.pem").display().to_string();
    for (extra, says) in [
        (
            format!("plugin_opt_trust Devices={ca}\n"),
            "`plugin_opt_trust`: `Devices` is not a trust label",
        ),
        (
            format!("plugin_opt_trust {ca}\n"),
            "`plugin_opt_trust`: expected LABEL=FILE",
        ),
        (
            "plugin_opt_trust_crl devices\n".to_string(),
            "`plugin_opt_trust_crl`: expected LABEL=FILE",
        ),
        // mosquitto passes a comment after the value on as part of it.
        (
            format!("plugin_opt_trust devices={ca}   # the devices CA\n"),
            "`plugin_opt_trust` ends in a `#` comment",
        ),
        (
            format!("plugin_opt_trust_crl partners={ca}\n"),
            "`plugin_opt_trust_crl partners=...` is set but no `plugin_opt_trust partners=...`",
        ),
    ] {
        setup.extra = extra;
        let log = Broker::refused(&setup);
        assert!(
            log.contains(&format!("topicguard: cannot start: {says}")),
            "{log}"
        );
    }
    // A well-formed mapping to a file that cannot be used: mosquitto runs, everyone is refused.
    setup.extra = String::new();
    setup.trust[0].1 = creds.dir.path("absent.json");
    let mut broker = Broker::start(&setup);
    let log = broker.wait_for_log("topicguard: cannot load the policy", 1);
    assert!(
        log.contains("absent.json"),
        "the error names the file: {log}"
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
    assert!(broker.is_running());
}
