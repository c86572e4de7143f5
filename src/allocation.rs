//! Allocation rounds: scarce appointments handed out by a seeded draw that speed cannot win.
//!
//! An [`AllocationRound`] collects requests (an applicant and their ranked preferences, each a
//! branch and a slot range) for a scheduled window, then at its close assigns slots by *random
//! serial dictatorship*: applicants in an order drawn from a published seed, each given the
//! earliest slot with room in their first preference that has one, else in the next, as a hold on
//! the [`SlotBook`] that the applicant then confirms (or lets lapse, returning the unit).
//!
//! Guarantees:
//! - The order depends only on the seed and the *set* of applicants who requested: it is the
//!   pre-queue draw ([`crate::room::prequeue_order`]) applied to the applicants sorted by id, so
//!   anyone can recompute it from the published seed and the list of requests.
//! - Each applicant, at their turn, gets their best preference that still has room: nobody gets a
//!   slot ranked below one that was free when their turn came.
//! - Every book rule holds (the holds are ordinary `reserve_earliest` holds): no overbooking, the
//!   applicant limit, an error changes nothing.
//! - Bounded: at most [`MAX_REQUESTS`] applicants and [`MAX_PREFERENCES`] preferences each; a
//!   second request by the same applicant replaces the first.

use std::collections::HashMap;
use std::ops::Range;

use thiserror::Error;

use crate::book::{ApplicantId, BranchId, Hold, ReserveError, SlotBook, SlotIndex};
use crate::clock::Clock;

/// The most applicants one round takes.
pub const MAX_REQUESTS: usize = 1 << 24;

/// The most preferences one request ranks.
pub const MAX_PREFERENCES: usize = 16;

/// Why [`AllocationRound::request`] took no request. The round is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No preference, or more than [`MAX_PREFERENCES`].
    #[error("rank between 1 and {max} preferences")]
    Preferences {
        /// [`MAX_PREFERENCES`].
        max: usize,
    },
    /// A preference's slot range is empty (`start >= end`).
    #[error(
        "preference {index} has an empty slot range: give a range whose start is below its end"
    )]
    EmptyRange {
        /// Its rank, 0 for the first.
        index: usize,
    },
    /// The round already holds [`MAX_REQUESTS`] applicants.
    #[error("the round already has {max} applicants: open another round for the rest")]
    Full {
        /// [`MAX_REQUESTS`].
        max: usize,
    },
}

/// What [`AllocationRound::close`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundOutcome {
    /// The drawn order: reproducible from the seed and the set of applicants.
    pub order: Vec<ApplicantId>,
    /// At most one hold per applicant, in `order`, to be confirmed before it lapses.
    pub holds: Vec<Hold>,
    /// Applicants none of whose preferences had room at their turn (or who were at their
    /// `max_active_per_applicant`), in `order`.
    pub unplaced: Vec<ApplicantId>,
}

/// Requests collected for one scheduled window; see the [module docs](self).
///
/// ```
/// use surgegate::allocation::AllocationRound;
/// use surgegate::{ApplicantId, BranchId, SlotBook};
///
/// let book = SlotBook::builder().build();
/// book.set_capacity(BranchId(3), 10, 1)?; // one appointment at the wanted branch
/// book.set_capacity(BranchId(9), 40, 1)?; // one further away
///
/// let mut round = AllocationRound::new(2027);
/// for a in [1, 2, 3] {
///     round.request(ApplicantId(a), &[(BranchId(3), 0..96), (BranchId(9), 0..480)])?;
/// }
/// let outcome = round.close(&book);
/// assert_eq!(outcome.holds.len(), 2);
/// assert_eq!(outcome.unplaced.len(), 1);
/// // The first drawn got the first preference; the second, the second.
/// assert_eq!(outcome.holds[0].applicant, outcome.order[0]);
/// assert_eq!(outcome.holds[0].branch, BranchId(3));
/// assert_eq!(outcome.holds[1].branch, BranchId(9));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct AllocationRound {
    seed: u64,
    requests: HashMap<ApplicantId, Vec<(BranchId, Range<SlotIndex>)>, ahash::RandomState>,
}

impl AllocationRound {
    /// An empty round whose order will be drawn from `seed` (publish it, for audit).
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            requests: HashMap::with_hasher(crate::sync::random_state()),
        }
    }

    /// The seed the order is drawn from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Applicants who requested.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether nobody requested yet.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Records the applicant's ranked preferences (most wanted first), replacing any earlier
    /// request of theirs. When they arrived plays no part in the outcome.
    pub fn request(
        &mut self,
        applicant: ApplicantId,
        preferences: &[(BranchId, Range<SlotIndex>)],
    ) -> Result<(), RequestError> {
        if preferences.is_empty() || preferences.len() > MAX_PREFERENCES {
            return Err(RequestError::Preferences {
                max: MAX_PREFERENCES,
            });
        }
        if let Some(index) = preferences.iter().position(|(_, r)| r.is_empty()) {
            return Err(RequestError::EmptyRange { index });
        }
        if self.requests.len() >= MAX_REQUESTS && !self.requests.contains_key(&applicant) {
            return Err(RequestError::Full { max: MAX_REQUESTS });
        }
        self.requests.insert(applicant, preferences.to_vec());
        Ok(())
    }

    /// The order the round will serve its applicants in.
    pub fn order(&self) -> Vec<ApplicantId> {
        let mut applicants: Vec<ApplicantId> = self.requests.keys().copied().collect();
        applicants.sort_unstable();
        crate::room::draw_order(applicants.len(), self.seed)
            .into_iter()
            .map(|i| applicants[i])
            .collect()
    }

    /// Serves every applicant in the drawn order: each gets a hold on the earliest slot with
    /// room in their first preference that has one, else in the next, and so on.
    ///
    /// The outcome is the one the order gives only if nothing else reserves on these branches
    /// meanwhile: close a round while its window is not yet open to other reservations.
    pub fn close<C: Clock>(self, book: &SlotBook<C>) -> RoundOutcome {
        let order = self.order();
        let mut outcome = RoundOutcome {
            holds: Vec::with_capacity(order.len()),
            ..RoundOutcome::default()
        };
        for &applicant in &order {
            match self.serve(book, applicant) {
                Some(hold) => outcome.holds.push(hold),
                None => outcome.unplaced.push(applicant),
            }
        }
        outcome.order = order;
        outcome
    }

    /// One applicant's turn: the first preference with room.
    fn serve<C: Clock>(&self, book: &SlotBook<C>, applicant: ApplicantId) -> Option<Hold> {
        for (branch, slots) in self.requests.get(&applicant)? {
            match book.reserve_earliest(*branch, slots.clone(), applicant) {
                Ok(hold) => return Some(hold),
                // No room there (or no such slots): the next preference.
                Err(ReserveError::NoneAvailable | ReserveError::UnknownSlot) => {}
                // The applicant's limit or the book's: no preference can be served.
                Err(_) => return None,
            }
        }
        None
    }
}
