//! `topicguard authz` over HTTP, on the exact request and response shapes each broker
//! uses: RabbitMQ's HTTP auth backend (form fields as its MQTT plugin sends them, observed
//! with RabbitMQ 3.10), EMQX 5's HTTP authentication and authorization (JSON, as its docs
//! give them) and mosquitto-go-auth's HTTP backend, with hostile and malformed requests.
//! Sessions, expiry, the size cap and policy reload are in `authz_sessions`.

use crate::authz_harness::*;
use serde_json::json;

pub(crate) const MOBILE: &str = "xfi:P1_A1:clt:J1";
const OTHER: &str = "xfi:P2_A2:clt:J2";

pub(crate) struct Service {
    pub(crate) scratch: Scratch,
    pub(crate) tokens: Tokens,
    pub(crate) authz: AuthzProcess,
}

pub(crate) fn start(name: &str, extra: &[&str]) -> Service {
    let scratch = Scratch::new(name);
    let tokens = Tokens::new(&scratch);
    let policy = xfinity_with_jwt_service(&scratch);
    let authz = AuthzProcess::start(&policy, &tokens.jwks, extra, scratch.path("authz.log"));
    Service {
        scratch,
        tokens,
        authz,
    }
}

// ---------------------------------------------------------------- RabbitMQ

pub(crate) fn rmq_user(
    s: &Service,
    username: &str,
    client_id: &str,
    password: &str,
) -> (u16, String) {
    s.authz.form(
        "/rabbitmq/user",
        &[
            ("username", username),
            ("password", password),
            ("vhost", "/"),
            ("client_id", client_id),
        ],
    )
}

pub(crate) fn rmq_topic(
    s: &Service,
    client_id: &str,
    permission: &str,
    key: &str,
) -> (u16, String) {
    s.authz.form(
        "/rabbitmq/topic",
        &[
            ("username", "app"),
            ("vhost", "/"),
            ("resource", "topic"),
            ("name", "amq.topic"),
            ("permission", permission),
            ("tags", ""),
            ("routing_key", key),
            ("variable_map.client_id", client_id),
            ("variable_map.username", "app"),
            ("variable_map.vhost", "/"),
        ],
    )
}

fn rmq_resource(s: &Service, resource: &str, name: &str, permission: &str) -> (u16, String) {
    s.authz.form(
        "/rabbitmq/resource",
        &[
            ("username", "app"),
            ("vhost", "/"),
            ("resource", resource),
            ("name", name),
            ("permission", permission),
            ("tags", ""),
            ("client_id", MOBILE),
        ],
    )
}

pub(crate) fn allow() -> (u16, String) {
    (200, "allow".into())
}

pub(crate) fn deny() -> (u16, String) {
    (200, "deny".into())
}

fn bad() -> (u16, String) {
    (400, "deny".into())
}

#[test]
fn rabbitmq_connect_vhost_and_resources_of_an_authenticated_mobile() {
    let s = start("authz-rmq-connect", &[]);
    let token = s.tokens.mobile("P1", "A1", "J1");
    assert_eq!(rmq_user(&s, "app", MOBILE, &token), allow());
    let vhost = [
        ("username", "app"),
        ("vhost", "/"),
        ("ip", "127.0.0.1"),
        ("tags", ""),
        ("client_id", MOBILE),
    ];
    assert_eq!(s.authz.form("/rabbitmq/vhost", &vhost), allow());
    let own_queue = format!("mqtt-subscription-{MOBILE}qos1");
    for permission in ["configure", "read", "write"] {
        assert_eq!(rmq_resource(&s, "queue", &own_queue, permission), allow());
    }
    let own_qos0 = format!("mqtt-subscription-{MOBILE}qos0");
    assert_eq!(rmq_resource(&s, "queue", &own_qos0, "read"), allow());
    assert_eq!(rmq_resource(&s, "exchange", "amq.topic", "read"), allow());
    assert_eq!(rmq_resource(&s, "exchange", "amq.topic", "write"), allow());
    for (resource, name, permission) in [
        ("exchange", "amq.topic", "configure"),
        ("exchange", "amq.fanout", "write"),
        (
            "queue",
            &format!("mqtt-subscription-{OTHER}qos1") as &str,
            "read",
        ),
        ("queue", "orders", "read"),
        ("topic", "amq.topic", "read"),
    ] {
        assert_eq!(
            rmq_resource(&s, resource, name, permission),
            deny(),
            "{resource} {name} {permission}"
        );
    }
    assert_eq!(
        rmq_resource(&s, "queue", &own_queue, "delete"),
        bad(),
        "an unknown permission is a malformed request"
    );
}

