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

mod draw;
mod error;
mod gcra;
mod index;
mod line;
mod passes;
mod rank;
#[cfg(feature = "tokio")]
mod wait;

use std::fmt;
use std::time::Duration;

use crate::clock::{Clock, SystemClock, duration_to_ns, now_ns};
use crate::invariant::{InvariantViolation, ensure};
use crate::sync::Mutex;
use crate::token::{random_u128, token_type};
use line::{Line, Waiter};
use passes::{LapsedTokens, PassRec, Passes};

pub use draw::prequeue_order;
pub use error::{JoinError, PollError, RoomConfigError};
pub use gcra::{Gcra, MAX_RATE};

/// A visitor, as identified by the caller (a session or account id). One visitor has at most one
/// ticket or pass at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VisitorId(pub u64);

token_type!(
    /// The unguessable proof of a place in line, and of the pass it becomes: 128 bits of CSPRNG
    /// output, shown as exactly 32 lowercase hex digits. A ticket keeps its token when admitted.
    ///
    /// ```
    /// use surgegate::TicketToken;
    ///
    /// let token: TicketToken = "ffeeddccbbaa99887766554433221100".parse()?;
    /// assert_eq!(token.to_string(), "ffeeddccbbaa99887766554433221100");
    /// # Ok::<(), surgegate::TokenParseError>(())
    /// ```
    TicketToken
);

/// A place in line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    /// Polls this ticket; the pass keeps it.
    pub token: TicketToken,
    /// 1 for the next visitor to be admitted. While a scheduled opening is pending, every
    /// pre-queued visitor shows the last place the draw can give them.
    pub position: u64,
    /// Estimated wait from now: exact (to 1 ns per admission ahead) for a room limited by rate
    /// alone, as long as nobody ahead leaves, which only makes it shorter; with `max_active`,
    /// estimated from how long passes have been lasting. While paused, the estimate assumes the
    /// room resumes now.
    pub eta: Duration,
}

/// Admission: the visitor may proceed until `expires_at` or until [`WaitingRoom::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pass {
    /// The ticket's token.
    pub token: TicketToken,
    /// Who was admitted.
    pub visitor: VisitorId,
    /// The room's clock time at which the pass lapses and frees its active place.
    pub expires_at: Duration,
}

/// The answer to a join or a poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    /// Admitted: go ahead.
    Admitted(Pass),
    /// Waiting: here is your place.
    Waiting(Ticket),
}

/// A snapshot of the room, from [`WaitingRoom::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomStats {
    /// Visitors in line (not counting the pre-queue).
    pub waiting: u64,
    /// Visitors in the pre-queue of a pending scheduled opening.
    pub prequeued: u64,
    /// Live passes.
    pub active: u64,
    /// Passes ever issued.
    pub admitted_total: u64,
    /// Visitors ever dropped from the line (or pre-queue) because their check-in lapsed.
    pub dropped_total: u64,
    /// Visitors who left the line (or pre-queue) themselves with `finish`.
    pub left_total: u64,
    /// The current sustained admission rate.
    pub rate_per_second: u32,
    /// The current burst.
    pub burst: u32,
    /// The current limit on live passes (`u32::MAX`: none).
    pub max_active: u32,
    /// The bound on `waiting + prequeued`.
    pub max_waiting: u32,
    /// Whether admissions are paused.
    pub paused: bool,
    /// Whether newcomers are refused.
    pub closed: bool,
    /// When the pending scheduled opening happens, on the room's clock.
    pub opens_at: Option<Duration>,
    /// The seed of the pending scheduled opening, or of the last draw, so the draw can be
    /// re-run with [`prequeue_order`].
    pub prequeue_seed: Option<u64>,
    /// The ETA of the last visitor in line (or pre-queue); zero when nobody waits.
    pub back_of_line_eta: Duration,
}

/// Builds a [`WaitingRoom`]. Every setting has a default; see each setter.
#[derive(Clone, Debug)]
#[must_use]
pub struct WaitingRoomBuilder<C = SystemClock> {
    clock: C,
    rate_per_second: u32,
    burst: u32,
    max_active: u32,
    max_waiting: u32,
    checkin_timeout: Duration,
    pass_ttl: Duration,
    ended_memory: usize,
}

