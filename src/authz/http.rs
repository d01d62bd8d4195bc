//! The HTTP/1.1 server: routes, body limits, keep-alive.
//!
//! Built on hyper 1 directly (`http1::Builder` + `service_fn`): eight fixed routes need a
//! `match`, not a router framework, and hyper alone keeps the per-request path short
//! (keep-alive and pipelining included). Routes: `GET /healthz`; `POST /rabbitmq/{user,
//! vhost,resource,topic}`, `/emqx/{authn,authz}`, `/goauth/{user,superuser,acl}`.
//!
//! Limits: a body over [`MAX_BODY_BYTES`] is refused with 413 before it is read whole
//! (declared `Content-Length`) or as soon as it passes the limit (chunked); headers must
//! arrive within [`HEADER_TIMEOUT`] (also the keep-alive idle timeout); at most [`MAX_CONNECTIONS`] connections are served at
//! once (more are closed at accept). Unknown paths get 404, other methods 405; every
//! answer that is not an allow says `deny` in its protocol's words. Handlers are
//! synchronous and never block: a decision holds one shard lock for under a microsecond.

use super::{Authz, Reply, emqx, goauth, rabbitmq, unix_now};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The largest request body read (a JWT is at most 8 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Connections served at once; brokers keep a small pool each.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a request's headers may take to arrive. hyper also applies it to a keep-alive
/// connection waiting for its next request, so it is the idle timeout too: longer than the
/// brokers' own pool idle timeouts (Erlang httpc 120 s, Go 90 s), so that they, not this
/// server, close idle connections and a request never races a server-side close.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(300);

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`: the service is up.
    Healthz,
    /// A RabbitMQ HTTP auth backend endpoint.
    RabbitMq(rabbitmq::Endpoint),
    /// An EMQX HTTP authentication or authorization endpoint.
    Emqx(emqx::Endpoint),
    /// A mosquitto-go-auth HTTP backend endpoint.
    GoAuth(goauth::Endpoint),
}

/// The route for a request path (no query strings: brokers send none).
pub fn route(path: &str) -> Option<Route> {
    use Route::*;
    Some(match path {
        "/healthz" => Healthz,
        "/rabbitmq/user" => RabbitMq(rabbitmq::Endpoint::User),
        "/rabbitmq/vhost" => RabbitMq(rabbitmq::Endpoint::Vhost),
        "/rabbitmq/resource" => RabbitMq(rabbitmq::Endpoint::Resource),
        "/rabbitmq/topic" => RabbitMq(rabbitmq::Endpoint::Topic),
        "/emqx/authn" => Emqx(emqx::Endpoint::Authn),
        "/emqx/authz" => Emqx(emqx::Endpoint::Authz),
        "/goauth/user" => GoAuth(goauth::Endpoint::User),
        "/goauth/superuser" => GoAuth(goauth::Endpoint::Superuser),
        "/goauth/acl" => GoAuth(goauth::Endpoint::Acl),
        _ => return None,
    })
}

/// Answers a POST to `route` (not [`Route::Healthz`]).
pub fn dispatch(
    authz: &Authz,
    route: Route,
    content_type: Option<&str>,
    body: &[u8],
    now: u64,
) -> Reply {
    match route {
        Route::Healthz => healthz(authz),
        Route::RabbitMq(e) => rabbitmq::handle(authz, e, content_type, body, now),
        Route::Emqx(e) => emqx::handle(authz, e, content_type, body, now),
        Route::GoAuth(e) => goauth::handle(authz, e, content_type, body, now),
    }
}

fn healthz(authz: &Authz) -> Reply {
    let loaded = authz.loaded();
    Reply::json(
        200,
        &serde_json::json!({
            "status": "ok",
            "sessions": authz.sessions().len(),
            "max_sessions": authz.sessions().capacity(),
            "policy_generation": loaded.generation,
        }),
    )
}

/// A refusal in the words of the route's protocol.
fn refusal(route: Option<Route>, status: u16) -> Reply {
    match route {
        Some(Route::Emqx(_)) => Reply::json(status, &serde_json::json!({"result": "deny"})),
        Some(Route::GoAuth(_)) => Reply::json(
            status,
            &serde_json::json!({"ok": false, "error": "bad request"}),
        ),
        _ => Reply::text(status, "deny"),
    }
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    response
}

async fn answer(
    authz: Arc<Authz>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = route(request.uri().path());
    let reply = match (route, request.method()) {
        (None, _) => refusal(None, 404),
        (Some(Route::Healthz), &Method::GET) => healthz(&authz),
        (Some(route), &Method::POST) if route != Route::Healthz => {
            read_and_dispatch(&authz, route, request).await
        }
        (Some(route), _) => refusal(Some(route), 405),
    };
    Ok(response(reply))
}

async fn read_and_dispatch(authz: &Authz, route: Route, request: Request<Incoming>) -> Reply {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return refusal(Some(route), 413);
    }
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return refusal(Some(route), 413);
        }
        Err(_) => return refusal(Some(route), 400),
    };
    dispatch(authz, route, content_type.as_deref(), &body, unix_now())
}

/// Serves until `stop` is cancelled.
pub async fn serve(listener: TcpListener, authz: Arc<Authz>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit ({MAX_CONNECTIONS}) reached; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let authz = authz.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(authz.clone(), request));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .pipeline_flush(true)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%peer, "connection ended: {error}");
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_path_has_a_route_and_nothing_else_does() {
        for path in [
            "/healthz",
            "/rabbitmq/user",
            "/rabbitmq/vhost",
            "/rabbitmq/resource",
            "/rabbitmq/topic",
            "/emqx/authn",
            "/emqx/authz",
            "/goauth/user",
            "/goauth/superuser",
            "/goauth/acl",
        ] {
            assert!(route(path).is_some(), "{path}");
        }
        for path in [
            "/",
            "/rabbitmq",
            "/rabbitmq/user/",
            "/RABBITMQ/user",
            "/emqx/authn/x",
        ] {
            assert_eq!(route(path), None, "{path}");
        }
    }
}
