//! Accepting connections within limits: at most `max_connections` open at once (the rest wait
//! in the kernel's backlog until one closes), each given `header_read_timeout` to send a
//! request's headers (also while it idles between requests: hyper runs that timer whenever
//! the connection waits for a request head), so a client that sends a byte a second, or
//! nothing, holds a connection for that long at most. A request's body must arrive whole
//! within `body_read_timeout` (`408` otherwise) and be at most `max_body_bytes` (`413`; the
//! operator's plan uploads under `/admin/` may be larger and slower), so a body sent a byte a
//! second holds its connection no longer than a slow head would. Ctrl-C stops accepting and
//! lets requests in flight finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The server's limits on connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// The longest a connection may take to send a request's headers, or idle between
    /// requests.
    pub header_read_timeout: Duration,
    /// The longest a request's body may take to arrive whole.
    pub body_read_timeout: Duration,
    /// The largest body taken (but for the operator's uploads).
    pub max_body_bytes: usize,
}

/// How many times the body limits an operator's upload under `/admin/` gets (its own size
/// limit is the admin routes' own).
const ADMIN_BODY_TIME_FACTOR: u32 = 10;

/// Reads the request's body whole within the limits before the portal sees the request.
async fn bounded_body(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let (max_bytes, within) = if parts.uri.path().starts_with("/admin/") {
        let within = limits.body_read_timeout * ADMIN_BODY_TIME_FACTOR;
        (crate::server::admin::MAX_PLAN_BYTES, within)
    } else {
        (limits.max_body_bytes, limits.body_read_timeout)
    };
    let refused = |status: StatusCode, text: String| {
        // The rest of the body is never read: the connection closes after this answer.
        let mut answer = (status, text).into_response();
        answer
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        answer
    };
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max_bytes as u64) {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request's body is over {max_bytes} bytes; send less"),
        );
    }
    match tokio::time::timeout(within, axum::body::to_bytes(body, max_bytes)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request's body is over {max_bytes} bytes, or was cut off; send less"),
        ),
        Err(_) => refused(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request's body did not arrive within {} s; send it again",
                within.as_secs()
            ),
        ),
    }
}

/// How long requests in flight may take to finish after Ctrl-C.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` within `limits` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let app = app.layer(middleware::from_fn_with_state(limits, bounded_body));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.map_err(|e| e.to_string())?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, a reset before accept: wait a moment, go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // The permit is the connection's place: given back when it closes.
            let _permit = permit;
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
    Ok(())
}
