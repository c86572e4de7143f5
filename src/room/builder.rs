//! The builder: every setting of a room, checked before anything is allocated.

use std::time::Duration;

use super::{
    Arrivals, Core, Gcra, LapsedTokens, Line, MAX_RATE, Passes, RoomConfigError, WaitingRoom,
};
use crate::clock::{Clock, SystemClock, duration_to_ns, now_ns};
use crate::sync::RwLock;

/// The most lapsed tokens a room remembers.
const MAX_ENDED_MEMORY: usize = 1 << 22;
/// The longest line.
const MAX_WAITING: u32 = 1 << 30;
/// The shortest check-in timeout, pass lifetime and claim timeout.
const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// The longest check-in timeout.
const MAX_CHECKIN_TIMEOUT: Duration = Duration::from_secs(86_400);
/// The longest pass lifetime.
const MAX_PASS_TTL: Duration = Duration::from_secs(7 * 86_400);

/// Builds a [`WaitingRoom`]. Every setting has a default; see each setter.
#[derive(Clone, Debug)]
#[must_use]
pub struct WaitingRoomBuilder<C = SystemClock> {
    clock: C,
    settings: RoomSettings,
}

/// Every setting of a room but its clock: what both backends' builders hold, so that changing
/// the clock type moves them as one, and one [`check`](Self::check) rules them all.
#[derive(Clone, Debug)]
pub(crate) struct RoomSettings {
    pub(crate) rate_per_second: u32,
    pub(crate) burst: u32,
    pub(crate) max_active: u32,
    pub(crate) max_waiting: u32,
    pub(crate) checkin_timeout: Duration,
    pub(crate) pass_ttl: Duration,
    pub(crate) claim_timeout: Option<Duration>,
    pub(crate) ended_memory: usize,
}

impl Default for WaitingRoomBuilder<SystemClock> {
    fn default() -> Self {
        Self {
            clock: SystemClock::new(),
            settings: RoomSettings::default(),
        }
    }
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            rate_per_second: 100,
            burst: 100,
            max_active: u32::MAX,
            max_waiting: 1_000_000,
            checkin_timeout: Duration::from_secs(60),
            pass_ttl: Duration::from_secs(900),
            claim_timeout: None,
            ended_memory: 65_536,
        }
    }
}

impl<C: Clock> WaitingRoomBuilder<C> {
    /// Sustained admissions per second. Default 100; 1 to ten million.
    pub fn rate_per_second(mut self, rate: u32) -> Self {
        self.settings.rate_per_second = rate;
        self
    }

    /// Admissions allowed at once after a quiet spell. Default 100; 1 to ten million.
    pub fn burst(mut self, burst: u32) -> Self {
        self.settings.burst = burst;
        self
    }

    /// The most passes alive at once. Default: unlimited (`u32::MAX`).
    pub fn max_active(mut self, max_active: u32) -> Self {
        self.settings.max_active = max_active;
        self
    }

    /// The most visitors waiting at once (line plus pre-queue). Default one million; at most 2^30.
    pub fn max_waiting(mut self, max_waiting: u32) -> Self {
        self.settings.max_waiting = max_waiting;
        self
    }

    /// A waiting visitor who neither joins nor polls for this long leaves the line.
    /// Default 60 s; 1 ms to 24 h.
    pub fn checkin_timeout(mut self, timeout: Duration) -> Self {
        self.settings.checkin_timeout = timeout;
        self
    }

    /// A pass lapses this long after admission. Default 15 minutes; 1 ms to 7 days.
    pub fn pass_ttl(mut self, ttl: Duration) -> Self {
        self.settings.pass_ttl = ttl;
        self
    }

    /// A pass must be claimed ([`WaitingRoom::claim`](crate::WaitingRoom::claim), which a
    /// portal calls on the first request that presents it) within this time of its admission,
    /// or it lapses and frees its active place at once, instead of holding it for the whole
    /// `pass_ttl` for a visitor who left. A claimed pass lasts `pass_ttl` from its admission.
    /// Default: off. 1 ms to `pass_ttl`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use surgegate::{Entry, ManualClock, VisitorId, WaitingRoom};
    ///
    /// let clock = ManualClock::new();
    /// let room = WaitingRoom::builder()
    ///     .max_active(1)
    ///     .claim_timeout(Duration::from_secs(30))
    ///     .clock(clock.clone())
    ///     .build();
    /// let Entry::Admitted(gone) = room.join(VisitorId(1))? else { unreachable!() };
    /// let Entry::Waiting(next) = room.join(VisitorId(2))? else { unreachable!() };
    /// assert_eq!(gone.expires_at, Duration::from_secs(30)); // unless claimed by then
    /// clock.advance(Duration::from_secs(30)); // visitor 1 never came back
    /// let Entry::Admitted(pass) = room.poll(next.token)? else { unreachable!() };
    /// let claimed = room.claim(pass.token)?;
    /// assert_eq!(claimed.expires_at, Duration::from_secs(30 + 900)); // pass_ttl from admission
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn claim_timeout(mut self, timeout: Duration) -> Self {
        self.settings.claim_timeout = Some(timeout);
        self
    }

