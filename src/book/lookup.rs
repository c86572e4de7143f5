//! Finding holds and bookings again: by token, or by applicant (a signed-in user who lost a
//! token can still see and cancel their appointment).

use crate::clock::Clock;

use super::SlotBook;
use super::record::{Record, State};
use super::types::{ApplicantId, Booking, Hold, HoldToken};

impl<C: Clock> SlotBook<C> {
    /// The live hold with this token: `None` once it is confirmed (see
    /// [`booking`](Self::booking)), released or lapsed.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 0, 1)?;
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(5))?;
    /// assert_eq!(book.hold(hold.token), Some(hold));
    /// book.confirm(hold.token)?;
    /// assert_eq!(book.hold(hold.token), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hold(&self, token: HoldToken) -> Option<Hold> {
        self.catch_up();
        let shard = &self.shards[self.shard_of_token(token.0)];
        let mut ledger = shard.ledger.lock();
        let now = ledger.clamp_now(self.now_ns());
        let r = ledger.records.get(token.0)?;
        is_live_hold(&r, now).then(|| self.hold_of(token.0, &r))
    }

    /// The applicant's live holds, newest first (at most `max_active_per_applicant`).
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 0, 1)?;
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(5))?;
    /// assert_eq!(book.holds_of(ApplicantId(5)), vec![hold]);
    /// assert!(book.holds_of(ApplicantId(6)).is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn holds_of(&self, applicant: ApplicantId) -> Vec<Hold> {
        self.catch_up();
        let shard = &self.shards[self.shard_of_applicant(applicant)];
        let mut ledger = shard.ledger.lock();
        let now = ledger.clamp_now(self.now_ns());
        ledger
            .tokens_of(applicant)
            .filter_map(|t| Some((t, ledger.records.get(t)?)))
            .filter(|(_, r)| is_live_hold(r, now))
            .map(|(t, r)| self.hold_of(t, &r))
            .collect()
    }

    /// The applicant's bookings, newest first (at most `max_active_per_applicant`): "my
    /// appointments", for a signed-in user who no longer has the tokens.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 0, 1)?;
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(5))?;
    /// let booking = book.confirm(hold.token)?;
    /// assert_eq!(book.bookings_of(ApplicantId(5)), vec![booking]);
    /// book.release(booking.token)?;
    /// assert!(book.bookings_of(ApplicantId(5)).is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bookings_of(&self, applicant: ApplicantId) -> Vec<Booking> {
        let shard = &self.shards[self.shard_of_applicant(applicant)];
        let ledger = shard.ledger.lock();
        ledger
            .tokens_of(applicant)
            .filter_map(|t| Some((t, ledger.records.get(t)?)))
            .filter(|(_, r)| matches!(r.state, State::Booked | State::Cancelling))
            .map(|(t, r)| r.booking(t))
            .collect()
    }
}

/// A hold not yet lapsed, or one being confirmed (which cannot lapse meanwhile).
fn is_live_hold(r: &Record, now_ns: u64) -> bool {
    r.is_live_hold(now_ns) || matches!(r.state, State::Confirming { .. })
}
