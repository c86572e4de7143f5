//! What happens to a hold: `confirm` turns it into a booking, `release` gives either back, and
//! `booking` reads one. In memory each is one shard lock; in a durable book the journal's
//! answer is awaited outside it (the record is `Confirming` or `Cancelling` meanwhile). A hold
//! that ends early leaves its expiry entry stale; the call drops the shard's stale entries once
//! they outnumber its holds (see `Ledger::drop_stale_expiries`).

use crate::clock::Clock;
use crate::journal::{Change, Journal, JournalError};

use super::SlotBook;
use super::error::{ConfirmError, ReleaseError};
use super::ledger::{Ledger, return_unit};
use super::record::{Record, State};
use super::records::pack_slot;
use super::standby::Standby;
use super::types::{Booking, HoldToken};

impl<C: Clock> SlotBook<C> {
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
        self.catch_up();
        match self.journal.as_deref() {
            // The body is inlined, so an in-memory book pays one untaken branch.
            None => self.confirm_in_memory(token),
            Some(j) => self.confirm_durable(token, j),
        }
    }

    #[inline(always)]
    fn confirm_in_memory(&self, token: HoldToken) -> Result<Booking, ConfirmError> {
        let shard = &self.shards[self.shard_of_token(token.0)];
        let mut guard = shard.ledger.lock();
        let now = guard.clamp_now(self.now_ns());
        let ledger = &mut *guard;
        let Some(record) = ledger.records.get(token.0) else {
            return Err(ConfirmError::UnknownToken);
        };
        match record.state {
            State::Held { expires_ns } if expires_ns > now => {
                // Held to booked: `held + booked` is unchanged, so the full bit is too.
                record.at.word(record.slot).confirm();
                ledger.records.set_state(token.0, State::Booked);
                ledger.live_holds -= 1;
                ledger.forget_given(record.applicant, token.0);
                // The hold's expiry entry is stale now: dropped with the others once they
                // outnumber the shard's holds, so that a booking costs no queue memory.
                if ledger.drop_stale_expiries() {
                    shard.publish_front(ledger, &self.hint);
                }
                Ok(record.booking(token.0))
            }
            State::Held { .. } => {
                if let Some(r) = ledger.remove(token.0) {
                    return_unit(&r, &self.standby, now);
                }
                Err(ConfirmError::Expired)
            }
            // Only a durable book has settling records.
            State::Booked | State::Cancelling | State::Confirming { .. } => {
                Ok(record.booking(token.0))
            }
        }
    }

    /// A durable confirmation: decided and queued in the journal under the shard lock, synced
    /// without it (other calls on the shard go on meanwhile), then applied under it again.
    #[cold]
    #[inline(never)]
    fn confirm_durable(&self, token: HoldToken, j: &Journal) -> Result<Booking, ConfirmError> {
        self.durably(j, || {
            let shard = &self.shards[self.shard_of_token(token.0)];
            let ticket = loop {
                let mut guard = shard.ledger.lock();
                let now = guard.clamp_now(self.now_ns());
                let ledger = &mut *guard;
                let Some(record) = ledger.records.get(token.0) else {
                    return Err(ConfirmError::UnknownToken);
                };
                match record.state {
                    State::Booked => return Ok(record.booking(token.0)),
                    State::Held { expires_ns } if expires_ns <= now => {
                        if let Some(r) = ledger.remove(token.0) {
                            return_unit(&r, &self.standby, now);
                        }
                        return Err(ConfirmError::Expired);
                    }
                    State::Held { expires_ns } => {
                        let change = Change::Booked {
                            token: token.0,
                            branch: record.branch.0,
                            // A unit taken on a channel says so, so that recovery returns it
                            // to its part.
                            slot: pack_slot(record.slot, record.part),
                            applicant: record.applicant.0,
                        };
                        let ticket = j.submit(change).map_err(ConfirmError::Journal)?;
                        ledger
                            .records
                            .set_state(token.0, State::Confirming { expires_ns });
                        break ticket;
                    }
                    // Another call is settling this token: wait for its outcome.
                    State::Confirming { .. } | State::Cancelling => {
                        drop(guard);
                        std::thread::yield_now();
                    }
                }
            };
            let outcome = j.wait(ticket);
            let mut guard = shard.ledger.lock();
            let now = guard.clamp_now(self.now_ns());
            let settled = guard.settle_confirmation(token.0, outcome, now, &self.standby);
            // As in memory: a booked hold's expiry entry goes with the other stale ones.
            if guard.drop_stale_expiries() {
                shard.publish_front(&guard, &self.hint);
            }
            settled
        })
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
        let r = ledger.records.get(token.0)?;
        matches!(r.state, State::Booked | State::Cancelling).then(|| r.booking(token.0))
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
        self.catch_up();
        match self.journal.as_deref() {
            // As in `confirm`: an in-memory book pays one untaken branch.
            None => self.release_in_memory(token),
            Some(j) => self.release_durable(token, j),
        }
    }

    #[inline(always)]
    fn release_in_memory(&self, token: HoldToken) -> Result<(), ReleaseError> {
        let shard = &self.shards[self.shard_of_token(token.0)];
        let mut ledger = shard.ledger.lock();
        let now = ledger.clamp_now(self.now_ns());
        let released = ledger.release_now(token.0, now, &self.standby);
        // A released hold leaves a stale expiry entry, as a confirmed one does.
        if ledger.drop_stale_expiries() {
            shard.publish_front(&ledger, &self.hint);
        }
        released
    }

    /// A durable release: a hold is given back at once (holds are not journaled); a booking's
    /// cancellation is queued in the journal under the shard lock, synced without it, and
    /// applied under it again.
    #[cold]
    #[inline(never)]
    fn release_durable(&self, token: HoldToken, j: &Journal) -> Result<(), ReleaseError> {
        self.durably(j, || {
            let shard = &self.shards[self.shard_of_token(token.0)];
            let ticket = loop {
                let mut ledger = shard.ledger.lock();
                let state = ledger.records.get(token.0).map(|r| r.state);
                match state {
                    Some(State::Booked) => {
                        let change = Change::Cancelled { token: token.0 };
                        let ticket = j.submit(change).map_err(ReleaseError::Journal)?;
                        ledger.records.set_state(token.0, State::Cancelling);
                        break ticket;
                    }
                    Some(s) if s.is_settling() => {
                        drop(ledger);
                        std::thread::yield_now();
                    }
                    // A hold, or nothing: as in memory, under this same lock.
                    _ => {
                        let now = ledger.clamp_now(self.now_ns());
                        let released = ledger.release_now(token.0, now, &self.standby);
                        if ledger.drop_stale_expiries() {
                            shard.publish_front(&ledger, &self.hint);
                        }
                        return released;
                    }
                }
            };
            let outcome = j.wait(ticket);
            let mut ledger = shard.ledger.lock();
            let now = ledger.clamp_now(self.now_ns());
            ledger.settle_cancellation(token.0, outcome, now, &self.standby)
        })
    }
}

