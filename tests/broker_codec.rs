//! The broker's MQTT codec from the outside: round trips of every packet type in both
//! versions, the hostile byte sequences of bad-inputs §8.4 (cases 47–56), and a
//! cross-check against `rumqttc`'s independent encoder and decoder.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;
use topicguard::mqtt::codec::{
    Ack, Auth, CodecError, CodecLimits, ConnAck, Connect, Disconnect, MqttCodec, Packet,
    PacketType, Properties, ProtocolVersion, Publish, QoS, ReasonCode, RetainHandling, SubAck,
    Subscribe, SubscribeFilter, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};

use ProtocolVersion::{V5, V311};

fn props(version: ProtocolVersion, props: Properties) -> Properties {
    match version {
        V5 => props,
        V311 => Properties::default(),
    }
}

fn user(k: &str, v: &str) -> Properties {
    Properties {
        user_properties: vec![(k.into(), v.into())],
        ..Properties::default()
    }
}

fn connect(version: ProtocolVersion) -> Connect {
    Connect {
        version,
        clean_start: false,
        keep_alive: 30,
        client_id: "xfi:P1_A1:clt:J1".into(),
        will: Some(Will {
            topic: "c/iot/P1_A1/presence".into(),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: props(
                version,
                Properties {
                    will_delay_interval: Some(5),
                    content_type: Some("text/plain".into()),
                    ..Properties::default()
                },
            ),
        }),
        username: Some("mobile:P1:A1:J1".into()),
        password: Some(Bytes::from_static(b"\x00secret\xff")),
        properties: props(
            version,
            Properties {
                session_expiry_interval: Some(3600),
                receive_maximum: Some(10),
                maximum_packet_size: Some(65_536),
                topic_alias_maximum: Some(4),
                ..user("app", "test")
            },
        ),
    }
}

/// A server-side codec that has already seen a CONNECT of `version`.
fn server(version: ProtocolVersion) -> MqttCodec {
    let mut codec = MqttCodec::server(CodecLimits::default());
    let bytes = encode(&Packet::Connect(Box::new(connect(version))), version);
    let first = decode_all(&mut codec, &bytes).unwrap();
    assert_eq!(first.len(), 1);
    codec
}

fn encode(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    packet.encode(version, &mut buf).unwrap();
    buf
}

fn decode_all(codec: &mut MqttCodec, bytes: &[u8]) -> Result<Vec<Packet>, CodecError> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(packet) = codec.decode(&mut buf)? {
        out.push(packet);
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    Ok(out)
}

/// Decodes with a fresh server codec: CONNECT first, then `tail`.
fn server_decode(version: ProtocolVersion, tail: &[u8]) -> Result<Vec<Packet>, CodecError> {
    let mut codec = server(version);
    decode_all(&mut codec, tail)
}

fn client_to_server(version: ProtocolVersion) -> Vec<Packet> {
    let p = |x| props(version, x);
    vec![
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            retain: true,
            topic: "c/xfi/P1_A1/lights/c1/r1".into(),
            packet_id: 7,
            payload: Bytes::from_static(b"{\"on\":true}"),
            properties: p(Properties {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(60),
                response_topic: Some("c/r".into()),
                correlation_data: Some(Bytes::from_static(b"cd")),
                topic_alias: Some(2),
                ..user("k", "v")
            }),
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "a".into(),
            packet_id: 0,
            payload: Bytes::new(),
            properties: Properties::default(),
        }),
        Packet::Subscribe(Subscribe {
            packet_id: 9,
            filters: vec![
                SubscribeFilter {
                    filter: "c/xfi/+/#".into(),
                    options: SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: version == V5,
                        retain_as_published: version == V5,
                        retain_handling: match version {
                            V5 => RetainHandling::Never,
                            V311 => RetainHandling::OnSubscribe,
                        },
                    },
                },
                SubscribeFilter {
                    filter: "$share/g/c/+/x".into(),
                    options: SubscriptionOptions::qos(QoS::ExactlyOnce),
                },
            ],
            properties: p(Properties {
                subscription_identifiers: vec![42],
                ..Properties::default()
            }),
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 10,
            filters: vec!["a/+".into(), "#".into()],
            properties: p(user("u", "1")),
        }),
        Packet::PingReq,
    ]
}

