//! The layer and its service: one gated request, from the pass check to the page.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use rand::RngExt;
use tower::{Layer, Service};

use super::backend::RoomBackend;
use super::cookies;
use super::pages::{self, Lang, Refusal, Standing};
use crate::pass::{Keyring, PassClaims};
use crate::room::{Entry, JoinError, Pass, Ticket, VisitorId};

/// The header an app sends its pass in (its `Authorization` header is the portal's own).
pub const PASS_HEADER: &str = "sg-pass";
/// The header an app may send its visitor text in, instead of the `sg_visitor` cookie.
pub const VISITOR_HEADER: &str = "sg-visitor";
/// The `Retry-After` when the room's store cannot be reached, in seconds.
const UNAVAILABLE_RETRY_S: u64 = 5;

/// The longest interval a waiting page asks for between refreshes, in seconds.
pub const MAX_REFRESH_SECONDS: u64 = 30;

/// Who the visitor is, from the request: the portal's own identity (say, a signed-in account).
pub type IdentityHook = Arc<dyn Fn(&Parts) -> Option<VisitorId> + Send + Sync>;
/// The client's address, from the request (say, from the connection, or from a header set by
/// the portal's own proxy).
pub type AddressHook = Arc<dyn Fn(&Parts) -> Option<IpAddr> + Send + Sync>;

/// Why a layer could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerConfigError {
    /// The path prefix must start with `/`, not end with one, and hold only path characters.
    #[error(
        "path prefix {0:?} is not usable: give one like \"/surgegate\" (leading '/', no trailing '/')"
    )]
    Prefix(String),
    /// A limit of zero new visitors would turn everyone away.
    #[error("a limit of 0 new visitors per address turns everyone away; give at least 1")]
    ZeroLimit,
}

/// Puts the routes it wraps behind a waiting room, by the protocol in the [module
/// docs](super). Cheap to clone.
pub struct WaitingRoomLayer<R> {
    shared: Arc<Shared<R>>,
}

impl<R> Clone for WaitingRoomLayer<R> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

/// Counts of what a layer answered (for a portal's metrics): each gated request adds one to
/// `passes` or to `joins`, and each join one to exactly one of the outcomes after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerCounters {
    /// Requests let through on a live pass they presented.
    pub passes: u64,
    /// Requests that joined the room (no live pass).
    pub joins: u64,
    /// Joins admitted at once (the request went through with a new pass).
    pub admitted: u64,
    /// Joins answered with a place in line.
    pub waiting: u64,
    /// Joins refused because the line was full.
    pub full: u64,
    /// Joins refused because the room was closed.
    pub closed: u64,
    /// New identities refused by the limit per address (these never joined).
    pub limited: u64,
    /// Joins the room's store could not answer (`503`, `"status":"unavailable"`).
    pub unavailable: u64,
    /// `POST <prefix>/leave` requests.
    pub left: u64,
}

/// The live counters behind [`LayerCounters`]. Relaxed: statistics, read without ordering.
#[derive(Default)]
struct Counts {
    passes: AtomicU64,
    joins: AtomicU64,
    admitted: AtomicU64,
    waiting: AtomicU64,
    full: AtomicU64,
    closed: AtomicU64,
    limited: AtomicU64,
    unavailable: AtomicU64,
    left: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Settings of a [`WaitingRoomLayer`]; from [`WaitingRoomLayer::builder`].
pub struct WaitingRoomLayerBuilder<R> {
    room: R,
    keys: Keyring,
    room_id: u32,
    prefix: String,
    identity: Option<IdentityHook>,
    limit: Option<(u32, AddressHook)>,
    closed_retry_seconds: u64,
}

impl<R: RoomBackend> WaitingRoomLayer<R> {
    /// A layer with the default settings: room id 0, prefix `/surgegate`, the signed visitor
    /// cookie as the identity, no limit per address.
    pub fn new(room: R, keys: Keyring) -> Self {
        Self::builder(room, keys)
            .build()
            .expect("the default settings are valid")
    }

    /// Settings for a layer in front of `room`, signing passes with `keys`.
    pub fn builder(room: R, keys: Keyring) -> WaitingRoomLayerBuilder<R> {
        WaitingRoomLayerBuilder {
            room,
            keys,
            room_id: 0,
            prefix: "/surgegate".into(),
            identity: None,
            limit: None,
            closed_retry_seconds: 60,
        }
    }

    /// What the layer has answered since it was built.
    pub fn counters(&self) -> LayerCounters {
        let c = &self.shared.counts;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LayerCounters {
            passes: load(&c.passes),
            joins: load(&c.joins),
            admitted: load(&c.admitted),
            waiting: load(&c.waiting),
            full: load(&c.full),
            closed: load(&c.closed),
            limited: load(&c.limited),
            unavailable: load(&c.unavailable),
            left: load(&c.left),
        }
    }