impl Default for WaitingRoomBuilder<SystemClock> {
    fn default() -> Self {
        Self {
            clock: SystemClock::new(),
            rate_per_second: 100,
            burst: 100,
            max_active: u32::MAX,
            max_waiting: 1_000_000,
            checkin_timeout: Duration::from_secs(60),
            pass_ttl: Duration::from_secs(900),
            ended_memory: 65_536,
        }
    }
}

impl<C: Clock> WaitingRoomBuilder<C> {
    /// Sustained admissions per second. Default 100; 1 to ten million.
    pub fn rate_per_second(mut self, rate: u32) -> Self {
        self.rate_per_second = rate;
        self
    }

    /// Admissions allowed at once after a quiet spell. Default 100; 1 to ten million.
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// The most passes alive at once. Default: unlimited (`u32::MAX`).
    pub fn max_active(mut self, max_active: u32) -> Self {
        self.max_active = max_active;
        self
    }

    /// The most visitors waiting at once (line plus pre-queue). Default one million; at most 2^30.
    pub fn max_waiting(mut self, max_waiting: u32) -> Self {
        self.max_waiting = max_waiting;
        self
    }

    /// A waiting visitor who neither joins nor polls for this long leaves the line.
    /// Default 60 s; 1 ms to 24 h.
    pub fn checkin_timeout(mut self, timeout: Duration) -> Self {
        self.checkin_timeout = timeout;
        self
    }

    /// A pass lapses this long after admission. Default 15 minutes; 1 ms to 7 days.
    pub fn pass_ttl(mut self, ttl: Duration) -> Self {
        self.pass_ttl = ttl;
        self
    }

    /// How many lapsed tokens (silent tickets, passes that ran out) the room remembers, so that
    /// polling one says `Expired` rather than `UnknownToken`. Default 65 536 (about 1.7 MiB at
    /// most). Finished tokens answer `UnknownToken` either way and are not kept.
    pub fn ended_memory(mut self, tokens: usize) -> Self {
        self.ended_memory = tokens;
        self
    }

    /// The clock the room reads time from. Default: a [`SystemClock`] created with the builder.
    pub fn clock<C2: Clock>(self, clock: C2) -> WaitingRoomBuilder<C2> {
        WaitingRoomBuilder {
            clock,
            rate_per_second: self.rate_per_second,
            burst: self.burst,
            max_active: self.max_active,
            max_waiting: self.max_waiting,
            checkin_timeout: self.checkin_timeout,
            pass_ttl: self.pass_ttl,
            ended_memory: self.ended_memory,
        }
    }

