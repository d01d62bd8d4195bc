//! `topicguard authz` sessions over HTTP: a session ends when its token expires, the table
//! is bounded and evicts the session expiring soonest, and a policy reload (SIGHUP or file
//! change) applies to live sessions while a broken file changes nothing.

use crate::authz_contract::{MOBILE, Service, allow, deny, rmq_topic, rmq_user, start};
use crate::authz_harness::*;

#[test]
fn a_session_ends_when_its_token_expires() {
    let s = start("authz-expiry", &[]);
    let token = s.tokens.mobile_until("P1", "A1", "J1", Tokens::now() + 2);
    assert_eq!(rmq_user(&s, "app", MOBILE, &token), allow());
    let request = "c.xfi.P1_A1.lights.xfi:P1_A1:clt:J1.r1";
    assert_eq!(rmq_topic(&s, MOBILE, "write", request), allow());
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(rmq_topic(&s, MOBILE, "write", request), deny());
    assert_eq!(s.authz.healthz()["sessions"], 0, "the entry is gone");
}

#[test]
fn the_session_table_is_bounded_and_evicts_the_soonest_to_expire() {
    let s = start("authz-cap", &["--max-sessions", "2"]);
    let now = Tokens::now();
    let logins = [("J1", now + 900), ("J2", now + 300), ("J3", now + 600)];
    for (jti, exp) in logins {
        let token = s.tokens.mobile_until("P1", "A1", jti, exp);
        assert_eq!(
            rmq_user(&s, "app", &format!("xfi:P1_A1:clt:{jti}"), &token),
            allow()
        );
    }
    assert_eq!(s.authz.healthz()["sessions"], 2);
    for (jti, expected) in [("J1", allow()), ("J2", deny()), ("J3", allow())] {
        let client = format!("xfi:P1_A1:clt:{jti}");
        let key = format!("c.xfi.P1_A1.lights.{client}.r1");
        assert_eq!(rmq_topic(&s, &client, "write", &key), expected, "{jti}");
    }
}

#[test]
fn a_policy_reload_applies_to_live_sessions_and_a_broken_file_changes_nothing() {
    let s = start("authz-reload", &["--policy-poll-ms", "100"]);
    let scratch_policy = s.scratch.path("xfinity.policy");
    assert_eq!(
        rmq_user(&s, "app", MOBILE, &s.tokens.mobile("P1", "A1", "J1")),
        allow()
    );
    let request = "c.xfi.P1_A1.lights.xfi:P1_A1:clt:J1.r1";
    assert_eq!(rmq_topic(&s, MOBILE, "write", request), allow());
    let original = std::fs::read_to_string(&scratch_policy).unwrap();
    std::fs::write(
        &scratch_policy,
        format!("{original}\ndeny mobile publish \"c/xfi/+/lights/#\"\n"),
    )
    .unwrap();
    let signal = std::process::Command::new("kill")
        .args(["-HUP", &s.authz.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(signal.success());
    let generation = wait_for_generation(&s, 2);
    assert_eq!(
        rmq_topic(&s, MOBILE, "write", request),
        deny(),
        "new policy"
    );
    std::fs::write(&scratch_policy, "allow mobile publish \"#\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(
        s.authz.healthz()["policy_generation"],
        generation,
        "a broken file is never swapped in: {}",
        s.authz.log()
    );
    assert!(s.authz.log().contains("keeping the running policy"));
    assert_eq!(
        rmq_topic(&s, MOBILE, "write", request),
        deny(),
        "old policy kept"
    );
    assert_eq!(
        rmq_topic(
            &s,
            MOBILE,
            "read",
            "c.xfi.P1_A1.xfi:P1_A1:clt:J1.lights.*.success"
        ),
        allow(),
        "and still serving"
    );
}

fn wait_for_generation(s: &Service, at_least: u64) -> serde_json::Value {
    for _ in 0..100 {
        let generation = s.authz.healthz()["policy_generation"].clone();
        if generation.as_u64().is_some_and(|g| g >= at_least) {
            return generation;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the policy was not reloaded: {}", s.authz.log());
}
