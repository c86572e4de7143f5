//! The HTTP face of the waiting room: a tower [`Layer`](tower::Layer) that puts any axum or
//! hyper route behind a [`WaitingRoom`](crate::WaitingRoom), or any [`RoomBackend`] (a room
//! shared by many nodes, `RedisWaitingRoom`, serves the same layer).
//!
//! Files: `layer` (the layer, its settings, hooks and counters), `service` (one gated request),
//! `request` (what the layer reads of a request), `respond` (its own responses), `pages` (the
//! waiting and refusal pages and JSON), `cookies`.
//!
//! # The protocol of a gated request
//!
//! 1. A valid, live pass (cookie `sg_pass`, or header `Sg-Pass` for apps, whose
//!    `Authorization` header is the portal's own) lets the request through, with the
//!    [`Pass`](crate::Pass) in the request's extensions. A forged, altered, expired or lapsed
//!    pass, or one of another room, counts as no pass: never an error of its own.
//! 2. Without one, the visitor joins the room: under the portal's identity (an
//!    [`identity`](WaitingRoomLayerBuilder::identity) hook), else the random id in the signed
//!    `sg_visitor` cookie (or header `Sg-Visitor`) if it is younger than
//!    [`visitor_max_age`](WaitingRoomLayerBuilder::visitor_max_age), else a new one, set in that
//!    cookie. A new identity is issued only on a `GET` or `HEAD` not marked
//!    `Sec-Fetch-Site: cross-site` (otherwise `403`, `"status":"forbidden"`), and only with an
//!    answer that admits or places the visitor (never with a refusal). A request marked
//!    cross-site never gets a cookie set. Then:
//!    - admitted: the pass is claimed, the request goes through, and the response sets the
//!      `sg_pass` cookie; an app (a client that sent `Sg-Pass` or `Sg-Visitor`, or
//!      `Accept: application/json` with no `Sec-Fetch-*` header, which every current browser
//!      sends) also gets the `Sg-Pass` header (and `Sg-Visitor` with a new identity), a
//!      browser never;
//!    - waiting, with `Accept: application/json`: `200`, `Cache-Control: no-store`,
//!      `Retry-After: <refresh_seconds>`, and `{"status":"waiting","position":N,"waiting":N,
//!      "eta_seconds":N,"refresh_seconds":N}`;
//!    - waiting, otherwise: an HTML page that needs no JavaScript, refreshes itself after
//!      `refresh_seconds` and shows the place, the line's length and the expected wait, in
//!      Arabic (right to left) or English by `Accept-Language`;
//!    - line full or room closed: `503` with `Retry-After` and
//!      `{"status":"full"|"closed","retry_after_seconds":N}` or a page saying so; too many new
//!      identities from one address (when [limited](WaitingRoomLayerBuilder::limit_new_visitors_per_address)):
//!      `429`, `"status":"limited"` (also when the limit is set and the address is unknown;
//!      IPv6 addresses count by their /64); the room unreachable: `503`,
//!      `"status":"unavailable"`.
//! 3. Every refresh is a check-in, and `refresh_seconds` is at most a third of the room's
//!    check-in timeout (and at most [`MAX_REFRESH_SECONDS`]), so a visitor who follows it never
//!    times out.
//! 4. `POST <prefix>/leave` gives the place (or the pass) back; it never adds anyone. Route that
//!    path to any handler behind the layer: the layer answers it. A browser's request must
//!    carry the form token of its own waiting page (`?csrf=…`, in the page's form and in the
//!    JSON answer's `leave_url`; good for two hours, for this visitor only), or it is refused
//!    with `403`, `"status":"reload"`, and nothing changes: another site's page cannot make a
//!    visitor leave. An app that sends its texts in the `Sg-Pass`/`Sg-Visitor` headers (which
//!    no other site can make a browser send) needs no token.
//!
//! Cookies are `HttpOnly`, `SameSite=Lax`, `Path=/`; when the site is
//! [served over HTTPS](WaitingRoomLayerBuilder::served_over_https), or the request came over
//! HTTPS (its URI, or `X-Forwarded-Proto` from one of the
//! [`trusted_proxies`](WaitingRoomLayerBuilder::trusted_proxies)), also `Secure`, under the
//! `__Host-` prefix, and cookies without the prefix are then ignored. The layer's own pages
//! carry `Content-Security-Policy`, `X-Content-Type-Options` and `Referrer-Policy`, and no
//! script.
//!
//! ```
//! use axum::{Router, routing::get};
//! use surgegate::http::WaitingRoomLayer;
//! use surgegate::pass::{KeyId, Keyring};
//! use surgegate::WaitingRoom;
//!
//! let room = WaitingRoom::builder().rate_per_second(500).burst(500).build();
//! let keys = Keyring::new(KeyId(1), b"thirty-two bytes from the vault!")?; // 32 random bytes
//! let gate = WaitingRoomLayer::new(room, keys);
//! let app: Router = Router::new()
//!     .route("/register", get(|| async { "the registration form" }))
//!     .route("/surgegate/leave", get(|| async { "" }))
//!     .layer(gate)
//!     .route("/", get(|| async { "open to all" }));
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod cookies;
mod layer;
mod pages;
mod protocol;
mod request;
mod respond;
mod service;

/// The room the layer asks: the crate root's [`RoomBackend`](crate::RoomBackend), here too.
pub use crate::backend::RoomBackend;
pub use address::{Cidr, CidrError};
pub use layer::{
    DEFAULT_VISITOR_MAX_AGE, LayerConfigError, WaitingRoomLayer, WaitingRoomLayerBuilder,
};
pub use protocol::{
    AddressHook, IdentityHook, LayerCounters, MAX_REFRESH_SECONDS, PASS_HEADER, VISITOR_HEADER,
};
pub use service::WaitingRoomService;
