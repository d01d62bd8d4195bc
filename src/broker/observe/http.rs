//! A minimal HTTP/1.1 responder for the metrics endpoint, on its own listener.
//!
//! `GET /metrics` answers 200 with the Prometheus text; any other path 404, any other
//! method 405. One request per connection (`Connection: close`). The request head is
//! read within 5 seconds and at most 8 KiB; anything else is answered 400 or dropped.
//! This module must never touch broker state other than reading the counters.

use super::metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

const MAX_HEAD: usize = 8 * 1024;
const READ_DEADLINE: Duration = Duration::from_secs(5);

/// Serves `metrics` on `listener` until `shutdown` resolves.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>, shutdown: impl Future) {
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "metrics endpoint listening");
    }
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let metrics = metrics.clone();
        tracker.spawn(async move {
            let _ = tokio::time::timeout(READ_DEADLINE * 2, answer(stream, &metrics)).await;
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(READ_DEADLINE, tracker.wait()).await;
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let Some(head) = read_head(&mut stream).await? else {
        return respond(&mut stream, "400 Bad Request", "bad request\n").await;
    };
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match (method, path) {
        ("GET", "/metrics") => respond(&mut stream, "200 OK", &metrics.render()).await,
        ("GET", _) => respond(&mut stream, "404 Not Found", "not found; try /metrics\n").await,
        _ => respond(&mut stream, "405 Method Not Allowed", "only GET\n").await,
    }
}

/// Reads up to the blank line ending the request head; None if too long, late or not text.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let read = async {
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n")
            && !buffer.windows(2).any(|w| w == b"\n\n")
        {
            let n = stream.read(&mut chunk).await?;
            if n == 0 || buffer.len() + n > MAX_HEAD {
                return Ok(false);
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        Ok::<bool, std::io::Error>(true)
    };
    match tokio::time::timeout(READ_DEADLINE, read).await {
        Ok(Ok(true)) => Ok(String::from_utf8(buffer).ok()),
        Ok(Ok(false)) | Err(_) => Ok(None),
        Ok(Err(error)) => Err(error),
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