fn server_to_client(version: ProtocolVersion) -> Vec<Packet> {
    let p = |x| props(version, x);
    let failure = match version {
        V5 => ReasonCode::NOT_AUTHORIZED,
        V311 => ReasonCode(0x80),
    };
    vec![
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: 0,
            properties: p(Properties {
                assigned_client_identifier: Some("tg-1".into()),
                server_keep_alive: Some(60),
                receive_maximum: Some(20),
                maximum_qos: Some(1),
                retain_available: Some(1),
                topic_alias_maximum: Some(10),
                wildcard_subscription_available: Some(1),
                subscription_identifier_available: Some(0),
                shared_subscription_available: Some(1),
                ..Properties::default()
            }),
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "c/xfi/P1_A1/c1/lights/r1/success".into(),
            packet_id: 1,
            payload: Bytes::from_static(b"ok"),
            properties: p(Properties {
                subscription_identifiers: vec![1, 2],
                ..Properties::default()
            }),
        }),
        Packet::SubAck(SubAck {
            packet_id: 9,
            reasons: vec![ReasonCode::GRANTED_QOS_1, failure],
            properties: p(Properties {
                reason_string: Some("denied by rule".into()),
                ..Properties::default()
            }),
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: 10,
            reasons: match version {
                V5 => vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
                V311 => vec![],
            },
            properties: p(user("a", "b")),
        }),
        Packet::PingResp,
    ]
}

/// Packets either side may send.
fn both_ways(version: ProtocolVersion) -> Vec<Packet> {
    let ack = |reason| Ack {
        packet_id: 3,
        reason: match version {
            V5 => reason,
            V311 => ReasonCode::SUCCESS,
        },
        properties: props(version, user("why", "test")),
    };
    let mut out = vec![
        Packet::PubAck(ack(ReasonCode::NOT_AUTHORIZED)),
        Packet::PubAck(Ack::new(4)),
        Packet::PubRec(ack(ReasonCode::NO_MATCHING_SUBSCRIBERS)),
        Packet::PubRel(ack(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)),
        Packet::PubComp(Ack::new(5)),
        Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)),
    ];
    if version == V5 {
        out.push(Packet::Disconnect(Disconnect {
            reason: ReasonCode::DISCONNECT_WITH_WILL,
            properties: Properties {
                session_expiry_interval: Some(0),
                reason_string: Some("bye".into()),
                ..Properties::default()
            },
        }));
        out.push(Packet::Auth(Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: Properties {
                authentication_method: Some("SCRAM".into()),
                authentication_data: Some(Bytes::from_static(b"\x01\x02")),
                ..Properties::default()
            },
        }));
    }
    out
}

#[test]
fn every_packet_round_trips_in_both_versions() {
    for version in [V311, V5] {
        let mut codec = MqttCodec::server(CodecLimits::default());
        let connect = Packet::Connect(Box::new(connect(version)));
        let got = decode_all(&mut codec, &encode(&connect, version)).unwrap();
        assert_eq!(got, vec![connect]);
        assert_eq!(codec.version(), Some(version));
        for packet in client_to_server(version)
            .into_iter()
            .chain(both_ways(version))
        {
            let got = decode_all(&mut codec, &encode(&packet, version)).unwrap();
            assert_eq!(got, vec![packet], "{version:?}");
        }
        let mut client = MqttCodec::client(version, CodecLimits::default());
        for packet in server_to_client(version)
            .into_iter()
            .chain(both_ways(version))
        {
            let got = decode_all(&mut client, &encode(&packet, version)).unwrap();
            assert_eq!(got, vec![packet], "{version:?}");
        }
    }
}

#[test]
fn packets_split_at_every_byte_still_decode() {
    let version = V5;
    let mut codec = server(version);
    let packet = client_to_server(version).remove(0);
    let bytes = encode(&packet, version);
    let mut buf = BytesMut::new();
    let mut got = None;
    for (i, byte) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        let out = codec.decode(&mut buf).unwrap();
        assert_eq!(out.is_some(), i + 1 == bytes.len());
        got = got.or(out);
    }
    assert_eq!(got, Some(packet));
}

// ---- bad-inputs §8.4 ------------------------------------------------------------------

fn reason(err: &CodecError) -> u8 {
    err.reason_code().0
}

