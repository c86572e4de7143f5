//! The room's state behind its lock, and the replay that advances it: every event due since
//! the previous call (check-in lapses, passes running out, the opening draw, admissions at their
//! exact scheduled times) is applied in time order, then the call itself.

use crate::token::random_u128;

use super::admitted::{LapsedTokens, PassRec, Passes};
use super::arrivals::Arrivals;
use super::blocks::MAX_SPAN;
use super::draw::shuffled;
use super::error::{ClaimError, JoinError, PollError};
use super::gcra::Gcra;
use super::line::Line;
use super::types::{Entry, Pass, VisitorId};
use super::waiter::{CheckinNs, Waiter};

/// The most events (admissions, check-in lapses, pass expiries, an opening's draw) one call
/// replays before it answers. (An opening's draw is one event: it moves the whole pre-queue
/// into the line at once.) A room with more due (after a long idle spell with many waiting,
/// say) catches up over the next calls, this many each; meanwhile its time lags the clock, every
/// call is answered as of the room's time, and every rule holds on that time; joins and
/// check-ins take their deadlines from the clock, so nobody lapses for the room's delay.
pub const MAX_EVENTS_PER_CALL: usize = 4_096;

pub(super) struct Core {
    pub(super) gcra: Gcra,
    pub(super) max_active: u32,
    /// Set when `max_active` was lowered below the live passes; cleared once they fit.
    pub(super) lowered_below_active: bool,
    pub(super) max_waiting: u32,
    pub(super) checkin_timeout_ns: u64,
    pub(super) pass_ttl_ns: u64,
    /// A pass lapses this long after admission unless claimed first (`None`: off).
    pub(super) claim_timeout_ns: Option<u64>,
    pub(super) paused: bool,
    pub(super) closed: bool,
    /// A pending scheduled opening: `(at_ns, seed)`.
    pub(super) opening: Option<(u64, u64)>,
    pub(super) last_seed: Option<u64>,
    pub(super) line: Line,
    /// Newcomers behind the line who joined under the shared lock (see `room::arrivals`); the
    /// next exclusive call appends them to the line before anything else.
    pub(super) arrivals: Arrivals,
    pub(super) prequeue: Line,
    pub(super) passes: Passes,
    pub(super) lapsed: LapsedTokens,
    /// The time the room has been advanced to.
    pub(super) now_ns: u64,
    /// The latest clock reading: `now_ns`, or later while the room is catching up.
    pub(super) clock_ns: u64,
    /// Events due at or before `clock_ns` remain to be replayed (see [`MAX_EVENTS_PER_CALL`]).
    pub(super) behind: bool,
    /// No event falls due before this time (a lower bound, refreshed at the end of every call
    /// under the exclusive lock; check-ins under the shared lock only move lapses later). A call
    /// at an earlier time finds the room as an advance would leave it, and may be answered under
    /// the shared lock.
    pub(super) next_event_ns: u64,
    pub(super) admitted_total: u64,
    pub(super) dropped_total: u64,
    pub(super) left_total: u64,
    pub(super) passes_finished: u64,
    pub(super) passes_lapsed: u64,
    /// A running mean of how long passes last (finish or lapse), for ETAs under `max_active`.
    pub(super) mean_pass_ns: u64,
    /// Tickets an async `wait` is waiting on, woken when admitted.
    #[cfg(feature = "tokio")]
    pub(super) awaited: super::wait::Awaited,
}

/// Where a token stands in the room.
#[derive(Clone, Copy)]
pub(super) enum Place {
    Pass(PassRec),
    /// An index into the line.
    Line(u32),
    /// An index into the pre-queue.
    Prequeue(u32),
    /// The number of an arrival behind the line.
    Arrival(u32),
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
    /// The next event and when it falls due (a check-in lapse at or before its time: the
    /// visitor may have checked in since its record was made).
    fn next_event(&mut self) -> Option<(u64, Event)> {
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
        candidates
            .into_iter()
            .filter_map(|(t, e)| t.map(|t| (t, e)))
            .min()
    }

    /// Sets [`next_event_ns`](Self::next_event_ns) after a call under the exclusive lock.
    pub(super) fn refresh_next_event(&mut self) {
        self.next_event_ns = self.next_event().map_or(u64::MAX, |(t, _)| t);
    }

    /// Whether a call at `now` finds nothing to replay: it may be answered under the shared
    /// lock, as of `now`.
    pub(super) fn quiet_at(&self, now: u64) -> bool {
        !self.behind && now < self.next_event_ns
    }

