//! What happens to a hold: `confirm` turns it into a booking (the applicant's count marked as a
//! booking first), `release` gives either back (the count given back after).

use super::reply;
use super::{RedisSlotBook, branch_of};
use crate::book::{Booking, ConfirmError, HoldToken, ReleaseError};

impl RedisSlotBook {
    /// Confirms a live hold (a retry returns the same booking), durably: `Ok` once written on
    /// the primary (which fsyncs every write) and acknowledged by the replicas asked for.
    ///
    /// # Errors
    /// [`ConfirmError::UnknownToken`], [`ConfirmError::Expired`], [`ConfirmError::Backend`].
    pub async fn confirm(&self, token: HoldToken) -> Result<Booking, ConfirmError> {
        let i = &self.inner;
        let branch = branch_of(token);
        let backend = ConfirmError::Backend;
        let read = i
            .on_branch(&i.scripts.read, branch, &["hold".into(), token.to_string()])
            .await
            .map_err(backend)?;
        let applicant = reply::hold_record(&read)
            .map_err(backend)?
            .map(|(_, applicant, _)| applicant);
        if let Some(applicant) = applicant {
            // Counted as a booking before it is one, so the count always covers it.
            let booked = i
                .on_applicant(applicant, &["book".into(), token.to_string()])
                .await
                .map_err(backend)?;
            if !reply::is_one(&booked) {
                return Err(ConfirmError::Expired);
            }
        }
        let reply = i
            .on_branch(&i.scripts.confirm, branch, &[token.to_string()])
            .await
            .map_err(backend)?;
        match reply::booking(&reply, branch, token).map_err(backend)? {
            Ok(booking) => {
                i.replicated(branch).await.map_err(backend)?;
                Ok(booking)
            }
            Err(e) => {
                if let Some(applicant) = applicant {
                    i.drop_count(applicant, token).await.map_err(backend)?;
                }
                Err(e)
            }
        }
    }

    /// Releases a live hold or cancels a booking, durably (acknowledged by the replicas asked
    /// for); its unit is free at once, and the applicant's count is given back after.
    ///
    /// A release retried after an error answers `UnknownToken` once the first took effect;
    /// the applicant's count is then given back by its next reservation at its limit, if not
    /// before.
    ///
    /// # Errors
    /// [`ReleaseError::UnknownToken`], [`ReleaseError::Backend`].
    pub async fn release(&self, token: HoldToken) -> Result<(), ReleaseError> {
        let i = &self.inner;
        let branch = branch_of(token);
        let reply = i
            .on_branch(&i.scripts.release, branch, &[token.to_string()])
            .await
            .map_err(ReleaseError::Backend)?;
        let (_, applicant) = reply::released(&reply)
            .map_err(ReleaseError::Backend)?
            .ok_or(ReleaseError::UnknownToken)?;
        // The count is given back only once the release is replicated (a failover that lost
        // the release would bring back a hold or booking no count covers). Should this fail,
        // the count stays until the applicant's next reservation at its limit settles it.
        i.replicated(branch).await.map_err(ReleaseError::Backend)?;
        i.drop_count(applicant, token)
            .await
            .map_err(ReleaseError::Backend)
    }
}
