//! MQTT over WebSocket (`ws` and `wss` listeners): the upgrade and a byte-stream adapter.
//!
//! The upgrade must offer the `mqtt` subprotocol (MQTT 5.0 §6) or it is refused with HTTP
//! 400; a JWT may come from `Authorization: Bearer <jwt>` or a `token` query parameter.
//! [`WsStream`] turns binary frames into the byte stream the MQTT codec reads (a text frame
//! closes the connection, MQTT-6.0.0-1) and the codec's writes into binary frames; frames,
//! messages and the write buffer are all bounded. This module must never parse MQTT.

use bytes::Bytes;
use futures_util::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Completes the upgrade; returns the stream and the token the request carried.
// The callback's error type (an HTTP response) is tungstenite's, hence large.
#[allow(clippy::result_large_err)]
pub async fn accept<S>(
    stream: S,
    max_packet_size: usize,
) -> Result<(WsStream<S>, Option<String>), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut token = None;
    let callback = |request: &Request, response: Response| upgrade(request, response, &mut token);
    let config = websocket_config(max_packet_size);
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await?;
    Ok((WsStream::new(ws, max_packet_size), token))
}

fn websocket_config(max_packet_size: usize) -> WebSocketConfig {
    let limit = max_packet_size.saturating_add(1024);
    WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
        .write_buffer_size(0)
        .max_write_buffer_size(limit.saturating_mul(2))
}

// The signature is tungstenite's `Callback`: the error is the HTTP refusal it sends.
#[allow(clippy::result_large_err)]
fn upgrade(
    request: &Request,
    mut response: Response,
    token: &mut Option<String>,
) -> Result<Response, ErrorResponse> {
    let offers_mqtt = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim().eq_ignore_ascii_case("mqtt"));
    if !offers_mqtt {
        tracing::info!("WebSocket upgrade refused: the `mqtt` subprotocol was not offered");
        let mut refusal = ErrorResponse::new(Some("the `mqtt` subprotocol is required".into()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    response
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
    *token = bearer_token(request).or_else(|| query_token(request));
    Ok(response)
}

fn bearer_token(request: &Request) -> Option<String> {
    let value = request.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// `?token=<jwt>`: JWTs are base64url and dots, so no percent-decoding is needed; a
/// percent-encoded value is passed on as is and fails verification.
fn query_token(request: &Request) -> Option<String> {
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|token| !token.is_empty())
        .map(str::to_string)
}

/// A WebSocket as a byte stream of binary frames.
pub struct WsStream<S> {
    inner: WebSocketStream<S>,
    /// The unread rest of the last binary frame.
    read: Bytes,
    /// Bytes written since the last flush (at most `max_write`).
    write: Vec<u8>,
    max_write: usize,
}

impl<S> WsStream<S> {
    /// Wraps an established WebSocket (either side); writes are buffered up to
    /// `max_packet_size` bytes per frame.
    pub fn new(inner: WebSocketStream<S>, max_packet_size: usize) -> WsStream<S> {
        WsStream {
            inner,
            read: Bytes::new(),
            write: Vec::new(),
            max_write: max_packet_size.max(4096),
        }
    }
}

fn io_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(error) => error,
        other => io::Error::other(other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.read.is_empty() {
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => this.read = data,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a text frame on an MQTT WebSocket (MQTT-6.0.0-1)",
                    )));
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => {} // ping, pong: answered by tungstenite
                Some(Err(error)) => return Poll::Ready(Err(io_error(error))),
            }
        }
        let n = this.read.len().min(buf.remaining());
        buf.put_slice(&this.read.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// Sends the buffered bytes as one binary frame.
    fn poll_send_buffer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut self.inner).poll_ready(cx)).map_err(io_error)?;
        let frame = Message::Binary(Bytes::from(std::mem::take(&mut self.write)));
        Pin::new(&mut self.inner)
            .start_send(frame)
            .map_err(io_error)?;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.write.len() >= this.max_write {
            ready!(this.poll_send_buffer(cx))?;
        }
        let n = buf.len().min(this.max_write - this.write.len());
        this.write.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_send_buffer(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_send_buffer(cx))?;
        Pin::new(&mut this.inner).poll_close(cx).map_err(io_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("a valid test request")
    }

    #[test]
    fn the_mqtt_subprotocol_is_required_and_echoed() {
        let mut token = None;
        let refused = upgrade(&request("/mqtt", &[]), Response::default(), &mut token);
        assert_eq!(
            refused.err().map(|r| r.status()),
            Some(StatusCode::BAD_REQUEST)
        );
        let offered = request("/mqtt", &[("Sec-WebSocket-Protocol", "mqttv3.1, mqtt")]);
        let response = upgrade(&offered, Response::default(), &mut token).expect("accepted");
        assert_eq!(response.headers()["sec-websocket-protocol"], "mqtt");
    }

    #[test]
    fn a_token_comes_from_the_bearer_header_before_the_query() {
        let both = request(
            "/mqtt?x=1&token=from.query.jwt",
            &[
                ("Sec-WebSocket-Protocol", "mqtt"),
                ("Authorization", "Bearer from.header.jwt"),
            ],
        );
        let mut token = None;
        upgrade(&both, Response::default(), &mut token).expect("accepted");
        assert_eq!(token.as_deref(), Some("from.header.jwt"));
        let query = request(
            "/mqtt?token=from.query.jwt",
            &[("Sec-WebSocket-Protocol", "mqtt")],
        );
        upgrade(&query, Response::default(), &mut token).expect("accepted");
        assert_eq!(token.as_deref(), Some("from.query.jwt"));
        let basic = request(
            "/mqtt",
            &[
                ("Sec-WebSocket-Protocol", "mqtt"),
                ("Authorization", "Basic eDp5"),
            ],
        );
        upgrade(&basic, Response::default(), &mut token).expect("accepted");
        assert_eq!(token, None);
    }
}