impl Record {
    pub(super) fn booking(&self, token: u128) -> Booking {
        Booking {
            token: HoldToken(token),
            branch: self.branch,
            slot: self.slot,
            applicant: self.applicant,
        }
    }
}

impl Ledger {
    /// Gives back the unit of a hold or booking now, under this lock.
    #[inline]
    fn release_now(
        &mut self,
        token: u128,
        now_ns: u64,
        standby: &Standby,
    ) -> Result<(), ReleaseError> {
        let Some(record) = self.remove(token) else {
            return Err(ReleaseError::UnknownToken);
        };
        return_unit(&record, standby, now_ns);
        if record.is_expired_hold(now_ns) {
            // Already lapsed: its unit was free in every reading; we just reclaimed it.
            return Err(ReleaseError::UnknownToken);
        }
        Ok(())
    }

    /// Applies the journal's answer to the confirmation of `token` (which is `Confirming`: no
    /// other call changes a settling record). On a refusal the hold is as it was, or, if it
    /// lapsed meanwhile, reclaimed now.
    fn settle_confirmation(
        &mut self,
        token: u128,
        outcome: Result<(), JournalError>,
        now_ns: u64,
        standby: &Standby,
    ) -> Result<Booking, ConfirmError> {
        // A settling record is changed by nobody else, so it is there, `Confirming`.
        let Some(record) = self.records.get(token) else {
            return Err(ConfirmError::UnknownToken);
        };
        let State::Confirming { expires_ns } = record.state else {
            return Err(ConfirmError::UnknownToken);
        };
        match outcome {
            Ok(()) => {
                // Held to booked: `held + booked` is unchanged, so the full bit is too.
                record.at.word(record.slot).confirm();
                self.records.set_state(token, State::Booked);
                self.live_holds -= 1;
                self.forget_given(record.applicant, token);
                Ok(record.booking(token))
            }
            Err(e) => {
                self.records.set_state(token, State::Held { expires_ns });
                if expires_ns <= now_ns
                    && let Some(r) = self.remove(token)
                {
                    return_unit(&r, standby, now_ns);
                }
                Err(ConfirmError::Journal(e))
            }
        }
    }

