//! The reverse proxy: one pooled keep-alive HTTP/1.1 client to the upstream, bodies streamed
//! both ways, hop-by-hop headers removed, protocol upgrades (WebSockets) tunnelled, and the
//! upstream's failures answered with `502`/`504` pages (or JSON for apps).
//!
//! The upstream's `Surgegate-Command` header is removed from every response here; its value
//! travels on in the response's extensions ([`UpstreamCommand`]) for the gated path to act on.

pub mod headers;
mod upgrade;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub use crate::body::{BodyError, GateBody, Outgoing, read_limited};

use crate::config::ProxySettings;
use crate::metrics::Metrics;
use crate::pages::{self, Templates};

/// The header the upstream answers with to end the visitor's pass.
pub const COMMAND_HEADER: &str = "surgegate-command";

/// The upstream's `Surgegate-Command`, taken off its response.
#[derive(Clone, Debug)]
pub struct UpstreamCommand(pub HeaderValue);

/// Marks a response that came from the upstream (not from the gate or the layer).
#[derive(Clone, Copy, Debug)]
pub struct FromUpstream;

/// The proxy to one upstream.
pub struct Proxy {
    client: Client<HttpConnector, Outgoing>,
    upstream: http::uri::Authority,
    settings: ProxySettings,
    metrics: Arc<Metrics>,
    templates: Arc<Templates>,
}

impl Proxy {
    /// A proxy to `upstream` with `settings`.
    pub fn new(
        upstream: http::uri::Authority,
        settings: ProxySettings,
        metrics: Arc<Metrics>,
        templates: Arc<Templates>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(settings.idle_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(settings.idle_timeout)
            .pool_max_idle_per_host(settings.max_idle_per_upstream)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .set_host(true)
            .build(connector);
        Proxy {
            client,
            upstream,
            settings,
            metrics,
            templates,
        }
    }

    /// The settings the proxy runs with.
    pub fn settings(&self) -> &ProxySettings {
        &self.settings
    }

    /// Forwards `request` (its forwarding headers already set) and returns the upstream's
    /// response, or the gate's `413`, `502` or `504`.
    ///
    /// # Cancel safety
    /// Dropping the future drops the upstream request (hyper closes or reuses the connection).
    pub async fn forward(&self, mut request: Request<Incoming>) -> Response<GateBody> {
        if content_length(request.headers()).is_some_and(|n| n > self.settings.max_body_bytes) {
            return too_large();
        }
        // What an error page needs of the request: two header values, not the whole map.
        let asked = [header::ACCEPT, header::ACCEPT_LANGUAGE]
            .map(|n| (n.clone(), request.headers().get(n).cloned()));
        let upgrade =
            request.version() == Version::HTTP_11 && headers::wants_upgrade(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();
        if !self.to_upstream(&mut parts, upgrade) {
            let body = serde_json::json!({"error": "bad_request", "detail": "the request target is not a path"});
            return pages::json(StatusCode::BAD_REQUEST, &body);
        }
        let too_large_flag = Arc::new(AtomicBool::new(false));
        let p = &self.settings;
        let body = Outgoing::new(
            body,
            p.max_body_bytes,
            p.idle_timeout,
            too_large_flag.clone(),
        );
        let started = Instant::now();
        let request = self.client.request(Request::from_parts(parts, body));
        let mut response = match tokio::time::timeout(p.response_timeout, request).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) if too_large_flag.load(Ordering::Relaxed) => {
                tracing::debug!(error = %e, "request body over the limit");
                return too_large();
            }
            Ok(Err(e)) => {
                let timeout = is_connect_timeout(&e);
                tracing::warn!(error = %error_chain(&e), timeout, "the upstream failed");
                return self.failed(timeout, asked);
            }
            Err(_) => {
                tracing::warn!(after = ?p.response_timeout, "the upstream did not answer in time");
                return self.failed(true, asked);
            }
        };
        self.metrics.upstream_latency(started.elapsed());
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switching && let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            upgrade::tunnel(client_upgrade, upstream_upgrade, p.idle_timeout);
        }
        let (mut parts, body) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, switching);
        if let Some(command) = parts.headers.remove(COMMAND_HEADER) {
            parts.extensions.insert(UpstreamCommand(command));
        }
        parts.extensions.insert(FromUpstream);
        Response::from_parts(parts, GateBody::upstream(body, p.idle_timeout))
    }

    /// The request as the upstream gets it: its URI on the upstream, HTTP/1.1, the `Host`
    /// kept (or given from an HTTP/2 request's authority) or replaced, hop-by-hop removed.
    /// `false` when the target is not a path the upstream can be asked for.
    fn to_upstream(&self, parts: &mut http::request::Parts, upgrade: bool) -> bool {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = Uri::builder()
            .scheme("http")
            .authority(self.upstream.clone())
            .path_and_query(path)
            .build()
        else {
            return false;
        };
        if !self.settings.preserve_host {
            parts.headers.remove(header::HOST);
        } else if !parts.headers.contains_key(header::HOST)
            && let Some(a) = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(header::HOST, a);
        }
        headers::strip_hop_by_hop(&mut parts.headers, upgrade);
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        true
    }

    fn failed(
        &self,
        timeout: bool,
        asked: [(http::HeaderName, Option<HeaderValue>); 2],
    ) -> Response<GateBody> {
        self.metrics.upstream_failed(timeout);
        let asked: http::HeaderMap = asked
            .into_iter()
            .filter_map(|(n, v)| Some((n, v?)))
            .collect();
        let status = if timeout {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::BAD_GATEWAY
        };
        pages::upstream_error(status, &asked, &self.templates)
    }
}

fn content_length(h: &http::HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `413` for a body over `[proxy] max_body_bytes`.
pub fn too_large() -> Response<GateBody> {
    pages::json(
        StatusCode::PAYLOAD_TOO_LARGE,
        &serde_json::json!({"error": "too_large", "detail": "the request body is larger than this service accepts"}),
    )
}

/// Whether the connection to the upstream timed out (as opposed to being refused or reset).
fn is_connect_timeout(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        if s.to_string().contains("timed out") || s.to_string().contains("timeout") {
            return true;
        }
        source = s.source();
    }
    false
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
