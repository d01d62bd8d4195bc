//! The plugin's behaviour with real credentials (signed JWTs, issued certificates) and the
//! shipped xfinity policy, without a broker. The broker side is `tests/mosquitto_plugin.rs`
//! at the workspace root, which loads the built library into Debian's mosquitto.

use super::*;
use crate::authority::Presented;
use serde_json::{Value, json};
use std::path::PathBuf;
use topicguard::identity::dev::{self, DevAlg, DevCa, DevSigner, GatewaySpec};

const MOBILE: &str = "xfi:P1_A1:clt:J1";
const REQUEST: &str = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1";
const OTHER_ACCOUNT: &str = "c/xfi/P2_A2/lights/xfi:P1_A1:clt:J1/r1";
const RESPONSES: &str = "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/+/success";
const GATEWAY: &str = "iot:P1_A1:adp:xhf:550e8400-e29b-41d4-a716-446655440000";
const PRESENCE: &str =
    "c/iot/P1_A1/iot:P1_A1:adp:xhf:550e8400-e29b-41d4-a716-446655440000/presence";

fn xfinity() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/xfinity.policy");
    std::fs::read_to_string(path).expect("the shipped policy")
}

/// A scratch directory with a policy, a JWKS and a CA, and the credentials that go with them.
struct Setup {
    dir: PathBuf,
    signer: DevSigner,
    ca: DevCa,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = std::env::temp_dir().join(format!("tg-mosq-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let signer = DevSigner::generate(DevAlg::ES256, "k1").unwrap();
        let ca = DevCa::new("plugin test CA", dev::unix_now()).unwrap();
        let setup = Setup { dir, signer, ca };
        setup.write("policy", &xfinity());
        setup.write("jwks.json", &dev::jwks(&[&setup.signer]).to_string());
        setup.write("ca.pem", &setup.ca.cert.pem());
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn options(&self) -> Options {
        Options {
            policy: self.path("policy"),
            jwks: Some(self.path("jwks.json")),
            ca: vec![self.path("ca.pem")],
            crl: Vec::new(),
        }
    }

    fn token(&self, claims: &Value) -> Presented {
        Presented::Jwt(self.signer.sign(claims).unwrap())
    }

    fn mobile_token(&self) -> Presented {
        self.token(&dev::default_claims(dev::unix_now(), "J1"))
    }

    fn gateway_certificate(ca: &DevCa) -> Presented {
        let spec = GatewaySpec::default();
        let (cert, _key) = ca
            .issue(&dev::gateway_params(&spec, 7, dev::unix_now()))
            .unwrap();
        Presented::Certificate(cert.der().to_vec())
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

const A: ClientKey = ClientKey(0x1000);
const B: ClientKey = ClientKey(0x2000);

fn started(setup: &Setup) -> Plugin {
    let mut plugin = Plugin::start(setup.options());
    assert!(plugin.is_loaded(), "{:?}", plugin.take_logs());
    plugin
}

fn logged(plugin: &mut Plugin, level: Level) -> String {
    plugin
        .take_logs()
        .into_iter()
        .filter(|(l, _)| *l == level)
        .map(|(_, line)| line + "\n")
        .collect()
}

#[test]
fn a_verified_jwt_is_admitted_and_every_check_is_the_policys_decision() {
    let setup = Setup::new("jwt");
    let mut plugin = started(&setup);
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
    assert!(logged(&mut plugin, Level::Info).contains("admitted as identity `mobile` (JWT)"));
    assert!(plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false));
    assert!(
        !plugin.check(A, Some(MOBILE), Access::Write, REQUEST, true),
        "no retain rule"
    );
    assert!(!plugin.check(A, Some(MOBILE), Access::Write, OTHER_ACCOUNT, false));
    assert!(plugin.check(A, Some(MOBILE), Access::Subscribe, RESPONSES, false));
    let shared = format!("$share/g/{RESPONSES}");
    assert!(plugin.check(A, Some(MOBILE), Access::Subscribe, &shared, false));
    assert!(!plugin.check(A, Some(MOBILE), Access::Subscribe, "c/xfi/#", false));
    assert!(!plugin.check(
        A,
        Some(MOBILE),
        Access::Subscribe,
        "$share/g/c/xfi/#",
        false
    ));
    let response = "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/r1/success";
    assert!(plugin.check(A, Some(MOBILE), Access::Read, response, false));
    assert!(!plugin.check(
        A,
        Some(MOBILE),
        Access::Read,
        "c/xfi/P2_A2/x/lights/r1/success",
        false
    ));
    assert!(plugin.check(A, Some(MOBILE), Access::Unsubscribe, "c/xfi/#", false));
    let denials = logged(&mut plugin, Level::Debug);
    assert!(
        denials.contains("denied publish `c/xfi/P2_A2/"),
        "{denials}"
    );
    assert!(denials.contains("implicitly denied"), "{denials}");
}

#[test]
fn forged_expired_mismatched_and_garbage_credentials_are_refused() {
    let setup = Setup::new("forged");
    let mut plugin = started(&setup);
    let now = dev::unix_now();
    let stranger = DevSigner::generate(DevAlg::ES256, "k1").unwrap();
    let forged = Presented::Jwt(stranger.sign(&dev::default_claims(now, "J1")).unwrap());
    let mut expired = dev::default_claims(now, "J1");
    expired["exp"] = json!(now - 60);
    let mut other_audience = dev::default_claims(now, "J1");
    other_audience["aud"] = json!("somebody-else");
    let mut wildcard_pid = dev::default_claims(now, "J1");
    wildcard_pid["pid"] = json!("+");
    let cases = [
        ("a key outside the JWKS", Ok(forged)),
        ("an expired token", Ok(setup.token(&expired))),
        ("another audience", Ok(setup.token(&other_audience))),
        ("a wildcard attribute", Ok(setup.token(&wildcard_pid))),
        ("garbage", Ok(Presented::Jwt("not.a.jwt".into()))),
        (
            "a binary password",
            Presented::from_connect(Some(&[0xff, 0xfe]), || Ok(None)),
        ),
        ("nothing (no anonymous identity)", Ok(Presented::Nothing)),
    ];
    for (what, presented) in cases {
        assert!(!plugin.authenticate(A, Some(MOBILE), presented), "{what}");
        assert!(
            !plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false),
            "{what}"
        );
        assert!(
            logged(&mut plugin, Level::Notice).contains("refusing client"),
            "{what}"
        );
    }
    // A good token whose client id is not the one its template gives (jti J1, id J2).
    assert!(!plugin.authenticate(A, Some("xfi:P1_A1:clt:J2"), Ok(setup.mobile_token())));
    assert!(logged(&mut plugin, Level::Notice).contains("does not match the template"));
    assert!(!plugin.authenticate(A, None, Ok(setup.mobile_token())));
    assert_eq!(plugin.admitted(), 0);
}

#[test]
fn a_failed_authentication_forgets_what_the_address_held() {
    let setup = Setup::new("forget");
    let mut plugin = started(&setup);
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
    assert!(!plugin.authenticate(A, Some(MOBILE), Ok(Presented::Jwt("x".into()))));
    assert!(!plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false));
}

#[test]
fn state_is_per_connection_and_bound_to_the_admitted_client_id() {
    let setup = Setup::new("keys");
    let mut plugin = started(&setup);
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
    assert!(
        !plugin.check(B, Some(MOBILE), Access::Write, REQUEST, false),
        "another connection"
    );
    assert!(!plugin.check(A, Some("xfi:P1_A1:clt:J2"), Access::Write, REQUEST, false));
    assert!(!plugin.check(A, None, Access::Write, REQUEST, false));
    assert!(plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false));
}

