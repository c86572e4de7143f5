//! The layer: its settings (`WaitingRoomLayerBuilder`), the hooks a portal gives it, and the
//! counters it reads. The protocol of one request is in `service`; the names every part of
//! it shares are in `protocol`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota};
use http::request::Parts;
use tower::Layer;

use super::protocol::{AddressHook, Counts, IdentityHook, LayerCounters};
use super::service::{Shared, WaitingRoomService};
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
