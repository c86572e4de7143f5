//! The room behind the layer: the calls the HTTP protocol makes, as a trait, so that an
//! in-process [`WaitingRoom`] and a room shared by many nodes serve the same layer.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::clock::Clock;
use crate::room::{
    ClaimError, Entry, JoinError, Pass, PollError, TicketToken, VisitorId, WaitingRoom,
};

/// What [`WaitingRoomLayer`](super::WaitingRoomLayer) needs of a waiting room. Each method has
/// the meaning of the [`WaitingRoom`] method of the same name; a backend that can fail (a lost
/// connection) reports it through the error enums, and the layer answers such a failure with
/// `503 Service Unavailable` and a `Retry-After`, never by letting the request through.
///
/// Implemented for [`WaitingRoom`] with any clock, and for `Arc`s of implementations.
pub trait RoomBackend: Send + Sync + 'static {
    /// [`WaitingRoom::join`].
    fn join(&self, visitor: VisitorId) -> impl Future<Output = Result<Entry, JoinError>> + Send;

    /// [`WaitingRoom::entry_of`]; `Err` only when the backend cannot answer.
    fn entry_of(
        &self,
        visitor: VisitorId,
    ) -> impl Future<Output = Result<Option<Entry>, PollError>> + Send;

    /// [`WaitingRoom::claim`].
    fn claim(&self, token: TicketToken) -> impl Future<Output = Result<Pass, ClaimError>> + Send;

    /// [`WaitingRoom::finish`].
    fn finish(&self, token: TicketToken) -> impl Future<Output = Result<(), PollError>> + Send;

    /// [`WaitingRoom::waiting`]; `None` when the backend cannot answer.
    fn waiting(&self) -> impl Future<Output = Option<u64>> + Send;

    /// How long a waiting visitor may stay silent before leaving the line: the layer asks
    /// browsers and apps to come back well within it.
    fn checkin_timeout(&self) -> Duration;

    /// The Unix time, in whole seconds rounded up, of an instant of the room's clock (a
    /// [`Pass::expires_at`]), so that a signed pass expires no earlier than the room's pass.
    fn unix_s(&self, at: Duration) -> u64;

    /// The Unix time now, in whole seconds rounded down, by the room's clock.
    fn now_unix_s(&self) -> u64;
}

impl<C: Clock> RoomBackend for WaitingRoom<C> {
    async fn join(&self, visitor: VisitorId) -> Result<Entry, JoinError> {
        WaitingRoom::join(self, visitor)
    }

    async fn entry_of(&self, visitor: VisitorId) -> Result<Option<Entry>, PollError> {
        Ok(WaitingRoom::entry_of(self, visitor))
    }

    async fn claim(&self, token: TicketToken) -> Result<Pass, ClaimError> {
        WaitingRoom::claim(self, token)
    }

    async fn finish(&self, token: TicketToken) -> Result<(), PollError> {
        WaitingRoom::finish(self, token)
    }

    async fn waiting(&self) -> Option<u64> {
        Some(WaitingRoom::waiting(self))
    }

    fn checkin_timeout(&self) -> Duration {
        WaitingRoom::checkin_timeout(self)
    }

    fn unix_s(&self, at: Duration) -> u64 {
        let since_epoch = self
            .clock()
            .system_time(at)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0)
    }

    fn now_unix_s(&self) -> u64 {
        let now = self.clock().now();
        let since_epoch = self.clock().system_time(now).duration_since(UNIX_EPOCH);
        since_epoch.unwrap_or_default().as_secs()
    }
}

impl<R: RoomBackend> RoomBackend for Arc<R> {
    fn join(&self, visitor: VisitorId) -> impl Future<Output = Result<Entry, JoinError>> + Send {
        (**self).join(visitor)
    }

    fn entry_of(
        &self,
        visitor: VisitorId,
    ) -> impl Future<Output = Result<Option<Entry>, PollError>> + Send {
        (**self).entry_of(visitor)
    }

    fn claim(&self, token: TicketToken) -> impl Future<Output = Result<Pass, ClaimError>> + Send {
        (**self).claim(token)
    }

    fn finish(&self, token: TicketToken) -> impl Future<Output = Result<(), PollError>> + Send {
        (**self).finish(token)
    }

    fn waiting(&self) -> impl Future<Output = Option<u64>> + Send {
        (**self).waiting()
    }

    fn checkin_timeout(&self) -> Duration {
        (**self).checkin_timeout()
    }

    fn unix_s(&self, at: Duration) -> u64 {
        (**self).unix_s(at)
    }

    fn now_unix_s(&self) -> u64 {
        (**self).now_unix_s()
    }
}