#[test]
fn after_disconnect_only_the_will_is_decided_and_only_until_the_next_event() {
    let setup = Setup::new("will");
    let mut plugin = started(&setup);
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
    plugin.disconnect(A);
    assert_eq!(plugin.admitted(), 0);
    assert!(
        !plugin.check(A, Some(MOBILE), Access::Read, REQUEST, false),
        "no deliveries"
    );
    assert!(!plugin.check(A, Some(MOBILE), Access::Subscribe, RESPONSES, false));
    assert!(
        !plugin.check(A, Some(MOBILE), Access::Write, OTHER_ACCOUNT, false),
        "denied will"
    );
    assert!(
        plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false),
        "allowed will"
    );
    plugin.sweep(Instant::now());
    assert!(
        !plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false),
        "grace over"
    );
    // A disconnect followed by another client's authentication ends the grace too.
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
    plugin.disconnect(A);
    assert!(!plugin.authenticate(B, Some("x"), Ok(Presented::Nothing)));
    assert!(!plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false));
}

#[test]
fn certificates_bind_only_to_the_policys_own_anchors() {
    let setup = Setup::new("certs");
    let mut plugin = started(&setup);
    let ours = Setup::gateway_certificate(&setup.ca);
    assert!(plugin.authenticate(A, Some(GATEWAY), Ok(ours.clone())));
    assert!(plugin.check(A, Some(GATEWAY), Access::Write, PRESENCE, true));
    assert!(!plugin.check(
        A,
        Some(GATEWAY),
        Access::Write,
        &PRESENCE.replace("P1_A1", "P2_A1"),
        true
    ));
    // A sibling CA that mosquitto's own cafile might trust: not an anchor of the policy.
    let sibling = DevCa::new("plugin test CA", dev::unix_now()).unwrap();
    let rogue = Setup::gateway_certificate(&sibling);
    assert!(!plugin.authenticate(B, Some(GATEWAY), Ok(rogue)));
    assert!(logged(&mut plugin, Level::Notice).contains("refusing client"));
    // The right certificate with another gateway's client id.
    let other_id = GATEWAY.replace("550e8400", "650e8400");
    assert!(!plugin.authenticate(B, Some(&other_id), Ok(ours)));
    assert!(!plugin.authenticate(
        B,
        Some(GATEWAY),
        Ok(Presented::Certificate(vec![0x30, 0x03]))
    ));
}