    /// The path that gives a place or a pass back (`POST`): the prefix and `/leave`.
    pub fn leave_path(&self) -> &str {
        &self.shared.leave_path
    }
}

impl<R: RoomBackend> WaitingRoomLayerBuilder<R> {
    /// The room's number in the passes it signs: a pass of another room is not accepted here.
    pub fn room_id(mut self, room_id: u32) -> Self {
        self.room_id = room_id;
        self
    }

    /// Where the layer's own endpoint lives: `POST <prefix>/leave`. Default `/surgegate`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The portal's own identity of a visitor (a signed-in account, say). When the hook gives
    /// `None`, the layer falls back to its signed `sg_visitor` cookie.
    pub fn identity(
        mut self,
        hook: impl Fn(&Parts) -> Option<VisitorId> + Send + Sync + 'static,
    ) -> Self {
        self.identity = Some(Arc::new(hook));
        self
    }

    /// At most `per_minute` new visitor identities a minute (in bursts of as many) from one
    /// client address, as told by `address`, so that one client that drops its cookies cannot
    /// take thousands of places. A visitor who keeps the cookie refreshes without limit; an
    /// address the hook cannot tell is not limited. Over the limit: `429` with `Retry-After`.
    pub fn limit_new_visitors_per_address(
        mut self,
        per_minute: u32,
        address: impl Fn(&Parts) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.limit = Some((per_minute, Arc::new(address)));
        self
    }

    /// The `Retry-After` given while the room is closed, in seconds. Default 60.
    pub fn closed_retry_seconds(mut self, seconds: u64) -> Self {
        self.closed_retry_seconds = seconds.max(1);
        self
    }

    /// The layer.
    ///
    /// # Errors
    /// [`LayerConfigError::Prefix`] for a prefix without a leading `/`, with a trailing one, or
    /// with characters outside `[A-Za-z0-9/_.-]`; [`LayerConfigError::ZeroLimit`].
    pub fn build(self) -> Result<WaitingRoomLayer<R>, LayerConfigError> {
        let p = &self.prefix;
        let path_chars = p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
        if !p.starts_with('/') || p.ends_with('/') || !path_chars || p.len() > 200 {
            return Err(LayerConfigError::Prefix(self.prefix));
        }
        let limiter = match self.limit {
            Some((0, _)) => return Err(LayerConfigError::ZeroLimit),
            Some((per_minute, hook)) => {
                let n = std::num::NonZeroU32::new(per_minute).ok_or(LayerConfigError::ZeroLimit)?;
                Some((DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)), hook))
            }
            None => None,
        };
        Ok(WaitingRoomLayer {
            shared: Arc::new(Shared {
                leave_path: format!("{}/leave", self.prefix),
                room: self.room,
                keys: self.keys,
                room_id: self.room_id,
                identity: self.identity,
                limiter,
                limited_checks: AtomicU64::new(0),
                counts: Counts::default(),
                closed_retry_seconds: self.closed_retry_seconds,
            }),
        })
    }
}

impl<S, R> Layer<S> for WaitingRoomLayer<R> {
    type Service = WaitingRoomService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        WaitingRoomService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// A service behind a waiting room: see [`WaitingRoomLayer`].
pub struct WaitingRoomService<S, R> {
    inner: S,
    shared: Arc<Shared<R>>,
}

impl<S: Clone, R> Clone for WaitingRoomService<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for WaitingRoomService<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    R: RoomBackend,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The ready service goes with this request; a fresh clone waits for the next one.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        let shared = self.shared.clone();
        Box::pin(async move { shared.serve(ready, request).await })
    }
}

/// What the layer reads of every request before deciding.
struct Asked<'p> {
    lang: Lang,
    json: bool,
    https: bool,
    pass_text: Option<&'p str>,
    visitor_text: Option<&'p str>,
}

impl<'p> Asked<'p> {
    fn read(parts: &'p Parts) -> Self {
        let headers = &parts.headers;
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let forwarded_https = text("x-forwarded-proto")
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
        Asked {
            lang: Lang::from_accept_language(text(header::ACCEPT_LANGUAGE.as_str())),
            json: text(header::ACCEPT.as_str()).is_some_and(|a| a.contains("application/json")),
            https: parts.uri.scheme_str() == Some("https") || forwarded_https,
            pass_text: text(PASS_HEADER).or_else(|| cookies::read(headers, cookies::PASS)),
            visitor_text: text(VISITOR_HEADER).or_else(|| cookies::read(headers, cookies::VISITOR)),
        }
    }
}

/// A visitor's identity for this request, and the cookie to set if it is new.
struct Identity {
    visitor: VisitorId,
    new_text: Option<String>,
}

