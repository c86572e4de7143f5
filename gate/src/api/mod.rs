//! The booking API, `/v1/…`: the book behind small JSON routes for portals in any language.
//! `Authorization: Bearer <service token>` (compared in constant time); tokens as their
//! 32-hex-digit text; times as Unix seconds. Every answer is JSON, every error
//! `{"error":"…"}` (with a `detail` where it helps), and nothing a client sends gives a `500`.

mod handlers;
mod idempotency;
pub mod openapi;
mod standby;

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::config::Token;
use crate::metrics::Metrics;
use crate::pages;
use crate::proxy::{BodyError, GateBody, read_limited};
use crate::stores::GateBook;

pub use idempotency::{Keys, MAX_KEY_LEN, MAX_KEYS};

/// The largest request body of the booking API, in bytes.
pub const MAX_BODY_BYTES: u64 = 64 * 1024;

/// The routes that exist: method and path pattern (`{name}` is one segment).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/openapi.json"),
    ("PUT", "/v1/branches/{branch}/slots/{slot}"),
    ("GET", "/v1/branches/{branch}/slots/{slot}"),
    ("GET", "/v1/branches/{branch}/availability"),
    ("POST", "/v1/holds"),
    ("GET", "/v1/holds/{token}"),
    ("DELETE", "/v1/holds/{token}"),
    ("POST", "/v1/holds/{token}/confirm"),
    ("GET", "/v1/bookings/{token}"),
    ("DELETE", "/v1/bookings/{token}"),
    ("GET", "/v1/applicants/{applicant}/bookings"),
    ("POST", "/v1/standby"),
    ("GET", "/v1/applicants/{applicant}/standby"),
    ("DELETE", "/v1/applicants/{applicant}/standby"),
];

/// The booking API over one book.
pub struct Api<B> {
    book: Arc<B>,
    token: Option<Token>,
    keys: Keys,
    metrics: Arc<Metrics>,
    idle: Duration,
    max_slots: u32,
}

/// An answer: status and JSON body (`None`: no body, as for `204`).
type Answer = (StatusCode, Option<Value>);

fn error(status: StatusCode, word: &str, detail: impl Into<String>) -> Answer {
    (
        status,
        Some(json!({"error": word, "detail": detail.into()})),
    )
}

fn bad_request(detail: impl Into<String>) -> Answer {
    error(StatusCode::BAD_REQUEST, "bad_request", detail)
}

impl<B: GateBook> Api<B> {
    /// The API over `book`, open to bearers of `token` (`None`: the API is off).
    pub fn new(
        book: Arc<B>,
        token: Option<Token>,
        hold_ttl: Duration,
        metrics: Arc<Metrics>,
        idle: Duration,
        max_slots: u32,
    ) -> Self {
        Api {
            book,
            token,
            keys: Keys::new(hold_ttl),
            metrics,
            idle,
            max_slots,
        }
    }

    /// Answers one request under `/v1/`.
    ///
    /// # Cancel safety
    /// A dropped request may or may not have reached the book; every call is safe to retry
    /// (`Idempotency-Key` makes a hold's retry return the same hold).
    pub async fn serve(&self, request: Request<Incoming>) -> Response<GateBody> {
        let (status, body) = self.answer(request).await;
        let mut response = match body {
            Some(body) => pages::json(status, &body),
            None => {
                let mut r = pages::own(status, true, String::new());
                r.headers_mut().remove(header::CONTENT_TYPE);
                r
            }
        };
        let h = response.headers_mut();
        match status {
            StatusCode::UNAUTHORIZED => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }

    async fn answer(&self, request: Request<Incoming>) -> Answer {
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = request.method().clone();
        if let Err(refused) = self.admit(&request, &segments) {
            return refused;
        }
        if segments == ["v1", "openapi.json"] {
            return (StatusCode::OK, Some(openapi::document()));
        }
        let query = request.uri().query().unwrap_or("").to_owned();
        let key = request
            .headers()
            .get("idempotency-key")
            .map(|v| v.to_str().map(str::to_owned));
        let body = if method == Method::POST || method == Method::PUT {
            match read_limited(request.into_body(), MAX_BODY_BYTES, self.idle).await {
                Ok(bytes) => bytes,
                Err(BodyError::TooLarge) => {
                    let detail = format!("the body is larger than {MAX_BODY_BYTES} bytes");
                    return error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", detail);
                }
                Err(e) => return bad_request(format!("the body could not be read: {e}")),
            }
        } else {
            bytes::Bytes::new()
        };
        let call = handlers::Call {
            method: &method,
            segments: &segments,
            query: &query,
            body: &body,
            key,
        };
        self.route(call).await
    }

    /// Whether the route exists, takes the method, and (but for the document) the request
    /// carries the service token.
    fn admit(&self, request: &Request<Incoming>, segments: &[&str]) -> Result<(), Answer> {
        let no_route = || {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route: see GET /v1/openapi.json",
            )
        };
        let allowed = if segments.len() > 6 {
            Vec::new()
        } else {
            allowed_methods(segments)
        };
        if allowed.is_empty() {
            return Err(no_route());
        }
        let method = request.method().as_str();
        if !allowed.contains(&method) {
            let detail = format!("{method} is not allowed here; use {}", allowed.join(" or "));
            return Err(error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                detail,
            ));
        }
        if segments == ["v1", "openapi.json"] {
            return Ok(());
        }
        let Some(token) = &self.token else {
            let detail = "the booking API is off: set service_token_file";
            return Err(error(StatusCode::NOT_FOUND, "not_found", detail));
        };
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !token.matches(presented) {
            let detail = "send the service token as 'Authorization: Bearer <token>'";
            return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", detail));
        }
        Ok(())
    }
}

/// The methods the route at `segments` answers (empty: no such route).
fn allowed_methods(segments: &[&str]) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|(_, pattern)| {
            let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(segments)
                    .all(|(p, s)| p.starts_with('{') || p == s)
        })
        .map(|(m, _)| *m)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::allowed_methods;

    #[test]
    fn routes_match_by_segments() {
        assert_eq!(allowed_methods(&["v1", "holds"]), ["POST"]);
        assert_eq!(allowed_methods(&["v1", "holds", "x"]), ["GET", "DELETE"]);
        assert_eq!(
            allowed_methods(&["v1", "branches", "1", "slots", "2"]),
            ["PUT", "GET"]
        );
        assert!(allowed_methods(&["v1", "nothing"]).is_empty());
        assert!(allowed_methods(&["v1", "holds", "x", "cancel"]).is_empty());
    }
}