    /// Replays every event due at or before `now`, in time order.
    pub(super) fn advance(&mut self, now: u64) {
        let now = now.max(self.now_ns);
        self.clock_ns = self.clock_ns.max(now);
        let mut replayed = 0;
        while let Some((t, event)) = self.next_event() {
            if t > now {
                break;
            }
            if replayed == MAX_EVENTS_PER_CALL {
                // Catch up over the next calls; meanwhile the room's time lags the clock.
                self.behind = true;
                return;
            }
            replayed += 1;
            self.now_ns = self.now_ns.max(t);
            match event {
                Event::Lapse => self.lapse_one(),
                Event::PassExpiry => self.expire_one_pass(),
                Event::Opening => self.draw(),
                Event::Admission => self.admit_head(),
            }
        }
        self.now_ns = now;
        self.behind = false;
        if self.passes.len() <= self.max_active as usize {
            self.lowered_below_active = false;
        }
    }

    /// Replays what a change made due at the room's present instant, unless the room is still
    /// catching up (then the next calls do, in order): so no call replays more than
    /// [`MAX_EVENTS_PER_CALL`] events.
    pub(super) fn advance_now_unless_behind(&mut self) {
        if !self.behind {
            let now = self.now_ns;
            self.advance(now);
        }
    }

    /// When the head of the line is admitted if nothing else happens first.
    pub(super) fn next_admission_ns(&self) -> Option<u64> {
        if self.paused
            || self.opening.is_some()
            || self.line.waiting() == 0
            || self.passes.len() >= self.max_active as usize
        {
            return None;
        }
        Some(self.gcra.earliest_ns().max(self.now_ns))
    }