    /// Builds the room, or says which setting is out of range.
    pub fn try_build(self) -> Result<WaitingRoom<C>, RoomConfigError> {
        let gcra = Gcra::new(self.rate_per_second, self.burst).ok_or(
            if (1..=MAX_RATE).contains(&self.rate_per_second) {
                RoomConfigError::Burst(self.burst)
            } else {
                RoomConfigError::Rate(self.rate_per_second)
            },
        )?;
        if self.max_active == 0 {
            return Err(RoomConfigError::MaxActive(0));
        }
        if !(1..=1 << 30).contains(&self.max_waiting) {
            return Err(RoomConfigError::MaxWaiting(self.max_waiting));
        }
        let ms = Duration::from_millis(1);
        if self.checkin_timeout < ms || self.checkin_timeout > Duration::from_secs(86_400) {
            return Err(RoomConfigError::CheckinTimeout(self.checkin_timeout));
        }
        if self.pass_ttl < ms || self.pass_ttl > Duration::from_secs(7 * 86_400) {
            return Err(RoomConfigError::PassTtl(self.pass_ttl));
        }
        let visitor_hasher = ahash::RandomState::new();
        let checkin_timeout_ns = duration_to_ns(self.checkin_timeout);
        let pass_ttl_ns = duration_to_ns(self.pass_ttl);
        let start_ns = now_ns(&self.clock);
        Ok(WaitingRoom {
            core: Mutex::new(Core {
                gcra,
                max_active: self.max_active,
                lowered_below_active: false,
                max_waiting: self.max_waiting,
                checkin_timeout_ns,
                pass_ttl_ns,
                paused: false,
                closed: false,
                opening: None,
                last_seed: None,
                line: Line::new(visitor_hasher.clone()),
                prequeue: Line::new(visitor_hasher),
                passes: Passes::new(),
                lapsed: LapsedTokens::new(self.ended_memory),
                now_ns: start_ns,
                admitted_total: 0,
                dropped_total: 0,
                left_total: 0,
                passes_finished: 0,
                passes_lapsed: 0,
                mean_pass_ns: pass_ttl_ns,
            }),
            checkin_timeout_ns,
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
/// All methods take `&self`; the room's state sits behind one lock, and every call is
/// O(log n) in the number waiting (amortized), plus whatever admissions, lapses and pass
/// expiries fell due since the previous call.
pub struct WaitingRoom<C = SystemClock> {
    clock: C,
    core: Mutex<Core>,
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
        let core = self.core.lock();
        f.debug_struct("WaitingRoom")
            .field("waiting", &core.line.waiting())
            .field("prequeued", &core.prequeue.waiting())
            .field("active", &core.passes.len())
            .field("rate_per_second", &core.gcra.rate_per_second())
            .field("burst", &core.gcra.burst())
            .finish_non_exhaustive()
    }
}

struct Core {
    gcra: Gcra,
    max_active: u32,
    /// Set when `max_active` was lowered below the live passes; cleared once they fit.
    lowered_below_active: bool,
    max_waiting: u32,
    checkin_timeout_ns: u64,
    pass_ttl_ns: u64,
    paused: bool,
    closed: bool,
    /// A pending scheduled opening: `(at_ns, seed)`.
    opening: Option<(u64, u64)>,
    last_seed: Option<u64>,
    line: Line,
    prequeue: Line,
    passes: Passes,
    lapsed: LapsedTokens,
    /// The time the room has been advanced to.
    now_ns: u64,
    admitted_total: u64,
    dropped_total: u64,
    left_total: u64,
    passes_finished: u64,
    passes_lapsed: u64,
    /// A running mean of how long passes last (finish or lapse), for ETAs under `max_active`.
    mean_pass_ns: u64,
}

/// Where a token stands in the room.
#[derive(Clone, Copy)]
enum Place {
    Pass(PassRec),
    /// An index into the line.
    Line(u32),
    /// An index into the pre-queue.
    Prequeue(u32),
}

/// Kinds of events, in the order they are processed when they fall due at the same instant.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Event {
    Lapse,
    PassExpiry,
    Opening,
    Admission,
}

impl Core {
    /// Replays every event due at or before `now`, in time order.
    fn advance(&mut self, now: u64) {
        let now = now.max(self.now_ns);
        loop {
            let lapse = match (self.line.next_lapse(), self.prequeue.next_lapse()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let candidates = [
                (lapse, Event::Lapse),
                (self.passes.next_expiry(), Event::PassExpiry),
                (self.opening.map(|(at, _)| at), Event::Opening),
                (self.next_admission_ns(), Event::Admission),
            ];
            let Some((t, event)) = candidates
                .into_iter()
                .filter_map(|(t, e)| t.map(|t| (t, e)))
                .min()
            else {
                break;
            };
            if t > now {
                break;
            }
            self.now_ns = self.now_ns.max(t);
            match event {
                Event::Lapse => self.lapse_one(),
                Event::PassExpiry => self.expire_one_pass(),
                Event::Opening => self.draw(),
                Event::Admission => self.admit_head(),
            }
        }
        self.now_ns = now;
        if self.passes.len() <= self.max_active as usize {
            self.lowered_below_active = false;
        }
    }

    /// When the head of the line is admitted if nothing else happens first.
    fn next_admission_ns(&self) -> Option<u64> {
        if self.paused
            || self.opening.is_some()
            || self.line.waiting() == 0
            || self.passes.len() >= self.max_active as usize
        {
            return None;
        }
        Some(self.gcra.earliest_ns().max(self.now_ns))
    }

    fn lapse_one(&mut self) {
        let from_line = match (self.line.next_lapse(), self.prequeue.next_lapse()) {
            (Some(a), Some(b)) => a <= b,
            (a, _) => a.is_some(),
        };
        let lapsed = if from_line {
            self.line.pop_lapsed()
        } else {
            self.prequeue.pop_lapsed()
        };
        if let Some(w) = lapsed {
            self.lapsed.record(w.token);
            self.dropped_total += 1;
        }
    }

    fn expire_one_pass(&mut self) {
        if let Some((token, pass)) = self.passes.pop_expired() {
            self.lapsed.record(token);
            self.passes_lapsed += 1;
            self.note_pass_duration(pass.expires_ns - pass.admitted_ns);
        }
    }

    fn draw(&mut self) {
        let Some((_, seed)) = self.opening.take() else {
            return;
        };
        let pre = self.prequeue.drain();
        let order = prequeue_order(pre.len(), seed);
        self.line.push_all(order.into_iter().map(|i| pre[i]));
        self.last_seed = Some(seed);
    }

    fn admit_head(&mut self) {
        let Some(head) = self.line.head() else {
            return;
        };
        let at = self.now_ns;
        let w = self.line.remove(head);
        self.gcra.admit_ns(at);
        self.passes.insert(
            w.token,
            PassRec {
                visitor: w.visitor,
                admitted_ns: at,
                expires_ns: at.saturating_add(self.pass_ttl_ns),
            },
        );
        self.admitted_total += 1;
    }

    fn note_pass_duration(&mut self, ns: u64) {
        // An exponential moving average with weight 1/16 on the newest pass.
        let mean = self.mean_pass_ns as i128;
        self.mean_pass_ns = (mean + (ns as i128 - mean) / 16).max(1) as u64;
    }

    /// Whether a live ticket or pass has this token. (The lapsed-token memory is not consulted:
    /// a fresh 128-bit draw matching one of its entries has probability about 2^-112, and could
    /// only change which error a late poll of the lapsed token gets.)
    fn token_in_use(&self, token: u128) -> bool {
        self.passes.get(token).is_some()
            || self.line.find_token(token).is_some()
            || self.prequeue.find_token(token).is_some()
    }

    fn fresh_token(&self) -> u128 {
        loop {
            let t = random_u128();
            if !self.token_in_use(t) {
                return t;
            }
        }
    }

    /// Estimated time (ns from now) until the visitor at `position` is admitted.
    fn eta_ns(&self, position: u64) -> u64 {
        let now = self.now_ns;
        let start = self.opening.map_or(now, |(at, _)| at.max(now));
        let mut at = self.gcra.kth_admission_ns(start, position);
        if self.max_active != u32::MAX {
            let free = u64::from(self.max_active).saturating_sub(self.passes.len() as u64);
            if position > free {
                // Each active place turns over once per mean pass duration.
                let need = u128::from(position - free);
                let wait = need * u128::from(self.mean_pass_ns) / u128::from(self.max_active);
                at = at.max(start.saturating_add(u64::try_from(wait).unwrap_or(u64::MAX)));
            }
        }
        at.saturating_sub(now)
    }

    fn ticket(&self, index: u32) -> Ticket {
        let w = self.line.get(index);
        let position = self.line.position(index);
        Ticket {
            token: TicketToken(w.token),
            position,
            eta: Duration::from_nanos(self.eta_ns(position)),
        }
    }

    fn prequeue_ticket(&self, index: u32) -> Ticket {
        let w = self.prequeue.get(index);
        let position = (self.line.waiting() + self.prequeue.waiting()) as u64;
        Ticket {
            token: TicketToken(w.token),
            position,
            eta: Duration::from_nanos(self.eta_ns(position)),
        }
    }

    fn pass(token: u128, p: &PassRec) -> Pass {
        Pass {
            token: TicketToken(token),
            visitor: p.visitor,
            expires_at: Duration::from_nanos(p.expires_ns),
        }
    }

    /// When to try joining again: the next admission or lapse, at least 1 ms away.
    fn retry_after(&mut self) -> Duration {
        let now = self.now_ns;
        let mut t = self.next_admission_ns().unwrap_or(u64::MAX);
        if self.passes.len() >= self.max_active as usize {
            t = t.min(self.passes.next_expiry().unwrap_or(u64::MAX));
        }
        t = t.min(self.line.next_lapse().unwrap_or(u64::MAX));
        t = t.min(self.prequeue.next_lapse().unwrap_or(u64::MAX));
        if t == u64::MAX {
            t = now.saturating_add(self.checkin_timeout_ns);
        }
        Duration::from_nanos(t.saturating_sub(now).max(1_000_000))
    }

    fn deadline(&self) -> u64 {
        self.now_ns.saturating_add(self.checkin_timeout_ns)
    }

    fn join(&mut self, visitor: VisitorId) -> Result<Entry, JoinError> {
        if let Some((token, p)) = self.passes.find_visitor(visitor) {
            return Ok(Entry::Admitted(Self::pass(token, &p)));
        }
        if let Some(i) = self.line.find_visitor(visitor) {
            let d = self.deadline();
            self.line.check_in(i, d);
            return Ok(Entry::Waiting(self.ticket(i)));
        }
        if let Some(i) = self.prequeue.find_visitor(visitor) {
            let d = self.deadline();
            self.prequeue.check_in(i, d);
            return Ok(Entry::Waiting(self.prequeue_ticket(i)));
        }
        if self.closed {
            return Err(JoinError::Closed);
        }
        if self.line.waiting() + self.prequeue.waiting() >= self.max_waiting as usize {
            return Err(JoinError::Full {
                retry_after: self.retry_after(),
            });
        }
        let waiter = Waiter {
            token: self.fresh_token(),
            visitor,
            deadline_ns: self.deadline(),
        };
        if self.opening.is_some() {
            let i = self.prequeue.push(waiter);
            return Ok(Entry::Waiting(self.prequeue_ticket(i)));
        }
        self.line.push(waiter);
        // Admits the newcomer at once if it is alone in line and the limits allow.
        let now = self.now_ns;
        self.advance(now);
        if let Some(p) = self.passes.get(waiter.token) {
            return Ok(Entry::Admitted(Self::pass(waiter.token, &p)));
        }
        match self.line.find_token(waiter.token) {
            Some(i) => Ok(Entry::Waiting(self.ticket(i))),
            // Unreachable: a newcomer is either admitted or waiting; a lapse needs time to pass.
            None => Err(JoinError::Full {
                retry_after: self.retry_after(),
            }),
        }
    }

    /// Where a token stands: a live pass, or a place in the line or the pre-queue.
    fn locate(&self, token: u128) -> Option<Place> {
        if let Some(p) = self.passes.get(token) {
            return Some(Place::Pass(p));
        }
        if let Some(i) = self.line.find_token(token) {
            return Some(Place::Line(i));
        }
        self.prequeue.find_token(token).map(Place::Prequeue)
    }

    /// The answer for a token found at `place`.
    fn entry(&self, token: u128, place: Place) -> Entry {
        match place {
            Place::Pass(p) => Entry::Admitted(Self::pass(token, &p)),
            Place::Line(i) => Entry::Waiting(self.ticket(i)),
            Place::Prequeue(i) => Entry::Waiting(self.prequeue_ticket(i)),
        }
    }

    /// `peek`, plus a check-in for a waiting visitor.
    fn poll(&mut self, token: u128) -> Result<Entry, PollError> {
        let place = self.locate(token).ok_or_else(|| self.ended_error(token))?;
        let deadline = self.deadline();
        match place {
            Place::Line(i) => self.line.check_in(i, deadline),
            Place::Prequeue(i) => self.prequeue.check_in(i, deadline),
            Place::Pass(_) => {}
        }
        Ok(self.entry(token, place))
    }

    fn peek(&self, token: u128) -> Result<Entry, PollError> {
        let place = self.locate(token).ok_or_else(|| self.ended_error(token))?;
        Ok(self.entry(token, place))
    }

    fn ended_error(&self, token: u128) -> PollError {
        if self.lapsed.contains(token) {
            PollError::Expired
        } else {
            PollError::UnknownToken
        }
    }

    fn finish(&mut self, token: u128) -> Result<(), PollError> {
        if let Some(p) = self.passes.remove(token) {
            self.passes_finished += 1;
            self.note_pass_duration(self.now_ns - p.admitted_ns);
            // The freed place may admit the next in line right now.
            let now = self.now_ns;
            self.advance(now);
            return Ok(());
        }
        if let Some(i) = self.line.find_token(token) {
            self.line.remove(i);
        } else if let Some(i) = self.prequeue.find_token(token) {
            self.prequeue.remove(i);
        } else {
            return Err(self.ended_error(token));
        }
        self.left_total += 1;
        Ok(())
    }

    fn stats(&self) -> RoomStats {
        let waiting = self.line.waiting() as u64;
        let prequeued = self.prequeue.waiting() as u64;
        let last = waiting + prequeued;
        RoomStats {
            waiting,
            prequeued,
            active: self.passes.len() as u64,
            admitted_total: self.admitted_total,
            dropped_total: self.dropped_total,
            left_total: self.left_total,
            rate_per_second: self.gcra.rate_per_second(),
            burst: self.gcra.burst(),
            max_active: self.max_active,
            max_waiting: self.max_waiting,
            paused: self.paused,
            closed: self.closed,
            opens_at: self.opening.map(|(at, _)| Duration::from_nanos(at)),
            prequeue_seed: self.opening.map(|(_, s)| s).or(self.last_seed),
            back_of_line_eta: if last == 0 {
                Duration::ZERO
            } else {
                Duration::from_nanos(self.eta_ns(last))
            },
        }
    }

    fn check(&self) -> Result<(), InvariantViolation> {
        let now = self.now_ns;
        self.line.check(now, "line").map_err(InvariantViolation)?;
        self.prequeue
            .check(now, "pre-queue")
            .map_err(InvariantViolation)?;
        self.passes.check(now).map_err(InvariantViolation)?;
        ensure!(
            self.opening.is_some() || self.prequeue.waiting() == 0,
            "{} pre-queued with no opening pending",
            self.prequeue.waiting()
        );
        if let Some((at, _)) = self.opening {
            ensure!(at > now, "opening at {at} still pending at {now}");
        }
        let mut visitors = std::collections::HashSet::new();
        for v in self
            .line
            .iter()
            .map(|(_, w)| w.visitor)
            .chain(self.prequeue.iter().map(|(_, w)| w.visitor))
            .chain(self.passes.iter().map(|(_, p)| p.visitor))
        {
            ensure!(visitors.insert(v), "{v:?} holds two tickets or passes");
        }
        ensure!(
            self.passes.len() <= self.max_active as usize || self.lowered_below_active,
            "{} live passes above max_active {}",
            self.passes.len(),
            self.max_active
        );
        ensure!(
            (self.line.waiting() + self.prequeue.waiting()) <= self.max_waiting as usize,
            "{} waiting above max_waiting {}",
            self.line.waiting() + self.prequeue.waiting(),
            self.max_waiting
        );
        ensure!(
            self.admitted_total
                == self.passes.len() as u64 + self.passes_finished + self.passes_lapsed,
            "{} admitted but {} live + {} finished + {} lapsed",
            self.admitted_total,
            self.passes.len(),
            self.passes_finished,
            self.passes_lapsed
        );
        // Idle capacity is never wasted: if the head could be admitted now, it would have been.
        if !self.paused
            && self.opening.is_none()
            && self.line.waiting() > 0
            && self.passes.len() < self.max_active as usize
        {
            ensure!(
                !self.gcra.conforms_ns(now),
                "the head of the line could be admitted at {now} but waits"
            );
        }
        Ok(())
    }
}

impl<C: Clock> WaitingRoom<C> {
    /// Locks the core and advances it to the clock's now.
    fn advanced(&self) -> crate::sync::MutexGuard<'_, Core> {
        let mut core = self.core.lock();
        // Read the time under the lock so that calls advance the room in time order.
        let now = now_ns(&self.clock);
        core.advance(now);
        core
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
        self.advanced().join(visitor)
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
        self.advanced().poll(token.0)
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
        self.advanced().peek(token.0)
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
        self.advanced().finish(token.0)
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
        self.advanced().stats()
    }

    /// Changes the sustained rate from now on, keeping the line and the schedule's debt.
    pub fn set_rate_per_second(&self, rate_per_second: u32) -> Result<(), RoomConfigError> {
        if !(1..=MAX_RATE).contains(&rate_per_second) {
            return Err(RoomConfigError::Rate(rate_per_second));
        }
        let mut core = self.advanced();
        let now = core.now_ns;
        core.gcra.set_rate_ns(now, rate_per_second);
        core.advance(now);
        drop(core);
        self.wake_waiters();
        Ok(())
    }

    /// Changes the burst from now on. Raising it may admit visitors at once.
    pub fn set_burst(&self, burst: u32) -> Result<(), RoomConfigError> {
        if !(1..=MAX_RATE).contains(&burst) {
            return Err(RoomConfigError::Burst(burst));
        }
        let mut core = self.advanced();
        core.gcra.set_burst(burst);
        let now = core.now_ns;
        core.advance(now);
        drop(core);
        self.wake_waiters();
        Ok(())
    }

    /// Changes the limit on live passes (`u32::MAX`: none). Lowering it below the live passes
    /// keeps them all; nobody is admitted until they fit.
    pub fn set_max_active(&self, max_active: u32) -> Result<(), RoomConfigError> {
        if max_active == 0 {
            return Err(RoomConfigError::MaxActive(0));
        }
        let mut core = self.advanced();
        core.max_active = max_active;
        if core.passes.len() > max_active as usize {
            core.lowered_below_active = true;
        }
        let now = core.now_ns;
        core.advance(now);
        drop(core);
        self.wake_waiters();
        Ok(())
    }

    /// Stops admitting: everyone queues (the operator's kill switch). Passes stay valid.
    pub fn pause(&self) {
        self.advanced().paused = true;
    }

    /// Resumes admitting, from now on, at the configured rate (a full burst after the pause).
    pub fn resume(&self) {
        let mut core = self.advanced();
        core.paused = false;
        let now = core.now_ns;
        core.advance(now);
        drop(core);
        self.wake_waiters();
    }

    /// Refuses newcomers with [`JoinError::Closed`]. Those already in line keep their places and
    /// are admitted as usual; returning visitors still get their ticket or pass.
    pub fn close(&self) {
        self.advanced().closed = true;
    }

    /// Lets newcomers in again after [`close`](Self::close).
    pub fn reopen(&self) {
        self.advanced().closed = false;
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
        let mut core = self.advanced();
        core.opening = Some((duration_to_ns(at), seed));
        let now = core.now_ns;
        core.advance(now);
        drop(core);
        self.wake_waiters();
    }

    /// Checks every invariant of the room: exact positions `1..=waiting`, indexes agreeing with
    /// the line, one ticket or pass per visitor, no lapsed visitor still waiting, the active and
    /// waiting bounds, admission counts adding up, and that no admissible visitor is left waiting.
    /// O(n log n); meant for tests and audits.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.core.lock().check()
    }

    /// Heap bytes held by the room's line, pre-queue and passes (not the lapsed-token memory).
    pub fn heap_bytes(&self) -> usize {
        let core = self.core.lock();
        core.line.heap_bytes() + core.prequeue.heap_bytes() + core.passes.heap_bytes()
    }

    /// The room's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The configured check-in timeout.
    pub fn checkin_timeout(&self) -> Duration {
        Duration::from_nanos(self.checkin_timeout_ns)
    }

    fn wake_waiters(&self) {
        #[cfg(feature = "tokio")]
        self.notify.notify_waiters();
    }
}
