//! The plugin's behaviour with real credentials (signed JWTs, issued certificates) and the
//! shipped xfinity policy, without a broker. The broker side is `tests/mosquitto_plugin.rs`
//! at the workspace root, which loads the built library into Debian's mosquitto.

use super::*;
use crate::authority::Presented;
use serde_json::{Value, json};
use std::path::PathBuf;
use topicguard::devcred::{self as dev, DevAlg, DevCa, DevSigner, GatewaySpec};

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

/// A scratch directory with a policy and the anchors of its trust labels (a JWKS for `idp`,
/// a CA each for `devices` and `services`), and the credentials that go with them.
struct Setup {
    dir: PathBuf,
    /// The `idp` label's signing key: mobile tokens.
    signer: DevSigner,
    /// The `devices` label's CA: gateway certificates.
    devices: DevCa,
    /// The `services` label's CA: service certificates.
    services: DevCa,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = std::env::temp_dir().join(format!("tg-mosq-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let signer = DevSigner::generate(DevAlg::ES256, "k1").unwrap();
        let devices = DevCa::new("plugin test CA", dev::unix_now()).unwrap();
        let services = DevCa::new("plugin test services CA", dev::unix_now()).unwrap();
        let setup = Setup {
            dir,
            signer,
            devices,
            services,
        };
        setup.write("policy", &xfinity());
        setup.write("jwks-idp.json", &dev::jwks(&[&setup.signer]).to_string());
        setup.write("ca-devices.pem", &setup.devices.cert.pem());
        setup.write("ca-services.pem", &setup.services.cert.pem());
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    /// `plugin_opt_trust` for each label of the policy; no default anchors.
    fn options(&self) -> Options {
        let trust = |label: &str, file: &str| (label.to_string(), self.path(file));
        Options {
            policy: self.path("policy"),
            jwks: None,
            ca: Vec::new(),
            crl: Vec::new(),
            trust: vec![
                trust("idp", "jwks-idp.json"),
                trust("devices", "ca-devices.pem"),
                trust("services", "ca-services.pem"),
            ],
            trust_crl: Vec::new(),
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

    fn service_certificate(ca: &DevCa) -> Presented {
        let (cert, _key) = ca
            .issue(&dev::service_params("lights", 8, dev::unix_now()))
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
    let ours = Setup::gateway_certificate(&setup.devices);
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
    // A missing JWKS (a label's or the default one), a CRL without a CA, a key in a CA
    // file: nothing is half-loaded.
    setup.write("policy", &xfinity());
    let mut missing = setup.options();
    missing.trust[0].1 = setup.path("absent.json");
    let mut missing_default = setup.options();
    missing_default.jwks = Some(setup.path("absent.json"));
    let mut crl_only = setup.options();
    crl_only.trust.retain(|(label, _)| label != "devices");
    crl_only
        .trust_crl
        .push(("devices".into(), setup.path("ca-devices.pem")));
    let mut default_crl_only = setup.options();
    default_crl_only.crl.push(setup.path("ca-devices.pem"));
    setup.write("key.pem", &setup.signer.private_pem);
    let mut key_as_ca = setup.options();
    key_as_ca
        .trust
        .push(("services".into(), setup.path("key.pem")));
    for (what, options) in [
        ("missing", missing),
        ("missing default", missing_default),
        ("CRL only", crl_only),
        ("default CRL only", default_crl_only),
        ("key as CA", key_as_ca),
    ] {
        let mut closed = Plugin::start(options);
        assert!(!closed.is_loaded(), "{what}");
        let errors = logged(&mut closed, Level::Error);
        assert!(errors.contains("trust anchors: "), "{what}: {errors}");
    }
    plugin.reload();
    assert!(plugin.is_loaded());
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
}

#[test]
fn a_broken_reload_keeps_the_old_policy_and_a_changed_one_applies_to_connected_clients() {
    let setup = Setup::new("reload");
    let mut plugin = started(&setup);
    assert!(plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
    // A half-written file: cut inside a rule's template (a cut between statements, or in
    // a comment, could leave a valid, smaller policy).
    let policy = xfinity();
    let rule = "@id(\"mobile-requests\") allow mobile publish \"c/xfi/{pid}_{aid}/{sid in services}/{client}/{+rid}\"\n";
    let cut = policy.find(rule).expect("the shipped request rule") + rule.len() / 2;
    setup.write("policy", &policy[..cut]);
    plugin.reload();
    let errors = logged(&mut plugin, Level::Error);
    assert!(
        errors.contains("the previous policy stays in force"),
        "{errors}"
    );
    assert!(plugin.check(A, Some(MOBILE), Access::Write, REQUEST, false));
    // Mobiles lose their request rule: the connected client loses it at once.
    let narrowed = policy.replace(rule, "");
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
    setup.write("jwks-idp.json", &dev::jwks(&[&next]).to_string());
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
    options.trust.retain(|(label, _)| label == "services");
    let mut plugin = Plugin::start(options);
    assert!(plugin.is_loaded());
    let warnings = logged(&mut plugin, Level::Warning);
    assert!(
        warnings.contains(
            "identity `mobile` (jwt) trusts `idp`, and no JWKS is configured for that label: \
             it admits nobody (set `plugin_opt_trust idp=JWKS`)"
        ),
        "{warnings}"
    );
    assert!(
        warnings.contains("identity `gateway` (certificate) trusts `devices`"),
        "{warnings}"
    );
    assert!(!warnings.contains("identity `service`"), "{warnings}");
    assert!(!plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
    assert!(!plugin.authenticate(
        A,
        Some(GATEWAY),
        Ok(Setup::gateway_certificate(&setup.devices))
    ));
    // The old unlabelled options (the default anchors) anchor none of the labelled identities.
    let mut unlabelled = setup.options();
    unlabelled.trust.clear();
    unlabelled.jwks = Some(setup.path("jwks-idp.json"));
    unlabelled.ca = vec![setup.path("ca-devices.pem")];
    let mut plugin = Plugin::start(unlabelled);
    assert!(plugin.is_loaded());
    let warnings = logged(&mut plugin, Level::Warning);
    assert_eq!(
        warnings.matches("it admits nobody").count(),
        3,
        "{warnings}"
    );
    assert!(!plugin.authenticate(A, Some(MOBILE), Ok(setup.mobile_token())));
}

#[test]
fn anchors_no_identity_uses_are_reported_at_load() {
    let setup = Setup::new("unused");
    let mut options = setup.options();
    options.jwks = Some(setup.path("jwks-idp.json"));
    options.ca = vec![setup.path("ca-devices.pem")];
    options
        .trust
        .push(("partners".into(), setup.path("ca-services.pem")));
    options
        .trust
        .push(("services".into(), setup.path("jwks-idp.json")));
    let mut plugin = Plugin::start(options);
    assert!(plugin.is_loaded());
    let warnings = logged(&mut plugin, Level::Warning);
    for unused in [
        "anchors no identity uses: trust label `partners`: no identity of the policy names it",
        "anchors no identity uses: trust label `services`: its JWKS serves no jwt identity",
        "anchors no identity uses: the default JWKS (--jwks, [identity] jwks, plugin_opt_jwks)",
        "anchors no identity uses: the default CA (--ca, [identity] ca, plugin_opt_cafile)",
    ] {
        assert!(warnings.contains(unused), "{unused}: {warnings}");
    }
    assert!(!warnings.contains("admits nobody"), "{warnings}");
}

/// A gateway-shaped certificate issued by the services CA: a CA the plugin trusts, but
/// for another label.
#[test]
fn a_certificate_from_another_labels_ca_is_refused() {
    let setup = Setup::new("crosslabel");
    let mut plugin = started(&setup);
    let service = Setup::service_certificate(&setup.services);
    assert!(plugin.authenticate(A, Some("svc:lights:1"), Ok(service)));
    let gateway_from_services = Setup::gateway_certificate(&setup.services);
    assert!(!plugin.authenticate(B, Some(GATEWAY), Ok(gateway_from_services)));
    let refusal = logged(&mut plugin, Level::Notice);
    assert!(
        refusal.contains(&format!("refusing client `{GATEWAY}`")),
        "{refusal}"
    );
    assert!(!plugin.check(B, Some(GATEWAY), Access::Write, PRESENCE, true));
    let service_from_devices = Setup::service_certificate(&setup.devices);
    assert!(!plugin.authenticate(B, Some("svc:lights:2"), Ok(service_from_devices)));
    assert!(plugin.authenticate(
        B,
        Some(GATEWAY),
        Ok(Setup::gateway_certificate(&setup.devices))
    ));
}

/// xfinity with a partner's jwt identity of its own label: a second authority.
const PARTNER: &str = r#"
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

#[test]
fn a_token_signed_with_another_labels_key_is_refused_whatever_issuer_it_claims() {
    let setup = Setup::new("crosskey");
    setup.write("policy", &format!("{}{PARTNER}", xfinity()));
    let partner = DevSigner::generate(DevAlg::ES256, "p1").unwrap();
    setup.write("jwks-partners.json", &dev::jwks(&[&partner]).to_string());
    let mut options = setup.options();
    options
        .trust
        .push(("partners".into(), setup.path("jwks-partners.json")));
    let mut plugin = Plugin::start(options);
    assert!(plugin.is_loaded(), "{:?}", plugin.take_logs());
    let now = dev::unix_now();
    let mut partner_claims = dev::default_claims(now, "J1");
    partner_claims["iss"] = json!("https://partner.example.com/");
    let own = Presented::Jwt(partner.sign(&partner_claims).unwrap());
    assert!(plugin.authenticate(A, Some("ptn:P1_A1:clt:J1"), Ok(own)));
    // The partner's key, claiming the platform's identity provider.
    let claims_platform = Presented::Jwt(partner.sign(&dev::default_claims(now, "J1")).unwrap());
    assert!(!plugin.authenticate(B, Some(MOBILE), Ok(claims_platform)));
    let refusal = logged(&mut plugin, Level::Notice);
    assert!(
        refusal.contains(&format!("refusing client `{MOBILE}`")),
        "{refusal}"
    );
    assert!(!plugin.check(B, Some(MOBILE), Access::Write, REQUEST, false));
    // The platform's key, claiming the partner.
    let claims_partner = setup.token(&partner_claims);
    assert!(!plugin.authenticate(B, Some("ptn:P1_A1:clt:J1"), Ok(claims_partner)));
    assert!(plugin.authenticate(B, Some(MOBILE), Ok(setup.mobile_token())));
}
