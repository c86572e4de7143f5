//! One gated request, by the protocol in the module docs: the pass check, the visitor's
//! identity (and the limit on new ones per address), the join and its answer, and leaving.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use governor::DefaultKeyedRateLimiter;
use governor::clock::{Clock as _, DefaultClock};
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use rand::RngExt;
use tower::Service;

use super::address::{self, Cidr};
use super::cookies;
use super::pages::{self, Refusal, Standing};
use super::protocol::{AddressHook, Counts, IdentityHook, PASS_HEADER, bump};
use super::request::{Asked, Identity, forwarded_https, leave_token};
use super::respond::{ceil_s, private, refresh_seconds, refusal, respond, set_visitor};
use crate::backend::RoomBackend;
use crate::pass::{Keyring, PassClaims};
use crate::room::{Entry, JoinError, Pass, Ticket, VisitorId};

/// The `Retry-After` when the room's store cannot be reached, in seconds.
const UNAVAILABLE_RETRY_S: u64 = 5;
/// The `Retry-After` when a limit per address is set and the request's address is unknown.
const UNKNOWN_ADDRESS_RETRY_S: u64 = 60;
/// How long the leave form of a waiting page stays good, in seconds (the page refreshes
/// itself every [`MAX_REFRESH_SECONDS`](super::MAX_REFRESH_SECONDS) at most).
const LEAVE_FORM_MAX_AGE_S: u64 = 2 * 3600;
/// The purpose of the leave form's token.
const LEAVE_FORM: &str = "leave";

/// A service behind a waiting room: see [`WaitingRoomLayer`](super::WaitingRoomLayer).
pub struct WaitingRoomService<S, R> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared<R>>,
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

/// The limit on new identities per address.
pub(super) struct Limiter {
    /// Per IPv4 address or IPv6 /64.
    pub(super) narrow: DefaultKeyedRateLimiter<IpAddr>,
    /// Per IPv6 /48, a larger quota.
    pub(super) wide: DefaultKeyedRateLimiter<IpAddr>,
    /// Where it takes a request's address from: the portal's hook, or (`None`) the client
    /// address the layer works out itself.
    pub(super) hook: Option<AddressHook>,
}

