//! What the layer reads of a request before deciding: its language, whether it is an app's,
//! HTTPS, and the pass and visitor texts it presents; and the identity decided for it.

use http::Method;
use http::header::{self, HeaderValue};
use http::request::Parts;

use super::cookies;
use super::pages::Lang;
use super::protocol::{PASS_HEADER, VISITOR_HEADER};
use crate::room::VisitorId;

/// What the layer reads of every request before deciding.
pub(super) struct Asked<'p> {
    pub(super) lang: Lang,
    pub(super) json: bool,
    /// An app, not a browser: it sent `Sg-Pass` or `Sg-Visitor` itself (a new app may send
    /// `Sg-Visitor: new`), or it asks for JSON and sends no Fetch Metadata (`Sec-Fetch-Site`,
    /// `Sec-Fetch-Mode`: headers every current browser adds to every request, a page's scripts
    /// included, and no script can remove). Only an app is given its texts in response
    /// headers: a browser keeps them in `HttpOnly` cookies, out of reach of the page's
    /// scripts, and a script's `fetch` that asks for JSON is still the browser's. No other
    /// site's page can make a browser send `Sg-Pass`/`Sg-Visitor` (a custom header needs the
    /// site's own consent, by CORS).
    pub(super) app: bool,
    pub(super) https: bool,
    /// `Sec-Fetch-Site: cross-site`: a browser sent this for another site's page.
    pub(super) cross_site: bool,
    /// A method that changes nothing (`GET`, `HEAD`): the only kind that may start an identity.
    pub(super) safe: bool,
    pub(super) pass_text: Option<&'p str>,
    pub(super) visitor_text: Option<&'p str>,
}

impl<'p> Asked<'p> {
    /// Reads `parts`; `https` is whether the site is served over HTTPS for this request (the
    /// layer's setting, or a trusted proxy's `X-Forwarded-Proto`). Over HTTPS only
    /// the `__Host-` cookies are read.
    pub(super) fn read(parts: &'p Parts, https: bool) -> Self {
        let headers = &parts.headers;
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let json = text(header::ACCEPT.as_str()).is_some_and(|a| a.contains("application/json"));
        let pass_header = text(PASS_HEADER);
        let visitor_header = text(VISITOR_HEADER);
        let fetched_by_browser =
            text("sec-fetch-site").is_some() || text("sec-fetch-mode").is_some();
        Asked {
            lang: Lang::from_accept_language(text(header::ACCEPT_LANGUAGE.as_str())),
            json,
            app: pass_header.is_some() || visitor_header.is_some() || (json && !fetched_by_browser),
            https,
            cross_site: text("sec-fetch-site")
                .is_some_and(|v| v.eq_ignore_ascii_case("cross-site")),
            safe: parts.method == Method::GET || parts.method == Method::HEAD,
            pass_text: pass_header.or_else(|| cookies::read(headers, cookies::PASS, https)),
            visitor_text: visitor_header
                .or_else(|| cookies::read(headers, cookies::VISITOR, https)),
        }
    }
}

/// A visitor's identity for this request, and the visitor text to set if it is new or renewed.
pub(super) struct Identity {
    pub(super) visitor: VisitorId,
    pub(super) new_text: Option<String>,
}

/// Whether `X-Forwarded-Proto`'s last entry (the one the nearest proxy, a trusted one, wrote;
/// entries before it came from further out, where a client may write what it likes) is
/// `https`.
pub(super) fn forwarded_https(parts: &Parts) -> bool {
    parts
        .headers
        .get_all("x-forwarded-proto")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The form token in the query of `POST <prefix>/leave` (`?csrf=…`), if any.
pub(super) fn leave_token(parts: &Parts) -> Option<&str> {
    parts
        .uri
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("csrf="))
}
