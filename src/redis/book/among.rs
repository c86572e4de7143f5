//! One hold among several acceptable branches: `reserve_among` and `reserve_earliest_among`.
//!
//! Guarantee: the rules of the in-process book's (every branch on its own shard): a hold the
//! applicant already has at one of the branches in the range comes back (rule 4); the
//! applicant's count is taken before the hold is made and given back if none is (rule 5); the
//! slot is chosen from each branch's lowest slot with room (ties: the branch listed first) and
//! taken by the one-slot reserve script, which never overbooks. A race that loses the chosen
//! slot reads that branch again and chooses again, at most [`ATTEMPTS`] times.

use std::ops::RangeBounds;

use super::reply::{self, First};
use super::reserve::{Ask, Mode};
use super::{RedisSlotBook, branch_of, new_token};
use crate::backend::BackendError;
use crate::book::{
    ApplicantId, BranchId, Hold, HoldToken, MAX_ALTERNATIVES, Preference, ReserveError, SlotIndex,
    inclusive,
};

/// Choices one reservation among branches makes at most before it answers
/// `ReserveError::Backend(BackendError::Timeout)` (every one lost to a racing reservation).
const ATTEMPTS: usize = 32;

/// The applicant's count, taken under a token of one branch (a hold's token names its branch).
struct Counted {
    branch: BranchId,
    token: HoldToken,
    until_ms: u64,
    /// A reserve under this token failed: it may have made a hold, so the count is settled
    /// (kept if the hold exists, given back after the token is fenced), never simply dropped.
    unsure: bool,
}