    /// Applies the journal's answer to the cancellation of `token` (which is `Cancelling`). On
    /// a refusal the booking stands.
    fn settle_cancellation(
        &mut self,
        token: u128,
        outcome: Result<(), JournalError>,
        now_ns: u64,
        standby: &Standby,
    ) -> Result<(), ReleaseError> {
        if self.records.get(token).map(|r| r.state) != Some(State::Cancelling) {
            return Err(ReleaseError::UnknownToken);
        }
        self.records.set_state(token, State::Booked);
        match outcome {
            Ok(()) => {
                if let Some(r) = self.remove(token) {
                    return_unit(&r, standby, now_ns);
                }
                Ok(())
            }
            Err(e) => Err(ReleaseError::Journal(e)),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use crate::book::SlotBook;
    use crate::book::ledger::ENDED_SLACK;
    use crate::book::types::{ApplicantId, BranchId, HoldToken};
    use crate::clock::ManualClock;
    use crate::journal::Durability;

    const HOLDS: u64 = 1_000;

    /// A book of one lock shard (so every expiry entry is in one queue) with `HOLDS` units.
    fn one_shard() -> SlotBook<ManualClock> {
        let book = SlotBook::builder()
            .shards(1)
            .hold_ttl(Duration::from_secs(600))
            .clock(ManualClock::new())
            .build();
        book.set_capacity(BranchId(1), 0, HOLDS as u32).unwrap();
        book
    }

    fn hold_all(book: &SlotBook<ManualClock>) -> Vec<HoldToken> {
        (0..HOLDS)
            .map(|a| book.reserve(BranchId(1), 0, ApplicantId(a)).unwrap().token)
            .collect()
    }

    /// Entries in the shard's expiry queue, and its buffer's bytes.
    fn queue(book: &SlotBook<ManualClock>) -> (usize, usize) {
        let ledger = book.shards[0].ledger.lock();
        (ledger.expiry.iter().count(), ledger.expiry.heap_bytes())
    }

    /// Ends every hold with `end` (checking the book after each), then checks that the queue
    /// kept no more than the slack of stale entries, and gave its buffer back.
    fn ends_leave_no_entries(book: &SlotBook<ManualClock>, end: impl Fn(HoldToken)) {
        let tokens = hold_all(book);
        let (held, held_bytes) = queue(book);
        assert_eq!(held, HOLDS as usize);
        for token in tokens {
            end(token);
            book.check_invariants().unwrap();
            let (entries, _) = queue(book);
            let holds = book.shards[0].ledger.lock().live_holds;
            assert!(
                entries <= 2 * holds + ENDED_SLACK,
                "{entries} expiry entries for {holds} holds"
            );
        }
        let (entries, bytes) = queue(book);
        assert!(entries <= ENDED_SLACK, "{entries} entries left");
        assert!(
            bytes * 8 <= held_bytes,
            "{bytes} bytes left of {held_bytes}"
        );
    }

    #[test]
    fn confirmed_holds_leave_no_expiry_entries_behind() {
        let book = one_shard();
        ends_leave_no_entries(&book, |t| {
            book.confirm(t).unwrap();
        });
        assert_eq!(book.check_invariants().unwrap().bookings, HOLDS);
    }

    #[test]
    fn released_holds_leave_no_expiry_entries_behind() {
        let book = one_shard();
        ends_leave_no_entries(&book, |t| book.release(t).unwrap());
        assert_eq!(book.slot(BranchId(1), 0).unwrap().remaining(), HOLDS as u32);
    }

    #[test]
    fn durably_confirmed_holds_leave_no_expiry_entries_behind() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            SlotBook::builder()
                .shards(1)
                .hold_ttl(Duration::from_secs(600))
                .clock(ManualClock::new())
                .durable()
                .durability(Durability::None)
                .open(dir.path())
                .unwrap()
        };
        let book = open();
        book.set_capacity(BranchId(1), 0, HOLDS as u32).unwrap();
        ends_leave_no_entries(&book, |t| {
            book.confirm(t).unwrap();
        });
        let bookings: Vec<_> = (0..HOLDS)
            .flat_map(|a| book.bookings_of(ApplicantId(a)))
            .collect();
        drop(book);
        // Every booking is back after a reopen, token for token.
        let book = open();
        assert_eq!(book.check_invariants().unwrap().bookings, HOLDS);
        for b in bookings {
            assert_eq!(book.booking(b.token), Some(b));
        }
    }

