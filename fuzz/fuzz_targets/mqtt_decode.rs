//! The broker's server-side MQTT 3.1.1/5.0 decoder on arbitrary bytes.
//!
//! Asserts: decoding never panics and never loops; whatever it decodes re-encodes to bytes
//! that decode to the same packets (the decoder accepts nothing the encoder cannot say);
//! and feeding the same bytes in small chunks gives the same packets and the same error as
//! feeding them at once (a connection reads whatever TCP delivers).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use topicguard::mqtt::codec::{CodecError, CodecLimits, MqttCodec, Packet, ProtocolVersion};

/// Small limits, so the size checks are reached by inputs a fuzzer makes.
const LIMITS: CodecLimits = CodecLimits {
    max_packet_size: 4096,
    max_user_properties: 8,
};

/// Decodes like a connection: until the codec wants more bytes or fails.
fn decode_stream(chunks: &[&[u8]]) -> (Vec<Packet>, Option<CodecError>) {
    let mut codec = MqttCodec::server(LIMITS);
    let mut buffer = BytesMut::new();
    let mut packets = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            let before = buffer.len();
            match codec.decode(&mut buffer) {
                Ok(Some(packet)) => {
                    assert!(buffer.len() < before, "a packet was decoded from no bytes");
                    packets.push(packet);
                }
                Ok(None) => break,
                Err(error) => return (packets, Some(error)),
            }
        }
    }
    (packets, None)
}

fuzz_target!(|data: &[u8]| {
    let (packets, error) = decode_stream(&[data]);

    let step = 1 + data.first().map_or(0, |b| usize::from(b % 7));
    let chunks: Vec<&[u8]> = data.chunks(step).collect();
    let (chunked, chunked_error) = decode_stream(&chunks);
    assert_eq!(packets, chunked, "chunked input decodes differently");
    assert_eq!(
        error.map(|e| e.to_string()),
        chunked_error.map(|e| e.to_string())
    );

    let mut encoded = BytesMut::new();
    let mut version = ProtocolVersion::V311;
    for packet in &packets {
        if let Packet::Connect(connect) = packet {
            version = connect.version;
        }
        packet
            .encode(version, &mut encoded)
            .unwrap_or_else(|e| panic!("a decoded packet does not encode: {e}\n{packet:?}"));
    }
    let (again, again_error) = decode_stream(&[&encoded]);
    assert!(
        again_error.is_none(),
        "re-encoded packets fail: {again_error:?}"
    );
    assert_eq!(packets, again, "decode(encode(packet)) != packet");
});
