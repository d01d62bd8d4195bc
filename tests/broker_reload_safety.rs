//! An empty, unfinished or half-written policy file never replaces a working policy on
//! reload: the running policy keeps deciding, and the refusal is logged and counted. A file
//! written in two halves (the first half a valid policy that lacks the second half's deny)
//! is loaded only once complete; an empty file, a comments-only file and a file cut in the
//! middle of a line are refused; a rule-less policy replaces the running one only when the
//! operator allows it, and a zero-byte file never. The real broker and the real reloader
//! polling the file.

use crate::broker_harness::{TestClient, test_config};
use crate::broker_tls::{Pki, SecureBroker};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use topicguard::Policy;
use topicguard::broker::reload::{PolicyReloader, ReloadError, ReloadOptions};
use topicguard::mqtt::codec::{ProtocolVersion, QoS};

const DEV: &str =
    "identity dev from anonymous {\n    client \"dev-{+cid}\"\n}\nallow dev connect\n";
const RUNNING: &str = "allow dev publish, subscribe, receive \"dev/#\"\n";
/// A valid policy on its own — and more permissive than the whole file.
const FIRST_HALF: &str =
    "allow dev publish, subscribe, receive \"dev/#\"\nallow dev publish \"other/#\"\n";
const SECOND_HALF: &str = "deny dev publish \"other/secret\"\n";

const POLL: Duration = Duration::from_millis(100);
const SETTLE: Duration = Duration::from_secs(3);

/// The running policy: `dev` may use `dev/#`.
async fn start(name: &str) -> (Pki, SecureBroker, PathBuf) {
    let pki = Pki::generate(name);
    let path = pki.dir.join("broker.policy");
    std::fs::write(&path, format!("{DEV}{RUNNING}")).expect("write the policy");
    let policy = Policy::load(&path).expect("the first policy loads");
    let broker = SecureBroker::with(&pki, policy, test_config()).await;
    (pki, broker, path)
}

fn reloader(broker: &SecureBroker, path: &Path, options: ReloadOptions) -> PolicyReloader {
    PolicyReloader::new(
        path,
        broker.engines.clone(),
        broker.broker.clone(),
        Some(broker.authenticator.clone()),
    )
    .with_options(options)
}

/// Starts the reloader's poll loop; cancel the token to stop it.
fn watch(broker: &SecureBroker, path: &Path, options: ReloadOptions) -> CancellationToken {
    let stop = CancellationToken::new();
    tokio::spawn(reloader(broker, path, options).run(POLL, stop.clone()));
    stop
}

/// (applied, rejected) reloads so far.
fn reloads(broker: &SecureBroker) -> (u64, u64) {
    broker.broker.config.observer.metrics().policy_reloads()
}

/// The PUBACK reason of a QoS 1 publish to `topic`.
async fn puback(client: &mut TestClient, topic: &str) -> u8 {
    client.publish(topic, b"x", QoS::AtLeastOnce, false).await.0
}

