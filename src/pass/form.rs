//! Form tokens: a signed text that a page puts in each form that changes state, bound to the
//! form's purpose, to whom it was shown, and when, so that another site's page cannot post it
//! in a visitor's name and an old copy of a page stops working.
//!
//! Format version 5: version, key id, issue time in Unix seconds (big-endian `u64`), and the
//! tag over those 13 bytes followed by the purpose's length (big-endian `u64`), the purpose and
//! the subject: 45 bytes, [`FORM_TOKEN_LEN`] characters. Purpose and subject are not in the
//! text; the verifier names them, so a token of one form (or one visitor) fails as another's.

use super::{Keyring, MAX_CLOCK_SKEW_S, PassError, TAG_BYTES, field};

/// The length of every form token ([`Keyring::sign_form`]), in ASCII characters.
pub const FORM_TOKEN_LEN: usize = 60;

const FORM_VERSION: u8 = 5;
/// Version, key id, issue time; the tag.
const FORM_BYTES: usize = 13 + TAG_BYTES;
const _: () = assert!(FORM_BYTES.is_multiple_of(3) && FORM_BYTES / 3 * 4 == FORM_TOKEN_LEN);

/// What the tag covers beyond the token's own bytes: the purpose, unambiguously delimited, and
/// the subject.
fn bound(purpose: &str, subject: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + purpose.len() + subject.len());
    out.extend_from_slice(&(purpose.len() as u64).to_be_bytes());
    out.extend_from_slice(purpose.as_bytes());
    out.extend_from_slice(subject.as_bytes());
    out
}

impl Keyring {
    /// A token for the form `purpose` (say `"register"`) shown to `subject` (a visitor, a
    /// booking) at `issued_at_unix_s`: [`FORM_TOKEN_LEN`] characters of base64url.
    /// [`Keyring::verify_form`] accepts it only for the same purpose and subject, and only
    /// until it is older than the reader's maximum age.
    ///
    /// ```
    /// use surgegate::pass::{KeyId, Keyring, PassError};
    ///
    /// let keys = Keyring::new(KeyId(1), &[5u8; 32])?;
    /// let token = keys.sign_form("cancel", "booking-17", 1_800_000_000);
    /// assert_eq!(keys.verify_form(&token, "cancel", "booking-17", 1_800_000_060, 7_200), Ok(()));
    /// let other_form = keys.verify_form(&token, "confirm", "booking-17", 1_800_000_060, 7_200);
    /// assert_eq!(other_form, Err(PassError::BadSignature));
    /// let old = keys.verify_form(&token, "cancel", "booking-17", 1_800_007_200, 7_200);
    /// assert_eq!(old, Err(PassError::Expired));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign_form(&self, purpose: &str, subject: &str, issued_at_unix_s: u64) -> String {
        let mut bytes = [0u8; FORM_BYTES];
        bytes[5..13].copy_from_slice(&issued_at_unix_s.to_be_bytes());
        self.seal_bound(FORM_VERSION, &mut bytes, &bound(purpose, subject))
    }

    /// Whether `token` is a form token of this keyring for `purpose` and `subject`, issued
    /// less than `max_age_s` before `now_unix_s` (and no more than [`MAX_CLOCK_SKEW_S`] after
    /// it).
    ///
    /// # Errors
    /// [`PassError::Malformed`], [`PassError::UnknownKey`], [`PassError::BadSignature`] (also
    /// for a token of another purpose or subject; checked in constant time), then
    /// [`PassError::Expired`] for a token too old or from the future: the page that holds it
    /// must be loaded again.
    pub fn verify_form(
        &self,
        token: &str,
        purpose: &str,
        subject: &str,
        now_unix_s: u64,
        max_age_s: u64,
    ) -> Result<(), PassError> {
        let mut bytes = [0u8; FORM_BYTES];
        let body = self.open_bound(FORM_VERSION, token, &mut bytes, &bound(purpose, subject))?;
        let issued = u64::from_be_bytes(field(body, 5));
        let expired = now_unix_s >= issued.saturating_add(max_age_s);
        if expired || issued > now_unix_s.saturating_add(MAX_CLOCK_SKEW_S) {
            return Err(PassError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{FORM_TOKEN_LEN, Keyring};
    use crate::pass::{KeyId, PassError};

    #[test]
    fn a_token_is_bound_to_its_purpose_subject_key_and_time() {
        let keys = Keyring::new(KeyId(3), &[1; 32]).unwrap();
        let t = keys.sign_form("hold", "7", 1_000);
        assert_eq!(t.len(), FORM_TOKEN_LEN);
        assert_eq!(keys.verify_form(&t, "hold", "7", 1_000, 60), Ok(()));
        assert_eq!(keys.verify_form(&t, "hold", "7", 1_059, 60), Ok(()));
        assert_eq!(
            keys.verify_form(&t, "hold", "7", 1_060, 60),
            Err(PassError::Expired)
        );
        assert_eq!(
            keys.verify_form(&t, "hold", "7", 0, 60),
            Err(PassError::Expired)
        );
        // "ho" + "ld7" must not verify as "hold" + "7".
        assert_eq!(
            keys.verify_form(&t, "ho", "ld7", 1_000, 60),
            Err(PassError::BadSignature)
        );
        assert_eq!(
            keys.verify_form(&t, "hold", "8", 1_000, 60),
            Err(PassError::BadSignature)
        );
        let other = Keyring::new(KeyId(3), &[2; 32]).unwrap();
        assert_eq!(
            other.verify_form(&t, "hold", "7", 1_000, 60),
            Err(PassError::BadSignature)
        );
        let unknown = Keyring::new(KeyId(4), &[1; 32]).unwrap();
        assert_eq!(
            unknown.verify_form(&t, "hold", "7", 1_000, 60),
            Err(PassError::UnknownKey)
        );
        for bad in ["", "x", &t[1..], &format!("{t}A")] {
            assert_eq!(
                keys.verify_form(bad, "hold", "7", 1_000, 60),
                Err(PassError::Malformed)
            );
        }
        let visitor = keys.sign_visitor_at(0, crate::VisitorId(7), 1_000);
        assert!(keys.verify_form(&visitor, "hold", "7", 1_000, 60).is_err());
    }
}
