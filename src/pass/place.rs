//! Place texts: a waiting visitor's place in a shared room's line, signed, so that a visitor
//! whose entry the store lost (in a failover) can take the same place again, for as long as
//! the text is young enough (format version 6; see the [module docs](super)).

use super::{Keyring, MAX_CLOCK_SKEW_S, PassError, TAG_BYTES, field, system_now_unix_s};
use crate::room::{TicketToken, VisitorId};

const PLACE_VERSION: u8 = 6;
/// Version, key id, room, visitor, token, sequence number, issue time; the tag.
const PLACE_BYTES: usize = 49 + TAG_BYTES;
/// The length of every place text ([`Keyring::sign_place`]), in ASCII characters.
pub const PLACE_TEXT_LEN: usize = 108;
const _: () = assert!(PLACE_BYTES.is_multiple_of(3) && PLACE_BYTES / 3 * 4 == PLACE_TEXT_LEN);

/// What a place text says ([`Keyring::sign_place_at`]): a waiting visitor's ticket and its
/// place in a shared room's line, as of its issue time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlaceClaims {
    /// The portal's number for the room.
    pub room: u32,
    /// The waiting visitor.
    pub visitor: VisitorId,
    /// The ticket's token.
    pub token: TicketToken,
    /// The ticket's sequence number in the line (its order among those who joined).
    pub seq: u64,
    /// When the text was issued, in Unix seconds.
    pub issued_at_unix_s: u64,
}

impl Keyring {
    /// A signed text of a waiting visitor's place, issued now by the system clock: see
    /// [`Keyring::sign_place_at`].
    pub fn sign_place(
        &self,
        room: u32,
        visitor: VisitorId,
        token: TicketToken,
        seq: u64,
    ) -> String {
        let place = PlaceClaims {
            room,
            visitor,
            token,
            seq,
            issued_at_unix_s: system_now_unix_s(),
        };
        self.sign_place_at(&place)
    }

    /// A signed text of a waiting visitor's place in a shared room (format version 6,
    /// [`PLACE_TEXT_LEN`] characters): the room, the visitor, the ticket's token, its sequence
    /// number in the line and the text's issue time, so that a visitor whose entry a store lost
    /// (in a failover) can take the same place again, for as long as the reader's maximum age
    /// allows. Never accepted as a pass or a visitor text.
    ///
    /// ```
    /// use surgegate::pass::{KeyId, Keyring, PassError, PlaceClaims};
    /// use surgegate::{TicketToken, VisitorId};
    ///
    /// let keys = Keyring::new(KeyId(1), &[3u8; 32])?;
    /// let place = PlaceClaims {
    ///     room: 2,
    ///     visitor: VisitorId(9),
    ///     token: "0123456789abcdef0123456789abcdef".parse::<TicketToken>()?,
    ///     seq: 41,
    ///     issued_at_unix_s: 1_800_000_000,
    /// };
    /// let text = keys.sign_place_at(&place);
    /// assert_eq!(keys.verify_place_at(&text, 1_800_000_030, 3_600)?, place);
    /// assert_eq!(keys.verify_place_at(&text, 1_800_003_600, 3_600), Err(PassError::Expired));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign_place_at(&self, place: &PlaceClaims) -> String {
        let mut bytes = [0u8; PLACE_BYTES];
        bytes[5..9].copy_from_slice(&place.room.to_be_bytes());
        bytes[9..17].copy_from_slice(&place.visitor.0.to_be_bytes());
        bytes[17..33].copy_from_slice(&place.token.to_u128().to_be_bytes());
        bytes[33..41].copy_from_slice(&place.seq.to_be_bytes());
        bytes[41..49].copy_from_slice(&place.issued_at_unix_s.to_be_bytes());
        self.seal(PLACE_VERSION, &mut bytes)
    }

    /// The room, visitor, token and sequence number of a text made by [`Keyring::sign_place`],
    /// whatever its age.
    ///
    /// # Errors
    /// [`PassError::Malformed`], [`PassError::UnknownKey`] or [`PassError::BadSignature`].
    pub fn verify_place(
        &self,
        text: &str,
    ) -> Result<(u32, VisitorId, TicketToken, u64), PassError> {
        self.open_place(text)
            .map(|p| (p.room, p.visitor, p.token, p.seq))
    }

    /// The place a text made by [`Keyring::sign_place_at`] names, if it is no older than
    /// `max_age_s` at `now_unix_s` (and issued no more than [`MAX_CLOCK_SKEW_S`] after it).
    ///
    /// # Errors
    /// [`PassError::Malformed`], [`PassError::UnknownKey`], [`PassError::BadSignature`], then
    /// [`PassError::Expired`].
    pub fn verify_place_at(
        &self,
        text: &str,
        now_unix_s: u64,
        max_age_s: u64,
    ) -> Result<PlaceClaims, PassError> {
        let place = self.open_place(text)?;
        let issued = place.issued_at_unix_s;
        let expired = now_unix_s >= issued.saturating_add(max_age_s);
        if expired || issued > now_unix_s.saturating_add(MAX_CLOCK_SKEW_S) {
            return Err(PassError::Expired);
        }
        Ok(place)
    }

    fn open_place(&self, text: &str) -> Result<PlaceClaims, PassError> {
        let mut bytes = [0u8; PLACE_BYTES];
        let body = self.open(PLACE_VERSION, text, &mut bytes)?;
        Ok(PlaceClaims {
            room: u32::from_be_bytes(field(body, 5)),
            visitor: VisitorId(u64::from_be_bytes(field(body, 9))),
            token: TicketToken::from_u128(u128::from_be_bytes(field(body, 17))),
            seq: u64::from_be_bytes(field(body, 33)),
            issued_at_unix_s: u64::from_be_bytes(field(body, 41)),
        })
    }
}
