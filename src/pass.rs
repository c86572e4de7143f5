//! Signed passes: admission that any node can check without asking the node that admitted.
//!
//! A [`Keyring`] signs [`PassClaims`] (room, visitor, the pass's [`TicketToken`], issue and
//! expiry times in Unix seconds) into a short ASCII text, safe in a cookie, a header and a URL,
//! and verifies such a text back into its claims. Every portal node holds the same keyring;
//! the node that serves a registration checks the pass with its own keys.
//!
//! # Guarantees
//!
//! - **Unforgeable without a key**: the tag is HMAC-SHA256 over every other byte, keyed by a
//!   secret of at least [`MIN_SECRET_BYTES`]. Verification recomputes it and compares through
//!   the MAC's own constant-time check, so the time it takes says nothing about how many bytes
//!   of a forged tag were right.
//! - **One text per pass**: the text is exactly [`PASS_TEXT_LEN`] characters of unpadded
//!   base64url, encoding exactly 81 bytes (a multiple of 3, so no character carries spare bits).
//!   Changing any byte of a valid text gives an error, never a different valid pass; a text that
//!   verifies is the one [`Keyring::sign`] makes of its claims.
//! - **Bounded work**: a text of the wrong length is refused before anything is decoded; no
//!   input panics.
//! - **Rotation**: a keyring signs with one key and also verifies with up to
//!   [`MAX_KEYS`]` - 1` older ones ([`Keyring::with_verify_key`]), so a new key can be rolled out
//!   while passes signed by the old one drain.
//!
//! A pass says who was admitted and until when; it does not say whether the room has since
//! ended it (a visitor who left). A node that must know asks the room too, which is what the
//! HTTP layer does when it can reach the room.
//!
//! # Layout of the 81 signed bytes
//!
//! | bytes | field |
//! |---|---|
//! | 0 | format version, 1 |
//! | 1..5 | key id, big-endian `u32` |
//! | 5..9 | room, big-endian `u32` |
//! | 9..17 | visitor, big-endian `u64` |
//! | 17..33 | token, big-endian `u128` |
//! | 33..41 | issued at, Unix seconds, big-endian `u64` |
//! | 41..49 | expires at, Unix seconds, big-endian `u64` |
//! | 49..81 | HMAC-SHA256 of bytes 0..49 |
//!
//! A visitor text ([`Keyring::sign_visitor_at`], an identity kept in a cookie) is format
//! version 4: version, key id, room, visitor (as above), its issue time in Unix seconds
//! (big-endian `u64`), and the tag over those 25 bytes: 57 bytes, [`VISITOR_TEXT_LEN`]
//! characters. (Version 2, without an issue time, is no longer accepted.) The version byte and the length keep either kind of
//! text from being taken for the other. A place text ([`Keyring::sign_place_at`], format
//! version 6; version 3, without an issue time, is no longer accepted) adds the ticket's token,
//! its sequence number in a shared room's line and its issue time: 81 bytes, [`PLACE_TEXT_LEN`]
//! characters (a pass's length, but never taken for one: the version differs). A form token ([`Keyring::sign_form`], format version 5) binds
//! a form's purpose, its subject and its issue time; see [`FORM_TOKEN_LEN`].
//!
//! ```
//! use surgegate::pass::{KeyId, Keyring, PassClaims, PassError};
//! use surgegate::{TicketToken, VisitorId};
//!
//! let secret = [7u8; 32]; // in a portal: 32 random bytes from its secret store
//! let keys = Keyring::new(KeyId(1), &secret)?;
//! let claims = PassClaims {
//!     room: 3,
//!     visitor: VisitorId(42),
//!     token: "0123456789abcdef0123456789abcdef".parse()?,
//!     issued_at_unix_s: 1_800_000_000,
//!     expires_at_unix_s: 1_800_000_900,
//! };
//! let text = keys.sign(&claims);
//! assert_eq!(text.len(), surgegate::pass::PASS_TEXT_LEN);
//! assert_eq!(keys.verify(&text, 1_800_000_100)?, claims);
//! assert_eq!(keys.verify(&text, 1_800_000_900), Err(PassError::Expired));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::room::{TicketToken, VisitorId};

