//! The gate's one service: every request is sorted by its path into a route class (the gate's
//! own endpoints, the booking API, a gated path, or anything else) after its headers are made
//! safe to pass on (size checked, `Surgegate-*` removed, forwarding headers set), answered,
//! counted, and logged if access logs are on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use surgegate::http::WaitingRoomLayer;
use surgegate::pass::{KeyId, Keyring};

use crate::api::Api;
use crate::config::{Settings, Token};
use crate::gated::Gate;
use crate::metrics::{Metrics, RouteClass};
use crate::pages::{self, Templates};
use crate::paths;
use crate::proxy::headers::{self as hdr, Origin};
use crate::proxy::{GateBody, Proxy};
use crate::stores::{GateBook, GateRoom};

/// What the gate knows of a connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    /// The peer's address.
    pub peer: SocketAddr,
    /// Whether the gate terminated TLS on it.
    pub tls: bool,
}

/// Everything one running gate holds.
pub struct App<B: GateBook, R: GateRoom> {
    /// The book.
    pub book: Arc<B>,
    /// The room.
    pub room: Arc<R>,
    /// The proxy to the upstream.
    pub proxy: Arc<Proxy>,
    /// The gated paths.
    pub gate: Gate<R>,
    /// The booking API.
    pub api: Api<B>,
    /// The live counters.
    pub metrics: Arc<Metrics>,
    /// The settings the gate started with (limits may have been reloaded since).
    pub settings: Settings,
    admin_token: Token,
    draining: AtomicBool,
}

impl<B: GateBook, R: GateRoom> App<B, R> {
    /// Assembles the gate over opened stores.
    ///
    /// # Errors
    /// A setting the layer or the room refuses.
    pub fn new(settings: Settings, book: B, room: R) -> Result<Self, String> {
        let (book, room) = (Arc::new(book), Arc::new(room));
        let templates =
            Arc::new(Templates::compile(&settings.pages).map_err(|(k, p)| format!("{k}: {p}"))?);
        let metrics = Arc::new(Metrics::default());
        let proxy = Arc::new(Proxy::new(
            settings.upstream.clone(),
            settings.proxy.clone(),
            metrics.clone(),
            templates.clone(),
        ));
        let keys = Keyring::new(KeyId(1), settings.secret.bytes())
            .map_err(|e| format!("secret_file: {e}"))?;
        let r = &settings.room;
        let mut layer = WaitingRoomLayer::builder(room.clone(), keys)
            .room_id(r.room_id)
            .prefix(r.leave_prefix.clone())
            .closed_retry_seconds(r.closed_retry_secs)
            // The layer reads the request after `prepare`: its `X-Forwarded-Proto` is the
            // gate's own word, believed by the same rule (a TLS listener, the setting, or a
            // trusted proxy as the connection's peer).
            .served_over_https(settings.tls.is_some() || settings.served_over_https)
            .trusted_proxies(settings.trusted_proxies.iter().map(ToString::to_string))
            .peer_address(|parts| parts.extensions.get::<Origin>().map(|o| o.peer));
        if r.new_visitors_per_minute > 0 {
            layer = layer.limit_new_visitors_per_address(r.new_visitors_per_minute, |parts| {
                parts.extensions.get::<Origin>().map(|o| o.client)
            });
        }
        let layer = layer
            .build()
            .map_err(|e| format!("room.leave_prefix: {e}"))?;
        if let Some(at) = r.open_at_unix_s {
            let seed = r.open_at_seed.unwrap_or_else(rand::random);
            match room.open_at(at, seed) {
                Ok(()) => tracing::info!(
                    opens_at_unix_s = at,
                    seed,
                    "the room opens at the scheduled time, after a draw among the pre-queue"
                ),
                Err(why) => tracing::warn!(opens_at_unix_s = at, "room.open_at: {why}"),
            }
        }
        let gate = Gate::new(layer, proxy.clone(), room.clone(), templates);
        let api = Api::new(
            book.clone(),
            settings.service_token.clone(),
            settings.book.hold_ttl,
            metrics.clone(),
            settings.proxy.idle_timeout,
            settings.book.max_slots_per_branch,
        );
        Ok(App {
            book,
            room,
            proxy,
            gate,
            api,
            metrics,
            admin_token: settings.admin_token.clone(),
            settings,
            draining: AtomicBool::new(false),
        })
    }

    /// Whether the gate is draining for a stop (`/readyz` then says no).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Starts draining: `/readyz` answers `503` from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether `request` carries the admin token.
    pub(crate) fn is_admin(&self, request: &Request<Incoming>) -> bool {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        self.admin_token.matches(presented)
    }

    fn class(&self, path: &str) -> RouteClass {
        match path {
            "/healthz" | "/readyz" | "/metrics" => RouteClass::Ops,
            "/admin" => RouteClass::Admin,
            p if p.starts_with("/admin/") => RouteClass::Admin,
            p if p.starts_with("/v1/") => RouteClass::Api,
            p if p == self.gate.layer().leave_path()
                || paths::is_gated(p, &self.settings.gated) =>
            {
                RouteClass::Gated
            }
            _ => RouteClass::Bypass,
        }
    }

    /// Answers one request.
    ///
    /// # Cancel safety
    /// Dropping the future drops the request wherever it is (see [`Proxy::forward`] and
    /// [`Gate::serve`]).
    pub async fn handle(
        &self,
        mut request: Request<Incoming>,
        conn: ConnInfo,
    ) -> Response<GateBody> {
        let started = Instant::now();
        let class = self.class(request.uri().path());
        let access = self
            .settings
            .log
            .access
            .then(|| (request.method().clone(), request.uri().path().to_owned()));
        let response = if hdr::header_bytes(request.headers())
            > self.settings.proxy.max_header_bytes
        {
            pages::json(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                &serde_json::json!({"error": "headers_too_large", "detail": "the request's headers are larger than this service accepts"}),
            )
        } else if !self.prepare(&mut request, conn).forwarded_ok {
            pages::json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"error": "bad_forwarded_for", "detail": "the trusted proxy's X-Forwarded-For holds an entry that is not an address; the proxy in front of this service must append the client's address"}),
            )
        } else {
            match class {
                RouteClass::Ops => self.ops(request).await,
                RouteClass::Admin => self.admin(request).await,
                RouteClass::Api => self.api.serve(request).await,
                RouteClass::Gated => self.gate.serve(request).await,
                RouteClass::Bypass => self.proxy.forward(request).await,
            }
        };
        self.metrics.request(class, response.status().as_u16());
        if let Some((method, path)) = access {
            tracing::info!(target: "access", %method, path, status = response.status().as_u16(), peer = %conn.peer, took_us = started.elapsed().as_micros() as u64, "request");
        }
        response
    }

    /// Makes the headers safe to pass on: `Surgegate-*` removed, forwarding headers set by
    /// what the gate believes of the client; that belief.
    fn prepare(&self, request: &mut Request<Incoming>, conn: ConnInfo) -> Origin {
        let s = &self.settings;
        let headers = request.headers_mut();
        hdr::strip_surgegate(headers);
        let origin = hdr::origin(
            headers,
            conn.peer.ip(),
            &s.trusted_proxies,
            conn.tls,
            s.served_over_https,
        );
        let host = headers.get(header::HOST).cloned().or_else(|| {
            request
                .uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        hdr::set_forwarded(request.headers_mut(), &origin, host);
        request.extensions_mut().insert(origin);
        origin
    }
}