/// What every request of one layer shares: the room, the keys and the settings.
pub(super) struct Shared<R> {
    pub(super) room: R,
    pub(super) keys: Keyring,
    pub(super) room_id: u32,
    pub(super) leave_path: String,
    pub(super) identity: Option<IdentityHook>,
    /// The limiter of new identities.
    pub(super) limiter: Option<Limiter>,
    /// The connection's peer, from the request.
    pub(super) peer: Option<AddressHook>,
    /// The proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub(super) trusted_proxies: Vec<Cidr>,
    /// The site is served over HTTPS whatever the request says.
    pub(super) https: bool,
    /// How long a visitor text is accepted after it was issued, in seconds.
    pub(super) visitor_max_age_s: u64,
    /// Limiter checks since its table was last trimmed.
    pub(super) limited_checks: AtomicU64,
    pub(super) closed_retry_seconds: u64,
    pub(super) counts: Counts,
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
        let asked = Asked::read(&parts, self.https(&parts));
        if parts.uri.path() == self.leave_path {
            bump(&self.counts.left);
            return Ok(self.leave(&parts, &asked).await.map(ResBody::from));
        }
        if let Some(pass) = self.live_pass(&asked).await {
            bump(&self.counts.passes);
            let renewed = self.renewal(&parts, &asked);
            parts.extensions.insert(pass);
            let mut response = inner.call(Request::from_parts(parts, body)).await?;
            if let Some((identity, flags)) = renewed {
                let headers = response.headers_mut();
                set_visitor(headers, &identity, flags, self.visitor_max_age_s);
            }
            return Ok(response);
        }
        let refused = |(why, retry_s)| self.no_identity(&asked, why, retry_s).map(ResBody::from);
        let identity = match self.identify(&parts, &asked) {
            Ok(identity) => identity,
            Err(why) => return Ok(refused(why)),
        };
        // A request made for another site's page never changes the visitor's cookies: it came
        // with the visitor's own identity (a top-level link), or it was refused above.
        let set_cookies = !asked.cross_site;
        let (https, app) = (asked.https, asked.app);
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
                if set_cookies {
                    let cookie = cookies::set(cookies::PASS, &text, https, max_age_s);
                    headers.append(header::SET_COOKIE, cookie);
                    private(headers);
                    set_visitor(headers, &identity, (https, app), self.visitor_max_age_s);
                }
                if app && let Ok(value) = HeaderValue::from_str(&text) {
                    headers.insert(HeaderName::from_static(PASS_HEADER), value);
                }
                return Ok(response);
            }
            Ok(Entry::Waiting(ticket)) => {
                bump(&self.counts.waiting);
                let mut answer = self.waiting(ticket, identity.visitor, &asked).await;
                if set_cookies {
                    let max_age_s = self.visitor_max_age_s;
                    set_visitor(answer.headers_mut(), &identity, (https, app), max_age_s);
                }
                answer
            }
            Err(error) => self.refused(&asked, error),
        };
        Ok(answer.map(ResBody::from))
    }

    /// The renewed visitor text to set on the way out of a request let through on its pass,
    /// with the request's `(https, app)`: a valid text past half its age (sliding lifetime),
    /// never on a request made for another site's page.
    fn renewal(&self, parts: &Parts, asked: &Asked<'_>) -> Option<(Identity, (bool, bool))> {
        if asked.cross_site {
            return None;
        }
        let known = self.known_visitor(parts, asked)?;
        known
            .new_text
            .is_some()
            .then_some((known, (asked.https, asked.app)))
    }

    /// The answer to a request that may not start an identity, or not now.
    fn no_identity(&self, asked: &Asked<'_>, why: Refusal, retry_s: u64) -> Response<String> {
        bump(match why {
            Refusal::Limited => &self.counts.limited,
            _ => &self.counts.forbidden,
        });
        refusal(asked, why, retry_s)
    }

    /// The answer to a join the room refused. It hands out no identity: a new one would only
    /// let an address collect identities while the room turns everyone away.
    fn refused(&self, asked: &Asked<'_>, error: JoinError) -> Response<String> {
        match error {
            JoinError::Full { retry_after } => {
                bump(&self.counts.full);
                refusal(asked, Refusal::Full, ceil_s(retry_after).max(1))
            }
            JoinError::Closed => {
                bump(&self.counts.closed);
                refusal(asked, Refusal::Closed, self.closed_retry_seconds)
            }
            JoinError::Backend(_) => {
                bump(&self.counts.unavailable);
                refusal(asked, Refusal::Unavailable, UNAVAILABLE_RETRY_S)
            }
        }
    }

    /// The pass this request presents, if it is genuine, of this room, unexpired, and still
    /// live in the room (claimed now if it was not yet).
    async fn live_pass(&self, asked: &Asked<'_>) -> Option<Pass> {
        let claims = self.keys.verify(asked.pass_text?, self.now_unix_s()).ok()?;
        if claims.room != self.room_id {
            return None;
        }
        let pass = self.room.claim(claims.token).await.ok()?;
        (pass.visitor == claims.visitor).then_some(pass)
    }

    /// The room's now, in whole Unix seconds (rounded down). A pass's `expires_at` is on the
    /// same base: every `RoomBackend` gives times since the Unix epoch.
    fn now_unix_s(&self) -> u64 {
        self.room.now_unix().as_secs()
    }

    fn sign(&self, pass: &Pass) -> String {
        self.keys.sign(&PassClaims {
            room: self.room_id,
            visitor: pass.visitor,
            token: pass.token,
            issued_at_unix_s: self.now_unix_s(),
            // Rounded up: the signed pass expires no earlier than the room's pass.
            expires_at_unix_s: ceil_s(pass.expires_at),
        })
    }

    fn remaining_s(&self, pass: &Pass) -> u64 {
        ceil_s(pass.expires_at)
            .saturating_sub(self.now_unix_s())
            .max(1)
    }

    /// The portal's identity, else the signed visitor cookie, else a new identity: only on a
    /// safe request of the site itself ([`Refusal::Forbidden`] otherwise), within the limit per
    /// address ([`Refusal::Limited`] and the seconds until it says yes).
    fn identify(&self, parts: &Parts, asked: &Asked<'_>) -> Result<Identity, (Refusal, u64)> {
        if let Some(known) = self.known_visitor(parts, asked) {
            return Ok(known);
        }
        // A form posted from another site arrives without the visitor's `SameSite=Lax`
        // cookies: a new identity here would replace theirs and send them to the back.
        if !asked.safe || asked.cross_site {
            return Err((Refusal::Forbidden, 1));
        }
        if let Some(limiter) = &self.limiter {
            self.check_limit(parts, limiter)?;
        }
        let visitor = VisitorId(rand::rng().random::<u64>());
        let text = self
            .keys
            .sign_visitor_at(self.room_id, visitor, self.now_unix_s());
        Ok(Identity {
            visitor,
            new_text: Some(text),
        })
    }

    /// Whether this request's address may start a new identity now: its own bucket (an IPv4
    /// address or IPv6 /64) first, so that a refused /64 spends nothing of its /48's, then
    /// the /48's.
    fn check_limit(&self, parts: &Parts, limiter: &Limiter) -> Result<(), (Refusal, u64)> {
        let ip = match &limiter.hook {
            Some(hook) => hook(parts),
            None => self.client_address(parts),
        };
        // No address, no new identity: a limit that anyone could skip by hiding their
        // address would limit nobody.
        let Some(ip) = ip else {
            return Err((Refusal::Limited, UNKNOWN_ADDRESS_RETRY_S));
        };
        self.trim_limiter(limiter);
        let narrow = limiter.narrow.check_key(&address::limit_key(ip));
        let checked = narrow.and_then(|()| match address::wide_key(ip) {
            Some(wide) => limiter.wide.check_key(&wide),
            None => Ok(()),
        });
        checked.map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (Refusal::Limited, ceil_s(wait).max(1))
        })
    }

    /// The identity this request already carries: the portal's, or a valid visitor text. A
    /// visitor text older than half the maximum age comes back with its renewal in
    /// `new_text` (the same visitor, issued now), so that a visitor who returns within the
    /// maximum age of their last visit keeps their identity for good.
    fn known_visitor(&self, parts: &Parts, asked: &Asked<'_>) -> Option<Identity> {
        if let Some(visitor) = self.identity.as_ref().and_then(|hook| hook(parts)) {
            return Some(Identity {
                visitor,
                new_text: None,
            });
        }
        let (now, max_age) = (self.now_unix_s(), self.visitor_max_age_s);
        let text = asked.visitor_text?;
        // The common case, a text in its first half-life, costs one check.
        let fresh = self.keys.verify_visitor_at(text, now, max_age / 2);
        let (room, visitor) = match fresh {
            Ok(found) => found,
            Err(_) => self.keys.verify_visitor_at(text, now, max_age).ok()?,
        };
        (room == self.room_id).then(|| Identity {
            visitor,
            new_text: fresh
                .is_err()
                .then(|| self.keys.sign_visitor_at(self.room_id, visitor, now)),
        })
    }

    /// What the leave form's token is bound to: this room and the visitor.
    fn leave_subject(&self, visitor: VisitorId) -> String {
        format!("{}:{}", self.room_id, visitor.0)
    }

    /// Whether this request is served over HTTPS: by the layer's setting, or the
    /// `X-Forwarded-Proto` of a trusted proxy. Never by the request's target: any client can
    /// write `GET https://…` in plain HTTP.
    fn https(&self, parts: &Parts) -> bool {
        self.https
            || (address::trusted(self.peer_of(parts), &self.trusted_proxies)
                && forwarded_https(parts))
    }

    fn peer_of(&self, parts: &Parts) -> Option<IpAddr> {
        self.peer.as_ref().and_then(|hook| hook(parts))
    }

    /// The client's address: the peer, or what trusted proxies say in `X-Forwarded-For`.
    fn client_address(&self, parts: &Parts) -> Option<IpAddr> {
        address::client(self.peer_of(parts), &parts.headers, &self.trusted_proxies)
    }

    /// Drops the limiter's idle addresses once as many checks have passed as it holds
    /// addresses (and at least 4 096): amortised O(1) per check, memory bounded by the active
    /// addresses.
    fn trim_limiter(&self, limiter: &Limiter) {
        // Relaxed: a counter for pacing a clean-up; a missed or doubled trim changes no answer.
        let checks = self.limited_checks.fetch_add(1, Ordering::Relaxed) + 1;
        let held = limiter.narrow.len() + limiter.wide.len();
        if checks >= held.max(4096) as u64 {
            self.limited_checks.store(0, Ordering::Relaxed);
            for table in [&limiter.narrow, &limiter.wide] {
                table.retain_recent();
                table.shrink_to_fit();
            }
        }
    }

    async fn waiting(
        &self,
        ticket: Ticket,
        visitor: VisitorId,
        asked: &Asked<'_>,
    ) -> Response<String> {
        let eta_seconds = ceil_s(ticket.eta);
        let standing = Standing {
            position: ticket.position,
            waiting: self.room.waiting().await.unwrap_or(0).max(ticket.position),
            eta_seconds,
            refresh_seconds: refresh_seconds(eta_seconds, self.room.checkin_timeout()),
        };
        let subject = self.leave_subject(visitor);
        let token = self.keys.sign_form(LEAVE_FORM, &subject, self.now_unix_s());
        let leave_url = format!("{}?csrf={token}", self.leave_path);
        let body = if asked.json {
            pages::waiting_json(standing, &leave_url)
        } else {
            pages::waiting_html(asked.lang, standing, &leave_url)
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
        if asked.cross_site {
            return refusal(asked, Refusal::Forbidden, 1);
        }
        let pass = asked
            .pass_text
            .and_then(|text| self.keys.verify(text, self.now_unix_s()).ok())
            .filter(|claims| claims.room == self.room_id);
        // A browser sends its cookies with a form that any page posts: only the form of its
        // own waiting page (a token made for this visitor, recently) may make it leave.
        if !asked.app {
            let visitor = pass
                .map(|claims| claims.visitor)
                .or_else(|| self.known_visitor(parts, asked).map(|k| k.visitor));
            let (now, subject) = (self.now_unix_s(), visitor.map(|v| self.leave_subject(v)));
            let live = subject
                .zip(leave_token(parts))
                .is_some_and(|(subject, token)| {
                    let max_age = LEAVE_FORM_MAX_AGE_S;
                    let checked = self
                        .keys
                        .verify_form(token, LEAVE_FORM, &subject, now, max_age);
                    checked.is_ok()
                });
            if !live {
                return refusal(asked, Refusal::Reload, 1);
            }
        }
        let token = match pass {
            Some(claims) => Some(claims.token),
            None => match self.known_visitor(parts, asked) {
                Some(known) => match self.room.entry_of(known.visitor).await {
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
        if asked.pass_text.is_some() {
            let headers = answer.headers_mut();
            headers.append(
                header::SET_COOKIE,
                cookies::set(cookies::PASS, "", asked.https, 0),
            );
            private(headers);
        }
        answer
    }
}