#[test]
fn rabbitmq_topic_checks_follow_the_policy_per_account() {
    let s = start("authz-rmq-topic", &[]);
    assert_eq!(
        rmq_user(&s, "app", MOBILE, &s.tokens.mobile("P1", "A1", "J1")),
        allow()
    );
    assert_eq!(
        rmq_user(&s, "app", OTHER, &s.tokens.mobile("P2", "A2", "J2")),
        allow()
    );
    let request = "c.xfi.P1_A1.lights.xfi:P1_A1:clt:J1.r1";
    let responses = "c.xfi.P1_A1.xfi:P1_A1:clt:J1.lights.*.success";
    assert_eq!(rmq_topic(&s, MOBILE, "write", request), allow());
    assert_eq!(rmq_topic(&s, MOBILE, "read", responses), allow());
    assert_eq!(
        rmq_topic(&s, OTHER, "write", request),
        deny(),
        "cross-account publish"
    );
    assert_eq!(
        rmq_topic(&s, OTHER, "read", responses),
        deny(),
        "cross-account subscribe"
    );
    for wide in ["c.xfi.#", "#", "c.*.*.#", "c.xfi.P1_A1.#"] {
        assert_eq!(rmq_topic(&s, MOBILE, "read", wide), deny(), "{wide}");
    }
    assert_eq!(
        rmq_topic(&s, MOBILE, "write", "c.xfi.P1_A1.admin.xfi:P1_A1:clt:J1.r1"),
        deny()
    );
    // A `.` in an MQTT topic: RabbitMQ 3.10 routes `r.1` as two levels (denied: `{+rid}` is
    // one level); a broker that swaps `.` and `/` sends `r/1`, which is the level `r.1`.
    assert_eq!(
        rmq_topic(
            &s,
            MOBILE,
            "write",
            "c.xfi.P1_A1.lights.xfi:P1_A1:clt:J1.r.1"
        ),
        deny()
    );
    assert_eq!(
        rmq_topic(
            &s,
            MOBILE,
            "write",
            "c.xfi.P1_A1.lights.xfi:P1_A1:clt:J1.r/1"
        ),
        allow()
    );
    // A wildcard in a publish routing key is no topic name.
    assert_eq!(
        rmq_topic(&s, MOBILE, "write", "c.xfi.P1_A1.lights.xfi:P1_A1:clt:J1.*"),
        deny()
    );
}

#[test]
fn rabbitmq_checks_for_unknown_sessions_are_denied() {
    let s = start("authz-rmq-unknown", &[]);
    let request = "c.xfi.P1_A1.lights.xfi:P1_A1:clt:J1.r1";
    assert_eq!(
        rmq_topic(&s, MOBILE, "write", request),
        deny(),
        "never authenticated"
    );
    assert_eq!(
        rmq_user(&s, "app", MOBILE, &s.tokens.mobile("P1", "A1", "J1")),
        allow()
    );
    let other_vhost = s.authz.form(
        "/rabbitmq/topic",
        &[
            ("username", "app"),
            ("vhost", "tenant-b"),
            ("resource", "topic"),
            ("name", "amq.topic"),
            ("permission", "write"),
            ("routing_key", request),
            ("variable_map.client_id", MOBILE),
        ],
    );
    assert_eq!(other_vhost, deny(), "the session is per vhost");
    let other_user = s.authz.form(
        "/rabbitmq/topic",
        &[
            ("username", "someone"),
            ("vhost", "/"),
            ("resource", "topic"),
            ("name", "amq.topic"),
            ("permission", "write"),
            ("routing_key", request),
            ("variable_map.client_id", MOBILE),
        ],
    );
    assert_eq!(other_user, deny(), "the session is per username");
    let mismatched_map = s.authz.form(
        "/rabbitmq/topic",
        &[
            ("username", "app"),
            ("vhost", "/"),
            ("resource", "topic"),
            ("name", "amq.topic"),
            ("permission", "write"),
            ("routing_key", request),
            ("variable_map.client_id", MOBILE),
            ("variable_map.username", "someone"),
        ],
    );
    assert_eq!(mismatched_map, bad());
}

