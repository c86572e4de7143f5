//! The standby line on Redis: `standby`, `standby_offer`, `standby_request` and
//! `leave_standby`, by the in-process book's rules (ARCHITECTURE.md, "Standby on Redis").
//!
//! Guarantee: a request waits in the line of each of its branches, under that branch's hash
//! tag, so the script that frees a unit there (a release, a lapse, a capacity raised, quotas
//! opened) keeps it for the earliest covering request in the same atomic step; no reservation
//! can take it first. The request's count stands on its applicant's shard from before it joins
//! any line until it ends, and moves to the hold it is given (`swap`) before that hold is made
//! (`claim`), so the applicant's limit holds at every step. A branch cannot tell the others
//! that it served a request: the applicant's next call takes the first offer made and leaves
//! the other lines, passing on a unit another branch kept meanwhile. A request whose offer
//! lapsed unclaimed is over, as in-process.

use std::ops::RangeBounds;

use super::reply::{self, First};
use super::standby_reply::{self as sr, Claimed, Joined, Lined, Peeked, Request, Stored, Swapped};
use super::{CLOCK_SKEW_MS, COUNT_MARGIN_MS, RedisSlotBook, branch_of, new_token};
use crate::backend::BackendError;
use crate::book::{
    ApplicantId, BranchId, Hold, HoldToken, SlotIndex, StandbyError, StandbyRequest, StandbyTicket,
    inclusive, standby_branches,
};

/// Where an applicant stands, after its offers were claimed.
enum Place {
    None,
    /// Waiting, with the requests waiting at its first branch.
    Waiting(Request, usize),
    Given(Hold),
}

/// What the lines of a waiting request's branches say, taken together.
enum Look {
    Waiting(usize),
    /// The branch whose offer was made first.
    Offer(BranchId),
    /// Some line has neither the request nor an offer for it: its offer lapsed (or it left).
    Over,
}

/// Reads and attempts of `place` at most: wait → swap → given.
const PLACE_ROUNDS: usize = 4;

/// The hold token a request is given at `branch`: the branch in the top 32 bits, the
/// request's own random bits with the lowest flipped (never the request's token itself).
fn hold_token(branch: BranchId, request: HoldToken) -> HoldToken {
    let low = (request.to_u128() & ((1u128 << 96) - 1)) ^ 1;
    HoldToken::from_u128((u128::from(branch.0) << 96) | low)
}

impl RedisSlotBook {
    /// Puts `applicant` in the standby line for one unit in any of `branches` within `slots`,
    /// as [`SlotBook::standby`](crate::SlotBook::standby): the next unit freed in a slot it
    /// covers is kept for the earliest covering request before any reservation can take it,
    /// and [`standby_offer`](Self::standby_offer) gives it as a hold. A retry while the
    /// request waits returns its ticket; `waiting` counts the requests waiting at its first
    /// branch.
    ///
    /// # Errors
    /// [`StandbyError::UnitFree`], [`StandbyError::ApplicantLimit`],
    /// [`StandbyError::LineFull`] (`max_standby_requests` wait at one of its branches),
    /// [`StandbyError::EmptyRange`], [`StandbyError::Alternatives`],
    /// [`StandbyError::Backend`]. Nothing is left waiting on an error (a unit a line kept
    /// for the request meanwhile is passed on), unless the store also fails the clean-up
    /// after the request's last step ran: it may then wait in full, and a retry returns its
    /// ticket (`leave_standby` ends it).
    pub async fn standby(
        &self,
        applicant: ApplicantId,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex>,
    ) -> Result<StandbyTicket, StandbyError> {
        let unique = standby_branches(branches)?;
        let (first, last) = inclusive(&slots).ok_or(StandbyError::EmptyRange)?;
        let backend = StandbyError::Backend;
        // As in-process, a free unit is the first answer (the lines check again as they add
        // the request).
        for &branch in &unique {
            let args = ["first".into(), first.to_string(), last.to_string()];
            let i = &self.inner;
            let reply = i.on_branch(&i.scripts.read, branch, &args).await;
            if let First::Slot(slot) = reply::first(&reply.map_err(backend)?).map_err(backend)? {
                return Err(StandbyError::UnitFree { branch, slot });
            }
        }
        if let Place::Waiting(request, waiting) = self.place(applicant).await.map_err(backend)? {
            return Ok(ticket(applicant, &request, waiting));
        }
        let request = Request {
            token: new_token(unique[0]),
            number: self.next_number().await.map_err(backend)?,
            first,
            last,
            branches: unique,
        };
        let Some(_) = self
            .take_count(applicant, request.token)
            .await
            .map_err(backend)?
        else {
            return Err(StandbyError::ApplicantLimit);
        };
        let outcome = self.join_lines(applicant, &request).await;
        if outcome.is_err() {
            self.end_request(applicant, &request).await;
        }
        outcome
    }