mod form;
mod place;

pub use form::FORM_TOKEN_LEN;
pub use place::{PLACE_TEXT_LEN, PlaceClaims};

type HmacSha256 = hmac::Hmac<Sha256>;

/// The shortest secret a key accepts, in bytes (the output size of SHA-256).
pub const MIN_SECRET_BYTES: usize = 32;

/// The most keys a keyring holds: the signing key and up to `MAX_KEYS - 1` verify-only keys.
pub const MAX_KEYS: usize = 8;

/// The length of every pass text, in ASCII characters.
pub const PASS_TEXT_LEN: usize = 108;

/// The length of every visitor text ([`Keyring::sign_visitor_at`]), in ASCII characters.
pub const VISITOR_TEXT_LEN: usize = 76;

/// How far in the future a text's issue time may be and still be accepted, in seconds: the
/// clocks of a portal's nodes may differ by this much.
pub const MAX_CLOCK_SKEW_S: u64 = 300;

const PASS_VERSION: u8 = 1;
const VISITOR_VERSION: u8 = 4;
const BODY_BYTES: usize = 49;
const TAG_BYTES: usize = 32;
const PASS_BYTES: usize = BODY_BYTES + TAG_BYTES;
/// Version, key id, room, visitor, issue time; the tag.
const VISITOR_BYTES: usize = 25 + TAG_BYTES;
const _: () = assert!(PASS_BYTES.is_multiple_of(3) && PASS_BYTES / 3 * 4 == PASS_TEXT_LEN);
const _: () = assert!(VISITOR_BYTES.is_multiple_of(3) && VISITOR_BYTES / 3 * 4 == VISITOR_TEXT_LEN);

/// The name of a key, carried in every pass it signs so that verification picks the right one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

/// What a pass says: who was admitted to which room, with which token, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PassClaims {
    /// The portal's number for the room (a portal with several services gives each its own), so
    /// a pass for one room is not accepted by another that shares the keys.
    pub room: u32,
    /// The visitor who was admitted.
    pub visitor: VisitorId,
    /// The pass's token, as the room knows it ([`crate::Pass::token`]).
    pub token: TicketToken,
    /// When the pass was issued, in Unix seconds.
    pub issued_at_unix_s: u64,
    /// The first Unix second at which the pass is no longer accepted.
    pub expires_at_unix_s: u64,
}

/// Why a keyring could not be built or extended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is shorter than [`MIN_SECRET_BYTES`].
    #[error(
        "the secret of key {key:?} is {len} bytes; use at least {MIN_SECRET_BYTES} random bytes"
    )]
    ShortSecret {
        /// The key being added.
        key: KeyId,
        /// The secret's length in bytes.
        len: usize,
    },
    /// The keyring already has a key of this id.
    #[error("the keyring already has key {0:?}; give each key its own id")]
    DuplicateKey(KeyId),
    /// The keyring already holds [`MAX_KEYS`] keys.
    #[error("the keyring already holds {MAX_KEYS} keys; drop a key that no live pass uses")]
    TooManyKeys,
}

/// Why a pass text was not accepted. Every variant means "no valid pass": treat the visitor as
/// one who has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PassError {
    /// Not a pass text of this format: wrong length, characters outside base64url, or an
    /// unknown format version.
    #[error("not a pass: expected {PASS_TEXT_LEN} base64url characters of format version 1")]
    Malformed,
    /// Signed by a key this keyring does not hold (retired, or never issued here).
    #[error("the pass was signed by a key this keyring does not hold")]
    UnknownKey,
    /// The tag does not match: the text was forged or changed.
    #[error("the pass's signature does not match; it was forged or altered")]
    BadSignature,
    /// The pass was genuine but its expiry time has come.
    #[error("the pass has expired; join the line again")]
    Expired,
}