#[test]
fn rabbitmq_refuses_bad_credentials_without_touching_a_live_session() {
    let s = start("authz-rmq-refuse", &[]);
    let request = "c.xfi.P1_A1.lights.xfi:P1_A1:clt:J1.r1";
    assert_eq!(
        rmq_user(&s, "app", MOBILE, &s.tokens.mobile("P1", "A1", "J1")),
        allow()
    );
    let stranger =
        topicguard::devcred::DevSigner::generate(topicguard::devcred::DevAlg::ES256, "authz-test")
            .unwrap()
            .sign(&topicguard::devcred::default_claims(Tokens::now(), "J1"))
            .unwrap();
    let expired = s
        .tokens
        .mobile_until("P1", "A1", "J1", Tokens::now() - 3600);
    let wrong_jti = s.tokens.mobile("P1", "A1", "J9");
    let other_account = s.tokens.mobile("P2", "A2", "J1");
    for (what, password) in [
        ("garbage", "not-a-jwt"),
        ("empty", ""),
        ("signed by another key", &stranger as &str),
        ("expired", &expired),
        ("another jti than the client id", &wrong_jti),
        ("another account than the client id", &other_account),
    ] {
        assert_eq!(rmq_user(&s, "app", MOBILE, password), deny(), "{what}");
        assert_eq!(
            rmq_topic(&s, MOBILE, "write", request),
            allow(),
            "a refused login ({what}) must leave the live session alone"
        );
    }
    let no_client_id = s.authz.form(
        "/rabbitmq/user",
        &[("username", "amqp"), ("password", "x"), ("vhost", "/")],
    );
    assert_eq!(no_client_id, bad(), "AMQP logins carry no client id");
}

#[test]
fn rabbitmq_malformed_requests_get_a_4xx_and_deny() {
    let s = start("authz-rmq-malformed", &[]);
    let token = s.tokens.mobile("P1", "A1", "J1");
    assert_eq!(rmq_user(&s, "app", MOBILE, &token), allow());
    let topic = |extra: &str| {
        s.authz.post(
            "/rabbitmq/topic",
            FORM,
            format!("username=app&vhost=%2F&resource=topic&name=amq.topic&permission=write&variable_map.client_id=xfi%3AP1_A1%3Aclt%3AJ1{extra}").as_bytes(),
        )
    };
    assert_eq!(
        topic("&routing_key=c.xfi.P1_A1.lights.xfi%3AP1_A1%3Aclt%3AJ1.r1"),
        allow()
    );
    assert_eq!(topic(""), bad(), "no routing key");
    for extra in [
        "&routing_key=c.xfi.P1_A1.lights.xfi%3AP1_A1%3Aclt%3AJ1.r1&routing_key=x",
        "&routing_key=c.xfi.P1_A1.lights.xfi%3AP1_A1%3Aclt%3AJ1.r%zz",
        "&routing_key=c.xfi.P1_A1.lights.xfi%3AP1_A1%3Aclt%3AJ1.r%FF",
        "&routing_key=c&variable_map.client_id=xfi%3AP2_A2%3Aclt%3AJ2",
    ] {
        assert_eq!(topic(extra), bad(), "{extra}");
    }
    let json = s
        .authz
        .post("/rabbitmq/topic", JSON, br#"{"username":"app"}"#);
    assert_eq!(json, (400, "deny".into()), "JSON where a form is expected");
    let huge = format!("username=app&password={}", "a".repeat(64 * 1024));
    assert_eq!(s.authz.post("/rabbitmq/user", FORM, huge.as_bytes()).0, 413);
    let mut client = s.authz.client();
    assert_eq!(client.request("GET", "/rabbitmq/topic", None, b"").0, 405);
    assert_eq!(
        client.request("POST", "/rabbitmq/nope", Some(FORM), b"").0,
        404
    );
    assert_eq!(
        client.request("POST", "/rabbitmq/topic", Some(FORM), b"").0,
        400,
        "the connection survives refusals (keep-alive)"
    );
}

// ---------------------------------------------------------------- EMQX 5

fn emqx_authn(s: &Service, client_id: &str, password: &str) -> (u16, serde_json::Value) {
    s.authz.json(
        "/emqx/authn",
        &json!({"clientid": client_id, "username": "app", "password": password}),
    )
}

fn emqx_authz(s: &Service, client_id: &str, action: &str, topic: &str) -> serde_json::Value {
    let body = json!({
        "clientid": client_id, "username": "app", "action": action, "topic": topic,
        "retain": "false",
    });
    let (status, answer) = s.authz.json("/emqx/authz", &body);
    assert_eq!(status, 200, "{answer}");
    answer
}

#[test]
fn emqx_authn_answers_in_emqx_5_shape() {
    let s = start("authz-emqx-authn", &[]);
    let exp = Tokens::now() + 600;
    let token = s.tokens.mobile_until("P1", "A1", "J1", exp);
    let (status, answer) = emqx_authn(&s, MOBILE, &token);
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"result": "allow", "is_superuser": false, "expire_at": exp})
    );
    let (status, answer) = emqx_authn(&s, OTHER, &token);
    assert_eq!((status, answer), (200, json!({"result": "deny"})));
    let (status, answer) = s.authz.json("/emqx/authn", &json!({"clientid": MOBILE}));
    assert_eq!((status, answer), (400, json!({"result": "deny"})));
    let (status, _) = s.authz.post(
        "/emqx/authn",
        JSON,
        format!(r#"{{"clientid":"{MOBILE}","username":"app","password":["{token}"]}}"#).as_bytes(),
    );
    assert_eq!(status, 400, "a password that is not a string");
}