impl RedisSlotBook {
    /// A hold on the earliest slot with room in `slots` across `branches` (ties: the branch
    /// listed first), as [`SlotBook::reserve_earliest_among`](crate::SlotBook::reserve_earliest_among).
    ///
    /// # Errors
    /// As [`reserve_among`](Self::reserve_among).
    pub async fn reserve_earliest_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex>,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        self.reserve_among(branches, slots, applicant, Preference::EarliestSlot)
            .await
    }

    /// A hold in one of `branches` (at most [`MAX_ALTERNATIVES`], most wanted first) within
    /// `slots`, chosen by `prefer`, as [`SlotBook::reserve_among`](crate::SlotBook::reserve_among).
    /// If the applicant already holds a slot of one of the branches in the range, that hold.
    ///
    /// # Errors
    /// [`ReserveError::Alternatives`], [`ReserveError::EmptyRange`],
    /// [`ReserveError::UnknownSlot`] (no branch has a slot), [`ReserveError::ApplicantLimit`],
    /// [`ReserveError::NoneAvailable`], [`ReserveError::Backend`] (also, as a timeout, when
    /// racing reservations took every slot chosen, 32 times in a row: retrying is safe).
    pub async fn reserve_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex>,
        applicant: ApplicantId,
        prefer: Preference,
    ) -> Result<Hold, ReserveError> {
        if branches.is_empty() || branches.len() > MAX_ALTERNATIVES {
            return Err(ReserveError::Alternatives {
                max: MAX_ALTERNATIVES as u32,
            });
        }
        let (first, last) = inclusive(&slots).ok_or(ReserveError::EmptyRange)?;
        let backend = ReserveError::Backend;
        if let Some(hold) = self
            .held_among(branches, first, last, applicant)
            .await
            .map_err(backend)?
        {
            return Ok(hold);
        }
        let mut candidates = Vec::with_capacity(branches.len());
        for &branch in branches {
            candidates.push(
                self.first_with_room(branch, first, last)
                    .await
                    .map_err(backend)?,
            );
        }
        if candidates.iter().all(|c| *c == First::Unknown) {
            return Err(ReserveError::UnknownSlot);
        }
        let mut counted = None;
        let outcome = self
            .choose_and_take(
                branches,
                &mut candidates,
                (first, last),
                applicant,
                prefer,
                &mut counted,
            )
            .await;
        let keep = matches!((&outcome, &counted), (Ok(h), Some(c)) if h.token == c.token);
        match counted {
            Some(c) if !keep && c.unsure => {
                // The reserve may have made a hold whose reply was lost: settle its count.
                // Should that fail too, the next reservation at the limit settles it.
                let _ = self.settle(applicant, &[c.token]).await;
            }
            Some(c) if !keep => {
                // No new hold under the count's token: give it back.
                self.inner
                    .drop_count(applicant, c.token)
                    .await
                    .map_err(backend)?;
            }
            _ => {}
        }
        outcome
    }

    /// The choosing loop: the best candidate by `prefer`, the applicant's count under a token
    /// of its branch (kept in `counted` for the caller to give back), one reserve of that slot;
    /// a lost race reads that branch's candidate again.
    async fn choose_and_take(
        &self,
        branches: &[BranchId],
        candidates: &mut [First],
        (first, last): (SlotIndex, SlotIndex),
        applicant: ApplicantId,
        prefer: Preference,
        counted: &mut Option<Counted>,
    ) -> Result<Hold, ReserveError> {
        let backend = ReserveError::Backend;
        for _ in 0..ATTEMPTS {
            let choice = choose(candidates, prefer);
            // Counted before "none available" is said, so the limit is told first, as in-process.
            let branch =
                choice.map_or_else(|| first_known(branches, candidates), |(i, _)| branches[i]);
            self.count_for(branch, applicant, counted).await?;
            let Some((i, slot)) = choice else {
                return Err(ReserveError::NoneAvailable);
            };
            let c = counted.as_ref().ok_or(backend(BackendError::Reply))?;
            let ask = Ask {
                branch,
                mode: Mode::Slot,
                first: slot,
                last: slot,
                applicant,
                token: c.token,
                channel: None,
            };
            let reserved = match self.run_reserve(&ask, Some(c.until_ms)).await {
                Ok(reserved) => reserved,
                Err(e) => {
                    if let Some(c) = counted.as_mut() {
                        c.unsure = true;
                    }
                    return Err(backend(e));
                }
            };
            match reserved {
                Ok(hold) => return Ok(hold),
                // Lost to a racing reservation (or closed meanwhile): read the branch again.
                Err(ReserveError::Full | ReserveError::UnknownSlot) => {
                    candidates[i] = self
                        .first_with_room(branch, first, last)
                        .await
                        .map_err(backend)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(backend(BackendError::Timeout))
    }

    /// Makes `counted` the applicant's count under a token of `branch` (giving back one under
    /// another branch's token first); `ApplicantLimit` at the limit (a retry of a reservation
    /// that succeeded found its hold before: `held_among`).
    async fn count_for(
        &self,
        branch: BranchId,
        applicant: ApplicantId,
        counted: &mut Option<Counted>,
    ) -> Result<(), ReserveError> {
        let backend = ReserveError::Backend;
        if counted.as_ref().is_some_and(|c| c.branch == branch) {
            return Ok(());
        }
        if let Some(old) = counted.take() {
            self.inner
                .drop_count(applicant, old.token)
                .await
                .map_err(backend)?;
        }
        let token = new_token(branch);
        match self.take_count(applicant, token).await.map_err(backend)? {
            Some(until_ms) => {
                *counted = Some(Counted {
                    branch,
                    token,
                    until_ms,
                    unsure: false,
                });
                Ok(())
            }
            None => Err(ReserveError::ApplicantLimit),
        }
    }

    /// The applicant's live hold at one of `branches` in `first..=last`, if any (found through
    /// the tokens counted against its limit).
    async fn held_among(
        &self,
        branches: &[BranchId],
        first: SlotIndex,
        last: SlotIndex,
        applicant: ApplicantId,
    ) -> Result<Option<Hold>, BackendError> {
        for token in self.counted(applicant).await? {
            if !branches.contains(&branch_of(token)) {
                continue;
            }
            if let Some(hold) = self.hold(token).await?
                && hold.applicant == applicant
                && (first..=last).contains(&hold.slot)
            {
                return Ok(Some(hold));
            }
        }
        Ok(None)
    }

    /// The lowest slot of `branch` in `first..=last` with room, as of now.
    async fn first_with_room(
        &self,
        branch: BranchId,
        first: SlotIndex,
        last: SlotIndex,
    ) -> Result<First, BackendError> {
        let i = &self.inner;
        let args = ["first".into(), first.to_string(), last.to_string()];
        reply::first(&i.on_branch(&i.scripts.read, branch, &args).await?)
    }
}

/// The candidate `prefer` picks: its index and slot.
fn choose(candidates: &[First], prefer: Preference) -> Option<(usize, SlotIndex)> {
    let mut with_room = candidates.iter().enumerate().filter_map(|(i, c)| match c {
        First::Slot(slot) => Some((i, *slot)),
        _ => None,
    });
    match prefer {
        Preference::FirstBranch => with_room.next(),
        // The lowest slot; between equal slots, the branch listed first.
        _ => with_room.min_by_key(|&(i, slot)| (slot, i)),
    }
}

/// The first branch with any slot (there is one: the caller checked).
fn first_known(branches: &[BranchId], candidates: &[First]) -> BranchId {
    candidates
        .iter()
        .position(|c| *c != First::Unknown)
        .map_or(branches[0], |i| branches[i])
}