/// The keys a portal signs and verifies passes with. Cheap to share behind an `Arc`; `Debug`
/// shows the key ids only, never a secret.
#[derive(Clone)]
pub struct Keyring {
    /// `keys[0]` signs; all of them verify. At most [`MAX_KEYS`], ids distinct.
    keys: Vec<(KeyId, HmacSha256)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<KeyId> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("Keyring")
            .field("signing", &ids[0])
            .field("keys", &ids)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A keyring that signs (and verifies) with `secret` under the name `id`.
    ///
    /// # Errors
    /// [`KeyError::ShortSecret`] if `secret` is shorter than [`MIN_SECRET_BYTES`].
    pub fn new(id: KeyId, secret: &[u8]) -> Result<Self, KeyError> {
        Ok(Self {
            keys: vec![(id, keyed(id, secret)?)],
        })
    }

    /// The same keyring, also accepting passes signed with `secret` under `id` (an older key
    /// during a rotation). Signing still uses the key given to [`Keyring::new`].
    ///
    /// # Errors
    /// [`KeyError::ShortSecret`], [`KeyError::DuplicateKey`] if `id` is already held,
    /// [`KeyError::TooManyKeys`] beyond [`MAX_KEYS`].
    pub fn with_verify_key(mut self, id: KeyId, secret: &[u8]) -> Result<Self, KeyError> {
        if self.keys.iter().any(|(held, _)| *held == id) {
            return Err(KeyError::DuplicateKey(id));
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyError::TooManyKeys);
        }
        let mac = keyed(id, secret)?;
        self.keys.push((id, mac));
        Ok(self)
    }

    /// The id of the key that [`Keyring::sign`] uses.
    pub fn signing_key(&self) -> KeyId {
        self.keys[0].0
    }

    /// The pass text of `claims`, signed with the signing key: [`PASS_TEXT_LEN`] characters of
    /// base64url.
    pub fn sign(&self, claims: &PassClaims) -> String {
        let mut bytes = [0u8; PASS_BYTES];
        write_claims(&mut bytes[..BODY_BYTES], claims);
        self.seal(PASS_VERSION, &mut bytes)
    }

    /// The claims of a pass text, if it was signed by one of this keyring's keys and has not
    /// expired at `now_unix_s`.
    ///
    /// # Errors
    /// [`PassError::Malformed`], [`PassError::UnknownKey`], [`PassError::BadSignature`] (checked
    /// in constant time), then [`PassError::Expired`] once `now_unix_s >= expires_at_unix_s`.
    pub fn verify(&self, text: &str, now_unix_s: u64) -> Result<PassClaims, PassError> {
        let mut bytes = [0u8; PASS_BYTES];
        let claims = read_claims(self.open(PASS_VERSION, text, &mut bytes)?);
        if now_unix_s >= claims.expires_at_unix_s {
            return Err(PassError::Expired);
        }
        Ok(claims)
    }

    /// A signed text naming a visitor of a room, issued now by the system clock: see
    /// [`Keyring::sign_visitor_at`].
    pub fn sign_visitor(&self, room: u32, visitor: VisitorId) -> String {
        self.sign_visitor_at(room, visitor, system_now_unix_s())
    }

    /// A signed text naming a visitor of a room ([`VISITOR_TEXT_LEN`] characters of base64url),
    /// issued at `issued_at_unix_s`: an identity for visitors who have no account, kept in a
    /// cookie. [`Keyring::verify_visitor_at`] refuses it once it is older than the reader's
    /// maximum age, so a collection of identities loses its worth; it is never accepted as a
    /// pass.
    ///
    /// ```
    /// use surgegate::VisitorId;
    /// use surgegate::pass::{KeyId, Keyring, PassError};
    ///
    /// let keys = Keyring::new(KeyId(1), &[9u8; 32])?;
    /// let text = keys.sign_visitor_at(3, VisitorId(77), 1_800_000_000);
    /// assert_eq!(keys.verify_visitor_at(&text, 1_800_000_100, 86_400)?, (3, VisitorId(77)));
    /// assert_eq!(keys.verify_visitor_at(&text, 1_800_086_400, 86_400), Err(PassError::Expired));
    /// assert!(keys.verify(&text, 0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign_visitor_at(&self, room: u32, visitor: VisitorId, issued_at_unix_s: u64) -> String {
        let mut bytes = [0u8; VISITOR_BYTES];
        bytes[5..9].copy_from_slice(&room.to_be_bytes());
        bytes[9..17].copy_from_slice(&visitor.0.to_be_bytes());
        bytes[17..25].copy_from_slice(&issued_at_unix_s.to_be_bytes());
        self.seal(VISITOR_VERSION, &mut bytes)
    }

    /// The room and visitor of a text made by [`Keyring::sign_visitor_at`] with one of this
    /// keyring's keys, whatever its age.
    ///
    /// # Errors
    /// [`PassError::Malformed`], [`PassError::UnknownKey`] or [`PassError::BadSignature`].
    pub fn verify_visitor(&self, text: &str) -> Result<(u32, VisitorId), PassError> {
        self.open_visitor(text)
            .map(|(room, visitor, _)| (room, visitor))
    }

    /// The room and visitor of a visitor text no older than `max_age_s` at `now_unix_s` (and
    /// issued no more than [`MAX_CLOCK_SKEW_S`] after it).
    ///
    /// # Errors
    /// [`PassError::Malformed`], [`PassError::UnknownKey`], [`PassError::BadSignature`], then
    /// [`PassError::Expired`] once `now_unix_s >= issued + max_age_s`, or for a text issued
    /// too far ahead of `now_unix_s`.
    pub fn verify_visitor_at(
        &self,
        text: &str,
        now_unix_s: u64,
        max_age_s: u64,
    ) -> Result<(u32, VisitorId), PassError> {
        let (room, visitor, issued) = self.open_visitor(text)?;
        let expired = now_unix_s >= issued.saturating_add(max_age_s);
        if expired || issued > now_unix_s.saturating_add(MAX_CLOCK_SKEW_S) {
            return Err(PassError::Expired);
        }
        Ok((room, visitor))
    }

    fn open_visitor(&self, text: &str) -> Result<(u32, VisitorId, u64), PassError> {
        let mut bytes = [0u8; VISITOR_BYTES];
        let body = self.open(VISITOR_VERSION, text, &mut bytes)?;
        Ok((
            u32::from_be_bytes(field(body, 5)),
            VisitorId(u64::from_be_bytes(field(body, 9))),
            u64::from_be_bytes(field(body, 17)),
        ))
    }

    /// Writes the format `version` and the signing key's id into `bytes` (a body followed by
    /// room for the tag), the tag over the body after them, and encodes the whole.
    fn seal(&self, version: u8, bytes: &mut [u8]) -> String {
        self.seal_bound(version, bytes, &[])
    }

    /// As [`seal`](Self::seal), with the tag also covering `bound` (bytes that are not in the
    /// text but that the verifier must name again).
    fn seal_bound(&self, version: u8, bytes: &mut [u8], bound: &[u8]) -> String {
        let (id, mac) = &self.keys[0];
        let body_len = bytes.len() - TAG_BYTES;
        bytes[0] = version;
        bytes[1..5].copy_from_slice(&id.0.to_be_bytes());
        let tag = mac
            .clone()
            .chain_update(&bytes[..body_len])
            .chain_update(bound)
            .finalize();
        bytes[body_len..].copy_from_slice(&tag.into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes `text` into `bytes` (whose length is the format's) and checks its version, key
    /// and tag; the body, on success.
    fn open<'b>(
        &self,
        version: u8,
        text: &str,
        bytes: &'b mut [u8],
    ) -> Result<&'b [u8], PassError> {
        self.open_bound(version, text, bytes, &[])
    }

    /// As [`open`](Self::open), for a text sealed with [`seal_bound`](Self::seal_bound).
    fn open_bound<'b>(
        &self,
        version: u8,
        text: &str,
        bytes: &'b mut [u8],
        bound: &[u8],
    ) -> Result<&'b [u8], PassError> {
        if text.len() != bytes.len() / 3 * 4 {
            return Err(PassError::Malformed);
        }
        match URL_SAFE_NO_PAD.decode_slice(text, bytes) {
            Ok(n) if n == bytes.len() => {}
            _ => return Err(PassError::Malformed),
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
        if body[0] != version {
            return Err(PassError::Malformed);
        }
        let id = KeyId(u32::from_be_bytes(field(body, 1)));
        let (_, mac) = self
            .keys
            .iter()
            .find(|(held, _)| *held == id)
            .ok_or(PassError::UnknownKey)?;
        mac.clone()
            .chain_update(body)
            .chain_update(bound)
            .verify_slice(tag)
            .map_err(|_| PassError::BadSignature)?;
        Ok(body)
    }
}

