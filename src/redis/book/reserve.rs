//! One reservation on one branch: `reserve` and `reserve_earliest`, and the applicant protocol
//! around every reservation (take the applicant's count, reserve on the branch, give the count
//! back if no new hold was made), which `among` shares.

use std::ops::RangeBounds;

use super::reply::{self, Taken};
use super::{CLOCK_SKEW_MS, COUNT_MARGIN_MS, RedisSlotBook, new_token};
use crate::backend::BackendError;
use crate::book::{
    ApplicantId, BranchId, Channel, Hold, HoldToken, ReserveError, SlotIndex, inclusive,
};

/// How the reserve script picks its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// The one slot named (`first == last`).
    Slot,
    /// The lowest slot with room in `first..=last`.
    Earliest,
}

/// One run of the reserve script: where, for whom, under which new token.
pub(super) struct Ask {
    pub(super) branch: BranchId,
    pub(super) mode: Mode,
    pub(super) first: SlotIndex,
    pub(super) last: SlotIndex,
    pub(super) applicant: ApplicantId,
    pub(super) token: HoldToken,
    /// The channel the unit is taken on (mode `Slot` only): its quota first.
    pub(super) channel: Option<Channel>,
}

impl RedisSlotBook {
    /// A hold on `slot` for `applicant`, by the same rules as [`SlotBook::reserve`](crate::SlotBook::reserve).
    ///
    /// # Errors
    /// [`ReserveError::UnknownSlot`] (also for a closed slot), [`ReserveError::Full`],
    /// [`ReserveError::ApplicantLimit`], [`ReserveError::Backend`].
    pub async fn reserve(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        self.take_hold(branch, Mode::Slot, slot, slot, applicant, None)
            .await
    }

    /// A hold on the earliest slot in `slots` with room, as [`SlotBook::reserve_earliest`](crate::SlotBook::reserve_earliest),
    /// found without scanning (a sorted set of the slots with room).
    ///
    /// # Errors
    /// [`ReserveError::EmptyRange`], [`ReserveError::UnknownSlot`] (a branch with no slot),
    /// [`ReserveError::NoneAvailable`], [`ReserveError::ApplicantLimit`],
    /// [`ReserveError::Backend`].
    pub async fn reserve_earliest(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex>,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        let (first, last) = inclusive(&slots).ok_or(ReserveError::EmptyRange)?;
        self.take_hold(branch, Mode::Earliest, first, last, applicant, None)
            .await
    }

    /// The applicant protocol around one reservation: take the applicant's count, reserve on
    /// the branch, give the count back if no new hold was made.
    pub(super) async fn take_hold(
        &self,
        branch: BranchId,
        mode: Mode,
        first: SlotIndex,
        last: SlotIndex,
        applicant: ApplicantId,
        channel: Option<Channel>,
    ) -> Result<Hold, ReserveError> {
        let ask = Ask {
            branch,
            mode,
            first,
            last,
            applicant,
            token: new_token(branch),
            channel,
        };
        let backend = ReserveError::Backend;
        let Some(until_ms) = self
            .take_count(applicant, ask.token)
            .await
            .map_err(backend)?
        else {
            // At the limit: a retry of a reservation that succeeded returns its hold.
            return match self.run_reserve(&ask, None).await.map_err(backend)? {
                Ok(hold) => Ok(hold),
                Err(ReserveError::UnknownSlot) => Err(ReserveError::UnknownSlot),
                Err(_) => Err(ReserveError::ApplicantLimit),
            };
        };
        let outcome = match self.run_reserve(&ask, Some(until_ms)).await {
            Ok(outcome) => outcome,
            Err(e) => {
                // The reserve may or may not have run: settle its token now (a hold it made
                // keeps its count; otherwise the token is fenced and its count given back).
                // Should that fail too, the next reservation at the limit settles it.
                let _ = self.settle(applicant, &[ask.token]).await;
                return Err(backend(e));
            }
        };
        if !matches!(&outcome, Ok(hold) if hold.token == ask.token) {
            // No new hold under this token: give the count back. Should that fail, the branch's
            // answer stands (it is the truth; an error would hide it): the count stands for
            // nothing and no hold is ever made under its token (a new one for every call), so
            // the applicant's next reservation at its limit gives it back, and it runs out by
            // itself within `hold_ttl + 2 s`.
            let _ = self.inner.drop_count(applicant, ask.token).await;
        }
        outcome
    }

    /// Takes the applicant's count for `token`: `Some(until_ms)`, the time until which it
    /// counts, or `None` at the applicant's limit (after giving back the counts that stand for
    /// nothing: a failed call's leftovers never lock the applicant out).
    pub(super) async fn take_count(
        &self,
        applicant: ApplicantId,
        token: HoldToken,
    ) -> Result<Option<u64>, BackendError> {
        let i = &self.inner;
        let count_ms = i.hold_ttl_ms + COUNT_MARGIN_MS;
        let args = [
            "take".into(),
            token.to_string(),
            count_ms.to_string(),
            i.limit.to_string(),
            i.hold_ttl_ms.to_string(),
        ];
        let stale = match self.take_once(applicant, token, &args).await? {
            Taken::Until(until_ms) => return Ok(Some(until_ms)),
            Taken::Limit(stale) => stale,
        };
        if !self.settle(applicant, &stale).await?
            && !self.end_over_request(applicant, &stale).await?
        {
            return Ok(None);
        }
        match self.take_once(applicant, token, &args).await? {
            Taken::Until(until_ms) => Ok(Some(until_ms)),
            Taken::Limit(_) => Ok(None),
        }
    }

    /// One run of the applicant script's `take`. Should it fail (its reply lost, say), the
    /// count it may have taken is settled on the spot (the token fenced on its branch, then
    /// its count given back), so a lost reply does not hold the applicant at its limit while
    /// the provisional count lasts. Should the settling fail too, the next reservation at the
    /// limit settles it.
    async fn take_once(
        &self,
        applicant: ApplicantId,
        token: HoldToken,
        args: &[String],
    ) -> Result<Taken, BackendError> {
        let taken = match self.inner.on_applicant(applicant, args).await {
            Ok(reply) => reply::taken(&reply),
            Err(e) => Err(e),
        };
        if taken.is_err() {
            let _ = self.settle(applicant, &[token]).await;
        }
        taken
    }

    /// Runs the reserve script: with the applicant's count taken until `counted_until_ms`, a
    /// new hold that expires before the count does (allowing for clock skew); with `None`,
    /// only the applicant's live hold in the range, if any.
    pub(super) async fn run_reserve(
        &self,
        ask: &Ask,
        counted_until_ms: Option<u64>,
    ) -> Result<Result<Hold, ReserveError>, BackendError> {
        let i = &self.inner;
        let (latest_ms, peek) = match counted_until_ms {
            Some(until) => (until.saturating_sub(COUNT_MARGIN_MS.min(CLOCK_SKEW_MS)), ""),
            None => (0, "peek"),
        };
        let mode = match ask.mode {
            Mode::Slot => "slot",
            Mode::Earliest => "earliest",
        };
        let args = [
            mode.into(),
            ask.first.to_string(),
            ask.last.to_string(),
            ask.applicant.0.to_string(),
            ask.token.to_string(),
            i.hold_ttl_ms.to_string(),
            latest_ms.to_string(),
            peek.into(),
            ask.channel.map_or_else(String::new, |c| c.0.to_string()),
        ];
        let reply = i.on_branch(&i.scripts.reserve, ask.branch, &args).await?;
        reply::hold(&reply, ask.branch, ask.applicant)
    }
}
