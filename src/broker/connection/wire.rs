//! One connection's byte stream as MQTT packets, holding no buffer while the client is idle.
//!
//! [`Wire`] reads into a chunk on the stack and copies only what arrived into a heap buffer
//! of exactly that size; once every complete packet in it is decoded (their payloads keep
//! the bytes they point into alive, nothing else), the buffer is let go. Only a packet
//! that arrived in part keeps one. Replies are encoded into a write buffer that is written
//! out when it reaches [`WRITE_BATCH_BYTES`] and at every flush, and let go once written.
//! So an idle connection holds neither (a `tokio_util` `Framed` keeps both, 2–8 KiB each,
//! for the connection's life).
//!
//! Cost: each read chunk (at most [`READ_CHUNK`] bytes) is copied once, and each read and
//! each flush allocates one buffer — a small price beside the system call it goes with.
//! This module must never drop a byte read or a decoded packet, and never lets a partial
//! packet grow past what the codec's size limit admits (the codec refuses it first).

use crate::mqtt::codec::{CodecError, MqttCodec, Packet};
use bytes::{Buf, BytesMut};
use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::codec::{Decoder, Encoder};

/// The most bytes taken from the stream in one read.
pub(super) const READ_CHUNK: usize = 8192;

/// Queued output is written out once it reaches this size, even mid-batch.
pub(super) const WRITE_BATCH_BYTES: usize = 8192;

/// Capacity of a write buffer when the first packet of a batch is encoded into it.
const WRITE_INITIAL: usize = 1024;

/// A stream with the MQTT codec, its read and write buffers allocated only while in use.
pub(crate) struct Wire<S> {
    io: S,
    codec: MqttCodec,
    /// Bytes read and not yet decoded; empty and unallocated between packets.
    read: BytesMut,
    /// Encoded packets not yet written; empty and unallocated after a flush.
    write: BytesMut,
    /// The stream reported its end.
    eof: bool,
}

