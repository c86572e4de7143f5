//! The gated paths: the crate's [`WaitingRoomLayer`] in front of the proxy, by the protocol of
//! a gated route, unchanged. Around it, the gate:
//!
//! - forwards an admitted request with `Surgegate-Visitor: <visitor id>`;
//! - ends the visitor's pass when the upstream answers `Surgegate-Command: finish` (the header
//!   never reaches the client; the pass cookie is cleared), so the next in line is admitted;
//! - sends `Sg-Pass`/`Sg-Visitor` response headers only to apps (a client that sent either
//!   header, or `Accept: application/json`), never to a browser;
//! - renders an operator's waiting and refusal templates: the layer is asked for its JSON
//!   answer and the template is filled with the same numbers (the client's own `Accept` header
//!   is what the upstream sees).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;
use surgegate::http::{PASS_HEADER, VISITOR_HEADER, WaitingRoomLayer, WaitingRoomService};
use surgegate::{Pass, RoomBackend};
use tower::{Layer, Service};

use crate::pages::{self, Lang, Templates};
use crate::proxy::headers::Origin;
use crate::proxy::{FromUpstream, GateBody, Proxy, UpstreamCommand};

/// The header that tells the upstream who the admitted visitor is.
pub const VISITOR_ID_HEADER: HeaderName = HeaderName::from_static("surgegate-visitor");

/// The client's own `Accept`, kept while the layer is asked for JSON.
#[derive(Clone)]
struct OriginalAccept(Option<HeaderValue>);

/// The proxy behind the layer: adds the visitor's id and acts on the upstream's command.
pub struct Admitted<R> {
    proxy: Arc<Proxy>,
    room: Arc<R>,
}

impl<R> Clone for Admitted<R> {
    fn clone(&self) -> Self {
        Admitted {
            proxy: self.proxy.clone(),
            room: self.room.clone(),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<R: RoomBackend> Service<Request<Incoming>> for Admitted<R> {
    type Response = Response<GateBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<GateBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let pass = request.extensions().get::<Pass>().copied();
        if let Some(OriginalAccept(accept)) = request.extensions_mut().remove::<OriginalAccept>() {
            let h = request.headers_mut();
            h.remove(header::ACCEPT);
            if let Some(accept) = accept {
                h.insert(header::ACCEPT, accept);
            }
        }
        if let Some(pass) = pass {
            request
                .headers_mut()
                .insert(VISITOR_ID_HEADER, HeaderValue::from(pass.visitor.0));
        }
        let https = request
            .extensions()
            .get::<Origin>()
            .is_some_and(|o| o.https);
        let (proxy, room) = (self.proxy.clone(), self.room.clone());
        Box::pin(async move {
            let mut response = proxy.forward(request).await;
            let finish = response
                .extensions_mut()
                .remove::<UpstreamCommand>()
                .is_some_and(|UpstreamCommand(v)| is_finish(&v));
            if finish && let Some(pass) = pass {
                // Unknown or already ended: the pass is over either way.
                let ended = room.finish(pass.token).await;
                tracing::debug!(
                    visitor = pass.visitor.0,
                    ok = ended.is_ok(),
                    "the upstream finished a pass"
                );
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, clear_pass_cookie(https));
            }
            Ok(response)
        })
    }
}

/// Whether a `Surgegate-Command` value says `finish` (case-insensitive, in a list).
fn is_finish(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        v.split(',')
            .any(|c| c.trim().eq_ignore_ascii_case("finish"))
    })
}

fn clear_pass_cookie(https: bool) -> HeaderValue {
    HeaderValue::from_static(if https {
        "__Host-sg_pass=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"
    } else {
        "sg_pass=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    })
}

/// The gated paths' service.
pub struct Gate<R: RoomBackend> {
    service: WaitingRoomService<Admitted<R>, Arc<R>>,
    layer: WaitingRoomLayer<Arc<R>>,
    templates: Arc<Templates>,
}

impl<R: RoomBackend> Gate<R> {
    /// The layer in front of `proxy`.
    pub fn new(
        layer: WaitingRoomLayer<Arc<R>>,
        proxy: Arc<Proxy>,
        room: Arc<R>,
        templates: Arc<Templates>,
    ) -> Self {
        let service = layer.layer(Admitted { proxy, room });
        Gate {
            service,
            layer,
            templates,
        }
    }

    /// The layer (its counters, its leave path).
    pub fn layer(&self) -> &WaitingRoomLayer<Arc<R>> {
        &self.layer
    }

    /// Answers one gated request.
    ///
    /// # Cancel safety
    /// As the layer's and the proxy's: dropping it drops the upstream request; a join already
    /// made keeps the visitor's place.
    pub async fn serve(&self, mut request: Request<Incoming>) -> Response<GateBody> {
        let h = request.headers();
        let json = pages::wants_json(h);
        // Only an app gets its texts in headers, by the layer's rule: it sent them in headers,
        // or it asks for JSON without the Fetch Metadata every current browser sends. Decided
        // here, before `flip` makes a browser's page request ask for JSON.
        let browser = h.contains_key("sec-fetch-site") || h.contains_key("sec-fetch-mode");
        let app =
            h.contains_key(PASS_HEADER) || h.contains_key(VISITOR_HEADER) || (json && !browser);
        let lang = Lang::from_headers(h);
        let flip = !json
            && self.templates.has_room_pages()
            && request.uri().path() != self.layer.leave_path();
        if flip {
            let original = request.headers_mut().remove(header::ACCEPT);
            request.extensions_mut().insert(OriginalAccept(original));
            request
                .headers_mut()
                .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        }
        // `Admitted` is always ready, so the layer's service is too.
        let mut response = match self.service.clone().call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if !app {
            response.headers_mut().remove(PASS_HEADER);
            response.headers_mut().remove(VISITOR_HEADER);
        }
        if flip && response.extensions().get::<FromUpstream>().is_none() {
            self.render(&mut response, lang);
        }
        response
    }

    /// Replaces the layer's JSON answer with the operator's page for it.
    fn render(&self, response: &mut Response<GateBody>, lang: Lang) {
        let Some(v) = response
            .body()
            .whole()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        else {
            return;
        };
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let status = v
            .get("status")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let page = match status {
            "waiting" => self.templates.waiting(
                lang,
                n("position"),
                n("waiting"),
                n("eta_seconds"),
                n("refresh_seconds"),
                // The layer's leave address carries this visitor's form token.
                v.get("leave_url")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or(self.layer.leave_path()),
            ),
            "full" | "closed" | "limited" | "unavailable" => {
                self.templates
                    .refusal(lang, status, n("retry_after_seconds"))
            }
            _ => None,
        };
        let Some(page) = page else { return };
        *response.body_mut() = GateBody::from(page);
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.remove(header::CONTENT_LENGTH);
        if status == "waiting" {
            // The page refreshes itself even if the template forgot its <meta> refresh.
            h.insert(
                HeaderName::from_static("refresh"),
                HeaderValue::from(n("refresh_seconds").max(1)),
            );
        }
        pages::secure(h);
    }
}
