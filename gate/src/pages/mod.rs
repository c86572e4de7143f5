//! The gate's own answers to visitors: the language of a page, the built-in `502`/`504` pages
//! (Arabic right to left, or English, by `Accept-Language`; JSON for apps), and the headers
//! every answer of the gate's own carries. The waiting pages themselves are the layer's, or an
//! operator's [`Templates`].

mod templates;

use std::fmt::Write as _;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

pub use templates::{PageSource, PageSources, Templates};

use crate::body::GateBody;

/// The `Retry-After` of a `502` or `504`, in seconds.
pub const UPSTREAM_RETRY_S: u64 = 5;

/// The language of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English, left to right.
    English,
    /// Arabic, right to left.
    Arabic,
}

impl Lang {
    /// The language `Accept-Language` weights highest among Arabic and English (ties: the
    /// first listed; neither: English). Reads at most 32 entries.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let text = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut best = (Lang::English, 0u32);
        for item in text.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let primary = tag.split('-').next().unwrap_or("");
            let lang = if primary.eq_ignore_ascii_case("ar") {
                Lang::Arabic
            } else if primary.eq_ignore_ascii_case("en") {
                Lang::English
            } else {
                continue;
            };
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, quality);
            if weight > best.1 {
                best = (lang, weight);
            }
        }
        best.0
    }

    /// `en` or `ar`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::English => "en",
            Lang::Arabic => "ar",
        }
    }

    /// `ltr` or `rtl`.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::English => "ltr",
            Lang::Arabic => "rtl",
        }
    }
}

/// A `q` value in thousandths; 0 for anything that is not one.
fn quality(text: &str) -> u32 {
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    match whole {
        "1" => 1000,
        "0" if frac.len() <= 3 && frac.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{frac:0<3}").parse().unwrap_or(0)
        }
        _ => 0,
    }
}

/// Whether the client asked for JSON (an app).
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

/// Digits in Arabic-Indic for Arabic pages.
fn digits(lang: Lang, n: u64) -> String {
    let text = n.to_string();
    match lang {
        Lang::English => text,
        Lang::Arabic => text
            .chars()
            .map(|c| {
                c.to_digit(10)
                    .and_then(|d| char::from_u32(0x0660 + d))
                    .unwrap_or(c)
            })
            .collect(),
    }
}

/// The built-in page of a `502` (`timeout`: a `504`).
fn upstream_error_html(lang: Lang, timeout: bool) -> String {
    let r = digits(lang, UPSTREAM_RETRY_S);
    let (title, text) = match (lang, timeout) {
        (Lang::English, false) => (
            "The service is not answering",
            format!("The service could not be reached. Please try again in {r} seconds."),
        ),
        (Lang::English, true) => (
            "The service is taking too long",
            format!("The service did not answer in time. Please try again in {r} seconds."),
        ),
        (Lang::Arabic, false) => (
            "الخدمة لا تستجيب",
            format!("تعذّر الوصول إلى الخدمة. يُرجى المحاولة مرة أخرى بعد {r} ثوانٍ."),
        ),
        (Lang::Arabic, true) => (
            "الخدمة تستغرق وقتًا طويلًا",
            format!("لم تُجب الخدمة في الوقت المحدد. يُرجى المحاولة مرة أخرى بعد {r} ثوانٍ."),
        ),
    };
    let mut page = String::with_capacity(1024);
    let _ = write!(
        page,
        "<!doctype html><html lang=\"{}\" dir=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
         <style>body{{font-family:system-ui,'Noto Naskh Arabic',sans-serif;margin:0;background:#f4f6f8;color:#1d2530}}\
         main{{max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.75rem}}</style>\
         </head><body><main><h1>{title}</h1><p>{text}</p></main></body></html>",
        lang.code(),
        lang.dir()
    );
    page
}

/// The answer when the upstream failed (`502`) or did not answer in time (`504`).
pub fn upstream_error(
    status: StatusCode,
    request: &HeaderMap,
    templates: &Templates,
) -> Response<GateBody> {
    let timeout = status == StatusCode::GATEWAY_TIMEOUT;
    if wants_json(request) {
        let word = if timeout {
            "gateway_timeout"
        } else {
            "bad_gateway"
        };
        let body = serde_json::json!({"status": word, "retry_after_seconds": UPSTREAM_RETRY_S});
        let mut r = own(status, true, body.to_string());
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(UPSTREAM_RETRY_S));
        return r;
    }
    let lang = Lang::from_headers(request);
    let page = templates
        .upstream_error(lang, status.as_u16(), UPSTREAM_RETRY_S)
        .unwrap_or_else(|| upstream_error_html(lang, timeout));
    let mut r = own(status, false, page);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(UPSTREAM_RETRY_S));
    r
}

/// A JSON answer of the gate's own.
pub fn json(status: StatusCode, body: &serde_json::Value) -> Response<GateBody> {
    own(status, true, body.to_string())
}

/// An answer of the gate's own, with the headers every one carries.
pub fn own(status: StatusCode, json: bool, body: String) -> Response<GateBody> {
    let mut response = Response::new(GateBody::from(body));
    *response.status_mut() = status;
    let content_type = if json {
        "application/json"
    } else {
        "text/html; charset=utf-8"
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(h);
    response
}

/// The security headers of the gate's own pages: no script, no framing, no sniffing.
pub fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn lang(text: &str) -> Lang {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(text).unwrap(),
        );
        Lang::from_headers(&h)
    }

    #[test]
    fn the_highest_weighted_language_wins() {
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::English);
        assert_eq!(lang("ar-JO,ar;q=0.9,en;q=0.8"), Lang::Arabic);
        assert_eq!(lang("fr, ar;q=0.5, en;q=0.4"), Lang::Arabic);
        assert_eq!(lang("en-GB,ar;q=0.9"), Lang::English);
        assert_eq!(lang("ar;q=0, en;q=0.001"), Lang::English);
        assert_eq!(lang("ar;q=nonsense"), Lang::English);
    }

    #[test]
    fn upstream_error_pages_speak_both_languages() {
        let page = upstream_error_html(Lang::Arabic, true);
        assert!(page.contains("dir=\"rtl\"") && page.contains("٥"));
        let page = upstream_error_html(Lang::English, false);
        assert!(
            page.contains("dir=\"ltr\"") && page.contains("5 seconds") && !page.contains("<script")
        );
    }
}