    pub(super) fn lapse_one(&mut self) {
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

    pub(super) fn expire_one_pass(&mut self) {
        if let Some((token, pass)) = self.passes.pop_expired() {
            self.lapsed.record(token);
            self.passes_lapsed += 1;
            self.note_pass_duration(pass.lapses_ns() - pass.admitted_ns);
        }
    }

    pub(super) fn draw(&mut self) {
        let Some((_, seed)) = self.opening.take() else {
            return;
        };
        let pre = self.prequeue.drain();
        let order = shuffled(pre.len(), seed);
        self.line
            .push_all(order.into_iter().map(|i| pre[i].clone()));
        self.last_seed = Some(seed);
    }

    pub(super) fn admit_head(&mut self) {
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
                claim_by_ns: self
                    .claim_timeout_ns
                    .map_or(u64::MAX, |c| at.saturating_add(c)),
            },
        );
        #[cfg(feature = "tokio")]
        self.awaited.admitted(w.token);
        self.admitted_total += 1;
    }

    pub(super) fn note_pass_duration(&mut self, ns: u64) {
        // An exponential moving average with weight 1/16 on the newest pass.
        let mean = self.mean_pass_ns as i128;
        self.mean_pass_ns = (mean + (ns as i128 - mean) / 16).max(1) as u64;
    }

    /// Whether a live ticket or pass has this token. (The lapsed-token memory is not consulted:
    /// a fresh draw of 96 bits matching one of its 2^16 or so entries has probability about
    /// 2^-80, and could only change which error a late poll of the lapsed token gets.)
    pub(super) fn token_in_use(&self, token: u128) -> bool {
        self.passes.get(token).is_some()
            || self.line.find_token(token).is_some()
            || self.prequeue.find_token(token).is_some()
    }

    /// A token no live ticket or pass has: 96 random bits and, in the low 32, `home`, the index
    /// its entry will have (see `Line::home_index`).
    pub(super) fn fresh_token(&self, home: u32) -> u128 {
        loop {
            let t = random_u128() & !u128::from(u32::MAX) | u128::from(home);
            if !self.token_in_use(t) {
                return t;
            }
        }
    }

    /// The check-in deadline of a join or poll now: from the clock's time, not the room's, so
    /// that a room catching up never makes a visitor lapse for its own delay.
    pub(super) fn deadline(&self) -> u64 {
        self.deadline_at(self.clock_ns)
    }

    /// The check-in deadline of a call that read the clock at `now`.
    pub(super) fn deadline_at(&self, now: u64) -> u64 {
        now.max(self.clock_ns)
            .saturating_add(self.checkin_timeout_ns)
    }

    /// The latest time every event before which has been replayed: the room's time, or just
    /// before it while the room is catching up (events at its very instant may remain).
    pub(super) fn settled_ns(&self) -> u64 {
        if self.behind {
            self.now_ns.saturating_sub(1)
        } else {
            self.now_ns
        }
    }

    /// Visitors in line, arrivals behind it included.
    pub(super) fn waiting_in_line(&self) -> usize {
        self.line.waiting() + self.arrivals.lock().len()
    }

    /// Appends the arrivals to the line, in order (the first step of every exclusive call).
    pub(super) fn settle_arrivals(&mut self) {
        let mut batch = self.arrivals.lock();
        // Each append inserts into the visitor index at a random place: ask for all those cells
        // first (at most `MAX_ARRIVALS` lines, fetched side by side), then insert.
        for w in batch.iter() {
            self.line.prefetch_visitor(w.visitor);
        }
        for w in batch.take() {
            let home = Line::home_index(w.token);
            let index = self.line.push(w);
            debug_assert_eq!(
                index, home,
                "an arrival is appended at its token's home index"
            );
        }
    }

    /// `join` under the shared lock, at `now` (see [`poll`](Self::poll)): the ticket of a
    /// visitor already in the room, or of a newcomer queued behind the line as an arrival;
    /// `None` when the join needs the exclusive path.
    pub(super) fn join_shared(&self, visitor: VisitorId, now: u64, clock: u64) -> Option<Entry> {
        if let Some(entry) = self.rejoin_settled(visitor, now, clock) {
            return Some(entry);
        }
        let deadline = self.deadline_at(clock);
        // Others wait and none is due before `now` (the caller checked `quiet_at`), so neither
        // is the newcomer, who is behind them; its lapse must not come before the next event.
        if self.closed
            || self.opening.is_some()
            || self.line.waiting() == 0
            || deadline < self.next_event_ns
        {
            return None;
        }
        let mut batch = self.arrivals.lock();
        // Among the arrivals already (that lookup and the push under one lock: two joins of one
        // visitor at once queue it once).
        if let Some((k, token)) = batch.check_in_visitor(visitor, deadline) {
            return Some(Entry::Waiting(self.arrival_ticket(token, k, now)));
        }
        let waiting = self.line.waiting() + batch.len();
        if batch.is_full()
            || waiting >= self.max_waiting as usize
            || self.line.span() + batch.len() >= MAX_SPAN
        {
            return None;
        }
        let home = self.line.next_index().wrapping_add(batch.len() as u32);
        let token = self.fresh_token(home);
        let k = batch.push(Waiter {
            token,
            visitor,
            deadline_ns: CheckinNs::new(deadline),
        });
        Some(Entry::Waiting(self.arrival_ticket(token, k, now)))
    }

    pub(super) fn join(&mut self, visitor: VisitorId) -> Result<Entry, JoinError> {
        if let Some(entry) = self.rejoin(visitor, self.now_ns, self.clock_ns) {
            return Ok(entry);
        }
        if self.closed {
            return Err(JoinError::Closed);
        }
        if self.line.waiting() + self.prequeue.waiting() >= self.max_waiting as usize
            || self.line.is_span_full()
            || self.prequeue.is_span_full()
        {
            return Err(JoinError::Full {
                retry_after: self.retry_after(),
            });
        }
        let home = if self.opening.is_some() {
            self.prequeue.next_index()
        } else {
            self.line.next_index()
        };
        let token = self.fresh_token(home);
        let waiter = Waiter {
            token,
            visitor,
            deadline_ns: CheckinNs::new(self.deadline()),
        };
        if self.opening.is_some() {
            let i = self.prequeue.push(waiter);
            return Ok(Entry::Waiting(self.prequeue_ticket(i)));
        }
        let index = self.line.push(waiter);
        // Admits the newcomer at once if it is alone in line and the limits allow (a room still
        // catching up has others due first: the next calls' replay gets to it).
        self.advance_now_unless_behind();
        if let Some(p) = self.passes.get(token) {
            return Ok(Entry::Admitted(Self::pass(token, &p)));
        }
        // Not admitted, so still at `index`: a lapse needs time to pass.
        debug_assert_eq!(self.line.find_token(token), Some(index));
        Ok(Entry::Waiting(self.ticket(index)))
    }

    /// Where a token stands: a live pass, or a place in the line or the pre-queue.
    ///
    /// The line is looked in first: in a surge nearly every call with a token is a waiting
    /// visitor's check-in, and this spares it a probe of the passes. A token is in one place at
    /// most, so the order changes no answer.
    pub(super) fn locate(&self, token: u128) -> Option<Place> {
        if let Some(i) = self.line.find_token(token) {
            return Some(Place::Line(i));
        }
        if let Some(p) = self.passes.get(token) {
            return Some(Place::Pass(p));
        }
        if let Some(i) = self.prequeue.find_token(token) {
            return Some(Place::Prequeue(i));
        }
        let first = self.line.next_index();
        self.arrivals
            .find_token(token, first, None)
            .map(Place::Arrival)
    }

    /// The answer, as of `now`, for a token found at `place`.
    pub(super) fn entry(&self, token: u128, place: Place, now: u64) -> Entry {
        match place {
            Place::Pass(p) => Entry::Admitted(Self::pass(token, &p)),
            Place::Line(i) => Entry::Waiting(self.ticket_at(i, now)),
            Place::Prequeue(i) => Entry::Waiting(self.prequeue_ticket_at(i, now)),
            Place::Arrival(k) => Entry::Waiting(self.arrival_ticket(token, k, now)),
        }
    }

    /// `peek`, plus a check-in for a waiting visitor. Needs only shared access: the room at
    /// `now` (the room's time, or a later one at which [`quiet_at`](Self::quiet_at) holds);
    /// `clock` is the clock reading the check-in counts from.
    pub(super) fn poll(&self, token: u128, now: u64, clock: u64) -> Result<Entry, PollError> {
        let place = self.locate(token).ok_or_else(|| self.ended_error(token))?;
        let deadline = self.deadline_at(clock);
        match place {
            Place::Line(i) => self.line.check_in(i, deadline),
            Place::Prequeue(i) => self.prequeue.check_in(i, deadline),
            Place::Arrival(_) => {
                let first = self.line.next_index();
                self.arrivals.find_token(token, first, Some(deadline));
            }
            Place::Pass(_) => {}
        }
        Ok(self.entry(token, place, now))
    }

    /// Where a token stands as of `now`, without a check-in.
    pub(super) fn peek(&self, token: u128, now: u64) -> Result<Entry, PollError> {
        let place = self.locate(token).ok_or_else(|| self.ended_error(token))?;
        Ok(self.entry(token, place, now))
    }

    /// The pass or ticket of a visitor already in the room, with a check-in for a waiting one;
    /// `None` for a newcomer. Needs only shared access (see [`poll`](Self::poll)).
    pub(super) fn rejoin(&self, visitor: VisitorId, now: u64, clock: u64) -> Option<Entry> {
        if let Some(entry) = self.rejoin_settled(visitor, now, clock) {
            return Some(entry);
        }
        let batch = self.arrivals.lock();
        let (k, token) = batch.check_in_visitor(visitor, self.deadline_at(clock))?;
        Some(Entry::Waiting(self.arrival_ticket(token, k, now)))
    }

    /// [`rejoin`](Self::rejoin), not looking among the arrivals.
    fn rejoin_settled(&self, visitor: VisitorId, now: u64, clock: u64) -> Option<Entry> {
        if let Some((token, p)) = self.passes.find_visitor(visitor) {
            return Some(Entry::Admitted(Self::pass(token, &p)));
        }
        if let Some(i) = self.line.find_visitor(visitor) {
            self.line.check_in(i, self.deadline_at(clock));
            return Some(Entry::Waiting(self.ticket_at(i, now)));
        }
        let i = self.prequeue.find_visitor(visitor)?;
        self.prequeue.check_in(i, self.deadline_at(clock));
        Some(Entry::Waiting(self.prequeue_ticket_at(i, now)))
    }

    /// A pass already claimed, answered without changing anything (shared access); `None` when
    /// the claim needs the exclusive path (unclaimed, waiting, or ended).
    pub(super) fn claimed(&self, token: u128) -> Option<Pass> {
        let p = self.passes.get(token)?;
        (p.claim_by_ns == u64::MAX).then(|| Self::pass(token, &p))
    }

    pub(super) fn ended_error(&self, token: u128) -> PollError {
        if self.lapsed.contains(token) {
            PollError::Expired
        } else {
            PollError::UnknownToken
        }
    }

    /// Claims a live pass: it lasts `pass_ttl` from its admission (see
    /// [`WaitingRoomBuilder::claim_timeout`]).
    pub(super) fn claim(&mut self, token: u128) -> Result<Pass, ClaimError> {
        if let Some(p) = self.passes.claim(token) {
            return Ok(Self::pass(token, &p));
        }
        if self.line.find_token(token).is_some() || self.prequeue.find_token(token).is_some() {
            return Err(ClaimError::NotAdmitted);
        }
        Err(match self.ended_error(token) {
            PollError::Expired => ClaimError::Expired,
            _ => ClaimError::UnknownToken,
        })
    }

    pub(super) fn finish(&mut self, token: u128) -> Result<(), PollError> {
        if let Some(p) = self.passes.remove(token) {
            self.passes_finished += 1;
            self.note_pass_duration(self.now_ns - p.admitted_ns);
            // The freed place may admit the next in line right now.
            self.advance_now_unless_behind();
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
}
