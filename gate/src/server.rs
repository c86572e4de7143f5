//! Accepting connections: plain TCP or TLS, each served by hyper for HTTP/1.1 (with upgrades)
//! and HTTP/2 (h2c by its preface without TLS, by ALPN with it), until a stop drains them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::app::{App, ConnInfo};
use crate::stores::{GateBook, GateRoom};

/// The most HTTP/2 streams one client may have open at once.
const MAX_STREAMS: u32 = 256;
/// The smallest read buffer hyper takes.
const MIN_BUF: usize = 8192;

fn builder(app: &App<impl GateBook, impl GateRoom>) -> auto::Builder<TokioExecutor> {
    let p = &app.settings.proxy;
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(p.header_timeout)
        .max_buf_size((p.max_header_bytes * 2).max(MIN_BUF))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(p.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(Some(p.idle_timeout / 2))
        .keep_alive_timeout(p.idle_timeout / 2);
    b
}

/// Serves `listener` until `stop` turns true, then stops accepting and waits up to the drain
/// timeout for the connections in flight (each finishes its requests and closes).
pub async fn serve<B: GateBook, R: GateRoom>(
    app: Arc<App<B, R>>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let builder = Arc::new(builder(&app));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        spawn_connection(&app, &builder, &graceful, tls.as_ref(), stream, peer);
    }
    drop(listener);
    let drain = app.settings.proxy.drain_timeout;
    tracing::info!(
        ?drain,
        "no longer accepting connections; draining those in flight"
    );
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?drain,
            "connections still open after the drain timeout were dropped"
        );
    }
}

/// Serves one accepted connection on a task of its own, watched for the drain.
fn spawn_connection<B: GateBook, R: GateRoom>(
    app: &Arc<App<B, R>>,
    builder: &Arc<auto::Builder<TokioExecutor>>,
    graceful: &GracefulShutdown,
    tls: Option<&TlsAcceptor>,
    stream: TcpStream,
    peer: std::net::SocketAddr,
) {
    let (app, builder) = (app.clone(), builder.clone());
    let Some(acceptor) = tls.cloned() else {
        let conn = ConnInfo { peer, tls: false };
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service(app, conn))
            .into_owned();
        let watched = graceful.watch(served);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, %peer, "a connection ended with an error");
            }
        });
        return;
    };
    let watcher = graceful.watcher();
    tokio::spawn(async move {
        let timeout = app.settings.proxy.header_timeout;
        let Some(tls) = handshake(acceptor, stream, timeout).await else {
            return;
        };
        let conn = ConnInfo { peer, tls: true };
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(tls), service(app, conn))
            .into_owned();
        if let Err(e) = watcher.watch(served).await {
            tracing::debug!(error = %e, %peer, "a connection ended with an error");
        }
    });
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "a TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("a TLS handshake did not finish in time");
            None
        }
    }
}

fn service<B: GateBook, R: GateRoom>(
    app: Arc<App<B, R>>,
    conn: ConnInfo,
) -> impl hyper::service::Service<
    http::Request<Incoming>,
    Response = http::Response<crate::proxy::GateBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<crate::proxy::GateBody>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(request, conn).await) }
    })
}
