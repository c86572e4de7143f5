//! The waiting room: admits visitors at the rate the backend can take and queues the rest fairly.
//!
//! [`WaitingRoom`] owns the admission schedule ([`Gcra`]), the line of waiting visitors, the
//! passes of admitted ones and the pre-queue of a scheduled opening. It has no thread of its own:
//! every call first advances the room to the clock's now, replaying in time order everything that
//! should have happened since the previous call (check-in lapses, passes running out, the opening
//! draw, admissions at their exact scheduled times). A room that nobody called for three seconds
//! at ten admissions per second has admitted thirty more by the next call, in order, skipping
//! whoever's check-in lapsed before their turn.
//!
//! The rules this module guarantees are listed on [`WaitingRoom`].
//!
//! One protocol per file: `types` (the plain values), `error` (each call's errors), `builder`
//! (settings), `state` (`Core`, the state behind the lock, and the replay that advances it),
//! `eta` (tickets, ETAs and stats), `audit` (the whole-room check), `wait` (the async wait);
//! below them, `gcra` (the admission schedule); the FIFO line with exact positions, `line`, and
//! what it is made of: `waiter` (an entry and its atomic check-in deadline), `blocks` (entries by
//! virtual index), `rank` (positions as ranks in a bitmap), `index` (lookups by token and by
//! visitor) and `checkins` (check-in deadlines in order); `arrivals` (newcomers queued behind the
//! line under the shared lock), `admitted` (admitted visitors' passes and the memory of lapsed
//! tokens), `draw` (the pre-queue's fair order) and `prefetch` (a cache hint for the replay).

mod admitted;
mod arrivals;
mod audit;
mod blocks;
mod builder;
mod checkins;
mod draw;
mod error;
mod eta;
mod gcra;
mod index;
mod line;
mod prefetch;
mod rank;
mod state;
mod types;
#[cfg(feature = "tokio")]
mod wait;
mod waiter;

use std::fmt;
use std::time::Duration;

use crate::clock::{Clock, SystemClock, duration_to_ns, now_ns};
use crate::invariant::InvariantViolation;
use crate::sync::{RwLock, RwLockWriteGuard};
use admitted::{LapsedTokens, Passes};
use arrivals::Arrivals;
use line::Line;
use state::Core;

#[cfg(feature = "redis")]
pub(crate) use builder::RoomSettings;
pub use builder::WaitingRoomBuilder;
pub(crate) use builder::check_limits;
pub(crate) use draw::shuffled as draw_order;
pub use draw::{MAX_PREQUEUE, PrequeueTooLong, prequeue_order};
pub use error::{ClaimError, JoinError, LimitsError, PollError, RoomConfigError};
pub use gcra::{Gcra, MAX_RATE};
pub use state::MAX_EVENTS_PER_CALL;
pub use types::{Entry, Pass, RoomStats, Ticket, TicketToken, VisitorId};