#[test]
fn an_unloadable_policy_denies_every_client_and_check_until_a_reload_works() {
    let setup = Setup::new("closed");
    setup.write(
        "policy",
        "allow mobile publish \"c/#\"\nthis is not a rule\n",
    );
    let mut plugin = Plugin::start(setup.options());
    assert!(!plugin.is_loaded());
    let errors = logged(&mut plugin, Level::Error);
    assert!(errors.contains("cannot load the policy"), "{errors}");
    assert!(
        errors.contains("policy:2:"),
        "the diagnostic names file and line: {errors}"
    );
    assert!(!plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
    assert!(logged(&mut plugin, Level::Notice).contains("no policy is loaded"));
    assert!(!plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false));
    // A missing JWKS, a CRL without a CA: nothing is half-loaded.
    setup.write("policy", &xfinity());
    let mut missing = setup.options();
    missing.jwks = Some(setup.path("absent.json"));
    assert!(!Plugin::start(missing).is_loaded());
    let mut crl_only = setup.options();
    crl_only.ca.clear();
    crl_only.crl.push(setup.path("ca.pem"));
    assert!(!Plugin::start(crl_only).is_loaded());
    plugin.reload();
    assert!(plugin.is_loaded());
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
}

#[test]
fn a_broken_reload_keeps_the_old_policy_and_a_changed_one_applies_to_connected_clients() {
    let setup = Setup::new("reload");
    let mut plugin = started(&setup);
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
    // A half-written file.
    let policy = xfinity();
    setup.write("policy", &policy[..policy.len() / 2]);
    plugin.reload();
    let errors = logged(&mut plugin, Level::Error);
    assert!(
        errors.contains("the previous policy stays in force"),
        "{errors}"
    );
    assert!(plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false));
    // Mobiles lose their request rule: the connected client loses it at once.
    let narrowed = policy.replace(
        "allow mobile publish \"c/xfi/{pid}_{aid}/{sid in services}/{client}/{+rid}\"",
        "",
    );
    assert_ne!(narrowed, policy);
    setup.write("policy", &narrowed);
    plugin.reload();
    assert!(logged(&mut plugin, Level::Info).contains("reloaded"));
    assert!(!plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false));
    assert!(plugin.check(A, Some(MOBILE), Access::Subscribe, RESPONSES, false));
}

