//! The layer: its settings (`WaitingRoomLayerBuilder`), the hooks a portal gives it, and the
//! counters it reads. The protocol of one request is in `service`; the names every part of
//! it shares are in `protocol`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};
use http::request::Parts;
use tower::Layer;

use super::address::{Cidr, CidrError};
use super::protocol::{AddressHook, Counts, IdentityHook, LayerCounters};
use super::service::{Limiter, Shared, WaitingRoomService};
use crate::backend::RoomBackend;
use crate::pass::Keyring;
use crate::room::VisitorId;

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
    /// A trusted proxy that is not an address block.
    #[error("trusted_proxies: {0}")]
    TrustedProxy(#[from] CidrError),
    /// The layer must know the connection's peer for what was asked of it.
    #[error(
        "{0} needs the connection's address: give peer_address(|parts| ...), e.g. from axum's \
         ConnectInfo<SocketAddr>"
    )]
    NoPeerAddress(&'static str),
    /// A visitor text's maximum age outside one minute to thirty days.
    #[error("visitor_max_age {0:?} is outside 1 minute ..= 30 days")]
    VisitorMaxAge(Duration),
}

/// How many times the limit per address one IPv6 /48 gets in all (its 65 536 /64s share it).
const IPV6_48_SHARE: std::num::NonZeroU32 = std::num::NonZeroU32::new(16).unwrap();

/// The default [`WaitingRoomLayerBuilder::visitor_max_age`]: one day.
pub const DEFAULT_VISITOR_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
const VISITOR_MAX_AGE_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(60)..=Duration::from_secs(30 * 24 * 3600);

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

/// Settings of a [`WaitingRoomLayer`]; from [`WaitingRoomLayer::builder`].
pub struct WaitingRoomLayerBuilder<R> {
    room: R,
    keys: Keyring,
    room_id: u32,
    prefix: String,
    identity: Option<IdentityHook>,
    limit: Option<(u32, Option<AddressHook>)>,
    closed_retry_seconds: u64,
    peer: Option<AddressHook>,
    trusted_proxies: Vec<String>,
    https: bool,
    visitor_max_age: Duration,
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
            peer: None,
            trusted_proxies: Vec::new(),
            https: false,
            visitor_max_age: DEFAULT_VISITOR_MAX_AGE,
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
            forbidden: load(&c.forbidden),
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
    /// take thousands of places. IPv6 addresses count by their /64 (what one subscriber
    /// usually holds), and each /48 (65 536 /64s, what one site usually holds) gets 16 times
    /// the limit in all, so whoever holds a /48 cannot multiply the limit by 65 536. A visitor who keeps the cookie refreshes without limit. It fails
    /// closed: a request whose address the hook cannot tell gets no new identity. Over the
    /// limit, or without an address: `429` with `Retry-After`.
    pub fn limit_new_visitors_per_address(
        mut self,
        per_minute: u32,
        address: impl Fn(&Parts) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.limit = Some((per_minute, Some(Arc::new(address))));
        self
    }

    /// The same limit as [`limit_new_visitors_per_address`](Self::limit_new_visitors_per_address),
    /// keyed by the client address the layer works out: the connection's peer
    /// ([`peer_address`](Self::peer_address), required), or, when the peer is one of the
    /// [`trusted_proxies`](Self::trusted_proxies), the nearest untrusted address in
    /// `X-Forwarded-For`.
    pub fn limit_new_visitors_per_client(mut self, per_minute: u32) -> Self {
        self.limit = Some((per_minute, None));
        self
    }

    /// How the layer learns the connection's peer address from a request (with axum:
    /// `parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())`). Used to decide
    /// whether the request came through a trusted proxy, and by
    /// [`limit_new_visitors_per_client`](Self::limit_new_visitors_per_client).
    pub fn peer_address(
        mut self,
        peer: impl Fn(&Parts) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.peer = Some(Arc::new(peer));
        self
    }

