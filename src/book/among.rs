//! One hold among several acceptable branches: `reserve_earliest_among` and `reserve_among`.
//!
//! Guarantee: the same rules as `reserve_earliest` (one compare-and-swap takes the unit, so no
//! overbooking; the applicant's limit; a retry returns the hold the applicant already has in any
//! of the branches and the range; an error changes nothing), with the slot chosen by a
//! [`Preference`] over every branch named, and full slots skipped 64 at a time in each.

use std::ops::RangeBounds;

use crate::clock::Clock;

use super::branches::Branch;
use super::error::ReserveError;
use super::reserve::{take_earliest, try_take};
use super::types::{ApplicantId, BranchId, Hold, SlotIndex};
use super::{SlotBook, inclusive};

/// The most branches one `reserve_among` (or `reserve_earliest_among`) may name.
pub const MAX_ALTERNATIVES: usize = 16;

/// Which slot [`SlotBook::reserve_among`] takes when several branches have room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preference {
    /// The lowest slot index with room in any of the branches; between branches with room at
    /// the same slot, the one named first.
    #[default]
    EarliestSlot,
    /// The first branch, in the order named, that has room anywhere in the range; its lowest
    /// slot with room.
    FirstBranch,
}

impl<C: Clock> SlotBook<C> {
    /// Holds one unit on the earliest slot with room in `slots` across `branches` (the
    /// applicant's acceptable branches, at most [`MAX_ALTERNATIVES`]); between branches with
    /// room at the same slot, the one listed first. [`reserve_among`](Self::reserve_among) with
    /// [`Preference::EarliestSlot`]; see there for the errors.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 9, 1)?;
    /// book.set_capacity(BranchId(2), 3, 1)?;
    /// let hold = book.reserve_earliest_among(&[BranchId(1), BranchId(2)], 0..30, ApplicantId(7))?;
    /// assert_eq!((hold.branch, hold.slot), (BranchId(2), 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve_earliest_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex>,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        self.reserve_among(branches, slots, applicant, Preference::EarliestSlot)
    }

    /// Holds one unit in one of `branches` (the applicant's acceptable branches, most wanted
    /// first; at most [`MAX_ALTERNATIVES`]) within `slots`, chosen by `prefer`.
    ///
    /// Branches never opened are skipped ([`ReserveError::UnknownSlot`] if none is known, or the
    /// range lies wholly past `max_slots_per_branch`); [`ReserveError::NoneAvailable`] if no slot
    /// of any of them has room; [`ReserveError::Alternatives`] for no branch or too many. If the
    /// applicant already holds a slot of one of the branches in the range, that hold is returned
    /// and nothing is taken.
    ///
    /// ```
    /// use surgegate::book::Preference;
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 9, 1)?; // the preferred branch: only day 9
    /// book.set_capacity(BranchId(2), 3, 1)?; // a neighbour: day 3
    /// let near = [BranchId(1), BranchId(2)];
    ///
    /// let hold = book.reserve_among(&near, 0..30, ApplicantId(7), Preference::FirstBranch)?;
    /// assert_eq!((hold.branch, hold.slot), (BranchId(1), 9));
    /// let hold = book.reserve_among(&near, 0..30, ApplicantId(8), Preference::EarliestSlot)?;
    /// assert_eq!((hold.branch, hold.slot), (BranchId(2), 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve_among(
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
        let mut known: [Option<&Branch>; MAX_ALTERNATIVES] = [None; MAX_ALTERNATIVES];
        for (cell, id) in known.iter_mut().zip(branches) {
            *cell = self.branches.get(*id);
        }
        let known = &known[..branches.len()];
        if known.iter().all(Option::is_none) || first >= self.max_slots_per_branch {
            return Err(ReserveError::UnknownSlot);
        }
        let last = last.min(self.max_slots_per_branch - 1);
        // As in `reserve_earliest`: an expired hold must not make a later slot look earliest.
        self.sweep_now();
        self.reserve_with(
            applicant,
            |r| branches.contains(&r.branch) && (first..=last).contains(&r.slot),
            || {
                Ok(match prefer {
                    Preference::FirstBranch => known
                        .iter()
                        .flatten()
                        .find_map(|b| take_earliest(b, first, last)),
                    Preference::EarliestSlot => take_earliest_of_all(known, first, last),
                })
            },
            ReserveError::NoneAvailable,
        )
    }
}

/// Takes a unit of the lowest slot with room across `branches` (ties: the branch named first).
/// Each branch's next candidate comes from its full bitmaps; a candidate lost to a racing
/// reservation is replaced by that branch's next one.
fn take_earliest_of_all(
    branches: &[Option<&Branch>],
    first: SlotIndex,
    last: SlotIndex,
) -> Option<super::reserve::Taken> {
    let mut next: [Option<SlotIndex>; MAX_ALTERNATIVES] = [None; MAX_ALTERNATIVES];
    for (candidate, b) in next.iter_mut().zip(branches) {
        *candidate = b.and_then(|b| b.first_not_full(first, last));
    }
    loop {
        let (i, slot) = next[..branches.len()]
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
            .min_by_key(|&(i, s)| (s, i))?;
        let b = branches[i]?;
        if let Some(taken) = try_take(b, slot) {
            return Some(taken);
        }
        next[i] = slot
            .checked_add(1)
            .filter(|&n| n <= last)
            .and_then(|n| b.first_not_full(n, last));
    }
}
