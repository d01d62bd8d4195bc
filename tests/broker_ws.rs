//! MQTT over WebSocket and secure WebSocket, driven by a `tokio-tungstenite` client and our
//! own codec: the `mqtt` subprotocol is required; a JWT may come from an
//! `Authorization: Bearer` header or a `token` query parameter; a gateway certificate over
//! wss gives the same identity as over tls; a bad bearer token gets CONNACK 0x86.

use crate::broker_harness::{STEP, connect_packet};
use crate::broker_tls::{GATEWAY_ID, MOBILE_ID, Pki, SecureBroker};
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::codec::Framed;
use topicguard::broker::listener::ws::WsStream;
use topicguard::mqtt::codec::{
    CodecLimits, MqttCodec, Packet, Properties, ProtocolVersion, Publish, QoS, Subscribe,
    SubscribeFilter, SubscriptionOptions,
};

type Client<S> = Framed<WsStream<S>, MqttCodec>;

/// Upgrades `stream` to a WebSocket at `path` with the given headers.
async fn upgrade<S>(
    stream: S,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Client<S>, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let url = format!("ws://{addr}{path}");
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    for (name, value) in headers {
        let value = value.parse().map_err(|_| "header value".to_string())?;
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| e.to_string())?;
        request.headers_mut().insert(name, value);
    }
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| e.to_string())?;
    let codec = MqttCodec::client(ProtocolVersion::V5, CodecLimits::default());
    Ok(Framed::new(WsStream::new(ws, 64 * 1024), codec))
}

async fn ws(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Client<TcpStream> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    upgrade(stream, addr, path, headers).await.expect("upgrade")
}

async fn wss(
    pki: &Pki,
    addr: SocketAddr,
    cert: &str,
) -> Client<impl AsyncRead + AsyncWrite + Unpin> {
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(pki.dir.join("ca.pem")).expect("CA");
    roots.add(ca).expect("add the CA");
    let chain =
        vec![CertificateDer::from_pem_file(pki.dir.join(format!("{cert}.pem"))).expect("cert")];
    let key = PrivateKeyDer::from_pem_file(pki.dir.join(format!("{cert}-key.pem"))).expect("key");
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client auth");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS");
    upgrade(tls, addr, "/mqtt", &[("Sec-WebSocket-Protocol", "mqtt")])
        .await
        .expect("upgrade")
}

async fn next<S: AsyncRead + AsyncWrite + Unpin>(client: &mut Client<S>) -> Packet {
    match tokio::time::timeout(STEP, client.next()).await {
        Ok(Some(Ok(packet))) => packet,
        other => panic!("expected a packet, got {other:?}"),
    }
}

/// Sends CONNECT and returns the CONNACK code.
async fn connect<S: AsyncRead + AsyncWrite + Unpin>(client: &mut Client<S>, id: &str) -> u8 {
    let packet = connect_packet(ProtocolVersion::V5, id, None);
    client
        .send(Packet::Connect(Box::new(packet)))
        .await
        .expect("send CONNECT");
    match next(client).await {
        Packet::ConnAck(ack) => ack.code,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mqtt_subprotocol_is_required() {
    let pki = Pki::generate("ws-proto");
    let broker = SecureBroker::start(&pki).await;
    let stream = TcpStream::connect(broker.ws).await.expect("connect");
    let refused = upgrade(stream, broker.ws, "/mqtt", &[]).await;
    assert!(
        refused.is_err_and(|e| e.contains("400")),
        "no subprotocol must get HTTP 400"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_from_header_or_query_and_a_certificate_over_wss() {
    let pki = Pki::generate("ws-auth");
    let broker = SecureBroker::start(&pki).await;
    let bearer = format!("Bearer {}", pki.token(3600));
    let headers = [
        ("Sec-WebSocket-Protocol", "mqtt"),
        ("Authorization", bearer.as_str()),
    ];
    let mut mobile = ws(broker.ws, "/mqtt", &headers).await;
    assert_eq!(
        connect(&mut mobile, MOBILE_ID).await,
        0,
        "bearer token over ws"
    );
    let subscribe = Subscribe {
        packet_id: 1,
        filters: vec![SubscribeFilter {
            filter: "c/iot/P1_A1/+/presence".into(),
            options: SubscriptionOptions::qos(QoS::AtMostOnce),
        }],
        properties: Properties::default(),
    };
    mobile
        .send(Packet::Subscribe(subscribe))
        .await
        .expect("SUBSCRIBE");
    assert!(matches!(next(&mut mobile).await, Packet::SubAck(ack) if ack.reasons[0].0 == 0));

    let mut gateway = wss(&pki, broker.wss, "gateway").await;
    assert_eq!(
        connect(&mut gateway, GATEWAY_ID).await,
        0,
        "certificate over wss"
    );
    let topic = format!("c/iot/P1_A1/{GATEWAY_ID}/presence");
    let publish = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.clone(),
        packet_id: 0,
        payload: "online".into(),
        properties: Properties::default(),
    };
    gateway
        .send(Packet::Publish(publish))
        .await
        .expect("PUBLISH");
    match next(&mut mobile).await {
        Packet::Publish(p) => assert_eq!(
            (p.topic.as_str(), &p.payload[..]),
            (topic.as_str(), &b"online"[..])
        ),
        other => panic!("expected the presence, got {other:?}"),
    }

    let query = format!("/mqtt?token={}", pki.token(3600));
    let mut second = ws(broker.ws, &query, &[("Sec-WebSocket-Protocol", "mqtt")]).await;
    assert_eq!(
        connect(&mut second, MOBILE_ID).await,
        0,
        "query token over ws"
    );
    let forged = [
        ("Sec-WebSocket-Protocol", "mqtt"),
        ("Authorization", "Bearer a.b.c"),
    ];
    let mut bad = ws(broker.ws, "/mqtt", &forged).await;
    assert_eq!(
        connect(&mut bad, MOBILE_ID).await,
        0x86,
        "a bad bearer token"
    );
    broker.stop().await;
}