    /// The part of `standby` after the count is taken: stored on the applicant's shard, then
    /// in each branch's line (the first branch first: its fence is the request's), then made
    /// to last.
    async fn join_lines(
        &self,
        applicant: ApplicantId,
        request: &Request,
    ) -> Result<StandbyTicket, StandbyError> {
        let backend = StandbyError::Backend;
        let i = &self.inner;
        let args = ["line".into(), request.token.to_string(), request.text()];
        match sr::lined(&i.on_applicant(applicant, &args).await.map_err(backend)?)
            .map_err(backend)?
        {
            Lined::Ok => {}
            // Another call of this applicant stored its request first: that one stands.
            Lined::Has => return Err(StandbyError::Backend(BackendError::Timeout)),
            Lined::Gone => return Err(StandbyError::Backend(BackendError::Timeout)),
        }
        let mut waiting = 1;
        for (n, &branch) in request.branches.iter().enumerate() {
            let args = [
                "join".into(),
                request.token.to_string(),
                request.number.to_string(),
                applicant.0.to_string(),
                request.first.to_string(),
                request.last.to_string(),
                if n == 0 { "1" } else { "0" }.into(),
            ];
            let reply = i.on_branch(&i.scripts.standby, branch, &args).await;
            match sr::joined(&reply.map_err(backend)?).map_err(backend)? {
                Joined::Waiting(w) if n == 0 => waiting = w,
                Joined::Waiting(_) | Joined::Offered => {}
                Joined::Free(slot) => return Err(StandbyError::UnitFree { branch, slot }),
                Joined::Full => {
                    return Err(StandbyError::LineFull { max: i.max_line });
                }
                Joined::Stale => return Err(StandbyError::Backend(BackendError::Timeout)),
            }
        }
        let args = ["stand".into(), request.token.to_string()];
        let stood = i.on_applicant(applicant, &args).await.map_err(backend)?;
        if !reply::is_one(&stood) {
            return Err(StandbyError::Backend(BackendError::Timeout));
        }
        Ok(ticket(applicant, request, waiting))
    }

    /// The hold standby gave `applicant`, while it is live, as
    /// [`SlotBook::standby_offer`](crate::SlotBook::standby_offer): a unit one of its lines
    /// kept for its request becomes its hold now, if it was not yet.
    ///
    /// # Errors
    /// [`BackendError`]; retrying is safe (the same hold is given).
    pub async fn standby_offer(
        &self,
        applicant: ApplicantId,
    ) -> Result<Option<Hold>, BackendError> {
        Ok(match self.place(applicant).await? {
            Place::Given(hold) => Some(hold),
            Place::None | Place::Waiting(..) => None,
        })
    }

    /// `applicant`'s standby request while it waits, as
    /// [`SlotBook::standby_request`](crate::SlotBook::standby_request) (an offer made to it
    /// is claimed first).
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn standby_request(
        &self,
        applicant: ApplicantId,
    ) -> Result<Option<StandbyRequest>, BackendError> {
        Ok(match self.place(applicant).await? {
            Place::Waiting(request, _) => Some(request.public(applicant)),
            Place::None | Place::Given(_) => None,
        })
    }