/// The system clock's now, in whole Unix seconds (0 before the epoch).
pub(crate) fn system_now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn keyed(id: KeyId, secret: &[u8]) -> Result<HmacSha256, KeyError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyError::ShortSecret {
            key: id,
            len: secret.len(),
        });
    }
    // HMAC takes a key of any length; the length was checked above, so this cannot fail.
    HmacSha256::new_from_slice(secret).map_err(|_| KeyError::ShortSecret {
        key: id,
        len: secret.len(),
    })
}

/// Writes the claims' fields (bytes 5..49; `seal` writes the version and key id).
fn write_claims(body: &mut [u8], claims: &PassClaims) {
    body[5..9].copy_from_slice(&claims.room.to_be_bytes());
    body[9..17].copy_from_slice(&claims.visitor.0.to_be_bytes());
    body[17..33].copy_from_slice(&claims.token.to_u128().to_be_bytes());
    body[33..41].copy_from_slice(&claims.issued_at_unix_s.to_be_bytes());
    body[41..49].copy_from_slice(&claims.expires_at_unix_s.to_be_bytes());
}

fn read_claims(body: &[u8]) -> PassClaims {
    PassClaims {
        room: u32::from_be_bytes(field(body, 5)),
        visitor: VisitorId(u64::from_be_bytes(field(body, 9))),
        token: TicketToken::from_u128(u128::from_be_bytes(field(body, 17))),
        issued_at_unix_s: u64::from_be_bytes(field(body, 33)),
        expires_at_unix_s: u64::from_be_bytes(field(body, 41)),
    }
}

