//! The gate's own operational endpoints: `GET /healthz` (200 while the process runs),
//! `GET /readyz` (200 only while its stores answer and it is not draining) and
//! `GET /metrics` (Prometheus; only with the metrics token, else the admin token).

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use surgegate::{BookBackend, BranchId, RoomBackend};

use crate::app::App;
use crate::metrics::{self, Scrape};
use crate::pages;
use crate::proxy::GateBody;
use crate::stores::{GateBook, GateRoom};

impl<B: GateBook, R: GateRoom> App<B, R> {
    pub(crate) async fn ops(&self, request: Request<Incoming>) -> Response<GateBody> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut r = pages::json(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"error": "method_not_allowed", "detail": "use GET"}),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        match request.uri().path() {
            "/healthz" => pages::json(StatusCode::OK, &json!({"status": "ok"})),
            "/readyz" => self.readyz().await,
            _ if !self.may_scrape(&request) => pages::json(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "unauthorized", "detail": "send the metrics token (metrics_token_file, else admin_token_file) as 'Authorization: Bearer <token>'"}),
            ),
            _ => self.scrape().await,
        }
    }

    /// Whether `request` carries the metrics token (or, when none is set, the admin token):
    /// the line's length and the upstream's health are not for anyone to watch.
    fn may_scrape(&self, request: &Request<Incoming>) -> bool {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        match &self.settings.metrics_token {
            Some(token) => token.matches(presented),
            None => self.is_admin(request),
        }
    }

    async fn readyz(&self) -> Response<GateBody> {
        if self.draining() {
            return pages::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "draining"}),
            );
        }
        // One reading of each store: the embedded ones always answer; Redis's may not.
        let (book, room) = tokio::join!(self.book.slot(BranchId(0), 0), self.room.stats());
        match (book, room) {
            (Ok(_), Ok(_)) => pages::json(StatusCode::OK, &json!({"status": "ready"})),
            (book, room) => pages::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unavailable", "book": book.err().map(|e| e.to_string()), "room": room.err().map(|e| e.to_string())}),
            ),
        }
    }

    async fn scrape(&self) -> Response<GateBody> {
        let text = metrics::render(&Scrape {
            room: self.room.stats().await.ok(),
            layer: self.gate.layer().counters(),
            journal: self.book.journal_stats(),
            draining: self.draining(),
            metrics: &self.metrics,
        });
        let mut r = Response::new(GateBody::from(text));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        r
    }
}
