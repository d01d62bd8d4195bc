//! The load tool's idle mode over TLS (`topicguard bench --idle N --tls-ca FILE`) against the
//! broker's TLS listener: connections verify the broker with the given CA and name and stay
//! open; a CA that did not sign the broker's certificate, or a name it does not carry, is
//! refused at the handshake, before any MQTT is spoken.

use crate::broker_tls::{Pki, SecureBroker};
use topicguard::load::connections::{Held, hold_idle};
use topicguard::load::tls::TlsLogin;
use topicguard::load::{LoadError, Login};
use topicguard::mqtt::codec::ProtocolVersion;

fn login(broker: std::net::SocketAddr) -> Login {
    Login {
        broker,
        version: ProtocolVersion::V5,
        username: None,
        password: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_over_tls_verify_the_broker_and_stay_open() {
    let pki = Pki::generate("load-tls");
    let broker = SecureBroker::start(&pki).await;
    let tls = TlsLogin::new(&pki.dir.join("ca.pem"), "127.0.0.1").expect("TLS client");
    let held = hold_idle(&login(broker.tls), Some(&tls), "dev-tls-", 5)
        .await
        .expect("five idle TLS connections");
    assert_eq!(held.len(), 5);
    assert!(held.iter().all(|h| matches!(h, Held::Tls(_))));
    assert_eq!(
        broker.broker.session_count(),
        5,
        "every connection attached"
    );
    drop(held);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sibling_ca_or_a_wrong_name_is_refused_at_the_handshake() {
    let pki = Pki::generate("load-tls-rogue");
    let broker = SecureBroker::start(&pki).await;
    // The services CA is trusted by the broker for clients, but did not sign its certificate.
    let sibling = TlsLogin::new(&pki.dir.join("services-ca.pem"), "127.0.0.1").expect("client");
    let refused = hold_idle(&login(broker.tls), Some(&sibling), "dev-tls-", 1).await;
    assert!(
        matches!(refused, Err(LoadError::Tls { .. })),
        "a sibling CA: {refused:?}"
    );
    // The broker's certificate names 127.0.0.1 only.
    let named = TlsLogin::new(&pki.dir.join("ca.pem"), "localhost").expect("client");
    let refused = hold_idle(&login(broker.tls), Some(&named), "dev-tls-", 1).await;
    assert!(
        matches!(refused, Err(LoadError::Tls { .. })),
        "a wrong server name: {refused:?}"
    );
    assert_eq!(broker.broker.session_count(), 0, "nothing reached CONNECT");
    broker.stop().await;
}
