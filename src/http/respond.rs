//! The layer's own responses: the refresh interval, refusals, and the headers every one of
//! them carries (no caching, the security headers, `Retry-After`, a new visitor's cookie).

use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use super::cookies;
use super::pages::{self, Refusal};
use super::protocol::{MAX_REFRESH_SECONDS, VISITOR_HEADER};
use super::request::{Asked, Identity};

/// How often a waiting visitor should come back: half the expected wait, at least 1 s, at most
/// a third of the check-in timeout (so one lost refresh does not drop them) and
/// [`MAX_REFRESH_SECONDS`].
pub(crate) fn refresh_seconds(eta_seconds: u64, checkin_timeout: Duration) -> u64 {
    let cap = (checkin_timeout.as_secs() / 3).clamp(1, MAX_REFRESH_SECONDS);
    (eta_seconds / 2).clamp(1, cap)
}

pub(super) fn ceil_s(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Sets a new (or renewed) visitor text's cookie (lasting `max_age_s`, the visitor text's own
/// lifetime) and, for an app only, its `Sg-Visitor` header; `(https, app)` as the request's
/// [`Asked`].
pub(super) fn set_visitor(
    headers: &mut http::HeaderMap,
    identity: &Identity,
    (https, app): (bool, bool),
    max_age_s: u64,
) {
    let Some(text) = &identity.new_text else {
        return;
    };
    let cookie = cookies::set(cookies::VISITOR, text, https, max_age_s);
    headers.append(header::SET_COOKIE, cookie);
    private(headers);
    if app && let Ok(value) = HeaderValue::from_str(text) {
        headers.insert(HeaderName::from_static(VISITOR_HEADER), value);
    }
}

/// Marks an answer that sets the visitor's own texts as never to be stored, by a shared cache
/// above all (which would hand one visitor's cookies to the next): `Cache-Control: private,
/// no-store`, whatever the app behind the layer said.
pub(super) fn private(headers: &mut http::HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
}

pub(super) fn refusal(asked: &Asked<'_>, why: Refusal, retry_seconds: u64) -> Response<String> {
    let status = match why {
        Refusal::Limited => StatusCode::TOO_MANY_REQUESTS,
        Refusal::Forbidden | Refusal::Reload => StatusCode::FORBIDDEN,
        Refusal::Full | Refusal::Closed | Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = if asked.json {
        pages::refusal_json(why, retry_seconds)
    } else {
        pages::refusal_html(asked.lang, why, retry_seconds)
    };
    respond(status, asked, body, Some(retry_seconds))
}

/// A response of the layer's own, with the headers every one of them carries.
pub(super) fn respond(
    status: StatusCode,
    asked: &Asked<'_>,
    body: String,
    retry_after_s: Option<u64>,
) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let content_type = if asked.json {
        "application/json"
    } else {
        "text/html; charset=utf-8"
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Language, Cookie"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(seconds) = retry_after_s {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{MAX_REFRESH_SECONDS, refresh_seconds};
    use std::time::Duration;

    #[test]
    fn refresh_comes_well_within_the_checkin_timeout() {
        for timeout_s in 3..200u64 {
            for eta in [0, 1, 5, 60, 3600, u64::MAX] {
                let r = refresh_seconds(eta, Duration::from_secs(timeout_s));
                assert!(
                    r >= 1 && r * 3 <= timeout_s && r <= MAX_REFRESH_SECONDS,
                    "{timeout_s} {eta} {r}"
                );
            }
        }
        assert_eq!(refresh_seconds(10, Duration::from_secs(45)), 5);
        assert_eq!(refresh_seconds(600, Duration::from_secs(45)), 15);
    }
}