#[test]
fn case_47_bad_remaining_length_closes_before_any_body() {
    let mut codec = MqttCodec::server(CodecLimits::default());
    let mut five = BytesMut::from(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let capacity = five.capacity();
    let err = codec.decode(&mut five).unwrap_err();
    assert!(matches!(err, CodecError::RemainingLengthTooLong), "{err}");
    assert_eq!(reason(&err), 0x81);
    assert_eq!(five.capacity(), capacity, "the decoder must not reserve");
    for non_minimal in [&[0x10, 0x85, 0x00][..], &[0x10, 0x80, 0x80, 0x00]] {
        let err =
            decode_all(&mut MqttCodec::server(CodecLimits::default()), non_minimal).unwrap_err();
        assert!(
            matches!(err, CodecError::RemainingLengthNotMinimal),
            "{err}"
        );
        assert_eq!(reason(&err), 0x81);
    }
}

#[test]
fn case_48_huge_declared_length_is_refused_from_the_header() {
    let mut codec = MqttCodec::server(CodecLimits::default());
    let mut buf = BytesMut::from(&[0x10, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let capacity = buf.capacity();
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::PacketTooLarge {
                size: 268_435_460,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(reason(&err), 0x95);
    assert_eq!(buf.capacity(), capacity);
    // Within the cap but incomplete: the decoder waits and reserves nothing.
    let mut partial = BytesMut::from(&[0x10, 0x80, 0x40, 0x00][..]);
    let capacity = partial.capacity();
    assert!(codec.decode(&mut partial).unwrap().is_none());
    assert_eq!(partial.capacity(), capacity);
}

#[test]
fn case_49_first_packet_must_be_connect() {
    let firsts: [&[u8]; 7] = [
        &[0x30, 0x03, 0x00, 0x01, b'a'],    // PUBLISH
        &[0x40, 0x02, 0x00, 0x01],          // PUBACK
        &[0x82, 0x06, 0, 1, 0, 1, b'a', 0], // SUBSCRIBE
        &[0xC0, 0x00],                      // PINGREQ
        &[0xF0, 0x00],                      // AUTH
        &[0xE0, 0x00],                      // DISCONNECT
        &[0x62, 0x02, 0x00, 0x01],          // PUBREL
    ];
    for bytes in firsts {
        let err = decode_all(&mut MqttCodec::server(CodecLimits::default()), bytes).unwrap_err();
        assert!(
            matches!(err, CodecError::FirstPacketNotConnect { .. }),
            "{err}"
        );
        assert_eq!(reason(&err), 0x82);
    }
    for reserved in [&[0x00, 0x00][..], &[0x0F, 0x00]] {
        let err = decode_all(&mut MqttCodec::server(CodecLimits::default()), reserved).unwrap_err();
        assert!(matches!(err, CodecError::ReservedPacketType(0)), "{err}");
    }
    let err = server_decode(V311, &[0xF0, 0x00]).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::NotInVersion {
                packet: PacketType::Auth
            }
        ),
        "{err}"
    );
}

#[test]
fn case_50_second_connect_is_a_protocol_error() {
    for version in [V311, V5] {
        let again = encode(&Packet::Connect(Box::new(connect(version))), version);
        let err = server_decode(version, &again).unwrap_err();
        assert!(matches!(err, CodecError::SecondConnect), "{err}");
        assert_eq!(reason(&err), 0x82);
    }
}

/// A minimal CONNECT with the given protocol name, level and flags, and an empty client id.
fn raw_connect(name: &[u8], level: u8, flags: u8, tail: &[u8]) -> Vec<u8> {
    let mut body = vec![0, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(tail);
    let mut out = vec![0x10, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

fn first_packet_error(bytes: &[u8]) -> CodecError {
    decode_all(&mut MqttCodec::server(CodecLimits::default()), bytes).unwrap_err()
}

#[test]
fn case_51_bad_protocol_level_name_or_reserved_flag() {
    for level in [2, 3, 6] {
        let err = first_packet_error(&raw_connect(b"MQTT", level, 2, &[0, 1, b'c']));
        assert!(
            matches!(err, CodecError::UnsupportedProtocolVersion { .. }),
            "{err}"
        );
        assert!(err.answers_with_connack());
        assert_eq!(reason(&err), 0x84);
    }
    let err = first_packet_error(&raw_connect(b"MQTX", 4, 2, &[0, 1, b'c']));
    assert!(matches!(err, CodecError::BadProtocolName { .. }), "{err}");
    assert!(err.answers_with_connack());
    let err = first_packet_error(&raw_connect(b"MQTT", 4, 3, &[0, 1, b'c']));
    assert!(matches!(err, CodecError::ReservedBits { .. }), "{err}");
    assert_eq!(reason(&err), 0x81);
    assert!(!err.answers_with_connack());
}

#[test]
fn case_52_flags_announcing_absent_fields_are_malformed() {
    // username + password flags, then nothing after an empty client id: the
    // "remaining length 7" family of over-reads.
    let err = first_packet_error(&raw_connect(b"MQTT", 4, 0xC2, &[0, 0]));
    assert!(
        matches!(
            err,
            CodecError::Truncated {
                packet: PacketType::Connect,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(reason(&err), 0x81);
    let err = first_packet_error(&raw_connect(b"MQTT", 4, 0xC2, &[0, 0, 0, 9, b'u']));
    assert!(matches!(err, CodecError::Truncated { .. }), "{err}");
    // Password without user name in 3.1.1; will QoS without the will flag.
    let err = first_packet_error(&raw_connect(b"MQTT", 4, 0x42, &[0, 0, 0, 0]));
    assert!(matches!(err, CodecError::PasswordWithoutUsername), "{err}");
    let err = first_packet_error(&raw_connect(b"MQTT", 4, 0x0A, &[0, 0]));
    assert!(matches!(err, CodecError::WillFlagsWithoutWill), "{err}");
    let err = first_packet_error(&raw_connect(b"MQTT", 4, 0x1E, &[0, 0, 0, 1, b't', 0, 0]));
    assert!(matches!(err, CodecError::InvalidQos { .. }), "{err}");
    // Bytes after the last announced field.
    let err = first_packet_error(&raw_connect(b"MQTT", 4, 0x02, &[0, 1, b'c', 0xAA]));
    assert!(
        matches!(err, CodecError::TrailingBytes { extra: 1, .. }),
        "{err}"
    );
}

#[test]
fn case_53_forbidden_characters_in_client_id_username_and_will_topic() {
    let bad: [&[u8]; 5] = [
        b"a\x00b",
        b"\xED\xA0\x80",
        b"\xEF\xBF\xBF",
        b"a\x1Bb",
        b"\xC0\x80",
    ];
    for text in bad {
        let mut id = vec![0, text.len() as u8];
        id.extend_from_slice(text);
        let err = first_packet_error(&raw_connect(b"MQTT", 4, 0x02, &id));
        assert!(
            matches!(
                err,
                CodecError::ForbiddenCharacter {
                    field: "client identifier",
                    ..
                } | CodecError::InvalidUtf8 {
                    field: "client identifier"
                }
            ),
            "{text:?}: {err}"
        );
        assert_eq!(reason(&err), 0x81);
        let mut with_user = vec![0, 1, b'c'];
        with_user.extend_from_slice(&id);
        let err = first_packet_error(&raw_connect(b"MQTT", 4, 0x82, &with_user));
        assert!(err.to_string().contains("user name"), "{err}");
        let mut will = vec![0, 1, b'c'];
        will.extend_from_slice(&id);
        will.extend_from_slice(&[0, 0]);
        let err = first_packet_error(&raw_connect(b"MQTT", 4, 0x06, &will));
        assert!(err.to_string().contains("will topic"), "{err}");
    }
}

fn raw_subscribe(filter: &[u8], options: u8, v5_props: bool) -> Vec<u8> {
    let mut body = vec![0, 1];
    if v5_props {
        body.push(0);
    }
    body.extend_from_slice(&[0, filter.len() as u8]);
    body.extend_from_slice(filter);
    body.push(options);
    let mut out = vec![0x82, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

#[test]
fn case_54_bad_subscribe_packets() {
    let v311_reserved = server_decode(V311, &raw_subscribe(b"a", 0x04, false)).unwrap_err();
    assert!(matches!(v311_reserved, CodecError::ReservedBits { .. }));
    let cases: [(&[u8], u8, u8); 8] = [
        (b"a", 0x40, 0x81),           // reserved bit 6
        (b"a", 0x03, 0x81),           // QoS 3
        (b"a", 0x30, 0x82),           // retain handling 3
        (b"", 0x00, 0x81),            // empty filter
        (b"$share/g/", 0x00, 0x81),   // empty shared filter
        (b"$share/g/a", 0x04, 0x82),  // no-local on shared
        (b"$share/g+/a", 0x00, 0x81), // share name with +
        (b"$share/#/a", 0x00, 0x81),  // share name with #
    ];
    for (filter, options, code) in cases {
        let err = server_decode(V5, &raw_subscribe(filter, options, true)).unwrap_err();
        assert_eq!(reason(&err), code, "{filter:?} {options:#x}: {err}");
    }
    let bad_flags = server_decode(V5, &[0x80, 0x06, 0, 1, 0, 0, 1, b'a']).unwrap_err();
    assert!(matches!(bad_flags, CodecError::InvalidFlags { .. }));
    let no_filters = server_decode(V5, &[0x82, 0x03, 0, 1, 0]).unwrap_err();
    assert!(matches!(no_filters, CodecError::NoTopicFilters { .. }));
    assert_eq!(reason(&no_filters), 0x82);
    let zero_id = server_decode(V311, &[0x82, 0x06, 0, 0, 0, 1, b'a', 0]).unwrap_err();
    assert!(matches!(zero_id, CodecError::ZeroPacketIdentifier { .. }));
}

#[test]
fn case_55_server_only_packets_from_a_client_are_refused() {
    for bytes in [
        &[0x20, 0x02, 0, 0][..],
        &[0x90, 0x03, 0, 1, 0],
        &[0xD0, 0x00],
        &[0xB0, 0x02, 0, 1],
    ] {
        for version in [V311, V5] {
            let err = server_decode(version, bytes).unwrap_err();
            assert!(matches!(err, CodecError::WrongDirection { .. }), "{err}");
            assert_eq!(reason(&err), 0x82);
        }
        let err = first_packet_error(bytes);
        assert!(matches!(err, CodecError::WrongDirection { .. }), "{err}");
    }
}

#[test]
fn case_56_a_topic_of_65535_slashes_decodes_without_recursion() {
    // Syntax allows it; the broker's level cap rejects it (see the broker tests). The
    // codec must handle it in linear time and without recursion.
    let topic = "/".repeat(65_535);
    let packet = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.clone(),
        packet_id: 0,
        payload: Bytes::new(),
        properties: Properties::default(),
    });
    let got = server_decode(V311, &encode(&packet, V311)).unwrap();
    assert_eq!(got, vec![packet]);
    let filter = format!("{}#", "+/".repeat(30_000));
    let sub = Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![SubscribeFilter {
            filter,
            options: SubscriptionOptions::qos(QoS::AtMostOnce),
        }],
        properties: Properties::default(),
    });
    assert_eq!(server_decode(V311, &encode(&sub, V311)).unwrap(), vec![sub]);
}

#[test]
fn publish_flag_and_property_rules() {
    // DUP with QoS 0, QoS 3, wildcard topic, zero packet id.
    for bytes in [
        &[0x38, 0x03, 0, 1, b'a'][..],
        &[0x36, 0x05, 0, 1, b'a', 0, 1],
        &[0x30, 0x03, 0, 1, b'+'],
        &[0x32, 0x05, 0, 1, b'a', 0, 0],
    ] {
        let err = server_decode(V311, bytes).unwrap_err();
        assert!(reason(&err) >= 0x81, "{err}");
    }
    // A client may not send a subscription identifier; empty topic needs an alias.
    let err = server_decode(V5, &[0x30, 0x06, 0, 1, b'a', 2, 0x0B, 1]).unwrap_err();
    assert!(
        matches!(err, CodecError::SubscriptionIdentifierFromClient),
        "{err}"
    );
    let err = server_decode(V5, &[0x30, 0x03, 0, 0, 0]).unwrap_err();
    assert!(matches!(err, CodecError::InvalidTopicName { .. }), "{err}");
    let ok = server_decode(V5, &[0x30, 0x06, 0, 0, 3, 0x23, 0, 1]).unwrap();
    assert!(matches!(&ok[0], Packet::Publish(p) if p.topic.is_empty()));
}

#[test]
fn user_properties_are_capped_by_the_limit() {
    let limits = CodecLimits {
        max_user_properties: 2,
        ..CodecLimits::default()
    };
    let mut codec = MqttCodec::server(limits);
    let mut c = connect(V5);
    c.properties.user_properties = vec![("a".into(), "b".into()); 3];
    let err = decode_all(&mut codec, &encode(&Packet::Connect(Box::new(c)), V5)).unwrap_err();
    assert!(
        matches!(err, CodecError::TooManyUserProperties { max: 2, .. }),
        "{err}"
    );
    assert_eq!(reason(&err), 0x97);
}

// ---- cross-check against rumqttc ------------------------------------------------------

mod rumqttc_cross_check {
    use super::*;
    use rumqttc::mqttbytes::v4;
    use rumqttc::v5::mqttbytes::v5;

    fn v4_packets() -> Vec<v4::Packet> {
        let mut connect = v4::Connect::new("client-1");
        connect.keep_alive = 45;
        connect.clean_session = false;
        connect.set_login("user", "pass");
        connect.last_will = Some(v4::LastWill::new(
            "will/t",
            "gone",
            rumqttc::QoS::AtLeastOnce,
            true,
        ));
        let mut publish = v4::Publish::new("a/b/c", rumqttc::QoS::ExactlyOnce, vec![1, 2, 3]);
        publish.pkid = 77;
        publish.retain = true;
        let mut subscribe = v4::Subscribe::new("a/+/#", rumqttc::QoS::AtLeastOnce);
        subscribe.pkid = 5;
        subscribe.add("$share/g/x".into(), rumqttc::QoS::ExactlyOnce);
        let mut unsubscribe = v4::Unsubscribe::new("a/+");
        unsubscribe.pkid = 6;
        vec![
            v4::Packet::Connect(connect),
            v4::Packet::Publish(publish),
            v4::Packet::PubAck(v4::PubAck::new(77)),
            v4::Packet::PubRec(v4::PubRec::new(77)),
            v4::Packet::PubRel(v4::PubRel::new(77)),
            v4::Packet::PubComp(v4::PubComp::new(77)),
            v4::Packet::Subscribe(subscribe),
            v4::Packet::Unsubscribe(unsubscribe),
            v4::Packet::PingReq,
            v4::Packet::Disconnect,
        ]
    }

    #[test]
    fn rumqttc_v4_client_packets_decode_identically() {
        let mut ours = MqttCodec::server(CodecLimits::default());
        for theirs in v4_packets() {
            let mut buf = BytesMut::new();
            theirs.write(&mut buf, 1 << 20).unwrap();
            let decoded = decode_all(&mut ours, &buf).unwrap();
            assert_eq!(decoded.len(), 1, "{theirs:?}");
            // Re-encode ours and compare byte for byte.
            assert_eq!(encode(&decoded[0], V311), buf, "{theirs:?}");
        }
    }

    #[test]
    fn our_v4_server_packets_decode_in_rumqttc() {
        for packet in server_to_client(V311).into_iter().chain(both_ways(V311)) {
            let mut buf = encode(&packet, V311);
            let theirs = v4::Packet::read(&mut buf, 1 << 20)
                .unwrap_or_else(|e| panic!("rumqttc refused {packet:?}: {e:?}"));
            let mut again = BytesMut::new();
            theirs.write(&mut again, 1 << 20).unwrap();
            assert_eq!(again, encode(&packet, V311), "{packet:?}");
        }
    }

    fn v5_packets() -> Vec<v5::Packet> {
        let connect = v5::Connect {
            keep_alive: 20,
            client_id: "client-5".into(),
            clean_start: true,
            properties: Some(v5::ConnectProperties {
                session_expiry_interval: Some(120),
                receive_maximum: Some(16),
                max_packet_size: Some(4096),
                topic_alias_max: Some(3),
                request_response_info: Some(1),
                request_problem_info: Some(0),
                user_properties: vec![("k".into(), "v".into())],
                authentication_method: None,
                authentication_data: None,
            }),
        };
        let will = v5::LastWill {
            topic: Bytes::from_static(b"will/5"),
            message: Bytes::from_static(b"bye"),
            qos: rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            retain: false,
            properties: Some(v5::LastWillProperties {
                delay_interval: Some(3),
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(9),
                content_type: Some("t".into()),
                response_topic: Some("r".into()),
                correlation_data: Some(Bytes::from_static(b"c")),
                user_properties: vec![],
            }),
        };
        let login = v5::Login {
            username: "u".into(),
            password: "p".into(),
        };
        let mut publish = v5::Publish::new(
            "a/b",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            vec![9u8; 300],
            Some(v5::PublishProperties {
                payload_format_indicator: Some(0),
                message_expiry_interval: Some(30),
                topic_alias: Some(1),
                response_topic: Some("resp".into()),
                correlation_data: Some(Bytes::from_static(b"x")),
                user_properties: vec![("a".into(), "b".into())],
                subscription_identifiers: vec![],
                content_type: Some("json".into()),
            }),
        );
        publish.pkid = 12;
        let mut filter = v5::Filter::new("c/+/#", rumqttc::v5::mqttbytes::QoS::ExactlyOnce);
        filter.nolocal = true;
        filter.preserve_retain = true;
        filter.retain_forward_rule = v5::RetainForwardRule::OnNewSubscribe;
        let subscribe = v5::Subscribe {
            pkid: 13,
            filters: vec![filter],
            properties: Some(v5::SubscribeProperties {
                id: Some(7),
                user_properties: vec![],
            }),
        };
        vec![
            v5::Packet::Connect(connect, Some(will), Some(login)),
            v5::Packet::Publish(publish),
            v5::Packet::Subscribe(subscribe),
            v5::Packet::Unsubscribe(v5::Unsubscribe {
                pkid: 14,
                filters: vec!["c/#".into()],
                properties: None,
            }),
            v5::Packet::PubAck(v5::PubAck {
                pkid: 12,
                reason: v5::PubAckReason::NotAuthorized,
                properties: None,
            }),
            v5::Packet::PingReq(v5::PingReq),
        ]
    }

    #[test]
    fn rumqttc_v5_client_packets_decode_with_the_same_fields() {
        let mut ours = MqttCodec::server(CodecLimits::default());
        for theirs in v5_packets() {
            let mut buf = BytesMut::new();
            theirs.write(&mut buf, None).unwrap();
            let decoded = decode_all(&mut ours, &buf)
                .unwrap_or_else(|e| panic!("we refused {theirs:?}: {e}"));
            assert_eq!(decoded.len(), 1);
            // Our re-encoding must decode in rumqttc to the same packet.
            let mut again = encode(&decoded[0], V5);
            let back = v5::Packet::read(&mut again, None).unwrap();
            assert_eq!(back, theirs);
        }
    }

    /// The spec lets a 5.0 DISCONNECT with reason 0x00 and no properties have remaining
    /// length 0 (MQTT 3.14.2.1). rumqttc 0.25 writes that short form itself, yet its
    /// `Packet::read` refuses it ("PayloadRequired"), and it cannot read AUTH at all. This
    /// pins both divergences (so a fix there is noticed) and checks that what rumqttc
    /// writes for DISCONNECT decodes here.
    #[test]
    fn disconnect_and_auth_where_rumqttc_cannot_read_its_own_output() {
        let short = Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS));
        let theirs = v5::Disconnect::new(v5::DisconnectReasonCode::NormalDisconnection);
        let mut buf = BytesMut::new();
        theirs.write(&mut buf).unwrap();
        assert_eq!(buf, encode(&short, V5));
        assert_eq!(server_decode(V5, &buf).unwrap(), vec![short]);
        assert!(v5::Packet::read(&mut buf, None).is_err());

        // rumqttc does not export AUTH's reason type, so only our encoding can be tried.
        let auth = both_ways(V5).pop().unwrap();
        assert!(matches!(auth, Packet::Auth(_)));
        let mut buf = encode(&auth, V5);
        assert!(v5::Packet::read(&mut buf, None).is_err());
    }

    #[test]
    fn our_v5_server_packets_decode_in_rumqttc() {
        let short_disconnect = Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS));
        let packets = server_to_client(V5).into_iter().chain(both_ways(V5));
        let readable = |p: &Packet| *p != short_disconnect && !matches!(p, Packet::Auth(_));
        for packet in packets.filter(readable) {
            let mut buf = encode(&packet, V5);
            let theirs = v5::Packet::read(&mut buf, None)
                .unwrap_or_else(|e| panic!("rumqttc refused {packet:?}: {e:?}"));
            let mut again = BytesMut::new();
            theirs.write(&mut again, None).unwrap();
            let mut client = MqttCodec::client(V5, CodecLimits::default());
            assert_eq!(decode_all(&mut client, &again).unwrap(), vec![packet]);
        }
    }
}