impl<S> Wire<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps `io`, decoding and encoding with `codec`.
    pub(crate) fn new(io: S, codec: MqttCodec) -> Wire<S> {
        Wire {
            io,
            codec,
            read: BytesMut::new(),
            write: BytesMut::new(),
            eof: false,
        }
    }

    /// Bytes held by the read and write buffers (their capacities).
    #[cfg(test)]
    pub(super) fn buffered_capacity(&self) -> usize {
        self.read.capacity() + self.write.capacity()
    }

    /// The next packet; `None` at a clean end of the stream, an error for bytes the codec
    /// refuses, a stream that ends inside a packet, or a failed read.
    pub(crate) async fn next(&mut self) -> Option<Result<Packet, CodecError>> {
        poll_fn(|cx| self.poll_packet(cx)).await
    }

    /// The next packet, boxed (see [`Wire::next`]): a task that waits for input then holds
    /// one pointer for it, not the space of the largest packet.
    pub(crate) async fn next_boxed(&mut self) -> Box<Option<Result<Packet, CodecError>>> {
        poll_fn(|cx| self.poll_packet(cx).map(Box::new)).await
    }

    /// Polls for the next packet (see [`Wire::next`]).
    pub(crate) fn poll_packet(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Packet, CodecError>>> {
        loop {
            if !self.read.is_empty() {
                match self.codec.decode(&mut self.read) {
                    Ok(Some(packet)) => {
                        self.release_read();
                        return Poll::Ready(Some(Ok(packet)));
                    }
                    Ok(None) => {}
                    Err(error) => return Poll::Ready(Some(Err(error))),
                }
            }
            if self.eof {
                return Poll::Ready(if self.read.is_empty() {
                    None
                } else {
                    Some(Err(CodecError::Io(io::ErrorKind::UnexpectedEof.into())))
                });
            }
            let read = ready!(self.poll_fill(cx));
            match read {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(error) => return Poll::Ready(Some(Err(CodecError::Io(error)))),
            }
        }
    }

    /// Lets the read buffer go once nothing undecoded is left in it: decoded payloads hold
    /// their own reference to the bytes, and an empty view would keep the whole chunk.
    fn release_read(&mut self) {
        if self.read.is_empty() {
            self.read = BytesMut::new();
        }
    }

    /// Reads once, into a stack chunk, then moves what arrived into the read buffer: a new
    /// buffer of exactly that size when nothing was buffered, else onto the end of the
    /// partial packet waiting there.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        let filled = buf.filled();
        if self.read.is_empty() {
            self.read = BytesMut::from(filled);
        } else {
            self.read.extend_from_slice(filled);
        }
        Poll::Ready(Ok(filled.len()))
    }

    /// Ready to take a packet: waits only while the write buffer is at its batch size,
    /// writing it out.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        if self.write.len() >= WRITE_BATCH_BYTES {
            ready!(self.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Encodes `packet` into the write buffer (written at the next flush, or once the
    /// buffer reaches its batch size).
    pub(crate) fn start_send(&mut self, packet: Packet) -> Result<(), CodecError> {
        if self.write.capacity() == 0 {
            self.write.reserve(WRITE_INITIAL);
        }
        self.codec.encode(packet, &mut self.write)
    }

    /// Writes everything buffered, then lets the buffer go.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.write.is_empty() {
            let written = ready!(Pin::new(&mut self.io).poll_write(cx, &self.write))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.write.advance(written);
        }
        self.write = BytesMut::new();
        Poll::Ready(Ok(()))
    }

    /// Writes everything buffered and flushes the stream.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Writes everything buffered and flushes the stream.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Encodes `packet` and writes it out now.
    pub(crate) async fn send(&mut self, packet: Packet) -> Result<(), CodecError> {
        poll_fn(|cx| self.poll_ready(cx)).await?;
        self.start_send(packet)?;
        Ok(self.flush().await?)
    }

    /// Writes everything buffered, then shuts the stream's write side down.
    pub(crate) async fn close(&mut self) -> io::Result<()> {
        self.flush().await?;
        poll_fn(|cx| Pin::new(&mut self.io).poll_shutdown(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::codec::{CodecLimits, Connect, ProtocolVersion};
    use futures_util::FutureExt;
    use tokio::io::AsyncWriteExt;

    fn encoded(packet: Packet, version: ProtocolVersion) -> Vec<u8> {
        let mut out = BytesMut::new();
        packet.encode(version, &mut out).expect("encodes");
        out.to_vec()
    }

    fn connect() -> Packet {
        Packet::Connect(Box::new(Connect {
            version: ProtocolVersion::V311,
            clean_start: true,
            keep_alive: 0,
            client_id: "wire-test".into(),
            will: None,
            username: None,
            password: None,
            properties: Default::default(),
        }))
    }

    #[tokio::test]
    async fn holds_no_buffer_between_packets_and_none_after_a_flush() {
        let (server, mut client) = tokio::io::duplex(64 * 1024);
        let mut wire = Wire::new(server, MqttCodec::server(CodecLimits::default()));
        assert_eq!(wire.buffered_capacity(), 0);
        let mut bytes = encoded(connect(), ProtocolVersion::V311);
        bytes.extend(encoded(Packet::PingReq, ProtocolVersion::V311));
        client.write_all(&bytes).await.expect("written");
        assert!(matches!(wire.next().await, Some(Ok(Packet::Connect(_)))));
        assert!(matches!(wire.next().await, Some(Ok(Packet::PingReq))));
        assert_eq!(
            wire.buffered_capacity(),
            0,
            "no read buffer once all is decoded"
        );
        assert!(
            wire.next().now_or_never().is_none(),
            "nothing more to read yet"
        );
        assert_eq!(
            wire.buffered_capacity(),
            0,
            "waiting for input holds nothing"
        );
        wire.send(Packet::PingResp).await.expect("sent");
        assert_eq!(wire.buffered_capacity(), 0, "no write buffer once flushed");
    }

    #[tokio::test]
    async fn a_packet_split_across_reads_is_decoded_whole_and_nothing_is_lost() {
        let (server, mut client) = tokio::io::duplex(64 * 1024);
        let mut wire = Wire::new(server, MqttCodec::server(CodecLimits::default()));
        let mut bytes = Vec::new();
        bytes.extend(encoded(connect(), ProtocolVersion::V311));
        for _ in 0..500 {
            bytes.extend(encoded(Packet::PingReq, ProtocolVersion::V311));
        }
        // Byte by byte for the CONNECT, then in odd-sized pieces.
        let (head, tail) = bytes.split_at(20);
        for byte in head {
            client.write_all(&[*byte]).await.expect("written");
        }
        for piece in tail.chunks(7) {
            client.write_all(piece).await.expect("written");
        }
        client.shutdown().await.expect("closed");
        assert!(matches!(wire.next().await, Some(Ok(Packet::Connect(_)))));
        for index in 0..500 {
            let packet = wire.next().await;
            assert!(
                matches!(packet, Some(Ok(Packet::PingReq))),
                "packet {index}: {packet:?}"
            );
        }
        assert!(wire.next().await.is_none(), "clean end of stream");
    }

    #[tokio::test]
    async fn a_stream_ending_inside_a_packet_is_an_error_not_a_clean_end() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut wire = Wire::new(server, MqttCodec::server(CodecLimits::default()));
        let bytes = encoded(connect(), ProtocolVersion::V311);
        client
            .write_all(&bytes[..bytes.len() - 1])
            .await
            .expect("written");
        client.shutdown().await.expect("closed");
        assert!(matches!(wire.next().await, Some(Err(CodecError::Io(_)))));
    }

    #[tokio::test]
    async fn a_packet_over_the_size_limit_is_refused_from_its_header() {
        let (server, mut client) = tokio::io::duplex(1024);
        let limits = CodecLimits {
            max_packet_size: 100,
            ..CodecLimits::default()
        };
        let mut wire = Wire::new(server, MqttCodec::server(limits));
        client
            .write_all(&encoded(connect(), ProtocolVersion::V311))
            .await
            .expect("written");
        assert!(matches!(wire.next().await, Some(Ok(Packet::Connect(_)))));
        // PUBLISH QoS 0 announcing a 1 MiB remaining length; only the header is sent.
        client
            .write_all(&[0x30, 0x80, 0x80, 0x40])
            .await
            .expect("written");
        assert!(matches!(
            wire.next().await,
            Some(Err(CodecError::PacketTooLarge { .. }))
        ));
    }
}