    /// Two threads hold and confirm on one shard while a third audits the book: every
    /// compaction a confirmation runs keeps the queue, the published front and the hint exact.
    #[test]
    fn compactions_by_racing_confirmations_keep_the_book_exact() {
        let book = one_shard();
        let done = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let (book, done) = (&book, &done);
                s.spawn(move || {
                    let per = HOLDS / 2;
                    let tokens: Vec<HoldToken> = (0..per)
                        .map(|a| {
                            let applicant = ApplicantId(t * per + a);
                            book.reserve(BranchId(1), 0, applicant).unwrap().token
                        })
                        .collect();
                    for token in tokens {
                        book.confirm(token).unwrap();
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
            while done.load(std::sync::atomic::Ordering::SeqCst) < 2 {
                book.check_invariants().unwrap();
            }
        });
        let totals = book.check_invariants().unwrap();
        assert_eq!((totals.holds, totals.bookings), (0, HOLDS));
        assert!(queue(&book).0 <= ENDED_SLACK);
    }

    /// The other way round: with holds still live, the queue keeps every one of their entries
    /// (a compaction drops only stale ones), however many bookings were made beside them.
    #[test]
    fn live_holds_keep_their_entries_through_compactions() {
        let book = one_shard();
        let tokens = hold_all(&book);
        for t in tokens.iter().step_by(2) {
            book.confirm(*t).unwrap();
        }
        book.check_invariants().unwrap();
        let (entries, _) = queue(&book);
        assert!(entries >= (HOLDS / 2) as usize);
        // They still lapse on time, and only they.
        book.clock().advance(Duration::from_secs(600));
        assert_eq!(book.sweep(), (HOLDS / 2) as usize);
        let totals = book.check_invariants().unwrap();
        assert_eq!((totals.holds, totals.bookings), (0, HOLDS / 2));
    }
}
