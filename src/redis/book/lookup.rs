//! Finding holds and bookings again: by token (its top 32 bits name the branch), or by
//! applicant (through the tokens counted against its limit).

use std::time::Duration;

use super::reply;
use super::{RedisSlotBook, branch_of};
use crate::backend::BackendError;
use crate::book::{ApplicantId, Booking, Hold, HoldToken};

impl RedisSlotBook {
    /// The tokens counted against an applicant's limit (its live holds and bookings, and a
    /// reservation in progress).
    pub(super) async fn counted(
        &self,
        applicant: ApplicantId,
    ) -> Result<Vec<HoldToken>, BackendError> {
        let i = &self.inner;
        let mut cmd = redis::cmd("ZRANGE");
        let key = i.applicant_key(applicant);
        cmd.arg(&key).arg(0).arg(-1);
        reply::tokens(&i.conn.command(cmd, Some(&key), i.timeout).await?)
    }

    /// The applicant's live holds, as [`SlotBook::holds_of`](crate::SlotBook::holds_of).
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn holds_of(&self, applicant: ApplicantId) -> Result<Vec<Hold>, BackendError> {
        let mut out = Vec::new();
        for token in self.counted(applicant).await? {
            if let Some(hold) = self.hold(token).await?.filter(|h| h.applicant == applicant) {
                out.push(hold);
            }
        }
        Ok(out)
    }

    /// The applicant's bookings, as [`SlotBook::bookings_of`](crate::SlotBook::bookings_of).
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn bookings_of(&self, applicant: ApplicantId) -> Result<Vec<Booking>, BackendError> {
        let mut out = Vec::new();
        for token in self.counted(applicant).await? {
            if let Some(booking) = self
                .booking(token)
                .await?
                .filter(|b| b.applicant == applicant)
            {
                out.push(booking);
            }
        }
        Ok(out)
    }

    /// The live hold of this token, if any.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn hold(&self, token: HoldToken) -> Result<Option<Hold>, BackendError> {
        let i = &self.inner;
        let branch = branch_of(token);
        let reply = i
            .on_branch(&i.scripts.read, branch, &["hold".into(), token.to_string()])
            .await?;
        Ok(
            reply::hold_record(&reply)?.map(|(slot, applicant, expires_ms)| Hold {
                token,
                branch,
                slot,
                applicant,
                expires_at: Duration::from_millis(expires_ms),
            }),
        )
    }

    /// The booking of this token, if any.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn booking(&self, token: HoldToken) -> Result<Option<Booking>, BackendError> {
        let i = &self.inner;
        let branch = branch_of(token);
        let args = ["booking".into(), token.to_string()];
        let reply = i.on_branch(&i.scripts.read, branch, &args).await?;
        reply::booking_record(&reply, branch, token)
    }
}