#[test]
fn emqx_authz_decides_publish_and_subscribe_for_the_authenticated_identity() {
    let s = start("authz-emqx-authz", &[]);
    assert_eq!(
        emqx_authn(&s, MOBILE, &s.tokens.mobile("P1", "A1", "J1")).0,
        200
    );
    let allow = json!({"result": "allow"});
    let deny = json!({"result": "deny"});
    let request = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1";
    let responses = "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/+/success";
    assert_eq!(emqx_authz(&s, MOBILE, "publish", request), allow);
    assert_eq!(emqx_authz(&s, MOBILE, "subscribe", responses), allow);
    assert_eq!(
        emqx_authz(&s, MOBILE, "subscribe", &format!("$share/g/{responses}")),
        allow
    );
    assert_eq!(
        emqx_authz(
            &s,
            MOBILE,
            "publish",
            "c/xfi/P2_A2/lights/xfi:P1_A1:clt:J1/r1"
        ),
        deny
    );
    assert_eq!(emqx_authz(&s, MOBILE, "subscribe", "c/xfi/#"), deny);
    assert_eq!(
        emqx_authz(&s, OTHER, "publish", request),
        deny,
        "no session"
    );
    let retained = json!({
        "clientid": MOBILE, "username": "app", "action": "publish", "topic": request,
        "retain": "true",
    });
    assert_eq!(
        s.authz.json("/emqx/authz", &retained),
        (200, deny.clone()),
        "a retained publish needs `retain` too"
    );
    for bad in [
        json!({"clientid": MOBILE, "username": "app", "action": "all", "topic": request}),
        json!({"clientid": MOBILE, "username": "app", "action": "publish"}),
        json!({"clientid": MOBILE, "username": "app", "action": "publish", "topic": request, "retain": "yes"}),
    ] {
        assert_eq!(
            s.authz.json("/emqx/authz", &bad),
            (400, deny.clone()),
            "{bad}"
        );
    }
    let (status, _) = s.authz.post(
        "/emqx/authz",
        JSON,
        br#"{"clientid":"xfi:P1_A1:clt:J1","clientid":"x","username":"app","action":"publish","topic":"t"}"#,
    );
    assert_eq!(status, 400, "a duplicated field");
}

// ---------------------------------------------------------------- mosquitto-go-auth

#[test]
fn goauth_user_superuser_and_acl_in_json_and_form() {
    let s = start("authz-goauth", &[]);
    let token = s.tokens.mobile("P1", "A1", "J1");
    let ok = json!({"ok": true, "error": ""});
    let refused = json!({"ok": false, "error": "not authorized"});
    let user = json!({"username": "app", "password": token, "clientid": MOBILE});
    assert_eq!(s.authz.json("/goauth/user", &user), (200, ok.clone()));
    let form_user = s.authz.form(
        "/goauth/user",
        &[
            ("username", "app2"),
            ("password", &token),
            ("clientid", MOBILE),
        ],
    );
    assert_eq!(form_user.0, 200, "form params mode: {}", form_user.1);
    let wrong = json!({"username": "app", "password": token, "clientid": OTHER});
    assert_eq!(s.authz.json("/goauth/user", &wrong), (403, refused.clone()));
    assert_eq!(
        s.authz
            .json("/goauth/superuser", &json!({"username": "app"})),
        (403, refused.clone())
    );
    let acl = |topic: &str, acc: serde_json::Value| {
        s.authz.json(
            "/goauth/acl",
            &json!({"username": "app", "clientid": MOBILE, "topic": topic, "acc": acc}),
        )
    };
    let request = "c/xfi/P1_A1/lights/xfi:P1_A1:clt:J1/r1";
    let response = "c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/r1/success";
    assert_eq!(acl(request, json!(2)), (200, ok.clone()), "publish");
    assert_eq!(acl(response, json!(1)), (200, ok.clone()), "receive");
    assert_eq!(
        acl("c/xfi/P1_A1/xfi:P1_A1:clt:J1/lights/+/success", json!(4)).0,
        200
    );
    assert_eq!(
        acl("c/xfi/P2_A2/lights/x/r1", json!(2)).0,
        403,
        "cross-account"
    );
    assert_eq!(
        acl("c/xfi/P2_A2/xfi:P1_A1:clt:J1/lights/r1/success", json!(1)).0,
        403
    );
    assert_eq!(
        acl(request, json!(3)).0,
        403,
        "read+write needs receive too"
    );
    assert_eq!(
        acl("c/xfi/#", json!(8)).0,
        200,
        "unsubscribing only removes rights"
    );
    for bad_acc in [json!(0), json!(16), json!("x"), json!(-1)] {
        assert_eq!(acl(request, bad_acc.clone()).0, 400, "{bad_acc}");
    }
}