    /// Takes `applicant`'s waiting request out of every line, as
    /// [`SlotBook::leave_standby`](crate::SlotBook::leave_standby); false if it had none
    /// waiting (a hold it was given stays its own). A unit a line kept for it meanwhile is
    /// passed on.
    ///
    /// # Errors
    /// [`BackendError`]: the request may have left some lines; retrying finishes.
    pub async fn leave_standby(&self, applicant: ApplicantId) -> Result<bool, BackendError> {
        let Place::Waiting(request, _) = self.place(applicant).await? else {
            return Ok(false);
        };
        for &branch in &request.branches {
            self.leave_line(branch, request.token).await?;
        }
        self.unline(applicant, request.token).await
    }

    /// The applicant's standing, its offers claimed: reads the stored request and moves it on
    /// (an offer turned into its hold, a request whose offer lapsed ended).
    async fn place(&self, applicant: ApplicantId) -> Result<Place, BackendError> {
        for _ in 0..PLACE_ROUNDS {
            let i = &self.inner;
            let got = i
                .on_applicant(applicant, &["get".into(), String::new()])
                .await?;
            let Some(stored) = sr::stored(&got)? else {
                return Ok(Place::None);
            };
            let request = match stored {
                Stored::Given {
                    hold,
                    request,
                    left,
                } => return self.given(applicant, hold, &request, left).await,
                Stored::Waiting(request) => request,
            };
            match self.look(&request).await? {
                Look::Waiting(n) => return Ok(Place::Waiting(request, n)),
                Look::Over => {
                    if self.end_waiting(applicant, &request).await? {
                        return Ok(Place::None);
                    }
                }
                Look::Offer(branch) => {
                    let hold = hold_token(branch, request.token);
                    let count_ms = i.hold_ttl_ms + COUNT_MARGIN_MS;
                    let args = [
                        "swap".into(),
                        request.token.to_string(),
                        hold.to_string(),
                        count_ms.to_string(),
                    ];
                    let reply = i.on_applicant(applicant, &args).await?;
                    if let Swapped::CountGone = sr::swapped(&reply)? {
                        // Its count was settled (its first line's offer lapsed): over.
                        self.end_waiting(applicant, &request).await?;
                        return Ok(Place::None);
                    }
                }
            }
        }
        Err(BackendError::Timeout)
    }

    /// The request's lines, read: over if one line has neither it nor an offer for it, else
    /// the first offer made, else waiting.
    async fn look(&self, request: &Request) -> Result<Look, BackendError> {
        let i = &self.inner;
        let mut first: Option<(u64, BranchId)> = None;
        let mut waiting = None;
        let mut over = false;
        for &branch in &request.branches {
            let args = ["peek".into(), request.token.to_string()];
            let reply = i.on_branch(&i.scripts.standby, branch, &args).await?;
            match sr::peeked(&reply)? {
                Peeked::Offer { expires_ms } => {
                    if first.is_none_or(|(e, _)| expires_ms < e) {
                        first = Some((expires_ms, branch));
                    }
                }
                Peeked::Waiting(n) => {
                    waiting.get_or_insert(n);
                }
                Peeked::Gone => over = true,
            }
        }
        // A line with neither the request nor an offer for it says it is over (its offer
        // there lapsed unclaimed, or it left), as in-process, even if another line kept it a
        // unit since: that line could not know, and the unit is passed on as the request ends.
        Ok(match (first, waiting) {
            _ if over => Look::Over,
            (Some((_, branch)), _) => Look::Offer(branch),
            (None, Some(n)) => Look::Waiting(n),
            (None, None) => Look::Over,
        })
    }

    /// The request was given `hold`: claims it on its branch (if not yet), leaves the other
    /// lines (if not yet), and answers the hold while it is live.
    async fn given(
        &self,
        applicant: ApplicantId,
        hold: HoldToken,
        request: &Request,
        left: bool,
    ) -> Result<Place, BackendError> {
        let i = &self.inner;
        let branch = branch_of(hold);
        if left {
            if let Some(live) = self.hold(hold).await? {
                return Ok(Place::Given(live));
            }
            self.forget(applicant, hold).await?;
            return Ok(Place::None);
        }
        let fence_ms = i.hold_ttl_ms + COUNT_MARGIN_MS + CLOCK_SKEW_MS;
        let args = [
            "claim".into(),
            request.token.to_string(),
            hold.to_string(),
            fence_ms.to_string(),
        ];
        let reply = i.on_branch(&i.scripts.standby, branch, &args).await?;
        let claimed = sr::claimed(&reply, branch, applicant)?;
        let mut left_all = true;
        for &other in request.branches.iter().filter(|&&b| b != branch) {
            left_all &= self.leave_line(other, request.token).await.is_ok();
        }
        match claimed {
            Claimed::Held(live) => {
                if left_all {
                    i.on_applicant(applicant, &["mark".into(), hold.to_string()])
                        .await?;
                }
                Ok(Place::Given(live))
            }
            Claimed::Booked => {
                self.forget(applicant, hold).await?;
                Ok(Place::None)
            }
            Claimed::Gone => {
                // Fenced on its branch by the claim: no hold is ever made under it.
                i.drop_count(applicant, hold).await?;
                self.forget(applicant, hold).await?;
                Ok(Place::None)
            }
        }
    }