/// `N` bytes of `body` from `at`; the layout above keeps every field inside the body.
fn field<const N: usize>(body: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&body[at..at + N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> PassClaims {
        PassClaims {
            room: 9,
            visitor: VisitorId(u64::MAX - 1),
            token: TicketToken::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
            issued_at_unix_s: 1_000,
            expires_at_unix_s: 2_000,
        }
    }

    #[test]
    fn the_layout_round_trips_every_field() {
        let keys = Keyring::new(KeyId(0xdead_beef), &[1; 32]).unwrap();
        let mut bytes = [0u8; PASS_BYTES];
        let text = keys.sign(&claims());
        let body = keys.open(PASS_VERSION, &text, &mut bytes).unwrap();
        assert_eq!(body[0], PASS_VERSION);
        assert_eq!(u32::from_be_bytes(field(body, 1)), 0xdead_beef);
        assert_eq!(read_claims(body), claims());
    }

    #[test]
    fn debug_shows_key_ids_and_no_secret() {
        let keys = Keyring::new(KeyId(2), &[0xab; 32])
            .unwrap()
            .with_verify_key(KeyId(1), &[0xcd; 40])
            .unwrap();
        let shown = format!("{keys:?}");
        assert!(
            shown.contains("KeyId(2)") && shown.contains("KeyId(1)"),
            "{shown}"
        );
        assert!(!shown.contains("171") && !shown.contains("205"), "{shown}");
    }
}