struct Shared<R> {
    room: R,
    keys: Keyring,
    room_id: u32,
    leave_path: String,
    identity: Option<IdentityHook>,
    limiter: Option<(DefaultKeyedRateLimiter<IpAddr>, AddressHook)>,
    /// Limiter checks since its table was last trimmed.
    limited_checks: AtomicU64,
    closed_retry_seconds: u64,
    counts: Counts,
}

impl<R: RoomBackend> Shared<R> {
    async fn serve<S, ReqBody, ResBody>(
        &self,
        mut inner: S,
        request: Request<ReqBody>,
    ) -> Result<Response<ResBody>, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
        ResBody: From<String>,
    {
        let (mut parts, body) = request.into_parts();
        let asked = Asked::read(&parts);
        if parts.uri.path() == self.leave_path {
            bump(&self.counts.left);
            return Ok(self.leave(&parts, &asked).await.map(ResBody::from));
        }
        if let Some(pass) = self.live_pass(&asked).await {
            bump(&self.counts.passes);
            parts.extensions.insert(pass);
            return inner.call(Request::from_parts(parts, body)).await;
        }
        let identity = match self.identify(&parts, &asked) {
            Ok(identity) => identity,
            Err(retry_s) => {
                bump(&self.counts.limited);
                return Ok(refusal(&asked, Refusal::Limited, retry_s).map(ResBody::from));
            }
        };
        let https = asked.https;
        bump(&self.counts.joins);
        let answer = match self.room.join(identity.visitor).await {
            Ok(Entry::Admitted(pass)) => {
                bump(&self.counts.admitted);
                // The request goes through now: that is the pass's first use.
                let pass = self.room.claim(pass.token).await.unwrap_or(pass);
                let text = self.sign(&pass);
                parts.extensions.insert(pass);
                let mut response = inner.call(Request::from_parts(parts, body)).await?;
                let max_age_s = self.remaining_s(&pass);
                let headers = response.headers_mut();
                headers.append(
                    header::SET_COOKIE,
                    cookies::set(cookies::PASS, &text, https, max_age_s),
                );
                if let Ok(value) = HeaderValue::from_str(&text) {
                    headers.insert(HeaderName::from_static(PASS_HEADER), value);
                }
                set_visitor(headers, &identity, https);
                return Ok(response);
            }
            Ok(Entry::Waiting(ticket)) => {
                bump(&self.counts.waiting);
                self.waiting(ticket, &asked).await
            }
            Err(JoinError::Full { retry_after }) => {
                bump(&self.counts.full);
                refusal(&asked, Refusal::Full, ceil_s(retry_after).max(1))
            }
            Err(JoinError::Closed) => {
                bump(&self.counts.closed);
                refusal(&asked, Refusal::Closed, self.closed_retry_seconds)
            }
            Err(JoinError::Backend(_)) => {
                bump(&self.counts.unavailable);
                refusal(&asked, Refusal::Unavailable, UNAVAILABLE_RETRY_S)
            }
        };
        let mut answer = answer.map(ResBody::from);
        set_visitor(answer.headers_mut(), &identity, https);
        Ok(answer)
    }

    /// The pass this request presents, if it is genuine, of this room, unexpired, and still
    /// live in the room (claimed now if it was not yet).
    async fn live_pass(&self, asked: &Asked<'_>) -> Option<Pass> {
        let claims = self
            .keys
            .verify(asked.pass_text?, self.room.now_unix_s())
            .ok()?;
        if claims.room != self.room_id {
            return None;
        }
        let pass = self.room.claim(claims.token).await.ok()?;
        (pass.visitor == claims.visitor).then_some(pass)
    }

    fn sign(&self, pass: &Pass) -> String {
        self.keys.sign(&PassClaims {
            room: self.room_id,
            visitor: pass.visitor,
            token: pass.token,
            issued_at_unix_s: self.room.now_unix_s(),
            expires_at_unix_s: self.room.unix_s(pass.expires_at),
        })
    }

    fn remaining_s(&self, pass: &Pass) -> u64 {
        let left = self
            .room
            .unix_s(pass.expires_at)
            .saturating_sub(self.room.now_unix_s());
        left.max(1)
    }

