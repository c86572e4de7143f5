//! `RoomBackend`: the waiting room's calls as a trait, and its implementation by the in-process
//! [`WaitingRoom`] (whose futures are ready at once) and by `Arc`s of any implementation.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::unix_time;
use crate::clock::Clock;
use crate::failure::BackendError;
use crate::room::{
    ClaimError, Entry, JoinError, LimitsError, Pass, PollError, RoomStats, TicketToken, VisitorId,
    WaitingRoom,
};

/// A waiting room, in this process or in a shared store: every rule of [`WaitingRoom`] holds
/// on every implementation, and each method has the meaning of the `WaitingRoom` method of the
/// same name, with the same arguments. The HTTP layer (`surgegate::http`) is written against
/// it.
///
/// Operations return their own error enum, whose `Backend` variant a shared store uses for a
/// lost connection or a timeout (the in-process room never does); readings (`entry_of`,
/// `stats`, `waiting`) return `Result<_, BackendError>`, and so do the operator's controls.
/// Implemented by [`WaitingRoom`] with any clock, by `RedisWaitingRoom` (feature `redis`), and
/// by `Arc`s of implementations.
///
/// **One time base**: every instant a caller gets through this trait ([`Pass::expires_at`],
/// [`RoomStats::opens_at`], [`now_unix`](Self::now_unix)) is a time since the Unix epoch, on
/// every backend. The in-process room maps its clock's instants with
/// [`Clock::system_time`], the identity for a [`ManualClock`](crate::ManualClock); its
/// inherent methods keep the clock's own instants. A ticket's ETA is a duration from now
/// either way.
///
/// # Cancel safety
///
/// Dropping a future of a shared store's call before it completes leaves the call in one of
/// the states a lost reply leaves it in: it may or may not have taken effect, and retrying it
/// is safe (a retried join returns the same ticket or pass). The in-process room's futures
/// complete on their first poll.
///
/// ```
/// use std::time::Duration;
/// use surgegate::{Entry, ManualClock, RoomBackend, VisitorId, WaitingRoom};
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop {
/// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
/// #     }
/// # }
///
/// // Written once, for any room: seconds of pass left after admission.
/// async fn pass_seconds<R: RoomBackend>(room: &R) -> u64 {
///     let Entry::Admitted(pass) = room.join(VisitorId(1)).await.unwrap() else { unreachable!() };
///     pass.expires_at.saturating_sub(room.now_unix()).as_secs()
/// }
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(50));
/// let room = WaitingRoom::builder().pass_ttl(Duration::from_secs(900)).clock(clock).build();
/// assert_eq!(block_on(pass_seconds(&room)), 900);
/// assert_eq!(room.now_unix(), Duration::from_secs(50)); // a ManualClock's instants are Unix times
///
/// let room = WaitingRoom::builder().pass_ttl(Duration::from_secs(900)).build(); // system clock
/// assert!(room.now_unix() > Duration::from_secs(1_700_000_000));
/// assert!((899..=900).contains(&block_on(pass_seconds(&room))));
/// ```
pub trait RoomBackend: Send + Sync + 'static {
    /// [`WaitingRoom::join`]: admitted, or a place in line; a returning visitor gets the same
    /// ticket (checking in) or pass.
    fn join(&self, visitor: VisitorId) -> impl Future<Output = Result<Entry, JoinError>> + Send;

    /// [`WaitingRoom::poll`]: where a ticket stands; a check-in.
    fn poll(&self, token: TicketToken) -> impl Future<Output = Result<Entry, PollError>> + Send;

    /// [`WaitingRoom::peek`]: where a ticket stands, without checking in.
    fn peek(&self, token: TicketToken) -> impl Future<Output = Result<Entry, PollError>> + Send;

    /// [`WaitingRoom::entry_of`]: a visitor's ticket (checking in) or pass, never adding anyone.
    fn entry_of(
        &self,
        visitor: VisitorId,
    ) -> impl Future<Output = Result<Option<Entry>, BackendError>> + Send;

    /// [`WaitingRoom::claim`]: a pass's first use.
    fn claim(&self, token: TicketToken) -> impl Future<Output = Result<Pass, ClaimError>> + Send;

    /// [`WaitingRoom::finish`]: ends a pass, or leaves the line.
    fn finish(&self, token: TicketToken) -> impl Future<Output = Result<(), PollError>> + Send;

    /// [`WaitingRoom::stats`]: counts and settings, as of now.
    fn stats(&self) -> impl Future<Output = Result<RoomStats, BackendError>> + Send;

    /// [`WaitingRoom::waiting`]: visitors waiting (in line, and pre-queued in-process).
    fn waiting(&self) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// [`WaitingRoom::pause`]: stops admitting; everyone queues.
    fn pause(&self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// [`WaitingRoom::resume`]: admits again.
    fn resume(&self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// [`WaitingRoom::close`]: refuses newcomers; those in line keep their places.
    fn close(&self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// [`WaitingRoom::reopen`]: takes newcomers again.
    fn reopen(&self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// [`WaitingRoom::set_limits`]: the rate, the burst and `max_active`, checked together by
    /// the same rules on every backend; nothing changes on an error.
    fn set_limits(
        &self,
        rate_per_second: u32,
        burst: u32,
        max_active: u32,
    ) -> impl Future<Output = Result<(), LimitsError>> + Send;

    /// How long a waiting visitor may stay silent before leaving the line.
    fn checkin_timeout(&self) -> Duration;

    /// The backend's time now, since the Unix epoch: the base of every [`Pass::expires_at`]
    /// this trait returns.
    fn now_unix(&self) -> Duration;
}

impl<C: Clock> WaitingRoom<C> {
    /// An entry with its pass's expiry on the traits' time base.
    fn unix_entry(&self, entry: Entry) -> Entry {
        match entry {
            Entry::Admitted(pass) => Entry::Admitted(self.unix_pass(pass)),
            waiting => waiting,
        }
    }

    fn unix_pass(&self, pass: Pass) -> Pass {
        Pass {
            expires_at: unix_time(self.clock(), pass.expires_at),
            ..pass
        }
    }
}

impl<C: Clock> RoomBackend for WaitingRoom<C> {
    async fn join(&self, visitor: VisitorId) -> Result<Entry, JoinError> {
        WaitingRoom::join(self, visitor).map(|e| self.unix_entry(e))
    }

    async fn poll(&self, token: TicketToken) -> Result<Entry, PollError> {
        WaitingRoom::poll(self, token).map(|e| self.unix_entry(e))
    }

    async fn peek(&self, token: TicketToken) -> Result<Entry, PollError> {
        WaitingRoom::peek(self, token).map(|e| self.unix_entry(e))
    }

    async fn entry_of(&self, visitor: VisitorId) -> Result<Option<Entry>, BackendError> {
        Ok(WaitingRoom::entry_of(self, visitor).map(|e| self.unix_entry(e)))
    }

    async fn claim(&self, token: TicketToken) -> Result<Pass, ClaimError> {
        WaitingRoom::claim(self, token).map(|p| self.unix_pass(p))
    }

    async fn finish(&self, token: TicketToken) -> Result<(), PollError> {
        WaitingRoom::finish(self, token)
    }

    async fn stats(&self) -> Result<RoomStats, BackendError> {
        let stats = WaitingRoom::stats(self);
        Ok(RoomStats {
            opens_at: stats.opens_at.map(|at| unix_time(self.clock(), at)),
            ..stats
        })
    }

    async fn waiting(&self) -> Result<u64, BackendError> {
        Ok(WaitingRoom::waiting(self))
    }

    async fn pause(&self) -> Result<(), BackendError> {
        WaitingRoom::pause(self);
        Ok(())
    }

    async fn resume(&self) -> Result<(), BackendError> {
        WaitingRoom::resume(self);
        Ok(())
    }

    async fn close(&self) -> Result<(), BackendError> {
        WaitingRoom::close(self);
        Ok(())
    }

    async fn reopen(&self) -> Result<(), BackendError> {
        WaitingRoom::reopen(self);
        Ok(())
    }

    async fn set_limits(
        &self,
        rate_per_second: u32,
        burst: u32,
        max_active: u32,
    ) -> Result<(), LimitsError> {
        WaitingRoom::set_limits(self, rate_per_second, burst, max_active)
            .map_err(LimitsError::Config)
    }

    fn checkin_timeout(&self) -> Duration {
        WaitingRoom::checkin_timeout(self)
    }

    fn now_unix(&self) -> Duration {
        unix_time(self.clock(), self.clock().now())
    }
}

impl<R: RoomBackend> RoomBackend for Arc<R> {
    fn join(&self, visitor: VisitorId) -> impl Future<Output = Result<Entry, JoinError>> + Send {
        (**self).join(visitor)
    }

    fn poll(&self, token: TicketToken) -> impl Future<Output = Result<Entry, PollError>> + Send {
        (**self).poll(token)
    }

    fn peek(&self, token: TicketToken) -> impl Future<Output = Result<Entry, PollError>> + Send {
        (**self).peek(token)
    }

    fn entry_of(
        &self,
        visitor: VisitorId,
    ) -> impl Future<Output = Result<Option<Entry>, BackendError>> + Send {
        (**self).entry_of(visitor)
    }

    fn claim(&self, token: TicketToken) -> impl Future<Output = Result<Pass, ClaimError>> + Send {
        (**self).claim(token)
    }

    fn finish(&self, token: TicketToken) -> impl Future<Output = Result<(), PollError>> + Send {
        (**self).finish(token)
    }

    fn stats(&self) -> impl Future<Output = Result<RoomStats, BackendError>> + Send {
        (**self).stats()
    }

    fn waiting(&self) -> impl Future<Output = Result<u64, BackendError>> + Send {
        (**self).waiting()
    }

    fn pause(&self) -> impl Future<Output = Result<(), BackendError>> + Send {
        (**self).pause()
    }

    fn resume(&self) -> impl Future<Output = Result<(), BackendError>> + Send {
        (**self).resume()
    }

    fn close(&self) -> impl Future<Output = Result<(), BackendError>> + Send {
        (**self).close()
    }

    fn reopen(&self) -> impl Future<Output = Result<(), BackendError>> + Send {
        (**self).reopen()
    }

    fn set_limits(
        &self,
        rate_per_second: u32,
        burst: u32,
        max_active: u32,
    ) -> impl Future<Output = Result<(), LimitsError>> + Send {
        (**self).set_limits(rate_per_second, burst, max_active)
    }

    fn checkin_timeout(&self) -> Duration {
        (**self).checkin_timeout()
    }

    fn now_unix(&self) -> Duration {
        (**self).now_unix()
    }
}