    /// The portal's own proxies, as address blocks (`"10.0.0.0/8"`, `"2001:db8::/32"`, or one
    /// address, `"127.0.0.1"`). Only a request whose peer is in one of them has its
    /// `X-Forwarded-For` (the client's address) and `X-Forwarded-Proto` (HTTPS) believed;
    /// anyone else could write those headers. Default: none. Needs
    /// [`peer_address`](Self::peer_address).
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use axum::extract::ConnectInfo;
    /// use surgegate::http::WaitingRoomLayer;
    /// use surgegate::pass::{KeyId, Keyring};
    /// use surgegate::WaitingRoom;
    ///
    /// let room = WaitingRoom::builder().rate_per_second(50).burst(50).build();
    /// let keys = Keyring::new(KeyId(1), &[7u8; 32])?;
    /// let layer = WaitingRoomLayer::builder(room, keys)
    ///     .peer_address(|parts| {
    ///         let info = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    ///         Some(info.0.ip())
    ///     })
    ///     .trusted_proxies(["10.0.0.0/8", "127.0.0.1"])
    ///     .limit_new_visitors_per_client(60)
    ///     .build()?;
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trusted_proxies<I>(mut self, cidrs: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.trusted_proxies = cidrs.into_iter().map(Into::into).collect();
        self
    }

    /// The site is served over HTTPS (say, behind a proxy that ends TLS): every cookie is
    /// `Secure` under the `__Host-` prefix, and a cookie without that prefix is ignored (a
    /// sibling subdomain or a plain-HTTP attacker can set one; a browser takes `__Host-` ones
    /// only from this host over HTTPS). Default `false`: then a request counts as HTTPS by its
    /// URI or a trusted proxy's `X-Forwarded-Proto`.
    pub fn served_over_https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// How long a visitor text (the `sg_visitor` cookie) is accepted after it was issued;
    /// older ones count as none, so identities collected ahead of an opening expire. Default
    /// [`DEFAULT_VISITOR_MAX_AGE`] (one day); from one minute to thirty days.
    pub fn visitor_max_age(mut self, max_age: Duration) -> Self {
        self.visitor_max_age = max_age;
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
    /// with characters outside `[A-Za-z0-9/_.-]`; [`LayerConfigError::ZeroLimit`];
    /// [`LayerConfigError::TrustedProxy`] for a proxy that is not an address block;
    /// [`LayerConfigError::NoPeerAddress`] for trusted proxies or a limit per client without
    /// [`peer_address`](Self::peer_address); [`LayerConfigError::VisitorMaxAge`].
    pub fn build(self) -> Result<WaitingRoomLayer<R>, LayerConfigError> {
        let p = &self.prefix;
        let path_chars = p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
        if !p.starts_with('/') || p.ends_with('/') || !path_chars || p.len() > 200 {
            return Err(LayerConfigError::Prefix(self.prefix));
        }
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|text| text.parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()?;
        if self.peer.is_none() {
            if !trusted_proxies.is_empty() {
                return Err(LayerConfigError::NoPeerAddress("trusted_proxies"));
            }
            if matches!(self.limit, Some((_, None))) {
                return Err(LayerConfigError::NoPeerAddress(
                    "limit_new_visitors_per_client",
                ));
            }
        }
        if !VISITOR_MAX_AGE_RANGE.contains(&self.visitor_max_age) {
            return Err(LayerConfigError::VisitorMaxAge(self.visitor_max_age));
        }
        let limiter = match self.limit {
            Some((0, _)) => return Err(LayerConfigError::ZeroLimit),
            Some((per_minute, hook)) => {
                let n = std::num::NonZeroU32::new(per_minute).ok_or(LayerConfigError::ZeroLimit)?;
                let wide = n.saturating_mul(IPV6_48_SHARE);
                Some(Limiter {
                    narrow: DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)),
                    wide: DefaultKeyedRateLimiter::keyed(Quota::per_minute(wide)),
                    hook,
                })
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
                peer: self.peer,
                trusted_proxies,
                https: self.https,
                visitor_max_age_s: self.visitor_max_age.as_secs(),
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