/// Waits (bounded) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_in_two_halves_is_loaded_only_once_complete() {
    let (_pki, broker, path) = start("reload-halves").await;
    let running = broker.engines.load_full();
    let options = ReloadOptions {
        settle: SETTLE,
        allow_empty: false,
    };
    let stop = watch(&broker, &path, options);
    // Every engine that ever serves, sampled far more often than the file is polled.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let sampler = {
        let (engines, seen, stop) = (broker.engines.clone(), seen.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let rules = engines.load().checked().rules.len();
                {
                    let mut seen = seen.lock().unwrap();
                    if seen.last() != Some(&rules) {
                        seen.push(rules);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut client = TestClient::connect(broker.tcp, ProtocolVersion::V5, "dev-w", None).await;
    assert_eq!(puback(&mut client, "other/secret").await, 0x87);

    std::fs::write(&path, format!("{DEV}{FIRST_HALF}")).expect("write the first half");
    // The writer pauses (well under the settle time): the first half must never serve.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            puback(&mut client, "other/secret").await,
            0x87,
            "the half-written policy was swapped in"
        );
    }
    assert!(Arc::ptr_eq(&running, &broker.engines.load_full()));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open to append");
    file.write_all(SECOND_HALF.as_bytes())
        .expect("write the second half");
    drop(file);

    eventually("the complete policy's reload", || reloads(&broker).0 == 1).await;
    assert_eq!(
        puback(&mut client, "other/open").await,
        0,
        "the new rules serve"
    );
    assert_eq!(
        puback(&mut client, "other/secret").await,
        0x87,
        "with their deny"
    );
    stop.cancel();
    sampler.await.expect("the sampler ends");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [2, 4],
        "only the running and the complete policy ever served"
    );
    assert_eq!(reloads(&broker), (1, 0));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_comment_only_and_unfinished_files_keep_the_running_policy() {
    let (_pki, broker, path) = start("reload-empty").await;
    let running = broker.engines.load_full();
    let options = ReloadOptions {
        settle: Duration::from_millis(200),
        allow_empty: false,
    };
    let stop = watch(&broker, &path, options);
    let mut client = TestClient::connect(broker.tcp, ProtocolVersion::V5, "dev-e", None).await;
    let cut_mid_line =
        format!("{DEV}allow dev publish, subscribe, receive \"dev/#\"\ndeny dev publish \"dev/a");
    let declarations_only = DEV.replace("allow dev connect\n", "");
    let unfinished = [
        String::new(),
        "# the new policy is coming\n\n".to_string(),
        declarations_only,
        cut_mid_line,
    ];
    for (n, text) in unfinished.iter().enumerate() {
        std::fs::write(&path, text).expect("write");
        let rejected = n as u64 + 1;
        eventually("the refusal", || reloads(&broker).1 == rejected).await;
        assert!(
            Arc::ptr_eq(&running, &broker.engines.load_full()),
            "{text:?} replaced the running policy"
        );
        assert_eq!(
            puback(&mut client, "dev/a").await,
            0,
            "the old decisions continue"
        );
    }
    std::fs::write(&path, format!("{DEV}{FIRST_HALF}{SECOND_HALF}")).expect("write");
    eventually("the good file's reload", || reloads(&broker).0 == 1).await;
    assert_eq!(puback(&mut client, "other/open").await, 0);
    stop.cancel();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_says_why() {
    let (_pki, broker, path) = start("reload-why").await;
    let mut reloader = reloader(&broker, &path, ReloadOptions::default());
    type Expected = fn(&ReloadError) -> bool;
    let cases: [(&str, Expected); 4] = [
        ("", |e| matches!(e, ReloadError::Empty { .. })),
        ("# nothing yet\n", |e| {
            matches!(e, ReloadError::NoRules { .. })
        }),
        ("allow dev connect", |e| {
            matches!(e, ReloadError::Unfinished { .. })
        }),
        ("allow dev frobnicate\n", |e| {
            matches!(e, ReloadError::Invalid(_))
        }),
    ];
    for (text, expected) in cases {
        std::fs::write(&path, text).expect("write");
        let error = reloader.reload().expect_err("refused");
        assert!(expected(&error), "{text:?}: {error}");
        let message = error.to_string();
        assert!(
            message.contains("broker.policy"),
            "names the file: {message}"
        );
    }
    assert_eq!(reloads(&broker), (0, 4));
    let rendered = broker.broker.config.observer.metrics().render();
    assert!(rendered.contains("topicguard_policy_reloads_total{outcome=\"rejected\"} 4\n"));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_less_policy_denies_everything_only_when_allowed() {
    let (_pki, broker, path) = start("reload-allow-empty").await;
    let options = ReloadOptions {
        settle: Duration::ZERO,
        allow_empty: true,
    };
    let mut reloader = reloader(&broker, &path, options);
    let mut client = TestClient::connect(broker.tcp, ProtocolVersion::V5, "dev-d", None).await;
    std::fs::write(&path, "").expect("write");
    assert!(matches!(reloader.reload(), Err(ReloadError::Empty { .. })));
    let without_connect = DEV.replace("allow dev connect\n", "");
    std::fs::write(
        &path,
        format!("# deny everything on purpose\n{without_connect}"),
    )
    .expect("write");
    assert_eq!(reloader.reload().expect("allowed").rules, 0);
    assert_eq!(
        puback(&mut client, "dev/a").await,
        0x87,
        "everything is denied"
    );
    broker.stop().await;
}