    /// The portal's identity, else the signed visitor cookie, else a new identity (within the
    /// limit per address); when the limit says no, the seconds until it says yes.
    fn identify(&self, parts: &Parts, asked: &Asked<'_>) -> Result<Identity, u64> {
        if let Some(visitor) = self.known_visitor(parts, asked) {
            return Ok(Identity {
                visitor,
                new_text: None,
            });
        }
        if let Some((limiter, address)) = &self.limiter
            && let Some(ip) = address(parts)
        {
            self.trim_limiter(limiter);
            if let Err(not_until) = limiter.check_key(&ip) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(ceil_s(wait).max(1));
            }
        }
        let visitor = VisitorId(rand::rng().random::<u64>());
        Ok(Identity {
            visitor,
            new_text: Some(self.keys.sign_visitor(self.room_id, visitor)),
        })
    }

    /// The identity this request already carries: the portal's, or a valid visitor text.
    fn known_visitor(&self, parts: &Parts, asked: &Asked<'_>) -> Option<VisitorId> {
        if let Some(visitor) = self.identity.as_ref().and_then(|hook| hook(parts)) {
            return Some(visitor);
        }
        match self.keys.verify_visitor(asked.visitor_text?) {
            Ok((room, visitor)) if room == self.room_id => Some(visitor),
            _ => None,
        }
    }

    /// Drops the limiter's idle addresses once as many checks have passed as it holds
    /// addresses (and at least 4 096): amortised O(1) per check, memory bounded by the active
    /// addresses.
    fn trim_limiter(&self, limiter: &DefaultKeyedRateLimiter<IpAddr>) {
        // Relaxed: a counter for pacing a clean-up; a missed or doubled trim changes no answer.
        let checks = self.limited_checks.fetch_add(1, Ordering::Relaxed) + 1;
        if checks >= limiter.len().max(4096) as u64 {
            self.limited_checks.store(0, Ordering::Relaxed);
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    async fn waiting(&self, ticket: Ticket, asked: &Asked<'_>) -> Response<String> {
        let eta_seconds = ceil_s(ticket.eta);
        let standing = Standing {
            position: ticket.position,
            waiting: self.room.waiting().await.unwrap_or(0).max(ticket.position),
            eta_seconds,
            refresh_seconds: refresh_seconds(eta_seconds, self.room.checkin_timeout()),
        };
        let body = if asked.json {
            pages::waiting_json(standing)
        } else {
            pages::waiting_html(asked.lang, standing, &self.leave_path)
        };
        respond(StatusCode::OK, asked, body, Some(standing.refresh_seconds))
    }

    /// `POST <prefix>/leave`: ends the pass this request presents, or takes the visitor out of
    /// the line. Never adds anyone.
    async fn leave(&self, parts: &Parts, asked: &Asked<'_>) -> Response<String> {
        if parts.method != Method::POST {
            let mut answer = respond(StatusCode::METHOD_NOT_ALLOWED, asked, String::new(), None);
            answer
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return answer;
        }
        let pass = asked
            .pass_text
            .and_then(|text| self.keys.verify(text, self.room.now_unix_s()).ok())
            .filter(|claims| claims.room == self.room_id);
        let token = match pass {
            Some(claims) => Some(claims.token),
            None => match self.known_visitor(parts, asked) {
                Some(visitor) => match self.room.entry_of(visitor).await {
                    Ok(entry) => entry.map(|e| e.token()),
                    Err(_) => return refusal(asked, Refusal::Unavailable, UNAVAILABLE_RETRY_S),
                },
                None => None,
            },
        };
        if let Some(token) = token {
            // Unknown or already ended: the visitor is out either way.
            let _ = self.room.finish(token).await;
        }
        let body = if asked.json {
            pages::left_json()
        } else {
            pages::left_html(asked.lang)
        };
        let mut answer = respond(StatusCode::OK, asked, body, None);
        answer.headers_mut().append(
            header::SET_COOKIE,
            cookies::set(cookies::PASS, "", asked.https, 0),
        );
        answer
    }
}

/// How often a waiting visitor should come back: half the expected wait, at least 1 s, at most
/// a third of the check-in timeout (so one lost refresh does not drop them) and
/// [`MAX_REFRESH_SECONDS`].
pub(crate) fn refresh_seconds(eta_seconds: u64, checkin_timeout: Duration) -> u64 {
    let cap = (checkin_timeout.as_secs() / 3).clamp(1, MAX_REFRESH_SECONDS);
    (eta_seconds / 2).clamp(1, cap)
}

fn ceil_s(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn set_visitor(headers: &mut http::HeaderMap, identity: &Identity, https: bool) {
    let Some(text) = &identity.new_text else {
        return;
    };
    let cookie = cookies::set(cookies::VISITOR, text, https, cookies::VISITOR_MAX_AGE_S);
    headers.append(header::SET_COOKIE, cookie);
    if let Ok(value) = HeaderValue::from_str(text) {
        headers.insert(HeaderName::from_static(VISITOR_HEADER), value);
    }
}

fn refusal(asked: &Asked<'_>, why: Refusal, retry_seconds: u64) -> Response<String> {
    let status = match why {
        Refusal::Limited => StatusCode::TOO_MANY_REQUESTS,
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
fn respond(
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
    use super::*;

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