#[test]
fn subscriptions_must_carry_receive_where_the_broker_checks_no_delivery() {
    let scratch = Scratch::new("authz-carry");
    let tokens = Tokens::new(&scratch);
    let policy = scratch.write(
        "wide.policy",
        "identity user from jwt {\n    issuer \"https://idp.example.com/\"\n    audience \"iot-platform\"\n    uid = claim \"jti\"\n    client \"u-{uid}\"\n}\nallow user connect\nallow user subscribe \"t/#\"\nallow user receive \"t/+\"\n",
    );
    let authz = AuthzProcess::start(&policy, &tokens.jwks, &[], scratch.path("authz.log"));
    assert!(
        authz.log().contains("subscribe does not carry receive"),
        "start-up warning: {}",
        authz.log()
    );
    let token = tokens.mobile("P1", "A1", "J1");
    let login = json!({"clientid": "u-J1", "username": "app", "password": token});
    assert_eq!(authz.json("/emqx/authn", &login).0, 200);
    let check = |topic: &str| {
        authz.json(
            "/emqx/authz",
            &json!({"clientid": "u-J1", "username": "app", "action": "subscribe", "topic": topic}),
        )
    };
    assert_eq!(
        check("t/#").1,
        json!({"result": "deny"}),
        "receive covers only t/+"
    );
    assert_eq!(
        check("t/+").1,
        json!({"result": "deny"}),
        "not provable from the rules"
    );
    assert_eq!(
        check("t/a").1,
        json!({"result": "allow"}),
        "literal: subscribe and receive"
    );
    assert_eq!(
        check("t/a/b").1,
        json!({"result": "deny"}),
        "literal without receive"
    );
    // mosquitto checks each delivery, so the subscription alone is decided there.
    let user = json!({"username": "app", "password": token, "clientid": "u-J1"});
    assert_eq!(authz.json("/goauth/user", &user).0, 200);
    let acl = |topic: &str, acc: u8| {
        authz
            .json(
                "/goauth/acl",
                &json!({"username": "app", "clientid": "u-J1", "topic": topic, "acc": acc}),
            )
            .0
    };
    assert_eq!(acl("t/#", 4), 200);
    assert_eq!(acl("t/a", 1), 200);
    assert_eq!(acl("t/a/b", 1), 403);
}

#[test]
fn hostile_connections_do_not_stop_the_service() {
    let s = start("authz-hostile", &[]);
    let mut slow = s.authz.client();
    slow.send_raw(b"POST /rabbitmq/topic HTTP/1.1\r\nhost: x\r\n");
    let mut garbage = s.authz.client();
    garbage.send_raw(b"\x00\x01\x02 not http\r\n\r\n");
    let mut chunked = s.authz.client();
    chunked.send_raw(
        format!(
            "POST /rabbitmq/user HTTP/1.1\r\nhost: x\r\ncontent-type: {FORM}\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    );
    // The service answers 413 and closes as soon as the body passes its limit, so a later
    // chunk may meet a closed socket.
    for _ in 0..5 {
        if !chunked.try_send_raw(format!("{:x}\r\n{}\r\n", 8000, "a".repeat(8000)).as_bytes()) {
            break;
        }
    }
    assert_eq!(chunked.response().0, 413, "a chunked body past the limit");
    assert_eq!(
        rmq_user(&s, "app", MOBILE, &s.tokens.mobile("P1", "A1", "J1")),
        allow(),
        "everyone else is still served"
    );
    assert_eq!(s.authz.healthz()["status"], "ok");
}