/// A fair, exact admission queue for a surge of visitors.
///
/// ```
/// use std::time::Duration;
/// use surgegate::{Entry, ManualClock, VisitorId, WaitingRoom};
///
/// let clock = ManualClock::new();
/// let room = WaitingRoom::builder()
///     .rate_per_second(10)
///     .burst(2)
///     .checkin_timeout(Duration::from_secs(30))
///     .clock(clock.clone())
///     .build();
///
/// assert!(matches!(room.join(VisitorId(1))?, Entry::Admitted(_)));
/// assert!(matches!(room.join(VisitorId(2))?, Entry::Admitted(_)));
/// let Entry::Waiting(ticket) = room.join(VisitorId(3))? else { unreachable!() };
/// assert_eq!(ticket.position, 1);
/// assert_eq!(ticket.eta, Duration::from_millis(100));
///
/// // A refresh never loses your place.
/// assert_eq!(room.join(VisitorId(3))?, Entry::Waiting(ticket));
///
/// clock.advance(Duration::from_millis(100));
/// assert!(matches!(room.poll(ticket.token)?, Entry::Admitted(_)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Rules
///
/// 1. **Rate**: in any interval of length `T`, admissions `<= burst + rate × T`. Idle capacity
///    is never wasted: when nobody waits and the limits allow, `join` admits at once; while
///    visitors wait, admission runs at the full rate even when nobody calls.
/// 2. **FIFO**: a waiting visitor is admitted before everyone who joined after them.
/// 3. **Exact positions**: the waiting visitors' positions are exactly `1..=waiting`.
/// 4. **A refresh never loses your place**: `join` by a waiting visitor returns the same ticket
///    (same token, same place); by a visitor with a live pass, the same pass.
/// 5. **Abandonment**: a waiting visitor with no join or poll for `checkin_timeout` leaves the
///    line, and those behind move up.
/// 6. **Bounded**: at `max_waiting`, `join` of a newcomer is `Full { retry_after > 0 }` and
///    changes nothing.
/// 7. **Active bound**: live passes never exceed `max_active` (unless it was lowered at runtime
///    below the passes already alive, which all survive; no pass is issued until below it).
/// 8. ETA is nondecreasing in position; in a room limited by rate alone, a visitor who keeps
///    checking in is admitted no later than its ETA (plus at most 1 ns per admission ahead of it,
///    from admissions falling on whole nanoseconds).
///
/// All methods take `&self`; the room's state sits behind one reader-writer lock, and every
/// call is O(log n) in the number waiting (amortized), plus the admissions, lapses and pass
/// expiries that fell due since the previous call, at most [`MAX_EVENTS_PER_CALL`] of them.
///
/// # Who waits for whom
///
/// Calls that change the line (`finish`, the operator's calls) and calls that find events due
/// (an admission, a lapse) take the lock exclusively. The common calls of a surge, `poll`,
/// `peek` and `join`, take it shared whenever nothing falls due before the clock's now: many run
/// at once, each answered exactly as of its own reading of the clock. A check-in under the
/// shared lock is one atomic store; the replay moves the visitor's lapse record later when it
/// comes up (see `room::checkins`). A newcomer who joins behind others is queued behind the line
/// under a small lock of its own, at its exact place, and the next exclusive call appends the
/// newcomers (at most 1 024) to the line before anything else (see `room::arrivals`).
///
/// # After a long idle spell
///
/// The room has no thread: what fell due while nobody called is replayed by the next calls, in
/// time order, at most [`MAX_EVENTS_PER_CALL`] events per call (a few milliseconds). A room left
/// alone for an hour with a million waiting (whose check-ins all lapsed) therefore catches up
/// over about 120 calls rather than in one call of a second. While it catches up, its time lags
/// the clock: each call is answered as of the room's time, every rule holds on that time, the
/// history is the one an immediate replay would have produced, and an operator's change applies
/// at the room's time. Joins and check-ins take their deadlines from the clock, so a visitor who
/// checks in on time is never dropped for the room's delay (one whose check-in had lapsed by the
/// clock, but not yet by the room's time, keeps their place).
pub struct WaitingRoom<C = SystemClock> {
    clock: C,
    core: RwLock<Core>,
    checkin_timeout_ns: u64,
    #[cfg(feature = "tokio")]
    notify: tokio::sync::Notify,
}

impl WaitingRoom<SystemClock> {
    /// A builder with the default settings and the system clock.
    pub fn builder() -> WaitingRoomBuilder<SystemClock> {
        WaitingRoomBuilder::default()
    }
}

impl<C> fmt::Debug for WaitingRoom<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core.read();
        f.debug_struct("WaitingRoom")
            .field("waiting", &core.waiting_in_line())
            .field("prequeued", &core.prequeue.waiting())
            .field("active", &core.passes.len())
            .field("rate_per_second", &core.gcra.rate_per_second())
            .field("burst", &core.gcra.burst())
            .finish_non_exhaustive()
    }
}

