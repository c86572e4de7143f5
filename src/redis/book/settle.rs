//! Giving back counts that stand for nothing: a call that failed half-way (a cancellation
//! whose `WAIT` was not acknowledged, a confirmation whose hold a failover lost, a reservation
//! whose reply was lost) can leave a token counted against its applicant's limit with neither
//! a hold nor a booking behind it. An applicant at its limit has its counts settled before it
//! is refused, so no sequence of errors and retries locks it out.
//!
//! Guarantee: a count is given back only after its branch fenced its token (no hold is ever
//! made under it afterwards), so the count still covers every hold and booking of the
//! applicant: settling never lets the limit be exceeded. Only counts that no reservation in
//! progress can still make a hold under are settled (a booking's, or one taken long enough
//! ago that the branch would refuse the hold as stale), so two reservations of one applicant
//! racing each other answer as in-process: one hold, one `ApplicantLimit`.

use super::reply::{self, Settled};
use super::{CLOCK_SKEW_MS, COUNT_MARGIN_MS, RedisSlotBook, branch_of};
use crate::backend::BackendError;
use crate::book::{ApplicantId, HoldToken};

impl RedisSlotBook {
    /// Of the `stale` tokens counted against `applicant` (those no reservation in progress can
    /// still make a hold under, which the applicant script lists at the limit), gives back each
    /// count whose token has neither a live hold nor a booking on its branch (fencing the token
    /// there first), and marks as a booking a count whose token is booked; whether any count
    /// was given back.
    pub(super) async fn settle(
        &self,
        applicant: ApplicantId,
        stale: &[HoldToken],
    ) -> Result<bool, BackendError> {
        let i = &self.inner;
        // A fence outlasts every count a reservation in progress can hold (taken at most
        // `hold_ttl + COUNT_MARGIN_MS` ago on the applicant's clock), allowing for clock skew.
        let fence_ms = i.hold_ttl_ms + COUNT_MARGIN_MS + CLOCK_SKEW_MS;
        let mut freed = false;
        for &token in stale {
            let args = [token.to_string(), fence_ms.to_string()];
            let reply = i
                .on_branch(&i.scripts.settle, branch_of(token), &args)
                .await?;
            match reply::settled(&reply)? {
                Settled::Hold => {}
                Settled::Booking => {
                    i.on_applicant(applicant, &["book".into(), token.to_string()])
                        .await?;
                }
                Settled::Gone => {
                    i.drop_count(applicant, token).await?;
                    freed = true;
                }
            }
        }
        Ok(freed)
    }
}