#[test]
fn a_reload_without_the_signing_key_refuses_and_disconnects_connected_clients() {
    let setup = Setup::new("rotate");
    let mut plugin = started(&setup);
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
    let next = DevSigner::generate(DevAlg::ES256, "k2").unwrap();
    setup.write("jwks.json", &dev::jwks(&[&next]).to_string());
    plugin.reload();
    assert!(!plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false));
    assert!(logged(&mut plugin, Level::Notice).contains("the reloaded policy refuses it"));
    assert_eq!(plugin.sweep(Instant::now()), [MOBILE.to_string()]);
    assert!(
        plugin.sweep(Instant::now() + SWEEP_INTERVAL).is_empty(),
        "kicked once"
    );
}

#[test]
fn an_expiring_token_is_refused_at_expiry_and_its_client_disconnected() {
    let setup = Setup::new("expiry");
    let mut plugin = started(&setup);
    let now = dev::unix_now();
    let mut claims = dev::default_claims(now, "J1");
    claims["exp"] = json!(now + 1);
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.token(&claims))));
    // Within the policy's leeway the token still verifies, but it has expired: refused.
    claims["exp"] = json!(now - 2);
    assert!(!plugin.authenticate(B, Some(MOBILE), Ok(setup.token(&claims))));
    assert!(logged(&mut plugin, Level::Notice).contains("expired"));
    while dev::unix_now() <= now + 1 {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(plugin.sweep(Instant::now()), [MOBILE.to_string()]);
    assert!(!plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false));
}

#[test]
fn the_password_is_the_credential_and_never_falls_back_to_the_certificate() {
    let asked = std::cell::Cell::new(false);
    let certificate = || {
        asked.set(true);
        Ok(Some(vec![1, 2, 3]))
    };
    let jwt = Presented::from_connect(Some(b" a.b.c\n"), certificate).unwrap();
    assert_eq!(jwt, Presented::Jwt("a.b.c".into()));
    assert!(!asked.get(), "the certificate is not even read");
    let cert = Presented::from_connect(None, || Ok(Some(vec![1, 2, 3]))).unwrap();
    assert_eq!(cert, Presented::Certificate(vec![1, 2, 3]));
    assert_eq!(
        Presented::from_connect(None, || Ok(None)).unwrap(),
        Presented::Nothing
    );
    assert!(Presented::from_connect(Some(&[0xc3]), || Ok(None)).is_err());
}

#[test]
fn the_anonymous_identity_serves_clients_without_credentials_when_declared() {
    let setup = Setup::new("anonymous");
    setup.write(
        "policy",
        "identity screen from anonymous {\n    client \"lobby-{+n}\"\n}\n\
         allow screen connect\nallow screen subscribe, receive \"notices/+\"\n",
    );
    let mut plugin = started(&setup);
    assert!(plugin.authenticate(A, Some("lobby-1"), Ok(Presented::Nothing)));
    assert!(plugin.check(A, Some("lobby-1"), Access::Subscribe, "notices/+", false));
    assert!(!plugin.check(A, Some("lobby-1"), Access::Write, "notices/x", false));
    assert!(!plugin.authenticate(B, Some("kiosk-1"), Ok(Presented::Nothing)));
    // A JWT presented to a policy without JWT identities is refused, not made anonymous.
    assert!(!plugin.authenticate(B, Some("lobby-2"), Ok(setup.mobile_token())));
}

#[test]
fn identity_blocks_without_key_material_are_reported_at_load() {
    let setup = Setup::new("unusable");
    let mut options = setup.options();
    options.jwks = None;
    options.ca.clear();
    let mut plugin = Plugin::start(options);
    assert!(plugin.is_loaded());
    let warnings = logged(&mut plugin, Level::Warning);
    assert!(
        warnings.contains("identity `mobile` (from jwt) admits nobody"),
        "{warnings}"
    );
    assert!(warnings.contains("identity `gateway` (from certificate) admits nobody"));
    assert!(!plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
}