    /// How many lapsed tokens (silent tickets, passes that ran out) the room remembers, so that
    /// polling one says `Expired` rather than `UnknownToken`. Default 65 536 (about 1.7 MiB at
    /// most); 0 to 2^22 (about 110 MiB), counted by
    /// [`WaitingRoom::heap_bytes`](crate::WaitingRoom::heap_bytes). Finished tokens answer
    /// `UnknownToken` either way and are not kept.
    pub fn ended_memory(mut self, tokens: usize) -> Self {
        self.settings.ended_memory = tokens;
        self
    }

    /// The clock the room reads time from. Default: a [`SystemClock`] created with the builder.
    pub fn clock<C2: Clock>(self, clock: C2) -> WaitingRoomBuilder<C2> {
        WaitingRoomBuilder {
            clock,
            settings: self.settings,
        }
    }

    /// Builds the room, or says which setting is out of range.
    pub fn try_build(self) -> Result<WaitingRoom<C>, RoomConfigError> {
        let gcra = self.settings.check()?;
        let start_ns = now_ns(&self.clock);
        let core = core(&self.settings, gcra, start_ns);
        Ok(WaitingRoom {
            core: RwLock::new(core),
            checkin_timeout_ns: duration_to_ns(self.settings.checkin_timeout),
            clock: self.clock,
            #[cfg(feature = "tokio")]
            notify: tokio::sync::Notify::new(),
        })
    }

    /// Builds the room.
    ///
    /// # Panics
    ///
    /// If a setting is out of the range its setter documents (a zero rate, a zero
    /// `max_waiting`, ...). Use [`try_build`](Self::try_build) when the settings come from
    /// outside the program.
    pub fn build(self) -> WaitingRoom<C> {
        match self.try_build() {
            Ok(room) => room,
            Err(e) => panic!("invalid WaitingRoom configuration: {e}"),
        }
    }
}

/// The three limits an operator changes at run time, checked together: the schedule they give,
/// or the first one out of range (the rate before the burst before `max_active`). The one rule
/// for every backend's builder and `set_limits`.
pub(crate) fn check_limits(
    rate_per_second: u32,
    burst: u32,
    max_active: u32,
) -> Result<Gcra, RoomConfigError> {
    if !(1..=MAX_RATE).contains(&rate_per_second) {
        return Err(RoomConfigError::Rate(rate_per_second));
    }
    let gcra = Gcra::new(rate_per_second, burst).ok_or(RoomConfigError::Burst(burst))?;
    if max_active == 0 {
        return Err(RoomConfigError::MaxActive(0));
    }
    Ok(gcra)
}

impl RoomSettings {
    /// Every setting checked, in the order of the setters: the admission schedule, or the
    /// first setting out of its range. The Redis room's builder checks its settings with this
    /// too, so both backends accept exactly the same ones.
    pub(crate) fn check(&self) -> Result<Gcra, RoomConfigError> {
        let gcra = check_limits(self.rate_per_second, self.burst, self.max_active)?;
        if !(1..=MAX_WAITING).contains(&self.max_waiting) {
            return Err(RoomConfigError::MaxWaiting(self.max_waiting));
        }
        if !(MIN_INTERVAL..=MAX_CHECKIN_TIMEOUT).contains(&self.checkin_timeout) {
            return Err(RoomConfigError::CheckinTimeout(self.checkin_timeout));
        }
        if !(MIN_INTERVAL..=MAX_PASS_TTL).contains(&self.pass_ttl) {
            return Err(RoomConfigError::PassTtl(self.pass_ttl));
        }
        if let Some(claim) = self.claim_timeout
            && !(MIN_INTERVAL..=self.pass_ttl).contains(&claim)
        {
            return Err(RoomConfigError::ClaimTimeout(claim));
        }
        if self.ended_memory > MAX_ENDED_MEMORY {
            return Err(RoomConfigError::EndedMemory(self.ended_memory));
        }
        Ok(gcra)
    }
}

/// A new room's state: nobody waiting, nothing active, at `start_ns`.
fn core(settings: &RoomSettings, gcra: Gcra, start_ns: u64) -> Core {
    let visitor_hasher = ahash::RandomState::new();
    let pass_ttl_ns = duration_to_ns(settings.pass_ttl);
    Core {
        gcra,
        max_active: settings.max_active,
        lowered_below_active: false,
        max_waiting: settings.max_waiting,
        checkin_timeout_ns: duration_to_ns(settings.checkin_timeout),
        pass_ttl_ns,
        claim_timeout_ns: settings.claim_timeout.map(duration_to_ns),
        paused: false,
        closed: false,
        opening: None,
        last_seed: None,
        line: Line::new(visitor_hasher.clone()),
        arrivals: Arrivals::new(),
        prequeue: Line::new(visitor_hasher),
        passes: Passes::new(),
        lapsed: LapsedTokens::new(settings.ended_memory),
        now_ns: start_ns,
        clock_ns: start_ns,
        behind: false,
        // Nothing waits, nothing is active: nothing can fall due.
        next_event_ns: u64::MAX,
        admitted_total: 0,
        dropped_total: 0,
        left_total: 0,
        passes_finished: 0,
        passes_lapsed: 0,
        mean_pass_ns: pass_ttl_ns,
        #[cfg(feature = "tokio")]
        awaited: Default::default(),
    }
}