impl<C: Clock> WaitingRoom<C> {
    /// Locks the core exclusively and advances it to the clock's now.
    fn advanced(&self) -> RwLockWriteGuard<'_, Core> {
        let mut core = self.core.write();
        core.settle_arrivals();
        // Read the time under the lock so that calls advance the room in time order.
        let now = now_ns(&self.clock);
        core.advance(now);
        core
    }

    /// Runs `f` under the shared lock if nothing falls due before the clock's now, with that
    /// now (at or after the room's time) and the clock reading; `None` if the room must be
    /// advanced first.
    #[inline]
    fn shared<T>(&self, f: impl FnOnce(&Core, u64, u64) -> T) -> Option<T> {
        let core = self.core.read();
        // Read the time under the lock: no exclusive call runs between this reading and the
        // answer, so the answer is the room's state at this time.
        let clock = now_ns(&self.clock);
        let now = clock.max(core.now_ns);
        core.quiet_at(now).then(|| f(&core, now, clock))
    }

    /// Runs one call on the core, advanced to now; then, outside the lock, wakes the async
    /// waiters whose tickets the call admitted.
    fn call<T>(&self, f: impl FnOnce(&mut Core) -> T) -> T {
        let mut core = self.advanced();
        let result = f(&mut core);
        core.refresh_next_event();
        #[cfg(feature = "tokio")]
        let due = core.awaited.take_due();
        drop(core);
        #[cfg(feature = "tokio")]
        for notify in due {
            notify.notify_one();
        }
        result
    }

    /// Enters the room: admitted at once if nobody waits and the limits allow, else a place at
    /// the back of the line (or in the pre-queue of a pending scheduled opening).
    ///
    /// A visitor who is already waiting gets the same ticket back, at the same place, and this
    /// counts as a check-in; a visitor with a live pass gets the same pass.
    ///
    /// ```
    /// use surgegate::{Entry, JoinError, ManualClock, VisitorId, WaitingRoom};
    ///
    /// let room = WaitingRoom::builder()
    ///     .rate_per_second(1)
    ///     .burst(1)
    ///     .max_waiting(1)
    ///     .clock(ManualClock::new())
    ///     .build();
    /// assert!(matches!(room.join(VisitorId(1))?, Entry::Admitted(_)));
    /// assert!(matches!(room.join(VisitorId(2))?, Entry::Waiting(t) if t.position == 1));
    /// assert!(matches!(room.join(VisitorId(3)), Err(JoinError::Full { .. })));
    /// # Ok::<(), JoinError>(())
    /// ```
    pub fn join(&self, visitor: VisitorId) -> Result<Entry, JoinError> {
        let shared = |core: &Core, now, clock| core.join_shared(visitor, now, clock);
        if let Some(Some(entry)) = self.shared(shared) {
            return Ok(entry);
        }
        self.call(|core| core.join(visitor))
    }

    /// Where this ticket stands now. Counts as a check-in for a waiting visitor.
    ///
    /// ```
    /// use std::time::Duration;
    /// use surgegate::{Entry, ManualClock, PollError, VisitorId, WaitingRoom};
    ///
    /// let clock = ManualClock::new();
    /// let room = WaitingRoom::builder()
    ///     .rate_per_second(1)
    ///     .burst(1)
    ///     .checkin_timeout(Duration::from_secs(10))
    ///     .clock(clock.clone())
    ///     .build();
    /// room.join(VisitorId(1))?;
    /// let Entry::Waiting(ticket) = room.join(VisitorId(2))? else { unreachable!() };
    /// clock.advance(Duration::from_millis(400));
    /// let Entry::Waiting(now) = room.poll(ticket.token)? else { unreachable!() };
    /// assert_eq!(now.eta, Duration::from_millis(600));
    /// clock.advance(Duration::from_millis(600));
    /// assert!(matches!(room.poll(ticket.token)?, Entry::Admitted(_)));
    /// assert_eq!(room.poll("0".repeat(32).parse()?), Err(PollError::UnknownToken));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&self, token: TicketToken) -> Result<Entry, PollError> {
        if let Some(answer) = self.shared(|core, now, clock| core.poll(token.0, now, clock)) {
            return answer;
        }
        self.call(|core| core.poll(token.0, core.now_ns, core.clock_ns))
    }

    /// Where this ticket stands now, without checking in: for operators and dashboards looking a
    /// ticket up. A visitor's own client should use [`poll`](Self::poll), or it will lapse.
    ///
    /// ```
    /// use std::time::Duration;
    /// use surgegate::{Entry, ManualClock, PollError, VisitorId, WaitingRoom};
    ///
    /// let clock = ManualClock::new();
    /// let room = WaitingRoom::builder()
    ///     .rate_per_second(1)
    ///     .burst(1)
    ///     .checkin_timeout(Duration::from_secs(5))
    ///     .clock(clock.clone())
    ///     .build();
    /// for v in 0..9 {
    ///     room.join(VisitorId(v))?; // one admitted, eight waiting
    /// }
    /// let Entry::Waiting(ticket) = room.join(VisitorId(9))? else { unreachable!() };
    /// assert_eq!(ticket.position, 9);
    /// clock.advance(Duration::from_millis(4900));
    /// assert!(matches!(room.peek(ticket.token)?, Entry::Waiting(t) if t.position == 5));
    /// clock.advance(Duration::from_millis(100)); // 5 s without a check-in: lapsed
    /// assert_eq!(room.peek(ticket.token), Err(PollError::Expired));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn peek(&self, token: TicketToken) -> Result<Entry, PollError> {
        if let Some(answer) = self.shared(|core, now, _| core.peek(token.0, now)) {
            return answer;
        }
        self.call(|core| core.peek(token.0, core.now_ns))
    }

    /// Claims a pass: the portal's first request that presents it calls this, and from then on
    /// the pass lasts `pass_ttl` from its admission. Under a
    /// [`claim_timeout`](WaitingRoomBuilder::claim_timeout), a pass not claimed in time lapses
    /// and frees its active place; without one, claiming changes nothing. Claiming again returns
    /// the same pass.
    ///
    /// ```
    /// use std::time::Duration;
    /// use surgegate::{ClaimError, Entry, ManualClock, VisitorId, WaitingRoom};
    ///
    /// let clock = ManualClock::new();
    /// let room = WaitingRoom::builder()
    ///     .rate_per_second(1)
    ///     .burst(1)
    ///     .claim_timeout(Duration::from_secs(20))
    ///     .pass_ttl(Duration::from_secs(600))
    ///     .clock(clock.clone())
    ///     .build();
    /// let Entry::Admitted(pass) = room.join(VisitorId(1))? else { unreachable!() };
    /// let Entry::Waiting(ticket) = room.join(VisitorId(2))? else { unreachable!() };
    /// assert_eq!(room.claim(ticket.token), Err(ClaimError::NotAdmitted));
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(room.claim(pass.token)?.expires_at, Duration::from_secs(600));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn claim(&self, token: TicketToken) -> Result<Pass, ClaimError> {
        // A portal claims on every request that presents a pass: once claimed, that is a read.
        if let Some(Some(pass)) = self.shared(|core, _, _| core.claimed(token.0)) {
            return Ok(pass);
        }
        self.call(|core| core.claim(token.0))
    }

    /// The pass or ticket of a visitor already in the room (a check-in for a waiting one), or
    /// `None` for a visitor who is not in it. Unlike [`join`](Self::join), never adds anyone:
    /// for a portal that must find a visitor's token, to let them leave, say.
    ///
    /// ```
    /// use surgegate::{Entry, ManualClock, VisitorId, WaitingRoom};
    ///
    /// let room = WaitingRoom::builder().rate_per_second(1).burst(1).clock(ManualClock::new()).build();
    /// room.join(VisitorId(1))?;
    /// let Entry::Waiting(ticket) = room.join(VisitorId(2))? else { unreachable!() };
    /// assert_eq!(room.entry_of(VisitorId(2)), Some(Entry::Waiting(ticket)));
    /// assert_eq!(room.entry_of(VisitorId(3)), None);
    /// assert_eq!(room.stats().waiting, 1);
    /// # Ok::<(), surgegate::JoinError>(())
    /// ```
    pub fn entry_of(&self, visitor: VisitorId) -> Option<Entry> {
        if let Some(entry) = self.shared(|core, now, clock| core.rejoin(visitor, now, clock)) {
            return entry;
        }
        self.call(|core| core.rejoin(visitor, core.now_ns, core.clock_ns))
    }

    /// Ends a pass (freeing its active place at once) or leaves the line (those behind move up).
    ///
    /// ```
    /// use surgegate::{Entry, ManualClock, PollError, VisitorId, WaitingRoom};
    ///
    /// let room = WaitingRoom::builder()
    ///     .rate_per_second(100)
    ///     .max_active(1)
    ///     .clock(ManualClock::new())
    ///     .build();
    /// let Entry::Admitted(pass) = room.join(VisitorId(1))? else { unreachable!() };
    /// let Entry::Waiting(ticket) = room.join(VisitorId(2))? else { unreachable!() };
    /// room.finish(pass.token)?; // the active place goes to the next in line
    /// assert!(matches!(room.poll(ticket.token)?, Entry::Admitted(_)));
    /// assert_eq!(room.finish(pass.token), Err(PollError::UnknownToken));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn finish(&self, token: TicketToken) -> Result<(), PollError> {
        self.call(|core| core.finish(token.0))
    }

    /// How many visitors wait, in line or in the pre-queue of a scheduled opening, as of now:
    /// [`RoomStats::waiting`] plus [`RoomStats::prequeued`], without the rest of the stats (and,
    /// when nothing is due, under the shared lock): for a page that shows "place N of M".
    ///
    /// ```
    /// use surgegate::{ManualClock, VisitorId, WaitingRoom};
    ///
    /// let room = WaitingRoom::builder().rate_per_second(5).burst(1).clock(ManualClock::new()).build();
    /// for v in 0..4 {
    ///     room.join(VisitorId(v))?;
    /// }
    /// assert_eq!(room.waiting(), 3);
    /// # Ok::<(), surgegate::JoinError>(())
    /// ```
    pub fn waiting(&self) -> u64 {
        let count = |core: &Core| (core.waiting_in_line() + core.prequeue.waiting()) as u64;
        if let Some(n) = self.shared(|core, _, _| count(core)) {
            return n;
        }
        self.call(|core| count(core))
    }

    /// Counts and settings, as of now.
    ///
    /// ```
    /// use surgegate::{ManualClock, VisitorId, WaitingRoom};
    ///
    /// let room = WaitingRoom::builder().rate_per_second(5).burst(1).clock(ManualClock::new()).build();
    /// for v in 0..4 {
    ///     room.join(VisitorId(v))?;
    /// }
    /// let stats = room.stats();
    /// assert_eq!((stats.active, stats.waiting, stats.admitted_total), (1, 3, 1));
    /// assert_eq!(stats.back_of_line_eta, std::time::Duration::from_millis(600));
    /// # Ok::<(), surgegate::JoinError>(())
    /// ```
    pub fn stats(&self) -> RoomStats {
        self.call(|core| core.stats())
    }

    /// Changes the sustained rate from now on, keeping the line and the schedule's debt.
    pub fn set_rate_per_second(&self, rate_per_second: u32) -> Result<(), RoomConfigError> {
        if !(1..=MAX_RATE).contains(&rate_per_second) {
            return Err(RoomConfigError::Rate(rate_per_second));
        }
        self.reconfigure(|core| {
            let now = core.now_ns;
            core.gcra.set_rate_ns(now, rate_per_second);
        });
        Ok(())
    }

    /// Changes the burst from now on. Raising it may admit visitors at once.
    pub fn set_burst(&self, burst: u32) -> Result<(), RoomConfigError> {
        if !(1..=MAX_RATE).contains(&burst) {
            return Err(RoomConfigError::Burst(burst));
        }
        self.reconfigure(|core| core.gcra.set_burst(burst));
        Ok(())
    }

    /// Changes the limit on live passes (`u32::MAX`: none). Lowering it below the live passes
    /// keeps them all; nobody is admitted until they fit.
    pub fn set_max_active(&self, max_active: u32) -> Result<(), RoomConfigError> {
        if max_active == 0 {
            return Err(RoomConfigError::MaxActive(0));
        }
        self.reconfigure(|core| {
            core.max_active = max_active;
            if core.passes.len() > max_active as usize {
                core.lowered_below_active = true;
            }
        });
        Ok(())
    }

    /// Changes the rate, the burst and the limit on live passes together, from now on, keeping
    /// the line and the schedule's debt: the three are checked first by the builder's rules,
    /// and nothing changes if one is out of range. Raising the burst may admit visitors at
    /// once; lowering `max_active` below the live passes keeps them all, and nobody is
    /// admitted until they fit.
    ///
    /// ```
    /// use surgegate::{ManualClock, RoomConfigError, WaitingRoom};
    ///
    /// let room = WaitingRoom::builder().clock(ManualClock::new()).build();
    /// room.set_limits(50, 10, 1_000)?;
    /// assert_eq!(room.set_limits(60, 0, 2_000), Err(RoomConfigError::Burst(0)));
    /// let s = room.stats();
    /// assert_eq!((s.rate_per_second, s.burst, s.max_active), (50, 10, 1_000)); // unchanged
    /// # Ok::<(), RoomConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`RoomConfigError::Rate`], [`RoomConfigError::Burst`] or [`RoomConfigError::MaxActive`]
    /// for the first value out of range.
    pub fn set_limits(
        &self,
        rate_per_second: u32,
        burst: u32,
        max_active: u32,
    ) -> Result<(), RoomConfigError> {
        check_limits(rate_per_second, burst, max_active)?;
        self.reconfigure(|core| {
            let now = core.now_ns;
            core.gcra.set_rate_ns(now, rate_per_second);
            core.gcra.set_burst(burst);
            core.max_active = max_active;
            if core.passes.len() > max_active as usize {
                core.lowered_below_active = true;
            }
        });
        Ok(())
    }

    /// Stops admitting: everyone queues (the operator's kill switch). Passes stay valid.
    pub fn pause(&self) {
        self.call(|core| core.paused = true);
    }

    /// Resumes admitting, from now on, at the configured rate (a full burst after the pause).
    pub fn resume(&self) {
        self.reconfigure(|core| core.paused = false);
    }

    /// Refuses newcomers with [`JoinError::Closed`]. Those already in line keep their places and
    /// are admitted as usual; returning visitors still get their ticket or pass.
    pub fn close(&self) {
        self.call(|core| core.closed = true);
    }

    /// Lets newcomers in again after [`close`](Self::close).
    pub fn reopen(&self) {
        self.call(|core| core.closed = false);
    }

    /// Schedules an opening at `at` (on the room's clock) with a fair pre-queue.
    ///
    /// Until `at`, nobody is admitted and newcomers join a pre-queue. At `at`, the pre-queued
    /// visitors still present enter the line, behind anyone already in it, in the random order
    /// [`prequeue_order`]`(n, seed)` gives to them in join order; later arrivals queue behind
    /// them. Arriving early buys nothing but a place in the draw, and one visitor has one ticket
    /// however often they join. The seed is shown in [`RoomStats::prequeue_seed`] so the draw can
    /// be audited. Calling again before `at` replaces the time and the seed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use surgegate::{Entry, ManualClock, VisitorId, WaitingRoom};
    ///
    /// let clock = ManualClock::new();
    /// let room = WaitingRoom::builder().rate_per_second(1000).burst(1).clock(clock.clone()).build();
    /// room.open_at(Duration::from_secs(60), 2026);
    /// for v in 0..5 {
    ///     room.join(VisitorId(v))?;
    /// }
    /// assert_eq!(room.stats().prequeued, 5);
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(room.stats().prequeued, 0);
    /// assert_eq!(room.stats().prequeue_seed, Some(2026));
    /// # Ok::<(), surgegate::JoinError>(())
    /// ```
    pub fn open_at(&self, at: Duration, seed: u64) {
        self.reconfigure(|core| core.opening = Some((duration_to_ns(at), seed)));
    }

    /// Checks every invariant of the room: exact positions `1..=waiting`, indexes agreeing with
    /// the line, one ticket or pass per visitor, no lapsed visitor still waiting, the active and
    /// waiting bounds, admission counts adding up, and that no admissible visitor is left waiting.
    /// O(n log n); meant for tests and audits.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.core.read().check()
    }

    /// Heap bytes held by the room's line, pre-queue, passes and lapsed-token memory.
    pub fn heap_bytes(&self) -> usize {
        let core = self.core.read();
        core.line.heap_bytes()
            + core.arrivals.heap_bytes()
            + core.prequeue.heap_bytes()
            + core.passes.heap_bytes()
            + core.lapsed.heap_bytes()
    }

    /// The room's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The configured check-in timeout.
    pub fn checkin_timeout(&self) -> Duration {
        Duration::from_nanos(self.checkin_timeout_ns)
    }

    /// An operator's change: advance to now, apply `change`, replay what it makes due at once
    /// (a raised burst admits at once), then wake the async waiters, whose ETAs it moved.
    fn reconfigure(&self, change: impl FnOnce(&mut Core)) {
        self.call(|core| {
            change(core);
            core.advance_now_unless_behind();
        });
        self.wake_waiters();
    }

    fn wake_waiters(&self) {
        #[cfg(feature = "tokio")]
        self.notify.notify_waiters();
    }
}
