//! What happens to a hold: `confirm` turns it into a booking, `release` gives either back.

use super::*;

impl<C: Clock> SlotBook<C> {
    fn booking_of(token: u128, r: &Record) -> Booking {
        Booking {
            token: HoldToken(token),
            branch: r.branch,
            slot: r.slot,
            applicant: r.applicant,
        }
    }

    /// Turns a live hold into a booking. Confirming a booked token returns the same booking.
    ///
    /// ```
    /// use std::time::Duration;
    /// use surgegate::{ApplicantId, BranchId, ConfirmError, ManualClock, SlotBook};
    ///
    /// let clock = ManualClock::new();
    /// let book = SlotBook::builder().hold_ttl(Duration::from_secs(60)).clock(clock.clone()).build();
    /// book.set_capacity(BranchId(1), 0, 1)?;
    ///
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(1))?;
    /// clock.advance(Duration::from_secs(60));
    /// assert!(matches!(book.confirm(hold.token), Err(ConfirmError::Expired | ConfirmError::UnknownToken)));
    ///
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(1))?;
    /// let booking = book.confirm(hold.token)?;
    /// assert_eq!(book.confirm(hold.token)?, booking); // a retry
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn confirm(&self, token: HoldToken) -> Result<Booking, ConfirmError> {
        match self.journal.as_deref() {
            // The body is inlined with `None`, so an in-memory book pays one untaken branch.
            None => self.confirm_in(token, None),
            Some(j) => self.confirm_durable(token, j),
        }
    }

    #[cold]
    #[inline(never)]
    fn confirm_durable(&self, token: HoldToken, j: &Journal) -> Result<Booking, ConfirmError> {
        self.durably(j, || self.confirm_in(token, Some(j)))
    }

    #[inline(always)]
    fn confirm_in(
        &self,
        token: HoldToken,
        journal: Option<&Journal>,
    ) -> Result<Booking, ConfirmError> {
        let shard = &self.shards[self.shard_of_token(token.0)];
        let mut guard = shard.ledger.lock();
        let now = guard.clamp_now(self.now_ns());
        let ledger = &mut *guard;
        let Some(record) = ledger.records.get_mut(&token.0) else {
            return Err(ConfirmError::UnknownToken);
        };
        match record.state {
            State::Booked => Ok(Self::booking_of(token.0, record)),
            State::Held { expires_ns } if expires_ns <= now => {
                if let Some(r) = ledger.remove(token.0) {
                    return_unit(&r);
                }
                Err(ConfirmError::Expired)
            }
            State::Held { .. } => {
                let word = record.at.word(record.slot);
                if let Some(j) = journal {
                    // Under the shard lock: no release of this token can be journaled before
                    // its booking, and the hold cannot be reclaimed meanwhile.
                    j.commit(Change::Booked {
                        token: token.0,
                        branch: record.branch.0,
                        slot: record.slot,
                        applicant: record.applicant.0,
                    })
                    .map_err(ConfirmError::Journal)?;
                }
                // Held to booked: `held + booked` is unchanged, so the full bit is too.
                word.confirm();
                record.state = State::Booked;
                let booking = Self::booking_of(token.0, record);
                ledger.live_holds -= 1;
                Ok(booking)
            }
        }
    }

    /// The booking with this token, if it is booked: "my appointment".
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 4, 1)?;
    /// let hold = book.reserve(BranchId(1), 4, ApplicantId(9))?;
    /// assert_eq!(book.booking(hold.token), None); // held, not booked yet
    /// book.confirm(hold.token)?;
    /// assert_eq!(book.booking(hold.token).map(|b| b.slot), Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn booking(&self, token: HoldToken) -> Option<Booking> {
        let shard = &self.shards[self.shard_of_token(token.0)];
        let ledger = shard.ledger.lock();
        let r = ledger.records.get(&token.0)?;
        (r.state == State::Booked).then(|| Self::booking_of(token.0, r))
    }

    /// Gives back a hold or cancels a booking; its unit is free at once.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, ReleaseError, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 0, 1)?;
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(1))?;
    /// book.release(hold.token)?;
    /// assert_eq!(book.release(hold.token), Err(ReleaseError::UnknownToken));
    /// assert_eq!(book.slot(BranchId(1), 0).unwrap().remaining(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self, token: HoldToken) -> Result<(), ReleaseError> {
        match self.journal.as_deref() {
            // As in `confirm`: an in-memory book pays one untaken branch.
            None => self.release_in(token, None),
            Some(j) => self.release_durable(token, j),
        }
    }

    #[cold]
    #[inline(never)]
    fn release_durable(&self, token: HoldToken, j: &Journal) -> Result<(), ReleaseError> {
        self.durably(j, || self.release_in(token, Some(j)))
    }

    #[inline(always)]
    fn release_in(&self, token: HoldToken, journal: Option<&Journal>) -> Result<(), ReleaseError> {
        let shard = &self.shards[self.shard_of_token(token.0)];
        let mut ledger = shard.ledger.lock();
        let now = ledger.clamp_now(self.now_ns());
        if let Some(j) = journal
            && ledger
                .records
                .get(&token.0)
                .is_some_and(|r| r.state == State::Booked)
        {
            // Holds are not journaled; a booking's cancellation is, before it takes effect.
            j.commit(Change::Cancelled { token: token.0 })
                .map_err(ReleaseError::Journal)?;
        }
        let Some(record) = ledger.remove(token.0) else {
            return Err(ReleaseError::UnknownToken);
        };
        return_unit(&record);
        if record.is_expired_hold(now) {
            // Already lapsed: its unit was free in every reading; we just reclaimed it.
            return Err(ReleaseError::UnknownToken);
        }
        Ok(())
    }
}