    /// Ends a waiting request that no line serves any more: every line left, then the
    /// request and its count gone. Whether it was still this request waiting.
    async fn end_waiting(
        &self,
        applicant: ApplicantId,
        request: &Request,
    ) -> Result<bool, BackendError> {
        for &branch in &request.branches {
            self.leave_line(branch, request.token).await?;
        }
        self.unline(applicant, request.token).await
    }

    /// At the applicant's limit, with the counts that stand for nothing already settled: ends
    /// its waiting request if that is over (one of its lines has neither it nor an offer for
    /// it) and its count is among the `stale` ones, as the standby calls would. Settling alone
    /// cannot: it asks the request's first line, which still lists a request whose offer
    /// lapsed at another branch. Whether the request's count was given back.
    pub(super) async fn end_over_request(
        &self,
        applicant: ApplicantId,
        stale: &[HoldToken],
    ) -> Result<bool, BackendError> {
        let got = self
            .inner
            .on_applicant(applicant, &["get".into(), String::new()])
            .await?;
        // Text of another shape is the standby calls' to report; here it ends nothing.
        let Ok(Some(Stored::Waiting(request))) = sr::stored(&got) else {
            return Ok(false);
        };
        if !stale.contains(&request.token) {
            return Ok(false);
        }
        match self.look(&request).await? {
            Look::Over => self.end_waiting(applicant, &request).await,
            Look::Waiting(_) | Look::Offer(_) => Ok(false),
        }
    }

    /// After a failed `standby`: the lines joined left and the request's count given back, as
    /// far as the store answers (a line it could not leave passes its offer on when it lapses;
    /// no hold is ever made under the request once its count is gone).
    async fn end_request(&self, applicant: ApplicantId, request: &Request) {
        for &branch in &request.branches {
            let _ = self.leave_line(branch, request.token).await;
        }
        let _ = self.unline(applicant, request.token).await;
        let _ = self.inner.drop_count(applicant, request.token).await;
    }

    async fn leave_line(&self, branch: BranchId, request: HoldToken) -> Result<(), BackendError> {
        let i = &self.inner;
        let args = ["leave".into(), request.to_string()];
        i.on_branch(&i.scripts.standby, branch, &args)
            .await
            .map(drop)
    }

    async fn unline(
        &self,
        applicant: ApplicantId,
        request: HoldToken,
    ) -> Result<bool, BackendError> {
        let args = ["unline".into(), request.to_string()];
        let reply = self.inner.on_applicant(applicant, &args).await?;
        Ok(reply::is_one(&reply))
    }

    async fn forget(&self, applicant: ApplicantId, hold: HoldToken) -> Result<(), BackendError> {
        let args = ["forget".into(), hold.to_string()];
        self.inner.on_applicant(applicant, &args).await.map(drop)
    }

    /// The next number of the book's first-come order (one counter on the registry's shard).
    async fn next_number(&self) -> Result<u64, BackendError> {
        let i = &self.inner;
        let key = format!("{{{}:book}}:standby", i.namespace);
        let mut incr = redis::cmd("INCR");
        incr.arg(&key);
        let reply = i.conn.command(incr, Some(&key), i.timeout).await?;
        reply::u64_of(&reply)
    }
}

fn ticket(applicant: ApplicantId, request: &Request, waiting: usize) -> StandbyTicket {
    StandbyTicket {
        applicant,
        number: request.number,
        waiting,
    }
}
